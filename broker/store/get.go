package store

import (
	"fmt"
	"slices"
	"time"

	"github.com/mqops/mqops/wire"
)

// GetStatus is the outcome of GetMessages (Java GetMessageStatus).
type GetStatus int

const (
	Found GetStatus = iota
	NoMatchedMessage
	MessageWasRemoving
	OffsetFoundNull
	OffsetOverflowBadly
	OffsetOverflowOne
	OffsetTooSmall
	NoMatchedLogicQueue
	NoMessageInQueue
)

var getStatusNames = [...]string{"FOUND", "NO_MATCHED_MESSAGE", "MESSAGE_WAS_REMOVING",
	"OFFSET_FOUND_NULL", "OFFSET_OVERFLOW_BADLY", "OFFSET_OVERFLOW_ONE", "OFFSET_TOO_SMALL",
	"NO_MATCHED_LOGIC_QUEUE", "NO_MESSAGE_IN_QUEUE"}

// String returns the Java status name (used as the pull response remark).
func (s GetStatus) String() string {
	if s >= 0 && int(s) < len(getStatusNames) {
		return getStatusNames[s]
	}
	return fmt.Sprintf("GetStatus(%d)", int(s))
}

// GetResult is the outcome of GetMessages. Body is dst with the raw
// records appended back to back.
type GetResult struct {
	Status          GetStatus
	NextBeginOffset int64
	MinOffset       int64
	MaxOffset       int64
	MsgCount        int
	Body            []byte
}

// minScanBytes is the least consume-queue data one GetMessages call scans
// (Java maxFilterMessageCount = max(16000, maxMsgNums × 20)).
const minScanBytes = 16000

// GetMessages appends to dst the stored records of (topic, queueID) from
// queue offset offset: at most maxMsgs records and, after the first one,
// no more than maxBytes bytes (maxBytes ≤ 0: no byte limit). match filters
// on the consume-queue tags code, then matchRecord on the record bytes;
// nil matches everything. Status and NextBeginOffset follow Java's
// DefaultMessageStore.getMessage (apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/DefaultMessageStore.java):
// filtered units are skipped over, so NextBeginOffset is offset plus
// the units scanned. One call scans at most max(16000 B, maxMsgs×20 B) of
// one consume-queue file.
func (s *Store) GetMessages(topic string, queueID int32, offset int64, maxMsgs, maxBytes int,
	match func(tagsCode int64) bool, matchRecord func(rec []byte) bool, dst []byte) GetResult {
	res := GetResult{Body: dst}
	cq := s.cqs.get(topic, queueID)
	if cq == nil {
		res.Status = NoMatchedLogicQueue
		return res
	}
	minOff, maxOff := cq.min.Load(), cq.max.Load()
	res.MinOffset, res.MaxOffset = minOff, maxOff
	switch {
	case maxOff == 0:
		res.Status = NoMessageInQueue
		return res
	case offset < minOff:
		res.Status, res.NextBeginOffset = OffsetTooSmall, minOff
		return res
	case offset == maxOff:
		res.Status, res.NextBeginOffset = OffsetOverflowOne, offset
		return res
	case offset > maxOff:
		res.Status, res.NextBeginOffset = OffsetOverflowBadly, maxOff
		return res
	}
	f := cq.acquireFile(offset)
	if f == nil {
		res.Status = OffsetFoundNull
		res.NextBeginOffset = offset - offset%cq.upf + cq.upf
		return res
	}
	defer f.release()

	scan := int64(max(minScanBytes, maxMsgs*cqUnitSize) / cqUnitSize)
	end := min(maxOff, f.base+cq.upf, offset+scan)
	// Grow dst once for the records the first maxMsgs units point at
	// instead of doubling it record by record: a POP receive of 32 1 KiB
	// messages passes nil and spent a tenth of its CPU in growslice.
	want := 0
	for q := offset; q < min(end, offset+int64(maxMsgs)); q++ {
		u := readUnit(f.data[(q-f.base)*cqUnitSize:])
		if !u.real() {
			continue
		}
		if want > 0 && maxBytes > 0 && want+int(u.size) > maxBytes {
			break
		}
		want += int(u.size)
	}
	res.Body = slices.Grow(res.Body, want)
	var r logReader
	defer r.close()
	status := NoMatchedMessage
	bytesOut := 0
	q := offset
	for ; q < end; q++ {
		u := readUnit(f.data[(q-f.base)*cqUnitSize:])
		// The first message is always taken; after it the batch limits apply.
		if res.MsgCount > 0 && (res.MsgCount >= maxMsgs || (maxBytes > 0 && u.real() && bytesOut+int(u.size) > maxBytes)) {
			break
		}
		if match != nil && u.real() && !match(u.tagsCode) {
			if res.MsgCount == 0 {
				status = NoMatchedMessage
			}
			continue
		}
		rec := r.read(s, cq, q, u)
		if rec == nil {
			if r.damaged {
				// Neither served nor skipped: the consumer comes back here
				// once the queue is rebuilt.
				if res.MsgCount == 0 {
					status = OffsetFoundNull
				}
				break
			}
			if res.MsgCount == 0 {
				status = MessageWasRemoving
			}
			continue
		}
		if matchRecord != nil && !matchRecord(rec) {
			if res.MsgCount == 0 {
				status = NoMatchedMessage
			}
			continue
		}
		res.Body = append(res.Body, rec...)
		res.MsgCount++
		bytesOut += len(rec)
		status = Found
	}
	res.Status = status
	res.NextBeginOffset = q
	return res
}

// logReader reads records for consecutive units, keeping the current
// segment acquired between them.
type logReader struct {
	seg *mmapFile
	// damaged: the last read found a unit that does not match the record
	// it points at (a rebuild of its queue is scheduled).
	damaged bool
}

// read returns the record unit u (unit q of cq) points at, aliasing the
// mapping, or nil if the unit is a filler, its data is gone, or it is
// damaged (r.damaged). The slice is valid until the next read or close.
func (r *logReader) read(s *Store, cq *consumeQueue, q int64, u cqUnit) []byte {
	r.damaged = false
	if !u.real() {
		if u.isZero() { // never written below max: damage
			r.reject(s, cq, q, u)
		}
		return nil
	}
	if u.phys+int64(u.size) > s.maxPhy.Load() {
		r.reject(s, cq, q, u)
		return nil
	}
	if r.seg == nil || u.phys < r.seg.base || u.phys >= r.seg.base+s.segSize {
		r.close()
		if r.seg = s.clog.acquire(u.phys); r.seg == nil {
			return nil
		}
	}
	off := u.phys - r.seg.base
	if off+int64(u.size) > s.segSize {
		r.reject(s, cq, q, u)
		return nil
	}
	rec := r.seg.data[off : off+int64(u.size)]
	if s.damaged.Load() != nil && s.damagedEnd(u.phys) != u.phys {
		// Its record was quarantined (corrupt.go): the message is lost, the
		// unit is right. Skip it rather than take the unit for damage.
		s.skippedReads.Add(1)
		return nil
	}
	if !unitMatches(rec, cq, q, u) {
		r.reject(s, cq, q, u)
		return nil
	}
	if !s.readable(u.phys, rec) {
		return nil
	}
	return rec
}

// reject marks the last read damaged and reports the unit.
func (r *logReader) reject(s *Store, cq *consumeQueue, q int64, u cqUnit) {
	r.damaged = true
	s.unitDamaged(cq, q, u)
}

func (r *logReader) close() {
	if r.seg != nil {
		r.seg.release()
		r.seg = nil
	}
}

// storeTimeAt returns the store timestamp of unit q's record.
func (s *Store) storeTimeAt(cq *consumeQueue, q int64, r *logReader) (int64, bool) {
	u, ok := cq.unitAt(q)
	if !ok {
		return 0, false
	}
	rec := r.read(s, cq, q, u)
	if rec == nil {
		return 0, false
	}
	return wire.RecordView(rec).StoreTimestamp(), true
}

// StoreTimeAt returns the store timestamp of the message at queue offset
// offset of (topic, queueID).
func (s *Store) StoreTimeAt(topic string, queueID int32, offset int64) (int64, bool) {
	cq := s.cqs.get(topic, queueID)
	if cq == nil || offset < cq.min.Load() || offset >= cq.max.Load() {
		return 0, false
	}
	var r logReader
	defer r.close()
	return s.storeTimeAt(cq, offset, &r)
}

// OffsetByTime returns the queue offset whose store time is nearest ts
// (SEARCH_OFFSET_BY_TIMESTAMP, 29; Java's ConsumeQueue.getOffsetInQueueByTime,
// apache/rocketmq store/src/main/java/org/apache/rocketmq/store/ConsumeQueue.java):
// the first offset stored exactly at ts if
// any; otherwise the nearer of the two neighbours (the earlier one on a
// tie); the first retained offset if every message is later; the last
// message's offset if every message is earlier. 0 for a missing queue, the
// min offset for a queue without retained messages. Store timestamps never
// decrease along a queue, so a binary search applies.
func (s *Store) OffsetByTime(topic string, queueID int32, ts int64) int64 {
	cq := s.cqs.get(topic, queueID)
	if cq == nil {
		return 0
	}
	lo, hi := cq.min.Load(), cq.max.Load()-1
	if hi < lo {
		return lo
	}
	var r logReader
	defer r.close()
	// at treats an unreadable unit (data removed meanwhile) as older than
	// anything, so the search moves past it.
	at := func(q int64) int64 {
		t, ok := s.storeTimeAt(cq, q, &r)
		if !ok {
			return -1 << 63
		}
		return t
	}
	if at(lo) >= ts {
		return lo
	}
	if at(hi) < ts {
		return hi
	}
	// Invariant: at(lo) < ts ≤ at(hi).
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if at(mid) < ts {
			lo = mid
		} else {
			hi = mid
		}
	}
	th, tl := at(hi), at(lo)
	if th == ts || th-ts < ts-tl {
		return hi
	}
	return lo
}

// PhyOffsetAt returns the commit-log offset of the message at queue offset
// offset of (topic, queueID).
func (s *Store) PhyOffsetAt(topic string, queueID int32, offset int64) (int64, bool) {
	cq := s.cqs.get(topic, queueID)
	if cq == nil || offset < cq.min.Load() || offset >= cq.max.Load() {
		return 0, false
	}
	u, ok := cq.unitAt(offset)
	if !ok {
		return 0, false
	}
	return u.phys, true
}

// Unit is a consume-queue entry: where a message lives in the commit log
// and its tags code (the delivery time, for scheduled messages).
type Unit struct {
	Phys     int64
	Size     int32
	TagsCode int64
}

// UnitAt returns the consume-queue entry at offset of (topic, queueID); ok
// is false outside [MinOffset, MaxOffset) or for a filler entry. An entry
// that does not match the record it points at is rebuilt from the log
// first (waiting up to unitRepairWait), never returned.
func (s *Store) UnitAt(topic string, queueID int32, offset int64) (Unit, bool) {
	cq := s.cqs.get(topic, queueID)
	if cq == nil || offset < cq.min.Load() || offset >= cq.max.Load() {
		return Unit{}, false
	}
	u, ok := s.checkedUnit(cq, offset)
	if !ok || !u.real() {
		return Unit{}, false
	}
	return Unit{Phys: u.phys, Size: u.size, TagsCode: u.tagsCode}, true
}

// unitRepairWait bounds how long UnitAt waits for a damaged unit's queue
// to be rebuilt.
const unitRepairWait = 10 * time.Second

// checkedUnit returns unit q of cq if it is a filler or matches its record;
// a damaged one is reported, and read again once its queue is rebuilt.
func (s *Store) checkedUnit(cq *consumeQueue, q int64) (cqUnit, bool) {
	for retried := false; ; retried = true {
		u, ok := cq.unitAt(q)
		if !ok {
			return u, false
		}
		if s.unitIntact(cq, q, s.complete.Load(), s.MinPhyOffset()) {
			return u, true
		}
		if retried {
			return u, false
		}
		r := s.unitDamaged(cq, q, u)
		t := time.NewTimer(unitRepairWait)
		select {
		case <-r.done:
			t.Stop()
		case <-s.stop:
			t.Stop()
			return u, false
		case <-t.C:
			return u, false
		}
	}
}
