// Package timer is the broker's on-disk timing wheel, after RocketMQ 5's
// TimerWheel and TimerLog: it remembers where each scheduled message lives
// in the commit log and hands it back once its delivery time has come,
// never early and at most a second late, for delays of any length.
//
// Files in Options.Dir (formats in format.go):
//
//	checkpoint       the recovery point, replaced atomically
//	wheel            one slot per second of the span
//	log/<20 digits>  timer-log segments of fixed-size entries, named by the
//	                 index of their first entry
//	lock             flocked while open
//	abort            present while open: found at Open, the last run crashed
//
// Time. An entry's due second is ceil(DeliverMs/1000). The dequeue cursor
// and done say what has been processed: every second below the cursor, and
// of the cursor's second the entries from done back (none if done is -1).
// Processing an entry hands it to Due's fn or, for one parked short of its
// due second, re-adds it.
//
// Linking. An entry added while the cursor is c is appended to the log and
// linked into slot second t = clamp(due, c, c+Slots-1): a due second
// already passed goes to c; one beyond the span is parked at the last
// second it can reach and rolled (re-added) when that second is processed.
// So every unprocessed slot second lies in [c, c+Slots-1], and those map
// one to one onto slot indexes t mod Slots. A slot holds its second, its
// head (the newest entry linked into it) and a count. Every entry records
// the previous head of its slot index as prev, whatever second that was,
// and its seq (the count after it): the entries of one slot index form one
// list in append order, and those of second t are the run from the head
// whose slot second is t, numbered count..1, which walks check. A new
// wheel has no cursor until its first Due: Adds before it are appended
// unlinked, and that Due links them by re-adding them (startLocked).
//
// Durability. Flush snapshots source, cursor, done, the log end, pending
// and the changed wheel pages under the lock; then it fsyncs the log below
// that end, writes and fsyncs the pages, and replaces the checkpoint, in
// that order. Hence:
//   - every entry below the checkpoint's end is durable;
//   - the wheel file only ever holds heads of durable entries;
//   - a slot whose head is below the checkpoint's end is as it was at the
//     checkpoint, since every change to a slot links a new entry into it.
//
// Recovery (recover.go) walks every slot whose head is at or past the
// checkpoint's end back along prev to its head at the checkpoint, then cuts
// the log at that end. Entries added after the checkpoint are gone and the
// caller re-adds them from Source, so none appears twice; processing done
// after the checkpoint is repeated, so delivery is at-least-once.
//
// Retention. A segment is deleted once the checkpointed cursor has passed
// the slot second of all its entries. A slot second is below the cursor at
// the time of the Add plus Slots, so about one span of Adds stays on disk.
// Recovery reads the wheel, the checkpoint and the entries after it that
// changed slots link to, never the whole log. Memory is the slot array
// (24 bytes a second, 14.5 MB for the default span), the encoded pages a
// Flush writes, and the mappings.
package timer

import (
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/mqops/mqops/fileutil"
)

const (
	// DefaultSlots is the default span: 7 days of one-second slots.
	DefaultSlots = 7 * 24 * 3600
	// DefaultSegmentEntries makes 48 MiB timer-log segments.
	DefaultSegmentEntries = 1 << 20
	// dueBatch is how many entries Due reads per hold of the lock.
	dueBatch = 256
	// skipBatch is how many empty seconds Due passes per hold of the lock.
	skipBatch = 4096
)

// ErrClosed is returned by calls on a closed Wheel.
var ErrClosed = errors.New("timer wheel is closed")

// Entry is one scheduled message: where it lives in the commit log and
// when it is due.
type Entry struct {
	DeliverMs int64 // delivery time, Unix milliseconds
	Phys      int64 // commit-log offset of the message
	Size      int32 // its size in bytes
}

// Options configure Open.
type Options struct {
	// Dir holds the wheel's files, e.g. <storeRoot>/timerwheel; created if
	// missing.
	Dir string
	// Slots is the span in seconds, default DefaultSlots. Entries further
	// out are parked in the last reachable slot and re-added ("rolled")
	// when it comes up. Fixed when the wheel is created: 0 takes the
	// existing wheel's, anything else must match it.
	Slots int
	// SegmentEntries is the size of a timer-log segment in entries (48
	// bytes each), default DefaultSegmentEntries; fixed like Slots.
	SegmentEntries int
	Logger         *slog.Logger // default slog.Default()
}

// Wheel is an on-disk timing wheel. Add, Due, Flush and the getters may be
// called from different goroutines; Due calls are serialised.
type Wheel struct {
	dir, logDir string
	nslots      int64
	segEntries  int64
	log         *slog.Logger
	lockFile    *fileutil.Lock

	// dueMu serialises Due (and Close against it); it owns batch. Lock
	// order: dueMu, flushMu, mu.
	dueMu sync.Mutex
	batch []record

	// flushMu serialises Flush; it owns the fields below.
	flushMu   sync.Mutex
	wheelFile *os.File
	synced    int64      // log entries below it are durable
	saved     checkpoint // the checkpoint on disk
	pageBuf   []byte     // dirty wheel pages taken by takeDirtyLocked
	runs      []pageRun

	mu      sync.Mutex
	closed  bool
	source  int64
	cursor  int64 // notStarted before the first Due
	done    int64 // newest processed entry of second cursor, -1 for none
	end     int64 // index of the next entry to append
	pending int64
	slots   []slot
	dirty   []uint64   // bitmap of wheel pages changed since taken for writing
	segs    []*segment // contiguous, oldest first
}

// pageRun is n consecutive wheel pages from page, encoded one after the
// other in pageBuf.
type pageRun struct{ page, n int64 }

// Open opens the wheel in o.Dir, creating it if there is none, and
// recovers from a crash if the last run did not Close.
func Open(o Options) (*Wheel, error) {
	switch {
	case o.Dir == "":
		return nil, errors.New("open timer wheel: Options.Dir is empty")
	case o.Slots < 0 || o.Slots == 1:
		return nil, fmt.Errorf("open timer wheel %s: Slots %d, want at least 2", o.Dir, o.Slots)
	case o.SegmentEntries < 0:
		return nil, fmt.Errorf("open timer wheel %s: SegmentEntries %d is negative", o.Dir, o.SegmentEntries)
	}
	w := &Wheel{dir: o.Dir, logDir: filepath.Join(o.Dir, "log"), log: o.Logger, batch: make([]record, dueBatch)}
	if w.log == nil {
		w.log = slog.Default()
	}
	if err := os.MkdirAll(w.logDir, 0o755); err != nil {
		return nil, fmt.Errorf("open timer wheel: create %s: %w", w.logDir, err)
	}
	if err := w.lock(); err != nil {
		return nil, err
	}
	if err := w.open(o); err != nil {
		w.release()
		return nil, err
	}
	return w, nil
}

func (w *Wheel) open(o Options) error {
	// Temporary files of a checkpoint write cut short by a crash.
	tmps, _ := filepath.Glob(checkpointPath(w.dir) + ".tmp-*")
	for _, p := range tmps {
		_ = os.Remove(p)
	}
	ck, ok, err := readCheckpoint(w.dir)
	if err != nil {
		return err
	}
	if !ok {
		if ck, err = w.create(o); err != nil {
			return err
		}
	}
	if o.Slots != 0 && int64(o.Slots) != ck.slots {
		return fmt.Errorf("open timer wheel %s: it has %d slots, Options.Slots is %d (the span cannot change)", w.dir, ck.slots, o.Slots)
	}
	if o.SegmentEntries != 0 && int64(o.SegmentEntries) != ck.segEntries {
		return fmt.Errorf("open timer wheel %s: its segments hold %d entries, Options.SegmentEntries is %d", w.dir, ck.segEntries, o.SegmentEntries)
	}
	abortPath := filepath.Join(w.dir, "abort")
	_, err = os.Stat(abortPath)
	crashed := err == nil
	if crashed {
		w.log.Warn("[TIMER] abort marker found: previous run did not close the timer wheel", "path", abortPath)
	}
	if err := os.WriteFile(abortPath, nil, 0o644); err != nil {
		return fmt.Errorf("open timer wheel: create abort marker %s: %w", abortPath, err)
	}
	if err := fileutil.SyncDir(w.dir); err != nil {
		return fmt.Errorf("open timer wheel: %w", err)
	}
	return w.recover(ck, crashed)
}

// create lays out a new wheel: the wheel file first, the checkpoint last,
// so that a checkpoint always has its wheel file.
func (w *Wheel) create(o Options) (checkpoint, error) {
	des, err := os.ReadDir(w.logDir)
	if err != nil {
		return checkpoint{}, fmt.Errorf("open timer log %s: %w", w.logDir, err)
	}
	if len(des) > 0 {
		return checkpoint{}, fmt.Errorf("open timer wheel %s: no checkpoint but %s is not empty (lost checkpoint?); refusing to start over",
			w.dir, w.logDir)
	}
	ck := checkpoint{slots: DefaultSlots, segEntries: DefaultSegmentEntries, cursor: notStarted, done: -1}
	if o.Slots != 0 {
		ck.slots = int64(o.Slots)
	}
	if o.SegmentEntries != 0 {
		ck.segEntries = int64(o.SegmentEntries)
	}
	p := filepath.Join(w.dir, "wheel")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return checkpoint{}, fmt.Errorf("create timer wheel %s: %w", p, err)
	}
	_, err = f.Write(encodeWheelHeader(ck.slots))
	if err == nil {
		err = f.Truncate(wheelHeaderSize + ck.slots*slotSize) // sparse: all-zero slots are empty
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fileutil.SyncDir(w.dir)
	}
	if err != nil {
		return checkpoint{}, fmt.Errorf("create timer wheel %s: %w", p, err)
	}
	if err := writeCheckpoint(w.dir, ck); err != nil {
		return checkpoint{}, err
	}
	w.log.Info("[TIMER] created timer wheel", "dir", w.dir, "slots", ck.slots, "segmentEntries", ck.segEntries)
	return ck, nil
}

// lock takes an exclusive flock on Dir/lock so two wheels never share files.
func (w *Wheel) lock() error {
	l, err := fileutil.TryLock(filepath.Join(w.dir, "lock"))
	if err != nil {
		return fmt.Errorf("open timer wheel (is another wheel using it?): %w", err)
	}
	w.lockFile = l
	return nil
}

// release unmaps and closes everything, dropping the flock.
func (w *Wheel) release() {
	for _, s := range w.segs {
		s.close()
	}
	w.segs, w.slots = nil, nil
	if w.wheelFile != nil {
		_ = w.wheelFile.Close()
	}
	_ = w.lockFile.Unlock()
}

// Add records e. source is the caller's progress marker (the queue offset
// in the timer topic just after this entry); it is persisted by Flush, and
// after a restart Source tells the caller where to resume re-adding.
// Entries whose second the dequeue cursor has already passed are
// delivered by the next Due call.
func (w *Wheel) Add(e Entry, source int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if err := w.linkLocked(e); err != nil {
		return err
	}
	w.source = source
	w.pending++
	return nil
}

// Source returns the marker given with the last Add: after Open, the one
// of the last Add the checkpoint covers.
func (w *Wheel) Source() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.source
}

// Progress is one consistent snapshot of what the wheel has read and
// processed.
type Progress struct {
	Source int64 // the marker of the last Add
	// Cursor is the second being processed: every entry due before it
	// has been handed to Due's fn (or rolled). Started is false before
	// the first Due, when nothing has been processed.
	Cursor  int64
	Started bool
	// LogBytes is the size of the timer log appended so far.
	LogBytes int64
}

// Progress returns the wheel's progress now (not the checkpoint's).
func (w *Wheel) Progress() Progress {
	w.mu.Lock()
	defer w.mu.Unlock()
	return Progress{Source: w.source, Cursor: w.cursor, Started: w.cursor != notStarted, LogBytes: w.end * entrySize}
}

// Pending returns the number of entries added and not yet delivered.
func (w *Wheel) Pending() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pending
}

// Due calls fn, in order of second, for every entry whose due second
// ceil(DeliverMs/1000) is at most nowMs/1000, so an entry is never
// delivered before DeliverMs and at most a second after; within a second
// the newest entry comes first. fn returning an error stops the walk and
// Due returns it; the cursor only moves past seconds whose entries were
// all handed to fn successfully, so the next Due (or, after a crash, the
// recovered wheel) hands a partly delivered second over again:
// at-least-once. Entries rolled because they were beyond the span are
// re-added, not handed to fn, until they are due.
//
// fn is called without the wheel's lock, so it may Add or Flush, but not
// call Due; Close waits for Due to return. The first Due of a new wheel
// starts its cursor at nowMs.
func (w *Wheel) Due(nowMs int64, fn func(Entry) error) error {
	w.dueMu.Lock()
	defer w.dueMu.Unlock()
	now := floorSecond(nowMs)
	for {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return ErrClosed
		}
		if w.cursor == notStarted {
			if err := w.startLocked(now); err != nil {
				w.mu.Unlock()
				return err
			}
		}
		if w.pending == 0 && w.cursor < now {
			// Nothing is linked anywhere: skip the empty seconds at once.
			w.cursor, w.done = now, -1
		}
		if w.cursor > now {
			w.mu.Unlock()
			return nil
		}
		// Pass seconds with nothing left, a bounded number per hold of
		// the lock so that Add does not wait long behind a lagging cursor.
		for range skipBatch {
			if w.cursor == now || w.headLocked(w.cursor) != w.done {
				break
			}
			w.cursor, w.done = w.cursor+1, -1
		}
		s, from := w.cursor, w.done
		head := w.headLocked(s)
		if head == from {
			w.mu.Unlock()
			if s == now {
				return nil
			}
			continue
		}
		w.mu.Unlock()

		// Hand over the entries of s after from, newest first, holding the
		// lock only to read them. Adds may link more into s meanwhile (due
		// seconds already passed go to the cursor): walk those too, until
		// the head stays put.
		var delivered, rolled int64
		stop := from
		for {
			c := chain{s: s, pos: head, stop: stop, want: -1}
			for {
				w.mu.Lock()
				n, err := w.readChainLocked(&c, w.batch)
				w.mu.Unlock()
				if err != nil {
					return err
				}
				if n == 0 {
					break
				}
				for _, r := range w.batch[:n] {
					if dueSecond(r.DeliverMs) > s {
						rolled++
						continue
					}
					if err := fn(r.Entry); err != nil {
						return err
					}
					delivered++
				}
			}
			w.mu.Lock()
			h := w.headLocked(s)
			if h == head {
				break // keep the lock
			}
			stop, head = head, h
			w.mu.Unlock()
		}
		// The rolls and the cursor move happen under one hold of the lock,
		// so a Flush snapshot (and thus a crash) has both or neither.
		if rolled > 0 {
			if err := w.rollLocked(s, head, from, rolled); err != nil {
				w.mu.Unlock()
				return err
			}
		}
		w.pending -= delivered
		if s < now {
			w.cursor, w.done = s+1, -1
			w.mu.Unlock()
			continue
		}
		w.done = head
		w.mu.Unlock()
		return nil
	}
}

// startLocked gives a new wheel its cursor at its first Due and links the
// entries added before it by re-adding them: until now there was no span
// to place them in. The unlinked originals are dead from then on (their
// slot second, notStarted, is below any cursor).
func (w *Wheel) startLocked(now int64) error {
	from, to := w.start(), w.end
	// Read everything first, so that a bad entry leaves the wheel unstarted.
	for i := from; i < to; i++ {
		if _, err := w.readLocked(i); err != nil {
			return err
		}
	}
	if err := w.reserveLocked(to - from); err != nil {
		return err
	}
	w.cursor, w.done = now, -1
	for i := from; i < to; i++ {
		r, err := w.readLocked(i)
		if err == nil {
			err = w.linkLocked(r.Entry)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// rollLocked re-adds the n entries of second s from head back to stop that
// were parked there short of their due second. The cursor is still s, so
// they land in [s+1, s+Slots-1], never in the list being walked. Room for
// all of them is reserved first so that a full disk cannot leave a roll
// half done (the next Due would roll the same entries again).
func (w *Wheel) rollLocked(s, head, stop, n int64) error {
	if err := w.reserveLocked(n); err != nil {
		return err
	}
	c := chain{s: s, pos: head, stop: stop, want: -1}
	for {
		r, ok, err := w.nextLocked(&c)
		if err != nil || !ok {
			return err
		}
		if dueSecond(r.DeliverMs) > s {
			if err := w.linkLocked(r.Entry); err != nil {
				return err
			}
		}
	}
}

// linkLocked appends e to the log and links it into its slot (see the
// package comment). Before the first Due it is appended unlinked.
func (w *Wheel) linkLocked(e Entry) error {
	if err := w.reserveLocked(1); err != nil {
		return err
	}
	r := record{Entry: e, slotSec: notStarted, prev: -1}
	if w.cursor != notStarted {
		t := min(max(dueSecond(e.DeliverMs), w.cursor), w.cursor+w.nslots-1)
		i := w.slotIndex(t)
		sl := &w.slots[i]
		r.slotSec, r.prev, r.seq = t, sl.head, 1
		if sl.head >= 0 && sl.second == t {
			r.seq = sl.count + 1
		}
		*sl = slot{second: t, head: w.end, count: r.seq}
		p := i / slotsPerPage
		w.dirty[p/64] |= 1 << (p % 64)
	}
	seg := w.segFor(w.end)
	encodeRecord(seg.entry(w.end), w.end, r)
	seg.maxSlot = max(seg.maxSlot, r.slotSec)
	w.end++
	return nil
}

// reserveLocked creates segments until n more entries fit.
func (w *Wheel) reserveLocked(n int64) error {
	for {
		limit := w.end
		if len(w.segs) > 0 {
			limit = w.segs[len(w.segs)-1].base + w.segEntries
		}
		if w.end+n <= limit {
			return nil
		}
		s, err := createSegment(w.logDir, limit, w.segEntries)
		if err != nil {
			return err
		}
		w.segs = append(w.segs, s)
	}
}

func (w *Wheel) slotIndex(sec int64) int64 {
	i := sec % w.nslots
	if i < 0 {
		i += w.nslots
	}
	return i
}

// headLocked returns the newest entry linked into second s, -1 for none.
func (w *Wheel) headLocked(s int64) int64 {
	if sl := w.slots[w.slotIndex(s)]; sl.head >= 0 && sl.second == s {
		return sl.head
	}
	return -1
}

// start returns the index of the oldest entry still on disk.
func (w *Wheel) start() int64 {
	if len(w.segs) == 0 {
		return w.end
	}
	return w.segs[0].base
}

// segFor returns the segment holding entry idx, nil if none does.
func (w *Wheel) segFor(idx int64) *segment {
	if len(w.segs) == 0 || idx < w.segs[0].base {
		return nil
	}
	if i := (idx - w.segs[0].base) / w.segEntries; i < int64(len(w.segs)) {
		return w.segs[i]
	}
	return nil
}

func (w *Wheel) readLocked(idx int64) (record, error) {
	s := w.segFor(idx)
	if s == nil {
		return record{}, fmt.Errorf("timer log %s: entry %d is in no segment", w.logDir, idx)
	}
	r, ok := decodeRecord(s.entry(idx), idx)
	if !ok {
		return record{}, fmt.Errorf("timer log %s: entry %d is corrupt (checksum mismatch)", s.path, idx)
	}
	return r, nil
}

// chain walks the entries of second s newest first, from pos back to stop
// (exclusive; -1: through the first entry of s).
type chain struct {
	s, pos, stop int64
	want         int32 // seq the next entry must have; -1 before the first
}

// nextLocked returns the next entry of c; ok is false at its end.
func (w *Wheel) nextLocked(c *chain) (r record, ok bool, err error) {
	if c.pos == c.stop {
		return record{}, false, nil
	}
	if c.pos > c.stop && c.pos >= w.start() {
		r, err := w.readLocked(c.pos)
		if err != nil {
			return record{}, false, err
		}
		if r.slotSec == c.s {
			if r.seq < 1 || (c.want >= 0 && r.seq != c.want) || r.prev >= c.pos {
				return record{}, false, fmt.Errorf("timer log %s: list of second %d broken at entry %d (seq %d, want %d)",
					w.logDir, c.s, c.pos, r.seq, c.want)
			}
			c.pos, c.want = r.prev, r.seq-1
			return r, true, nil
		}
	}
	// The list has left second s, which is its end only past the first
	// entry of s, on a walk meant to go that far.
	if c.stop >= 0 || c.want != 0 {
		return record{}, false, fmt.Errorf("timer log %s: list of second %d broken at entry %d (stop %d, want seq %d)",
			w.logDir, c.s, c.pos, c.stop, c.want)
	}
	c.stop = c.pos
	return record{}, false, nil
}

// readChainLocked fills buf from c and returns how many it read; 0 at the
// end.
func (w *Wheel) readChainLocked(c *chain, buf []record) (int, error) {
	n := 0
	for n < len(buf) {
		r, ok, err := w.nextLocked(c)
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		buf[n] = r
		n++
	}
	return n, nil
}

// Flush makes everything added and processed so far durable: the log, the
// changed wheel pages and the checkpoint (source marker, cursor), in the
// order recovery relies on (see the package comment). Adds and Due go on
// meanwhile; what they do after the snapshot waits for the next Flush.
func (w *Wheel) Flush() error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	ck := checkpoint{slots: w.nslots, segEntries: w.segEntries, source: w.source, cursor: w.cursor,
		done: w.done, end: w.end, pending: w.pending}
	w.takeDirtyLocked()
	var toSync []*segment
	for _, s := range w.segs {
		if s.base+w.segEntries > w.synced && s.base < ck.end && w.synced < ck.end {
			toSync = append(toSync, s)
		}
	}
	w.mu.Unlock()

	if err := w.persist(ck, toSync); err != nil {
		w.mu.Lock()
		for _, r := range w.runs {
			for p := r.page; p < r.page+r.n; p++ {
				w.dirty[p/64] |= 1 << (p % 64)
			}
		}
		w.mu.Unlock()
		return err
	}
	w.deleteDead(ck)
	return nil
}

func (w *Wheel) persist(ck checkpoint, toSync []*segment) error {
	for _, s := range toSync {
		if err := s.sync(); err != nil {
			return err
		}
	}
	w.synced = ck.end
	if err := w.writePages(); err != nil {
		return err
	}
	if ck != w.saved {
		if err := writeCheckpoint(w.dir, ck); err != nil {
			return err
		}
		w.saved = ck
	}
	return nil
}

// takeDirtyLocked encodes the changed wheel pages into pageBuf and runs
// and marks them clean.
func (w *Wheel) takeDirtyLocked() {
	w.pageBuf, w.runs = w.pageBuf[:0], w.runs[:0]
	for wi, word := range w.dirty {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			word &^= 1 << b
			p := int64(wi*64 + b)
			first, last := p*slotsPerPage, min((p+1)*slotsPerPage, w.nslots)
			off := len(w.pageBuf)
			w.pageBuf = slices.Grow(w.pageBuf, int(last-first)*slotSize)[:off+int(last-first)*slotSize]
			for i := first; i < last; i++ {
				encodeSlot(w.pageBuf[off+int(i-first)*slotSize:], i, w.slots[i])
			}
			if k := len(w.runs) - 1; k >= 0 && w.runs[k].page+w.runs[k].n == p {
				w.runs[k].n++
			} else {
				w.runs = append(w.runs, pageRun{page: p, n: 1})
			}
		}
		w.dirty[wi] = 0
	}
}

// writePages writes what takeDirtyLocked took and makes it durable.
func (w *Wheel) writePages() error {
	if len(w.runs) == 0 {
		return nil
	}
	off := 0
	for _, r := range w.runs {
		first, last := r.page*slotsPerPage, min((r.page+r.n)*slotsPerPage, w.nslots)
		n := int(last-first) * slotSize
		if _, err := w.wheelFile.WriteAt(w.pageBuf[off:off+n], wheelHeaderSize+first*slotSize); err != nil {
			return fmt.Errorf("write timer wheel %s: %w", w.wheelFile.Name(), err)
		}
		off += n
	}
	if err := fileutil.Fdatasync(w.wheelFile); err != nil {
		return fmt.Errorf("timer wheel: %w", err)
	}
	return nil
}

// deleteDead removes the leading segments that checkpoint ck no longer
// needs: all their entries are below ck.end and have slot seconds below
// ck.cursor. The newest segment stays, to keep the log's end.
func (w *Wheel) deleteDead(ck checkpoint) {
	w.mu.Lock()
	n := 0
	for n < len(w.segs)-1 && w.segs[n].maxSlot < ck.cursor && w.segs[n].base+w.segEntries <= ck.end {
		n++
	}
	if n == 0 {
		w.mu.Unlock()
		return
	}
	dead := slices.Clone(w.segs[:n])
	w.segs = slices.Clone(w.segs[n:])
	w.mu.Unlock()
	// Due and Add reach segments only through w.segs under w.mu, so
	// nothing reads these mappings any more.
	for _, s := range dead {
		s.close()
		if err := os.Remove(s.path); err != nil {
			w.log.Warn("[TIMER] cannot delete processed timer-log segment", "path", s.path, "err", err)
		}
	}
	if err := fileutil.SyncDir(w.logDir); err != nil {
		w.log.Warn("[TIMER] cannot sync timer-log directory after deleting segments", "err", err)
	}
}

// Close flushes and releases the wheel; the abort marker is removed only
// if the flush succeeded. It waits for a running Due. Closing twice is a
// no-op.
func (w *Wheel) Close() error {
	w.dueMu.Lock()
	defer w.dueMu.Unlock()
	err := w.Flush()
	if errors.Is(err, ErrClosed) {
		return nil
	}
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	w.mu.Lock()
	w.closed = true
	w.release()
	w.mu.Unlock()
	if err != nil {
		return fmt.Errorf("close timer wheel %s: %w", w.dir, err)
	}
	abortPath := filepath.Join(w.dir, "abort")
	if err := os.Remove(abortPath); err != nil {
		return fmt.Errorf("close timer wheel: remove abort marker %s: %w", abortPath, err)
	}
	if err := fileutil.SyncDir(w.dir); err != nil {
		return fmt.Errorf("close timer wheel: %w", err)
	}
	return nil
}

// dueSecond is ceil(ms/1000): the first second at whose start ms has come.
func dueSecond(ms int64) int64 {
	s := ms / 1000
	if ms%1000 > 0 {
		s++
	}
	return s
}

// floorSecond is floor(ms/1000).
func floorSecond(ms int64) int64 {
	s := ms / 1000
	if ms%1000 < 0 {
		s--
	}
	return s
}
