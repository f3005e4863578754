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
	go s.Watch(stop, nil)
	if _, _, _, ok := s.Enter(&Waiter{}, time.Now()); !ok {
		t.Fatal("free slot not taken")
	}
	done := make(chan Tag)
	go func() {
		_, _, tag, _ := s.Enter(&Waiter{}, time.Now())
		done <- tag
	}()
	for s.Queued(SendQueue) == 0 {
		time.Sleep(time.Millisecond)
	}
	if hw := s.HeadWait(SendQueue, time.Now().Add(time.Second)); hw < time.Second {
		t.Errorf("head wait %v while a send is queued, a second from now", hw)
	}
	busy.Store(int64(2 * time.Second))
	if tag := <-done; tag != PCBusyCleanQueue {
		t.Fatalf("tag %v", tag)
	}
	if hw := s.HeadWait(SendQueue, time.Now()); hw != 0 || s.Queued(SendQueue) != 0 {
		t.Errorf("after the shed: head wait %v, queued %d", hw, s.Queued(SendQueue))
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

// TestAdmitWithoutConnection: a gRPC or HTTP send (no connection counter)
// is held to the global budgets only.
func TestAdmitWithoutConnection(t *testing.T) {
	s := NewSends(Config{Threads: 1, Capacity: 2, MaxBytes: 100, PerConn: 1, WaitInQueue: time.Second, BusyTimeout: time.Second, FastFailure: true},
		func(time.Time) time.Duration { return 0 }, nil)
	now := time.Now()
	a, _, ok1 := s.Admit(nil, 10, now)
	b, _, ok2 := s.Admit(nil, 10, now) // past PerConn, which does not apply
	if !ok1 || !ok2 {
		t.Fatalf("admitted %v %v", ok1, ok2)
	}
	if _, tag, ok := s.Admit(nil, 10, now); ok || tag != Overload {
		t.Fatalf("over the count: ok %v tag %v", ok, tag)
	}
	s.Release(&a)
	s.Release(&b)
	if n, by := s.InFlight(); n != 0 || by != 0 {
		t.Fatalf("after release: %d sends %d bytes", n, by)
	}
}

// TestEnterTransaction: an END_TRANSACTION waiting for the append slot
// ages out after its own deadline, is counted in its own queue, and is
// not shed when the store turns busy (Java drains only the send queue).
func TestEnterTransaction(t *testing.T) {
	var busy atomic.Int64
	s := NewSends(Config{Threads: 1, Capacity: 10, MaxBytes: 1 << 20, PerConn: 10, WaitInQueue: time.Hour, BusyTimeout: time.Second, FastFailure: true,
		WaitInTransactionQueue: 300 * time.Millisecond},
		func(time.Time) time.Duration { return time.Duration(busy.Load()) }, nil)
	stop := make(chan struct{})
	defer close(stop)
	go s.Watch(stop, nil)
	if _, _, _, ok := s.Enter(&Waiter{}, time.Now()); !ok {
		t.Fatal("free slot not taken")
	}
	type result struct {
		waited time.Duration
		queue  int64
		tag    Tag
		ok     bool
	}
	done := make(chan result)
	go func() {
		w, q, tag, ok := s.EnterTransaction(&Waiter{}, time.Now())
		done <- result{w, q, tag, ok}
	}()
	for s.Queued(TransactionQueue) == 0 {
		time.Sleep(time.Millisecond)
	}
	if s.Queued(SendQueue) != 0 || s.HeadWait(SendQueue, time.Now()) != 0 {
		t.Errorf("the transaction counted in the send queue")
	}
	busy.Store(int64(2 * time.Second)) // must not shed it
	r := <-done
	if r.ok || r.tag != TimeoutCleanQueue || r.queue != 1 || r.waited < 300*time.Millisecond {
		t.Fatalf("transaction: %+v", r)
	}
	if s.Rejected(PCBusyCleanQueue) != 0 || s.Rejected(TimeoutCleanQueue) != 1 {
		t.Errorf("counters: PCBUSY %d TIMEOUT %d", s.Rejected(PCBusyCleanQueue), s.Rejected(TimeoutCleanQueue))
	}
	// Already past its deadline when it comes for a slot: refused at once.
	if _, _, tag, ok := s.EnterTransaction(&Waiter{}, time.Now().Add(-time.Second)); ok || tag != TimeoutCleanQueue {
		t.Fatalf("late transaction: ok %v tag %v", ok, tag)
	}
	s.Leave()
	if _, _, _, ok := s.EnterTransaction(&Waiter{}, time.Now()); !ok {
		t.Fatal("free slot not taken by a transaction")
	}
	s.Leave()
}

// TestAppendWaterMark: Java's four [WATERMARK] lines, with the sends in
// flight and the head waits of the send and transaction queues.
func TestAppendWaterMark(t *testing.T) {
	s := NewSends(Config{Threads: 1, Capacity: 10, MaxBytes: 1 << 20, PerConn: 10, WaitInQueue: time.Hour, BusyTimeout: time.Hour, FastFailure: true,
		WaitInTransactionQueue: time.Hour},
		func(time.Time) time.Duration { return 0 }, nil)
	var c atomic.Int32
	tk, _, _ := s.Admit(&c, 5, time.Now())
	defer s.Release(&tk)
	if _, _, _, ok := s.Enter(&Waiter{}, time.Now()); !ok {
		t.Fatal("free slot not taken")
	}
	readAt := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { s.Enter(&Waiter{}, readAt) })
	wg.Go(func() { s.EnterTransaction(&Waiter{}, readAt) })
	for s.Queued(SendQueue) == 0 || s.Queued(TransactionQueue) == 0 {
		time.Sleep(time.Millisecond)
	}
	at := time.Date(2026, 12, 7, 0, 30, 1, 0, time.FixedZone("", 8*3600))
	got := string(s.AppendWaterMark(nil, readAt.Add(41*time.Millisecond).In(at.Location())))
	stamp := readAt.Add(41 * time.Millisecond).In(at.Location()).Format("2006-01-02 15:04:05 +0800")
	want := stamp + " - [WATERMARK] Send Queue Size: 1 SlowTimeMills: 41\n" +
		stamp + " - [WATERMARK] Pull Queue Size: 0 SlowTimeMills: 0\n" +
		stamp + " - [WATERMARK] Query Queue Size: 0 SlowTimeMills: 0\n" +
		stamp + " - [WATERMARK] Transaction Queue Size: 1 SlowTimeMills: 41\n"
	if got != want {
		t.Errorf("got\n%swant\n%s", got, want)
	}
	for range 3 { // ours, then each waiter's in turn
		s.Leave()
	}
	wg.Wait()
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
