package store

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/mqops/mqops/wire"
)

// Light message queues and multi-dispatch (RIP-28, Java 4.9.3+: apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/MultiDispatch.java,
// ConsumeQueue.java multiDispatchLmqQueue, and 5.x LmqDispatch.java).
//
// With Config.LightQueues a message whose property INNER_MULTI_DISPATCH
// lists light queues ("%LMQ%a,%LMQ%b") is stored once and dispatched into
// queue 0 of each of them besides its own queue. Put assigns each light
// queue's next offset under the append lock and writes the offsets into
// the stored record as INNER_MULTI_QUEUE_OFFSET (same order), so every
// later reader of the log (the dispatcher, recovery's re-dispatch, a
// rebuild, a slave) derives the same units from the record alone: a unit
// of a light queue is as reproducible as one of the record's own queue.
//
// Differences from Java, on purpose:
//   - only %LMQ% names are dispatched (Java 5 too; 4.9 also wrote into
//     ordinary topics under the message's queue id), and a list that is
//     not distinct valid %LMQ% names is refused, not stored half-dispatched;
//   - besides Java 5's exclusions (MixAll.topicAllowsLMQ: %RETRY%,
//     rmq_sys_, SCHEDULE_TOPIC_XXXX), records of %DLQ% and the
//     transaction half/op topics are not dispatched either: they copy a
//     message's properties without being a new delivery of it; nor are
//     records sent straight to a light queue, whose counter the list
//     could name twice;
//   - maxLmqConsumeQueueNum refuses the put that would create one light
//     queue too many (Java checks the count before the put, so it can
//     overshoot, and 4.9.8 compares the wrong status and never refuses);
//   - a batch carrying INNER_MULTI_DISPATCH is refused (Java ignores the
//     property on batches).

// ErrNotLMQ is returned by DeleteLMQ for a name without the %LMQ% prefix.
var ErrNotLMQ = errors.New("store: not a light message queue")

// multiDispatchTopic reports whether records of topic may be dispatched
// into light queues (see above). A record of a light queue itself (a
// send straight to %LMQ%x) is not: its own unit already is one.
func multiDispatchTopic[T ~string | ~[]byte](topic T) bool {
	t := string(topic) // compared only: no allocation
	return !wire.IsLMQ(t) && !strings.HasPrefix(t, "%RETRY%") && !strings.HasPrefix(t, "%DLQ%") && !strings.HasPrefix(t, "rmq_sys_") &&
		t != "SCHEDULE_TOPIC_XXXX" && t != "RMQ_SYS_TRANS_HALF_TOPIC" && t != "RMQ_SYS_TRANS_OP_HALF_TOPIC"
}

// dispatchProps returns the INNER_MULTI_DISPATCH and
// INNER_MULTI_QUEUE_OFFSET values of a properties string in one pass.
func dispatchProps(props []byte) (names, offs []byte) {
	for len(props) > 0 {
		k, v, rest, ok := wire.NextProperty(props)
		props = rest
		if !ok {
			continue
		}
		switch string(k) {
		case wire.PropInnerMultiDispatch:
			names = v
		case wire.PropInnerMultiQueueOffset:
			offs = v
		}
	}
	return names, offs
}

// nextItem splits the first MultiDispatchSep-separated item off list.
func nextItem(list []byte) (item, rest []byte) {
	if i := bytes.IndexByte(list, wire.MultiDispatchSep); i >= 0 {
		return list[:i], list[i+1:]
	}
	return list, nil
}

// validLMQ reports whether name may be a light queue: the %LMQ% prefix and
// a topic name the broker accepts (it becomes a consume-queue directory).
func validLMQ(name []byte) bool {
	return len(name) > len(wire.LMQPrefix) && wire.IsLMQ(name) && wire.CheckTopic(name) == nil
}

// lmqTargets returns the light queues and offsets record v is dispatched
// into, or ok false when its lists are malformed (different lengths, a
// name that is no light queue, an offset that is no queue offset). Both
// empty: it is not a multi-dispatch record. Records the dispatcher skips
// (no queue offset, an excluded topic) have none.
func lmqTargets(v wire.RecordView) (names, offs []byte, ok bool) {
	if !consumesQueueOffset(v.SysFlag()) || !multiDispatchTopic(v.Topic()) {
		return nil, nil, true
	}
	names, offs = dispatchProps(v.Properties())
	if len(names) == 0 || len(offs) == 0 {
		return nil, nil, true
	}
	for n, o := names, offs; len(n) > 0 || len(o) > 0; {
		var name, off []byte
		name, n = nextItem(n)
		off, o = nextItem(o)
		if q, isNum := wire.ParseInt(off); !isNum || q < 0 || q > maxQueueOffset || !validLMQ(name) {
			return nil, nil, false
		}
	}
	return names, offs, true
}

// eachLMQ calls fn with every light queue and offset of lists lmqTargets
// accepted, stopping when fn returns false.
func eachLMQ(names, offs []byte, fn func(name []byte, q int64) bool) {
	for len(names) > 0 {
		var name, off []byte
		name, names = nextItem(names)
		off, offs = nextItem(offs)
		q, _ := wire.ParseInt(off)
		if !fn(name, q) {
			return
		}
	}
}

// recordLMQUnit reports whether record v was dispatched into the light
// queue topic at offset q: what a unit of a light queue is checked against
// (unitMatches), since the record names its own topic and offset.
func recordLMQUnit(v wire.RecordView, topic string, q int64) bool {
	names, offs, ok := lmqTargets(v)
	if !ok {
		return false
	}
	found := false
	eachLMQ(names, offs, func(name []byte, off int64) bool {
		found = string(name) == topic && off == q
		return !found
	})
	return found
}

// dispatchLMQ writes record v's units into the light queues it names; u is
// its unit. Only with Config.LightQueues: a record stored without it may
// carry a client's own INNER_MULTI_QUEUE_OFFSET.
func (s *Store) dispatchLMQ(v wire.RecordView, pos int64, u cqUnit) {
	names, offs, ok := lmqTargets(v)
	if !ok {
		s.log.Error("[DISPATCH] skipping malformed multi-dispatch lists", "offset", pos,
			"queues", string(bytes.ToValidUTF8(names, nil)), "queueOffsets", string(bytes.ToValidUTF8(offs, nil)))
		return
	}
	eachLMQ(names, offs, func(name []byte, q int64) bool {
		s.dispatchUnit(s.getOrCreateCQ(name, wire.LMQQueueID), pos, q, u)
		return true
	})
}

// eachQueueOf calls fn with every queue record v has a unit in and the
// unit's offset: its own queue, and with Config.LightQueues its light
// queues. fn returning false stops.
func (s *Store) eachQueueOf(v wire.RecordView, fn func(topic []byte, qid int32, q int64) bool) {
	if !consumesQueueOffset(v.SysFlag()) || !fn(v.Topic(), v.QueueID(), v.QueueOffset()) || !s.cfg.LightQueues {
		return
	}
	if names, offs, ok := lmqTargets(v); ok {
		eachLMQ(names, offs, func(name []byte, q int64) bool { return fn(name, wire.LMQQueueID, q) })
	}
}

// multiPut is a Put's multi-dispatch state, pooled: the target names
// (aliasing the message's properties), their counters and the properties
// rebuilt with the assigned offsets.
type multiPut struct {
	names [][]byte
	ctrs  []*int64
	props []byte
	seen  map[string]struct{}
}

var multiPutPool = sync.Pool{New: func() any { return new(multiPut) }}

// maxScanDistinct is the list length up to which duplicates are found by
// comparing pairs; longer lists use a set.
const maxScanDistinct = 32

// prepare splits list, the message's INNER_MULTI_DISPATCH, into distinct
// light queue names and copies props without a stale
// INNER_MULTI_QUEUE_OFFSET. It reports false for a list that is not
// distinct valid %LMQ% names.
func (mp *multiPut) prepare(props, list []byte) bool {
	mp.names, mp.ctrs = mp.names[:0], mp.ctrs[:0]
	for len(list) > 0 {
		var name []byte
		name, list = nextItem(list)
		if !validLMQ(name) {
			return false
		}
		mp.names = append(mp.names, name)
	}
	if len(mp.names) == 0 {
		return false
	}
	if len(mp.names) <= maxScanDistinct {
		for i, a := range mp.names {
			for _, b := range mp.names[:i] {
				if bytes.Equal(a, b) {
					return false
				}
			}
		}
	} else {
		if mp.seen == nil {
			mp.seen = make(map[string]struct{}, len(mp.names))
		}
		clear(mp.seen)
		for _, n := range mp.names {
			if _, dup := mp.seen[string(n)]; dup {
				return false
			}
			mp.seen[string(n)] = struct{}{}
		}
	}
	mp.props = wire.RemoveProperty(mp.props[:0], props, wire.PropInnerMultiQueueOffset)
	return true
}

// release returns mp to the pool without keeping the message's bytes.
func (mp *multiPut) release() {
	clear(mp.names)
	clear(mp.ctrs)
	multiPutPool.Put(mp)
}

// assignLocked looks up the targets' next offsets, refuses a put that would
// create more light queues than Config.MaxLightQueues, and appends
// INNER_MULTI_QUEUE_OFFSET to mp.props. Caller holds s.mu.
func (s *Store) assignLocked(mp *multiPut) PutStatus {
	fresh := 0
	for _, n := range mp.names {
		c := s.queueOffsets[queueKey{string(n), wire.LMQQueueID}]
		if c == nil {
			fresh++
		}
		mp.ctrs = append(mp.ctrs, c)
	}
	if fresh > 0 && s.lmqs+fresh > s.cfg.MaxLightQueues {
		return LMQNumExceeded
	}
	p := mp.props
	if len(p) > 0 && p[len(p)-1] != wire.PropertySep {
		p = append(p, wire.PropertySep)
	}
	p = append(p, wire.PropInnerMultiQueueOffset...)
	p = append(p, wire.NameValueSep)
	for i, c := range mp.ctrs {
		if i > 0 {
			p = append(p, wire.MultiDispatchSep)
		}
		var next int64
		if c != nil {
			next = *c
		}
		p = strconv.AppendInt(p, next, 10)
	}
	mp.props = p
	return PutOK
}

// advanceLocked moves the targets' counters past the record just written,
// creating the new light queues' counters. Caller holds s.mu.
func (s *Store) advanceLocked(mp *multiPut) {
	for i, c := range mp.ctrs {
		if c == nil {
			c = s.newCounter(string(mp.names[i]), wire.LMQQueueID)
		}
		*c++
	}
}

// newCounter adds the next-queue-offset counter of (topic, qid) at 0,
// counting light queues. topic must not alias a reused buffer. Caller
// holds s.mu.
func (s *Store) newCounter(topic string, qid int32) *int64 {
	p := new(int64)
	s.queueOffsets[queueKey{topic, qid}] = p
	if wire.IsLMQ(topic) {
		s.lmqs++
	}
	return p
}

// DeleteLMQ removes a light queue's consume queue and offset counter (Java's
// DefaultMessageStore.cleanUnusedLmqTopic): DeleteTopic for a name with the
// %LMQ% prefix. Callers stop dispatching into it first; a later message
// naming it starts it again at offset 0.
func (s *Store) DeleteLMQ(name string) error {
	if !wire.IsLMQ(name) || !wire.StorableTopic(name) {
		return fmt.Errorf("delete light queue %q: %w", name, ErrNotLMQ)
	}
	return s.DeleteTopic(name)
}
