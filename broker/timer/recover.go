package timer

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/mqops/mqops/fileutil"
)

// recover makes the wheel exactly what checkpoint ck describes, whether
// the last run closed it or crashed (see the package comment for why this
// suffices):
//
//  1. Load the wheel file and map the segments; they must hold [start,
//     ck.end) with a valid last entry, and ck.done must be an entry of
//     second ck.cursor.
//  2. Every slot whose head is at or past ck.end changed after the
//     checkpoint: walk it back along prev to the first entry below ck.end,
//     its head at the checkpoint. Flush made the entries walked over
//     durable before it wrote the page holding that head.
//  3. Write the repaired slots, then cut the log at ck.end: after a crash
//     zero the rest of its segment, and delete later segments. In that
//     order, because a crash in between must find the entries step 2 needs.
func (w *Wheel) recover(ck checkpoint, crashed bool) error {
	w.nslots, w.segEntries = ck.slots, ck.segEntries
	w.source, w.cursor, w.done, w.end, w.pending = ck.source, ck.cursor, ck.done, ck.end, ck.pending
	w.saved, w.synced = ck, ck.end
	w.dirty = make([]uint64, ((w.nslots+slotsPerPage-1)/slotsPerPage+63)/64)
	if err := w.loadWheel(); err != nil {
		return err
	}
	segs, err := openSegments(w.logDir, w.segEntries)
	if err != nil {
		return err
	}
	w.segs = segs
	if err := w.checkLog(); err != nil {
		return err
	}

	repaired, err := w.repairSlots()
	if err != nil {
		return err
	}
	if repaired > 0 {
		w.takeDirtyLocked()
		if err := w.writePages(); err != nil {
			return err
		}
	}
	if err := w.cutLog(crashed); err != nil {
		return err
	}
	if err := w.boundSegments(); err != nil {
		return err
	}
	w.log.Info("[TIMER] timer wheel opened", "dir", w.dir, "crashed", crashed, "entries", w.end-w.start(),
		"pending", w.pending, "cursor", w.cursor, "source", w.source, "repairedSlots", repaired)
	return nil
}

// loadWheel reads and checks the wheel file into w.slots.
func (w *Wheel) loadWheel() error {
	p := filepath.Join(w.dir, "wheel")
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open timer wheel %s: %w", p, err)
	}
	w.wheelFile = f
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open timer wheel %s: %w", p, err)
	}
	if want := wheelHeaderSize + w.nslots*slotSize; st.Size() != want {
		return fmt.Errorf("open timer wheel %s: %d bytes, want %d for %d slots", p, st.Size(), want, w.nslots)
	}
	buf := make([]byte, 256*pageBytes)
	if _, err := f.ReadAt(buf[:wheelHeaderSize], 0); err != nil {
		return fmt.Errorf("open timer wheel %s: %w", p, err)
	}
	if err := checkWheelHeader(buf, p, w.nslots); err != nil {
		return err
	}
	w.slots = make([]slot, w.nslots)
	for first := int64(0); first < w.nslots; first += int64(len(buf) / slotSize) {
		n := min(int64(len(buf)/slotSize), w.nslots-first)
		b := buf[:n*slotSize]
		if _, err := f.ReadAt(b, wheelHeaderSize+first*slotSize); err != nil {
			return fmt.Errorf("open timer wheel %s: %w", p, err)
		}
		for j := range n {
			s, ok := decodeSlot(b[j*slotSize:], first+j)
			if !ok {
				return fmt.Errorf("open timer wheel %s: slot %d is corrupt (checksum mismatch)", p, first+j)
			}
			w.slots[first+j] = s
		}
	}
	return nil
}

// checkLog verifies that the segments hold what the checkpoint counts on.
func (w *Wheel) checkLog() error {
	if start := w.start(); start > w.end {
		return fmt.Errorf("open timer log %s: it starts at entry %d, past the checkpoint's end %d", w.logDir, start, w.end)
	}
	if w.end > w.start() {
		if _, err := w.readLocked(w.end - 1); err != nil {
			return fmt.Errorf("open timer log: the checkpoint covers %d entries: %w", w.end, err)
		}
	}
	if w.done >= 0 {
		r, err := w.readLocked(w.done)
		if err == nil && r.slotSec != w.cursor {
			err = fmt.Errorf("entry %d is of second %d, not %d", w.done, r.slotSec, w.cursor)
		}
		if err != nil {
			return fmt.Errorf("open timer log: the checkpoint's last processed entry: %w", err)
		}
	}
	return nil
}

// repairSlots sets every slot changed after the checkpoint back to its
// state at the checkpoint and returns how many it changed.
func (w *Wheel) repairSlots() (int, error) {
	n := 0
	for i := range w.slots {
		sl := &w.slots[i]
		if sl.head < w.end {
			continue
		}
		p := sl.head
		for p >= w.end {
			r, err := w.readLocked(p)
			if err == nil && r.prev >= p {
				err = fmt.Errorf("entry %d links forward to %d", p, r.prev)
			}
			if err != nil {
				return 0, fmt.Errorf("recover timer wheel: slot %d: %w", i, err)
			}
			p = r.prev
		}
		*sl = slot{head: -1}
		// Below start the head is in a deleted segment: a processed second.
		if p >= w.start() {
			r, err := w.readLocked(p)
			if err != nil {
				return 0, fmt.Errorf("recover timer wheel: slot %d: %w", i, err)
			}
			*sl = slot{second: r.slotSec, head: p, count: r.seq}
		}
		pg := int64(i) / slotsPerPage
		w.dirty[pg/64] |= 1 << (pg % 64)
		n++
	}
	return n, nil
}

// cutLog drops the entries from w.end on: zeroing the rest of the segment
// holding w.end if the last run crashed (a clean run wrote nothing past
// the end it checkpointed) and deleting the segments after it.
func (w *Wheel) cutLog(crashed bool) error {
	keep := len(w.segs)
	for keep > 0 && w.segs[keep-1].base > w.end {
		keep--
	}
	for _, s := range w.segs[keep:] {
		s.close()
		if err := os.Remove(s.path); err != nil {
			return fmt.Errorf("recover timer wheel: delete %s: %w", s.path, err)
		}
	}
	if keep < len(w.segs) {
		w.log.Warn("[TIMER] deleted timer-log segments written after the checkpoint", "count", len(w.segs)-keep)
		w.segs = w.segs[:keep]
		if err := fileutil.SyncDir(w.logDir); err != nil {
			return fmt.Errorf("recover timer wheel: %w", err)
		}
	}
	if s := w.segFor(w.end); s != nil && crashed {
		if err := s.zeroFrom(w.end); err != nil {
			return fmt.Errorf("recover timer wheel: %w", err)
		}
	}
	return nil
}

// boundSegments sets each segment's maxSlot without reading it through:
// an entry's slot second is at least the cursor at its Add and below that
// cursor plus Slots, and cursors only grow, so entries of a segment have
// slot seconds below the first entry of the next one plus Slots; the last
// holds entries added while the cursor was at most the checkpoint's.
func (w *Wheel) boundSegments() error {
	for i, s := range w.segs {
		switch {
		case s.base >= w.end:
			s.maxSlot = notStarted // empty
		case i+1 < len(w.segs) && w.segs[i+1].base < w.end:
			r, err := w.readLocked(w.segs[i+1].base)
			if err != nil {
				return fmt.Errorf("open timer log: %w", err)
			}
			s.maxSlot = r.slotSec + w.nslots - 1
		default:
			s.maxSlot = w.cursor + w.nslots - 1
		}
	}
	return nil
}
