package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mqops/mqops/fileutil"
	"github.com/mqops/mqops/wire"
)

// Replication: a slave store receives the master's commit log as raw byte
// ranges (AppendAt) instead of messages (Put), so that both logs are
// byte-identical, as apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/CommitLog.java (appendData)
// does for a Java slave. A range may end in the middle of a record:
// maxPhy is then not a record boundary. complete is: every byte below it
// is a complete, CRC-checked record or blank filler; the dispatcher, the
// flusher's durable offset and the checkpoint never pass it.

// Role is the replication role of a store.
type Role int32

const (
	// RoleMaster stores messages with Put/PutBatch and refuses AppendAt.
	RoleMaster Role = iota
	// RoleSlave stores the master's bytes with AppendAt and refuses Put.
	RoleSlave
)

func (r Role) String() string {
	switch r {
	case RoleMaster:
		return "MASTER"
	case RoleSlave:
		return "SLAVE"
	}
	return fmt.Sprintf("Role(%d)", int32(r))
}

var (
	// ErrOffsetOutOfRange: a commit-log offset below the retained log or
	// past its end.
	ErrOffsetOutOfRange = errors.New("store: commit-log offset out of range")
	// ErrOffsetMismatch: AppendAt at an offset other than MaxPhyOffset.
	ErrOffsetMismatch = errors.New("store: append offset is not the end of the commit log")
	// ErrNotSlave: AppendAt on a master store.
	ErrNotSlave = errors.New("store: not a slave store")
	// ErrSlave: Put/PutBatch on a slave store (NotWritable returns it; the
	// put status is ServiceNotAvailable).
	ErrSlave = errors.New("store is a slave: only the master accepts messages")
)

// Role returns the store's role.
func (s *Store) Role() Role { return Role(s.role.Load()) }

// SetRole switches the store's role. Becoming master (also when the store
// already is one, e.g. opened with Config.ConfirmGate) first cuts a
// partial record at the tail (it can never be completed once nobody
// appends the rest), turns the confirm gate off (a new master's whole log
// is confirmed; EnableConfirmGate afterwards to gate on its replicas) and
// waits until the dispatcher covers the log.
func (s *Store) SetRole(r Role) error {
	switch r {
	case RoleSlave:
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return fmt.Errorf("set role %s: %w", r, ErrClosed)
		}
		s.role.Store(int32(r))
		return nil
	case RoleMaster:
		end, err := s.TruncatePartialTail()
		if err != nil {
			return fmt.Errorf("set role %s: %w", r, err)
		}
		// Records held back by the confirm gate become visible: a new
		// master's whole log is confirmed.
		s.confirmGate.Store(false)
		if !s.waitDispatched(end, 30*time.Second) {
			s.log.Warn("[HA] becoming master before the dispatcher covered the log", "maxPhyOffset", end, "behind", s.DispatchBehind())
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return fmt.Errorf("set role %s: %w", r, ErrClosed)
		}
		if s.Role() == RoleSlave && s.writePos != end {
			// AppendAt ran meanwhile: stop replicating first.
			return fmt.Errorf("set role %s: the log moved from %d to %d while switching", r, end, s.writePos)
		}
		s.role.Store(int32(r))
		return nil
	}
	return fmt.Errorf("set role: unknown role %d", int32(r))
}

// SegmentSize returns the commit-log segment size.
func (s *Store) SegmentSize() int64 { return s.segSize }

// SetOnAppend registers fn, called each time MaxPhyOffset advances (Put,
// PutBatch, AppendAt) with the new value, under the append lock, so calls
// come in order. fn must not block or allocate.
func (s *Store) SetOnAppend(fn func(maxPhy int64)) {
	s.onAppend.Store(&fn)
}

// notifyAppend runs the OnAppend callback. Caller holds s.mu.
func (s *Store) notifyAppend(end int64) {
	if fn := s.onAppend.Load(); fn != nil {
		(*fn)(end)
	}
}

// ReadCommitLog copies commit-log bytes at off into dst: at most len(dst),
// never past the end of the segment holding off nor past MaxPhyOffset
// (bytes there may be being written). off == MaxPhyOffset gives (0, nil);
// an offset below the retained log or past its end an error wrapping
// ErrOffsetOutOfRange. Blank fillers are copied like any bytes.
func (s *Store) ReadCommitLog(dst []byte, off int64) (int, error) {
	v, err := s.ViewCommitLog(off, len(dst))
	if err != nil {
		return 0, err
	}
	defer v.Release()
	return copy(dst, v.Bytes), nil
}

// CommitLogView is a window on mapped commit-log bytes (ViewCommitLog).
// Bytes stay valid, even if retention removes the segment, until Release.
type CommitLogView struct {
	Bytes []byte
	seg   *mmapFile
}

// Release gives the view's segment back; Bytes must not be used after.
func (v *CommitLogView) Release() {
	if v.seg != nil {
		v.seg.release()
		v.seg, v.Bytes = nil, nil
	}
}

// ViewCommitLog is ReadCommitLog without the copy: it returns up to n
// bytes at off straight from the mapped segment (for writev to an HA
// connection), with the same bounds and errors. It does not allocate.
func (s *Store) ViewCommitLog(off int64, n int) (CommitLogView, error) {
	end := s.maxPhy.Load()
	if off < 0 || off > end {
		return CommitLogView{}, fmt.Errorf("read commitlog at %d: %w (log ends at %d)", off, ErrOffsetOutOfRange, end)
	}
	if off == end || n <= 0 {
		return CommitLogView{}, nil
	}
	// The reference keeps the mapping alive if retention removes the
	// segment meanwhile.
	seg := s.clog.acquire(off)
	if seg == nil {
		return CommitLogView{}, fmt.Errorf("read commitlog at %d: %w (first retained offset %d)", off, ErrOffsetOutOfRange, s.MinPhyOffset())
	}
	limit := min(end, seg.base+s.segSize, off+int64(n))
	return CommitLogView{Bytes: seg.data[off-seg.base : limit-seg.base : limit-seg.base], seg: seg}, nil
}

// AppendAt appends raw commit-log bytes received from the master at off,
// which must be MaxPhyOffset (else ErrOffsetMismatch); an empty store
// (no segment, nothing ever written) accepts any segment start, as a
// Java slave does (an empty classic slave receives only the master's last
// segment). b may end inside a record and may cross segment boundaries.
// Every record that b completes is checked (CRC, its stored physical
// offset) before anything is published: bytes that are not the master's
// log are refused (wire.ErrCorrupt) and nothing is written. The flusher
// makes the bytes durable as for Put (SyncFlush: woken at once, else every
// FlushInterval); AppendAt does not wait for it: a slave acks bytes in
// its page cache, as in apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/ha/HAService.java. One
// caller at a time.
func (s *Store) AppendAt(off int64, b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.appendableLocked(); err != nil {
		return fmt.Errorf("append at %d: %w", off, err)
	}
	if off != s.writePos {
		if !s.emptyLogLocked() || off%s.segSize != 0 || off < 0 {
			return fmt.Errorf("append %d bytes at %d: %w (%d)", len(b), off, ErrOffsetMismatch, s.writePos)
		}
		s.rebaseEmptyLocked(off)
	}
	if len(b) == 0 {
		return nil
	}
	end := off + int64(len(b))
	// Create every segment b reaches first, so that a failure leaves
	// nothing written; a refused append removes them again.
	prevActive, created := s.active, 0
	for base := off - off%s.segSize; base < end; base += s.segSize {
		if s.active != nil && base <= s.active.base {
			continue
		}
		seg, err := s.newSegment(base)
		if err != nil {
			s.logAppendError(err)
			s.undoSegments(prevActive, created)
			return fmt.Errorf("append at %d: %w", off, err)
		}
		s.active = seg
		created++
	}
	s.awaitWarm(end) // a master turned slave: its warmer may still write
	for pos, rest := off, b; len(rest) > 0; {
		seg := s.clog.acquire(pos)
		n := copy(seg.data[pos-seg.base:], rest) // created above: never nil
		seg.release()
		pos += int64(n)
		rest = rest[n:]
	}
	complete, lastTS, err := s.scanComplete(s.complete.Load(), end)
	if err != nil {
		// The bytes past writePos must stay zero (recovery reads zeros as
		// the end of the log).
		s.zeroLog(off, end)
		s.undoSegments(prevActive, created)
		return fmt.Errorf("append %d bytes at %d: %w", len(b), off, err)
	}
	s.lastStoreTS = max(s.lastStoreTS, lastTS)
	s.countQueueOffsets(s.complete.Load(), complete)
	s.writePos = end
	s.complete.Store(complete)
	s.maxPhy.Store(end) // publish after the bytes are in place
	s.notifyAppend(end)
	s.wakeDispatcher()
	if s.cfg.FlushMode == SyncFlush {
		// As a sync-flush Put does, without waiting: the flusher syncs
		// what arrived, chunks arriving meanwhile share the fsync.
		select {
		case s.flushWake <- struct{}{}:
		default:
		}
	}
	return nil
}

// undoSegments removes the last n segments, created by a refused append
// and empty, and makes prev the active segment again, so that later
// appends and Put find the log as it was. Caller holds s.mu.
func (s *Store) undoSegments(prev *mmapFile, n int) {
	s.active = prev
	if n == 0 {
		return
	}
	s.clog.mu.Lock()
	k := len(s.clog.segs) - n
	gone := slices.Clone(s.clog.segs[k:])
	clear(s.clog.segs[k:])
	s.clog.segs = s.clog.segs[:k]
	s.clog.mu.Unlock()
	for _, seg := range gone {
		if err := os.Remove(seg.path); err != nil {
			// Recovery treats an empty trailing segment as the log's end.
			s.log.Error("[HA] cannot remove the segment of a refused append", "path", seg.path, "err", err)
		}
		seg.release()
	}
	_ = s.syncDir(s.cfg.CommitLogDir) // best effort, as above
}

// appendableLocked returns why AppendAt is refused, or nil. Caller holds s.mu.
func (s *Store) appendableLocked() error {
	if s.closed {
		return ErrClosed
	}
	if s.Role() != RoleSlave {
		return ErrNotSlave
	}
	if f := s.failure.Load(); f != nil {
		return f
	}
	if s.diskFull.Load() {
		s.refuseFullLocked()
		return ErrDiskFull
	}
	return nil
}

// emptyLogLocked reports whether the store holds no segment and never
// held data. Caller holds s.mu.
func (s *Store) emptyLogLocked() bool {
	_, ok := s.clog.minOffset()
	return !ok && s.writePos == 0
}

// rebaseEmptyLocked makes the empty log start at off. Caller holds s.mu.
func (s *Store) rebaseEmptyLocked(off int64) {
	s.dispMu.Lock()
	defer s.dispMu.Unlock()
	s.writePos = off
	s.warm.reset()
	s.complete.Store(off)
	s.flushed.Store(off)
	s.scrubbed.Store(off)
	s.maxPhy.Store(off)
	s.advanceDispatch(off)
	s.log.Info("[HA] empty store starts its commit log at the master's offset", "offset", off)
}

// scanComplete walks the appended bytes in [from, end) from the complete
// boundary from and returns the new boundary: the end of the last record
// or filler that lies wholly below end. It checks each such record
// (CRC, stored physical offset) and returns an error wrapping
// wire.ErrCorrupt for anything that is not a valid log. lastTS is the
// largest store timestamp seen. Caller holds s.mu.
func (s *Store) scanComplete(from, end int64) (pos, lastTS int64, err error) {
	pos = from
	var seg *mmapFile
	defer func() {
		if seg != nil {
			seg.release()
		}
	}()
	for pos < end {
		if seg == nil || pos >= seg.base+s.segSize {
			if seg != nil {
				seg.release()
			}
			if seg = s.clog.acquire(pos); seg == nil {
				return pos, lastTS, fmt.Errorf("commitlog at %d: segment missing", pos)
			}
		}
		segEnd := seg.base + s.segSize
		if segEnd-pos < wire.BlankSize || end-pos < wire.BlankSize {
			if end < segEnd {
				return pos, lastTS, nil // the rest comes with the next bytes
			}
			pos = segEnd
			continue
		}
		v := wire.RecordView(seg.data[pos-seg.base:])
		size := int64(v.TotalSize())
		switch v.Magic() {
		case wire.MagicBlank:
			if size != segEnd-pos {
				return pos, lastTS, fmt.Errorf("commitlog at %d: blank filler of %d bytes does not end its segment: %w", pos, size, wire.ErrCorrupt)
			}
			if end < segEnd {
				return pos, lastTS, nil
			}
			pos = segEnd
			continue
		case wire.MagicMessage:
		default:
			return pos, lastTS, fmt.Errorf("commitlog at %d: bad magic %#x: %w", pos, uint32(v.Magic()), wire.ErrCorrupt)
		}
		if size < wire.MinRecordSize || size > segEnd-pos {
			return pos, lastTS, fmt.Errorf("commitlog at %d: bad record size %d: %w", pos, size, wire.ErrCorrupt)
		}
		if pos+size > end {
			return pos, lastTS, nil
		}
		if _, err := wire.CheckRecord(v[:size]); err != nil {
			return pos, lastTS, fmt.Errorf("commitlog at %d: %w", pos, err)
		}
		if got := v.PhysicalOffset(); got != pos {
			return pos, lastTS, fmt.Errorf("commitlog at %d: record claims physical offset %d: %w", pos, got, wire.ErrCorrupt)
		}
		lastTS = max(lastTS, v.StoreTimestamp())
		pos += size
	}
	return pos, lastTS, nil
}

// countQueueOffsets moves the append path's next queue offsets past the
// records in [from, to), so that a promoted slave's Put continues each
// queue where the master left it. Caller holds s.mu.
func (s *Store) countQueueOffsets(from, to int64) {
	_, _ = s.eachRecord(from, to, nil, func(v wire.RecordView, _ int64) bool {
		s.eachQueueOf(v, func(topic []byte, qid int32, q int64) bool {
			next := s.queueCounterBytes(topic, qid)
			*next = max(*next, q+1)
			return true
		})
		return true
	})
}

// zeroLog clears the commit-log bytes in [from, to) of retained segments.
func (s *Store) zeroLog(from, to int64) {
	for pos := from; pos < to; {
		seg := s.clog.acquire(pos)
		if seg == nil {
			return
		}
		stop := min(to, seg.base+s.segSize)
		clear(seg.data[pos-seg.base : stop-seg.base])
		seg.release()
		pos = stop
	}
}

// TruncatePartialTail cuts the bytes of an incomplete record at the end of
// the log (a slave's last chunk ended inside a record) and returns the new
// MaxPhyOffset, the complete-record boundary.
func (s *Store) TruncatePartialTail() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, fmt.Errorf("truncate partial tail: %w", ErrClosed)
	}
	c := s.complete.Load()
	if s.writePos > c {
		s.log.Warn("[HA] cutting a partial record at the end of the commit log", "from", c, "to", s.writePos)
		s.maxPhy.Store(c) // before the bytes go: readers stop below c
		s.zeroLog(c, s.writePos)
		s.writePos = c
		s.warm.reset()
	}
	return c, nil
}

// EnableConfirmGate turns the confirm gate on or off (controller mode): with
// it on, the dispatcher builds consume-queue units and index entries only
// for records that end at or below the confirm offset, so consumers never
// see bytes a failover could truncate (J5 DefaultMessageStore
// ReputMessageService.getReputEndOffset). Off by default (classic mode).
func (s *Store) EnableConfirmGate(on bool) {
	s.confirmGate.Store(on)
	s.wakeDispatcher()
}

// SetConfirmOffset sets the confirm offset the gate dispatches up to.
func (s *Store) SetConfirmOffset(off int64) {
	s.confirm.Store(off)
	s.wakeDispatcher()
}

// ConfirmOffset returns the confirm offset last set.
func (s *Store) ConfirmOffset() int64 { return s.confirm.Load() }

// WaitDispatched blocks until every complete record below off has its
// consume-queue unit (and index entries), or ctx ends. A record that is
// not complete yet (a slave's partial tail) is not waited for; one held
// back by the confirm gate is.
func (s *Store) WaitDispatched(ctx context.Context, off int64) error {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		d := s.dispatched.Load()
		if d >= off || d >= s.complete.Load() {
			return nil
		}
		s.wakeDispatcher()
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for dispatch up to %d (at %d): %w", off, d, ctx.Err())
		case <-s.stop:
			return fmt.Errorf("wait for dispatch up to %d: %w", off, ErrClosed)
		case <-t.C:
		}
	}
}

// truncateMarker names the file that records a truncation in progress:
// recovery finishing an interrupted TruncateTo cuts the log there before
// anything else, so truncated records never come back.
func truncateMarkerPath(root string) string { return filepath.Join(root, "truncating") }

// readTruncateMarker returns the offset of an interrupted truncation.
func readTruncateMarker(root string) (int64, bool, error) {
	p := truncateMarkerPath(root)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read truncation marker %s: %w", p, err)
	}
	off, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || off < 0 {
		return 0, false, fmt.Errorf("read truncation marker %s: bad offset %q", p, b)
	}
	return off, true, nil
}

// removeTruncateMarker removes the marker durably.
func (s *Store) removeTruncateMarker() error {
	if err := os.Remove(truncateMarkerPath(s.cfg.RootDir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove truncation marker: %w", err)
	}
	return s.syncDir(s.cfg.RootDir)
}

// TruncateTo cuts the commit log to off, which must be a record boundary
// in [MinPhyOffset, the end of the complete records] (or MaxPhyOffset:
// nothing to do), and removes what
// described the records at or after it: consume-queue units, index
// entries, the append path's queue offsets (each queue continues at its
// first removed unit). Everything is durable (fsync) before it returns,
// and a crash in the middle is finished by recovery (truncateMarker). Used
// when a replica rejoins after a failover with a divergent tail.
func (s *Store) TruncateTo(off int64) error {
	// Lock order: retention (which removes segments) first, then the
	// append lock, the dispatcher, the commit-log flusher, checkpoints.
	s.retentionMu.Lock()
	defer s.retentionMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("truncate commitlog to %d: %w", off, ErrClosed)
	}
	if f := s.failure.Load(); f != nil {
		return fmt.Errorf("truncate commitlog to %d: %w", off, f)
	}
	s.dispMu.Lock()
	defer s.dispMu.Unlock()
	s.clFlushMu.Lock()
	defer s.clFlushMu.Unlock()
	s.ckMu.Lock()
	defer s.ckMu.Unlock()

	if off == s.writePos {
		return nil // nothing past it, a partial record included
	}
	complete := s.complete.Load()
	if minPhy := s.MinPhyOffset(); off < minPhy || off > complete {
		return fmt.Errorf("truncate commitlog to %d: %w (complete records span [%d, %d))", off, ErrOffsetOutOfRange, minPhy, complete)
	}
	if !s.recordBoundary(off, complete) {
		return fmt.Errorf("truncate commitlog to %d: not a record boundary", off)
	}
	if err := fileutil.WriteFile(truncateMarkerPath(s.cfg.RootDir), []byte(strconv.FormatInt(off, 10)+"\n"), 0o644); err != nil {
		return fmt.Errorf("truncate commitlog to %d: %w", off, err)
	}
	s.log.Warn("[HA] truncating the commit log", "offset", off, "maxPhyOffset", s.writePos)

	// Queue counters go back to each queue's first removed record.
	_, _ = s.eachRecord(off, complete, nil, func(v wire.RecordView, _ int64) bool {
		s.eachQueueOf(v, func(topic []byte, qid int32, q int64) bool {
			next := s.queueCounterBytes(topic, qid)
			*next = min(*next, q)
			return true
		})
		return true
	})
	if err := s.cutCommitLog(off); err != nil {
		return fmt.Errorf("truncate commitlog to %d: %w", off, err)
	}
	if err := s.truncateConsumeQueues(off); err != nil {
		return fmt.Errorf("truncate commitlog to %d: %w", off, err)
	}
	s.truncateIndex(off)
	s.confirm.Store(min(s.confirm.Load(), off))
	if err := s.flushIndex(); err != nil {
		return fmt.Errorf("truncate commitlog to %d: index: %w", off, err)
	}
	if err := s.flushConsumeQueuesLocked(); err != nil {
		return fmt.Errorf("truncate commitlog to %d: %w", off, err)
	}
	if err := s.removeTruncateMarker(); err != nil {
		return fmt.Errorf("truncate commitlog to %d: %w", off, err)
	}
	return nil
}

// recordBoundary reports whether off, at or below complete, starts a
// record or a blank filler, or ends the records of a segment.
func (s *Store) recordBoundary(off, complete int64) bool {
	if off == complete || off%s.segSize == 0 {
		return true
	}
	seg := s.clog.acquire(off)
	if seg == nil {
		return false
	}
	defer seg.release()
	segEnd := seg.base + s.segSize
	if segEnd-off < wire.BlankSize {
		return true // too short for a filler: the records end here
	}
	b := seg.data[off-seg.base : min(complete, segEnd)-seg.base]
	n, err := wire.CheckRecord(b)
	switch {
	case errors.Is(err, wire.ErrBlank):
		return off+int64(n) == segEnd
	case err != nil:
		return false
	}
	return wire.RecordView(b).PhysicalOffset() == off
}

// cutCommitLog makes off the end of the log: later segments are removed,
// the rest of the segment holding off is zeroed, durably. Caller holds
// s.mu, s.dispMu and s.clFlushMu.
func (s *Store) cutCommitLog(off int64) error {
	// Readers stop below off before the bytes go.
	s.maxPhy.Store(off)
	s.complete.Store(off)
	s.flushed.Store(min(s.flushed.Load(), off))
	s.prefaulted.Store(min(s.prefaulted.Load(), off))
	s.writePos = off
	s.warm.reset()

	s.clog.mu.Lock()
	var gone []*mmapFile
	keep := len(s.clog.segs)
	for i, seg := range s.clog.segs {
		if seg.base > off || (seg.base == off && i > 0) {
			keep = i
			break
		}
	}
	gone = append(gone, s.clog.segs[keep:]...)
	s.clog.segs = s.clog.segs[:keep]
	s.active = nil
	if keep > 0 {
		s.active = s.clog.segs[keep-1]
	}
	s.clog.mu.Unlock()
	for _, seg := range gone {
		// Readers holding it keep their mapping; unlinking is fine.
		if err := os.Remove(seg.path); err != nil {
			seg.release()
			return s.fail(seg.path, fmt.Errorf("remove segment past the cut: %w", err))
		}
		seg.release()
	}
	if len(gone) > 0 {
		if err := s.syncDir(s.cfg.CommitLogDir); err != nil {
			return s.fail(s.cfg.CommitLogDir, err)
		}
	}
	if seg := s.active; seg != nil && off < seg.base+s.segSize {
		if err := seg.zeroRange(off-seg.base, s.segSize); err != nil {
			return err
		}
		if err := s.syncFile(seg); err != nil {
			return s.fail(seg.path, err)
		}
	}
	// The dispatcher starts again at off; a blocked queue's missing units
	// at or past it are gone with their records.
	for cq, b := range s.disp.blocked {
		if b.from >= off {
			delete(s.disp.blocked, cq)
		}
	}
	s.disp.low = off
	for _, b := range s.disp.blocked {
		s.disp.low = min(s.disp.low, b.from)
	}
	s.advanceDispatch(min(s.disp.next, off))
	return nil
}

// truncateConsumeQueues removes the units of records at or after off and
// syncs the queues. Caller holds s.dispMu.
func (s *Store) truncateConsumeQueues(off int64) error {
	for _, cq := range s.cqs.all() {
		var err error
		gone := cq.truncate(off)
		for _, f := range gone {
			if e := os.Remove(f.path); e != nil && err == nil {
				err = fmt.Errorf("remove consume queue file: %w", e)
			}
			f.release()
		}
		if err != nil {
			return err
		}
		if len(gone) > 0 {
			if err := s.syncDir(cq.dir); err != nil {
				return s.fail(cq.dir, err)
			}
		}
	}
	return nil
}

// truncateIndex drops the index entries of records at or after off.
// Caller holds s.dispMu (the dispatcher owns the index's write state).
func (s *Store) truncateIndex(off int64) {
	x := s.idx
	if x == nil {
		return
	}
	files := x.acquireAll()
	defer releaseIndexFiles(files)
	for i := len(files) - 1; i >= 0; i-- {
		if s.truncateIndexFile(files[i], off) {
			break // phyOffsets ascend across files: older ones are below off
		}
	}
	x.next = min(x.next, off)
}
