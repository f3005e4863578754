package pop

import (
	"errors"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// orderlyState is a state whose group G consumes in order.
func orderlyState() (*State, *offsets) {
	o := newOffsets()
	s := New(o)
	s.SetOrderly(func(g string) bool { return g == "G" })
	return s, o
}

// fifoTake is one orderly receive of up to n messages of k at now with
// invisibility inv: the batch redelivered (reconsume + 1 unless it is a
// replay), or a new batch read from next while below limit.
func fifoTake(s *State, k Key, attempt string, n int, now, inv, limit int64) (got []Lease, blocked bool) {
	tk := s.Take(k, func() int64 { return 0 })
	defer tk.Close()
	redo, replay, blocked := tk.FIFO(attempt, now)
	if blocked {
		return nil, true
	}
	for _, old := range redo {
		if len(got) == n {
			break
		}
		l := old
		l.PopTime, l.VisibleAt = now, now+inv
		if !replay {
			l.Reconsume++
		}
		tk.Relet(l)
		got = append(got, l)
	}
	if tk.Leased() > 0 {
		return got, false
	}
	for len(got) < n && tk.Next() < limit {
		l := Lease{Offset: tk.Next(), PhyOffset: 100 * tk.Next(), PopTime: now, VisibleAt: now + inv}
		tk.Lease(l)
		got = append(got, l)
	}
	return got, false
}

func offsetsOf(ls []Lease) []int64 {
	var out []int64
	for _, l := range ls {
		out = append(out, l.Offset)
	}
	return out
}

// TestFIFOBatchBlocksTheQueueUntilAcked: while a batch is in flight the
// queue hands out nothing else, to any attempt but the batch's own (which
// gets the same offsets with fresh handles and the same reconsume times);
// acking the whole batch releases what follows.
func TestFIFOBatchBlocksTheQueueUntilAcked(t *testing.T) {
	s, o := orderlyState()
	b1, _ := fifoTake(s, k0, "a1", 3, 1000, 100, 10)
	if !slices.Equal(offsetsOf(b1), []int64{0, 1, 2}) {
		t.Fatalf("first batch %v, want 0 1 2", offsetsOf(b1))
	}
	if got, blocked := fifoTake(s, k0, "a2", 3, 1010, 100, 10); !blocked || got != nil {
		t.Fatalf("second receive with the batch in flight: %v blocked %v, want blocked", offsetsOf(got), blocked)
	}
	if _, blocked := fifoTake(s, k0, "", 3, 1010, 100, 10); !blocked {
		t.Fatal("an empty attempt id matched the batch")
	}
	if !s.Blocked(k0, 1010) {
		t.Fatal("Blocked is false with the batch in flight")
	}
	// Same attempt id: the client lost the answer and asks again.
	again, blocked := fifoTake(s, k0, "a1", 3, 1020, 100, 10)
	if blocked || !slices.Equal(offsetsOf(again), []int64{0, 1, 2}) {
		t.Fatalf("replay of attempt a1: %v blocked %v, want 0 1 2", offsetsOf(again), blocked)
	}
	for _, l := range again {
		if l.Reconsume != 0 || l.PhyOffset != 100*l.Offset {
			t.Fatalf("replayed lease %+v: want reconsume 0 and the original record", l)
		}
	}
	// The replaced deliveries' handles are dead; the new ones ack.
	if err := s.Ack(k0, 0, 1000, 1030); !errors.Is(err, ErrExpired) {
		t.Fatalf("ack with the handle the replay replaced: %v, want ErrExpired", err)
	}
	for _, l := range again[:2] {
		if err := s.Ack(k0, l.Offset, l.PopTime, 1030); err != nil {
			t.Fatal(err)
		}
	}
	if _, blocked := fifoTake(s, k0, "a3", 3, 1040, 100, 10); !blocked {
		t.Fatal("the queue was released with one message of the batch unacked")
	}
	if err := s.Ack(k0, 2, again[2].PopTime, 1040); err != nil {
		t.Fatal(err)
	}
	if s.Blocked(k0, 1040) {
		t.Fatal("Blocked after the whole batch was acked")
	}
	if got := committed(t, o, k0); got != 3 {
		t.Fatalf("committed %d after acking the batch, want 3", got)
	}
	b2, blocked := fifoTake(s, k0, "a3", 3, 1050, 100, 10)
	if blocked || !slices.Equal(offsetsOf(b2), []int64{3, 4, 5}) {
		t.Fatalf("after the ack: %v blocked %v, want 3 4 5", offsetsOf(b2), blocked)
	}
}

// TestFIFOExpiryRedeliversInPlace: an expired batch is not handed to the
// reviver (no retry copy); its unacked offsets come back in order with
// reconsume times + 1 before anything behind them, the queue counts as
// unblocked once (to wake waiters), and a dropped (dead-lettered) offset
// lets the queue move on.
func TestFIFOExpiryRedeliversInPlace(t *testing.T) {
	s, o := orderlyState()
	b1, _ := fifoTake(s, k0, "a1", 3, 1000, 100, 10)
	if err := s.Ack(k0, 1, b1[1].PopTime, 1050); err != nil {
		t.Fatal(err)
	}
	// Offset 2's lease is made longer: the queue stays blocked until it ends.
	if _, err := s.Change(k0, 2, b1[2].PopTime, 1050, 1200); err != nil {
		t.Fatal(err)
	}
	if ex := s.Expired(1150); len(ex) != 0 {
		t.Fatalf("the reviver took FIFO leases out: %v", ex)
	}
	if u := s.Unblocked(1150); len(u) != 0 {
		t.Fatalf("unblocked %v while offset 2's lease lives", u)
	}
	if _, blocked := fifoTake(s, k0, "a2", 3, 1150, 100, 10); !blocked {
		t.Fatal("queue not blocked while one lease of the batch lives")
	}
	if u := s.Unblocked(1200); !slices.Equal(u, []Key{k0}) {
		t.Fatalf("unblocked at 1200: %v, want %v", u, k0)
	}
	if u := s.Unblocked(1300); len(u) != 0 {
		t.Fatalf("the same expiry reported twice: %v", u)
	}
	if n := s.Inflight("G"); n != 2 {
		t.Fatalf("in-flight %d with two expired FIFO leases waiting, want 2", n)
	}
	// The expired handles are dead.
	if err := s.Ack(k0, 0, b1[0].PopTime, 1200); !errors.Is(err, ErrExpired) {
		t.Fatalf("ack of an expired FIFO lease: %v", err)
	}
	// Redelivery: offsets 0 and 2 (1 was acked), attempt 2, not 3+.
	b2, blocked := fifoTake(s, k0, "a2", 32, 1300, 100, 10)
	if blocked || !slices.Equal(offsetsOf(b2), []int64{0, 2}) {
		t.Fatalf("redelivery %v blocked %v, want 0 2", offsetsOf(b2), blocked)
	}
	for _, l := range b2 {
		if l.Reconsume != 1 || l.PhyOffset != 100*l.Offset {
			t.Fatalf("redelivered lease %+v: want reconsume 1, same record", l)
		}
	}
	if got := committed(t, o, k0); got != 0 {
		t.Fatalf("committed %d, want 0", got)
	}
	// Offset 2 is acked; offset 0 expires again and the broker
	// dead-letters it (max attempts): the queue moves on.
	if err := s.Ack(k0, 2, b2[1].PopTime, 1350); err != nil {
		t.Fatal(err)
	}
	tk := s.Take(k0, nil)
	redo, replay, blocked := tk.FIFO("a3", 1400)
	if blocked || replay || !slices.Equal(offsetsOf(redo), []int64{0}) || redo[0].Reconsume != 1 {
		t.Fatalf("second expiry: redo %+v replay %v blocked %v, want offset 0 at reconsume 1", redo, replay, blocked)
	}
	tk.Drop(0)
	if n := tk.Leased(); n != 0 {
		t.Fatalf("%d leased after dropping the last one", n)
	}
	tk.Close()
	if got := committed(t, o, k0); got != 3 {
		t.Fatalf("committed %d after the batch was acked and dead-lettered, want 3", got)
	}
	b3, blocked := fifoTake(s, k0, "a4", 3, 1500, 100, 10)
	if blocked || !slices.Equal(offsetsOf(b3), []int64{3, 4, 5}) || b3[0].Reconsume != 0 {
		t.Fatalf("after the dead letter: %+v blocked %v, want 3 4 5 at reconsume 0", b3, blocked)
	}
	if n := s.Inflight("G"); n != 3 {
		t.Fatalf("in-flight %d, want 3", n)
	}
}

// TestFIFOPartialRedelivery: a redelivery smaller than the batch leaves
// the rest expired; it comes next, still before anything behind it.
func TestFIFOPartialRedelivery(t *testing.T) {
	s, _ := orderlyState()
	fifoTake(s, k0, "a1", 4, 1000, 100, 10)
	b2, _ := fifoTake(s, k0, "a2", 2, 1100, 100, 10)
	if !slices.Equal(offsetsOf(b2), []int64{0, 1}) {
		t.Fatalf("first part %v, want 0 1", offsetsOf(b2))
	}
	if _, blocked := fifoTake(s, k0, "a3", 2, 1150, 100, 10); !blocked {
		t.Fatal("not blocked while the redelivered part is in flight")
	}
	for _, l := range b2 {
		if err := s.Ack(k0, l.Offset, l.PopTime, 1150); err != nil {
			t.Fatal(err)
		}
	}
	b3, blocked := fifoTake(s, k0, "a3", 4, 1160, 100, 10)
	if blocked || !slices.Equal(offsetsOf(b3), []int64{2, 3}) || b3[0].Reconsume != 1 {
		t.Fatalf("rest %+v blocked %v, want 2 3 at reconsume 1", b3, blocked)
	}
}

// TestNonOrderlyGroupKeepsRetryPath: the reviver still takes expired
// leases of other groups out (retry copies), and Unblocked ignores them.
func TestNonOrderlyGroupKeepsRetryPath(t *testing.T) {
	s, _ := orderlyState()
	k := Key{"Other", "T", 0}
	take(s, k, 1, 1000, 100)
	if u := s.Unblocked(2000); len(u) != 0 {
		t.Fatalf("unblocked %v for a non-orderly group", u)
	}
	if ex := s.Expired(2000); len(ex) != 1 || ex[0].Key != k {
		t.Fatalf("expired %v, want the other group's lease", ex)
	}
}

// TestFIFOBatchSurvivesRestart: a batch in flight is saved with its
// attempt id; after the restart it still blocks its queue until its
// lease ends, then it comes back first, in place.
func TestFIFOBatchSurvivesRestart(t *testing.T) {
	s, o := orderlyState()
	b1, _ := fifoTake(s, k0, "a1", 3, 1000, 100, 10)
	if err := s.Ack(k0, 0, b1[0].PopTime, 1010); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "popState.json")
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	s2 := New(o)
	s2.SetOrderly(func(g string) bool { return g == "G" })
	if err := s2.Load(path); err != nil {
		t.Fatal(err)
	}
	if _, blocked := fifoTake(s2, k0, "b1", 3, 1050, 100, 10); !blocked {
		t.Fatal("the batch did not block its queue after the restart")
	}
	if ex := s2.Expired(1100); len(ex) != 0 {
		t.Fatalf("after the restart the reviver took FIFO leases out: %v", ex)
	}
	replay, blocked := fifoTake(s2, k0, "a1", 3, 1060, 100, 10)
	if blocked || !slices.Equal(offsetsOf(replay), []int64{1, 2}) || replay[0].Reconsume != 0 {
		t.Fatalf("replay after the restart: %+v blocked %v, want 1 2 (attempt id kept)", replay, blocked)
	}
	back, blocked := fifoTake(s2, k0, "b2", 3, 1200, 100, 10)
	if blocked || !slices.Equal(offsetsOf(back), []int64{1, 2}) || back[0].Reconsume != 1 {
		t.Fatalf("after expiry: %+v blocked %v, want 1 2 at reconsume 1", back, blocked)
	}
}

// TestResetClearsFIFOBatch: an administrator's offset reset drops the
// batch in flight: the queue is free at the new offset.
func TestResetClearsFIFOBatch(t *testing.T) {
	s, o := orderlyState()
	fifoTake(s, k0, "a1", 3, 1000, 100, 10)
	s.Reset(k0, 1)
	if s.Blocked(k0, 1010) || s.Inflight("G") != 0 {
		t.Fatalf("after the reset: blocked %v in flight %d", s.Blocked(k0, 1010), s.Inflight("G"))
	}
	if got := committed(t, o, k0); got != 1 {
		t.Fatalf("committed %d, want 1", got)
	}
	b, blocked := fifoTake(s, k0, "a1", 2, 1010, 100, 10)
	if blocked || !slices.Equal(offsetsOf(b), []int64{1, 2}) || b[0].Reconsume != 0 {
		t.Fatalf("after the reset: %+v blocked %v, want a new batch 1 2 (the old attempt id is gone)", b, blocked)
	}
}

// TestFIFOConcurrentReceivers: receivers racing on one orderly queue
// with acks, expiries and saves (run with -race) never get a batch while
// another is held, and together get every offset, in order, some after
// an in-place redelivery of an abandoned batch.
func TestFIFOConcurrentReceivers(t *testing.T) {
	s, o := orderlyState()
	const total = 600
	var clock atomic.Int64
	clock.Store(1000)
	var holders atomic.Int32 // receivers holding an unacked, live batch
	var mu sync.Mutex        // a take and its recording happen together
	var firsts []int64       // offsets at their first delivery, in delivery order
	redelivered := 0
	finished := func() bool { c, _ := o.Query("G", "T", 0); return c >= total }
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !finished(); i++ {
				// Every fifth batch is abandoned: a short lease that ends
				// as the clock runs; the others never expire.
				abandon := i%5 == 0
				inv := int64(1 << 40)
				if abandon {
					inv = 50
				}
				mu.Lock()
				now := clock.Add(1)
				got, blocked := fifoTake(s, k0, "", 3, now, inv, total)
				if len(got) > 0 {
					if holders.Load() != 0 {
						t.Errorf("a batch was handed out while another is held")
					}
					if !abandon {
						holders.Store(1) // until its acks start
					}
				}
				for _, l := range got {
					if l.Reconsume == 0 {
						firsts = append(firsts, l.Offset)
					} else {
						redelivered++
					}
				}
				mu.Unlock()
				if blocked || len(got) == 0 || abandon {
					continue
				}
				runtime.Gosched() // "consuming": lets the other receivers try the queue
				holders.Store(0)
				for _, l := range got {
					if err := s.Ack(k0, l.Offset, l.PopTime, now); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // the reviver's clock and the periodic save
		defer wg.Done()
		for !finished() {
			clock.Add(5)
			s.Unblocked(clock.Load())
			s.Expired(clock.Load())
			s.Encode()
		}
	}()
	wg.Wait()
	if len(firsts) != total || !slices.IsSorted(firsts) {
		t.Fatalf("first deliveries: %d offsets, sorted %v; want %d in order", len(firsts), slices.IsSorted(firsts), total)
	}
	if redelivered == 0 {
		t.Fatal("no batch was redelivered: the test did not exercise expiry")
	}
	if n := s.Inflight("G"); n != 0 {
		t.Fatalf("in-flight %d at the end, want 0", n)
	}
}
