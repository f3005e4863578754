package ha

import (
	"slices"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

type results struct {
	mu  sync.Mutex
	got map[int64]bool
}

func (r *results) waiter(end int64) func(bool) {
	return func(ok bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, dup := r.got[end]; dup {
			panic("waiter completed twice")
		}
		r.got[end] = ok
	}
}

func (r *results) snapshot() map[int64]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[int64]bool{}
	for k, v := range r.got {
		out[k] = v
	}
	return out
}

// An ack completes exactly the waiters whose records end at or below it,
// whatever order they arrived in; the others time out at their deadline.
func TestAcksCompleteByEndOffset(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	a := NewWaiters(3*time.Second, 0, clk.now)
	r := &results{got: map[int64]bool{}}
	for _, end := range []int64{300, 100, 500, 200, 400} {
		a.Wait(end, r.waiter(end))
	}
	a.Raise(250)
	if got := r.snapshot(); len(got) != 2 || !got[100] || !got[200] {
		t.Fatalf("after ack 250: %v", got)
	}
	clk.add(time.Second)
	a.Wait(600, r.waiter(600)) // deadline 2 s after the others
	a.Raise(100)               // a lower report never lowers the acked offset
	if a.Acked() != 250 {
		t.Fatalf("Acked = %d after a lower report", a.Acked())
	}
	a.Raise(400)
	if got := r.snapshot(); len(got) != 4 || !got[300] || !got[400] {
		t.Fatalf("after ack 400: %v", got)
	}
	if next := a.expire(clk.add(time.Second)); next != time.Unix(1003, 0).UnixNano() {
		t.Fatalf("2 s in: next deadline %v", time.Unix(0, next))
	}
	if len(r.snapshot()) != 4 {
		t.Fatal("a waiter expired before its deadline")
	}
	a.expire(clk.add(time.Second)) // 3 s after the first waiters
	if got := r.snapshot(); len(got) != 5 || got[500] {
		t.Fatalf("500 should have timed out: %v", got)
	}
	if a.Pending() != 1 {
		t.Fatalf("pending = %d, want 1 (600)", a.Pending())
	}
	a.Raise(600)
	if got := r.snapshot(); !got[600] || a.Pending() != 0 {
		t.Fatalf("600: %v pending %d", got, a.Pending())
	}
	// Already acknowledged: completes at once.
	a.Wait(50, r.waiter(50))
	if !r.snapshot()[50] {
		t.Fatal("a wait below the acked offset did not complete at once")
	}
	// Closing fails what is still waiting.
	a.Wait(700, r.waiter(700))
	a.Close()
	if ok, done := r.snapshot()[700]; !done || ok {
		t.Fatalf("close: 700 done=%v ok=%v", done, ok)
	}
	a.Wait(800, r.waiter(800))
	if ok, done := r.snapshot()[800]; !done || ok {
		t.Fatalf("wait after close: done=%v ok=%v", done, ok)
	}
}

// The expiry loop fails a waiter by its deadline on the real clock.
func TestAcksExpiryLoop(t *testing.T) {
	a := NewWaiters(50*time.Millisecond, 0, time.Now)
	a.Start()
	defer a.Close()
	done := make(chan bool, 1)
	a.Wait(10, func(ok bool) { done <- ok })
	select {
	case ok := <-done:
		if ok {
			t.Fatal("completed without an ack")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter never timed out")
	}
}

// Many waiters in random order: the heap pops them sorted.
func TestAcksHeapOrder(t *testing.T) {
	a := NewWaiters(time.Hour, 0, time.Now)
	var order []int64
	ends := []int64{9, 3, 7, 1, 8, 2, 6, 4, 5, 10, 0}
	for _, e := range ends {
		a.Wait(e+1, func(bool) { order = append(order, e+1) })
	}
	for off := int64(1); off <= 11; off++ {
		a.Raise(off)
	}
	if !slices.IsSorted(order) || len(order) != len(ends) {
		t.Fatalf("completion order %v", order)
	}
}

// Waiting and acknowledging reuse their buffers: no allocation per send
// once the heap has grown.
func TestAcksNoAllocation(t *testing.T) {
	a := NewWaiters(time.Hour, 0, time.Now)
	done := func(bool) {}
	off := int64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		off += 100
		a.Wait(off, done)
		a.Raise(off)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per wait+ack", allocs)
	}
}

// Set may lower the acked offset (AutoSwitch: a member joins the
// SyncStateSet); SetLater leaves the completions to the expiry loop; FailAll
// fails everything and resets the offset.
func TestWaitersSetLowerLaterAndFailAll(t *testing.T) {
	a := NewWaiters(time.Hour, -1, time.Now)
	r := &results{got: map[int64]bool{}}
	a.Set(500)
	a.Set(200) // lowered: a wait above 200 now waits
	a.Wait(300, r.waiter(300))
	a.Wait(100, r.waiter(100))
	if got := r.snapshot(); len(got) != 1 || !got[100] {
		t.Fatalf("after Set(200): %v", got)
	}
	a.SetLater(300)
	if got := r.snapshot(); len(got) != 1 || a.Acked() != 300 {
		t.Fatalf("SetLater completed on the caller: %v (acked %d)", got, a.Acked())
	}
	a.Start()
	defer a.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !r.snapshot()[300] {
		if time.Now().After(deadline) {
			t.Fatal("the expiry loop never completed what SetLater covered")
		}
		time.Sleep(time.Millisecond)
	}
	a.Wait(400, r.waiter(400))
	a.FailAll(-1)
	if ok, done := r.snapshot()[400]; !done || ok || a.Acked() != -1 || a.Pending() != 0 {
		t.Fatalf("FailAll: done=%v ok=%v acked=%d pending=%d", done, ok, a.Acked(), a.Pending())
	}
}

// Set, as Raise, completes without allocating.
func TestWaitersSetNoAllocation(t *testing.T) {
	a := NewWaiters(time.Hour, -1, time.Now)
	done := func(bool) {}
	off := int64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		off += 100
		a.Wait(off, done)
		a.Set(off)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per wait+set", allocs)
	}
}
