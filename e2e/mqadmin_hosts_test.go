package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqops/mqops/mqadmin/admin"
	mqhosts "github.com/mqops/mqops/mqadmin/hosts"
	"github.com/mqops/mqops/version"
)

// addrPort returns the port of an ip:port address.
func addrPort(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// diskUse is the used percentage df reports for path's file system:
// used / (used + available), rounded up.
func diskUse(t *testing.T, path string) int {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	used, avail := st.Blocks-st.Bfree, st.Bavail
	return int((used*100 + used + avail - 1) / (used + avail))
}

// writeInventory writes files (relative path -> content) under dir.
func writeInventory(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMqadminHostsCheck runs "mqadmin hosts check" through a real sshd
// against an inventory whose hosts are all this machine, told apart by
// their paths and ports: a name server, a healthy broker, a broker with
// store errors, one registered with a name server outside the inventory,
// one whose process is not running, one the inventory names wrongly, and
// one whose SSH login fails.
func TestMqadminHostsCheck(t *testing.T) {
	sshd := startSSHD(t)
	ns := startNamesrv(t)
	outside := startNamesrv(t)
	healthyDir, errorsDir, unregDir, stoppedDir := newBrokerDir(t), newBrokerDir(t), newBrokerDir(t), newBrokerDir(t)
	healthy := startBroker(t, healthyDir, ns.addr, "brokerName=broker-h")
	errorsB := startBroker(t, errorsDir, ns.addr, "brokerName=broker-e")
	unreg := startBroker(t, unregDir, outside.addr, "brokerName=broker-u")
	waitFor(t, 10*time.Second, "two brokers on the inventory's name server", func() bool {
		a, err := admin.New(ns.addr, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		ci, err := a.ClusterInfo()
		return err == nil && len(ci.BrokerAddrTable) == 2
	})
	errLine := `2026-11-21 19:03:04.123 +0000 ERROR [store] [FLUSH] commitlog flush failed err="input/output error"`
	f, err := os.OpenFile(filepath.Join(string(errorsDir), "logs", "storeerror.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(errLine + "\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The stopped broker's host has its own bin dir (a link to the real
	// binary, so its version still reads) where nothing runs, and a port
	// nothing listens on.
	stoppedBin := t.TempDir()
	if err := os.Symlink(filepath.Join(binDir, "mqbroker"), filepath.Join(stoppedBin, "mqbroker")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"store", "logs"} {
		if err := os.MkdirAll(filepath.Join(string(stoppedDir), d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stoppedPort := unusedPort(t)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}

	dirVars := func(d brokerDir) string {
		return fmt.Sprintf("mqops_broker_store_dir: %s/store\nmqops_log_dir: %s/logs\n", d, d)
	}
	inv := filepath.Join(t.TempDir(), "inventory", "e2e")
	writeInventory(t, inv, map[string]string{
		"hosts.ini": fmt.Sprintf(`# every host is this machine, reached through one sshd
[mqops_namesrv]
ns1 mqops_namesrv_listen_port=%d

[mqops_broker_master]
healthy      mqops_broker_listen_port=%d mqops_broker_name=broker-h mqops_broker_id=0
errors       mqops_broker_listen_port=%d
unregistered mqops_broker_listen_port=%d
stopped      mqops_broker_listen_port=%d mqops_bin_dir=%s
misnamed     mqops_broker_listen_port=%d mqops_broker_name=broker-x
badlogin     mqops_broker_listen_port=%d ansible_user=mqops-e2e-nobody

[mqops_broker:children]
mqops_broker_master
`, addrPort(t, ns.addr), addrPort(t, healthy.addr), addrPort(t, errorsB.addr), addrPort(t, unreg.addr), stoppedPort, stoppedBin,
			addrPort(t, healthy.addr), addrPort(t, healthy.addr)),
		"group_vars/all.yml": fmt.Sprintf("ansible_host: 127.0.0.1\nansible_port: %d\nmqops_bin_dir: %s\n", sshd.port, binDir),
		// The healthy broker's paths, shared by misnamed and badlogin.
		"group_vars/mqops_broker.yml":  dirVars(healthyDir),
		"host_vars/errors.yml":         dirVars(errorsDir),
		"host_vars/unregistered.yml":   dirVars(unregDir),
		"host_vars/stopped/paths.yaml": dirVars(stoppedDir),
	})
	args := []string{"hosts", "check", "-i", inv, "--user", me.Username, "--key", sshd.key, "--known-hosts", sshd.knownHosts,
		// The test cannot control how full the CI machine's disk is.
		"--max-disk-use", "100"}

	wantStderr := []string{
		fmt.Sprintf("errors broker store-errors: 1 ERROR line in %s/logs/storeerror.log, the last: %s", errorsDir, errLine),
		"unregistered broker registration: not listed by name server " + ns.addr,
		fmt.Sprintf("stopped broker service: stopped: no process runs %s/mqbroker, nothing listens on port %d", stoppedBin, stoppedPort),
		"stopped broker registration: not listed by name server " + ns.addr,
		fmt.Sprintf("misnamed broker registration: name server %s lists %s as broker-h id 0, the inventory says broker-x", ns.addr, healthy.addr),
		"badlogin broker ssh: log in as mqops-e2e-nobody: ssh: handshake failed: ssh: unable to authenticate",
		"mqadmin: 5 of 7 hosts failed checks",
	}
	checkStderr := func(stderr string) {
		t.Helper()
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		if len(lines) != len(wantStderr) {
			t.Fatalf("stderr has %d lines, want %d:\n%s", len(lines), len(wantStderr), stderr)
		}
		for i, w := range wantStderr {
			if lines[i] != w && !(strings.HasPrefix(w, "badlogin") && strings.HasPrefix(lines[i], w)) {
				t.Errorf("stderr line %d:\n got %s\nwant %s", i+1, lines[i], w)
			}
		}
	}

	r := runCLI(t, nil, args...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	checkStderr(r.stderr)
	tb := tableOf(t, r.stdout)
	tb.wantHeader(t, "Host", "Role", "Addr", "Service", "Version", "Disk", "Store Errors", "Registered", "Status")
	v := version.Version
	for host, want := range map[string][]string{ // Role, Addr, Service, Version, Store Errors, Registered, Status
		"ns1":          {"namesrv", ns.addr, "running", v, "-", "-", "OK"},
		"healthy":      {"broker", healthy.addr, "running", v, "0", "1/1", "OK"},
		"errors":       {"broker", errorsB.addr, "running", v, "1", "1/1", "FAIL"},
		"unregistered": {"broker", unreg.addr, "running", v, "0", "0/1", "FAIL"},
		"stopped":      {"broker", fmt.Sprintf("127.0.0.1:%d", stoppedPort), "stopped", v, "0", "0/1", "FAIL"},
		"misnamed":     {"broker", healthy.addr, "running", v, "0", "1/1", "FAIL"},
		"badlogin":     {"broker", healthy.addr, "-", "-", "-", "1/1", "FAIL"},
	} {
		row := tb.one(t, "Host", host)
		got := []string{row["Role"], row["Addr"], row["Service"], row["Version"], row["Store Errors"], row["Registered"], row["Status"]}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s row %q, want %q", host, got, want)
		}
		disk := "-"
		switch host {
		case "ns1", "badlogin":
		case "stopped":
			disk = fmt.Sprintf("%d%%", diskUse(t, string(stoppedDir)))
		default:
			disk = fmt.Sprintf("%d%%", diskUse(t, string(healthyDir)))
		}
		// Other tests write meanwhile; a point either way is the same disk.
		if g, w := strings.TrimSuffix(row["Disk"], "%"), strings.TrimSuffix(disk, "%"); g != w {
			gn, err1 := strconv.Atoi(g)
			wn, err2 := strconv.Atoi(w)
			if err1 != nil || err2 != nil || gn-wn > 1 || wn-gn > 1 {
				t.Errorf("%s disk %s, want %s", host, row["Disk"], disk)
			}
		}
	}
	if len(tb.rows) != 7 || tb.rows[0]["Host"] != "ns1" || tb.rows[6]["Host"] != "badlogin" {
		t.Errorf("rows not in inventory order: %v", tb.rows)
	}

	// The same run as JSON: every figure, and the same failures.
	r = runCLI(t, nil, append(args, "-o", "json")...)
	if r.code != 1 {
		t.Fatalf("json: exit %d\n%s", r.code, r.stderr)
	}
	checkStderr(r.stderr)
	var res []mqhosts.Result
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("json: %v\n%s", err, r.stdout)
	}
	if len(res) != 7 {
		t.Fatalf("%d results", len(res))
	}
	byHost := map[string]mqhosts.Result{}
	for _, x := range res {
		byHost[x.Host] = x
	}
	sshAddr := fmt.Sprintf("%s@127.0.0.1:%d", me.Username, sshd.port)
	h := byHost["healthy"]
	if !h.OK || len(h.Failures) != 0 || h.SSH != sshAddr || h.Addr != healthy.addr ||
		h.Service == nil || !h.Service.Running || !*h.Service.Process || !*h.Service.Listening ||
		h.Service.Binary != filepath.Join(binDir, "mqbroker") || h.Service.Port != addrPort(t, healthy.addr) ||
		h.Version == nil || *h.Version != (mqhosts.Version{Version: v, Protocol: version.Protocol}) ||
		h.Disk == nil || h.Disk.Path != string(healthyDir)+"/store" || h.Disk.SizeKiB <= 0 || h.Disk.UsedKiB <= 0 ||
		h.StoreErrors == nil || !h.StoreErrors.Exists || h.StoreErrors.ErrorLines != 0 ||
		len(h.Registration) != 1 || !h.Registration[0].Listed || h.Registration[0].Namesrv != ns.addr ||
		h.Registration[0].BrokerName != "broker-h" || h.Registration[0].BrokerID == nil || *h.Registration[0].BrokerID != 0 {
		t.Errorf("healthy: %+v", h)
	}
	e := byHost["errors"]
	if e.OK || e.StoreErrors == nil || e.StoreErrors.ErrorLines != 1 || e.StoreErrors.LastError != errLine ||
		len(e.StoreErrors.Tail) == 0 || e.StoreErrors.Tail[len(e.StoreErrors.Tail)-1] != errLine ||
		len(e.Failures) != 1 || e.Failures[0].Check != mqhosts.CheckStoreErrors {
		t.Errorf("errors: %+v", e)
	}
	s := byHost["stopped"]
	if s.OK || s.Service == nil || s.Service.Running || *s.Service.Process || *s.Service.Listening ||
		len(s.Failures) != 2 || s.Failures[0].Check != mqhosts.CheckService || s.Failures[1].Check != mqhosts.CheckRegistration ||
		s.Version == nil || s.Version.Version != v {
		t.Errorf("stopped: %+v", s)
	}
	if u := byHost["unregistered"]; len(u.Registration) != 1 || u.Registration[0].Listed || !u.Service.Running {
		t.Errorf("unregistered: %+v", u)
	}
	if b := byHost["badlogin"]; b.Service != nil || b.Version != nil || len(b.Failures) != 1 || b.Failures[0].Check != mqhosts.CheckSSH ||
		b.SSH != fmt.Sprintf("mqops-e2e-nobody@127.0.0.1:%d", sshd.port) {
		t.Errorf("badlogin: %+v", b)
	}
	n := byHost["ns1"]
	if !n.OK || n.Role != mqhosts.RoleNamesrv || n.Disk != nil || n.Registration != nil ||
		strings.Join(n.Brokers, " ") != strings.Join(slices.Sorted(slices.Values([]string{healthy.addr, errorsB.addr})), " ") {
		t.Errorf("ns1: %+v", n)
	}

	// A single-file YAML inventory of the healthy part, with the key in a
	// real ssh-agent: exit 0, nothing on stderr (no progress when piped).
	single := filepath.Join(t.TempDir(), "prod.yml")
	writeInventory(t, filepath.Dir(single), map[string]string{filepath.Base(single): fmt.Sprintf(`all:
  vars:
    ansible_host: 127.0.0.1
    ansible_port: %d
    ansible_user: %s
    mqops_bin_dir: %s
  children:
    mqops_namesrv:
      hosts:
        ns1: {mqops_namesrv_listen_port: %d}
    mqops_broker:
      hosts:
        healthy:
          mqops_broker_listen_port: %d
          mqops_broker_store_dir: %s/store
          mqops_log_dir: %s/logs
`, sshd.port, me.Username, binDir, addrPort(t, ns.addr), addrPort(t, healthy.addr), healthyDir, healthyDir)})
	agentEnv := []string{"SSH_AUTH_SOCK=" + startSSHAgent(t, sshd.key)}
	base := []string{"hosts", "check", "-i", single, "--max-disk-use", "100"}
	r = runCLI(t, agentEnv, append(base, "--known-hosts", sshd.knownHosts)...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("healthy inventory: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	tb = tableOf(t, r.stdout)
	if len(tb.rows) != 2 || len(tb.where("Status", "OK")) != 2 {
		t.Fatalf("healthy inventory rows %v", tb.rows)
	}

	// Host keys: unknown, and changed.
	emptyKH := filepath.Join(t.TempDir(), "known_hosts")
	writeInventory(t, filepath.Dir(emptyKH), map[string]string{"known_hosts": "# nothing known\n"})
	r = runCLI(t, agentEnv, append(base, "--known-hosts", emptyKH)...)
	for _, host := range []string{"ns1 namesrv", "healthy broker"} {
		want := fmt.Sprintf("%s ssh: log in as %s: ssh: handshake failed: host key ", host, me.Username)
		if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, " is not in "+emptyKH+"; check it and add it") {
			t.Fatalf("unknown host key: exit %d\n%s", r.code, r.stderr)
		}
	}
	otherKey := filepath.Join(t.TempDir(), "other")
	sshKeygen(t, "ed25519", otherKey)
	changedKH := filepath.Join(filepath.Dir(otherKey), "known_hosts")
	writeInventory(t, filepath.Dir(changedKH), map[string]string{"known_hosts": fmt.Sprintf("[127.0.0.1]:%d %s", sshd.port, fileText(t, otherKey+".pub"))})
	r = runCLI(t, agentEnv, append(base, "--known-hosts", changedKH)...)
	if r.code != 1 || !strings.Contains(r.stderr, "does not match "+changedKH+":1: the host was reinstalled, or someone is in the middle") {
		t.Fatalf("changed host key: exit %d\n%s", r.code, r.stderr)
	}
	// --insecure-ignore-host-key logs in anyway; the disk limit fails.
	if use := diskUse(t, string(healthyDir)); use > 1 {
		r = runCLI(t, agentEnv, append(base, "--known-hosts", emptyKH, "--insecure-ignore-host-key", "--max-disk-use", "1")...)
		lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
		if r.code != 1 || len(lines) != 2 || !strings.HasPrefix(lines[0], "healthy broker disk: "+string(healthyDir)+"/store is on ") ||
			!strings.HasSuffix(lines[0], "% full (limit 1%)") || lines[1] != "mqadmin: 1 of 2 hosts failed checks" {
			t.Fatalf("disk limit: exit %d\n%s", r.code, r.stderr)
		}
	}

	// A broken inventory is a one-line failure naming file and line.
	bad := filepath.Join(t.TempDir(), "hosts.ini")
	writeInventory(t, filepath.Dir(bad), map[string]string{"hosts.ini": "[mqops_broker]\nbroker[1:3]\n"})
	if msg := cliFail(t, "", "hosts", "check", "-i", bad, "--key", sshd.key); msg != "mqadmin: "+bad+`:2: host ranges such as "broker[1:3]" are not supported; list the hosts one by one` {
		t.Fatalf("bad inventory: %s", msg)
	}
}
