package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/mqops/mqops/mqadmin/admin"
)

// startTestListener runs a push consumer of topic with listener fn; it stops
// at the end of the test.
func startTestListener(t *testing.T, ns, group, topic string, fn func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error), opts ...consumer.Option) rocketmq.PushConsumer {
	t.Helper()
	opts = append([]consumer.Option{
		consumer.WithNameServer([]string{ns}),
		consumer.WithGroupName(group),
		consumer.WithInstance(instance("c")),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	}, opts...)
	pc, err := rocketmq.NewPushConsumer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Subscribe(topic, consumer.MessageSelector{}, fn); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatalf("start consumer: %v", err)
	}
	t.Cleanup(func() { _ = pc.Shutdown() })
	return pc
}

// traceTypeList lists the record types of a trace in order.
func traceTypeList(rs []admin.TraceRecord) string {
	var ts []string
	for _, r := range rs {
		ts = append(ts, r.Type)
	}
	return strings.Join(ts, ",")
}

// TestMQAdminTrace sends and consumes messages with the official Go
// client's tracing on, then reads their traces back with message trace
// (and Java's queryMsgTraceById): the Pub record, and a SubBefore/SubAfter
// pair per consume attempt, a failed attempt and its retry included.
func TestMQAdminTrace(t *testing.T) {
	t.Parallel() // waits on client and broker timers, not CPU: run beside the others
	c := startCluster(t, "traceTopicEnable=true")
	ns, broker := c.ns.addr, c.broker.addr
	const topic, pgroup, cgroup = "TraceT", "PG_trace", "CG_trace"
	cli(t, ns, "topic", "create", "-t", topic, "-b", broker, "--queues", "2")
	waitRoute(t, ns, topic, 1)
	waitRoute(t, ns, admin.DefaultTraceTopic, 1)

	tc := &primitive.TraceConfig{Access: primitive.Local, NamesrvAddrs: []string{ns}}
	p := newProducer(t, ns, producer.WithGroupName(pgroup), producer.WithTrace(tc))
	send := func(body string) *primitive.SendResult {
		t.Helper()
		r, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(body)).WithTag("TagT").WithKeys([]string{"order-" + body}))
		if err != nil || r.Status != primitive.SendOK {
			t.Fatalf("send %s: %v %+v", body, err, r)
		}
		return r
	}
	ok, flaky := send("ok"), send("flaky")

	// "flaky" fails once: its second attempt comes from the retry topic,
	// created up front so that the consumer has its route from the start.
	cli(t, ns, "topic", "create", "-t", admin.RetryPrefix+cgroup, "-b", broker, "--queues", "1")
	var mu sync.Mutex
	seen := map[string]int{}
	startTestListener(t, ns, cgroup, topic, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		res := consumer.ConsumeSuccess
		for _, m := range msgs {
			seen[string(m.Body)]++
			if string(m.Body) == "flaky" && seen["flaky"] == 1 {
				res = consumer.ConsumeRetryLater
			}
		}
		return res, nil
	}, consumer.WithTrace(tc))
	waitFor(t, 90*time.Second, "flaky consumed on retry", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen["ok"] >= 1 && seen["flaky"] >= 2
	})

	// Trace data go out asynchronously, in batches.
	var recs []admin.TraceRecord
	poll := func(id, want string) {
		t.Helper()
		waitFor(t, 30*time.Second, "trace "+want+" of "+id, func() bool {
			r := runCLI(t, nil, "message", "trace", "--id", id, "-o", "json", "-n", ns)
			recs = nil
			return r.code == 0 && json.Unmarshal([]byte(r.stdout), &recs) == nil && traceTypeList(recs) == want
		})
	}
	poll(ok.MsgID, "Pub,SubBefore,SubAfter")
	pub, before, after := recs[0], recs[1], recs[2]
	if pub.Group != pgroup || pub.Topic != topic || pub.MsgID != ok.MsgID || pub.OffsetMsgID != ok.OffsetMsgID ||
		pub.StoreHost != broker || pub.Tags != "TagT" || pub.Keys != "order-ok" || pub.BodyLength != 2 ||
		pub.MsgType != "Normal_Msg" || pub.Success == nil || !*pub.Success || pub.ClientHost == "" || pub.RegionID == "" {
		t.Fatalf("pub record %+v", pub)
	}
	if before.Group != cgroup || before.Topic != topic || before.RetryTimes != 0 || before.Success != nil || before.RequestID == "" || before.ClientHost == "" {
		t.Fatalf("subBefore record %+v", before)
	}
	if after.Group != cgroup || after.Topic != topic || after.RequestID != before.RequestID || after.Success == nil || !*after.Success ||
		after.ClientHost != before.ClientHost || after.ContextCode != 0 {
		t.Fatalf("subAfter record %+v", after)
	}
	if !(pub.Timestamp <= before.Timestamp && before.Timestamp <= after.Timestamp) || pub.Timestamp < time.Now().Add(-time.Minute).UnixMilli() {
		t.Fatalf("trace times %d %d %d", pub.Timestamp, before.Timestamp, after.Timestamp)
	}

	// The table: one row per record, Java's #Type … #Status columns.
	out := cli(t, ns, "message", "trace", "--id", ok.MsgID)
	tb := tableOf(t, out)
	tb.wantHeader(t, "Type", "Time", "Group", "Topic", "ClientHost", "StoreHost", "CostTimes", "Status", "RetryTimes")
	if len(tb.rows) != 3 {
		t.Fatalf("trace table:\n%s", out)
	}
	if r := tb.one(t, "Type", "Pub"); r["Group"] != pgroup || r["Topic"] != topic || r["StoreHost"] != broker || r["Status"] != "success" ||
		!strings.HasSuffix(r["CostTimes"], "ms") || r["RetryTimes"] != "-" || r["Time"] != time.UnixMilli(pub.Timestamp).Format("2006-01-02 15:04:05,000") {
		t.Fatalf("pub row %v", r)
	}
	if r := tb.one(t, "Type", "SubBefore"); r["Group"] != cgroup || r["Status"] != "-" || r["RetryTimes"] != "0" || r["CostTimes"] != "-" {
		t.Fatalf("subBefore row %v", r)
	}
	if r := tb.one(t, "Type", "SubAfter"); r["Group"] != cgroup || r["Status"] != "success" || r["Topic"] != topic || r["ClientHost"] != before.ClientHost {
		t.Fatalf("subAfter row %v", r)
	}
	// Java's name and flags print the same.
	if classic := cli(t, ns, "queryMsgTraceById", "-i", ok.MsgID, "-t", admin.DefaultTraceTopic); classic != out {
		t.Fatalf("queryMsgTraceById:\n%s\nwant:\n%s", classic, out)
	}

	// A failed attempt, then the retry (reconsume 1) that succeeded.
	poll(flaky.MsgID, "Pub,SubBefore,SubAfter,SubBefore,SubAfter")
	if f1, f2 := recs[2], recs[4]; f1.Success == nil || *f1.Success || recs[1].RetryTimes != 0 || f1.ContextCode != 4 ||
		f2.Success == nil || !*f2.Success || recs[3].RetryTimes != 1 || f2.RetryTimes != 1 || recs[3].RequestID == recs[1].RequestID {
		t.Fatalf("flaky trace %+v", recs)
	}
	flakyTable := tableOf(t, cli(t, ns, "message", "trace", "--id", flaky.MsgID))
	if st := flakyTable.where("Type", "SubAfter"); len(st) != 2 || st[0]["Status"] != "failed" || st[1]["Status"] != "success" || st[1]["RetryTimes"] != "1" {
		t.Fatalf("flaky table %v", flakyTable.rows)
	}

	// Failures: an id without trace data, a trace topic that does not exist.
	if msg := cliFail(t, ns, "message", "trace", "--id", "7F0000012F1A000000005a3d1c2b0003"); !strings.Contains(msg, "no trace data in topic RMQ_SYS_TRACE_TOPIC") {
		t.Fatalf("unknown id: %s", msg)
	}
	if msg := cliFail(t, ns, "message", "trace", "--id", ok.MsgID, "-t", "NoSuchTrace"); !strings.Contains(msg, "route of topic NoSuchTrace: TOPIC_NOT_EXIST") {
		t.Fatalf("missing trace topic: %s", msg)
	}

	// Traces are ordinary stored messages: a restart keeps them.
	c.broker.stop()
	c.broker = restartBroker(t, c, "traceTopicEnable=true")
	waitRoute(t, ns, admin.DefaultTraceTopic, 1)
	if again := cli(t, ns, "message", "trace", "--id", ok.MsgID); again != out {
		t.Fatalf("trace after a restart:\n%s\nwant:\n%s", again, out)
	}
}
