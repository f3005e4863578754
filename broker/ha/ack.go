package ha

import (
	"sync"
	"time"
)

// Acks holds the SYNC_MASTER sends waiting for a slave (Java's
// GroupTransferService, apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/ha/HAService.java): a send
// whose record ends at end completes once some slave has reported an
// offset ≥ end (one slave is enough, as in 4.x), or fails after
// slaveTimeout. Waiters sit in a min-heap by end offset, so an ack
// completes exactly the prefix it covers.
type Acks struct {
	timeout time.Duration
	now     func() time.Time

	mu     sync.Mutex
	heap   []waiter
	acked  int64 // highest offset any slave reported; never lowered
	closed bool

	started bool
	kick    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
	expired []waiter // reused by the expiry loop
}

type waiter struct {
	end      int64
	deadline int64 // unix nanos
	done     func(ok bool)
}

func newAcks(timeout time.Duration, now func() time.Time) *Acks {
	return &Acks{timeout: timeout, now: now, kick: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
}

// Acked is the highest offset a slave has acknowledged.
func (a *Acks) Acked() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.acked
}

// Wait calls done(true) once a slave has acknowledged end, done(false) at
// the deadline or when the registry closes. done runs on the goroutine that
// completes it and must not block.
func (a *Acks) Wait(end int64, done func(ok bool)) {
	a.mu.Lock()
	if a.closed || a.acked >= end {
		ok := a.acked >= end
		a.mu.Unlock()
		done(ok)
		return
	}
	a.push(waiter{end: end, deadline: a.now().Add(a.timeout).UnixNano(), done: done})
	first := len(a.heap) == 1
	a.mu.Unlock()
	if first {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
}

// ack raises the acknowledged offset to off and completes the waiters it
// covers; buf is the caller's scratch (returned for reuse).
func (a *Acks) ack(off int64, buf []waiter) []waiter {
	a.mu.Lock()
	if off > a.acked {
		a.acked = off
	}
	for len(a.heap) > 0 && a.heap[0].end <= a.acked {
		buf = append(buf, a.pop())
	}
	a.mu.Unlock()
	for i := range buf {
		buf[i].done(true)
		buf[i].done = nil // do not keep the response alive
	}
	return buf[:0]
}

// expire fails the waiters whose deadline has passed and returns the
// earliest remaining deadline (0 if none).
func (a *Acks) expire(now time.Time) (next int64) {
	t := now.UnixNano()
	a.mu.Lock()
	keep := a.heap[:0]
	buf := a.expired[:0]
	for _, w := range a.heap {
		if w.deadline <= t {
			buf = append(buf, w)
			continue
		}
		keep = append(keep, w)
		if next == 0 || w.deadline < next {
			next = w.deadline
		}
	}
	clear(a.heap[len(keep):])
	a.heap = keep
	for i := len(a.heap)/2 - 1; i >= 0; i-- {
		a.down(i)
	}
	a.mu.Unlock()
	for i := range buf {
		buf[i].done(false)
		buf[i].done = nil
	}
	a.expired = buf[:0]
	return next
}

// start runs the expiry loop: it sleeps until the earliest deadline, or
// until a first waiter arrives.
func (a *Acks) start() {
	a.started = true
	go func() {
		defer close(a.stopped)
		timer := time.NewTimer(time.Hour)
		defer timer.Stop()
		for {
			next := a.expire(a.now())
			wait := time.Hour
			if next > 0 {
				wait = time.Duration(next - a.now().UnixNano())
			}
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(max(wait, time.Millisecond))
			select {
			case <-a.stop:
				return
			case <-a.kick:
			case <-timer.C:
			}
		}
	}()
}

// close stops the expiry loop and fails every waiter still pending.
func (a *Acks) close() {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.closed = true
	pending := a.heap
	a.heap = nil
	a.mu.Unlock()
	close(a.stop)
	if a.started {
		<-a.stopped
	}
	for _, w := range pending {
		w.done(false)
	}
}

// Pending is the number of sends waiting.
func (a *Acks) Pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.heap)
}

// push, pop and down keep a.heap a min-heap by end offset (container/heap
// would box every waiter in an interface).
func (a *Acks) push(w waiter) {
	a.heap = append(a.heap, w)
	for i := len(a.heap) - 1; i > 0; {
		p := (i - 1) / 2
		if a.heap[p].end <= a.heap[i].end {
			break
		}
		a.heap[p], a.heap[i] = a.heap[i], a.heap[p]
		i = p
	}
}

func (a *Acks) pop() waiter {
	w := a.heap[0]
	last := len(a.heap) - 1
	a.heap[0] = a.heap[last]
	a.heap[last] = waiter{}
	a.heap = a.heap[:last]
	a.down(0)
	return w
}

func (a *Acks) down(i int) {
	for n := len(a.heap); ; {
		l, small := 2*i+1, i
		if l < n && a.heap[l].end < a.heap[small].end {
			small = l
		}
		if r := l + 1; r < n && a.heap[r].end < a.heap[small].end {
			small = r
		}
		if small == i {
			return
		}
		a.heap[i], a.heap[small] = a.heap[small], a.heap[i]
		i = small
	}
}
