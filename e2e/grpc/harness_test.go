// Package grpc tests the broker's RocketMQ 5 gRPC service with the
// official clients, unchanged: github.com/apache/rocketmq-clients/golang/v5
// v5.1.2 and, for mixed-protocol checks, rocketmq-client-go/v2 v2.1.2. It
// is its own module because the broker links the protocol types of
// golang/v5 v5.1.4, and two generated copies of package
// apache.rocketmq.v2 must not meet in one binary. It starts real mqnamesrv
// and mqbroker processes on free loopback ports, as ../harness_test.go does.
package grpc

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"
	rmq "github.com/apache/rocketmq-clients/golang/v5"
	"github.com/mqops/mqops/e2e/e2ed"
)

var binDir string

// The commands the tests run, built in the main module (which links
// golang/v5 v5.1.4's protocol), two directories up.
var commands = []string{"./broker/cmd/mqnamesrv", "./broker/cmd/mqbroker", "./mqadmin/cmd/mqadmin"}

// TestMain builds the daemons (with the race detector when
// MQOPS_E2E_RACE=1) or uses the ones in $MQOPS_E2E_BIN, as ../ does.
func TestMain(m *testing.M) {
	rlog.SetLogLevel("error")
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
	dir, cleanup, err := e2ed.Commands("../..", commands)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	binDir = dir
	return m.Run()
}

// proc is one daemon started by a test: an e2ed.Proc under the names the
// tests use.
type proc struct {
	d     *e2ed.Proc
	t     *testing.T
	name  string
	addr  string            // from the ready line
	extra map[string]string // from the lines before it
	out   *lockedBuf
}

type lockedBuf = e2ed.LockedBuf

var (
	namesrvReady = e2ed.NamesrvReady
	brokerReady  = e2ed.BrokerReady
	grpcLine     = regexp.MustCompile(`gRPC service \(RocketMQ 5 clients\) listens on (\S+),`)
)

// start runs a daemon and waits for its ready line; lines matching
// extra's patterns are captured too (first group, by name). The test's
// clean-up stops it.
func start(t *testing.T, ready *regexp.Regexp, extra map[string]*regexp.Regexp, name string, args ...string) *proc {
	t.Helper()
	d := e2ed.Start(t, ready, extra, name, filepath.Join(binDir, name), args...)
	p := &proc{d: d, t: t, name: name, addr: d.Addr, extra: d.Extra, out: d.Out}
	t.Cleanup(p.stop)
	return p
}

// stop sends SIGINT and waits for a clean exit, unless p has exited.
func (p *proc) stop() {
	if p.d.Exited() {
		return
	}
	if err := p.d.Stop(); err != nil {
		p.t.Errorf("%s %v", p.name, err)
	}
}

// kill sends SIGKILL, as in a crash.
func (p *proc) kill() { p.d.Kill() }

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
	ns := start(t, namesrvReady, nil, "mqnamesrv", e2ed.NamesrvArgs(t.TempDir())...)
	ns.addr = e2ed.Loopback(t, ns.addr)
	return ns
}

// startBroker runs a broker serving gRPC on a free port; it returns the
// broker and its gRPC address.
func startBroker(t *testing.T, namesrv string, brokerKV ...string) (*proc, string) {
	t.Helper()
	return startGRPCBroker(t, namesrv, t.TempDir(), brokerKV...)
}

// startGRPCBroker is startBroker with its data in dir.
func startGRPCBroker(t *testing.T, namesrv, dir string, brokerKV ...string) (*proc, string) {
	t.Helper()
	args := append([]string{"--enable-proxy"}, e2ed.BrokerArgs(dir, namesrv, brokerKV...)...)
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
	e2ed.WaitFor(t, timeout, what, cond)
}
