package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/wire"
)

// routePerm returns the route permission of topic on broker (0 if absent).
func routePerm(t *testing.T, ns, topic, broker string) int {
	t.Helper()
	var rd wire.TopicRouteData
	cliJSON(t, ns, &rd, "topic", "route", "-t", topic)
	for _, qd := range rd.QueueDatas {
		if qd.BrokerName == broker {
			return qd.Perm
		}
	}
	return 0
}

// TestMqadminBrokersAndCluster is use case 5: cluster list, broker status,
// broker configuration, write-disable/enable through brokerPermission, and
// the name-server side: configuration, KV store, route-only write wipes.
func TestMqadminBrokersAndCluster(t *testing.T) {
	c := startTwoBrokers(t)
	ns, addrA, addrB := c.ns.addr, c.a.broker.addr, c.b.broker.addr
	cli(t, ns, "topic", "create", "-t", "UC5", "-c", "DefaultCluster", "--queues", "2")
	waitRoute(t, ns, "UC5", 2)
	p := newProducer(t, ns)
	sendN(t, p, "UC5", "m", 10)

	cl := tableOf(t, cli(t, ns, "cluster", "list"))
	cl.wantHeader(t, "Cluster Name", "Broker Name", "BID", "Role", "Addr", "Version", "InTPS(LOAD)", "OutTPS(LOAD)",
		"InTotalToday", "OutTotalToday", "PCWait(ms)", "Hour", "SPACE", "MasterEpoch", "Lag(bytes)")
	for name, addr := range map[string]string{"broker-a": addrA, "broker-b": addrB} {
		r := cl.one(t, "Broker Name", name)
		if r["Cluster Name"] != "DefaultCluster" || r["BID"] != "0" || r["Role"] != "ASYNC_MASTER" || r["Addr"] != addr || r["Version"] != "V4_9_8" ||
			r["MasterEpoch"] != "-" || r["Lag(bytes)"] != "-" {
			t.Fatalf("cluster row %v", r)
		}
	}
	var brs []admin.BrokerRuntime
	cliJSON(t, ns, &brs, "cluster", "list")
	if len(brs) != 2 || brs[0].Space <= 0 || brs[0].Runtime["brokerVersionDesc"] != "V4_9_8" {
		t.Fatalf("cluster json %+v", brs)
	}
	// Today's total is the put counter less its value at local midnight.
	put := 0
	for _, b := range brs {
		now, morning := atoi(t, b.Runtime["msgPutTotalTodayNow"]), atoi(t, b.Runtime["msgPutTotalTodayMorning"])
		if b.InTotalToday != int64(now-morning) {
			t.Fatalf("inTotalToday %d from %d - %d", b.InTotalToday, now, morning)
		}
		put += now
	}
	if put != 10 {
		t.Fatalf("%d puts counted, 10 sent", put)
	}
	more := tableOf(t, cli(t, ns, "cluster", "list", "-m", "-c", "DefaultCluster"))
	more.wantHeader(t, "Cluster Name", "Broker Name", "BID", "Addr", "InTotalYest", "OutTotalYest", "InTotalToday", "OutTotalToday")

	st := tableOf(t, cli(t, ns, "broker", "status", "-b", addrA))
	st.wantHeader(t, "Key", "Value")
	if st.one(t, "Key", "brokerVersionDesc")["Value"] != "V4_9_8" || len(st.where("Key", "putTps")) != 1 {
		t.Fatalf("status rows %v", st.rows)
	}
	st = tableOf(t, cli(t, ns, "broker", "status", "-c", "DefaultCluster"))
	st.wantHeader(t, "Broker Addr", "Key", "Value")
	if len(st.where("Key", "brokerVersionDesc")) != 2 {
		t.Fatalf("cluster status rows %v", st.rows)
	}

	cfg := tableOf(t, cli(t, ns, "broker", "config", "get", "-b", "broker-a"))
	if cfg.one(t, "Key", "brokerName")["Value"] != "broker-a" || cfg.one(t, "Key", "brokerClusterName")["Value"] != "DefaultCluster" {
		t.Fatalf("config rows %v", cfg.rows)
	}
	set := tableOf(t, cli(t, ns, "broker", "config", "set", "-b", addrA, "fileReservedTime=48"))
	set.wantHeader(t, "Broker Name", "Broker Addr", "Updated", "Note")
	if set.rows[0]["Updated"] != "fileReservedTime=48" {
		t.Fatalf("set rows %v", set.rows)
	}
	var cfgs map[string]map[string]string
	cliJSON(t, ns, &cfgs, "broker", "config", "get", "-c", "DefaultCluster")
	if cfgs[addrA]["fileReservedTime"] != "48" || cfgs[addrB]["fileReservedTime"] == "48" {
		t.Fatalf("config after set: a=%s b=%s", cfgs[addrA]["fileReservedTime"], cfgs[addrB]["fileReservedTime"])
	}
	msg := cliFail(t, ns, "broker", "config", "set", "-b", addrA, "brokerConfigPath=/tmp/x")
	if want := "mqadmin: update config of " + addrA + ": NO_PERMISSION: "; !strings.HasPrefix(msg, want) {
		t.Fatalf("black-listed key: %q", msg)
	}

	// Write-disable is the broker's own permission: persisted, registered,
	// enforced on every send.
	wd := tableOf(t, cli(t, ns, "broker", "write-disable", "-b", "broker-a"))
	wd.wantHeader(t, "Broker Name", "Broker Addr", "Permission", "Note")
	if len(wd.rows) != 1 || wd.rows[0]["Broker Addr"] != addrA || wd.rows[0]["Permission"] != "4" {
		t.Fatalf("write-disable rows %v", wd.rows)
	}
	waitFor(t, 10*time.Second, "broker-a read-only in the route", func() bool { return routePerm(t, ns, "UC5", "broker-a") == 4 })
	if r := runCLI(t, nil, "message", "send", "-t", "UC5", "--body", "x", "-b", "broker-a", "-q", "0", "-n", ns); r.code == 0 || !strings.Contains(r.stderr, "mqadmin: send to UC5: ") {
		t.Fatalf("send to a read-only broker: exit %d %s", r.code, r.stderr)
	}
	we := tableOf(t, cli(t, ns, "broker", "write-enable", "-c", "DefaultCluster"))
	if len(we.rows) != 2 || len(we.where("Permission", "6")) != 2 {
		t.Fatalf("write-enable rows %v", we.rows)
	}
	waitFor(t, 10*time.Second, "broker-a writable in the route", func() bool { return routePerm(t, ns, "UC5", "broker-a") == 6 })
	if sent := tableOf(t, cli(t, ns, "message", "send", "-t", "UC5", "--body", "x", "-b", "broker-a", "-q", "0")); sent.rows[0]["Send Result"] != "SEND_OK" {
		t.Fatalf("send after write-enable %v", sent.rows)
	}

	// Name servers: config, KV, and the route-only wipe.
	nsCfg := tableOf(t, cli(t, ns, "namesrv", "config"))
	nsCfg.wantHeader(t, "Name Server", "Key", "Value")
	if r := nsCfg.one(t, "Key", "orderMessageEnable"); r["Name Server"] != ns || r["Value"] != "false" {
		t.Fatalf("namesrv config %v", r)
	}
	cli(t, ns, "namesrv", "config", "set", "orderMessageEnable=true")
	var nsCfgs map[string]map[string]string
	cliJSON(t, ns, &nsCfgs, "namesrv", "config")
	if nsCfgs[ns]["orderMessageEnable"] != "true" {
		t.Fatalf("namesrv config after set %v", nsCfgs[ns])
	}
	cli(t, ns, "namesrv", "kv", "put", "-s", "UC5_NS", "-k", "alpha", "-v", "one")
	cli(t, ns, "namesrv", "kv", "put", "-s", "UC5_NS", "-k", "beta", "-v", "two")
	if r := tableOf(t, cli(t, ns, "namesrv", "kv", "get", "-s", "UC5_NS", "-k", "alpha")); r.rows[0]["Value"] != "one" {
		t.Fatalf("kv get %v", r.rows)
	}
	var kv map[string]string
	cliJSON(t, ns, &kv, "namesrv", "kv", "list", "-s", "UC5_NS")
	if len(kv) != 2 || kv["beta"] != "two" {
		t.Fatalf("kv list %v", kv)
	}
	cli(t, ns, "namesrv", "kv", "delete", "-s", "UC5_NS", "-k", "alpha")
	if msg := cliFail(t, ns, "namesrv", "kv", "get", "-s", "UC5_NS", "-k", "alpha"); !strings.Contains(msg, "no key alpha in namespace UC5_NS") {
		t.Fatalf("kv get deleted: %s", msg)
	}

	wiped := tableOf(t, cli(t, ns, "namesrv", "wipe-write", "-b", "broker-b"))
	wiped.wantHeader(t, "Name Server", "Broker Name", "Topics Changed")
	if r := wiped.rows[0]; r["Name Server"] != ns || r["Topics Changed"] == "0" {
		t.Fatalf("wipe rows %v", wiped.rows)
	}
	if perm := routePerm(t, ns, "UC5", "broker-b"); perm != 4 {
		t.Fatalf("route perm of broker-b after wipe: %d", perm)
	}
	cli(t, ns, "namesrv", "add-write", "-b", "broker-b")
	if perm := routePerm(t, ns, "UC5", "broker-b"); perm != 6 {
		t.Fatalf("route perm of broker-b after add: %d", perm)
	}

	// A broker that stops answering (frozen: still registered) is listed
	// and fails the command.
	if err := c.b.broker.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.b.broker.cmd.Process.Signal(syscall.SIGCONT) })
	r := runCLI(t, nil, "cluster", "list", "-n", ns, "--timeout", "1s")
	if r.code == 0 || !strings.Contains(r.stderr, "1 of 2 brokers did not answer") || !strings.Contains(r.stdout, addrB) {
		t.Fatalf("cluster list with a dead broker: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// brokersListed returns the broker names name server ns lists.
func brokersListed(t *testing.T, ns string) []string {
	t.Helper()
	r := runCLI(t, nil, "cluster", "list", "-o", "json", "-n", ns)
	if r.code != 0 && strings.Contains(r.stderr, "no broker found") {
		return nil
	}
	var brs []admin.BrokerRuntime
	cliJSON(t, ns, &brs, "cluster", "list")
	var out []string
	for _, b := range brs {
		out = append(out, b.Name)
	}
	return out
}

// TestLiveNamesrvAddr changes a running broker's name servers, as the
// blue-green upgrade does: added name servers list it before the command
// returns, dropped ones forget it at once, and a restart keeps the change.
func TestLiveNamesrvAddr(t *testing.T) {
	c := startCluster(t)
	ns2 := startNamesrv(t)
	broker := c.broker.addr
	if got := brokersListed(t, ns2.addr); len(got) != 0 {
		t.Fatalf("a fresh name server lists %v", got)
	}
	cli(t, c.ns.addr, "broker", "config", "set", "-b", broker, "namesrvAddr="+c.ns.addr+";"+ns2.addr)
	for _, ns := range []string{c.ns.addr, ns2.addr} {
		if got := brokersListed(t, ns); len(got) != 1 || got[0] != "broker-a" {
			t.Fatalf("name server %s lists %v right after the change, want [broker-a]", ns, got)
		}
	}
	var cfg map[string]map[string]string
	cliJSON(t, ns2.addr, &cfg, "broker", "config", "get", "-b", broker)
	if got := cfg[broker]["namesrvAddr"]; got != c.ns.addr+";"+ns2.addr {
		t.Fatalf("namesrvAddr in force: %q", got)
	}

	cli(t, ns2.addr, "broker", "config", "set", "-b", broker, "namesrvAddr="+ns2.addr)
	if got := brokersListed(t, c.ns.addr); len(got) != 0 {
		t.Fatalf("the dropped name server still lists %v", got)
	}
	if got := brokersListed(t, ns2.addr); len(got) != 1 {
		t.Fatalf("the kept name server lists %v", got)
	}
	// Later registrations (a topic created re-registers at once) go to the
	// new list only.
	cli(t, ns2.addr, "topic", "create", "-t", "AfterMove", "-b", broker)
	waitRoute(t, ns2.addr, "AfterMove", 1)
	if got := brokersListed(t, c.ns.addr); len(got) != 0 {
		t.Fatalf("the dropped name server lists %v again", got)
	}

	if out := cliFail(t, ns2.addr, "broker", "config", "set", "-b", broker, "namesrvAddr=not-an-address"); !strings.Contains(out, "namesrvAddr") {
		t.Fatalf("bad namesrvAddr: %s", out)
	}
}
