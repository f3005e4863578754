package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/mqops/mqops/mqadmin/admin"
)

// TestMqadminGroups is use cases 3, 4 and 6: group config, producer and
// consumer connections, per-queue progress with delay, the cluster-wide
// backlog table, and offset resets for an offline and an online group.
func TestMqadminGroups(t *testing.T) {
	c := startTwoBrokers(t)
	ns := c.ns.addr
	const topic, group, pgroup = "UC3", "CG_uc3", "PG_uc3"
	cli(t, ns, "topic", "create", "-t", topic, "-c", "DefaultCluster", "--queues", "4")
	waitRoute(t, ns, topic, 2)

	created := tableOf(t, cli(t, ns, "group", "create", "-g", group, "-c", "DefaultCluster", "--retry-max-times", "5"))
	created.wantHeader(t, "Broker Name", "Broker Addr", "Group")
	if len(created.rows) != 2 {
		t.Fatalf("group created on %v", created.rows)
	}
	groups := tableOf(t, cli(t, ns, "group", "list"))
	groups.wantHeader(t, "Group", "Brokers", "Consume Enable", "Broadcast Enable", "Retry Queues", "Retry Max Times", "Rate Limit", "Orderly", "Retry Policy")
	if r := groups.one(t, "Group", group); r["Brokers"] != "broker-a,broker-b" || r["Retry Max Times"] != "5" || r["Consume Enable"] != "true" ||
		r["Orderly"] != "false" || r["Retry Policy"] != "CUSTOMIZED" {
		t.Fatalf("group row %v", r)
	}

	start := time.Now().UnixMilli()
	p := newProducer(t, ns, producer.WithGroupName(pgroup))
	sendN(t, p, topic, "a", 40)
	// Producers announce themselves with their periodic heartbeat.
	waitFor(t, 45*time.Second, "producer heartbeat", func() bool {
		return runCLI(t, nil, "producer", "connections", "-g", pgroup, "-t", topic, "-n", ns).code == 0
	})
	pconns := tableOf(t, cli(t, ns, "producer", "connections", "-g", pgroup, "-t", topic))
	pconns.wantHeader(t, "ClientId", "ClientAddr", "Language", "Version", "Protocol")
	if len(pconns.rows) != 1 || pconns.rows[0]["Language"] != "GO" || !strings.HasPrefix(pconns.rows[0]["ClientAddr"], "127.0.0.1:") {
		t.Fatalf("producer connections %v", pconns.rows)
	}
	var pjson []admin.Connection
	cliJSON(t, ns, &pjson, "producer", "connections", "-g", pgroup, "-t", topic)
	if len(pjson) != 1 || pjson[0].VersionDesc != admin.VersionDesc(pjson[0].Version) || pjson[0].VersionDesc != pconns.rows[0]["Version"] {
		t.Fatalf("producer connections json %+v", pjson)
	}

	col := newCollector()
	pc := newPushConsumer(t, ns, group, topic, consumer.MessageSelector{}, col, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	waitFor(t, 30*time.Second, "40 messages", func() bool { return col.count() == 40 })
	out := cli(t, ns, "group", "connections", "-g", group)
	secs := sections(out)
	if len(secs) != 3 {
		t.Fatalf("connections output:\n%s", out)
	}
	conns := parseTable(t, secs[0])
	conns.wantHeader(t, "ClientId", "ClientAddr", "Language", "Version", "Protocol")
	if len(conns.rows) != 1 || conns.rows[0]["Language"] != "GO" || conns.rows[0]["Protocol"] != "remoting" {
		t.Fatalf("consumer connections %v", conns.rows)
	}
	subs := parseTable(t, secs[1])
	subs.wantHeader(t, "Topic", "SubExpression")
	if subs.one(t, "Topic", topic)["SubExpression"] != "*" {
		t.Fatalf("subscriptions %v", subs.rows)
	}
	if b := block(secs[2]); b["ConsumeType"] != "CONSUME_PASSIVELY" || b["MessageModel"] != "CLUSTERING" || b["ConsumeFromWhere"] != "CONSUME_FROM_FIRST_OFFSET" {
		t.Fatalf("connection footer %v", b)
	}

	var gp admin.GroupProgress
	waitFor(t, 30*time.Second, "offsets committed", func() bool {
		cliJSON(t, ns, &gp, "group", "progress", "-g", group, "-t", topic)
		return len(gp.Queues) == 8 && gp.DiffTotal == 0
	})
	if err := pc.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "group offline", func() bool {
		r := runCLI(t, nil, "group", "connections", "-g", group, "-n", ns)
		return r.code != 0 && strings.Contains(r.stderr, "CONSUMER_NOT_ONLINE")
	})

	// A backlog of 10 while nobody consumes.
	sendN(t, p, topic, "b", 10)
	waitFor(t, 10*time.Second, "backlog of 10", func() bool {
		cliJSON(t, ns, &gp, "group", "progress", "-g", group, "-t", topic)
		return gp.DiffTotal == 10
	})
	out = cli(t, ns, "group", "progress", "-g", group, "-t", topic)
	prog := tableOf(t, out)
	prog.wantHeader(t, "Topic", "Broker Name", "QID", "Broker Offset", "Consumer Offset", "Diff", "LastTime", "Delay(s)")
	var diff int64
	for _, r := range prog.rows {
		bo, _ := strconv.ParseInt(r["Broker Offset"], 10, 64)
		co, _ := strconv.ParseInt(r["Consumer Offset"], 10, 64)
		d, _ := strconv.ParseInt(r["Diff"], 10, 64)
		if r["Topic"] != topic || d != bo-co || (co > 0) != (r["LastTime"] != "-") {
			t.Fatalf("progress row %v", r)
		}
		if _, err := strconv.ParseInt(r["Delay(s)"], 10, 64); err != nil {
			t.Fatalf("delay %v", r)
		}
		diff += d
	}
	if diff != 10 || !strings.Contains(out, "\nConsume Diff Total: 10\n") {
		t.Fatalf("progress:\n%s", out)
	}
	for _, q := range gp.Queues {
		if q.Diff > 0 && q.DelaySeconds < 0 || q.Diff == 0 && q.DelaySeconds != 0 || q.LastTimestamp > 0 && q.LastTimestamp < start {
			t.Fatalf("progress json %+v", q)
		}
	}

	summary := tableOf(t, cli(t, ns, "group", "progress"))
	summary.wantHeader(t, "Group", "Count", "Version", "Type", "Model", "TPS", "Diff Total")
	if r := summary.one(t, "Group", group); r["Count"] != "0" || r["Version"] != "OFFLINE" || r["Diff Total"] != "10" {
		t.Fatalf("summary row %v", r)
	}

	// Backlog across the cluster: one row per group and topic, largest first.
	bl := tableOf(t, cli(t, ns, "group", "backlog", "-c", "DefaultCluster"))
	bl.wantHeader(t, "Group", "Topic", "Brokers", "Queues", "Broker Offset", "Consumer Offset", "Diff", "LastTime")
	if r := bl.rows[0]; r["Group"] != group || r["Topic"] != topic || r["Brokers"] != "2" || r["Queues"] != "8" || r["Diff"] != "10" || r["Broker Offset"] != "50" {
		t.Fatalf("backlog rows %v", bl.rows)
	}
	out = cli(t, ns, "group", "backlog", "--per-queue", "--min-diff", "1")
	perQ := tableOf(t, out)
	perQ.wantHeader(t, "Topic", "Group", "Broker Name", "QID", "Broker Offset", "Consumer Offset", "Diff", "LastTime")
	diff = 0
	for _, r := range perQ.rows {
		d, _ := strconv.ParseInt(r["Diff"], 10, 64)
		if d < 1 || r["Group"] != group {
			t.Fatalf("per-queue row %v", r)
		}
		diff += d
	}
	if diff != 10 || !strings.Contains(out, "\nDiff Total: 10\n") {
		t.Fatalf("per-queue backlog:\n%s", out)
	}

	// Offline reset: offsets are committed directly (Java's six columns).
	reset := tableOf(t, cli(t, ns, "group", "reset-offset", "-g", group, "-t", topic, "--to-time", strconv.FormatInt(start-1000, 10)))
	reset.wantHeader(t, "brokerName", "queueId", "brokerOffset", "consumerOffset", "timestampOffset", "resetOffset")
	if len(reset.rows) != 8 {
		t.Fatalf("reset rows %v", reset.rows)
	}
	for _, r := range reset.rows {
		if r["timestampOffset"] != "0" || r["resetOffset"] != "0" {
			t.Fatalf("reset row %v", r)
		}
	}
	cliJSON(t, ns, &gp, "group", "progress", "-g", group, "-t", topic)
	if gp.DiffTotal != 50 {
		t.Fatalf("after reset to the start: diff %d", gp.DiffTotal)
	}
	var skipped admin.ResetResult
	cliJSON(t, ns, &skipped, "group", "reset-offset", "-g", group, "-t", topic, "--to-latest")
	if skipped.Online || len(skipped.Queues) != 8 {
		t.Fatalf("skip: %+v", skipped)
	}
	cliJSON(t, ns, &gp, "group", "progress", "-g", group, "-t", topic)
	if gp.DiffTotal != 0 {
		t.Fatalf("after skip: diff %d", gp.DiffTotal)
	}

	// Online reset: the broker tells the running client, which re-reads.
	again := newCollector()
	newPushConsumer(t, ns, group, topic, consumer.MessageSelector{}, again)
	waitFor(t, 10*time.Second, "group online", func() bool {
		return runCLI(t, nil, "group", "connections", "-g", group, "-n", ns).code == 0
	})
	online := tableOf(t, cli(t, ns, "group", "reset-offset", "-g", group, "-t", topic, "--to-time", strconv.FormatInt(start-1000, 10)))
	online.wantHeader(t, "brokerName", "queueId", "offset")
	if len(online.rows) != 8 || len(online.where("offset", "0")) != 8 {
		t.Fatalf("online reset rows %v", online.rows)
	}
	waitFor(t, 60*time.Second, "50 messages consumed again", func() bool { return again.count() == 50 })

	deleted := tableOf(t, cli(t, ns, "group", "delete", "-g", "CG_unused", "-b", "broker-a", "--remove-offset"))
	if len(deleted.rows) != 1 || deleted.rows[0]["Broker Addr"] != c.a.broker.addr {
		t.Fatalf("delete rows %v", deleted.rows)
	}
	if msg := cliFail(t, ns, "group", "connections", "-g", "CG_nobody"); !strings.Contains(msg, "CONSUMER_NOT_ONLINE") {
		t.Fatalf("offline group: %s", msg)
	}
	if msg := cliFail(t, ns, "group", "reset-offset", "-g", group, "-t", topic); !strings.Contains(msg, "at least one of the flags in the group [to-time to-latest] is required") {
		t.Fatalf("reset without target: %s", msg)
	}
}
