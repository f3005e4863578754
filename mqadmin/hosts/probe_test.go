package hosts

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// runLocal runs a check script with this machine's sh, as sshd would.
func runLocal(t *testing.T, script string) output {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	o := output{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		o.code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return o
}

func TestListenPort(t *testing.T) {
	for line, want := range map[string]int{
		"State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess":  0,
		"LISTEN 0      4096         *:10911            *:*":                  10911,
		"LISTEN 0      128    [::ffff:127.0.0.1]:9876  *:*":                  9876,
		"LISTEN 0      128     127.0.0.53%lo:53        0.0.0.0:*":            53,
		"Proto Recv-Q Send-Q Local Address           Foreign Address State":  0,
		"tcp        0      0 0.0.0.0:22              0.0.0.0:*       LISTEN": 22,
		"tcp6       0      0 :::10911                :::*            LISTEN": 10911,
		"tcp4       0      0  *.9876                 *.*             LISTEN": 9876,
		"  sl  local_address rem_address   st tx_queue rx_queue":             0,
		"   0: 0100007F:2AA7 00000000:0000 0A 00000000:00000000 00:00000000": 10919,
		"   1: 0100007F:2AA7 0100007F:D1C2 01 00000000:00000000 00:00000000": 0, // established
		"Active Internet connections (only servers)":                         0,
	} {
		if got := listenPort(line); got != want {
			t.Errorf("listenPort(%q) = %d, want %d", line, got, want)
		}
	}
}

func TestParseService(t *testing.T) {
	ss := "State Recv-Q Send-Q Local Address:Port Peer Address:Port\nLISTEN 0 4096 *:10911 *:*\n"
	for _, c := range []struct {
		out, state, problem string
	}{
		{"process=yes\n" + ss, "running", ""},
		{"process=no\n" + ss, "no-process", "no-process: no process runs /b/mqbroker, port 10911 is listening"},
		{"process=yes\nState Recv-Q Send-Q Local Address:Port\n", "port-closed", "port-closed: a process runs /b/mqbroker, nothing listens on port 10911"},
		{"process=no\nState Recv-Q Send-Q Local Address:Port\n", "stopped", "stopped: no process runs /b/mqbroker, nothing listens on port 10911"},
		{"process=no\n", "stopped", "stopped: no process runs /b/mqbroker, no ss, netstat or /proc/net/tcp to see listening ports"},
		{ss, "running", ""}, // no pgrep: the port alone tells
		{"", "unknown", "unknown: no pgrep to look for /b/mqbroker, no ss, netstat or /proc/net/tcp to see listening ports"},
	} {
		s := parseService(c.out, "/b/mqbroker", 10911)
		if s.State() != c.state || s.problem() != c.problem || s.Running != (c.state == "running") {
			t.Errorf("%q: state %s, problem %q, running %v", c.out, s.State(), s.problem(), s.Running)
		}
	}
}

// The service script finds a real listening socket and a real process
// with this machine's tools.
func TestServiceScript(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := parseService(runLocal(t, serviceScript(self)).stdout, self, port)
	if !s.Running || s.Process == nil || !*s.Process || s.Listening == nil || !*s.Listening {
		t.Fatalf("own process and port: %+v", s)
	}
	s = parseService(runLocal(t, serviceScript(self+"-other")).stdout, self+"-other", port+1)
	if s.State() != "stopped" {
		t.Fatalf("absent service: %s", s.State())
	}
}

func TestPgrepPattern(t *testing.T) {
	re := regexp.MustCompile(pgrepPattern("/opt/mq.ops/bin/mqbroker"))
	for cmdline, want := range map[string]bool{
		"/opt/mq.ops/bin/mqbroker -c /etc/broker.conf": true,
		"/opt/mq.ops/bin/mqbroker":                     true,
		"/opt/mqXops/bin/mqbroker":                     false, // the dot is literal
		"/opt/mq.ops/bin/mqbroker-old -c x":            false,
		"sh -c pgrep -f '^/opt/mq.ops/bin/mqbroker'":   false, // the script's own shell
	} {
		if re.MatchString(cmdline) != want {
			t.Errorf("%q: match %v", cmdline, !want)
		}
	}
}

func TestParseVersion(t *testing.T) {
	v, err := parseVersion(output{stdout: "mqbroker 0.1.0-dev (mqops, RocketMQ protocol V4_9_8)\n"}, "/b/mqbroker", "mqbroker")
	if err != nil || *v != (Version{Version: "0.1.0-dev", Protocol: "V4_9_8"}) {
		t.Fatalf("%+v %v", v, err)
	}
	for _, c := range []struct {
		o    output
		want string
	}{
		{output{stdout: "sh: 1: /b/mqbroker: not found\n", code: 127}, "/b/mqbroker -version: exit status 127: sh: 1: /b/mqbroker: not found"},
		{output{stdout: "mqnamesrv 0.1.0 (mqops, RocketMQ protocol V4_9_8)\n"}, `/b/mqbroker -version printed "mqnamesrv 0.1.0 (mqops, RocketMQ protocol V4_9_8)"`},
		{output{stdout: "flag provided but not defined: -version\n"}, `printed "flag provided but not defined: -version"`},
	} {
		if _, err := parseVersion(c.o, "/b/mqbroker", "mqbroker"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.o, err, c.want)
		}
	}
}

func TestParseDF(t *testing.T) {
	d, err := parseDF(output{stdout: "Filesystem     1024-blocks     Used Available Capacity Mounted on\n" +
		"/dev/mapper/my disk 264212084 17242196  78259068      19% /data/my store\n"}, "/data/my store/x")
	want := Disk{Path: "/data/my store/x", Filesystem: "/dev/mapper/my disk", MountedOn: "/data/my store",
		SizeKiB: 264212084, UsedKiB: 17242196, AvailKiB: 78259068, UsePercent: 19}
	if err != nil || *d != want {
		t.Fatalf("%+v %v", d, err)
	}
	_, err = parseDF(output{stdout: "df: /nope: No such file or directory\n", code: 1}, "/nope")
	if err == nil || err.Error() != "df -Pk /nope: exit status 1: df: /nope: No such file or directory" {
		t.Fatalf("error %v", err)
	}
	// The real df agrees with the parser.
	dir := t.TempDir()
	if d, err = parseDF(runLocal(t, diskScript(dir)), dir); err != nil || d.SizeKiB <= 0 || d.UsePercent < 0 || d.UsePercent > 100 {
		t.Fatalf("local df: %+v %v", d, err)
	}
}

func TestStoreErrorsScript(t *testing.T) {
	dir := t.TempDir()
	read := func(n int) (*StoreErrors, error) {
		return parseStoreErrors(runLocal(t, storeErrorsScript(dir, n)), dir)
	}
	s, err := read(3)
	if err != nil || s.Exists || s.ErrorLines != 0 || len(s.Tail) != 0 || s.Path != dir+"/storeerror.log" {
		t.Fatalf("no file: %+v %v", s, err)
	}
	lines := []string{
		"2026-11-21 19:03:04.123 +0000 WARN  [store] [RECOVERY] cut commitlog offset=1",
		"2026-11-21 19:03:05.123 +0000 ERROR [store] [FLUSH] commitlog flush failed err=EIO",
		"2026-11-21 19:03:06.123 +0000 ERROR [store] [APPEND] cannot create commitlog segment err=ENOSPC",
		"2026-11-21 19:03:07.123 +0000 WARN  [store] the word ERROR in a message is not an error line",
	}
	if err := os.WriteFile(filepath.Join(dir, "storeerror.log"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = read(3)
	want := &StoreErrors{Path: dir + "/storeerror.log", Exists: true, ErrorLines: 2, LastError: lines[2], Tail: lines[1:]}
	if err != nil || !reflect.DeepEqual(s, want) {
		t.Fatalf("log:\n got %+v %v\nwant %+v", s, err, want)
	}
	if err := os.WriteFile(filepath.Join(dir, "storeerror.log"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err = read(3); err != nil || !s.Exists || s.ErrorLines != 0 || s.LastError != "" || len(s.Tail) != 0 {
		t.Fatalf("empty log: %+v %v", s, err)
	}
	_, err = parseStoreErrors(runLocal(t, storeErrorsScript(dir+"/missing", 3)), dir+"/missing")
	if err == nil || !strings.HasPrefix(err.Error(), "log dir "+dir+"/missing: ") {
		t.Fatalf("missing dir: %v", err)
	}
}

func TestShQuote(t *testing.T) {
	for _, s := range []string{"plain", "it's", `a "b" $c \d`, "'", ""} {
		if o := runLocal(t, "printf %s "+shQuote(s)); o.stdout != s {
			t.Errorf("shQuote(%q) came back as %q", s, o.stdout)
		}
	}
}
