package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/mqops/mqops/wire"
)

// recoverIndex loads the index files and makes them cover exactly the
// records of the valid log [minPhy, end). recover calls it after cutting
// the log at end and before re-dispatching consume queues; it does not use
// the checkpoint.
//
// It relies on every byte the previous process stored through an index
// mapping being there on restart: true after Close (which syncs) and
// after a process crash (the page cache survives it). put orders its
// writes entry, header, slot (index.go), so such a file is consistent up to
// the last key: that key's entry is either beyond indexCount or counted
// and perhaps not linked from its slot. Hence, with E the newest file's
// endPhyOffset (the last record indexed, maybe partly):
//
//  1. Files failing the header check are removed (a newest one that is
//     missing just means re-indexing from the previous file's end).
//  2. Every entry at or past cut = max(min(E, end), minPhy) is dropped,
//     newest first, restoring each slot to the entry's prev: this removes
//     entries past a torn tail and the last record's possibly partial set.
//     Files left without entries are removed.
//  3. After an unclean shutdown, slots pointing at or past indexCount are
//     repaired; that only happens when a power loss kept a slot page but
//     not the header page.
//  4. The records in [cut, end) are indexed again.
//
// Without index files, everything retained is indexed, which is also how
// an operator rebuilds the index: remove RootDir/index. A power loss can
// still lose index pages written since the last flush (some keys of the
// last second go unfound); queries never trust the contents for more than
// candidate offsets, so damage costs hits, not correctness.
func (s *Store) recoverIndex(end, minPhy int64, crashed bool) error {
	x := s.idx
	files, err := s.loadIndexFiles()
	if err != nil {
		return err
	}
	// Retention may have removed segments and died before their index files.
	for len(files) > 1 && files[0].endPhy.Load() < minPhy {
		s.log.Info("[RECOVERY] removing index file below the retained commitlog", "path", files[0].m.path)
		s.removeIndexFile(files[0])
		files = files[1:]
	}

	cut := minPhy
	if len(files) > 0 {
		// e is the start of the last indexed record, so below end unless
		// the log lost that record.
		e := files[len(files)-1].endPhy.Load()
		if e >= end && slices.ContainsFunc(files, func(f *indexFile) bool { return f.count.Load() > 1 }) {
			s.log.Warn("[RECOVERY] dropping index entries past the end of the commitlog", "indexEnd", e, "logEnd", end)
		}
		cut = max(min(e, end), minPhy)
	}
	for i := len(files) - 1; i >= 0; i-- {
		if s.truncateIndexFile(files[i], cut) {
			break // phyOffsets ascend across files: older ones are below cut
		}
	}
	kept := files[:0]
	for _, f := range files {
		if f.count.Load() <= 1 {
			s.removeIndexFile(f) // a new one is created on demand
			continue
		}
		kept = append(kept, f)
	}
	clear(files[len(kept):])
	files = kept
	if n := len(files); n > 0 && crashed {
		if fixed := files[n-1].repairSlots(); fixed > 0 {
			s.log.Warn("[RECOVERY] repaired index slots pointing past the index count", "path", files[n-1].m.path, "slots", fixed)
		}
	}

	x.mu.Lock()
	x.files = files
	x.mu.Unlock()
	x.cur = nil
	if n := len(files); n > 0 {
		x.cur = files[n-1]
	}
	if cut < end {
		s.log.Info("[RECOVERY] indexing messages", "from", cut, "to", end)
	}
	s.reindex(cut, end)
	return nil
}

// loadIndexFiles maps the index files in name order, removing those whose
// creation was interrupted (empty file) or whose header is damaged. A file
// of another size was written with other IndexSlots/IndexEntries settings
// and would be misread, so it is an error, as for commit-log segments.
func (s *Store) loadIndexFiles() ([]*indexFile, error) {
	x := s.idx
	ents, err := os.ReadDir(x.dir)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", x.dir, err)
	}
	size := indexFileSize(x.slots, x.entries)
	var files []*indexFile
	fail := func(err error) ([]*indexFile, error) {
		releaseIndexFiles(files)
		return nil, err
	}
	for _, e := range ents { // ReadDir sorts by name
		path := filepath.Join(x.dir, e.Name())
		if !validIndexFileName(e.Name()) || !e.Type().IsRegular() {
			s.log.Warn("[RECOVERY] ignoring unexpected file in index dir", "path", path)
			continue
		}
		st, err := os.Stat(path)
		if err != nil {
			return fail(fmt.Errorf("open index file %s: %w", path, err))
		}
		switch st.Size() {
		case 0:
			s.log.Warn("[RECOVERY] removing index file whose creation was interrupted", "path", path)
			if err := os.Remove(path); err != nil {
				return fail(fmt.Errorf("remove index file %s: %w", path, err))
			}
			continue
		case size:
		default:
			return fail(fmt.Errorf("open index file %s: %d bytes, expected %d (were IndexSlots/IndexEntries changed?)",
				path, st.Size(), size))
		}
		m, err := openMmapFile(path, 0, size, false)
		if err != nil {
			return fail(fmt.Errorf("open index file %s: %w", path, err))
		}
		f := &indexFile{m: m, name: e.Name(), slots: x.slots, entries: x.entries}
		if err := f.readHeader(); err != nil {
			s.log.Warn("[RECOVERY] removing index file with a damaged header", "path", path, "err", err)
			s.removeIndexFile(f)
			continue
		}
		files = append(files, f)
	}
	return files, nil
}

// removeIndexFile deletes f during recovery (nothing else holds it).
func (s *Store) removeIndexFile(f *indexFile) {
	if err := os.Remove(f.m.path); err != nil {
		s.log.Error("[RECOVERY] removing index file failed", "path", f.m.path, "err", err)
	}
	f.m.release()
}

// truncateIndexFile drops f's entries with phyOffset ≥ cut, a suffix since
// phyOffsets ascend, undoing them newest first so each slot points where it
// did before. It reports whether f keeps entries below cut.
func (s *Store) truncateIndexFile(f *indexFile, cut int64) bool {
	n := f.count.Load()
	k := n
	for k > 1 && f.entry(k-1).phy >= cut {
		k--
	}
	if k == n {
		return n > 1
	}
	for j := n - 1; j >= k; j-- {
		e := f.entry(j)
		if e.hash >= 0 {
			if slot := int64(e.hash) % f.slots; f.loadSlot(slot) == j {
				prev := e.prev
				if prev < 0 || prev >= j {
					prev = 0
				}
				f.storeSlot(slot, prev)
			}
		}
		f.putEntry(j, indexEntry{})
	}
	f.count.Store(k)
	f.slotCount = max(f.slotCount-(n-k), 0)
	if k > 1 {
		last := f.entry(k - 1)
		f.endPhy.Store(last.phy)
		ts, ok := s.recordStoreTime(last.phy)
		if !ok { // record removed by retention: the entry's own, rounded down
			ts = f.beginTS.Load() + int64(last.timeDiff)*1000
		}
		f.endTS.Store(ts)
	} else {
		f.endPhy.Store(f.beginPhy.Load())
		f.endTS.Store(f.beginTS.Load())
	}
	f.writeHeader()
	f.m.dirty.Store(true)
	return k > 1
}

// repairSlots points every slot at an entry below indexCount and returns
// how many it changed. A slot past the count follows the lost entries'
// own prev links while they look like entries of that slot, else it is
// cleared (older entries of its chain become unreachable).
func (f *indexFile) repairSlots() int {
	n := f.count.Load()
	fixed := 0
	for i := range f.slots {
		v := f.loadSlot(i)
		if v >= 0 && v < n {
			continue
		}
		for v >= n && int64(v) < f.entries {
			e := f.entry(v)
			if e.hash < 0 || int64(e.hash)%f.slots != i || e.prev >= v {
				v = 0
				break
			}
			v = e.prev
		}
		if v < 0 || v >= n {
			v = 0
		}
		f.storeSlot(i, v)
		fixed++
	}
	return fixed
}

// recordStoreTime returns the store timestamp of the record at phy.
func (s *Store) recordStoreTime(phy int64) (int64, bool) {
	seg := s.clog.acquire(phy)
	if seg == nil {
		return 0, false
	}
	defer seg.release()
	v := wire.RecordView(seg.data[phy-seg.base:])
	if v.Magic() != wire.MagicMessage || v.PhysicalOffset() != phy {
		return 0, false
	}
	return v.StoreTimestamp(), true
}

// reindex indexes the records in [from, to), skipping what indexRecord
// and dispatchRecord skip. Recovery only: the dispatcher is not running.
// from is the offset of a record unless the index files were damaged in a
// way their check missed; then the walk starts at the segment's first
// record and indexRecord skips the records below from.
func (s *Store) reindex(from, to int64) {
	x := s.idx
	x.next = from
	defer func() { x.next = to }()
	pos := from
	if _, ok := s.recordStoreTime(from); !ok && from < to {
		pos = max(from-from%s.segSize, s.MinPhyOffset())
	}
	var seg *mmapFile
	defer func() {
		if seg != nil {
			seg.release()
		}
	}()
	stop := func(reason string) {
		s.log.Error("[RECOVERY] indexing stopped; later messages stay unindexed", "offset", pos, "to", to, "reason", reason)
	}
	for pos < to {
		if e := s.damagedEnd(pos); e != pos { // quarantined: no record to index
			pos = e
			continue
		}
		if seg == nil || pos >= seg.base+s.segSize {
			if seg != nil {
				seg.release()
			}
			if seg = s.clog.acquire(pos); seg == nil {
				stop("segment missing")
				return
			}
		}
		off := pos - seg.base
		if s.segSize-off < wire.BlankSize {
			pos = seg.base + s.segSize
			continue
		}
		v := wire.RecordView(seg.data[off:])
		switch v.Magic() {
		case wire.MagicBlank:
			pos = seg.base + s.segSize
			continue
		case wire.MagicMessage:
		default:
			stop("bad magic")
			return
		}
		size := int64(v.TotalSize())
		if size < wire.MinRecordSize || size > s.segSize-off || pos+size > to {
			stop("bad record size")
			return
		}
		v = v[:size]
		if consumesQueueOffset(v.SysFlag()) && validTopic(v.Topic()) {
			s.indexRecord(v, pos)
		}
		pos += size
	}
}
