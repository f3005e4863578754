package amqpengine

import (
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/wire"
)

// readyBytes is the body size of a queue's ready messages, kept for
// x-max-length-bytes. RabbitMQ limits the total of the ready messages'
// body lengths, "ignoring message properties and any overheads"
// (rabbitmq-website site/maxlength.md; message_bytes_ready), so that is
// what is counted: not the consume-queue unit's size, which is the whole
// stored record (the properties hold the exchange, routing key, AMQP
// properties and the fan-out list, so it would refuse much earlier than
// RabbitMQ). A body length costs a record read, so only queues that ask
// for the limit count, and each message is read when it enters the count
// and when it leaves it, never by a scan per publish.
type readyBytes struct {
	on   bool   // counted (the first count rebuilds from the store)
	n    int64  // body bytes of released and of [cursor, upto)
	upto int64  // the tail is counted below it
	rec  []byte // read buffer, reused (up to maxKeptRec): no allocation per message
}

// maxKeptRec bounds the read buffer a queue keeps: a large message's
// copy costs more than its allocation, and an idle queue should not hold
// megabytes.
const maxKeptRec = 64 << 10

// readyBytesLocked is q's ready body bytes. The first call after the
// queue's state is loaded (or reset) counts the released messages and the
// ready run from the cursor, reading each record once; later calls only
// count what was dispatched since.
func (q *qstate) readyBytesLocked(s *store.Store) int64 {
	b := &q.bytes
	if !b.on {
		b.on, b.n, b.upto = true, 0, q.cursor
		for _, off := range q.released {
			b.n += q.bodyLenLocked(s, off)
		}
	}
	b.upto = max(b.upto, q.cursor)
	for maxOff := s.MaxOffset(q.lmq, wire.LMQQueueID); b.upto < maxOff; b.upto++ {
		b.n += q.bodyLenLocked(s, b.upto)
	}
	return max(b.n, 0)
}

// bodyLenLocked is the body length of the message at off of q's light
// queue; 0 for a filler or a record gone from the log (then it was
// counted 0 on the way in too, or the count is reset: popLocked).
func (q *qstate) bodyLenLocked(s *store.Store, off int64) int64 {
	u, ok := s.UnitAt(q.lmq, wire.LMQQueueID, off)
	if !ok {
		return 0
	}
	rec, err := s.ReadRecord(u.Phys, q.bytes.rec[:0])
	if err != nil {
		return 0
	}
	if cap(rec) <= maxKeptRec {
		q.bytes.rec = rec
	}
	return int64(len(wire.RecordView(rec).Body()))
}

// leftLocked uncounts the message at off, taken off the ready messages
// (released: from the released list, else at the cursor).
func (q *qstate) leftLocked(s *store.Store, off int64, released bool) {
	b := &q.bytes
	switch {
	case !b.on:
	case released || off < b.upto:
		b.n -= q.bodyLenLocked(s, off)
	default:
		b.upto = off + 1
	}
}

// backLocked counts the message at off, ready again (put back at the
// head, released or unpopped).
func (q *qstate) backLocked(s *store.Store, off int64) {
	if q.bytes.on {
		q.bytes.n += q.bodyLenLocked(s, off)
	}
}

// releaseLocked puts the in-flight message at off back among the released
// ones; the caller sorts them.
func (q *qstate) releaseLocked(s *store.Store, off int64) {
	q.released = append(q.released, off)
	q.backLocked(s, off)
}
