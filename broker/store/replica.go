package store

import (
	"errors"
	"fmt"
	"time"

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

// SetRole switches the store's role. Becoming master first cuts a partial
// record at the tail (it can never be completed once nobody appends the
// rest) and waits until the dispatcher covers the log, so that the queue
// offsets Put assigns continue the replicated ones.
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
		if s.Role() == RoleMaster {
			return nil
		}
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
		if s.writePos != end {
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
	end := s.maxPhy.Load()
	if off < 0 || off > end {
		return 0, fmt.Errorf("read commitlog at %d: %w (log ends at %d)", off, ErrOffsetOutOfRange, end)
	}
	if off == end {
		return 0, nil
	}
	// A reference keeps the mapping alive if retention removes the
	// segment meanwhile.
	seg := s.clog.acquire(off)
	if seg == nil {
		return 0, fmt.Errorf("read commitlog at %d: %w (first retained offset %d)", off, ErrOffsetOutOfRange, s.MinPhyOffset())
	}
	defer seg.release()
	limit := min(end, seg.base+s.segSize)
	return copy(dst, seg.data[off-seg.base:limit-seg.base]), nil
}

// AppendAt appends raw commit-log bytes received from the master at off,
// which must be MaxPhyOffset (else ErrOffsetMismatch); an empty store
// (no segment, nothing ever written) accepts any segment start, as a
// Java slave does (an empty classic slave receives only the master's last
// segment). b may end inside a record and may cross segment boundaries.
// Every record that b completes is checked (CRC, its stored physical
// offset) before anything is published: bytes that are not the master's
// log are refused (wire.ErrCorrupt) and nothing is written. The flusher
// makes the bytes durable as for Put; AppendAt does not wait for it (an HA
// ack means "in the slave's page cache"). One caller at a time.
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
	// nothing written.
	for base := off - off%s.segSize; base < end; base += s.segSize {
		if s.active != nil && base <= s.active.base {
			continue
		}
		seg, err := s.newSegment(base)
		if err != nil {
			s.logAppendError(err)
			return fmt.Errorf("append at %d: %w", off, err)
		}
		s.active = seg
	}
	for pos, rest := off, b; len(rest) > 0; {
		seg := s.clog.acquire(pos)
		if seg == nil {
			return fmt.Errorf("append at %d: segment for %d missing", off, pos)
		}
		n := copy(seg.data[pos-seg.base:], rest)
		seg.release()
		pos += int64(n)
		rest = rest[n:]
	}
	complete, lastTS, err := s.scanComplete(s.complete.Load(), end)
	if err != nil {
		// The bytes past writePos must stay zero (recovery reads zeros as
		// the end of the log).
		s.zeroLog(off, end)
		return fmt.Errorf("append %d bytes at %d: %w", len(b), off, err)
	}
	s.lastStoreTS = max(s.lastStoreTS, lastTS)
	s.countQueueOffsets(s.complete.Load(), complete)
	s.writePos = end
	s.complete.Store(complete)
	s.maxPhy.Store(end) // publish after the bytes are in place
	s.notifyAppend(end)
	s.wakeDispatcher()
	return nil
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
	ts := s.cfg.Now().UnixMilli()
	if ts >= s.nextDiskPoll {
		s.nextDiskPoll = ts + diskPollInterval.Milliseconds()
		s.checkDiskLocked(0)
	}
	if s.diskFull.Load() {
		s.refusedAppends.Add(1)
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
		if consumesQueueOffset(v.SysFlag()) {
			next := s.queueCounterBytes(v.Topic(), v.QueueID())
			*next = max(*next, v.QueueOffset()+1)
		}
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
	}
	return c, nil
}
