// Package e2ed starts the mqops daemons for the end-to-end suites: e2e
// (in the root module) and e2e/grpc (a module of its own, on the RocketMQ 5
// Go client). It runs real processes on free loopback ports, reads their
// ready lines and fails the test that started one if it printed a race
// detector report.
//
// It is a module of its own with no dependencies beyond the standard
// library, so that e2e/grpc can use it without the root module entering
// its build list (the root module's golang/v5 version would win there).
package e2ed

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Ready lines of the daemons; the first group is the listening address.
var (
	NamesrvReady = regexp.MustCompile(`The Name Server boot success\. serializeType=JSON, address (\S+)`)
	BrokerReady  = regexp.MustCompile(`The broker\[[^,]+, (\S+)\] boot success`)
)

// RaceReport is the start of a race detector report, on stderr.
const RaceReport = "WARNING: DATA RACE"

// Commands returns the directory holding the commands pkgs (package paths
// relative to root, the root module's directory): $MQOPS_E2E_BIN when set
// (a relative path is relative to the working directory; every command
// must be there), otherwise a temporary directory they are built into, with
// the race detector when MQOPS_E2E_RACE=1. cleanup removes what was built.
//
// It also sets GORACE, unless set, so that a race-built process stops at
// its first data race with exit code 66 (an unexpected exit fails its
// test); Proc also fails the test whose process printed a race report.
func Commands(root string, pkgs []string) (dir string, cleanup func(), err error) {
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "halt_on_error=1 exitcode=66")
	}
	if env := os.Getenv("MQOPS_E2E_BIN"); env != "" {
		abs, err := filepath.Abs(env)
		if err != nil {
			return "", nil, err
		}
		for _, pkg := range pkgs {
			if _, err := os.Stat(filepath.Join(abs, filepath.Base(pkg))); err != nil {
				return "", nil, fmt.Errorf("MQOPS_E2E_BIN=%s: %w", env, err)
			}
		}
		return abs, func() {}, nil
	}
	dir, err = os.MkdirTemp("", "mqops-e2e-bin-")
	if err != nil {
		return "", nil, err
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if os.Getenv("MQOPS_E2E_RACE") == "1" {
		args = append(args, "-race")
	}
	// One go build for all of them: the packages they share are compiled once.
	b := exec.Command("go", append(args, pkgs...)...)
	b.Dir = root
	b.Stdout, b.Stderr = os.Stderr, os.Stderr
	if err := b.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("build %v: %w", pkgs, err)
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// LockedBuf is a strings.Builder safe for concurrent writers and readers
// (a process's output, read while it runs).
type LockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *LockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Proc is one daemon started by a test.
type Proc struct {
	Name  string // what messages call it
	Cmd   *exec.Cmd
	Addr  string            // the ready line's first group
	Extra map[string]string // first group of each extra pattern, from the lines before the ready line
	Out   *LockedBuf        // stdout and stderr
	t     testing.TB
	done  chan struct{}
	race  sync.Once // reports a data race once, however often it is stopped
}

// Start runs exe and waits up to 30s until it prints a line matching
// ready; lines before it matching extra's patterns are captured too (first
// group, by name). It registers no clean-up: the caller chooses between
// Stop and Kill. The process dies with the test binary (StartCmd).
func Start(t testing.TB, ready *regexp.Regexp, extra map[string]*regexp.Regexp, name, exe string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(exe, args...)
	p := &Proc{t: t, Name: name, Cmd: cmd, Out: &LockedBuf{}, done: make(chan struct{}), Extra: map[string]string{}}
	pr, pw := io.Pipe()
	cmd.Stdout = io.MultiWriter(pw, p.Out)
	cmd.Stderr = p.Out
	if err := StartCmd(cmd); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	// The scanner owns found until it sends the ready address; Start reads
	// p.Extra only after that.
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			for k, re := range extra {
				if m := re.FindStringSubmatch(sc.Text()); m != nil {
					p.Extra[k] = m[1]
				}
			}
			if m := ready.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				break
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case p.Addr = <-found:
	case <-p.done:
		p.CheckRace()
		t.Fatalf("%s exited before it was ready:\n%s", name, p.Out.String())
	case <-time.After(30 * time.Second):
		p.Kill()
		t.Fatalf("%s not ready after 30s:\n%s", name, p.Out.String())
	}
	return p
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGINT, as Ctrl-C does, and waits up to 30s for the process
// to exit, then kills it. The error says it did not stop in time or exited
// with a non-zero code, with its output.
func (p *Proc) Stop() error {
	_ = p.Cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.Kill()
		return fmt.Errorf("did not stop within 30s:\n%s", p.Out.String())
	}
	p.CheckRace()
	if code := p.Cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("exited with %d:\n%s", code, p.Out.String())
	}
	return nil
}

// Kill sends SIGKILL: no flush, no clean-up, as in a crash.
func (p *Proc) Kill() {
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.CheckRace()
}

// CheckRace fails the test that started p if p printed a race report (a
// race-built daemon); it runs once p has exited.
func (p *Proc) CheckRace() {
	p.race.Do(func() {
		if out := p.Out.String(); strings.Contains(out, RaceReport) {
			p.t.Errorf("%s: data race detected:\n%s", p.Name, out[strings.Index(out, RaceReport):])
		}
	})
}

// NamesrvArgs is the command line of a name server on a random port with
// its files in dir; extra are key=value config overrides.
func NamesrvArgs(dir string, extra ...string) []string {
	args := []string{"-p", "listenPort=0", "-p", "kvConfigPath=" + filepath.Join(dir, "kvConfig.json"), "-p", "logDir=" + filepath.Join(dir, "logs")}
	for _, e := range extra {
		args = append(args, "-p", e)
	}
	return args
}

// Loopback is a name server's address as clients dial it: it listens on
// every interface and prints the wildcard address.
func Loopback(t testing.TB, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("name server address %q: %v", addr, err)
	}
	return net.JoinHostPort("127.0.0.1", port)
}

// BrokerArgs is the command line of a broker on random ports (remoting,
// HA, gRPC when enabled) registered with namesrv, with its data in dir;
// extra are key=value config overrides.
func BrokerArgs(dir, namesrv string, extra ...string) []string {
	args := []string{
		"-n", namesrv,
		"-p", "listenPort=0",
		"-p", "grpcServerPort=0", // when a test turns enableProxy on
		"-p", "httpGatewayPort=0", // when a test turns enableHttpGateway on
		"-p", "brokerIP1=127.0.0.1",
		"-p", "storePathRootDir=" + filepath.Join(dir, "store"),
		"-p", "logDir=" + filepath.Join(dir, "logs"),
		"-p", "mappedFileSizeCommitLog=" + fmt.Sprint(16<<20),
		// Small index files: the default ones reserve 420 MB each.
		"-p", "maxHashSlotNum=10000", "-p", "maxIndexNum=40000",
	}
	// The daemons under test are race-built and share two cores with the
	// other CI lanes, where an append can wait behind another longer than
	// the production 200 ms before [TIMEOUT_CLEAN_QUEUE] sheds it (seen
	// failing an unrelated sync send). Tests of that shedding set the key.
	if !slices.ContainsFunc(extra, func(kv string) bool { return strings.HasPrefix(kv, "waitTimeMillsInSendQueue=") }) {
		args = append(args, "-p", "waitTimeMillsInSendQueue=3000")
	}
	for _, e := range extra {
		args = append(args, "-p", e)
	}
	return args
}

// WaitFor polls cond until it holds or the timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", timeout, what)
}
