package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// Differential mode: the AMQP acceptance tests run unchanged against a
// private node of Debian's rabbitmq-server (3.10 on Erlang 25), so that
// what they assert is RabbitMQ's behaviour and not only ours.

// rabbitNode is a RabbitMQ node started by a test: its own temp dir,
// loopback ports, Erlang cookie and epmd, gone when the test ends.
type rabbitNode struct {
	t    *testing.T
	dir  string
	addr string   // AMQP listener, host:port
	env  []string // what rabbitmq-server and rabbitmqctl run with
	bin  string   // the directory of rabbitmq-server and rabbitmqctl
	n    atomic.Int32
}

// rabbitBinDir is where Debian's package puts the scripts that run as
// the calling user (/usr/sbin's wrappers switch to the rabbitmq user).
func rabbitBinDir() (string, bool) {
	for _, d := range []string{"/usr/lib/rabbitmq/bin", "/usr/sbin"} {
		if _, err := os.Stat(filepath.Join(d, "rabbitmq-server")); err == nil {
			return d, true
		}
	}
	return "", false
}

// startRabbitMQ starts a RabbitMQ node on free loopback ports and waits
// until it answers an AMQP handshake (guest/guest from localhost). It
// skips when rabbitmq-server is not installed, unless
// MQOPS_REQUIRE_RABBITMQ=1 (make test-amqp-rabbitmq).
// Lines of conf are added to its rabbitmq.conf.
func startRabbitMQ(t *testing.T, conf ...string) *rabbitNode {
	t.Helper()
	bin, ok := rabbitBinDir()
	if !ok {
		if os.Getenv("MQOPS_REQUIRE_RABBITMQ") == "1" {
			t.Fatal("rabbitmq-server is not installed (apt-get install rabbitmq-server, or make deps)")
		}
		t.Skip("rabbitmq-server is not installed")
	}
	epmdBin, err := exec.LookPath("epmd")
	if err != nil {
		t.Fatalf("rabbitmq-server is installed but epmd is not on PATH: %v", err)
	}
	dir := t.TempDir()
	ports := freePorts(t, 4)
	amqpPort, distPort, epmdPort, ctlPort := ports[0], ports[1], ports[2], ports[3]
	home := filepath.Join(dir, "home")
	for _, d := range []string{home, filepath.Join(dir, "mnesia"), filepath.Join(dir, "log")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	// The cookie must not be readable by others, or Erlang refuses it.
	if err := os.WriteFile(filepath.Join(home, ".erlang.cookie"), []byte(strings.ToUpper(hex.EncodeToString(rnd[:]))), 0o400); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		// guest may log in from loopback only: RabbitMQ's default, spelled out.
		"rabbitmq.conf":   "loopback_users.guest = true\nlog.file.level = info\n" + strings.Join(append(conf, ""), "\n"),
		"enabled_plugins": "[].\n",
		// Read instead of /etc/rabbitmq/rabbitmq-env.conf.
		"rabbitmq-env.conf": "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	node := "rabbit-" + hex.EncodeToString(rnd[:4]) + "@localhost"
	env := append(os.Environ(),
		"HOME="+home,
		"RABBITMQ_NODENAME="+node,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(amqpPort),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(distPort),
		"ERL_EPMD_PORT="+strconv.Itoa(epmdPort),
		"RABBITMQ_CTL_DIST_PORT_MIN="+strconv.Itoa(ctlPort),
		"RABBITMQ_CTL_DIST_PORT_MAX="+strconv.Itoa(ctlPort),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "rabbitmq.pid"),
		// Our own epmd (below) instead of a daemonised one that would
		// outlive the test; distribution on loopback only.
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}",
	)
	r := &rabbitNode{t: t, dir: dir, addr: "127.0.0.1:" + strconv.Itoa(amqpPort), env: env, bin: bin}

	epmd := exec.Command(epmdBin, "-port", strconv.Itoa(epmdPort), "-address", "127.0.0.1")
	epmd.Env = env
	epmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := epmd.Start(); err != nil {
		t.Fatalf("epmd: %v", err)
	}
	t.Cleanup(func() { killGroup(epmd) })

	out, err := os.Create(filepath.Join(dir, "server.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	// rabbitmq-server is a shell script that execs erl; beam starts
	// erl_child_setup and inet_gethost, which exit with it. A process
	// group of its own lets the clean-up kill whatever is left.
	srv := exec.Command(filepath.Join(bin, "rabbitmq-server"))
	srv.Dir = dir
	srv.Env = env
	srv.Stdout, srv.Stderr = out, out
	srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t0 := time.Now()
	if err := srv.Start(); err != nil {
		t.Fatalf("rabbitmq-server: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	// SIGTERM to the script stops the node and waits for it (its trap),
	// so that nothing is left unreaped; SIGKILL to the group if that
	// hangs.
	t.Cleanup(func() {
		t0 := time.Now()
		_ = srv.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Logf("rabbitmq-server did not stop within 30 s of SIGTERM: killed")
		}
		_ = syscall.Kill(-srv.Process.Pid, syscall.SIGKILL)
		t.Logf("RabbitMQ node stopped in %v", time.Since(t0).Round(time.Millisecond))
	})

	deadline := time.Now().Add(120 * time.Second)
	for {
		conn, err := rmq.Dial(r.URL("/"))
		if err == nil {
			conn.Close()
			break
		}
		select {
		case werr := <-exited:
			exited <- werr
			t.Fatalf("rabbitmq-server exited (%v) before answering on %s:\n%s", werr, r.addr, r.logTail())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("rabbitmq-server did not answer an AMQP handshake on %s within 120 s (%v):\n%s", r.addr, err, r.logTail())
		}
	}
	t.Logf("RabbitMQ node %s answered on %s after %v", node, r.addr, time.Since(t0).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("RabbitMQ log:\n%s", r.logTail())
		}
	})
	return r
}

// killGroup kills a process started with Setpgid and its group.
func killGroup(c *exec.Cmd) {
	_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	_ = c.Wait()
}

// logTail is the end of the node's stdout and log file, for failures.
func (r *rabbitNode) logTail() string {
	var b strings.Builder
	logs, _ := filepath.Glob(filepath.Join(r.dir, "log", "*.log"))
	for _, f := range append([]string{filepath.Join(r.dir, "server.out")}, logs...) {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if len(data) > 8000 {
			data = data[len(data)-8000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", filepath.Base(f), data)
	}
	return b.String()
}

// URL is the amqp:// URL of vhost for guest/guest.
func (r *rabbitNode) URL(vhost string) string {
	return "amqp://guest:guest@" + r.addr + "/" + url.PathEscape(vhost)
}

// ctl runs rabbitmqctl against the node.
func (r *rabbitNode) ctl(t *testing.T, args ...string) string {
	t.Helper()
	c := exec.Command(filepath.Join(r.bin, "rabbitmqctl"), args...)
	c.Dir = r.dir
	c.Env = r.env
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var vhostUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// vhost adds a fresh vhost that guest may use fully, so that tests on
// one node do not see each other's queues and exchanges.
func (r *rabbitNode) vhost(t *testing.T) string {
	t.Helper()
	v := fmt.Sprintf("t%d-%s", r.n.Add(1), vhostUnsafe.ReplaceAllString(t.Name(), "_"))
	r.ctl(t, "add_vhost", v)
	r.ctl(t, "set_permissions", "-p", v, "guest", ".*", ".*", ".*")
	return v
}

// target is a fresh vhost of the node as a tutorial's server.
func (r *rabbitNode) target(t *testing.T) amqpTarget {
	t.Helper()
	return amqpTarget{addr: r.addr, vhost: r.vhost(t)}
}

// The tutorials of e2e/amqptutorial_test.go, each in a vhost of its own on
// one node; TestAMQPTutorial* run the same bodies against our gateway.
func TestRabbitMQTutorials(t *testing.T) {
	r := startRabbitMQ(t)
	for _, tu := range amqpTutorials {
		t.Run(tu.name, func(t *testing.T) { tu.run(t, r.target(t)) })
	}
	t.Run("ConsumeSemantics", func(t *testing.T) { consumeSemantics(t, r.target(t)) })
	t.Run("MaxLengthBytes", func(t *testing.T) { maxLengthBytesCases(t, r.target(t)) })
	t.Run("Transactions", func(t *testing.T) { txSemantics(t, r.target(t)) })
}

// The raw-frame conformance cases of TestAMQPGatewayRawFrames and the
// logins of TestAMQPGatewayLogin.
func TestRabbitMQConformance(t *testing.T) {
	// A handshake timeout of 3 s leaves amqp091-go's handshakes room on a
	// loaded machine; the raw cases only need one that is not long.
	r := startRabbitMQ(t, "max_message_size = 1000", "handshake_timeout = 3000")
	t.Run("RawFrames", func(t *testing.T) { rawFrameCases(t, r.addr) })
	t.Run("Login", func(t *testing.T) { loginCases(t, r.addr) })
}

// The Node.js amqplib tutorial tests (tests/amqp-node, run with node
// --test; AMQP_URL is their only input) against RabbitMQ.
func TestRabbitMQNodeTutorials(t *testing.T) {
	dir := amqpNodeTests(t)
	r := startRabbitMQ(t)
	runNodeTutorials(t, dir, r.URL(r.vhost(t)))
}
