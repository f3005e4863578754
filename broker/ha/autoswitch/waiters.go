package autoswitch

import (
	"sync"
	"time"
)

// waiters holds SYNC sends until the ack rule covers their end offset
// (Java's GroupTransferService, apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/ha/GroupTransferService.java).
// Unlike the classic registry the acked offset may move back: a member
// joining the SyncStateSet makes later sends wait for it too.
type waiters struct {
	timeout time.Duration

	mu     sync.Mutex
	list   []waiter // min-heap by end
	acked  int64
	closed bool

	kick    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
	started bool
	buf     []waiter
}

type waiter struct {
	end      int64
	deadline int64 // unix nanos
	done     func(ok bool)
}

func (w *waiters) init(timeout time.Duration) {
	w.timeout = timeout
	w.acked = -1
	w.kick = make(chan struct{}, 1)
	w.stop = make(chan struct{})
	w.stopped = make(chan struct{})
}

func (w *waiters) wait(end int64, done func(ok bool)) {
	w.mu.Lock()
	if w.closed || w.acked >= end {
		ok := !w.closed
		w.mu.Unlock()
		done(ok)
		return
	}
	w.push(waiter{end: end, deadline: time.Now().Add(w.timeout).UnixNano(), done: done})
	first := len(w.list) == 1
	w.mu.Unlock()
	if first {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// advance sets the acked offset and completes the sends it covers.
func (w *waiters) advance(off int64) {
	w.mu.Lock()
	w.acked = off
	if len(w.list) == 0 || w.list[0].end > off {
		w.mu.Unlock()
		return
	}
	var ready []waiter
	for len(w.list) > 0 && w.list[0].end <= off {
		ready = append(ready, w.pop())
	}
	w.mu.Unlock()
	for _, r := range ready {
		r.done(true)
	}
}

// raise sets the acked offset from the append path (under the store's
// append lock): sends it covers are completed by the expiry goroutine, not
// here, so no answer is written while the log is locked.
func (w *waiters) raise(off int64) {
	w.mu.Lock()
	w.acked = off
	ready := len(w.list) > 0 && w.list[0].end <= off
	w.mu.Unlock()
	if ready {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// failAll fails every pending send (the broker stopped being master).
func (w *waiters) failAll() {
	w.mu.Lock()
	pending := w.list
	w.list = nil
	w.acked = -1
	w.mu.Unlock()
	for _, r := range pending {
		r.done(false)
	}
}

func (w *waiters) start() {
	w.started = true
	go func() {
		defer close(w.stopped)
		t := time.NewTimer(time.Hour)
		defer t.Stop()
		for {
			w.mu.Lock()
			acked := w.acked
			w.mu.Unlock()
			w.advance(acked) // what raise left for this goroutine
			next := w.expire(time.Now().UnixNano())
			d := time.Hour
			if next > 0 {
				d = max(time.Duration(next-time.Now().UnixNano()), time.Millisecond)
			}
			t.Reset(d)
			select {
			case <-w.stop:
				return
			case <-w.kick:
			case <-t.C:
			}
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
	}()
}

// expire fails sends past their deadline; returns the next deadline (0: none).
func (w *waiters) expire(now int64) (next int64) {
	w.mu.Lock()
	keep := w.list[:0]
	late := w.buf[:0]
	for _, x := range w.list {
		if x.deadline <= now {
			late = append(late, x)
			continue
		}
		keep = append(keep, x)
		if next == 0 || x.deadline < next {
			next = x.deadline
		}
	}
	clear(w.list[len(keep):])
	w.list = keep
	for i := len(w.list)/2 - 1; i >= 0; i-- {
		w.down(i)
	}
	w.mu.Unlock()
	for i := range late {
		late[i].done(false)
		late[i].done = nil
	}
	w.buf = late[:0]
	return next
}

func (w *waiters) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	pending := w.list
	w.list = nil
	w.mu.Unlock()
	close(w.stop)
	if w.started {
		<-w.stopped
	}
	for _, r := range pending {
		r.done(false)
	}
}

func (w *waiters) push(x waiter) {
	w.list = append(w.list, x)
	for i := len(w.list) - 1; i > 0; {
		p := (i - 1) / 2
		if w.list[p].end <= w.list[i].end {
			break
		}
		w.list[p], w.list[i] = w.list[i], w.list[p]
		i = p
	}
}

func (w *waiters) pop() waiter {
	x := w.list[0]
	last := len(w.list) - 1
	w.list[0] = w.list[last]
	w.list[last] = waiter{}
	w.list = w.list[:last]
	w.down(0)
	return x
}

func (w *waiters) down(i int) {
	for n := len(w.list); ; {
		l, small := 2*i+1, i
		if l < n && w.list[l].end < w.list[small].end {
			small = l
		}
		if r := l + 1; r < n && w.list[r].end < w.list[small].end {
			small = r
		}
		if small == i {
			return
		}
		w.list[i], w.list[small] = w.list[small], w.list[i]
		i = small
	}
}
