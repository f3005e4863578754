// Package schedule delivers messages later than they were sent: delay
// levels through SCHEDULE_TOPIC_XXXX (RocketMQ 4: apache/rocketmq
// rocketmq-all-4.9.8 store/src/main/java/org/apache/rocketmq/store/schedule/ScheduleMessageService.java)
// and arbitrary delivery times through a timing wheel (RocketMQ 5 timers).
// Both park the message in a system topic with its real topic and queue in
// REAL_TOPIC/REAL_QID, then store a fresh copy there once it is due.
package schedule

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/mqops/mqops/atomicfile"
	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/wire"
)

// Tick is how often parked messages are looked at: delays are honoured to
// within a tick plus one dispatch.
const Tick = 100 * time.Millisecond

// persistEvery bounds what a crash redelivers: progress saved this long
// ago at most (Java flushes delayOffset.json every 10 s too).
const persistEvery = 10 * time.Second

// Levels is the delay-level service. Invariant: offsets[i] is the queue
// offset in SCHEDULE_TOPIC_XXXX queue i of the first message of level i+1
// not yet re-published; everything below it has been stored in its real
// topic. The saved file lags by at most persistEvery, so a crash repeats
// deliveries (at least once) but never skips one.
type Levels struct {
	st     *store.Store
	levels []time.Duration
	path   string
	log    *slog.Logger

	mu      sync.Mutex
	offsets []int64
	saved   time.Time
	saveMu  sync.Mutex // one file write at a time (loop, Replace, Close)

	buf, props []byte // loop-owned scratch
	stalled    []bool // per level: the last put failed (logged once)

	// DeadLetter, set before Start, takes messages the store refuses for
	// good; without it they are skipped with an error.
	DeadLetter DeadLetter

	runMu sync.Mutex    // Start and Stop
	stop  chan struct{} // nil while stopped
	wg    sync.WaitGroup
}

// offsetFile is delayOffset.json. Java writes fastjson's unquoted integer
// keys; we write (and read) standard JSON with the level as a string key.
type offsetFile struct {
	OffsetTable map[string]int64 `json:"offsetTable"`
}

// OpenLevels loads the delivery progress from path (config/delayOffset.json).
func OpenLevels(st *store.Store, levels []time.Duration, path string, log *slog.Logger) (*Levels, error) {
	l := &Levels{st: st, levels: levels, path: path, log: log, offsets: make([]int64, len(levels)),
		stalled: make([]bool, len(levels)), saved: time.Now()}
	data, err := atomicfile.Read(path)
	if err != nil {
		return nil, err
	}
	if len(data) > 0 {
		var f offsetFile
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("parse %s: %w", path, err)
		}
		for k, off := range f.OffsetTable {
			lvl, err := strconv.Atoi(k)
			if err != nil || lvl < 1 {
				return nil, fmt.Errorf("parse %s: bad delay level %q", path, k)
			}
			if lvl <= len(levels) {
				l.offsets[lvl-1] = off
			}
		}
	}
	// A crash can lose the log's unflushed tail, and with it parked
	// messages whose offsets were already saved as delivered; new parked
	// messages reuse those offsets and must not be skipped.
	for i := range l.offsets {
		if max := st.MaxOffset(meta.TopicSchedule, int32(i)); l.offsets[i] > max {
			log.Warn("[DELAY] saved progress beyond the schedule queue, corrected", "level", i+1, "saved", l.offsets[i], "max", max)
			l.offsets[i] = max
		}
	}
	return l, nil
}

// Start runs the delivery loop from the progress held now (on a promoted
// slave: what the metadata sync last copied from the master). Starting a
// running service does nothing.
func (l *Levels) Start() {
	l.runMu.Lock()
	defer l.runMu.Unlock()
	if l.stop != nil {
		return
	}
	l.stop = make(chan struct{})
	l.wg.Add(1)
	go l.loop(l.stop)
}

// Stop stops delivering and saves the progress; Start resumes. Stopping a
// stopped service only saves.
func (l *Levels) Stop() error {
	l.runMu.Lock()
	defer l.runMu.Unlock()
	if l.stop != nil {
		close(l.stop)
		l.stop = nil
		l.wg.Wait()
	}
	return l.persist()
}

// Close stops delivering and saves the progress.
func (l *Levels) Close() error { return l.Stop() }

// Running tells whether the delivery loop runs.
func (l *Levels) Running() bool {
	l.runMu.Lock()
	defer l.runMu.Unlock()
	return l.stop != nil
}

// MaxLevel is the highest delay level; larger requests are clamped to it.
func (l *Levels) MaxLevel() int { return len(l.levels) }

// Level reads a message's DELAY property: 0 when absent, invalid or not
// positive, else clamped to maxLevel (Java clamps too).
func Level(props []byte, maxLevel int) int {
	v := wire.PropertyValue(props, wire.PropDelay)
	if len(v) == 0 {
		return 0
	}
	n, ok := wire.ParseInt(v)
	if !ok || n <= 0 {
		return 0
	}
	return int(min(n, int64(maxLevel)))
}

// DeliverAt is a parked record's consume-queue tags code: its store time
// plus its level's delay, when it is due.
func DeliverAt(levels []time.Duration, v wire.RecordView) int64 {
	lvl := Level(v.Properties(), len(levels))
	if lvl == 0 {
		return v.StoreTimestamp()
	}
	return v.StoreTimestamp() + levels[lvl-1].Milliseconds()
}

// Park turns m into its parked form for a delay level: its real topic and
// queue move into properties (appended to dst, which is returned) and it
// goes to SCHEDULE_TOPIC_XXXX, one queue per level.
func Park(dst []byte, m *store.Message, level int) []byte {
	dst = ParkProps(dst, m)
	m.Topic, m.QueueID, m.Properties = meta.TopicSchedule, int32(level-1), dst
	return dst
}

// ParkProps appends m's properties with REAL_TOPIC and REAL_QID set to
// its topic and queue (replacing any left by an earlier parking).
func ParkProps(dst []byte, m *store.Message) []byte {
	dst = wire.RemoveProperty(dst[:0], m.Properties, wire.PropRealTopic)
	dst = wire.RemoveProperty(dst[:0], dst, wire.PropRealQueueID)
	dst = wire.AppendProperty(dst, wire.PropRealTopic, m.Topic)
	var q [12]byte
	return wire.AppendProperty(dst, wire.PropRealQueueID, strconv.AppendInt(q[:0], int64(m.QueueID), 10))
}

// Unpark builds the message that publishes parked record v to its real
// topic and queue, with the parking properties named in drop removed so a
// delivered message is never parked again. props is scratch space.
func Unpark(v wire.RecordView, props []byte, drop ...string) (store.Message, []byte, error) {
	p := v.Properties()
	topic := wire.PropertyValue(p, wire.PropRealTopic)
	qid, ok := wire.ParseInt(wire.PropertyValue(p, wire.PropRealQueueID))
	if len(topic) == 0 || !ok || qid < 0 {
		return store.Message{}, props, fmt.Errorf("parked message at %d has no valid REAL_TOPIC/REAL_QID", v.PhysicalOffset())
	}
	props = wire.RemoveProperty(props[:0], p, wire.PropRealTopic)
	props = wire.RemoveProperty(props[:0], props, wire.PropRealQueueID)
	for _, name := range drop {
		props = wire.RemoveProperty(props[:0], props, name)
	}
	return store.Republish(v, string(topic), int32(qid), props), props, nil
}

func (l *Levels) loop(stop <-chan struct{}) {
	defer l.wg.Done()
	t := time.NewTicker(Tick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := time.Now()
		for i := range l.levels {
			l.deliverLevel(i, now.UnixMilli())
		}
		// persist also runs from the slave sync (Replace), which sets saved.
		l.mu.Lock()
		due := now.Sub(l.saved) >= persistEvery
		l.mu.Unlock()
		if due {
			if err := l.persist(); err != nil {
				l.log.Error("[DELAY] saving delay progress failed", "file", l.path, "err", err)
			}
		}
	}
}

// deliverLevel re-publishes the due messages of level i+1. A level's queue
// is in delivery order (same delay, increasing store time), so the first
// message not yet due ends the pass.
func (l *Levels) deliverLevel(i int, now int64) {
	qid := int32(i)
	l.mu.Lock()
	off := l.offsets[i]
	l.mu.Unlock()
	start := off
	for max := l.st.MaxOffset(meta.TopicSchedule, qid); off < max; {
		u, ok := l.st.UnitAt(meta.TopicSchedule, qid, off)
		if !ok {
			if min := l.st.MinOffset(meta.TopicSchedule, qid); off < min {
				off = min // retention removed the head
			} else {
				off++ // a filler unit
			}
			continue
		}
		// A deliver time further out than a whole delay means the clock
		// went back since the message was parked: deliver it now.
		if due := u.TagsCode; due > now && due <= now+l.levels[i].Milliseconds() {
			break
		}
		if !l.deliver(i, u.Phys) {
			break
		}
		off++
	}
	if off != start {
		l.mu.Lock()
		l.offsets[i] = off
		l.mu.Unlock()
	}
}

// deliver stores the parked record at phys in its real topic; false means
// try again later (the store refused the write).
func (l *Levels) deliver(i int, phys int64) bool {
	var err error
	if l.buf, err = l.st.ReadRecord(phys, l.buf[:0]); err != nil {
		l.log.Error("[DELAY] parked message unreadable, skipped", "level", i+1, "offset", phys, "err", err)
		return true
	}
	v := wire.RecordView(l.buf)
	var m store.Message
	if m, l.props, err = Unpark(v, l.props, wire.PropDelay); err != nil {
		l.log.Error("[DELAY] parked message skipped", "level", i+1, "err", err)
		return true
	}
	r := l.st.Put(&m)
	switch {
	case stored(r.Status):
	case Permanent(r.Status):
		if !refused(l.st, l.DeadLetter, l.log, "DELAY", phys, &m, r.Status) {
			return false
		}
	default: // the store's state, not the message: it passes
		if !l.stalled[i] {
			l.log.Error("[DELAY] re-publishing a due message failed, will retry", "level", i+1, "offset", phys, "topic", m.Topic, "status", r.Status.String())
			l.stalled[i] = true
		}
		return false
	}
	l.stalled[i] = false
	return true
}

// Progress is, per level, the next schedule-queue offset to deliver and
// the queue's end: Java's scheduleMessageOffset_<level> runtime keys.
func (l *Levels) Progress() [][2]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([][2]int64, len(l.offsets))
	for i, off := range l.offsets {
		out[i] = [2]int64{off, l.st.MaxOffset(meta.TopicSchedule, int32(i))}
	}
	return out
}

// Encode is the progress in delayOffset.json's shape, what
// GET_ALL_DELAY_OFFSET answers (Java sends the file; this is the progress
// the file will hold at the next save).
func (l *Levels) Encode() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.encodeLocked()
}

func (l *Levels) encodeLocked() []byte {
	f := offsetFile{OffsetTable: map[string]int64{}}
	for i, off := range l.offsets {
		f.OffsetTable[strconv.Itoa(i+1)] = off
	}
	data, _ := json.Marshal(f) // a map of strings to ints always encodes
	return data
}

// Replace adopts a master's progress (GET_ALL_DELAY_OFFSET's body, a
// slave's metadata sync; Java's SlaveSynchronize.syncDelayOffset) and
// saves it. Java writes the level keys unquoted; both spellings are read.
// Levels this broker does not have are ignored, as at load; a body that
// does not parse changes nothing.
func (l *Levels) Replace(body []byte) error {
	std, err := wire.QuoteObjectKeys(body)
	if err != nil {
		return fmt.Errorf("delay offsets: %w", err)
	}
	var f offsetFile
	if err := json.Unmarshal(std, &f); err != nil {
		return fmt.Errorf("delay offsets: %w", err)
	}
	next := make([]int64, len(l.levels))
	for k, off := range f.OffsetTable {
		lvl, err := strconv.Atoi(k)
		if err != nil || lvl < 1 || off < 0 {
			return fmt.Errorf("delay offsets: bad entry %q: %d", k, off)
		}
		if lvl <= len(next) {
			next[lvl-1] = off
		}
	}
	l.mu.Lock()
	l.offsets = next
	l.mu.Unlock()
	return l.persist()
}

func (l *Levels) persist() error {
	l.saveMu.Lock()
	defer l.saveMu.Unlock()
	l.mu.Lock()
	data := l.encodeLocked()
	l.saved = time.Now()
	l.mu.Unlock()
	if err := atomicfile.Write(l.path, data, atomicfile.Options{Backup: true}); err != nil {
		return fmt.Errorf("save delay progress: %w", err)
	}
	return nil
}
