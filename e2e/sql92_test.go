package e2e

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/mqops/mqops/wire"
)

const sqlSelector = "a BETWEEN 3 AND 5 AND TAGS IN ('x','y')"

// sendSQLBatch sends n messages through the official producer: property a
// is i%8 (absent for every 10th message, "abc" for every 13th), tags x, y,
// z in turn. It returns the bodies sqlSelector selects, sorted.
func sendSQLBatch(t *testing.T, ns, topic string, n int) []string {
	t.Helper()
	p := newProducer(t, ns)
	var want []string
	for i := 0; i < n; i++ {
		body := fmt.Sprintf("sql-%03d", i)
		tag := string("xyz"[i%3])
		m := primitive.NewMessage(topic, []byte(body)).WithTag(tag)
		a, match := strconv.Itoa(i%8), i%8 >= 3 && i%8 <= 5 && tag != "z"
		switch {
		case i%10 == 0:
			a, match = "", false
		case i%13 == 0:
			a, match = "abc", false // not a number: Java's evaluation fails, no match
		}
		if a != "" {
			m.WithProperty("a", a)
		}
		if r, err := p.SendSync(context.Background(), m); err != nil || r.Status != primitive.SendOK {
			t.Fatalf("send %s: %v %v", body, r, err)
		}
		if match {
			want = append(want, body)
		}
	}
	slices.Sort(want)
	return want
}

// pullAs pulls queue 0 of topic as group with the subscription the group's
// heartbeat registered, as a v2.1.2 push consumer does, and returns the
// answer's code and remark.
func pullAs(t *testing.T, broker, group, topic string) (int32, string) {
	t.Helper()
	resp := invoke(t, broker, wire.PullMessage, map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": "0", "queueOffset": "0", "maxMsgNums": "32",
		"sysFlag": "0", "commitOffset": "0", "suspendTimeoutMillis": "0", "subVersion": "0",
	}, nil)
	return resp.Code, string(resp.Remark)
}

// TestSQL92PushConsumer: a v2.1.2 push consumer with an SQL92 selector
// receives exactly the messages the expression selects out of a mixed
// batch; the broker skips the others (the group's committed offsets reach
// the end of every queue with nothing else delivered).
func TestSQL92PushConsumer(t *testing.T) {
	t.Parallel()
	c := startCluster(t, "enablePropertyFilter=true")
	const topic, queues = "Sql92Orders", 2
	createTopic(t, c, topic, queues)
	want := sendSQLBatch(t, c.ns.addr, topic, 80)
	waitDispatched(t, c.broker.addr, topic, queues, 80)

	col := newCollector()
	newPushConsumer(t, c.ns.addr, "CG_sql92", topic, consumer.MessageSelector{Type: consumer.SQL92, Expression: sqlSelector}, col,
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	// Offsets move only past consumed or skipped messages: once both queues'
	// committed offsets are at their ends, everything delivered is in col.
	waitFor(t, 90*time.Second, "the group's offsets at the end of the queues", func() bool {
		for q := 0; q < queues; q++ {
			if off, _ := committedOffset(t, c.broker.addr, "CG_sql92", topic, q); off < maxOffset(t, c.broker.addr, topic, q) {
				return false
			}
		}
		return col.count() == len(want)
	})
	col.mu.Lock()
	var got []string
	for body, m := range col.msgs {
		got = append(got, body)
		a, _ := strconv.Atoi(m.GetProperty("a"))
		if a < 3 || a > 5 || (m.GetTags() != "x" && m.GetTags() != "y") {
			t.Errorf("%s delivered with a=%q tag %q", body, m.GetProperty("a"), m.GetTags())
		}
	}
	col.mu.Unlock()
	slices.Sort(got)
	if !slices.Equal(got, want) || col.n.Load() != int64(len(want)) {
		t.Fatalf("delivered %d (%d deliveries) %v\nwant %d %v", len(got), col.n.Load(), got, len(want), want)
	}
}

// TestSQL92Refused: a bad expression's pulls are refused with
// SUBSCRIPTION_PARSE_FAILED naming the error; with enablePropertyFilter
// off (the default) an SQL92 subscription's pulls get Java's SYSTEM_ERROR,
// and turning the key on at run time (mqadmin) serves the waiting consumer.
func TestSQL92Refused(t *testing.T) {
	t.Parallel()
	on := startCluster(t, "enablePropertyFilter=true")
	createTopic(t, on, "Sql92Bad", 1)
	newPushConsumer(t, on.ns.addr, "CG_sql92_bad", "Sql92Bad", consumer.MessageSelector{Type: consumer.SQL92, Expression: "a BETWEEN 5 AND 1"}, newCollector())
	code, remark := pullAs(t, on.broker.addr, "CG_sql92_bad", "Sql92Bad")
	if code != wire.SubscriptionParseFailed || !strings.Contains(remark, `invalid SQL92 expression "a BETWEEN 5 AND 1"`) ||
		!strings.Contains(remark, "left value(5) must less than or equal to right value(1)") {
		t.Fatalf("bad expression: pull answered %s %q", wire.ResponseName(code), remark)
	}

	off := startCluster(t)
	const topic = "Sql92Off"
	createTopic(t, off, topic, 1)
	col := newCollector()
	newPushConsumer(t, off.ns.addr, "CG_sql92_off", topic, consumer.MessageSelector{Type: consumer.SQL92, Expression: sqlSelector}, col,
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	want := sendSQLBatch(t, off.ns.addr, topic, 20)
	code, remark = pullAs(t, off.broker.addr, "CG_sql92_off", topic)
	if code != wire.SystemError || !strings.Contains(remark, "The broker does not support consumer to filter message by SQL92") {
		t.Fatalf("property filter off: pull answered %s %q", wire.ResponseName(code), remark)
	}
	if n := col.count(); n != 0 {
		t.Fatalf("property filter off: %d messages delivered", n)
	}
	cli(t, off.ns.addr, "broker", "config", "set", "-b", off.broker.addr, "enablePropertyFilter=true")
	waitFor(t, 60*time.Second, "the selected messages once the key is on", func() bool { return col.count() == len(want) })
	if code, remark = pullAs(t, off.broker.addr, "CG_sql92_off", topic); code != wire.Success {
		t.Fatalf("property filter on: pull answered %s %q", wire.ResponseName(code), remark)
	}
}
