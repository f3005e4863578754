// Package grpc tests the broker's RocketMQ 5 gRPC service with the
// official clients, unchanged: github.com/apache/rocketmq-clients/golang/v5
// v5.1.2 and, for mixed-protocol checks, rocketmq-client-go/v2 v2.1.2. It
// is its own module because the broker links the protocol types of
// golang/v5 v5.1.4, and two generated copies of package
// apache.rocketmq.v2 must not meet in one binary. It starts real mqnamesrv
// and mqbroker processes on free loopback ports, as ../harness_test.go does.
package grpc

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
	rmq "github.com/apache/rocketmq-clients/golang/v5"
)

var binDir string

// The commands the tests run, relative to this directory.
var commands = []string{"../../broker/cmd/mqnamesrv", "../../broker/cmd/mqbroker", "../../mqadmin/cmd/mqadmin"}

// TestMain builds the daemons (with the race detector when
// MQOPS_E2E_RACE=1) or uses the ones in $MQOPS_E2E_BIN, as ../ does.
func TestMain(m *testing.M) {
	rlog.SetLogLevel("error")
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "halt_on_error=1 exitcode=66")
	}
	logs, err := os.MkdirTemp("", "mqops-e2e-grpc-logs-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The v5 client logs to a file under its log root.
	os.Setenv("rocketmq.client.logRoot", logs)
	rmq.ResetLogger()
	code := run(m)
	os.RemoveAll(logs)
	os.Exit(code)
}

func run(m *testing.M) int {
	if dir := os.Getenv("MQOPS_E2E_BIN"); dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		for _, pkg := range commands {
			if _, err := os.Stat(filepath.Join(abs, filepath.Base(pkg))); err != nil {
				fmt.Fprintf(os.Stderr, "MQOPS_E2E_BIN=%s: %v\n", dir, err)
				return 1
			}
		}
		binDir = abs
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "mqops-e2e-grpc-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if os.Getenv("MQOPS_E2E_RACE") == "1" {
		args = append(args, "-race")
	}
	// Built in the main module, which links golang/v5 v5.1.4's protocol.
	b := exec.Command("go", append(args, "./broker/cmd/mqnamesrv", "./broker/cmd/mqbroker", "./mqadmin/cmd/mqadmin")...)
	b.Dir = "../.."
	b.Stdout, b.Stderr = os.Stderr, os.Stderr
	if err := b.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build", commands, err)
		return 1
	}
	return m.Run()
}

const raceReport = "WARNING: DATA RACE"

// proc is one daemon started by a test.
type proc struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	addr  string // from the ready line
	extra map[string]string
	out   *lockedBuf
	done  chan struct{}
	race  sync.Once
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
	grpcLine     = regexp.MustCompile(`gRPC service \(RocketMQ 5 clients\) listens on (\S+),`)
)

// start runs a daemon and waits for its ready line; lines matching
// extra's patterns are captured too (first group, by name).
func start(t *testing.T, ready *regexp.Regexp, extra map[string]*regexp.Regexp, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	p := &proc{t: t, name: name, cmd: cmd, out: &lockedBuf{}, done: make(chan struct{}), extra: map[string]string{}}
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
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			for k, re := range extra {
				if m := re.FindStringSubmatch(sc.Text()); m != nil {
					mu.Lock()
					p.extra[k] = m[1]
					mu.Unlock()
				}
			}
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
	mu.Lock()
	defer mu.Unlock()
	t.Cleanup(p.stop)
	return p
}

// stop sends SIGINT and waits for a clean exit.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill()
		p.t.Errorf("%s did not stop within 30s:\n%s", p.name, p.out.String())
	}
	p.checkRace()
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		p.t.Errorf("%s exited with %d:\n%s", p.name, code, p.out.String())
	}
}

func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.checkRace()
}

func (p *proc) checkRace() {
	p.race.Do(func() {
		if out := p.out.String(); strings.Contains(out, raceReport) {
			p.t.Errorf("%s: data race detected:\n%s", p.name, out[strings.Index(out, raceReport):])
		}
	})
}

// cluster is a name server and one broker serving gRPC.
type cluster struct {
	ns, broker *proc
	grpcAddr   string
}

func startCluster(t *testing.T, brokerKV ...string) *cluster {
	t.Helper()
	ns := startNamesrv(t)
	br, ga := startBroker(t, ns.addr, brokerKV...)
	return &cluster{ns: ns, broker: br, grpcAddr: ga}
}

func startNamesrv(t *testing.T) *proc {
	t.Helper()
	dir := t.TempDir()
	ns := start(t, namesrvReady, nil, "mqnamesrv", "-p", "listenPort=0",
		"-p", "kvConfigPath="+filepath.Join(dir, "kvConfig.json"), "-p", "logDir="+filepath.Join(dir, "logs"))
	_, port, err := net.SplitHostPort(ns.addr)
	if err != nil {
		t.Fatal(err)
	}
	ns.addr = net.JoinHostPort("127.0.0.1", port)
	return ns
}

// startBroker runs a broker serving gRPC on a free port; it returns the
// broker and its gRPC address.
func startBroker(t *testing.T, namesrv string, brokerKV ...string) (*proc, string) {
	t.Helper()
	dir := t.TempDir()
	args := []string{
		"-n", namesrv, "--enable-proxy",
		"-p", "listenPort=0", "-p", "grpcServerPort=0", "-p", "httpGatewayPort=0", "-p", "brokerIP1=127.0.0.1",
		"-p", "storePathRootDir=" + filepath.Join(dir, "store"), "-p", "logDir=" + filepath.Join(dir, "logs"),
		"-p", "mappedFileSizeCommitLog=" + fmt.Sprint(16<<20), "-p", "maxHashSlotNum=10000", "-p", "maxIndexNum=40000",
	}
	for _, kv := range brokerKV {
		args = append(args, "-p", kv)
	}
	br := start(t, brokerReady, map[string]*regexp.Regexp{"grpc": grpcLine}, "mqbroker", args...)
	ga := br.extra["grpc"]
	if ga == "" {
		t.Fatalf("broker printed no gRPC address:\n%s", br.out.String())
	}
	return br, ga
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
