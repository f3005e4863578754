package e2e

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/zabbix/probe"
)

// TestClusterListDeadMasters: three masters that stop answering (SIGSTOP:
// their kernel still accepts connections, nothing replies) next to a live
// one. cluster list finishes, prints the live broker's figures and a row
// for each stopped one, and fails naming the first of them; its JSON says
// why each has no figures. mqops-zbx cluster reports the same three down.
func TestClusterListDeadMasters(t *testing.T) {
	ns := startNamesrv(t)
	live := startBroker(t, newBrokerDir(t), ns.addr, "brokerName=broker-a")
	var dead []*proc
	for _, name := range []string{"broker-b", "broker-c", "broker-d"} {
		dead = append(dead, startBroker(t, newBrokerDir(t), ns.addr, "brokerName="+name))
	}
	waitFor(t, 30*time.Second, "four brokers registered", func() bool {
		var rows []admin.BrokerRuntime
		r := runCLI(t, nil, "cluster", "list", "-n", ns.addr, "-o", "json")
		return r.code == 0 && json.Unmarshal([]byte(r.stdout), &rows) == nil && len(rows) == 4
	})
	for _, p := range dead {
		if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.cmd.Process.Signal(syscall.SIGCONT) })
	}

	r := runCLI(t, nil, "cluster", "list", "-n", ns.addr, "--timeout", "2s")
	if r.code != 1 || !strings.Contains(r.stderr, "3 of 4 brokers did not answer: runtime info of "+dead[0].addr+": ") ||
		!strings.Contains(r.stderr, "timed out") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	tb := tableOf(t, r.stdout)
	if row := tb.one(t, "Broker Name", "broker-a"); row["Addr"] != live.addr || row["Version"] != "V4_9_8" {
		t.Fatalf("live broker %v", row)
	}
	for i, name := range []string{"broker-b", "broker-c", "broker-d"} {
		if row := tb.one(t, "Broker Name", name); row["Addr"] != dead[i].addr || row["Role"] != "MASTER" || row["Version"] != "-" {
			t.Fatalf("stopped broker %s: %v", name, row)
		}
	}

	r = runCLI(t, nil, "cluster", "list", "-n", ns.addr, "--timeout", "2s", "-o", "json")
	var rows []admin.BrokerRuntime
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || r.code != 1 || len(rows) != 4 {
		t.Fatalf("json: exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	if rows[0].Error != "" || rows[0].Version != "V4_9_8" {
		t.Fatalf("live broker %+v", rows[0])
	}
	for i, row := range rows[1:] {
		if !strings.Contains(row.Error, dead[i].addr) || !strings.Contains(row.Error, "timed out") {
			t.Fatalf("stopped broker %s: %+v", row.Name, row)
		}
	}

	var out bytes.Buffer
	zbx := exec.Command(filepath.Join(binDir, "mqops-zbx"), "cluster", "-n", ns.addr, "-c", "DefaultCluster", "--timeout", "2s")
	zbx.Stdout = &out
	if err := zbx.Run(); err != nil {
		t.Fatalf("mqops-zbx cluster: %v", err)
	}
	var st probe.ClusterStatus
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("mqops-zbx cluster: %v\n%s", err, out.String())
	}
	if st.Status != probe.StatusDegraded || st.Masters != 4 || st.MastersUp != 1 || len(st.Brokers) != 4 {
		t.Fatalf("mqops-zbx cluster: %+v", st)
	}
	for i, b := range st.Brokers[1:] {
		if b.Up != 0 || b.Addr != dead[i].addr || !strings.Contains(b.Error, "timed out") {
			t.Fatalf("mqops-zbx cluster, stopped broker %+v", b)
		}
	}
}
