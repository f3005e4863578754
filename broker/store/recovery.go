package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/mqops/mqops/fileutil"
	"github.com/mqops/mqops/wire"
)

// recover rebuilds a consistent store from whatever is on disk, clean
// shutdown or not. The durable point P is the checkpoint's flushed offset:
// every commit-log byte below it was fsync-confirmed.
//
//  1. Validate commit-log records by CRC from the start of the segment
//     holding the checkpoint (or the first segment), through blank
//     fillers. Below P a bad record is damage, not a torn write: the walk
//     resynchronises on the next valid record, quarantines the damaged
//     range (corrupt.go) and goes on. At or past P the first empty, torn
//     or corrupt record ends the log: the end L.
//  2. Refuse to go on when data that P or the consume queues vouch for is
//     missing (a segment file deleted or cut short, an empty commit-log
//     directory), unless AcceptDataLoss; the log is untouched so far.
//  3. Cut at L: zero the rest of that segment, delete later segments.
//  4. Load consume queues, dropping units that point at or past L or that
//     do not match the record they point at; check every queue's
//     structure and compare it with the manifest, and rebuild the damaged
//     parts from the log (cqrecovery.go).
//  5. Re-dispatch [D, L), D = the checkpoint's dispatched offset (the
//     first segment without a checkpoint or without any consume queue), so
//     the consume queues cover exactly the valid log (rewrites are
//     idempotent: a unit's position is its record's QUEUEOFFSET); damaged
//     ranges are stepped over. A queue whose file cannot be created (disk
//     full) stays blocked, the others are served (dispatch.go).
//  6. Rebuild the append path's queue-offset table, make everything
//     durable and write a fresh checkpoint and manifest.
//
// Segments below the walk's start are verified later by the scrub
// (scrub.go); until then reads there check each record's CRC.
func (s *Store) recover(crashed bool) error {
	ck, haveCk, err := readCheckpoint(s.cfg.RootDir)
	if err != nil {
		s.log.Warn("[RECOVERY] ignoring unusable checkpoint; validating the whole commitlog", "err", err)
	}
	cutAt, truncating, err := readTruncateMarker(s.cfg.RootDir)
	if err != nil {
		return err
	}
	if truncating {
		// TruncateTo (replica.go) was interrupted: finish it. Nothing at
		// or past cutAt may come back, whatever the checkpoint and the
		// manifest (written before the truncation) say.
		s.log.Warn("[RECOVERY] finishing an interrupted truncation of the commitlog", "offset", cutAt)
		ck.flushed, ck.dispatched = min(ck.flushed, cutAt), min(ck.dispatched, cutAt)
		if err := os.Remove(manifestPath(s.cfg.RootDir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("recover store %s: %w", s.cfg.RootDir, err)
		}
	}
	var durable int64
	if haveCk {
		durable = ck.flushed
	}
	if err := s.loadSegments(durable); err != nil {
		return err
	}
	start := s.walkStart(ck, haveCk)
	end, lastTS, cause := s.walkLog(start, durable)
	if truncating && end > cutAt {
		end, cause = cutAt, fmt.Errorf("interrupted truncation to %d", cutAt)
	}
	if err := s.checkMissing(durable, end); err != nil {
		return err
	}
	if err := s.cutLog(end, cause, crashed); err != nil {
		return err
	}
	s.lastStoreTS = lastTS
	s.verifiedFrom = start

	minPhy, ok := s.clog.minOffset()
	if !ok {
		minPhy = end
	}
	from, err := s.recoverConsumeQueues(ck, haveCk, end, minPhy)
	if err != nil {
		return err
	}
	s.complete.Store(end)
	s.maxPhy.Store(end)
	// Config.ConfirmGate: what was not dispatched before (the checkpoint's
	// offset: every record below it was) stays hidden until the confirm
	// offset is known again.
	visible := end
	if s.cfg.ConfirmGate {
		visible = from
		s.confirm.Store(from)
		s.confirmGate.Store(true)
	}
	// The index follows the valid log on its own (index_recovery.go), so
	// re-dispatch below leaves it alone.
	if s.idx != nil {
		if err := s.recoverIndex(visible, minPhy, crashed); err != nil {
			return fmt.Errorf("recover store %s: %w", s.cfg.RootDir, err)
		}
	}
	if from < start {
		s.verifyRange(from, start)
		s.verifiedFrom = from
	}
	s.scrubbed.Store(minPhy)
	s.advanceDispatch(from)
	s.dispatchAvailable()
	if d := s.disp.next; d != visible {
		return fmt.Errorf("recover store %s: re-dispatch stopped at %d of %d", s.cfg.RootDir, d, visible)
	}
	for _, cq := range s.cqs.all() {
		next := cq.max.Load()
		if b := s.blockedQueue(cq); b != nil {
			// Its records past the blocked one have queue offsets too.
			next = max(next, b.nextQ)
		}
		*s.newCounter(cq.topic, cq.qid) = next
	}
	s.countQueueOffsets(visible, end) // records the gate holds back

	// Records in [start, end) may only have been in the page cache of the
	// crashed process: sync them before the checkpoint claims them.
	s.flushed.Store(start)
	if err := s.flushCommitLog(); err != nil {
		return fmt.Errorf("recover store %s: %w", s.cfg.RootDir, err)
	}
	if err := s.flushConsumeQueues(); err != nil {
		return fmt.Errorf("recover store %s: %w", s.cfg.RootDir, err)
	}
	if truncating {
		if err := s.removeTruncateMarker(); err != nil {
			return fmt.Errorf("recover store %s: %w", s.cfg.RootDir, err)
		}
	}
	s.log.Info("[RECOVERY] store recovered", "validatedFrom", start, "redispatchedFrom", from,
		"maxPhyOffset", end, "minPhyOffset", minPhy, "queues", len(s.queueOffsets))
	return nil
}

// loadSegments maps every segment file, extending short ones with zeros.
// Segments must be contiguous and aligned to SegmentSize; anything else
// means a different SegmentSize or missing files, which recovery must not
// paper over by deleting data. A file too short to hold what the checkpoint
// says is durable (below durable) is refused before anything extends it,
// unless AcceptDataLoss: then its missing part is damage the walk steps over.
func (s *Store) loadSegments(durable int64) error {
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
	var short []string
	for _, b := range bases {
		path := fileName(dir, b)
		st, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("open commitlog %s: %w", path, err)
		}
		if size := st.Size(); size < s.segSize && b+size < durable {
			short = append(short, fmt.Sprintf("segment %s is %d bytes but the checkpoint says data up to offset %d is durable", path, size, durable))
		}
	}
	if err := s.dataLoss(short); err != nil {
		return err
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
// Damage below durable is quarantined and stepped over (see recover).
func (s *Store) walkLog(start, durable int64) (end, lastTS int64, cause error) {
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
		if seg.base+s.segSize-pos < wire.BlankSize {
			pos = seg.base + s.segSize
			continue
		}
		n, err := s.recordAt(seg, pos)
		switch {
		case err == nil:
			lastTS = wire.RecordView(seg.data[pos-seg.base:]).StoreTimestamp()
			pos += int64(n)
			continue
		case errors.Is(err, wire.ErrBlank):
			pos = seg.base + s.segSize
			continue
		case pos >= durable && errors.Is(err, wire.ErrEmpty):
			return pos, lastTS, nil
		case pos >= durable:
			return pos, lastTS, err
		}
		next := s.resync(seg, pos, durable)
		s.quarantine("[RECOVERY]", seg, pos, next, err)
		pos = next
	}
}

// checkMissing refuses to open when data that the checkpoint (below
// durable) or, without a checkpoint, the consume queues vouch for is not
// in the commit log, which ends at end: deleted last segments or an empty
// or wrong CommitLogDir would otherwise start a broker that silently drops
// the queues' messages. Consume queues are only asked when nothing is
// vouched for, since P > end already covers units below P.
func (s *Store) checkMissing(durable, end int64) error {
	var lost []string
	if durable > end {
		lost = append(lost, fmt.Sprintf("the checkpoint says data up to offset %d is durable but the commit log ends at %d", durable, end))
	}
	if durable == 0 {
		// Segment files exist before any record in them is dispatched
		// (createSegment syncs the directory), so a unit pointing past the
		// last segment means files went missing, not a torn write.
		limit := int64(0)
		if n := len(s.clog.segs); n > 0 {
			limit = s.clog.segs[n-1].base + s.segSize
		}
		qend, qdir, err := s.queuedEnd()
		if err != nil {
			return err
		}
		switch {
		case qend > limit && limit == 0:
			lost = append(lost, fmt.Sprintf("consume queue %s points at offsets up to %d but the commit log is empty", qdir, qend))
		case qend > limit:
			lost = append(lost, fmt.Sprintf("consume queue %s points at offsets up to %d but the commit log's last segment ends at %d", qdir, qend, limit))
		}
	}
	return s.dataLoss(lost)
}

// dataLoss turns findings of missing data into Open's error, or, with
// AcceptDataLoss, into warnings saying what is discarded.
func (s *Store) dataLoss(lost []string) error {
	if len(lost) == 0 {
		return nil
	}
	if !s.cfg.AcceptDataLoss {
		return fmt.Errorf("open commitlog %s: refusing to start: %s; restore the missing files, or accept the loss for one start (store AcceptDataLoss, mqbroker --accept-data-loss)",
			s.cfg.CommitLogDir, strings.Join(lost, "; "))
	}
	for _, l := range lost {
		s.log.Warn("[RECOVERY] accepting data loss: starting without the missing commit-log data; its messages are not served",
			"commitLogDir", s.cfg.CommitLogDir, "missing", l)
	}
	return nil
}

// queuedEnd returns the highest end (offset + size) of the last unit of
// any consume queue on disk and that queue's directory. It reads a few
// units per queue (a binary search of its last file), without mapping.
func (s *Store) queuedEnd() (end int64, dir string, err error) {
	topics, err := os.ReadDir(s.cqDir)
	if err != nil {
		return 0, "", fmt.Errorf("open consume queues %s: %w", s.cqDir, err)
	}
	for _, te := range topics {
		if !te.IsDir() {
			continue
		}
		tdir := filepath.Join(s.cqDir, te.Name())
		qents, err := os.ReadDir(tdir)
		if err != nil {
			return 0, "", fmt.Errorf("open consume queues %s: %w", tdir, err)
		}
		for _, qe := range qents {
			qdir := filepath.Join(tdir, qe.Name())
			if !qe.IsDir() {
				continue
			}
			e, err := lastUnitEnd(qdir)
			if err != nil {
				return 0, "", err
			}
			if e > end {
				end, dir = e, qdir
			}
		}
	}
	return end, dir, nil
}

// lastUnitEnd returns the end of the last written real unit in the last
// file of the consume queue in dir (written units form a prefix), or 0.
func lastUnitEnd(dir string) (int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("open consume queue %s: %w", dir, err)
	}
	var last string
	for _, e := range ents {
		if _, ok := parseFileName(e.Name()); ok && e.Type().IsRegular() {
			last = e.Name() // ReadDir sorts by name
		}
	}
	if last == "" {
		return 0, nil
	}
	f, err := os.Open(filepath.Join(dir, last))
	if err != nil {
		return 0, fmt.Errorf("open consume queue %s: %w", dir, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("open consume queue %s: %w", dir, err)
	}
	var b [cqUnitSize]byte
	unit := func(i int64) cqUnit {
		if _, err := f.ReadAt(b[:], i*cqUnitSize); err != nil {
			return cqUnit{}
		}
		return readUnit(b[:])
	}
	n := st.Size() / cqUnitSize
	e := int64(sort.Search(int(n), func(i int) bool { return unit(int64(i)).isZero() }))
	if e == 0 {
		return 0, nil
	}
	if u := unit(e - 1); u.real() {
		return u.phys + int64(u.size), nil
	}
	return 0, nil
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
