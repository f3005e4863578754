package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// amqpNodeDir holds the RabbitMQ tutorials written for the Node.js client
// amqplib: package.json pins amqplib 2.3.1, package-lock.json fixes it,
// and `npm ci` there (make amqp-node-deps) installs node_modules.
const amqpNodeDir = "../tests/amqp-node"

// nodeTestSummary is a closing count of node --test's TAP reporter.
var nodeTestSummary = regexp.MustCompile(`(?m)^# (tests|pass|fail|cancelled|skipped) (\d+)$`)

// TestAMQPNodeTutorials runs the RabbitMQ tutorials 1–7 with amqplib
// 2.3.1, unchanged, under `node --test` (tests/amqp-node/test) against
// real mqnamesrv + mqbroker + mqamqp; AMQP_URL is their only input.
// Node's output is printed when a test fails. Without node_modules the
// test skips, unless MQOPS_REQUIRE_NODE is set (then it fails).
func TestAMQPNodeTutorials(t *testing.T) {
	dir := amqpNodeTests(t)
	_, gw := amqpStack(t)
	runNodeTutorials(t, dir, amqpURL(gw, "guest:guest", ""))
}

// amqpNodeTests is tests/amqp-node with amqplib installed; it skips the
// test when amqplib is missing, unless MQOPS_REQUIRE_NODE is set.
func amqpNodeTests(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(amqpNodeDir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "amqplib", "package.json"))
	}
	if err != nil {
		if os.Getenv("MQOPS_REQUIRE_NODE") == "" {
			t.Skipf("amqplib is not installed (%v): run `make amqp-node-deps`; MQOPS_REQUIRE_NODE=1 turns this skip into a failure", err)
		}
		t.Fatalf("amqplib is not installed (%v): run `make amqp-node-deps`", err)
	}
	return dir
}

// runNodeTutorials runs tests/amqp-node's tests against url and fails
// with node's output unless every test passed and none was skipped.
func runNodeTutorials(t *testing.T, dir, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// node finds test/*.test.js itself (a directory argument is read
	// differently by node 20 and 22). One file at a time: the tutorials
	// use fixed queue and exchange names, as they would on a shared
	// RabbitMQ. --test-force-exit: a failed test must not leave node
	// waiting on an open socket.
	cmd := exec.CommandContext(ctx, "node", "--test", "--test-concurrency=1", "--test-force-exit", "--test-reporter=tap")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "AMQP_URL="+url)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	counts := map[string]string{}
	for _, m := range nodeTestSummary.FindAllStringSubmatch(out.String(), -1) {
		counts[m[1]] = m[2]
	}
	if runErr != nil || counts["fail"] != "0" || counts["cancelled"] != "0" || counts["skipped"] != "0" || counts["pass"] == "" || counts["pass"] == "0" {
		t.Fatalf("node --test against %s: %v, summary %v\n%s", url, runErr, counts, out.String())
	}
	t.Logf("node --test against %s: %s of %s tests passed", url, counts["pass"], counts["tests"])
}
