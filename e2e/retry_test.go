package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// shortLevels is a delay table for tests: level n waits n-1 seconds from
// level 2 on, so graded retries (level 3 + reconsume times) come after 2 s,
// 3 s, 4 s…
const shortLevels = "messageDelayLevel=1s 1s 2s 3s 4s 5s 6s 7s 8s 9s 10s 11s 12s 13s 14s 15s 16s 17s"

// TestRetryAndDeadLetter: a message the consumer fails comes back through
// %RETRY%<group> after the graded delay, with its topic restored and
// reconsume count raised; after maxReconsumeTimes it lands in
// %DLQ%<group>, where an operator can read it.
func TestRetryAndDeadLetter(t *testing.T) {
	t.Parallel() // waits on client and broker timers, not CPU: run beside the others
	c := startCluster(t, shortLevels)
	const topic, group = "RetryMe", "CG_retry"
	createTopic(t, c, topic, 1)
	p := newProducer(t, c.ns.addr)

	var mu sync.Mutex
	attempts := map[string][]int32{} // body → reconsume times seen
	seenAt := map[string][]time.Time{}
	pc, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{c.ns.addr}), consumer.WithGroupName(group),
		consumer.WithInstance(instance("retry")), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
		consumer.WithMaxReconsumeTimes(2))
	if err != nil {
		t.Fatal(err)
	}
	err = pc.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			if m.Topic != topic {
				t.Errorf("retried message delivered with topic %q", m.Topic)
			}
			attempts[string(m.Body)] = append(attempts[string(m.Body)], m.ReconsumeTimes)
			seenAt[string(m.Body)] = append(seenAt[string(m.Body)], time.Now())
		}
		if b := string(msgs[0].Body); strings.HasPrefix(b, "ok-after-one") && len(attempts[b]) >= 2 {
			return consumer.ConsumeSuccess, nil
		}
		return consumer.ConsumeRetryLater, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	defer pc.Shutdown()

	for _, body := range []string{"ok-after-one", "always-fails"} {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(body))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 60*time.Second, "retries", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(attempts["ok-after-one"]) >= 2 && len(attempts["always-fails"]) >= 3
	})
	mu.Lock()
	ok, fails := attempts["ok-after-one"], attempts["always-fails"]
	mu.Unlock()
	if ok[0] != 0 || ok[1] != 1 {
		t.Fatalf("reconsume times of the retried message: %v", ok)
	}
	if len(fails) != 3 || fails[2] != 2 {
		t.Fatalf("reconsume times of the failing message: %v (want 0,1,2 then dead-lettered)", fails)
	}
	// Graded delays: retry n waits level 3+n-1 (2 s, then 3 s here). The
	// first retry may come later: the client only pulls the retry topic
	// once its route refresh and rebalance have found it.
	at := seenAt["always-fails"]
	if got := at[1].Sub(at[0]); got < time.Second {
		t.Fatalf("retry 1 came %v after the failure, before its 2s delay", got)
	}
	if got := at[2].Sub(at[1]); got < 2*time.Second || got > 4*time.Second {
		t.Fatalf("retry 2 came %v after retry 1, want 3s ± 1s", got)
	}
	dlq := "%DLQ%" + group
	waitFor(t, 10*time.Second, "the dead letter", func() bool { _, code := route(t, c.ns.addr, dlq); return code == 0 })
	waitDispatched(t, c.broker.addr, dlq, 1, 1)
	dead := pullAll(t, c, "CG_dlq_reader", dlq, 0)
	if len(dead) != 1 || string(dead[0].Body) != "always-fails" || dead[0].GetProperty("RETRY_TOPIC") != topic || dead[0].GetProperty("ORIGIN_MESSAGE_ID") == "" {
		t.Fatalf("dead-letter queue holds %d messages: %+v", len(dead), dead)
	}
	time.Sleep(2 * time.Second)
	mu.Lock()
	if n := len(attempts["always-fails"]); n != 3 {
		t.Fatalf("dead-lettered message was delivered again (%d attempts)", n)
	}
	mu.Unlock()

	// A retry parked when the broker restarts still comes back, once, and
	// the dead letter is still there.
	count := func(body string) int {
		mu.Lock()
		defer mu.Unlock()
		return len(attempts[body])
	}
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("ok-after-one-restart"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the first attempt", func() bool { return count("ok-after-one-restart") == 1 })
	c.broker.stop()
	c.broker = restartBroker(t, c, shortLevels)
	waitFor(t, 60*time.Second, "the retry after the restart", func() bool { return count("ok-after-one-restart") == 2 })
	time.Sleep(3 * time.Second)
	if n := count("ok-after-one-restart"); n != 2 {
		t.Fatalf("a message failed once was consumed %d times", n)
	}
	if dead := pullAll(t, c, "CG_dlq_reader2", dlq, 0); len(dead) != 1 {
		t.Fatalf("after a restart the dead-letter queue holds %d messages", len(dead))
	}
}
