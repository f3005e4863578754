package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// arrivals records when each body reached a push consumer, every time.
type arrivals struct {
	mu   sync.Mutex
	at   map[string][]time.Time
	msgs map[string]*primitive.MessageExt
}

func newArrivals() *arrivals {
	return &arrivals{at: map[string][]time.Time{}, msgs: map[string]*primitive.MessageExt{}}
}

func (a *arrivals) consume(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range msgs {
		a.at[string(m.Body)] = append(a.at[string(m.Body)], now)
		a.msgs[string(m.Body)] = m
	}
	return consumer.ConsumeSuccess, nil
}

func (a *arrivals) times(body string) []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.at[body]...)
}

func (a *arrivals) msg(body string) *primitive.MessageExt {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.msgs[body]
}

func (a *arrivals) waitFor(t *testing.T, timeout time.Duration, bodies ...string) {
	t.Helper()
	waitFor(t, timeout, "messages "+joinQuoted(bodies), func() bool {
		for _, b := range bodies {
			if len(a.times(b)) == 0 {
				return false
			}
		}
		return true
	})
}

func joinQuoted(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += "\"" + x + "\""
	}
	return out
}

// startArrivalConsumer starts a push consumer of topic and waits until it
// receives a warm-up message, so later arrival times measure the broker,
// not the client's first rebalance.
func startArrivalConsumer(t *testing.T, c *cluster, group, topic string) *arrivals {
	t.Helper()
	a := newArrivals()
	pc, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{c.ns.addr}), consumer.WithGroupName(group),
		consumer.WithInstance(instance("arrivals")), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Subscribe(topic, consumer.MessageSelector{}, a.consume); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Shutdown() })
	p := newProducer(t, c.ns.addr)
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("warm-up"))); err != nil {
		t.Fatal(err)
	}
	a.waitFor(t, 30*time.Second, "warm-up")
	return a
}

// sendDelayed sends body with a delay level and returns when the send began.
func sendDelayed(t *testing.T, send func(*primitive.Message) error, topic, body string, level int) time.Time {
	t.Helper()
	m := primitive.NewMessage(topic, []byte(body))
	m.WithDelayTimeLevel(level)
	start := time.Now()
	if err := send(m); err != nil {
		t.Fatalf("send %s: %v", body, err)
	}
	return start
}

// checkDelay asserts a message arrived once, within ±1 s of its delay.
func checkDelay(t *testing.T, a *arrivals, body string, sent time.Time, delay time.Duration) {
	t.Helper()
	at := a.times(body)
	if len(at) != 1 {
		t.Fatalf("%s arrived %d times", body, len(at))
	}
	if got := at[0].Sub(sent); got < delay-time.Second || got > delay+time.Second {
		t.Fatalf("%s arrived after %v, want %v ± 1s", body, got, delay)
	}
	m := a.msg(body)
	if m.GetProperty("DELAY") != "" || m.GetProperty("REAL_TOPIC") != "" {
		t.Fatalf("%s delivered with parking properties: %v", body, m.GetProperties())
	}
}

// TestDelayLevels: messages sent with delay levels 1–3 arrive after 1, 5
// and 10 s (±1 s), exactly once, in their own topic; level 0 is not
// delayed; a level above the table is clamped to the last level (2 h) and
// stays parked.
func TestDelayLevels(t *testing.T) {
	t.Parallel() // waits on client and broker timers, not CPU: run beside the others
	c := startCluster(t)
	const topic = "Delayed"
	createTopic(t, c, topic, 2)
	a := startArrivalConsumer(t, c, "CG_delay", topic)
	p := newProducer(t, c.ns.addr)
	send := func(m *primitive.Message) error { _, err := p.SendSync(context.Background(), m); return err }

	sent := map[string]time.Time{}
	delays := map[string]time.Duration{"level-1": time.Second, "level-2": 5 * time.Second, "level-3": 10 * time.Second}
	for body, lvl := range map[string]int{"level-1": 1, "level-2": 2, "level-3": 3} {
		sent[body] = sendDelayed(t, send, topic, body, lvl)
	}
	nowSent := sendDelayed(t, send, topic, "level-0", 0)
	sendDelayed(t, send, topic, "level-99", 99)

	a.waitFor(t, 5*time.Second, "level-0")
	if got := a.times("level-0")[0].Sub(nowSent); got > time.Second {
		t.Fatalf("an undelayed message took %v", got)
	}
	a.waitFor(t, 20*time.Second, "level-1", "level-2", "level-3")
	for body, d := range delays {
		checkDelay(t, a, body, sent[body], d)
	}
	if len(a.times("level-99")) != 0 {
		t.Fatal("a message clamped to level 18 (2h) was delivered")
	}
	// The clamped message waits in the last level's queue.
	if n := maxOffset(t, c.broker.addr, "SCHEDULE_TOPIC_XXXX", 17); n != 1 {
		t.Fatalf("level 18's schedule queue holds %d messages, want 1", n)
	}
	// Java's runtime keys: delivered offset, queue end.
	st := brokerStatus(t, c.ns.addr, c.broker.addr)
	if st["scheduleMessageOffset_18"] != "0,1" || st["scheduleMessageOffset_3"] != "1,1" {
		t.Fatalf("schedule progress in broker status: level 18 %q, level 3 %q", st["scheduleMessageOffset_18"], st["scheduleMessageOffset_3"])
	}
}

// TestDelayAcrossRestart: delivery progress survives a clean restart
// (nothing repeated, nothing lost) and a kill -9 (nothing lost; messages
// never arrive before their time).
func TestDelayAcrossRestart(t *testing.T) {
	t.Parallel() // waits on client and broker timers, not CPU: run beside the others
	c := startCluster(t)
	const topic = "DelayedRestart"
	createTopic(t, c, topic, 1)
	a := startArrivalConsumer(t, c, "CG_delay_restart", topic)
	p := newProducer(t, c.ns.addr)
	send := func(m *primitive.Message) error { _, err := p.SendSync(context.Background(), m); return err }

	firstSent := sendDelayed(t, send, topic, "early", 1)
	lateSent := sendDelayed(t, send, topic, "late", 3)
	a.waitFor(t, 5*time.Second, "early")
	checkDelay(t, a, "early", firstSent, time.Second)
	c.broker.stop()
	c.broker = restartBroker(t, c)
	a.waitFor(t, 40*time.Second, "late")
	if got := a.times("late")[0].Sub(lateSent); got < 10*time.Second-time.Second {
		t.Fatalf("late arrived after %v, before its 10s delay", got)
	}

	time.Sleep(2 * time.Second) // room for a wrong repeat to show up
	for _, body := range []string{"early", "late"} {
		if n := len(a.times(body)); n != 1 {
			t.Fatalf("%s arrived %d times across a clean restart", body, n)
		}
	}

	// A crash repeats what was delivered since progress was last saved
	// (at least once), so only arrival and timing are checked.
	crashSent := sendDelayed(t, send, topic, "crash", 3)
	time.Sleep(2 * time.Second)
	c.broker.kill()
	c.broker = restartBroker(t, c)
	a.waitFor(t, 40*time.Second, "crash")
	if got := a.times("crash")[0].Sub(crashSent); got < 10*time.Second-time.Second {
		t.Fatalf("crash arrived after %v, before its 10s delay", got)
	}
}

// brokerStatus is one broker's runtime key → value (mqadmin broker status).
func brokerStatus(t *testing.T, ns, broker string) map[string]string {
	t.Helper()
	st := tableOf(t, cli(t, ns, "broker", "status", "-b", broker))
	out := map[string]string{}
	for _, r := range st.rows {
		out[r["Key"]] = r["Value"]
	}
	return out
}
