package store

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mqops/mqops/wire"
	"golang.org/x/sys/unix"
)

// commitLog is the ordered list of segment files.
//
// Invariant: segs is ascending and contiguous, segs[i].base ==
// segs[0].base + i*segSize, and every base is a multiple of segSize. Only
// the last segment is ever written; only leading segments are removed.
type commitLog struct {
	dir     string
	segSize int64
	mu      sync.RWMutex // guards segs
	segs    []*mmapFile
}

// acquire returns the segment containing off with a reference held, or nil
// if off is not in a retained segment. Callers release it.
func (c *commitLog) acquire(off int64) *mmapFile {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.segs) == 0 || off < c.segs[0].base {
		return nil
	}
	i := (off - c.segs[0].base) / c.segSize
	if i >= int64(len(c.segs)) {
		return nil
	}
	seg := c.segs[i]
	seg.acquire()
	return seg
}

// minOffset returns the first retained offset.
func (c *commitLog) minOffset() (int64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.segs) == 0 {
		return 0, false
	}
	return c.segs[0].base, true
}

// createSegment creates, reserves and maps the segment starting at base and
// appends it to the list. syncDir makes the new directory entry durable;
// its failure comes back as a *dirSyncError.
func (c *commitLog) createSegment(base int64, syncDir func(string) error) (*mmapFile, error) {
	path := fileName(c.dir, base)
	seg, err := openMmapFile(path, base, c.segSize, true)
	if err != nil {
		return nil, fmt.Errorf("create commitlog segment %s: %w", path, err)
	}
	if err := syncDir(c.dir); err != nil {
		seg.release()
		return nil, &dirSyncError{dir: c.dir, err: fmt.Errorf("create commitlog segment %s: %w", path, err)}
	}
	c.mu.Lock()
	c.segs = append(c.segs, seg)
	c.mu.Unlock()
	return seg, nil
}

// PutStatus is the outcome of an append.
type PutStatus int

const (
	PutOK PutStatus = iota
	FlushDiskTimeout
	MessageIllegal
	PropertiesTooLong
	ServiceNotAvailable // closed, disk full or failed: NotWritable says which
	UnknownError
	// MultiDispatchIllegal: INNER_MULTI_DISPATCH is not a list of
	// distinct light queue names, or is on a batch (lmq.go).
	MultiDispatchIllegal
	// LMQNumExceeded: the put would create more light queues than
	// Config.MaxLightQueues.
	LMQNumExceeded
)

var putStatusNames = [...]string{"PUT_OK", "FLUSH_DISK_TIMEOUT", "MESSAGE_ILLEGAL",
	"PROPERTIES_SIZE_EXCEEDED", "SERVICE_NOT_AVAILABLE", "UNKNOWN_ERROR", "MULTI_DISPATCH_ILLEGAL",
	"LMQ_CONSUME_QUEUE_NUM_EXCEEDED"}

// String returns the Java PutMessageStatus name.
func (s PutStatus) String() string {
	if s >= 0 && int(s) < len(putStatusNames) {
		return putStatusNames[s]
	}
	return fmt.Sprintf("PutStatus(%d)", int(s))
}

// Message is an append request. Body, Properties and BornHost may alias
// caller buffers: they are copied into the log before Put returns. Topic
// must not be mutated afterwards (it may be kept as a queue-table key).
type Message struct {
	Topic                     string
	QueueID                   int32
	Flag                      int32
	SysFlag                   int32 // the IPv6 host bits are derived from the host lengths
	BornTimestamp             int64
	BornHost                  []byte // raw 8 or 20 bytes; nil means 0.0.0.0:0
	ReconsumeTimes            int32
	PreparedTransactionOffset int64
	Body                      []byte
	Properties                []byte
}

// Republish is the message that stores record v again under topic and
// queueID with properties props: same body, flags, born time and host,
// reconsume times and prepared offset (delay delivery, transaction commit).
func Republish(v wire.RecordView, topic string, queueID int32, props []byte) Message {
	return Message{
		Topic: topic, QueueID: queueID, Flag: v.Flag(), SysFlag: v.SysFlag(),
		BornTimestamp: v.BornTimestamp(), BornHost: v.BornHost(), ReconsumeTimes: v.ReconsumeTimes(),
		PreparedTransactionOffset: v.PreparedTransactionOffset(), Body: v.Body(), Properties: props,
	}
}

// PutResult describes an append. For a batch it covers all records:
// PhysicalOffset and QueueOffset are the first record's, WroteBytes the
// total.
type PutResult struct {
	Status         PutStatus
	PhysicalOffset int64
	WroteBytes     int32
	QueueOffset    int64
	StoreTimestamp int64
	EndOffset      int64 // PhysicalOffset+WroteBytes: what WaitFlushed waits for
}

// consumesQueueOffset reports whether a record with sysFlag gets a queue
// offset and a consume-queue unit: legacy prepared and rollback
// transaction records do not (Java stores them with QUEUEOFFSET 0).
func consumesQueueOffset(sysFlag int32) bool {
	t := sysFlag & wire.SysFlagTransactionMask
	return t != wire.SysFlagTransactionPrepared && t != wire.SysFlagTransactionRollback
}

// checkMessage validates limits and returns the encoded size.
func (s *Store) checkMessage(m *Message) (int, PutStatus) {
	if !validTopic(m.Topic) || len(m.Body) > s.cfg.MaxMessageSize {
		return 0, MessageIllegal
	}
	if len(m.Properties) > wire.MaxPropertiesLen {
		return 0, PropertiesTooLong
	}
	switch len(m.BornHost) {
	case 0, 8, 20:
	default:
		return 0, MessageIllegal
	}
	size := wire.RecordSize(len(m.Body), len(m.Topic), len(m.Properties),
		len(m.BornHost) == 20, len(s.cfg.StoreHost) == 20)
	// A record never spans segments and must leave room for a filler.
	if int64(size)+wire.BlankSize > s.segSize {
		return 0, MessageIllegal
	}
	return size, PutOK
}

// Put appends one message, assigning the next queue offset of its
// (topic, queueId) under the append lock, and with Config.LightQueues the
// next offsets of the light queues its INNER_MULTI_DISPATCH names
// (lmq.go). It does not allocate once the queues exist.
func (s *Store) Put(m *Message) PutResult { return s.put(m, false) }

// PutDispatch is Put that also writes the consume-queue unit on the
// calling goroutine when no dispatch pass is running (dispatchInline), for
// callers that hold no lock a dispatch callback (OnDispatch) may take: the
// producer-facing send paths.
func (s *Store) PutDispatch(m *Message) PutResult { return s.put(m, true) }

func (s *Store) put(m *Message, inline bool) PutResult {
	var mp *multiPut
	if s.cfg.LightQueues && consumesQueueOffset(m.SysFlag) && multiDispatchTopic(m.Topic) {
		if list := wire.PropertyValue(m.Properties, wire.PropInnerMultiDispatch); len(list) > 0 {
			mp = multiPutPool.Get().(*multiPut)
			defer mp.release()
			if !mp.prepare(m.Properties, list) {
				return PutResult{Status: MultiDispatchIllegal}
			}
		}
	}
	size, st := s.checkMessage(m)
	if st != PutOK {
		return PutResult{Status: st}
	}
	crc := wire.BodyCRC(m.Body) // outside the lock: bodies may be MiBs
	props := m.Properties

	s.mu.Lock()
	ts, ok := s.writableLocked()
	if !ok {
		s.mu.Unlock()
		return PutResult{Status: ServiceNotAvailable}
	}
	if mp != nil {
		// The offsets are known only now; so is the record's size.
		if st = s.assignLocked(mp); st == PutOK {
			mm := *m
			mm.Properties = mp.props
			size, st = s.checkMessage(&mm)
		}
		if st != PutOK {
			s.mu.Unlock()
			return PutResult{Status: st}
		}
		props = mp.props
	}
	s.appendSince.Store(ts)
	seg, err := s.reserve(size)
	if err != nil {
		s.appendSince.Store(0)
		s.mu.Unlock()
		s.logAppendError(err)
		return PutResult{Status: ServiceNotAvailable}
	}
	phy := s.writePos
	var next *int64
	var qoff int64
	if consumesQueueOffset(m.SysFlag) {
		next = s.queueCounter(m.Topic, m.QueueID)
		qoff = *next
	}
	r := wire.Record{
		Topic: m.Topic, QueueID: m.QueueID, Flag: m.Flag, QueueOffset: qoff,
		PhysicalOffset: phy, SysFlag: m.SysFlag, BornTimestamp: m.BornTimestamp,
		BornHost: m.BornHost, StoreTimestamp: ts, StoreHost: s.cfg.StoreHost,
		ReconsumeTimes: m.ReconsumeTimes, PreparedTransactionOffset: m.PreparedTransactionOffset,
		Body: m.Body, Properties: props,
	}
	if s.cfg.FlushMode == SyncFlush {
		r.EncodeToCRC(s.encodeBuf(size), crc)
		if err := s.writeSegment(seg, phy); err != nil {
			s.appendSince.Store(0)
			s.mu.Unlock()
			return PutResult{Status: ServiceNotAvailable}
		}
	} else {
		r.EncodeToCRC(seg.data[phy-seg.base:], crc)
	}
	if next != nil {
		*next = qoff + 1
	}
	if mp != nil {
		s.advanceLocked(mp)
	}
	s.writePos = phy + int64(size)
	s.complete.Store(s.writePos)
	s.maxPhy.Store(s.writePos) // publish after the bytes are in place
	s.notifyAppend(s.writePos)
	s.appendSince.Store(0)
	s.wakeWarmLocked()
	s.mu.Unlock()

	if inline && s.dispatchInline() {
		s.wakePrefault()
	} else {
		s.wakeDispatcher()
	}
	return PutResult{Status: PutOK, PhysicalOffset: phy, WroteBytes: int32(size),
		QueueOffset: qoff, StoreTimestamp: ts, EndOffset: phy + int64(size)}
}

// PutBatch appends ms, which must all have the same topic and queue id, as
// consecutive records with consecutive queue offsets, atomically: the
// dispatcher and readers see all of them or none. It returns the combined
// result and each record's physical offset (for per-item msgIds).
func (s *Store) PutBatch(ms []Message) (PutResult, []int64) {
	return s.PutBatchTo(make([]int64, 0, len(ms)), ms)
}

// PutBatchTo is PutBatch appending the physical offsets to phys, so a
// caller reusing phys does not allocate.
func (s *Store) PutBatchTo(phys []int64, ms []Message) (PutResult, []int64) {
	if len(ms) == 0 {
		return PutResult{Status: MessageIllegal}, phys
	}
	total := 0
	for i := range ms {
		m := &ms[i]
		if m.Topic != ms[0].Topic || m.QueueID != ms[0].QueueID || !consumesQueueOffset(m.SysFlag) {
			return PutResult{Status: MessageIllegal}, phys
		}
		if s.cfg.LightQueues && multiDispatchTopic(m.Topic) && len(wire.PropertyValue(m.Properties, wire.PropInnerMultiDispatch)) > 0 {
			return PutResult{Status: MultiDispatchIllegal}, phys
		}
		size, st := s.checkMessage(m)
		if st != PutOK {
			return PutResult{Status: st}, phys
		}
		total += size
	}
	if int64(total)+wire.BlankSize > s.segSize {
		return PutResult{Status: MessageIllegal}, phys
	}

	s.mu.Lock()
	ts, ok := s.writableLocked()
	if !ok {
		s.mu.Unlock()
		return PutResult{Status: ServiceNotAvailable}, phys
	}
	s.appendSince.Store(ts)
	seg, err := s.reserve(total)
	if err != nil {
		s.appendSince.Store(0)
		s.mu.Unlock()
		s.logAppendError(err)
		return PutResult{Status: ServiceNotAvailable}, phys
	}
	first := s.writePos
	next := s.queueCounter(ms[0].Topic, ms[0].QueueID)
	qoff := *next
	pos := first
	// SyncFlush: the records are encoded into encBuf and written with one
	// pwrite (writeSegment).
	dst := seg.data[first-seg.base:]
	if s.cfg.FlushMode == SyncFlush {
		dst = s.encodeBuf(total)
	}
	for i := range ms {
		m := &ms[i]
		r := wire.Record{
			Topic: m.Topic, QueueID: m.QueueID, Flag: m.Flag, QueueOffset: qoff + int64(i),
			PhysicalOffset: pos, SysFlag: m.SysFlag, BornTimestamp: m.BornTimestamp,
			BornHost: m.BornHost, StoreTimestamp: ts, StoreHost: s.cfg.StoreHost,
			ReconsumeTimes: m.ReconsumeTimes, PreparedTransactionOffset: m.PreparedTransactionOffset,
			Body: m.Body, Properties: m.Properties,
		}
		phys = append(phys, pos)
		pos += int64(r.EncodeTo(dst[pos-first:]))
	}
	if s.cfg.FlushMode == SyncFlush {
		if err := s.writeSegment(seg, first); err != nil {
			s.appendSince.Store(0)
			s.mu.Unlock()
			return PutResult{Status: ServiceNotAvailable}, phys[:len(phys)-len(ms)]
		}
	}
	*next = qoff + int64(len(ms))
	s.writePos = pos
	s.complete.Store(pos)
	s.maxPhy.Store(pos)
	s.notifyAppend(pos)
	s.appendSince.Store(0)
	s.wakeWarmLocked()
	s.mu.Unlock()

	s.wakeDispatcher()
	return PutResult{Status: PutOK, PhysicalOffset: first, WroteBytes: int32(total),
		QueueOffset: qoff, StoreTimestamp: ts, EndOffset: pos}, phys
}

// encodeBuf returns encBuf sized to n bytes, where a SyncFlush append
// encodes its records. Caller holds s.mu.
func (s *Store) encodeBuf(n int) []byte {
	if cap(s.encBuf) < n {
		s.encBuf = make([]byte, n)
	}
	s.encBuf = s.encBuf[:n]
	return s.encBuf
}

// writeSegment writes encBuf at commit-log offset off of seg with pwrite:
// how a SyncFlush store appends. Stores through the mapping would fault
// on every page each fdatasync wrote back (the kernel write-protects
// clean pages to see the next write) and made each group commit cost
// about twice the CPU and the fsync time of writes through the page
// cache, which the mapping shares (README, Durability). A failed or
// short write may leave bytes past the write position, which must stay
// zero: the store fails (sticky) and recovery cuts the tail at restart.
// Caller holds s.mu.
func (s *Store) writeSegment(seg *mmapFile, off int64) error {
	buf := s.encBuf
	if cap(buf) > maxKeptEncodeBuf {
		s.encBuf = nil // a large batch's buffer is not kept
	}
	if _, err := seg.m.File.WriteAt(buf, off-seg.base); err != nil {
		return s.failWrite(seg.path, err)
	}
	return nil
}

// maxKeptEncodeBuf bounds the encode buffer kept between appends.
const maxKeptEncodeBuf = 1 << 20

// writableLocked reports whether appends are accepted and returns the
// store timestamp for the append. The disk is checked by retention and
// before each new segment (retention.go), never per message. Caller holds
// s.mu.
func (s *Store) writableLocked() (ts int64, ok bool) {
	if s.closed || s.failure.Load() != nil || s.role.Load() != int32(RoleMaster) {
		return 0, false
	}
	if s.diskFull.Load() {
		s.refuseFullLocked()
		return 0, false
	}
	return s.storeTimestamp(), true
}

// reserve returns the segment that will hold size bytes at s.writePos,
// rolling to a new segment (after a blank filler) when the record plus a
// minimal filler does not fit in the active one. On error nothing changed.
// Caller holds s.mu.
func (s *Store) reserve(size int) (*mmapFile, error) {
	if s.active == nil || s.writePos >= s.active.base+s.segSize {
		// No segment yet, or the last one ended exactly (recovery can end
		// the log at a segment boundary with no successor on disk).
		seg, err := s.newSegment(s.writePos)
		if err != nil {
			return nil, err
		}
		s.active = seg
	}
	seg := s.active
	rem := seg.base + s.segSize - s.writePos
	if int64(size)+wire.BlankSize <= rem {
		s.awaitWarm(s.writePos + int64(size))
		return seg, nil
	}
	s.awaitWarm(seg.base + s.segSize) // the blank filler
	next, err := s.newSegment(seg.base + s.segSize)
	if err != nil {
		return nil, err
	}
	// rem < BlankSize only happens for foreign data; readers skip a tail
	// too short for a header.
	if rem >= wire.BlankSize {
		wire.EncodeBlank(seg.data[s.writePos-seg.base:], int(rem))
	}
	s.writePos = next.base
	s.active = next
	return next, nil
}

// queueCounter returns the next-queue-offset counter of (topic, qid),
// creating it at 0. Caller holds s.mu.
func (s *Store) queueCounter(topic string, qid int32) *int64 {
	if p := s.queueOffsets[queueKey{topic, qid}]; p != nil {
		return p
	}
	// Own the key: Topic may live in a buffer the caller reuses.
	return s.newCounter(strings.Clone(topic), qid)
}

// queueCounterBytes is queueCounter for a topic read from a record (the
// map index with the conversion does not allocate). Caller holds s.mu.
func (s *Store) queueCounterBytes(topic []byte, qid int32) *int64 {
	if p := s.queueOffsets[queueKey{string(topic), qid}]; p != nil {
		return p
	}
	return s.newCounter(string(topic), qid)
}

// storeTimestamp returns the store time for a new record, never earlier
// than the previous one so that OffsetByTime can binary-search. Caller
// holds s.mu.
func (s *Store) storeTimestamp() int64 {
	ts := s.cfg.Now().UnixMilli()
	if ts < s.lastStoreTS {
		ts = s.lastStoreTS
	}
	s.lastStoreTS = ts
	return ts
}

// newSegment creates the segment at base if the disk has room for it
// below the append limit (retention.go). A failed directory fsync fails
// the store; running out of space refuses appends until usage drops.
// Caller holds s.mu.
func (s *Store) newSegment(base int64) (*mmapFile, error) {
	if !s.checkDiskLocked(s.segSize) {
		s.refuseFullLocked()
		return nil, ErrDiskFull
	}
	seg, err := s.clog.createSegment(base, s.syncDir)
	var dse *dirSyncError
	switch {
	case errors.As(err, &dse):
		return nil, s.fail(dse.dir, dse.err)
	case errors.Is(err, unix.ENOSPC):
		s.setDiskFullLocked("[DISK_FULL] no space left for a new commitlog segment, so mark disk full", err)
		s.refuseFullLocked()
		return nil, fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return seg, err
}

// dirSyncError is a failed fsync of the commit-log directory.
type dirSyncError struct {
	dir string
	err error
}

func (e *dirSyncError) Error() string { return e.err.Error() }
func (e *dirSyncError) Unwrap() error { return e.err }

// logAppendError logs a failed append, at most once per
// appendErrorLogInterval with the number of failures not logged since:
// a refusing store sees every send fail the same way.
func (s *Store) logAppendError(err error) {
	if errors.Is(err, ErrDiskFull) || errors.Is(err, ErrFailed) {
		return // logged once when the state began
	}
	now := time.Now().UnixNano()
	last := s.appendErrLast.Load()
	if now-last < int64(appendErrorLogInterval) || !s.appendErrLast.CompareAndSwap(last, now) {
		s.appendErrSuppressed.Add(1)
		return
	}
	tag := "[APPEND]"
	if errors.Is(err, unix.ENOSPC) {
		tag = "[DISK_FULL]"
	}
	s.log.Error(tag+" cannot create commitlog segment", "err", err, "suppressedSinceLastLog", s.appendErrSuppressed.Swap(0))
}

// dispatchInline runs a dispatch pass on the caller's goroutine unless one
// is running, and reports whether the caller's record is dispatched (or
// left to Close's final pass). Waking the dispatcher goroutine instead
// costs, per append, a second thread's futex wake-up, spin and sleep: for
// one synchronous producer that is 1.5–2 context switches per message, more
// CPU than the pass. A running pass (or a truncation holding dispMu) may
// have read its end before this record: then the caller wakes the
// dispatcher, whose token makes it look again.
func (s *Store) dispatchInline() bool {
	if !s.dispMu.TryLock() {
		return false
	}
	defer s.dispMu.Unlock()
	select {
	case <-s.stop:
		// Closing: Close's final pass runs after this one, or already ran
		// and the record is left to recovery as an undispatched append.
		return true
	default:
	}
	s.dispatchAvailableLocked()
	return true
}

// wakeDispatcher nudges the dispatcher (and the prefaulter) without
// blocking; it runs after every append.
func (s *Store) wakeDispatcher() {
	s.wakePrefault()
	select {
	case s.dispatchWake <- struct{}{}:
	default:
	}
}

// ErrNotFound is returned by ReadRecord for an offset that holds no
// retained record.
var ErrNotFound = errors.New("store: no record at offset")

// ReadRecord appends the record stored at phyOffset to dst.
func (s *Store) ReadRecord(phyOffset int64, dst []byte) ([]byte, error) {
	end := s.maxPhy.Load()
	if phyOffset < 0 || phyOffset >= end {
		return dst, fmt.Errorf("read record at %d: %w (log ends at %d)", phyOffset, ErrNotFound, end)
	}
	seg := s.clog.acquire(phyOffset)
	if seg == nil {
		return dst, fmt.Errorf("read record at %d: %w (segment removed)", phyOffset, ErrNotFound)
	}
	defer seg.release()
	// Never look past the published end: the appender may be writing there.
	limit := min(end-seg.base, s.segSize)
	b := seg.data[phyOffset-seg.base : limit]
	n, err := wire.CheckRecord(b)
	if err != nil {
		// A record that names this offset as its own but fails its checks
		// is damage; anything else is just not a record start.
		if v := wire.RecordView(b); errors.Is(err, wire.ErrCorrupt) && v.Magic() == wire.MagicMessage && v.PhysicalOffset() == phyOffset &&
			v.TotalSize() >= wire.MinRecordSize && int64(v.TotalSize()) <= int64(len(b)) {
			s.readCorrupt(phyOffset, b[:v.TotalSize()], err)
		}
		return dst, fmt.Errorf("read record at %d: %w: %w", phyOffset, ErrNotFound, err)
	}
	if got := wire.RecordView(b).PhysicalOffset(); got != phyOffset {
		return dst, fmt.Errorf("read record at %d: %w: record claims offset %d", phyOffset, ErrNotFound, got)
	}
	return append(dst, b[:n]...), nil
}
