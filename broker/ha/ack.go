package ha

import (
	"sync"
	"time"
)

// Waiters holds the sends waiting for replicas (Java's
// GroupTransferService, apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/ha/GroupTransferService.java):
// a send whose record ends at end completes once the acked offset, which
// the replication protocol maintains, reaches end, or fails after the
// timeout (slaveTimeout). Classic HA only raises the acked offset (one
// slave's report is enough, as in 4.x); AutoSwitch may lower it, when a
// member joining the SyncStateSet makes later sends wait for it too.
// Waiters sit in a min-heap by end offset, so an ack completes exactly the
// prefix it covers.
type Waiters struct {
	timeout time.Duration
	now     func() time.Time

	mu     sync.Mutex
	heap   []waiter
	acked  int64
	closed bool

	// cmu serialises completions, so that ready can be reused and sends
	// complete in end-offset order whichever goroutine acks.
	cmu   sync.Mutex
	ready []waiter

	started bool
	kick    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
}

type waiter struct {
	end      int64
	deadline int64 // unix nanos
	done     func(ok bool)
}

// NewWaiters makes a registry whose waits last timeout, starting with
// acked as the acknowledged offset; now is the clock (time.Now but in tests).
func NewWaiters(timeout time.Duration, acked int64, now func() time.Time) *Waiters {
	return &Waiters{timeout: timeout, now: now, acked: acked, kick: make(chan struct{}, 1),
		stop: make(chan struct{}), stopped: make(chan struct{})}
}

// Acked is the acknowledged offset.
func (w *Waiters) Acked() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acked
}

// Wait calls done(true) once the acked offset reaches end, done(false) at
// the deadline or when the registry closes. done runs on the goroutine that
// completes it and must not block.
func (w *Waiters) Wait(end int64, done func(ok bool)) {
	w.mu.Lock()
	if w.closed || w.acked >= end {
		ok := w.acked >= end
		w.mu.Unlock()
		done(ok)
		return
	}
	w.push(waiter{end: end, deadline: w.now().Add(w.timeout).UnixNano(), done: done})
	first := len(w.heap) == 1
	w.mu.Unlock()
	if first {
		w.wake()
	}
}

// Raise raises the acked offset to off (a lower off changes nothing) and
// completes the sends it covers.
func (w *Waiters) Raise(off int64) {
	w.cmu.Lock()
	w.mu.Lock()
	w.acked = max(w.acked, off)
	w.popCovered()
	w.mu.Unlock()
	w.complete()
}

// Set sets the acked offset, lower or higher, and completes the sends it
// covers.
func (w *Waiters) Set(off int64) {
	w.cmu.Lock()
	w.mu.Lock()
	w.acked = off
	w.popCovered()
	w.mu.Unlock()
	w.complete()
}

// SetLater sets the acked offset but leaves completing the sends it covers
// to the expiry goroutine: for the append path (under the store's append
// lock), where no answer may be written.
func (w *Waiters) SetLater(off int64) {
	w.mu.Lock()
	w.acked = off
	ready := len(w.heap) > 0 && w.heap[0].end <= off
	w.mu.Unlock()
	if ready {
		w.wake()
	}
}

// FailAll fails every pending send and resets the acked offset to acked
// (the broker stopped being master).
func (w *Waiters) FailAll(acked int64) {
	w.mu.Lock()
	pending := w.heap
	w.heap = nil
	w.acked = acked
	w.mu.Unlock()
	for _, x := range pending {
		x.done(false)
	}
}

// popCovered moves the sends the acked offset covers to w.ready; w.cmu and
// w.mu held.
func (w *Waiters) popCovered() {
	for len(w.heap) > 0 && w.heap[0].end <= w.acked {
		w.ready = append(w.ready, w.pop())
	}
}

// completeWith answers the sends in w.ready and unlocks w.cmu.
func (w *Waiters) completeWith(ok bool) {
	for i := range w.ready {
		w.ready[i].done(ok)
		w.ready[i].done = nil // do not keep the response alive
	}
	w.ready = w.ready[:0]
	w.cmu.Unlock()
}

func (w *Waiters) complete() { w.completeWith(true) }

func (w *Waiters) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// expire completes what SetLater left, fails the sends whose deadline has
// passed and returns the earliest remaining deadline (0 if none).
func (w *Waiters) expire(now time.Time) (next int64) {
	w.cmu.Lock()
	w.mu.Lock()
	w.popCovered()
	w.mu.Unlock()
	w.complete()

	t := now.UnixNano()
	w.cmu.Lock()
	w.mu.Lock()
	keep := w.heap[:0]
	for _, x := range w.heap {
		if x.deadline <= t {
			w.ready = append(w.ready, x)
			continue
		}
		keep = append(keep, x)
		if next == 0 || x.deadline < next {
			next = x.deadline
		}
	}
	clear(w.heap[len(keep):])
	w.heap = keep
	for i := len(w.heap)/2 - 1; i >= 0; i-- {
		w.down(i)
	}
	w.mu.Unlock()
	w.completeWith(false)
	return next
}

// Start runs the expiry loop: it sleeps until the earliest deadline, or
// until a first waiter arrives or SetLater has sends to complete.
func (w *Waiters) Start() {
	w.started = true
	go func() {
		defer close(w.stopped)
		timer := time.NewTimer(time.Hour)
		defer timer.Stop()
		for {
			next := w.expire(w.now())
			wait := time.Hour
			if next > 0 {
				wait = time.Duration(next - w.now().UnixNano())
			}
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(max(wait, time.Millisecond))
			select {
			case <-w.stop:
				return
			case <-w.kick:
			case <-timer.C:
			}
		}
	}()
}

// Close stops the expiry loop and fails every send still pending.
func (w *Waiters) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	pending := w.heap
	w.heap = nil
	w.mu.Unlock()
	close(w.stop)
	if w.started {
		<-w.stopped
	}
	for _, x := range pending {
		x.done(false)
	}
}

// Pending is the number of sends waiting.
func (w *Waiters) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.heap)
}

// push, pop and down keep w.heap a min-heap by end offset (container/heap
// would box every waiter in an interface: an allocation per send).
func (w *Waiters) push(x waiter) {
	w.heap = append(w.heap, x)
	for i := len(w.heap) - 1; i > 0; {
		p := (i - 1) / 2
		if w.heap[p].end <= w.heap[i].end {
			break
		}
		w.heap[p], w.heap[i] = w.heap[i], w.heap[p]
		i = p
	}
}

func (w *Waiters) pop() waiter {
	x := w.heap[0]
	last := len(w.heap) - 1
	w.heap[0] = w.heap[last]
	w.heap[last] = waiter{}
	w.heap = w.heap[:last]
	w.down(0)
	return x
}

func (w *Waiters) down(i int) {
	for n := len(w.heap); ; {
		l, small := 2*i+1, i
		if l < n && w.heap[l].end < w.heap[small].end {
			small = l
		}
		if r := l + 1; r < n && w.heap[r].end < w.heap[small].end {
			small = r
		}
		if small == i {
			return
		}
		w.heap[i], w.heap[small] = w.heap[small], w.heap[i]
		i = small
	}
}
