package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"

	"github.com/mqops/mqops/fileutil"
	"github.com/mqops/mqops/wire"
)

// recover rebuilds a consistent store from whatever is on disk, clean
// shutdown or not:
//
//  1. Validate commit-log records by CRC from the start of the segment
//     holding the checkpoint (or the first segment), through blank
//     fillers, up to the first empty, torn or corrupt record: the end L.
//  2. Cut there: zero the rest of that segment, delete later segments.
//  3. Load consume queues, dropping units that point at or past L or that
//     do not match the record they point at.
//  4. Re-dispatch [D, L), D = the checkpoint's dispatched offset (the
//     first segment without a checkpoint or without any consume queue), so
//     the consume queues cover exactly the valid log (rewrites are
//     idempotent: a unit's position is its record's QUEUEOFFSET). A queue
//     whose file cannot be created (disk full) stays blocked, the others
//     are served (dispatch.go).
//  5. Rebuild the append path's queue-offset table, make everything
//     durable and write a fresh checkpoint.
func (s *Store) recover(crashed bool) error {
	ck, haveCk, err := readCheckpoint(s.cfg.RootDir)
	if err != nil {
		s.log.Warn("[RECOVERY] ignoring unusable checkpoint; validating the whole commitlog", "err", err)
	}
	if err := s.loadSegments(); err != nil {
		return err
	}
	start := s.walkStart(ck, haveCk)
	end, lastTS, cause := s.walkLog(start)
	if err := s.cutLog(end, cause, crashed); err != nil {
		return err
	}
	s.lastStoreTS = lastTS

	minPhy, ok := s.clog.minOffset()
	if !ok {
		minPhy = end
	}
	if err := s.loadConsumeQueues(end, minPhy); err != nil {
		return err
	}
	from := minPhy
	if haveCk && len(s.cqs.topics) > 0 {
		from = min(max(ck.dispatched, minPhy), end)
	} else if haveCk && from < end {
		// An empty consumequeue dir is how operators ask for a rebuild.
		s.log.Warn("[RECOVERY] no consume queues on disk: rebuilding them from the first segment", "from", from)
	}
	s.maxPhy.Store(end)
	// The index follows the valid log on its own (index_recovery.go), so
	// re-dispatch below leaves it alone.
	if s.idx != nil {
		if err := s.recoverIndex(end, minPhy, crashed); err != nil {
			return fmt.Errorf("recover store %s: %w", s.cfg.RootDir, err)
		}
	}
	s.advanceDispatch(from)
	s.dispatchAvailable()
	if d := s.disp.next; d != end {
		return fmt.Errorf("recover store %s: re-dispatch stopped at %d of %d", s.cfg.RootDir, d, end)
	}
	for _, cq := range s.cqs.all() {
		next := cq.max.Load()
		if b := s.blockedQueue(cq); b != nil {
			// Its records past the blocked one have queue offsets too.
			next = max(next, b.nextQ)
		}
		s.queueOffsets[queueKey{cq.topic, cq.qid}] = &next
	}

	// Records in [start, end) may only have been in the page cache of the
	// crashed process: sync them before the checkpoint claims them.
	s.flushed.Store(start)
	if err := s.flushCommitLog(); err != nil {
		return fmt.Errorf("recover store %s: %w", s.cfg.RootDir, err)
	}
	if err := s.flushConsumeQueues(); err != nil {
		return fmt.Errorf("recover store %s: %w", s.cfg.RootDir, err)
	}
	s.log.Info("[RECOVERY] store recovered", "validatedFrom", start, "redispatchedFrom", from,
		"maxPhyOffset", end, "minPhyOffset", minPhy, "queues", len(s.queueOffsets))
	return nil
}

// loadSegments maps every segment file, extending short ones with zeros.
// Segments must be contiguous and aligned to SegmentSize; anything else
// means a different SegmentSize or missing files, which recovery must not
// paper over by deleting data.
func (s *Store) loadSegments() error {
	dir := s.cfg.CommitLogDir
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("open commitlog %s: %w", dir, err)
	}
	var bases []int64
	for _, e := range entries {
		base, ok := parseFileName(e.Name())
		if !ok || !e.Type().IsRegular() {
			s.log.Warn("[RECOVERY] ignoring unexpected file in commitlog dir", "path", filepath.Join(dir, e.Name()))
			continue
		}
		bases = append(bases, base)
	}
	slices.Sort(bases)
	for i, b := range bases {
		if b%s.segSize != 0 || (i > 0 && b != bases[i-1]+s.segSize) {
			return fmt.Errorf("open commitlog %s: segment %020d is not contiguous/aligned with SegmentSize %d (changed setting or missing file?)",
				dir, b, s.segSize)
		}
	}
	for _, b := range bases {
		path := fileName(dir, b)
		seg, err := openMmapFile(path, b, s.segSize, false)
		if err != nil {
			return fmt.Errorf("open commitlog %s: %w", path, err)
		}
		if seg.origSize < s.segSize {
			s.log.Warn("[RECOVERY] commitlog segment shorter than SegmentSize; missing part treated as empty",
				"path", path, "size", seg.origSize, "segmentSize", s.segSize)
		}
		s.clog.segs = append(s.clog.segs, seg)
	}
	return nil
}

// walkStart returns where validation starts: the start of the segment
// holding min(checkpoint flushed, dispatched), moved back to the first
// segment whose file was found short (its tail, and so maybe data the
// checkpoint vouched for, is gone).
func (s *Store) walkStart(ck checkpoint, haveCk bool) int64 {
	segs := s.clog.segs
	if len(segs) == 0 {
		return 0
	}
	first, last := segs[0].base, segs[len(segs)-1].base
	pos := first
	if haveCk {
		p := min(max(min(ck.flushed, ck.dispatched), first), last)
		pos = p - p%s.segSize
	}
	for _, seg := range segs {
		if seg.base > pos {
			break
		}
		if seg.origSize < s.segSize {
			return seg.base
		}
	}
	return pos
}

// walkLog validates records from start and returns the end of the valid
// log, the store timestamp of the last record seen, and why it stopped
// (nil for a clean end: an empty header or the end of the last segment).
func (s *Store) walkLog(start int64) (end, lastTS int64, cause error) {
	segs := s.clog.segs
	pos := start
	for {
		if len(segs) == 0 || pos < segs[0].base {
			return pos, lastTS, nil
		}
		i := (pos - segs[0].base) / s.segSize
		if i >= int64(len(segs)) {
			return pos, lastTS, nil
		}
		seg := segs[i]
		off := pos - seg.base
		if s.segSize-off < wire.BlankSize {
			pos = seg.base + s.segSize
			continue
		}
		// Bytes past the original file size were never written.
		limit := min(seg.origSize, s.segSize)
		if off > limit {
			return pos, lastTS, fmt.Errorf("segment %s ends at %d: %w", seg.path, limit, wire.ErrTruncated)
		}
		n, err := wire.CheckRecord(seg.data[off:limit])
		switch {
		case err == nil:
			v := wire.RecordView(seg.data[off : off+int64(n)])
			if got := v.PhysicalOffset(); got != pos {
				return pos, lastTS, fmt.Errorf("%w: record at %d claims physical offset %d", wire.ErrCorrupt, pos, got)
			}
			lastTS = v.StoreTimestamp()
			pos += int64(n)
		case errors.Is(err, wire.ErrBlank):
			if off+int64(n) != s.segSize {
				return pos, lastTS, fmt.Errorf("%w: blank filler of %d bytes at %d does not end its segment", wire.ErrCorrupt, n, pos)
			}
			pos = seg.base + s.segSize
		case errors.Is(err, wire.ErrEmpty):
			return pos, lastTS, nil
		default:
			return pos, lastTS, err
		}
	}
}

// cutLog makes end the end of the log: later segments are deleted and the
// rest of the segment holding end is zeroed (after a crash or a bad record
// stale bytes may follow; a clean run leaves zeros there already).
func (s *Store) cutLog(end int64, cause error, crashed bool) error {
	if cause != nil {
		s.log.Warn("[RECOVERY] cut commitlog", "offset", end, "reason", cause)
	}
	segs := s.clog.segs
	keep := len(segs)
	for i, seg := range segs {
		if seg.base > end {
			keep = i
			break
		}
	}
	for _, seg := range segs[keep:] {
		s.log.Warn("[RECOVERY] removing commitlog segment past the cut", "path", seg.path, "cut", end)
		if err := os.Remove(seg.path); err != nil {
			return fmt.Errorf("cut commitlog at %d: %w", end, err)
		}
		seg.release()
	}
	s.clog.segs = segs[:keep]
	if keep < len(segs) {
		if err := fileutil.SyncDir(s.cfg.CommitLogDir); err != nil {
			return fmt.Errorf("cut commitlog at %d: %w", end, err)
		}
	}
	s.writePos = end
	s.active = nil
	if keep > 0 {
		if last := s.clog.segs[keep-1]; end < last.base+s.segSize {
			s.active = last
			if cause != nil || crashed {
				// Durable before anything is appended over it: stale
				// records past the new end must never come back.
				if err := last.zeroRange(end-last.base, s.segSize); err != nil {
					return fmt.Errorf("cut commitlog at %d: %w", end, err)
				}
				if err := last.sync(); err != nil {
					return fmt.Errorf("cut commitlog at %d: %w", end, err)
				}
			}
		}
	}
	return nil
}

// loadConsumeQueues opens every consume queue on disk and trims it to the
// valid log [minPhy, end).
func (s *Store) loadConsumeQueues(end, minPhy int64) error {
	topics, err := os.ReadDir(s.cqDir)
	if err != nil {
		return fmt.Errorf("open consume queues %s: %w", s.cqDir, err)
	}
	for _, te := range topics {
		topic := te.Name()
		tdir := filepath.Join(s.cqDir, topic)
		if !te.IsDir() || !validTopic(topic) {
			s.log.Warn("[RECOVERY] ignoring unexpected entry in consumequeue dir", "path", tdir)
			continue
		}
		qents, err := os.ReadDir(tdir)
		if err != nil {
			return fmt.Errorf("open consume queues %s: %w", tdir, err)
		}
		kept := 0
		for _, qe := range qents {
			qid, err := strconv.ParseInt(qe.Name(), 10, 32)
			if err != nil || !qe.IsDir() {
				s.log.Warn("[RECOVERY] ignoring unexpected entry in consumequeue dir", "path", filepath.Join(tdir, qe.Name()))
				kept++
				continue
			}
			cq := s.newCQ(topic, int32(qid))
			if err := s.loadCQ(cq, end, minPhy); err != nil {
				return err
			}
			if len(cq.files) == 0 {
				if err := os.RemoveAll(cq.dir); err != nil {
					return fmt.Errorf("remove empty consume queue %s: %w", cq.dir, err)
				}
				continue
			}
			kept++
			s.cqs.mu.Lock()
			tq := s.cqs.topics[topic]
			if tq == nil {
				tq = &topicQueues{name: topic, queues: make(map[int32]*consumeQueue)}
				s.cqs.topics[topic] = tq
			}
			tq.queues[cq.qid] = cq
			s.cqs.mu.Unlock()
		}
		if kept == 0 {
			if err := os.Remove(tdir); err != nil {
				return fmt.Errorf("remove empty consume queue dir %s: %w", tdir, err)
			}
		}
	}
	return nil
}

// loadCQ maps a queue's files and finds its end: the binary-searched end
// of written units in the last file, walked back past units that point at
// or beyond end or do not match their record (torn or stale writes from
// before a crash). Rejected units are zeroed and files wholly past the end
// removed. A queue left without units has no files on return.
func (s *Store) loadCQ(cq *consumeQueue, end, minPhy int64) error {
	entries, err := os.ReadDir(cq.dir)
	if err != nil {
		return fmt.Errorf("open consume queue %s: %w", cq.dir, err)
	}
	fileBytes := cq.upf * cqUnitSize
	var offs []int64
	for _, e := range entries {
		off, ok := parseFileName(e.Name())
		if !ok || !e.Type().IsRegular() {
			s.log.Warn("[RECOVERY] ignoring unexpected file in consume queue dir", "path", filepath.Join(cq.dir, e.Name()))
			continue
		}
		if off%fileBytes != 0 {
			return fmt.Errorf("open consume queue %s: file %020d not aligned to %d bytes (CQUnitsPerFile changed?)", cq.dir, off, fileBytes)
		}
		offs = append(offs, off)
	}
	slices.Sort(offs)
	for _, off := range offs {
		f, err := openMmapFile(fileName(cq.dir, off), off/cqUnitSize, fileBytes, false)
		if err != nil {
			cq.drop()
			return fmt.Errorf("open consume queue %s: %w", cq.dir, err)
		}
		cq.files = append(cq.files, f)
	}
	if len(cq.files) == 0 {
		return nil
	}

	last := cq.files[len(cq.files)-1]
	// Written units form a prefix of each file (fillers included), except
	// for holes left by a crash among units of records ≥ the checkpoint's
	// dispatched offset; those are rewritten by re-dispatch.
	e := last.base + int64(sort.Search(int(cq.upf), func(i int) bool {
		return readUnit(last.data[int64(i)*cqUnitSize:]).isZero()
	}))
	for e > cq.files[0].base {
		q := e - 1
		i := cq.find(q)
		if i < 0 {
			break // missing file in the middle: keep what precedes the hole
		}
		f := cq.files[i]
		b := f.data[(q-f.base)*cqUnitSize:]
		u := readUnit(b)
		if s.unitValid(cq, q, u, end, minPhy) {
			break
		}
		if !u.isZero() {
			putUnit(b, cqUnit{})
			f.dirty.Store(true)
		}
		e = q
	}
	// Files past the end go. A queue starting at 0 with no unit left goes
	// entirely; one whose earlier files were retired keeps its (now empty)
	// first file so that its offsets continue from e.
	keep := len(cq.files)
	for i, f := range cq.files {
		if f.base > e || e == 0 {
			keep = i
			break
		}
	}
	removed := cq.files[keep:]
	cq.files = cq.files[:keep]
	for _, f := range removed {
		if err := os.Remove(f.path); err != nil {
			return fmt.Errorf("open consume queue %s: %w", cq.dir, err)
		}
		f.release()
	}
	if len(cq.files) == 0 {
		return nil
	}
	cq.max.Store(e)
	cq.min.Store(cq.files[0].base)
	if _, err := cq.trim(minPhy); err != nil {
		return fmt.Errorf("open consume queue %s: %w", cq.dir, err)
	}
	return nil
}

// unitValid reports whether unit q of cq is a real unit of a record in the
// valid log. Units below minPhy cannot be checked (their segment is gone);
// retention removed data only after it was dispatched and flushed.
func (s *Store) unitValid(cq *consumeQueue, q int64, u cqUnit, end, minPhy int64) bool {
	if !u.real() || u.phys+int64(u.size) > end {
		return false
	}
	if u.phys < minPhy {
		return true
	}
	seg := s.clog.acquire(u.phys)
	if seg == nil {
		return false
	}
	defer seg.release()
	off := u.phys - seg.base
	if off+int64(u.size) > s.segSize {
		return false
	}
	v := wire.RecordView(seg.data[off : off+int64(u.size)])
	return v.Magic() == wire.MagicMessage && v.TotalSize() == u.size && v.PhysicalOffset() == u.phys &&
		v.QueueOffset() == q && v.QueueID() == cq.qid && string(v.Topic()) == cq.topic
}
