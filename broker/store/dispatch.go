package store

import (
	"bytes"
	"time"

	"github.com/mqops/mqops/wire"
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
// [dispatched, maxPhy). One caller at a time: the dispatcher goroutine, or
// Open/Close while it is not running.
//
// dispatched is advanced after each record's unit is written, so every
// record below it has its unit (the checkpoint relies on this). A record
// that cannot be read stops dispatching there rather than skipping data.
func (s *Store) dispatchAvailable() {
	end := s.maxPhy.Load()
	pos := s.dispatched.Load()
	var seg *mmapFile
	defer func() {
		if seg != nil {
			seg.release()
		}
	}()
	for pos < end {
		if e := s.damagedEnd(pos); e != pos { // quarantined by recovery: no record to dispatch
			pos = e
			s.dispatched.Store(pos)
			continue
		}
		if seg == nil || pos >= seg.base+s.segSize {
			if seg != nil {
				seg.release()
			}
			if seg = s.clog.acquire(pos); seg == nil {
				s.reportStall(pos, "segment missing", nil)
				return
			}
		}
		off := pos - seg.base
		if s.segSize-off < wire.BlankSize {
			pos = seg.base + s.segSize
			s.dispatched.Store(pos)
			continue
		}
		v := wire.RecordView(seg.data[off:])
		switch v.Magic() {
		case wire.MagicBlank:
			pos = seg.base + s.segSize
			s.dispatched.Store(pos)
			continue
		case wire.MagicMessage:
		default:
			s.reportStall(pos, "bad magic", nil)
			return
		}
		size := int64(v.TotalSize())
		if size < wire.MinRecordSize || size > s.segSize-off || pos+size > end {
			s.reportStall(pos, "bad record size", nil)
			return
		}
		if err := s.dispatchRecord(v[:size], pos); err != nil {
			s.reportStall(pos, "cannot write consume queue", err)
			return
		}
		pos += size
		s.dispatched.Store(pos)
	}
}

// dispatchRecord writes the unit of the record at pos and notifies the
// OnDispatch callback.
func (s *Store) dispatchRecord(v wire.RecordView, pos int64) error {
	sysFlag := v.SysFlag()
	if !consumesQueueOffset(sysFlag) {
		return nil
	}
	topic, qid, qoff := v.Topic(), v.QueueID(), v.QueueOffset()
	if !validTopic(topic) || qoff < 0 || qoff > maxQueueOffset {
		s.log.Error("[DISPATCH] skipping record with unusable topic or queue offset",
			"offset", pos, "topic", string(bytes.ToValidUTF8(topic, nil)), "queueId", qid, "queueOffset", qoff)
		return nil
	}
	var code int64
	if s.cfg.TagsCode != nil {
		code = s.cfg.TagsCode(v)
	} else {
		code = DefaultTagsCode(v)
	}
	cq := s.getOrCreateCQ(topic, qid)
	gap, err := cq.put(qoff, cqUnit{phys: pos, size: int32(len(v)), tagsCode: code})
	if err != nil {
		return err
	}
	if gap {
		s.log.Warn("[DISPATCH] queue offset gap in consume queue", "topic", cq.topic, "queueId", qid, "queueOffset", qoff)
	}
	if fn := s.onDispatch.Load(); fn != nil {
		(*fn)(cq.topic, qid, qoff, code)
	}
	// The index comes after the unit and its wake-up: it only serves
	// queries, and its failures are logged, never returned (index_service.go).
	s.indexRecord(v, pos)
	return nil
}

// reportStall logs a dispatch stop once per position.
func (s *Store) reportStall(pos int64, reason string, err error) {
	if s.dispatchStall == pos {
		return
	}
	s.dispatchStall = pos
	s.log.Error("[DISPATCH] dispatch stopped", "offset", pos, "reason", reason, "err", err)
}
