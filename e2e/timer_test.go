package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// sendTimer sends body with one RocketMQ 5 timer property and returns the
// earliest time it may arrive.
func sendTimer(t *testing.T, p interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
}, topic, body, prop string, value func(now time.Time) (string, time.Time)) time.Time {
	t.Helper()
	m := primitive.NewMessage(topic, []byte(body))
	v, due := value(time.Now())
	m.WithProperty(prop, v)
	if _, err := p.SendSync(context.Background(), m); err != nil {
		t.Fatalf("send %s: %v", body, err)
	}
	return due
}

func after(d time.Duration) func(time.Time) (string, time.Time) {
	return func(now time.Time) (string, time.Time) {
		return strconv.FormatInt(int64(d/time.Second), 10), now.Add(d)
	}
}

func afterMs(d time.Duration) func(time.Time) (string, time.Time) {
	return func(now time.Time) (string, time.Time) { return strconv.FormatInt(d.Milliseconds(), 10), now.Add(d) }
}

func at(d time.Duration) func(time.Time) (string, time.Time) {
	return func(now time.Time) (string, time.Time) {
		due := now.Add(d)
		return strconv.FormatInt(due.UnixMilli(), 10), due
	}
}

// checkTimer asserts body arrived once, never before due and at most a
// second (plus a consumer round trip) after.
func checkTimer(t *testing.T, a *arrivals, body string, due time.Time, late time.Duration) {
	t.Helper()
	got := a.times(body)
	if len(got) != 1 {
		t.Fatalf("%s arrived %d times", body, len(got))
	}
	if d := got[0].Sub(due); d < 0 || d > late {
		t.Fatalf("%s arrived %v after its time, want within [0, %v]", body, d, late)
	}
	if m := a.msg(body); m.GetProperty("TIMER_OUT_MS") != "" || m.GetProperty("REAL_TOPIC") != "" {
		t.Fatalf("%s delivered with parking properties: %v", body, m.GetProperties())
	}
}

// TestTimerMessages: RocketMQ 5 timer properties (an absolute time, a
// delay in seconds or in ms) deliver at their time, never early and at most
// about a second late; a 7-day timer is accepted and waits; one beyond
// timerMaxDelaySec is refused; timers survive a clean restart and a
// kill -9.
func TestTimerMessages(t *testing.T) {
	t.Parallel() // waits on client and broker timers, not CPU: run beside the others
	c := startCluster(t)
	const topic = "Timed"
	createTopic(t, c, topic, 2)
	a := startArrivalConsumer(t, c, "CG_timer", topic)
	p := newProducer(t, c.ns.addr)

	due := map[string]time.Time{
		"deliver-ms": sendTimer(t, p, topic, "deliver-ms", "TIMER_DELIVER_MS", at(3*time.Second)),
		"delay-sec":  sendTimer(t, p, topic, "delay-sec", "TIMER_DELAY_SEC", after(2*time.Second)),
		"delay-ms":   sendTimer(t, p, topic, "delay-ms", "TIMER_DELAY_MS", afterMs(4500*time.Millisecond)),
		"past":       sendTimer(t, p, topic, "past", "TIMER_DELIVER_MS", at(-time.Hour)),
	}
	sendTimer(t, p, topic, "week", "TIMER_DELAY_SEC", after(7*24*time.Hour))
	a.waitFor(t, 15*time.Second, "deliver-ms", "delay-sec", "delay-ms", "past")
	for body, d := range due {
		if body == "past" {
			d = time.Now().Add(-time.Hour) // sent at once: only "once" matters
			checkTimer(t, a, body, d, 2*time.Hour)
			continue
		}
		checkTimer(t, a, body, d, 1200*time.Millisecond)
	}
	if len(a.times("week")) != 0 {
		t.Fatal("a 7-day timer was delivered")
	}
	if n := maxOffset(t, c.broker.addr, "rmq_sys_wheel_timer", 0); n != 4 {
		t.Fatalf("the timer queue holds %d messages, want 4 (the week-long one waits)", n)
	}
	if v := brokerStatus(t, c.ns.addr, c.broker.addr)["timerMessagePending"]; v != "1" {
		t.Fatalf("timerMessagePending %q, want 1", v)
	}
	m := primitive.NewMessage(topic, []byte("too-far"))
	m.WithProperty("TIMER_DELAY_SEC", strconv.Itoa(31*24*3600))
	if _, err := p.SendSync(context.Background(), m); err == nil || !strings.Contains(err.Error(), "timerMaxDelaySec") {
		t.Fatalf("a 31-day timer: err %v, want a refusal naming timerMaxDelaySec", err)
	}

	// Across a clean restart: delivered once, not early.
	restartDue := sendTimer(t, p, topic, "restart", "TIMER_DELAY_SEC", after(6*time.Second))
	time.Sleep(2 * time.Second)
	c.broker.stop()
	c.broker = restartBroker(t, c)
	// After a restart consumers are unknown until their next heartbeat
	// (every 30 s): until then their pulls are refused.
	a.waitFor(t, 45*time.Second, "restart")
	if d := a.times("restart")[0].Sub(restartDue); d < 0 {
		t.Fatalf("restart arrived %v early", -d)
	}

	// Across a crash: at least once, not early.
	crashDue := sendTimer(t, p, topic, "crash", "TIMER_DELAY_SEC", after(5*time.Second))
	time.Sleep(2 * time.Second)
	c.broker.kill()
	c.broker = restartBroker(t, c)
	a.waitFor(t, 45*time.Second, "crash")
	if d := a.times("crash")[0].Sub(crashDue); d < 0 {
		t.Fatalf("crash arrived %v early", -d)
	}
	time.Sleep(time.Second)
	for _, body := range []string{"deliver-ms", "delay-sec", "delay-ms", "restart"} {
		if n := len(a.times(body)); n != 1 {
			t.Fatalf("%s arrived %d times", body, n)
		}
	}
	if len(a.times("week")) != 0 {
		t.Fatal("a 7-day timer was delivered after restarts")
	}
}
