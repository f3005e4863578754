package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// TestPauseAndResumeGroup: `mqadmin group pause` stops delivery to a
// running consumer group without stopping its clients; messages sent
// meanwhile wait, also across a broker restart; `group resume` delivers
// them all, once each.
func TestPauseAndResumeGroup(t *testing.T) {
	t.Parallel() // waits on client and broker timers, not CPU: run beside the others
	c := startCluster(t)
	const topic, group = "Pausable", "CG_pause"
	createTopic(t, c, topic, 2)
	a := startArrivalConsumer(t, c, group, topic)
	p := newProducer(t, c.ns.addr)

	cli(t, c.ns.addr, "group", "pause", "-g", group, "-b", c.broker.addr)
	time.Sleep(pausedHoldGrace) // pulls already held finish first
	var bodies []string
	send := func(prefix string, n int) {
		for i := 0; i < n; i++ {
			b := fmt.Sprintf("%s-%d", prefix, i)
			bodies = append(bodies, b)
			if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(b))); err != nil {
				t.Fatal(err)
			}
		}
	}
	send("paused", 20)
	time.Sleep(3 * time.Second)
	for _, b := range bodies {
		if len(a.times(b)) != 0 {
			t.Fatalf("%s was delivered to a paused group", b)
		}
	}

	// Still paused after a restart: the setting is persisted.
	c.broker.stop()
	c.broker = restartBroker(t, c)
	send("paused-after-restart", 10)
	time.Sleep(5 * time.Second)
	for _, b := range bodies {
		if len(a.times(b)) != 0 {
			t.Fatalf("%s was delivered to a paused group after a restart", b)
		}
	}

	cli(t, c.ns.addr, "group", "resume", "-g", group, "-b", c.broker.addr)
	a.waitFor(t, 30*time.Second, bodies...)
	time.Sleep(time.Second)
	for _, b := range bodies {
		if n := len(a.times(b)); n != 1 {
			t.Fatalf("%s delivered %d times after resume", b, n)
		}
	}
}

// pausedHoldGrace covers a pull answered just before the pause took
// effect: it may still carry messages sent before the pause.
const pausedHoldGrace = 500 * time.Millisecond

// TestGroupRateLimit: `mqadmin group limit --rate 20` makes the broker hand
// the group about 20 messages a second, whatever the backlog.
func TestGroupRateLimit(t *testing.T) {
	t.Parallel() // waits on client and broker timers, not CPU: run beside the others
	c := startCluster(t)
	const topic, group = "Limited", "CG_limited"
	createTopic(t, c, topic, 4)
	cli(t, c.ns.addr, "group", "limit", "-g", group, "--rate", "20", "-b", c.broker.addr)
	p := newProducer(t, c.ns.addr)
	const n = 200
	var bodies []string
	for i := 0; i < n; i++ {
		b := fmt.Sprintf("limited-%d", i)
		bodies = append(bodies, b)
		if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(b))); err != nil {
			t.Fatal(err)
		}
	}
	a := startArrivalConsumer(t, c, group, topic)
	a.waitFor(t, 60*time.Second, bodies...)
	first, last := time.Now(), time.Time{}
	for _, b := range bodies {
		at := a.times(b)[0]
		if at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	// 200 messages at 20/s with a one-second burst take about 9 s; without
	// the limit they arrive within a fraction of a second.
	if took := last.Sub(first); took < 7*time.Second || took > 20*time.Second {
		t.Fatalf("%d messages took %v at a 20 msg/s limit, want about 9s", n, took)
	}
}
