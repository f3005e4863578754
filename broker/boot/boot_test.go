package boot

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/config"
	"github.com/mqops/mqops/broker/controller"
)

var ctlCommand = Command[*config.Controller]{
	Name:      "mqcontroller",
	ConfUsage: "controller config file",
	LogFile:   "controller.log",
	Load:      config.LoadController,
	LogDir:    func(c *config.Controller) string { return c.LogDir },
}

var nsCommand = Command[*config.Namesrv]{
	Name:      "mqnamesrv",
	ConfUsage: "name server config file",
	LogFile:   "namesrv.log",
	Load:      config.LoadNamesrv,
	LogDir:    func(c *config.Namesrv) string { return c.LogDir },
}

func TestStartExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"-version"}, 0, "mqcontroller", ""},
		{[]string{"-nosuchflag"}, 2, "", "-nosuchflag"},
		{[]string{"extra"}, 2, "", `mqcontroller: unexpected argument "extra"`},
		{[]string{"-p", "scanNotActiveBrokerInterval=abc", "-p", "logDir=" + t.TempDir()}, 1, "", "scanNotActiveBrokerInterval"},
		{[]string{"-c", filepath.Join(t.TempDir(), "missing.conf")}, 1, "", "missing.conf"},
	} {
		var stdout, stderr bytes.Buffer
		d, code := ctlCommand.Start(tc.args, &stdout, &stderr)
		if d != nil || code != tc.code {
			t.Fatalf("%q: daemon %v, code %d, want nil and %d", tc.args, d, code, tc.code)
		}
		if !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
			t.Fatalf("%q: stdout %q, stderr %q", tc.args, stdout.String(), stderr.String())
		}
	}
}

// A started daemon has its config with the overrides, warns about unknown
// keys on stderr and in its log, and logs boot lines and failures there.
func TestStartLoadsConfigAndLogs(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "namesrv.conf")
	if err := os.WriteFile(conf, []byte("listenPort=7001\nnoSuchKey=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	d, code := nsCommand.Start([]string{"-c", conf, "-p", "logDir=" + dir, "-p", "listenPort=9002"}, &stdout, &stderr)
	if d == nil {
		t.Fatalf("code %d, stderr %s", code, stderr.String())
	}
	if d.Config.ListenPort != 9002 {
		t.Fatalf("-p not applied: %d", d.Config.ListenPort)
	}
	if !strings.Contains(stderr.String(), "mqnamesrv: warning:") || !strings.Contains(stderr.String(), "noSuchKey") {
		t.Fatalf("stderr %q", stderr.String())
	}
	d.Announce("The Thing boot success.")
	if got := d.Failed("thing", errors.New("port taken")); got != 1 {
		t.Fatalf("Failed returned %d", got)
	}
	d.Close()
	if stdout.String() != "The Thing boot success.\n" || !strings.Contains(stderr.String(), "mqnamesrv: port taken") {
		t.Fatalf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	logged, err := os.ReadFile(filepath.Join(dir, "namesrv.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"[CONFIG]", "noSuchKey", "The Thing boot success.", "[BOOT_FAILED] thing failed to start", "port taken"} {
		if !strings.Contains(string(logged), want) {
			t.Fatalf("log lacks %q:\n%s", want, logged)
		}
	}
}

// StartController runs a real one-peer controller and prints its boot line.
func TestStartController(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	d, code := ctlCommand.Start([]string{"-p", "logDir=" + dir, "-p", "controllerDLegerGroup=solo",
		"-p", fmt.Sprintf("controllerDLegerPeers=n0-127.0.0.1:%d", port), "-p", "controllerDLegerSelfId=n0",
		"-p", "controllerStorePath=" + filepath.Join(dir, "store")}, &stdout, &stderr)
	if d == nil {
		t.Fatalf("code %d, stderr %s", code, stderr.String())
	}
	defer d.Close()
	ctl, err := d.StartController(&d.Config.ControllerSettings, time.Second, controller.Security{})
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	want := fmt.Sprintf("The Controller boot success. group solo, self n0, address %s", ctl.Addr())
	if !strings.Contains(stdout.String(), want) {
		t.Fatalf("stdout %q, want %q", stdout.String(), want)
	}
	// A second node on the same store is refused (the raft log is locked).
	if _, err := d.StartController(&d.Config.ControllerSettings, time.Second, controller.Security{}); err == nil {
		t.Fatal("second controller on the same store started")
	}
}
