package e2e

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/mqops/mqops/mqadmin/admin"
)

// directDeliveries records what a listener was handed, by client message id.
type directDeliveries struct {
	mu    sync.Mutex
	count map[string]int
	topic map[string]string // last topic seen per id
	// reject makes the listener answer ConsumeRetryLater that many times.
	reject atomic.Int32
}

func newDirectDeliveries() *directDeliveries {
	return &directDeliveries{count: map[string]int{}, topic: map[string]string{}}
}

func (d *directDeliveries) consume(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range msgs {
		d.count[m.MsgId]++
		d.topic[m.MsgId] = m.Topic
	}
	if d.reject.Load() > 0 {
		d.reject.Add(-1)
		return consumer.ConsumeRetryLater, nil
	}
	return consumer.ConsumeSuccess, nil
}

func (d *directDeliveries) of(id string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.count[id]
}

// groupStatusJSON is group status -o json.
type groupStatusJSON struct {
	Group                   string                      `json:"group"`
	Clients                 []admin.ConsumerRunningInfo `json:"clients"`
	SubscriptionsConsistent bool                        `json:"subscriptionsConsistent"`
	SharedQueues            []string                    `json:"sharedQueues"`
}

// groupConfig returns a group's config from group list -o json.
func listedGroupConfig(t *testing.T, ns, group string) *admin.GroupConfig {
	t.Helper()
	var gs []admin.GroupConfig
	cliJSON(t, ns, &gs, "group", "list")
	for i := range gs {
		if gs[i].Config.GroupName == group {
			return &gs[i]
		}
	}
	t.Fatalf("group %s not in group list: %+v", group, gs)
	return nil
}

// TestMQAdminConsumer drives a live Go push consumer: its running state
// through group status (and Java's consumerStatus), stored messages handed
// straight to its listener with message resend (and queryMsgById -g -d),
// and the group's pause, resume and rate limit, which must survive a
// broker restart.
func TestMQAdminConsumer(t *testing.T) {
	t.Parallel() // waits on client and broker timers, not CPU: run beside the others
	c := startCluster(t)
	ns, broker := c.ns.addr, c.broker.addr
	const topic, group = "ConsumerT", "CG_live"
	cli(t, ns, "topic", "create", "-t", topic, "-b", broker, "--queues", "4")
	waitRoute(t, ns, topic, 1)
	p := newProducer(t, ns)
	sent := sendN(t, p, topic, "m", 4)
	d := newDirectDeliveries()
	startTestListener(t, ns, group, topic, d.consume)
	waitFor(t, 30*time.Second, "4 messages consumed", func() bool {
		for _, r := range sent {
			if d.of(r.MsgID) != 1 {
				return false
			}
		}
		return true
	})
	var cc admin.ConsumerConnection
	cliJSON(t, ns, &cc, "group", "connections", "-g", group)
	if len(cc.Connections) != 1 {
		t.Fatalf("connections %+v", cc)
	}
	client := cc.Connections[0].ClientID

	// Running info: every queue held, offsets as the client keeps them.
	var st groupStatusJSON
	waitFor(t, 30*time.Second, "client offsets at 4", func() bool {
		cliJSON(t, ns, &st, "group", "status", "-g", group)
		if len(st.Clients) != 1 {
			return false
		}
		var sum int64
		n := 0
		for _, q := range st.Clients[0].Queues {
			if q.Topic == topic {
				sum += q.CommitOffset
				n++
			}
		}
		return n == 4 && sum == 4
	})
	info := st.Clients[0]
	if st.Group != group || !st.SubscriptionsConsistent || len(st.SharedQueues) != 0 || info.ClientID != client ||
		info.Properties[admin.PropClientVersion] == "" || info.Properties[admin.PropConsumeType] != "CONSUME_PASSIVELY" ||
		info.Properties[admin.PropConsumeOrderly] != "false" || info.JStack != "" {
		t.Fatalf("status json %+v", st)
	}
	subs := map[string]string{}
	for _, s := range info.Subscriptions {
		subs[s.Topic] = s.SubString
	}
	if subs[topic] != "*" || subs[admin.RetryPrefix+group] != "*" {
		t.Fatalf("subscriptions %+v", info.Subscriptions)
	}
	if _, ok := info.StatusTable[topic]; !ok {
		t.Fatalf("status table %+v", info.StatusTable)
	}
	for _, q := range info.Queues {
		if q.Topic == topic && (q.BrokerName != "broker-a" || q.Dropped || q.LastPullTimestamp == 0) {
			t.Fatalf("process queue %+v", q)
		}
	}

	out := cli(t, ns, "group", "status", "-g", group)
	secs := sections(out)
	if len(secs) != 6 {
		t.Fatalf("group status output:\n%s", out)
	}
	idx := parseTable(t, secs[0])
	idx.wantHeader(t, "Index", "ClientId", "Version", "Queues", "Cached Msgs")
	if r := idx.one(t, "ClientId", client); r["Index"] != "1" || r["Version"] != info.Properties[admin.PropClientVersion] {
		t.Fatalf("index row %v", r)
	}
	if b := block(secs[1]); b["Client ID"] != client || b["Consume Type"] != "CONSUME_PASSIVELY" || b["Client Version"] == "" {
		t.Fatalf("client block %v", b)
	}
	subTable := parseTable(t, secs[2])
	subTable.wantHeader(t, "Topic", "Expression Type", "SubExpression")
	if r := subTable.one(t, "Topic", topic); r["SubExpression"] != "*" {
		t.Fatalf("subscription row %v", r)
	}
	rates := parseTable(t, secs[3])
	rates.wantHeader(t, "Topic", "Pull RT", "Pull TPS", "Consume RT", "ConsumeOK TPS", "ConsumeFailed TPS", "ConsumeFailedMsgsInHour")
	rates.one(t, "Topic", topic)
	queues := parseTable(t, secs[4])
	queues.wantHeader(t, "Topic", "Broker Name", "QID", "Consumer Offset", "Cached Msgs", "Cached Offsets", "Cached MiB", "Locked", "Dropped", "Last Pull", "Last Consume")
	if rs := queues.where("Topic", topic); len(rs) != 4 || rs[0]["QID"] != "0" || rs[3]["QID"] != "3" || rs[0]["Dropped"] != "false" {
		t.Fatalf("queue rows %v", queues.rows)
	}
	if b := block(secs[5]); b["Clients"] != "1" || b["Subscriptions Consistent"] != "true" || b["Queues Held Twice"] != "none" {
		t.Fatalf("status footer %v", b)
	}
	// One client, with its goroutine dump (the Go client sends it unescaped).
	cliJSON(t, ns, &st, "group", "status", "-g", group, "-c", client, "--jstack")
	if len(st.Clients) != 1 || !strings.Contains(st.Clients[0].JStack, "goroutine") || len(st.Clients[0].Queues) < 4 {
		t.Fatalf("status with jstack: %d clients", len(st.Clients))
	}
	// Java's consumerStatus -i prints the client inline, no index table.
	classic := sections(cli(t, ns, "consumerStatus", "-g", group, "-i", client, "-b", broker))
	if len(classic) != 4 || block(classic[0])["Client ID"] != client {
		t.Fatalf("consumerStatus:\n%s", strings.Join(classic, "\n\n"))
	}
	if msg := cliFail(t, ns, "group", "status", "-g", group, "-c", "127.0.0.1@nobody"); !strings.Contains(msg, "client 127.0.0.1@nobody of group "+group) ||
		!strings.Contains(msg, "The Consumer <"+group+"> <127.0.0.1@nobody> not online") {
		t.Fatalf("unknown client: %s", msg)
	}
	if msg := cliFail(t, ns, "group", "status", "-g", "CG_nobody"); !strings.Contains(msg, "CG_nobody") || !strings.Contains(msg, "CONSUMER_NOT_ONLINE") {
		t.Fatalf("offline group: %s", msg)
	}

	// Resend: the listener sees the message again; offsets do not move.
	var gp admin.GroupProgress
	waitFor(t, 30*time.Second, "offsets committed", func() bool {
		cliJSON(t, ns, &gp, "group", "progress", "-g", group, "-t", topic)
		return gp.DiffTotal == 0
	})
	target := sent[1]
	res := tableOf(t, cli(t, ns, "message", "resend", "--id", target.OffsetMsgID, "-g", group))
	res.wantHeader(t, "MsgId", "Offset MsgId", "Topic", "Group", "ClientId", "Consume Result", "Spent(ms)", "Remark")
	if r := res.one(t, "Offset MsgId", target.OffsetMsgID); r["MsgId"] != target.MsgID || r["Topic"] != topic || r["Consume Result"] != "CR_SUCCESS" || r["ClientId"] != "-" {
		t.Fatalf("resend row %v", r)
	}
	if n := d.of(target.MsgID); n != 2 {
		t.Fatalf("listener saw the message %d times, want 2", n)
	}
	var results []admin.DirectResult
	cliJSON(t, ns, &results, "message", "resend", "--id", target.OffsetMsgID, "-g", group, "-c", client)
	if len(results) != 1 || results[0].ConsumeResult != admin.ConsumeSuccess || results[0].ClientID != client || !results[0].AutoCommit || results[0].SpentTimeMs < 0 {
		t.Fatalf("resend json %+v", results)
	}
	// Java's queryMsgById -g -d, and a client id looked up in the topic.
	if r := tableOf(t, cli(t, ns, "queryMsgById", "-i", target.OffsetMsgID, "-g", group, "-d", client)).one(t, "MsgId", target.MsgID); r["Consume Result"] != "CR_SUCCESS" {
		t.Fatalf("queryMsgById -g -d row %v", r)
	}
	cliJSON(t, ns, &results, "message", "resend", "--id", target.MsgID, "-t", topic, "-g", group)
	if len(results) != 1 || results[0].OffsetMsgID != target.OffsetMsgID || results[0].ConsumeResult != admin.ConsumeSuccess {
		t.Fatalf("resend by client id %+v", results)
	}
	if r := tableOf(t, cli(t, ns, "queryMsgByUniqueKey", "-t", topic, "-i", target.MsgID, "-g", group, "-d", client)).one(t, "MsgId", target.MsgID); r["Consume Result"] != "CR_SUCCESS" {
		t.Fatalf("queryMsgByUniqueKey -g -d row %v", r)
	}
	if n := d.of(target.MsgID); n != 6 {
		t.Fatalf("listener saw the message %d times, want 6", n)
	}
	cliJSON(t, ns, &gp, "group", "progress", "-g", group, "-t", topic)
	if gp.DiffTotal != 0 || len(gp.Queues) != 4 {
		t.Fatalf("resend moved offsets: %+v", gp)
	}
	// A listener that declines fails the command, naming its answer.
	d.reject.Store(1)
	if msg := cliFail(t, ns, "message", "resend", "--id", target.OffsetMsgID, "-g", group); !strings.Contains(msg, "resend message "+target.OffsetMsgID+" to group "+group+": CR_LATER after") {
		t.Fatalf("declined resend: %s", msg)
	}
	if msg := cliFail(t, ns, "message", "resend", "--id", target.OffsetMsgID, "-g", group, "-c", "127.0.0.1@nobody"); !strings.Contains(msg, "not online") || !strings.Contains(msg, "127.0.0.1@nobody") {
		t.Fatalf("resend to an unknown client: %s", msg)
	}
	if msg := cliFail(t, ns, "message", "resend", "--id", target.OffsetMsgID, "-g", "CG_nobody"); !strings.Contains(msg, "The Consumer <CG_nobody> <> not online") {
		t.Fatalf("resend to an offline group: %s", msg)
	}

	// The use case: re-push a dead letter to the live consumer.
	t.Run("dead letter", func(t *testing.T) {
		const dgroup = "CG_dead"
		// No retries: the first failure sends the message to %DLQ%CG_dead.
		cli(t, ns, "group", "create", "-g", dgroup, "-b", broker, "--retry-max-times", "0")
		dead := sendN(t, p, topic, "dead", 1)[0]
		dd := newDirectDeliveries()
		dd.reject.Store(100) // everything already stored dies too
		startTestListener(t, ns, dgroup, topic, dd.consume, consumer.WithMaxReconsumeTimes(0))
		dlq := admin.DLQPrefix + dgroup
		waitFor(t, 30*time.Second, "dead letter stored", func() bool {
			return runCLI(t, nil, "message", "get", "--unique-key", dead.MsgID, "-t", dlq, "--no-track", "-n", ns).code == 0
		})
		dd.reject.Store(0)
		r := runCLI(t, nil, "message", "resend", "--id", dead.MsgID, "-t", dlq, "-g", dgroup, "-o", "json", "-n", ns)
		if r.code != 0 {
			t.Fatalf("resend of a dead letter: exit %d: %s", r.code, r.stderr)
		}
		if n := dd.of(dead.MsgID); n != 2 {
			t.Fatalf("listener saw the dead letter %d times, want 2", n)
		}
		dd.mu.Lock()
		defer dd.mu.Unlock()
		if got := dd.topic[dead.MsgID]; got != topic {
			t.Fatalf("the listener saw the dead letter under topic %s, want %s", got, topic)
		}
	})

	// Pause, limit, resume: only the setting asked for changes.
	paused := tableOf(t, cli(t, ns, "group", "pause", "-g", group, "-b", "broker-a"))
	paused.wantHeader(t, "Broker Name", "Broker Addr", "Group", "Consume Enable", "Rate Limit")
	if r := paused.one(t, "Broker Name", "broker-a"); r["Broker Addr"] != broker || r["Group"] != group || r["Consume Enable"] != "false" || r["Rate Limit"] != "-" {
		t.Fatalf("pause row %v", r)
	}
	if g := listedGroupConfig(t, ns, group); g.Config.ConsumeEnable || g.Config.ConsumeRateLimit != 0 {
		t.Fatalf("after pause %+v", g.Config)
	}
	var limited struct {
		Group   string              `json:"group"`
		Brokers []admin.GroupChange `json:"brokers"`
	}
	cliJSON(t, ns, &limited, "group", "limit", "-g", group, "--rate", "50", "-c", "DefaultCluster")
	if len(limited.Brokers) != 1 || limited.Brokers[0].Config.ConsumeRateLimit != 50 || limited.Brokers[0].Config.ConsumeEnable || limited.Brokers[0].Created {
		t.Fatalf("limit %+v", limited)
	}
	if r := tableOf(t, cli(t, ns, "group", "resume", "-g", group, "-c", "DefaultCluster")).one(t, "Group", group); r["Consume Enable"] != "true" || r["Rate Limit"] != "50" {
		t.Fatalf("resume row %v", r)
	}
	cli(t, ns, "group", "pause", "-g", group, "-c", "DefaultCluster")
	list := tableOf(t, cli(t, ns, "group", "list"))
	list.wantHeader(t, "Group", "Brokers", "Consume Enable", "Broadcast Enable", "Retry Queues", "Retry Max Times", "Rate Limit", "Orderly", "Retry Policy")
	if r := list.one(t, "Group", group); r["Consume Enable"] != "false" || r["Rate Limit"] != "50" {
		t.Fatalf("group list row %v", r)
	}
	// A group the broker does not know yet starts from the defaults; create
	// and update take the limit too.
	cliJSON(t, ns, &limited, "group", "pause", "-g", "CG_fresh", "-b", broker)
	if cfg := limited.Brokers[0].Config; !limited.Brokers[0].Created || cfg.ConsumeEnable || cfg.RetryMaxTimes != 16 || !cfg.ConsumeBroadcastEnable {
		t.Fatalf("pause of a new group %+v", limited)
	}
	cli(t, ns, "group", "create", "-g", "CG_limited", "-b", "broker-a", "--rate-limit", "20")
	if g := listedGroupConfig(t, ns, "CG_limited"); g.Config.ConsumeRateLimit != 20 || !g.Config.ConsumeEnable {
		t.Fatalf("created %+v", g.Config)
	}
	cli(t, ns, "group", "update", "-g", "CG_limited", "-b", "broker-a", "--rate-limit", "30", "--retry-max-times", "3")

	// The broker keeps it all across a restart.
	c.broker.stop()
	c.broker = restartBroker(t, c)
	waitRoute(t, ns, topic, 1)
	for name, want := range map[string]struct {
		enable bool
		rate   int
	}{group: {false, 50}, "CG_fresh": {false, 0}, "CG_limited": {true, 30}} {
		if g := listedGroupConfig(t, ns, name); g.Config.ConsumeEnable != want.enable || g.Config.ConsumeRateLimit != want.rate {
			t.Fatalf("after restart %s: %+v", name, g.Config)
		}
	}
	if g := listedGroupConfig(t, ns, "CG_limited"); g.Config.RetryMaxTimes != 3 {
		t.Fatalf("after restart CG_limited: %+v", g.Config)
	}
	cliJSON(t, ns, &limited, "group", "limit", "-g", group, "--rate", "0", "-b", broker)
	if cfg := limited.Brokers[0].Config; cfg.ConsumeRateLimit != 0 || cfg.ConsumeEnable {
		t.Fatalf("limit 0 %+v", cfg)
	}
	if r := tableOf(t, cli(t, ns, "group", "resume", "-g", group, "-b", broker)).one(t, "Group", group); r["Consume Enable"] != "true" || r["Rate Limit"] != "-" {
		t.Fatalf("resume after restart %v", r)
	}

	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"group", "pause", "-g", group}, "give exactly one of a broker (-b) or a cluster (-c)"},
		{[]string{"group", "limit", "-g", group, "--rate=-1", "-b", broker}, "--rate must be 0 (unlimited) or more"},
		{[]string{"group", "limit", "-g", group, "-b", broker}, `required flag(s) "rate" not set`},
		{[]string{"group", "create", "-g", group, "-b", broker, "--rate-limit=-5"}, "--rate-limit must be 0 (unlimited) or more"},
		{[]string{"group", "resume", "-g", group, "-c", "NoCluster"}, "cluster NoCluster not found"},
	} {
		if msg := cliFail(t, ns, bad.args...); !strings.Contains(msg, bad.want) {
			t.Errorf("%v: %s; want %q", bad.args, msg, bad.want)
		}
	}
}
