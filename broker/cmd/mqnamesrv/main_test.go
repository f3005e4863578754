package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
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

func TestBootServeAndStop(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "namesrv.conf")
	if err := os.WriteFile(conf, []byte("listenPort=9876\norderMessageEnable=true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	sigs := make(chan os.Signal, 1)
	code := make(chan int, 1)
	go func() {
		code <- run([]string{"-c", conf,
			"-p", "listenPort=0",
			"-p", "kvConfigPath=" + filepath.Join(dir, "kvConfig.json"),
			"-p", "logDir=" + filepath.Join(dir, "logs")}, &stdout, &stderr, sigs)
	}()

	const boot = "The Name Server boot success. serializeType=JSON, address "
	var addr string
	deadline := time.Now().Add(5 * time.Second)
	for addr == "" {
		select {
		case c := <-code:
			t.Fatalf("exited %d early; stderr:\n%s", c, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no boot line; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
		if i := strings.Index(stdout.String(), boot); i >= 0 {
			line, _, _ := strings.Cut(stdout.String()[i+len(boot):], "\n")
			addr = line
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.HasSuffix(addr, ":0") || strings.HasSuffix(addr, ":9876") {
		t.Fatalf("boot line shows %q, not the bound random port", addr)
	}
	port := addr[strings.LastIndexByte(addr, ':'):]

	cl := remoting.NewClient(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer cl.Close()
	resp, err := cl.Invoke("127.0.0.1"+port, wire.NewRequest(wire.GetNamesrvConfig, nil, nil), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if body := string(resp.Body); !strings.Contains(body, "orderMessageEnable=true") || !strings.Contains(body, "listenPort="+port[1:]) {
		t.Fatalf("config of the running server:\n%s", body)
	}

	sigs <- syscall.SIGTERM
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit code %d; stderr:\n%s", c, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not stop on SIGTERM")
	}
	if !strings.Contains(stdout.String(), "shut down cleanly") {
		t.Fatalf("stdout:\n%s", stdout.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "logs", "namesrv.log")); err != nil {
		t.Fatalf("log file: %v", err)
	}
}

func TestConfigErrorRefusesToStart(t *testing.T) {
	var stdout, stderr syncBuffer
	c := run([]string{"-p", "listenPort=abc", "-p", "logDir=" + t.TempDir()}, &stdout, &stderr, nil)
	if c != 1 {
		t.Fatalf("exit code %d, want 1", c)
	}
	if msg := stderr.String(); !strings.Contains(msg, "listenPort") || !strings.Contains(msg, "abc") {
		t.Fatalf("error does not name key and value:\n%s", msg)
	}
	if strings.Contains(stdout.String(), "boot success") {
		t.Fatal("booted despite the config error")
	}
}

func TestUnknownKeyWarns(t *testing.T) {
	var stdout, stderr syncBuffer
	sigs := make(chan os.Signal, 1)
	sigs <- syscall.SIGINT // stop right after booting
	dir := t.TempDir()
	c := run([]string{"-p", "listenPort=0", "-p", "noSuchKey=1",
		"-p", "kvConfigPath=" + filepath.Join(dir, "kv.json"), "-p", "logDir=" + dir}, &stdout, &stderr, sigs)
	if c != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", c, stderr.String())
	}
	if !strings.Contains(stderr.String(), "warning") || !strings.Contains(stderr.String(), "noSuchKey") {
		t.Fatalf("no warning for an unknown key:\n%s", stderr.String())
	}
}
