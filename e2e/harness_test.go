// Package e2e starts real mqnamesrv and mqbroker processes on random ports
// and drives them with the official RocketMQ Go client and raw frames.
package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"
)

var binDir string

// The daemons and CLIs the tests run.
var commands = []string{"../broker/cmd/mqnamesrv", "../broker/cmd/mqbroker", "../broker/cmd/mqnsaddr", "../broker/cmd/mqcontroller", "../mqadmin/cmd/mqadmin", "../zabbix/cmd/mqops-zbx"}

// TestMain builds the commands into a temporary directory, with the race
// detector when MQOPS_E2E_RACE=1, or uses the ones already built in
// $MQOPS_E2E_BIN (make test builds them once for every suite; a relative
// path is relative to e2e/).
func TestMain(m *testing.M) {
	rlog.SetLogLevel("error")
	// A race-built process stops at its first data race with exit code 66
	// (an unexpected exit fails its test); procs and runCLI also fail the
	// test whose process printed a race report.
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "halt_on_error=1 exitcode=66")
	}
	if dir := os.Getenv("MQOPS_E2E_BIN"); dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, pkg := range commands {
			if _, err := os.Stat(filepath.Join(abs, filepath.Base(pkg))); err != nil {
				fmt.Fprintf(os.Stderr, "MQOPS_E2E_BIN=%s: %v\n", dir, err)
				os.Exit(1)
			}
		}
		binDir = abs
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "mqops-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if os.Getenv("MQOPS_E2E_RACE") == "1" {
		args = append(args, "-race")
	}
	// One go build for all of them: the packages they share are compiled once.
	b := exec.Command("go", append(args, commands...)...)
	b.Stdout, b.Stderr = os.Stderr, os.Stderr
	if err := b.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build", commands, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// raceReport is the start of a race detector report, on stderr.
const raceReport = "WARNING: DATA RACE"

// proc is one daemon started by a test.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	addr string
	out  *lockedBuf
	done chan struct{}
	race sync.Once // reports a data race once, however often it is stopped
}

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var (
	namesrvReady = regexp.MustCompile(`The Name Server boot success\. serializeType=JSON, address (\S+)`)
	brokerReady  = regexp.MustCompile(`The broker\[[^,]+, (\S+)\] boot success`)
)

// start runs a daemon and waits until it prints its ready line.
func start(t *testing.T, ready *regexp.Regexp, name string, args ...string) *proc {
	t.Helper()
	return startExe(t, ready, name, filepath.Join(binDir, name), args...)
}

// startExe is start for any executable; name is what messages call it.
func startExe(t *testing.T, ready *regexp.Regexp, name, exe string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(exe, args...)
	p := &proc{t: t, name: name, cmd: cmd, out: &lockedBuf{}, done: make(chan struct{})}
	pr, pw := io.Pipe()
	cmd.Stdout = io.MultiWriter(pw, p.out)
	cmd.Stderr = p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := ready.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case p.addr = <-found:
	case <-p.done:
		p.checkRace()
		t.Fatalf("%s exited before it was ready:\n%s", name, p.out.String())
	case <-time.After(30 * time.Second):
		p.kill()
		t.Fatalf("%s not ready after 30s:\n%s", name, p.out.String())
	}
	t.Cleanup(p.kill)
	return p
}

// stop sends SIGINT, as Ctrl-C does, and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGINT) // what Ctrl-C sends
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill()
		p.t.Fatalf("process did not stop within 30s:\n%s", p.out.String())
	}
	p.checkRace()
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		p.t.Fatalf("process exited with %d:\n%s", code, p.out.String())
	}
}

// kill sends SIGKILL: no flush, no clean-up, as in a crash.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.checkRace()
}

// checkRace fails the test owning p if p printed a race report (a
// race-built daemon, MQOPS_E2E_RACE=1); it runs once p has exited.
func (p *proc) checkRace() {
	p.race.Do(func() {
		if out := p.out.String(); strings.Contains(out, raceReport) {
			p.t.Errorf("%s: data race detected:\n%s", p.name, out[strings.Index(out, raceReport):])
		}
	})
}

// startNamesrv runs a name server on a random port.
func startNamesrv(t *testing.T, extra ...string) *proc {
	dir := t.TempDir()
	args := []string{"-p", "listenPort=0", "-p", "kvConfigPath=" + filepath.Join(dir, "kvConfig.json"), "-p", "logDir=" + filepath.Join(dir, "logs")}
	for _, e := range extra {
		args = append(args, "-p", e)
	}
	p := start(t, namesrvReady, "mqnamesrv", args...)
	// It listens on every interface; clients dial it on loopback.
	_, port, err := net.SplitHostPort(p.addr)
	if err != nil {
		t.Fatalf("name server address %q: %v", p.addr, err)
	}
	p.addr = net.JoinHostPort("127.0.0.1", port)
	return p
}

// brokerDir is a broker's data directory, kept across restarts.
type brokerDir string

func newBrokerDir(t *testing.T) brokerDir { return brokerDir(t.TempDir()) }

// startBroker runs a broker registered with namesrv; extra are key=value
// config overrides.
func startBroker(t *testing.T, dir brokerDir, namesrv string, extra ...string) *proc {
	return start(t, brokerReady, "mqbroker", brokerArgs(dir, namesrv, extra...)...)
}

// brokerArgs is startBroker's command line.
func brokerArgs(dir brokerDir, namesrv string, extra ...string) []string {
	args := []string{
		"-n", namesrv,
		"-p", "listenPort=0",
		"-p", "grpcServerPort=0", // when a test turns enableProxy on
		"-p", "httpGatewayPort=0", // when a test turns enableHttpGateway on
		"-p", "brokerIP1=127.0.0.1",
		"-p", "storePathRootDir=" + filepath.Join(string(dir), "store"),
		"-p", "logDir=" + filepath.Join(string(dir), "logs"),
		"-p", "mappedFileSizeCommitLog=" + fmt.Sprint(16<<20),
		// Small index files: the default ones reserve 420 MB each.
		"-p", "maxHashSlotNum=10000", "-p", "maxIndexNum=40000",
	}
	for _, e := range extra {
		args = append(args, "-p", e)
	}
	return args
}

// cluster is a name server plus one broker.
type cluster struct {
	ns     *proc
	broker *proc
	dir    brokerDir
}

func startCluster(t *testing.T, extra ...string) *cluster {
	ns := startNamesrv(t)
	dir := newBrokerDir(t)
	return &cluster{ns: ns, dir: dir, broker: startBroker(t, dir, ns.addr, extra...)}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
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

// rawConn is a plain TCP connection for hand-made frames.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// restartBroker starts c's broker again on the address it had, with the
// same data directory.
func restartBroker(t *testing.T, c *cluster, extra ...string) *proc {
	_, port, err := net.SplitHostPort(c.broker.addr)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{}, extra...)
	// listenPort+1 (the default HA port of a master) may have been taken
	// by another process meanwhile: let the HA server pick any port.
	args = append(args, "listenPort="+port, "haListenPort=0")
	return startBroker(t, c.dir, c.ns.addr, args...)
}
