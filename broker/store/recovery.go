package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

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
//     do not match the record they point at; check every queue's
//     structure and compare it with the manifest, and rebuild the damaged
//     parts from the log (cqrecovery.go).
//  4. Re-dispatch [D, L), D = the checkpoint's dispatched offset (the
//     first segment without a checkpoint or without any consume queue), so
//     the consume queues cover exactly the valid log (rewrites are
//     idempotent: a unit's position is its record's QUEUEOFFSET). A queue
//     whose file cannot be created (disk full) stays blocked, the others
//     are served (dispatch.go).
//  5. Rebuild the append path's queue-offset table, make everything
//     durable and write a fresh checkpoint and manifest.
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
	from, err := s.recoverConsumeQueues(ck, haveCk, end, minPhy)
	if err != nil {
		return err
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
