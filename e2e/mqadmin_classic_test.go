package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/mqadmin/admin"
)

// TestMqadminClassicCommands drives Java mqadmin's command names and short
// flags, matched case-insensitively, against the same daemons.
func TestMqadminClassicCommands(t *testing.T) {
	c := startCluster(t)
	ns, broker := c.ns.addr, c.broker.addr

	up := tableOf(t, cli(t, ns, "updateTopic", "-c", "DefaultCluster", "-t", "CL1", "-r", "4", "-w", "4", "-p", "6", "-o", "false"))
	if r := up.one(t, "Topic", "CL1"); r["Broker Addr"] != broker || r["Read Queues"] != "4" || r["Order"] != "false" {
		t.Fatalf("updateTopic %v", r)
	}
	// Java matches names case-insensitively and takes --namesrvAddr.
	if r := runCLI(t, nil, "UPDATETOPIC", "-b", broker, "-t", "CL2", "--namesrvAddr", ns); r.code != 0 {
		t.Fatalf("UPDATETOPIC: %s", r.stderr)
	}
	waitRoute(t, ns, "CL1", 1)
	waitRoute(t, ns, "CL2", 1)
	tableOf(t, cli(t, ns, "topicList")).one(t, "Topic", "CL2")
	byCluster := tableOf(t, cli(t, ns, "topicList", "-c"))
	byCluster.wantHeader(t, "Cluster Name", "Topic", "Consumer Group", "Message Type")
	if r := byCluster.one(t, "Topic", "CL1"); r["Cluster Name"] != "DefaultCluster" {
		t.Fatalf("topicList -c %v", r)
	}
	if r := tableOf(t, cli(t, ns, "topicRoute", "-t", "CL1", "-l")).one(t, "BrokerName", "broker-a"); r["ReadQueue"] != "4" {
		t.Fatalf("topicRoute %v", r)
	}

	sent := tableOf(t, cli(t, ns, "sendMessage", "-t", "CL1", "-p", "classic-body", "-k", "ck1", "-c", "TagC", "-b", "broker-a", "-i", "2"))
	s := sent.rows[0]
	if s["QID"] != "2" || s["Send Result"] != "SEND_OK" {
		t.Fatalf("sendMessage %v", s)
	}
	waitDispatched(t, broker, "CL1", 4, 1)
	if r := tableOf(t, cli(t, ns, "topicStatus", "-t", "CL1")).where("QID", "2"); len(r) != 1 || r[0]["Max Offset"] != "1" {
		t.Fatalf("topicStatus %v", r)
	}
	if b := block(sections(cli(t, ns, "queryMsgById", "-i", s["Offset MsgId"]))[0]); b["Message Body"] != "classic-body" || b["Tags"] != "[TagC]" || b["Keys"] != "[ck1]" {
		t.Fatalf("queryMsgById %v", b)
	}
	if b := block(sections(cli(t, ns, "queryMsgByOffset", "-t", "CL1", "-b", "broker-a", "-i", "2", "-o", "0"))[0]); b["OffsetID"] != s["Offset MsgId"] {
		t.Fatalf("queryMsgByOffset %v", b)
	}

	ug := tableOf(t, cli(t, ns, "updateSubGroup", "-c", "DefaultCluster", "-g", "CG_cl", "-r", "3", "-d", "false"))
	if len(ug.rows) != 1 {
		t.Fatalf("updateSubGroup %v", ug.rows)
	}
	var groups []admin.GroupConfig
	cliJSON(t, ns, &groups, "group", "list", "-b", broker)
	found := false
	for _, g := range groups {
		if g.Config.GroupName == "CG_cl" {
			found = g.Config.RetryMaxTimes == 3 && !g.Config.ConsumeBroadcastEnable && g.Config.ConsumeEnable && g.Brokers[0] == "broker-a"
		}
	}
	if !found {
		t.Fatalf("CG_cl after updateSubGroup: %+v", groups)
	}
	if msg := cliFail(t, ns, "consumerConnection", "-g", "CG_cl"); !strings.Contains(msg, "CONSUMER_NOT_ONLINE") {
		t.Fatalf("consumerConnection: %s", msg)
	}
	// An offline group with no offsets yet: every queue is committed.
	reset := tableOf(t, cli(t, ns, "resetOffsetByTime", "-g", "CG_cl", "-t", "CL1", "-s", "now"))
	reset.wantHeader(t, "brokerName", "queueId", "brokerOffset", "consumerOffset", "timestampOffset", "resetOffset")
	if len(reset.rows) != 4 || reset.one(t, "queueId", "2")["brokerOffset"] != "1" {
		t.Fatalf("resetOffsetByTime %v", reset.rows)
	}
	for _, r := range reset.rows { // forced: every queue takes the offset of the time
		if r["resetOffset"] != r["timestampOffset"] {
			t.Fatalf("resetOffsetByTime row %v", r)
		}
	}
	cli(t, ns, "resetOffsetByTime", "-g", "CG_cl", "-t", "CL1", "-s", time.Now().Add(-time.Hour).Format("2006-01-02#15:04:05:000"))
	if r := tableOf(t, cli(t, ns, "consumerProgress", "-g", "CG_cl")).one(t, "QID", "2"); r["Consumer Offset"] != "0" || r["Diff"] != "1" {
		t.Fatalf("consumerProgress after reset to an hour ago %v", r)
	}
	skip := tableOf(t, cli(t, ns, "skipAccumulatedMessage", "-g", "CG_cl", "-t", "CL1"))
	if skip.one(t, "queueId", "2")["resetOffset"] != "1" {
		t.Fatalf("skipAccumulatedMessage %v", skip.rows)
	}
	bcs := tableOf(t, cli(t, ns, "brokerConsumeStats", "-b", broker, "-l", "0"))
	if r := bcs.where("Group", "CG_cl"); len(r) != 4 {
		t.Fatalf("brokerConsumeStats %v", bcs.rows)
	}
	cli(t, ns, "deleteSubGroup", "-c", "DefaultCluster", "-g", "CG_cl", "-r", "true")

	if r := tableOf(t, cli(t, ns, "clusterList")).one(t, "Broker Name", "broker-a"); r["Addr"] != broker {
		t.Fatalf("clusterList %v", r)
	}
	// -o is the output format wherever Java's -o means nothing else.
	var brs []admin.BrokerRuntime
	if out := cli(t, ns, "clusterList", "-o", "json"); json.Unmarshal([]byte(out), &brs) != nil || len(brs) != 1 ||
		brs[0].Addr != broker || brs[0].Version != "V4_9_8" {
		t.Fatalf("clusterList -o json: %s", out)
	}
	if tableOf(t, cli(t, ns, "brokerStatus", "-b", broker)).one(t, "Key", "brokerVersionDesc")["Value"] != "V4_9_8" {
		t.Fatal("brokerStatus")
	}
	cli(t, ns, "updateBrokerConfig", "-b", broker, "-k", "fileReservedTime", "-v", "24")
	if tableOf(t, cli(t, ns, "getBrokerConfig", "-b", broker)).one(t, "Key", "fileReservedTime")["Value"] != "24" {
		t.Fatal("getBrokerConfig after updateBrokerConfig")
	}
	if tableOf(t, cli(t, ns, "wipeWritePerm", "-b", "broker-a")).rows[0]["Topics Changed"] == "0" {
		t.Fatal("wipeWritePerm changed nothing")
	}
	cli(t, ns, "addWritePerm", "-b", "broker-a")
	if routePerm(t, ns, "CL1", "broker-a") != 6 {
		t.Fatal("addWritePerm")
	}
	tableOf(t, cli(t, ns, "getNamesrvConfig")).one(t, "Key", "kvConfigPath")
	var stats []admin.StatsRow
	cliJSON(t, ns, &stats, "statsAll", "-t", "CL1")
	if len(stats) != 1 || !stats[0].NoConsumer {
		t.Fatalf("statsAll %+v", stats)
	}
	del := tableOf(t, cli(t, ns, "deleteTopic", "-t", "CL2", "-c", "DefaultCluster"))
	if len(del.where("Deleted From", "broker")) != 1 {
		t.Fatalf("deleteTopic %v", del.rows)
	}
	if msg := cliFail(t, ns, "deleteTopic", "-t", "CL2"); !strings.Contains(msg, `required flag(s) "clusterName" not set`) {
		t.Fatalf("deleteTopic without -c: %s", msg)
	}

	if r := tableOf(t, cli(t, ns, "queryMsgByKey", "-t", "CL1", "-k", "ck1")); len(r.rows) != 1 || r.rows[0]["Message ID"] != s["MsgId"] {
		t.Fatalf("queryMsgByKey %v", r.rows)
	}
	if b := block(sections(cli(t, ns, "queryMsgByUniqueKey", "-t", "CL1", "-i", s["MsgId"]))[0]); b["OffsetID"] != s["Offset MsgId"] {
		t.Fatalf("queryMsgByUniqueKey %v", b)
	}
}

// TestMqadminNameServerResolution: -n beats NAMESRV_ADDR, which beats the
// config file's current context; --cluster-context picks another context;
// the config commands manage the file.
func TestMqadminNameServerResolution(t *testing.T) {
	c := startCluster(t)
	ns := c.ns.addr
	dead := closedAddr(t)
	cfg := filepath.Join(t.TempDir(), "mqadmin.yaml")
	if err := os.WriteFile(cfg, []byte("current-context: broken\ncontexts:\n  broken:\n    namesrv: \""+dead+"\"\n  Prod:\n    namesrv: \""+dead+";"+ns+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(env []string, args ...string) cliResult {
		return runCLI(t, env, append([]string{"--config", cfg}, args...)...)
	}
	// The current context points at nothing.
	if r := run(nil, "cluster", "list"); r.code == 0 || !strings.Contains(r.stderr, dead) {
		t.Fatalf("current context: exit %d %s", r.code, r.stderr)
	}
	// The environment beats the file, -n beats the environment.
	if r := run([]string{"NAMESRV_ADDR=" + ns}, "cluster", "list"); r.code != 0 {
		t.Fatalf("NAMESRV_ADDR: %s", r.stderr)
	}
	if r := run([]string{"NAMESRV_ADDR=" + dead}, "cluster", "list", "-n", ns); r.code != 0 {
		t.Fatalf("-n over NAMESRV_ADDR: %s", r.stderr)
	}
	// An explicit context beats the environment; a dead first name server
	// is skipped.
	if r := run([]string{"NAMESRV_ADDR=" + dead}, "cluster", "list", "--cluster-context", "prod"); r.code != 0 {
		t.Fatalf("--cluster-context: %s", r.stderr)
	}
	if r := run(nil, "cluster", "list", "--cluster-context", "nope"); r.code == 0 || !strings.Contains(r.stderr, `context "nope" not found`) {
		t.Fatalf("unknown context: %s", r.stderr)
	}

	ctxs := tableOf(t, run(nil, "config", "get-contexts").stdout)
	ctxs.wantHeader(t, "Current", "Name", "Namesrv")
	if ctxs.one(t, "Name", "broken")["Current"] != "*" || ctxs.one(t, "Name", "prod")["Current"] != "-" {
		t.Fatalf("get-contexts %v", ctxs.rows)
	}
	if r := run(nil, "config", "use-context", "PROD"); r.code != 0 {
		t.Fatalf("use-context: %s", r.stderr)
	}
	if r := run(nil, "config", "current-context"); strings.TrimSpace(r.stdout) != "prod" {
		t.Fatalf("current-context: %q", r.stdout)
	}
	if r := run(nil, "topic", "list"); r.code != 0 {
		t.Fatalf("after use-context: %s", r.stderr)
	}
	if r := run(nil, "config", "set-context", "local", "--namesrv-addr", ns); r.code != 0 {
		t.Fatalf("set-context: %s", r.stderr)
	}
	if r := run(nil, "cluster", "list", "--cluster-context", "local"); r.code != 0 {
		t.Fatalf("new context: %s", r.stderr)
	}
	// A missing --config file is an error, a missing default file is not.
	if r := runCLI(t, nil, "--config", cfg+".missing", "topic", "list"); r.code == 0 || !strings.Contains(r.stderr, "read config") {
		t.Fatalf("missing --config: %s", r.stderr)
	}
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".mqadmin.yaml"), []byte("current-context: x\ncontexts:\n  x:\n    namesrv: \""+ns+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, []string{"HOME=" + home}, "topic", "list"); r.code != 0 {
		t.Fatalf("~/.mqadmin.yaml: %s", r.stderr)
	}
}
