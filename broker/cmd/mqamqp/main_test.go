package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqops/mqops/wire/amqp"
)

// syncBuffer lets the test read what run writes from another goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRefusesWithoutNamesrv(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-p", "logDir=" + t.TempDir()}, &stdout, &stderr, nil); code != 1 || !strings.Contains(stderr.String(), "namesrvAddr is required") {
		t.Fatalf("code %d, stderr %q", code, stderr.String())
	}
}

// The daemon boots from a file with -p overrides, reports unknown keys,
// speaks AMQP on its port and stops cleanly (draining) on a signal.
func TestBootServeAndStop(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "amqp.conf")
	if err := os.WriteFile(conf, []byte("listenPort=5672\nheartbeat=30\ndrainTimeout=1000\nnoSuchKey=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	sigs := make(chan os.Signal, 1)
	code := make(chan int, 1)
	go func() {
		code <- run([]string{"-c", conf, "-p", "listenPort=0", "-p", "bindAddress=127.0.0.1", "-p", "namesrvAddr=127.0.0.1:1",
			"-p", "logDir=" + filepath.Join(dir, "logs")}, &stdout, &stderr, sigs)
	}()
	boot := regexp.MustCompile(`The AMQP gateway boot success\. address (\S+),`)
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; {
		select {
		case c := <-code:
			t.Fatalf("exited %d early; stderr:\n%s", c, stderr.String())
		default:
		}
		if m := boot.FindStringSubmatch(stdout.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no boot line; stdout %q stderr %q", stdout.String(), stderr.String())
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !strings.Contains(stderr.String(), `unknown key "noSuchKey"`) {
		t.Fatalf("stderr lacks the unknown key:\n%s", stderr.String())
	}
	// Every gateway key is implemented now (drainTimeout drains).
	if strings.Contains(stderr.String(), "no effect") {
		t.Fatalf("stderr reports a key with no effect:\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), "tx.") {
		t.Fatalf("stderr still warns about transactions:\n%s", stderr.String())
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write([]byte("HTTP/1.1")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 8)
	if _, err := io.ReadFull(nc, got); err != nil || string(got) != string(amqp.ProtocolHeader[:]) {
		t.Fatalf("answer to a bad header: % x %v", got, err)
	}
	sigs <- syscall.SIGTERM
	if c := <-code; c != 0 || !strings.Contains(stdout.String(), "The AMQP gateway shut down cleanly.") {
		t.Fatalf("exit %d, stdout %q", c, stdout.String())
	}
}
