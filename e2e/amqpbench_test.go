package e2e

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// make bench-amqp's script in its smoke form (BENCH_DURATION=1s), on the
// commands under test: it starts its own name server, SYNC_FLUSH broker
// with its own gateway (enableAmqpGateway), mqamqp, and a private
// RabbitMQ node when rabbitmq-server is installed (MQOPS_REQUIRE_RABBITMQ=1 makes its absence a failure). Every
// message a publish row counts was confirmed and the consume row got the
// whole backlog (mqbench fails otherwise), so each row must show a rate
// for each side and a verdict; the figures themselves are not compared.
func TestAMQPBenchScript(t *testing.T) {
	t.Parallel()
	rabbit := true
	if _, err := os.Stat("/usr/lib/rabbitmq/bin/rabbitmq-server"); err != nil {
		if os.Getenv("MQOPS_REQUIRE_RABBITMQ") == "1" {
			t.Fatalf("rabbitmq-server not installed: %v", err)
		}
		rabbit = false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "../scripts/bench-amqp.sh", binDir)
	cmd.Env = append(os.Environ(), "BENCH_DURATION=1s", "BENCH_AMQP_ROWS=confirm-1 confirm-16 consume-p500")
	// On a timeout, TERM lets the script stop what it started.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bench-amqp.sh: %v\n%s", err, out)
	}
	rate := `[0-9]*[1-9][0-9]* \(`
	side := rate + `[^)]*\)\s+`
	others := side + side
	// mqamqp's ratio and the broker's own gateway's (enableAmqpGateway).
	verdict := `[0-9.]+x / [0-9.]+x of rabbit-(quorum|classic)\s+>= [0-9.]+x\s+(PASS|short) / (PASS|short)$`
	if !rabbit {
		others = `skipped\s+skipped\s+`
		verdict = `-\s+>= [0-9.]+x\s+no RabbitMQ$`
	}
	for _, row := range []string{"confirm-1", "confirm-16", "async-4x500", "consume-p500"} {
		re := regexp.MustCompile(`(?m)^` + row + `\s+` + side + side + others + verdict)
		if !re.Match(out) {
			t.Errorf("no table row %s matching %s", row, re)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("output:\n%s", strings.TrimSpace(string(out)))
	}
}
