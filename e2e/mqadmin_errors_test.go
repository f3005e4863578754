package e2e

import (
	"strings"
	"testing"
)

// TestMqadminMistakes: operator mistakes end in one clear line and a
// non-zero exit, and nothing is created by them.
func TestMqadminMistakes(t *testing.T) {
	c := startCluster(t)
	ns := c.ns.addr
	cli(t, ns, "topic", "create", "-t", "Typos", "-b", c.broker.addr, "--queues", "1")
	cli(t, ns, "message", "send", "-t", "Typos", "--body", "untagged")
	cli(t, ns, "message", "send", "-t", "Typos", "--body", "tagged", "--tags", "A")

	for _, args := range [][]string{{"topic", "lst"}, {"broker", "config", "gte"}} {
		if line := cliFail(t, ns, args...); !strings.Contains(line, `unknown command "`+args[len(args)-1]+`"`) {
			t.Fatalf("mqadmin %v: %s", args, line)
		}
	}
	if line := cliFail(t, ns, "message", "query", "-t", "Typos", "--key", "k", "--max", "-1"); !strings.Contains(line, "--max must be at least 1") {
		t.Fatalf("negative --max: %s", line)
	}
	// "*" is every message, tagged or not.
	if got := tableOf(t, cli(t, ns, "message", "query", "-t", "Typos", "--tag", "*")); len(got.rows) != 2 {
		t.Fatalf("--tag '*' found %d messages, want 2", len(got.rows))
	}
	// Resetting a group that does not exist must not create it.
	if line := cliFail(t, ns, "group", "reset-offset", "-g", "NoSuchGroup", "-t", "Typos", "--to-latest"); !strings.Contains(line, "does not exist") {
		t.Fatalf("reset of an unknown group: %s", line)
	}
	if out := cli(t, ns, "group", "backlog"); strings.Contains(out, "NoSuchGroup") {
		t.Fatalf("a failed reset created the group:\n%s", out)
	}
	// Settings that wait for a restart say so, and config get shows what
	// is in force; retention settings apply at once.
	out := cli(t, ns, "broker", "config", "set", "-b", c.broker.addr, "maxMessageSize=65536", "fileReservedTime=24")
	if row := tableOf(t, out).one(t, "Broker Addr", c.broker.addr); !strings.Contains(row["Note"], "after a restart: maxMessageSize") || strings.Contains(row["Note"], "fileReservedTime") {
		t.Fatalf("config set note: %v", row)
	}
	cfg := brokerConfig(t, c.broker.addr)
	if cfg["maxMessageSize"] != "4194304" || cfg["fileReservedTime"] != "24" {
		t.Fatalf("config in force: maxMessageSize=%s fileReservedTime=%s", cfg["maxMessageSize"], cfg["fileReservedTime"])
	}
}
