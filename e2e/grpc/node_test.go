package grpc

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// nodeDir holds the Node.js tests: package.json pins
// rocketmq-client-nodejs 1.0.8, package-lock.json fixes the rest, and
// `npm ci` (make test-e2e-grpc) installs node_modules.
const nodeDir = "../node5"

// nodeTopics are the topics the Node.js tests use, with their
// message.type; they must match topics in ../node5/helpers.js.
var nodeTopics = []struct{ name, typ string }{
	{"NodeNormal", "NORMAL"},
	{"NodeFifo", "FIFO"},
	{"NodeDelay", "DELAY"},
	{"NodeTx", "TRANSACTION"},
	{"NodeSimple", "NORMAL"},
	{"NodePush", "NORMAL"},
	{"NodePushRetry", "NORMAL"},
	{"NodePushFifo", "FIFO"},
}

// nodeSummary is node --test's closing count of one kind of result.
var nodeSummary = regexp.MustCompile(`(?m)^# (tests|pass|fail|cancelled) (\d+)$`)

// TestNodeClient runs the official Node.js client, rocketmq-client-nodejs
// 1.0.8, unchanged, under `node --test` (../node5/test) against a real
// name server and broker: producer (normal, FIFO, delay, transactions
// with check-back, shutdown), SimpleConsumer and PushConsumer. Node's
// output is printed when it fails. Without node_modules the test fails,
// unless MQOPS_SKIP_NODE=1 says to skip it.
func TestNodeClient(t *testing.T) {
	dir, err := filepath.Abs(nodeDir)
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "rocketmq-client-nodejs", "package.json"))
	}
	if err != nil {
		if os.Getenv("MQOPS_SKIP_NODE") == "1" {
			t.Skipf("MQOPS_SKIP_NODE=1 and the Node.js client is not installed (%v)", err)
		}
		t.Fatalf("the Node.js client is not installed (%v): run `npm ci` in e2e/node5 (make test-e2e-grpc does), or set MQOPS_SKIP_NODE=1 to skip", err)
	}

	c := startCluster(t, append([]string{"transactionTimeOut=1000", "transactionCheckInterval=300"}, popKV...)...)
	for _, tp := range nodeTopics {
		typedTopic(t, c, tp.name, tp.typ, 4)
	}
	// The FIFO push consumer's group: orderly, 3 delivery attempts, then
	// the dead-letter queue.
	policy := `{"type":"EXPONENTIAL","exponentialRetryPolicy":{"initial":1000,"max":10000,"multiplier":2}}`
	if out, err := mqadmin(t, c, "updateSubGroup", "-b", c.broker.addr, "-g", "GID_NODE_PUSH_FIFO", "-r", "2", "-o", "true", "-p", policy); err != nil {
		t.Fatalf("updateSubGroup: %v\n%s", err, out)
	}

	// The client logs to $HOME/logs/rocketmq.
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// --test-force-exit: the client's consume services open loggers
	// (egg-logger, with a flush timer) that shutdown() never closes.
	cmd := exec.CommandContext(ctx, node, "--test", "--test-force-exit", "--test-concurrency=4")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+home, "MQ_GRPC_ENDPOINT="+c.grpcAddr)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	counts := map[string]string{}
	for _, m := range nodeSummary.FindAllStringSubmatch(out.String(), -1) {
		counts[m[1]] = m[2]
	}
	if runErr != nil || counts["fail"] != "0" || counts["cancelled"] != "0" || counts["pass"] == "" || counts["pass"] != counts["tests"] {
		clientLog, _ := os.ReadFile(filepath.Join(home, "logs", "rocketmq", "node-tests.log"))
		t.Fatalf("node --test: %v, summary %v\n%s\n--- client log (tail) ---\n%s", runErr, counts, out.String(), tail(clientLog, 8000))
	}
	t.Logf("node --test: %s of %s tests passed", counts["pass"], counts["tests"])

	// The push consumers acked (or dead-lettered) everything they
	// consumed: each group's committed offsets reached the end of its
	// topic's queues.
	for _, g := range []struct{ group, topic string }{{"GID_NODE_PUSH", "NodePush"}, {"GID_NODE_PUSH_RETRY", "NodePushRetry"}, {"GID_NODE_PUSH_FIFO", "NodePushFifo"}} {
		out, err := mqadmin(t, c, "group", "progress", "-g", g.group, "-t", g.topic, "-o", "json")
		if err != nil {
			t.Fatalf("group progress %s: %v\n%s", g.group, err, out)
		}
		var p struct {
			DiffTotal int64 `json:"diffTotal"`
			Queues    []struct {
				BrokerOffset int64 `json:"brokerOffset"`
			} `json:"queues"`
		}
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatalf("group progress %s json: %v\n%s", g.group, err, out)
		}
		var sent int64
		for _, q := range p.Queues {
			sent += q.BrokerOffset
		}
		if sent == 0 || p.DiffTotal != 0 {
			t.Errorf("group %s on %s: %d messages, %d not acked\n%s", g.group, g.topic, sent, p.DiffTotal, out)
		}
	}
}

// tail is the last n bytes of b.
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
