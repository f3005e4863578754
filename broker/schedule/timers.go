package schedule

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/broker/timer"
	"github.com/mqops/mqops/wire"
)

// timerTick is how often the wheel is asked for due messages; with the
// wheel's one-second slots a message arrives at most about a second late.
const timerTick = 50 * time.Millisecond

// timerFlushEvery bounds what a crash makes the wheel redeliver.
const timerFlushEvery = time.Second

// Timers delivers RocketMQ 5 timer messages (TIMER_DELIVER_MS,
// TIMER_DELAY_SEC, TIMER_DELAY_MS): parked in rmq_sys_wheel_timer queue 0
// with TIMER_OUT_MS, their consume-queue entries are fed into an on-disk
// timing wheel, which hands them back when due.
//
// The commit log keeps a record only fileReservedTime hours, so no parked
// record may wait longer than rollWindow: the wheel is told the earlier of
// the delivery time and now+rollWindow, and a record that comes up before
// its TIMER_OUT_MS is parked again as a fresh copy (RocketMQ 5 rolls too).
type Timers struct {
	st         *store.Store
	w          *timer.Wheel
	rollWindow time.Duration
	log        *slog.Logger

	buf, props []byte
	stalled    bool
	flushed    time.Time

	// DeadLetter, set before Start, takes messages the store refuses for
	// good; without it they are skipped with an error.
	DeadLetter DeadLetter

	runMu sync.Mutex    // Start and Stop
	stop  chan struct{} // nil while stopped
	wg    sync.WaitGroup
}

// OpenTimers opens the wheel in dir. Records retained for less than
// retention must be re-parked before it runs out.
func OpenTimers(st *store.Store, dir string, retention time.Duration, log *slog.Logger) (*Timers, error) {
	w, err := timer.Open(timer.Options{Dir: dir, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("open timer wheel: %w", err)
	}
	return &Timers{st: st, w: w, log: log, rollWindow: min(24*time.Hour, max(retention/2, time.Minute)), flushed: time.Now()}, nil
}

// Start runs the timer loop. It resumes feeding the wheel from the wheel's
// own Source, so on a promoted slave it picks up the timer messages
// replicated while it was stopped. Starting a running loop does nothing.
func (t *Timers) Start() {
	t.runMu.Lock()
	defer t.runMu.Unlock()
	if t.stop != nil {
		return
	}
	t.stop = make(chan struct{})
	t.wg.Add(1)
	go t.loop(t.stop)
}

// Stop stops the loop and flushes the wheel; Start resumes.
func (t *Timers) Stop() error {
	t.runMu.Lock()
	defer t.runMu.Unlock()
	if t.stop == nil {
		return nil
	}
	close(t.stop)
	t.stop = nil
	t.wg.Wait()
	return t.w.Flush()
}

// Running tells whether the timer loop runs.
func (t *Timers) Running() bool {
	t.runMu.Lock()
	defer t.runMu.Unlock()
	return t.stop != nil
}

// Close stops the loop and closes the wheel (which flushes it).
func (t *Timers) Close() error {
	if err := t.Stop(); err != nil {
		t.log.Error("[TIMER] flushing the timer wheel failed", "err", err)
	}
	return t.w.Close()
}

// Pending is the number of timer messages waiting in the wheel.
func (t *Timers) Pending() int64 { return t.w.Pending() }

// ErrTimerTooLong refuses a timer message further out than the maximum.
var ErrTimerTooLong = errors.New("timer message delay exceeds timerMaxDelaySec")

// TimerDeliverAt reads a message's timer properties: ok is false when it
// has none. The delivery time is absolute (TIMER_DELIVER_MS) or now plus
// TIMER_DELAY_SEC / TIMER_DELAY_MS.
func TimerDeliverAt(props []byte, now int64, maxDelay time.Duration) (at int64, ok bool, err error) {
	var v []byte
	var unit int64
	for _, p := range [...]struct {
		name string
		unit int64
	}{{wire.PropTimerDeliverMs, 0}, {wire.PropTimerDelaySec, 1000}, {wire.PropTimerDelayMs, 1}} {
		if v = wire.PropertyValue(props, p.name); len(v) > 0 {
			unit = p.unit
			break
		}
	}
	if len(v) == 0 {
		return 0, false, nil
	}
	n, valid := wire.ParseInt(v)
	if !valid || n < 0 {
		return 0, false, fmt.Errorf("timer property value %q is not a non-negative integer", v)
	}
	at = n
	if unit > 0 {
		if n > maxDelay.Milliseconds()/unit {
			return 0, false, ErrTimerTooLong
		}
		at = now + n*unit
	}
	if at-now > maxDelay.Milliseconds() {
		return 0, false, ErrTimerTooLong
	}
	return at, true, nil
}

// ParkTimer turns m into its parked timer form, due at at: TIMER_OUT_MS
// holds the time, REAL_TOPIC/REAL_QID its destination.
func ParkTimer(dst []byte, m *store.Message, at int64) []byte {
	dst = ParkProps(dst, m)
	dst = wire.RemoveProperty(dst[:0], dst, wire.PropTimerOutMs)
	var b [20]byte
	dst = wire.AppendProperty(dst, wire.PropTimerOutMs, strconv.AppendInt(b[:0], at, 10))
	m.Topic, m.QueueID, m.Properties = meta.TopicTimer, 0, dst
	return dst
}

// TimerOutMs is a parked timer record's consume-queue tags code: when it
// is due.
func TimerOutMs(v wire.RecordView) int64 {
	n, _ := wire.ParseInt(wire.PropertyValue(v.Properties(), wire.PropTimerOutMs))
	return n
}

func (t *Timers) loop(stop <-chan struct{}) {
	defer t.wg.Done()
	tk := time.NewTicker(timerTick)
	defer tk.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tk.C:
		}
		now := time.Now()
		t.enqueue(now.UnixMilli())
		if err := t.w.Due(now.UnixMilli(), t.deliver); err != nil && !t.stalled {
			t.log.Error("[TIMER] delivering due timer messages failed, will retry", "err", err)
			t.stalled = true
		}
		if now.Sub(t.flushed) >= timerFlushEvery {
			t.flushed = now
			if err := t.w.Flush(); err != nil {
				t.log.Error("[TIMER] flushing the timer wheel failed", "err", err)
			}
		}
	}
}

// enqueue feeds the timer queue's new entries into the wheel; the wheel
// keeps the queue offset it has reached (Source) with its own checkpoint.
func (t *Timers) enqueue(now int64) {
	off := t.w.Source()
	if min := t.st.MinOffset(meta.TopicTimer, 0); off < min {
		if off > 0 {
			t.log.Error("[TIMER] timer messages removed by retention before they were scheduled", "from", off, "to", min)
		}
		off = min
	}
	for end := t.st.MaxOffset(meta.TopicTimer, 0); off < end; off++ {
		u, ok := t.st.UnitAt(meta.TopicTimer, 0, off)
		if !ok {
			continue
		}
		e := timer.Entry{DeliverMs: min(u.TagsCode, now+t.rollWindow.Milliseconds()), Phys: u.Phys, Size: u.Size}
		if err := t.w.Add(e, off+1); err != nil {
			t.log.Error("[TIMER] scheduling a timer message failed, will retry", "queueOffset", off, "err", err)
			return
		}
	}
}

// deliver publishes a due record to its real topic, or parks a fresh copy
// when it only came up to be rolled.
func (t *Timers) deliver(e timer.Entry) error {
	var err error
	if t.buf, err = t.st.ReadRecord(e.Phys, t.buf[:0]); err != nil {
		t.log.Error("[TIMER] timer message unreadable, skipped", "offset", e.Phys, "err", err)
		return nil
	}
	v := wire.RecordView(t.buf)
	var m store.Message
	if out := TimerOutMs(v); out > time.Now().UnixMilli() {
		m = store.Republish(v, meta.TopicTimer, 0, v.Properties())
	} else if m, t.props, err = Unpark(v, t.props, wire.PropTimerOutMs, wire.PropTimerDeliverMs, wire.PropTimerDelaySec, wire.PropTimerDelayMs); err != nil {
		t.log.Error("[TIMER] timer message skipped", "err", err)
		return nil
	}
	r := t.st.Put(&m)
	switch {
	case stored(r.Status):
	case Permanent(r.Status):
		// An error would stop the wheel at this entry for good.
		if !refused(t.st, t.DeadLetter, t.log, "TIMER", e.Phys, &m, r.Status) {
			return fmt.Errorf("store timer message for %s in its dead-letter topic: %s", m.Topic, r.Status)
		}
	default:
		return fmt.Errorf("store timer message for %s: %s", m.Topic, r.Status)
	}
	t.stalled = false
	return nil
}
