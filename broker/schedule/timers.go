package schedule

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/broker/timer"
	"github.com/mqops/mqops/fileutil"
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
// the delivery time and its store time+rollWindow, and a record that comes up before
// its TIMER_OUT_MS is parked again as a fresh copy (RocketMQ 5 rolls too).
type Timers struct {
	st         *store.Store
	dir        string
	rollWindow time.Duration
	log        *slog.Logger

	buf, props []byte
	rbuf       []byte // rollAt's and recordAt's
	// last is the timer-queue record the wheel read last (its Source-1),
	// zero when unknown: a cut log replaces it (see enqueueTo).
	last recordID

	stalled bool
	flushed time.Time

	// DeadLetter, set before Start, takes messages the store refuses for
	// good; without it they are skipped with an error.
	DeadLetter DeadLetter

	// w is replaced only by Reset, with the loop stopped and wMu held;
	// the loop and the methods holding runMu read it without wMu.
	wMu sync.RWMutex
	w   *timer.Wheel

	runMu sync.Mutex    // Start, Stop, Follow, Reset
	stop  chan struct{} // nil while stopped
	wg    sync.WaitGroup

	ckMu     sync.Mutex
	pub      published            // what Checkpoint serves
	served   wire.TimerCheckpoint // the last Checkpoint, for its data version
	followed wire.TimerCheckpoint // the last checkpoint Follow applied
	gen      uint64               // counts Resets
}

// OpenTimers opens the wheel in dir. Records retained for less than
// retention must be re-parked before it runs out.
func OpenTimers(st *store.Store, dir string, retention time.Duration, log *slog.Logger) (*Timers, error) {
	// A wheel Reset set aside and a crash kept from deleting.
	if err := os.RemoveAll(dir + ".old"); err != nil {
		return nil, fmt.Errorf("open timer wheel: remove the discarded wheel: %w", err)
	}
	w, err := timer.Open(timer.Options{Dir: dir, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("open timer wheel: %w", err)
	}
	t := &Timers{st: st, dir: dir, w: w, log: log, rollWindow: min(24*time.Hour, max(retention/2, time.Minute)), flushed: time.Now()}
	if src := w.Source(); src > 0 {
		t.last, _ = t.recordAt(src - 1)
	}
	t.publish()
	return t, nil
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
	t.runMu.Lock()
	defer t.runMu.Unlock()
	return t.w.Close()
}

// wheel returns the current wheel for callers outside runMu.
func (t *Timers) wheel() *timer.Wheel {
	t.wMu.RLock()
	defer t.wMu.RUnlock()
	return t.w
}

// Pending is the number of timer messages waiting in the wheel.
func (t *Timers) Pending() int64 { return t.wheel().Pending() }

// Failover. A slave's wheel follows its master's (as Java's
// TimerMessageStore on a slave: apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/timer/TimerMessageStore.java,
// isRunningEnqueue/isRunningDequeue, and
// broker/src/main/java/org/apache/rocketmq/broker/slave/SlaveSynchronize.java,
// syncTimerCheckPoint): the metadata sync fetches the master's Checkpoint
// every 10 s and Follow reads the replicated timer queue up to the offset
// the master had read and processes, without delivering, the seconds the
// master had processed. A promoted slave's loop then goes on from there:
// the messages the old master delivered before the last sync are not
// delivered again; those it delivered after it are (at-least-once).

// published is the wheel's progress and the commit-log end taken after a
// Due succeeded, by the goroutine that also Adds: every entry read from
// below the timer queue offset and due in a second before the cursor has
// been processed then. Mid-tick the wheel may have read an entry already
// due (linked into the cursor's second) and not processed it yet.
type published struct {
	p    timer.Progress
	phys int64 // read after the progress: the deliveries it counts are below it
}

// publish records the progress Checkpoint serves; called after each
// successful Due, by the goroutine running it, and whenever the wheel is
// replaced.
func (t *Timers) publish() {
	p := t.wheel().Progress()
	phys := t.st.MaxPhyOffset()
	t.ckMu.Lock()
	t.pub = published{p: p, phys: phys}
	t.ckMu.Unlock()
}

// Checkpoint is this broker's timer progress as GET_TIMER_CHECK_POINT
// answers it, as of the last publish. lastReadTimeMs is the start of the
// second before the cursor: every message due at or before it is
// delivered (its due second, ceil(ms/1000), is below the cursor), and a
// Java slave, which takes those due before it as delivered, skips no
// message that is not.
func (t *Timers) Checkpoint(stateVersion int64) wire.TimerCheckpoint {
	t.ckMu.Lock()
	defer t.ckMu.Unlock()
	p := t.pub.p
	ck := wire.TimerCheckpoint{LastTimerLogFlushPos: p.LogBytes, LastTimerQueueOffset: p.Source,
		MasterTimerQueueOffset: p.Source, CommitLogOffset: t.pub.phys}
	if p.Started {
		ck.LastReadTimeMs = max(0, (p.Cursor-1)*1000)
	}
	dv := t.served.DataVersion
	if ck.LastReadTimeMs != t.served.LastReadTimeMs || ck.MasterTimerQueueOffset != t.served.MasterTimerQueueOffset ||
		stateVersion != dv.StateVersion {
		dv = wire.DataVersion{StateVersion: stateVersion, Timestamp: time.Now().UnixMilli(), Counter: dv.Counter + 1}
	}
	ck.DataVersion = dv
	t.served = ck
	return ck
}

// Follow adopts a master's checkpoint on a broker whose loop is stopped:
// it feeds the wheel the timer queue up to ck.MasterTimerQueueOffset and
// discards what falls due before ck.LastReadTimeMs. It does nothing, and
// reports false, until the replicated commit log holds what ck counts on
// (ck.CommitLogOffset; a Java master does not send it) and the timer queue
// reaches ck.MasterTimerQueueOffset: a slave that skipped a delivery it
// does not hold yet would lose the message if promoted. gen is the
// Generation before ck was fetched: a checkpoint fetched before a Reset
// describes a master and a commit log this broker may no longer follow,
// and is refused with ErrStaleCheckpoint.
func (t *Timers) Follow(ck wire.TimerCheckpoint, gen uint64) (bool, error) {
	t.runMu.Lock()
	defer t.runMu.Unlock()
	if t.stop != nil {
		return false, errors.New("follow a timer checkpoint: the timer loop runs (this broker is master)")
	}
	if gen != t.Generation() {
		return false, ErrStaleCheckpoint
	}
	if ck.CommitLogOffset > t.st.MaxPhyOffset() || ck.MasterTimerQueueOffset > t.st.MaxOffset(meta.TopicTimer, 0) {
		return false, nil
	}
	if err := t.enqueueTo(time.Now().UnixMilli(), ck.MasterTimerQueueOffset); err != nil {
		return false, err
	}
	var skipped int64
	if ck.LastReadTimeMs > 0 {
		// Due hands over what is due at or before its argument. A Java
		// master has delivered what is due before lastReadTimeMs, an mqops
		// master (the one sending CommitLogOffset) also what is due at it.
		upTo := ck.LastReadTimeMs - 1
		if ck.CommitLogOffset >= 0 {
			upTo = ck.LastReadTimeMs
		}
		err := t.w.Due(upTo, func(timer.Entry) error { skipped++; return nil })
		if err != nil {
			return false, fmt.Errorf("follow a timer checkpoint: %w", err)
		}
	}
	t.publish()
	if err := t.w.Flush(); err != nil {
		return false, fmt.Errorf("follow a timer checkpoint: %w", err)
	}
	t.ckMu.Lock()
	t.followed = ck
	t.ckMu.Unlock()
	if skipped > 0 {
		t.log.Debug("[TIMER] followed the master's timer checkpoint", "lastReadTimeMs", ck.LastReadTimeMs,
			"timerQueueOffset", ck.MasterTimerQueueOffset, "deliveredByMaster", skipped)
	}
	return true, nil
}

// ErrStaleCheckpoint refuses a checkpoint fetched before a Reset.
var ErrStaleCheckpoint = errors.New("follow a timer checkpoint: fetched before the wheel was reset")

// Generation counts the Resets; see Follow.
func (t *Timers) Generation() uint64 {
	t.ckMu.Lock()
	defer t.ckMu.Unlock()
	return t.gen
}

// Followed is the last checkpoint Follow applied (zero if none).
func (t *Timers) Followed() wire.TimerCheckpoint {
	t.ckMu.Lock()
	defer t.ckMu.Unlock()
	return t.followed
}

// Reset empties the wheel of a broker whose loop is stopped. A broker
// turned slave calls it: its commit log may be cut back and refilled by
// the new master, so what its wheel read no longer matches the timer
// queue; Follow refills it from the master's checkpoint.
func (t *Timers) Reset() error {
	t.runMu.Lock()
	defer t.runMu.Unlock()
	if t.stop != nil {
		return errors.New("reset the timer wheel: the timer loop runs")
	}
	if err := t.resetWheel(); err != nil {
		return err
	}
	t.log.Info("[TIMER] timer wheel emptied: it follows the master's checkpoint from the next metadata sync")
	return nil
}

// resetWheel replaces the wheel by an empty one; by Reset, or by the loop
// or Follow finding the log cut under what the wheel read.
func (t *Timers) resetWheel() error {
	if err := t.w.Close(); err != nil {
		return fmt.Errorf("reset the timer wheel: %w", err)
	}
	// Set aside with one rename, so that a crash leaves either wheel
	// whole; OpenTimers deletes a leftover.
	old := t.dir + ".old"
	err := os.RemoveAll(old)
	if err == nil {
		err = os.Rename(t.dir, old)
	}
	if err == nil {
		err = fileutil.SyncDir(filepath.Dir(t.dir))
	}
	if err == nil {
		err = os.RemoveAll(old)
	}
	if err != nil {
		return fmt.Errorf("reset the timer wheel: %w", err)
	}
	w, err := timer.Open(timer.Options{Dir: t.dir, Logger: t.log})
	if err != nil {
		return fmt.Errorf("reset the timer wheel: %w", err)
	}
	t.wMu.Lock()
	t.w = w
	t.wMu.Unlock()
	t.last = recordID{}
	t.ckMu.Lock()
	t.followed = wire.TimerCheckpoint{}
	t.gen++
	t.ckMu.Unlock()
	t.publish()
	return nil
}

// recordID tells a timer-queue record from another stored at the same
// offset after the log was cut and refilled.
type recordID struct {
	phys, storeTs int64
	bodyCRC       int32
}

// recordAt identifies the timer-queue record at queue offset q.
func (t *Timers) recordAt(q int64) (recordID, bool) {
	u, ok := t.st.UnitAt(meta.TopicTimer, 0, q)
	if !ok {
		return recordID{}, false
	}
	var err error
	if t.rbuf, err = t.st.ReadRecord(u.Phys, t.rbuf[:0]); err != nil {
		return recordID{}, false
	}
	v := wire.RecordView(t.rbuf)
	return recordID{phys: u.Phys, storeTs: v.StoreTimestamp(), bodyCRC: v.BodyCRC()}, true
}

// diverged tells whether the timer queue no longer holds, at the wheel's
// Source-1, the record the wheel read there: the log was cut back (a
// replica rejoining after a failover cuts what it wrote alone) and maybe
// refilled with other records. Timer-queue records lie in commit-log
// order, so if the last one read is intact so are the ones before it.
func (t *Timers) diverged() bool {
	src := t.w.Source()
	if src == 0 || t.last == (recordID{}) {
		return false
	}
	if src > t.st.MaxOffset(meta.TopicTimer, 0) {
		return true
	}
	if src-1 < t.st.MinOffset(meta.TopicTimer, 0) {
		return false // removed by retention: nothing to compare with
	}
	id, ok := t.recordAt(src - 1)
	return ok && id != t.last
}

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
		if err := t.w.Due(now.UnixMilli(), t.deliver); err != nil {
			if !t.stalled {
				t.log.Error("[TIMER] delivering due timer messages failed, will retry", "err", err)
				t.stalled = true
			}
		} else {
			// Not after a failed Due: the entry it stopped at may be due
			// long ago though linked into the cursor's second.
			t.publish()
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
	if err := t.enqueueTo(now, t.st.MaxOffset(meta.TopicTimer, 0)); err != nil {
		t.log.Error("[TIMER] scheduling a timer message failed, will retry", "err", err)
	}
}

// enqueueTo feeds the wheel the timer queue's entries below end. A wheel
// that read records the log no longer holds starts over empty: what it
// read may never have reached the master, and the master's records at
// those queue offsets would never be read (lost); starting over delivers
// again what was delivered, at-least-once.
func (t *Timers) enqueueTo(now, end int64) error {
	if t.diverged() {
		t.log.Warn("[TIMER] the commit log was cut under the timer wheel's read position: starting the wheel over",
			"timerQueueOffset", t.w.Source())
		if err := t.resetWheel(); err != nil {
			return err
		}
	}
	off := t.w.Source()
	if min := t.st.MinOffset(meta.TopicTimer, 0); off < min {
		if off > 0 {
			t.log.Error("[TIMER] timer messages removed by retention before they were scheduled", "from", off, "to", min)
		}
		off = min
	}
	for ; off < end; off++ {
		u, ok := t.st.UnitAt(meta.TopicTimer, 0, off)
		if !ok {
			continue
		}
		e := timer.Entry{DeliverMs: min(u.TagsCode, t.rollAt(u.Phys, now)), Phys: u.Phys, Size: u.Size}
		if err := t.w.Add(e, off+1); err != nil {
			return fmt.Errorf("timer queue offset %d: %w", off, err)
		}
		t.last = recordID{phys: u.Phys}
		if len(t.rbuf) > 0 { // rollAt read it
			v := wire.RecordView(t.rbuf)
			t.last.storeTs, t.last.bodyCRC = v.StoreTimestamp(), v.BodyCRC()
		}
	}
	return nil
}

// rollAt is when the record at phys must be parked afresh: rollWindow
// after it was stored. The store time, not the time the wheel reads it,
// so that a master and a slave following it (Follow) give the wheel the
// same time and the slave skips a record exactly when the master has
// re-parked it. An unreadable record is dealt with by deliver.
func (t *Timers) rollAt(phys, now int64) int64 {
	var err error
	if t.rbuf, err = t.st.ReadRecord(phys, t.rbuf[:0]); err != nil {
		return now + t.rollWindow.Milliseconds()
	}
	return wire.RecordView(t.rbuf).StoreTimestamp() + t.rollWindow.Milliseconds()
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
