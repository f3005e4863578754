package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/mqops/mqops/wire"
	"golang.org/x/sys/unix"
)

// maxQueueOffset bounds queue offsets read from records so that file
// positions (offset × 20) cannot overflow.
const maxQueueOffset = 1 << 50

// DefaultTagsCode is the consume-queue tags code of a record: Java's
// String.hashCode of its TAGS property, or 0 without tags (Java's
// MessageExtBrokerInner.tagsString2tagsCode, apache/rocketmq
// rocketmq-all-4.9.8 store/src/main/java/org/apache/rocketmq/store/MessageExtBrokerInner.java).
func DefaultTagsCode(rec wire.RecordView) int64 {
	if tags := wire.PropertyValue(rec.Properties(), wire.PropTags); len(tags) > 0 {
		return wire.TagsHashCode(tags)
	}
	return 0
}

// validTopic reports whether a topic can name a consume-queue directory.
func validTopic[T string | []byte](t T) bool { return wire.StorableTopic(t) }

// dispatchLoop follows the commit log, woken after each append and polling
// as a safety net.
func (s *Store) dispatchLoop() {
	defer s.wg.Done()
	t := time.NewTicker(dispatchPoll)
	defer t.Stop()
	for {
		s.dispatchAvailable()
		select {
		case <-s.stop:
			return
		case <-s.dispatchWake:
		case <-t.C:
		}
	}
}

// dispatchAvailable writes consume-queue units for every record in
// [disp.next, maxPhy). One caller at a time: the dispatcher goroutine, or
// Open/Close while it is not running.
//
// A queue whose unit cannot be written (its next file cannot be created:
// disk full) is blocked at that record and skipped until a retry succeeds;
// the other queues go on. dispatched, what the checkpoint and retention
// rely on, stays at the first record of a blocked queue so that every
// record below it has its unit. A record that cannot be read stops
// dispatching there rather than skipping data.
//
// It stops at the complete-record boundary (a slave's log may end inside
// a record, replica.go) and, with the confirm gate on, at the last record
// ending at or below the confirm offset.
func (s *Store) dispatchAvailable() {
	s.dispMu.Lock()
	defer s.dispMu.Unlock()
	end := s.complete.Load()
	gated := false
	if s.confirmGate.Load() {
		if c := s.confirm.Load(); c < end {
			end, gated = c, true
		}
	}
	if len(s.disp.blocked) > 0 {
		s.retryBlocked()
	}
	if end <= s.disp.next {
		return
	}
	pos, err := s.eachRecord(s.disp.next, end, nil, func(v wire.RecordView, pos int64) bool {
		s.dispatchRecord(v, pos)
		s.advanceDispatch(pos + int64(len(v)))
		return true
	})
	if gated && errors.Is(err, errPastEnd) {
		// The record crossing the confirm offset waits for it to move.
		return
	}
	s.advanceDispatch(pos) // past trailing blank fillers
	if err != nil {
		s.reportStall(pos, err)
	}
}

// errPastEnd: a record that does not end below the walk's end.
var errPastEnd = errors.New("record extends past the end")

// eachRecord calls fn for every message record in [from, to) in log order,
// skipping blank fillers, until fn returns false or stop is closed. It
// returns where it stopped: to, the record fn refused, or the position of
// a record that cannot be read (with the error).
func (s *Store) eachRecord(from, to int64, stop <-chan struct{}, fn func(v wire.RecordView, pos int64) bool) (int64, error) {
	pos := from
	var seg *mmapFile
	defer func() {
		if seg != nil {
			seg.release()
		}
	}()
	for pos < to {
		if e := s.damagedEnd(pos); e != pos { // quarantined (corrupt.go): no record to visit
			pos = min(e, to)
			continue
		}
		if seg == nil || pos >= seg.base+s.segSize {
			if seg != nil {
				seg.release()
			}
			select {
			case <-stop:
				return pos, ErrClosed
			default:
			}
			if seg = s.clog.acquire(pos); seg == nil {
				return pos, fmt.Errorf("commitlog at %d: segment missing", pos)
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
			return pos, fmt.Errorf("commitlog at %d: bad magic %#x: %w", pos, uint32(v.Magic()), wire.ErrCorrupt)
		}
		size := int64(v.TotalSize())
		if size < wire.MinRecordSize || size > s.segSize-off {
			return pos, fmt.Errorf("commitlog at %d: bad record size %d: %w", pos, size, wire.ErrCorrupt)
		}
		if pos+size > to {
			return pos, fmt.Errorf("commitlog at %d: record of %d bytes, walk ends at %d: %w: %w", pos, size, to, errPastEnd, wire.ErrCorrupt)
		}
		if !fn(v[:size], pos) {
			return pos, nil
		}
		pos += size
	}
	return pos, nil
}

// dispatchRecord writes the units of the record at pos, in its own queue
// and with Config.LightQueues in the light queues it names (lmq.go),
// except in blocked queues, and indexes the record. Records without a
// queue offset get neither.
func (s *Store) dispatchRecord(v wire.RecordView, pos int64) {
	if !consumesQueueOffset(v.SysFlag()) {
		return
	}
	topic, qid, qoff := v.Topic(), v.QueueID(), v.QueueOffset()
	if !validTopic(topic) || qoff < 0 || qoff > maxQueueOffset {
		s.log.Error("[DISPATCH] skipping record with unusable topic or queue offset",
			"offset", pos, "topic", string(bytes.ToValidUTF8(topic, nil)), "queueId", qid, "queueOffset", qoff)
		return
	}
	u := s.unitOf(v, pos)
	s.dispatchUnit(s.getOrCreateCQ(topic, qid), pos, qoff, u)
	if s.cfg.LightQueues {
		s.dispatchLMQ(v, pos, u)
	}
	// The index comes after the units and their wake-ups: it only serves
	// queries, and its failures are logged, never returned (index_service.go).
	s.indexRecord(v, pos)
}

// dispatchUnit writes unit q of cq for the record at pos, unless cq is
// blocked (then it only notes the offset), blocking cq when the unit
// cannot be written.
func (s *Store) dispatchUnit(cq *consumeQueue, pos, q int64, u cqUnit) {
	if b := s.blockedQueue(cq); b != nil {
		b.nextQ = q + 1
	} else if err := s.writeUnit(cq, q, u); err != nil {
		s.blockQueue(cq, pos, q, err)
	}
}

// unitOf returns the consume-queue unit of the record v at pos.
func (s *Store) unitOf(v wire.RecordView, pos int64) cqUnit {
	var code int64
	if s.cfg.TagsCode != nil {
		code = s.cfg.TagsCode(v)
	} else {
		code = DefaultTagsCode(v)
	}
	return cqUnit{phys: pos, size: int32(len(v)), tagsCode: code}
}

// writeUnit writes unit q of cq and notifies the OnDispatch callback.
func (s *Store) writeUnit(cq *consumeQueue, q int64, u cqUnit) error {
	gap, err := cq.put(q, u)
	if err != nil {
		return err
	}
	if gap {
		s.log.Warn("[DISPATCH] queue offset gap in consume queue", "topic", cq.topic, "queueId", cq.qid, "queueOffset", q)
	}
	if fn := s.onDispatch.Load(); fn != nil {
		(*fn)(cq.topic, cq.qid, q, u.tagsCode)
	}
	return nil
}

// reportStall logs a dispatch stop once per position.
func (s *Store) reportStall(pos int64, err error) {
	if s.dispatchStall == pos {
		return
	}
	s.dispatchStall = pos
	s.log.Error("[DISPATCH] dispatch stopped", "offset", pos, "err", err)
}

// dispatchState is the dispatcher's own bookkeeping (dispatcher goroutine,
// or Open/Close while it is not running).
type dispatchState struct {
	// next is the scan cursor: every record below it has its unit written
	// or belongs to a blocked queue. dispatched = min(next, low).
	next    int64
	blocked map[*consumeQueue]*blockedQueue
	low     int64     // smallest blocked from, while any queue is blocked
	retryAt time.Time // next retry of the blocked queues
	warnAt  time.Time // next "still blocked" reminder
}

// blockedQueue is a queue whose units stopped being written.
type blockedQueue struct {
	from   int64 // first record without its unit
	firstQ int64 // its queue offset: the unit whose file could not be created
	nextQ  int64 // queue offset after the last skipped record
	since  time.Time
	err    error
}

const (
	blockedRetryInterval = time.Second
	blockedWarnInterval  = time.Minute
)

// blockedQueue returns cq's blocked state, nil when it is not blocked.
func (s *Store) blockedQueue(cq *consumeQueue) *blockedQueue {
	if len(s.disp.blocked) == 0 {
		return nil // the common case, without hashing
	}
	return s.disp.blocked[cq]
}

// advanceDispatch moves the scan cursor to pos and publishes dispatched.
func (s *Store) advanceDispatch(pos int64) {
	s.disp.next = pos
	if len(s.disp.blocked) == 0 {
		s.dispatched.Store(pos)
		return
	}
	s.dispatched.Store(min(pos, s.disp.low))
}

// blockQueue stops writing cq's units from the record at pos on.
func (s *Store) blockQueue(cq *consumeQueue, pos, qoff int64, err error) {
	if s.disp.blocked == nil {
		s.disp.blocked = make(map[*consumeQueue]*blockedQueue)
	}
	if len(s.disp.blocked) == 0 {
		s.disp.low = pos
		s.disp.retryAt = time.Now().Add(blockedRetryInterval)
		s.disp.warnAt = time.Now().Add(blockedWarnInterval)
	}
	s.disp.blocked[cq] = &blockedQueue{from: pos, firstQ: qoff, nextQ: qoff + 1, since: time.Now(), err: err}
	s.disp.low = min(s.disp.low, pos)
	msg := "[DISPATCH] consume queue blocked: cannot write its unit; other queues go on, retrying every second"
	if errors.Is(err, unix.ENOSPC) {
		msg = "[DISK_FULL] consume queue blocked: cannot create its file; other queues go on, retrying every second"
	}
	s.log.Error(msg, "topic", cq.topic, "queueId", cq.qid, "queueOffset", qoff, "offset", pos, "err", err)
}

// retryBlocked writes the missing units of the blocked queues whose file
// can be created again, walking the log from their first missing record
// to the scan cursor, at most once a second.
func (s *Store) retryBlocked() {
	now := time.Now()
	if now.Before(s.disp.retryAt) {
		return
	}
	s.disp.retryAt = now.Add(blockedRetryInterval)
	ready := make(map[*consumeQueue]*blockedQueue)
	from := s.disp.next
	for cq, b := range s.disp.blocked {
		// The file that failed is tried first: no log walk while the
		// disk is still full.
		f, err := cq.fileForWrite(b.firstQ)
		if err != nil {
			b.err = err
			continue
		}
		if f != nil {
			f.release()
		}
		ready[cq] = b
		from = min(from, b.from)
	}
	if len(ready) > 0 {
		failed := make(map[*consumeQueue]bool)
		written := make(map[*consumeQueue]int)
		_, err := s.eachRecord(from, s.disp.next, s.stop, func(v wire.RecordView, pos int64) bool {
			s.eachQueueOf(v, func(topic []byte, qid int32, qoff int64) bool {
				cq := s.cqs.getBytes(topic, qid)
				b := ready[cq]
				if b == nil || failed[cq] || pos < b.from {
					return true
				}
				if err := s.writeUnit(cq, qoff, s.unitOf(v, pos)); err != nil {
					b.from, b.firstQ, b.err = pos, qoff, err
					failed[cq] = true
				} else {
					written[cq]++
				}
				return true
			})
			return true
		})
		for cq, b := range ready {
			if err != nil || failed[cq] {
				continue
			}
			delete(s.disp.blocked, cq)
			s.log.Warn("[DISPATCH] consume queue resumed", "topic", cq.topic, "queueId", cq.qid,
				"units", written[cq], "blockedFor", now.Sub(b.since).Round(time.Millisecond))
		}
	}
	s.disp.low = s.disp.next
	var oldest *consumeQueue
	for cq, b := range s.disp.blocked {
		if b.from <= s.disp.low {
			s.disp.low, oldest = b.from, cq
		}
	}
	s.advanceDispatch(s.disp.next)
	if oldest != nil && !now.Before(s.disp.warnAt) {
		s.disp.warnAt = now.Add(blockedWarnInterval)
		b := s.disp.blocked[oldest]
		s.log.Error("[DISPATCH] consume queues still blocked", "queues", len(s.disp.blocked), "behindBytes", s.DispatchBehind(),
			"oldestTopic", oldest.topic, "oldestQueueId", oldest.qid, "since", b.since.Format(time.RFC3339), "err", b.err)
	}
}
