// Package e2e starts real mqnamesrv and mqbroker processes on random ports
// and drives them with the official RocketMQ Go client and raw frames.
package e2e

import (
	"debug/buildinfo"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"
	"github.com/mqops/mqops/e2e/e2ed"
)

var binDir string

// The daemons and CLIs the tests run.
var commands = []string{"./broker/cmd/mqnamesrv", "./broker/cmd/mqbroker", "./broker/cmd/mqamqp", "./broker/cmd/mqnsaddr", "./broker/cmd/mqcontroller", "./mqadmin/cmd/mqadmin", "./zabbix/cmd/mqops-zbx", "./broker/cmd/mqbench"}

// TestMain builds the commands into a temporary directory, with the race
// detector when MQOPS_E2E_RACE=1, or uses the ones already built in
// $MQOPS_E2E_BIN (make test builds them once for every suite; a relative
// path is relative to e2e/). A race-built process stops at its first data
// race (e2ed.Commands sets GORACE); procs and runCLI also fail the test
// whose process printed a race report.
func TestMain(m *testing.M) {
	rlog.SetLogLevel("error")
	dir, cleanup, err := e2ed.Commands("..", commands)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// raceBuilt reports whether the daemons under test carry the race
// detector (MQOPS_E2E_RACE=1, or a race build in $MQOPS_E2E_BIN), whose
// shadow memory multiplies a process's footprint.
func raceBuilt(t *testing.T) bool {
	t.Helper()
	bi, err := buildinfo.ReadFile(filepath.Join(binDir, "mqbroker"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

// raceReport is the start of a race detector report, on stderr.
const raceReport = e2ed.RaceReport

// proc is one daemon started by a test: an e2ed.Proc under the names the
// tests use.
type proc struct {
	d    *e2ed.Proc
	t    *testing.T
	name string
	cmd  *exec.Cmd
	addr string
	out  *lockedBuf
}

type lockedBuf = e2ed.LockedBuf

var (
	namesrvReady = e2ed.NamesrvReady
	brokerReady  = e2ed.BrokerReady
)

// start runs a daemon and waits until it prints its ready line.
func start(t *testing.T, ready *regexp.Regexp, name string, args ...string) *proc {
	t.Helper()
	return startExe(t, ready, name, filepath.Join(binDir, name), args...)
}

// startExe is start for any executable; name is what messages call it.
// The test's clean-up kills it.
func startExe(t *testing.T, ready *regexp.Regexp, name, exe string, args ...string) *proc {
	t.Helper()
	d := e2ed.Start(t, ready, nil, name, exe, args...)
	p := &proc{d: d, t: t, name: name, cmd: d.Cmd, addr: d.Addr, out: d.Out}
	t.Cleanup(p.kill)
	return p
}

// stop sends SIGINT, as Ctrl-C does, and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	if err := p.d.Stop(); err != nil {
		p.t.Fatalf("process %v", err)
	}
}

// kill sends SIGKILL: no flush, no clean-up, as in a crash.
func (p *proc) kill() { p.d.Kill() }

// startNamesrv runs a name server on a random port.
func startNamesrv(t *testing.T, extra ...string) *proc {
	p := start(t, namesrvReady, "mqnamesrv", e2ed.NamesrvArgs(t.TempDir(), extra...)...)
	p.addr = e2ed.Loopback(t, p.addr)
	return p
}

// brokerDir is a broker's data directory, kept across restarts.
type brokerDir string

func newBrokerDir(t *testing.T) brokerDir { return brokerDir(t.TempDir()) }

// startBroker runs a broker registered with namesrv; extra are key=value
// config overrides. Unless extra sets listenPort, its remoting and HA
// ports are leased for the test (freePorts), so that it can be killed and
// started again on them (samePorts).
func startBroker(t *testing.T, dir brokerDir, namesrv string, extra ...string) *proc {
	if !slices.ContainsFunc(extra, func(kv string) bool { return strings.HasPrefix(kv, "listenPort=") }) {
		ports := freePorts(t, 2)
		extra = append([]string{fmt.Sprintf("listenPort=%d", ports[0]), fmt.Sprintf("haListenPort=%d", ports[1])}, extra...)
	}
	return start(t, brokerReady, "mqbroker", brokerArgs(dir, namesrv, extra...)...)
}

// samePorts are the config overrides that start a broker again on p's
// remoting and HA ports: still leased when startBroker chose them. A
// broker started on listenPort=0 gets its remoting port back, which the
// kernel may have given away meanwhile, and any HA port.
func (p *proc) samePorts() []string {
	listen, ha := "", ""
	for _, a := range p.cmd.Args {
		if v, ok := strings.CutPrefix(a, "listenPort="); ok {
			listen = v
		} else if v, ok := strings.CutPrefix(a, "haListenPort="); ok {
			ha = v
		}
	}
	if listen == "" || listen == "0" {
		_, port, err := net.SplitHostPort(p.addr)
		if err != nil {
			p.t.Fatal(err)
		}
		return []string{"listenPort=" + port, "haListenPort=0"}
	}
	if ha == "" {
		ha = "0"
	}
	return []string{"listenPort=" + listen, "haListenPort=" + ha}
}

// brokerArgs is startBroker's command line.
func brokerArgs(dir brokerDir, namesrv string, extra ...string) []string {
	return e2ed.BrokerArgs(string(dir), namesrv, extra...)
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
	e2ed.WaitFor(t, timeout, what, cond)
}

// freePorts reserves n ports until t ends (e2ed.LeasePorts): Raft peers
// must know each other's addresses before any of them starts, and a
// daemon killed and started again must find its ports free.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	return e2ed.LeasePorts(t, n)
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

// restartBroker starts c's broker again on the ports it had, with the
// same data directory.
func restartBroker(t *testing.T, c *cluster, extra ...string) *proc {
	return startBroker(t, c.dir, c.ns.addr, append(slices.Clone(extra), c.broker.samePorts()...)...)
}
