package flow

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.b.String()), "\n")
}

// TestLogRateLimit: one line per (tag, remote) per LogEvery; the refusals
// in between are reported as suppressed=N, on the next line or by the
// watcher's summary when none follows.
func TestLogRateLimit(t *testing.T) {
	var buf lockedBuf
	l := NewLog(slog.New(slog.NewTextHandler(&buf, nil)))
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	for range 5 {
		l.Event(TimeoutCleanQueue, "10.0.0.7:1", "TopicA", 230*time.Millisecond, 512, "")
	}
	l.Event(TimeoutCleanQueue, "10.0.0.8:1", "TopicA", 230*time.Millisecond, 512, "") // another remote
	l.Event(Overload, "10.0.0.7:1", "", 0, -1, "")                                    // another tag
	if got := buf.lines(); len(got) != 3 {
		t.Fatalf("want 3 lines, got %q", got)
	}
	now = now.Add(LogEvery)
	l.Event(TimeoutCleanQueue, "10.0.0.7:1", "TopicA", 230*time.Millisecond, 512, "")
	got := buf.lines()
	last := got[len(got)-1]
	for _, want := range []string{"[TIMEOUT_CLEAN_QUEUE]", "code=2", "remote=10.0.0.7:1", "topic=TopicA", "waited=230ms", "queue=512", "suppressed=4"} {
		if !strings.Contains(last, want) {
			t.Errorf("line %q lacks %q", last, want)
		}
	}
	l.Event(TimeoutCleanQueue, "10.0.0.7:1", "TopicA", 0, 1, "") // suppressed
	l.flushSuppressed(now.Add(LogEvery))
	got = buf.lines()
	if last = got[len(got)-1]; !strings.Contains(last, "suppressed=1") {
		t.Errorf("summary %q", last)
	}
	if len(l.seen) != 0 {
		t.Errorf("quiet pairs kept: %v", l.seen)
	}
}

func TestAdmitBudgets(t *testing.T) {
	busy := time.Duration(0)
	s := NewSends(Config{Threads: 1, Capacity: 2, MaxBytes: 100, PerConn: 2, WaitInQueue: time.Second, BusyTimeout: time.Second, FastFailure: true},
		func(time.Time) time.Duration { return busy }, nil)
	var c1, c2 atomic.Int32
	now := time.Now()
	t1, _, ok := s.Admit(&c1, 500, now) // alone: admitted although over MaxBytes
	if !ok {
		t.Fatal("a lone large send was refused")
	}
	if _, tag, ok := s.Admit(&c2, 1, now); ok || tag != Overload {
		t.Fatalf("over the byte budget: ok %v tag %v", ok, tag)
	}
	s.Release(&t1)
	s.Release(&t1) // released twice: no effect
	if n, b := s.InFlight(); n != 0 || b != 0 || c1.Load() != 0 || c2.Load() != 0 {
		t.Fatalf("after release: %d sends %d bytes, conns %d %d", n, b, c1.Load(), c2.Load())
	}
	a, _, _ := s.Admit(&c1, 10, now)
	b, _, _ := s.Admit(&c1, 10, now)
	if _, tag, ok := s.Admit(&c2, 10, now); ok || tag != Overload {
		t.Fatalf("over the count: ok %v tag %v", ok, tag)
	}
	s.Release(&a)
	s.Release(&b)
	busy = 2 * time.Second
	if _, tag, ok := s.Admit(&c1, 10, now); ok || tag != RejectRequest {
		t.Fatalf("store busy: ok %v tag %v", ok, tag)
	}
	if s.Rejected(Overload) != 2 || s.Rejected(RejectRequest) != 1 {
		t.Errorf("counters %d %d", s.Rejected(Overload), s.Rejected(RejectRequest))
	}
}

// TestEnterShedsWhenStoreTurnsBusy: a send waiting for the append slot is
// failed by the watcher once the store turns busy.
func TestEnterShedsWhenStoreTurnsBusy(t *testing.T) {
	var busy atomic.Int64
	s := NewSends(Config{Threads: 1, Capacity: 10, MaxBytes: 1 << 20, PerConn: 10, WaitInQueue: time.Hour, BusyTimeout: time.Second, FastFailure: true},
		func(time.Time) time.Duration { return time.Duration(busy.Load()) }, nil)
	stop := make(chan struct{})
	defer close(stop)
	go s.Watch(stop)
	if _, _, _, ok := s.Enter(&Waiter{}, time.Now()); !ok {
		t.Fatal("free slot not taken")
	}
	done := make(chan Tag)
	go func() {
		_, _, tag, _ := s.Enter(&Waiter{}, time.Now())
		done <- tag
	}()
	for s.Queued() == 0 {
		time.Sleep(time.Millisecond)
	}
	if hw := s.HeadWait(time.Now().Add(time.Second)); hw < time.Second {
		t.Errorf("head wait %v while a send is queued, a second from now", hw)
	}
	busy.Store(int64(2 * time.Second))
	if tag := <-done; tag != PCBusyCleanQueue {
		t.Fatalf("tag %v", tag)
	}
	if hw := s.HeadWait(time.Now()); hw != 0 || s.Queued() != 0 {
		t.Errorf("after the shed: head wait %v, queued %d", hw, s.Queued())
	}
	s.Leave()
}

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newBucket(Quota{TPS: 10}, t0)
	for i := range 10 { // one second of rate is there at once
		if w, ok := b.Take(t0, 1, 100, 500*time.Millisecond); !ok || w != 0 {
			t.Fatalf("send %d: wait %v ok %v", i, w, ok)
		}
	}
	w, ok := b.Take(t0, 1, 100, 500*time.Millisecond)
	if !ok || w != 100*time.Millisecond {
		t.Fatalf("short by one token: wait %v ok %v", w, ok)
	}
	// Four more borrowed: 500 ms; a fifth would need 600 ms.
	for range 4 {
		b.Take(t0, 1, 100, 500*time.Millisecond)
	}
	if _, ok := b.Take(t0, 1, 100, 500*time.Millisecond); ok {
		t.Fatal("a send past the longest delay was let through")
	}
	if w, ok := b.Take(t0.Add(time.Second), 1, 100, 500*time.Millisecond); !ok || w != 0 {
		t.Fatalf("a second later: wait %v ok %v", w, ok)
	}
	th, rej, delay := b.Counters()
	if th != 5 || rej != 1 || delay != 100+200+300+400+500 {
		t.Errorf("counters throttled %d rejected %d delay %d", th, rej, delay)
	}
	// Bytes: a batch of 3 messages, 3000 bytes against 1000 B/s.
	bb := newBucket(Quota{BPS: 1000}, t0)
	if w, ok := bb.Take(t0, 3, 1400, time.Second); !ok || w != 400*time.Millisecond {
		t.Fatalf("bytes: wait %v ok %v", w, ok)
	}
}

// TestQuotasFollowTopicConfig: the rate comes from the topic's attributes
// and follows a changed config at once; a topic without a quota has no
// bucket.
func TestQuotasFollowTopicConfig(t *testing.T) {
	qs := NewQuotas()
	now := time.Now()
	plain := &wire.TopicConfig{TopicName: "P"}
	typed := &wire.TopicConfig{TopicName: "T", Attributes: map[string]string{wire.AttrMessageType: "FIFO"}}
	if qs.For(plain, now) != nil || qs.For(typed, now) != nil {
		t.Fatal("bucket for a topic without a quota")
	}
	q1 := &wire.TopicConfig{TopicName: "Q", Attributes: map[string]string{wire.AttrProduceTPS: "200"}}
	b := qs.For(q1, now)
	if b == nil || b.Quota() != (Quota{TPS: 200}) || qs.For(q1, now) != b {
		t.Fatalf("bucket %v", b)
	}
	q2 := &wire.TopicConfig{TopicName: "Q", Attributes: map[string]string{wire.AttrProduceTPS: "500", wire.AttrProduceBPS: "1048576"}}
	if b2 := qs.For(q2, now); b2 != b || b.Quota() != (Quota{TPS: 500, BPS: 1 << 20}) {
		t.Fatalf("raised quota: bucket %v quota %v", b2, b.Quota())
	}
	if s := b.Quota().String(); s != "500 msg/s, 1048576 B/s" {
		t.Errorf("String %q", s)
	}
	q3 := &wire.TopicConfig{TopicName: "Q", Attributes: map[string]string{wire.AttrMessageType: "NORMAL"}}
	if qs.For(q3, now) != nil {
		t.Fatal("removed quota still applies")
	}
}

// TestTakeBoth: a send pays its topic's and its account's bucket at once:
// it waits for the longer deficit, and when either refuses, neither loses
// tokens and the refusing one counts it.
func TestTakeBoth(t *testing.T) {
	t0 := time.Now()
	topic, acct := newBucket(Quota{TPS: 10}, t0), newBucket(Quota{TPS: 2}, t0)
	for i := range 2 {
		if w, by := TakeBoth(t0, 1, 10, 500*time.Millisecond, topic, acct); by != nil || w != 0 {
			t.Fatalf("send %d: wait %v refused by %p", i, w, by)
		}
	}
	// The account is empty: one more waits 500 ms for it (the topic has 8 left).
	if w, by := TakeBoth(t0, 1, 10, 500*time.Millisecond, topic, acct); by != nil || w != 500*time.Millisecond {
		t.Fatalf("third send: wait %v refused by %p", w, by)
	}
	// The next would wait 1 s for the account: refused by it, topic untouched.
	if w, by := TakeBoth(t0, 1, 10, 500*time.Millisecond, topic, acct); by != acct || w != 0 {
		t.Fatalf("fourth send: wait %v refused by %p, want the account %p", w, by, acct)
	}
	if topic.msgs != 7 || acct.msgs != -1 {
		t.Fatalf("tokens after the refusal: topic %v account %v", topic.msgs, acct.msgs)
	}
	if th, rej, _ := acct.Counters(); th != 1 || rej != 1 {
		t.Fatalf("account counters: throttled %d rejected %d", th, rej)
	}
	if th, rej, _ := topic.Counters(); th != 0 || rej != 0 {
		t.Fatalf("topic counters: throttled %d rejected %d", th, rej)
	}
	// A topic refusal leaves the account's tokens alone.
	small := newBucket(Quota{TPS: 1}, t0)
	full := newBucket(Quota{TPS: 100}, t0)
	TakeBoth(t0, 1, 1, 0, small, full)
	if _, by := TakeBoth(t0, 1, 1, 500*time.Millisecond, small, full); by != small || full.msgs != 99 {
		t.Fatalf("topic refusal: refused by %p, account tokens %v", by, full.msgs)
	}
}

// TestAccountQuotasSync: Sync follows the rules: new accounts get a full
// bucket, a changed quota resizes the same bucket, an account deleted or
// left without a quota drops its bucket.
func TestAccountQuotasSync(t *testing.T) {
	qs := NewAccountQuotas()
	now := time.Now()
	qs.Sync(map[string]Quota{"producerA": {TPS: 100}, "producerB": {BPS: 1000}}, now)
	a, b := qs.For("producerA"), qs.For("producerB")
	if a == nil || b == nil || a.Quota() != (Quota{TPS: 100}) || qs.For("other") != nil {
		t.Fatalf("after the first sync: %v %v", a, b)
	}
	a.Take(now, 90, 0, 0)
	qs.Sync(map[string]Quota{"producerA": {TPS: 50}}, now)
	if qs.For("producerA") != a || a.Quota() != (Quota{TPS: 50}) || a.msgs != 10 {
		t.Fatalf("resized: same bucket %v, quota %v, tokens %v", qs.For("producerA") == a, a.Quota(), a.msgs)
	}
	if qs.For("producerB") != nil {
		t.Fatal("a deleted account kept its bucket")
	}
	n := 0
	qs.Each(func(string, *Bucket) { n++ })
	if n != 1 {
		t.Fatalf("%d buckets, want 1", n)
	}
}
