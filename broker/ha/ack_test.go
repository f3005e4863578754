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
	a := newAcks(3*time.Second, clk.now)
	r := &results{got: map[int64]bool{}}
	for _, end := range []int64{300, 100, 500, 200, 400} {
		a.Wait(end, r.waiter(end))
	}
	a.ack(250, nil)
	if got := r.snapshot(); len(got) != 2 || !got[100] || !got[200] {
		t.Fatalf("after ack 250: %v", got)
	}
	clk.add(time.Second)
	a.Wait(600, r.waiter(600)) // deadline 2 s after the others
	a.ack(100, nil)            // a lower report never lowers the acked offset
	if a.Acked() != 250 {
		t.Fatalf("Acked = %d after a lower report", a.Acked())
	}
	a.ack(400, nil)
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
	a.ack(600, nil)
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
	a.close()
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
	a := newAcks(50*time.Millisecond, time.Now)
	a.start()
	defer a.close()
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
	a := newAcks(time.Hour, time.Now)
	var order []int64
	ends := []int64{9, 3, 7, 1, 8, 2, 6, 4, 5, 10, 0}
	for _, e := range ends {
		a.Wait(e+1, func(bool) { order = append(order, e+1) })
	}
	for off := int64(1); off <= 11; off++ {
		a.ack(off, nil)
	}
	if !slices.IsSorted(order) || len(order) != len(ends) {
		t.Fatalf("completion order %v", order)
	}
}

// Waiting and acknowledging reuse their buffers: no allocation per send
// once the heap has grown.
func TestAcksNoAllocation(t *testing.T) {
	a := newAcks(time.Hour, time.Now)
	done := func(bool) {}
	var buf []waiter
	off := int64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		off += 100
		a.Wait(off, done)
		buf = a.ack(off, buf)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per wait+ack", allocs)
	}
}
