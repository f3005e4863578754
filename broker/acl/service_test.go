package acl

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

func TestWarnIfOpen(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	WarnIfOpen(log, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 10911}, "the broker")
	if buf.Len() != 0 {
		t.Fatalf("loopback warned: %s", buf.String())
	}
	WarnIfOpen(log, &net.TCPAddr{IP: net.IPv4zero, Port: 10911}, "the broker")
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "aclEnable=false") {
		t.Fatalf("no warning: %s", buf.String())
	}
}

func TestConfDir(t *testing.T) {
	t.Setenv("ROCKETMQ_HOME", "/opt/rocketmq")
	if d, err := ConfDir("/etc/mq/broker.conf"); err != nil || d != "/opt/rocketmq/conf" {
		t.Fatalf("%q %v", d, err)
	}
	t.Setenv("ROCKETMQ_HOME", "")
	if d, err := ConfDir("/etc/mq/broker.conf"); err != nil || d != "/etc/mq" {
		t.Fatalf("%q %v", d, err)
	}
	if _, err := ConfDir(""); err == nil {
		t.Fatal("no place for the rules accepted")
	}
}

// Start wires it together: rules from ROCKETMQ_HOME, acl.log, the poll.
func TestStartFromRocketMQHome(t *testing.T) {
	home := t.TempDir()
	write(t, filepath.Join(home, "conf", "plain_acl.yml"), "accounts:\n- accessKey: producerA\n  secretKey: secretA1\n")
	write(t, filepath.Join(home, "conf", "acl", "team.yml"), "accounts:\n- accessKey: teamBBBB\n  secretKey: secretB1\n  admin: true\n")
	t.Setenv("ROCKETMQ_HOME", home)
	logDir := t.TempDir()
	s, err := Start(Options{LogDir: logDir, Table: BrokerTable, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := len(s.Gate.Rules().Accounts); n != 2 {
		t.Fatalf("%d accounts", n)
	}
	// An edit is picked up by the poll.
	write(t, filepath.Join(home, "conf", "acl", "team.yml"), "accounts: []\n")
	deadline := time.Now().Add(10 * time.Second)
	for len(s.Gate.Rules().Accounts) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("edit not picked up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c := cmd(17, "")
	wire.Sign(c, "producerA", "secretA1", "")
	if d := s.Gate.Check(local, c); d.OK {
		t.Fatal("admin code allowed")
	}
	log, _ := os.ReadFile(filepath.Join(logDir, "acl.log"))
	if !strings.Contains(string(log), "[ACL] loaded") {
		t.Fatalf("acl.log: %s", log)
	}
}
