package amqpengine

import (
	"encoding/base64"
	"errors"
	"slices"
	"time"

	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/wire"
)

// Dead-letter reasons (RabbitMQ's x-death reason values).
const (
	ReasonRejected      = "rejected"
	ReasonExpired       = "expired"
	ReasonMaxLen        = "maxlen"
	ReasonDeliveryLimit = "delivery_limit"
)

// defaultDeliveryLimit is a quorum queue's x-delivery-limit when it sets
// none: RocketMQ's retryMaxTimes.
const defaultDeliveryLimit = 16

// features are the per-queue behaviours its declare arguments ask for,
// parsed once when the queue is declared or loaded (checkQueueArgs has
// validated the types).
type features struct {
	queue          string
	dlx            string // dead-letter exchange, when hasDLX
	hasDLX         bool
	dlrk           string // dead-letter routing key, when hasDLRK
	hasDLRK        bool
	ttl            int64 // x-message-ttl in ms; -1: none
	maxLen         int64 // x-max-length; -1: none
	maxBytes       int64 // x-max-length-bytes (ready body bytes); -1: none
	rejectPublish  bool  // x-overflow reject-publish or reject-publish-dlx
	rejectDLX      bool  // reject-publish-dlx: the refused message is dead-lettered too
	deliveryLimit  int64 // requeues before dead-lettering; -1: unlimited
	consumeTimeout time.Duration
	expires        time.Duration // x-expires; 0: none
}

func newFeatures(name string, args Args) *features {
	f := &features{queue: name, ttl: -1, maxLen: -1, maxBytes: -1, deliveryLimit: -1}
	if s, ok := args["x-dead-letter-exchange"].(string); ok {
		f.dlx, f.hasDLX = s, true
	}
	if s, ok := args["x-dead-letter-routing-key"].(string); ok {
		f.dlrk, f.hasDLRK = s, true
	}
	if n, ok := asInt(args["x-message-ttl"]); ok && n >= 0 {
		f.ttl = n
	}
	if n, ok := asInt(args["x-max-length"]); ok && n >= 0 {
		f.maxLen = n
	}
	if n, ok := asInt(args["x-max-length-bytes"]); ok && n >= 0 {
		f.maxBytes = n
	}
	switch args["x-overflow"] {
	case "reject-publish":
		f.rejectPublish = true
	case "reject-publish-dlx":
		f.rejectPublish, f.rejectDLX = true, true
	}
	if t, _ := args["x-queue-type"].(string); t == "quorum" {
		f.deliveryLimit = defaultDeliveryLimit
	}
	if n, ok := asInt(args["x-delivery-limit"]); ok && n >= 0 {
		f.deliveryLimit = n
	}
	if n, ok := asInt(args["x-consumer-timeout"]); ok && n > 0 {
		f.consumeTimeout = time.Duration(n) * time.Millisecond
	}
	if n, ok := asInt(args["x-expires"]); ok && n > 0 {
		f.expires = time.Duration(n) * time.Millisecond
	}
	return f
}

// limited reports whether the queue has a length limit (x-max-length or
// x-max-length-bytes).
func (f *features) limited() bool { return f != nil && (f.maxLen >= 0 || f.maxBytes >= 0) }

// overLocked reports whether q's ready messages pass f's limits (drop-head
// trims until they do not: rabbit_amqqueue_process over_max_length).
func (f *features) overLocked(q *qstate, s *store.Store) bool {
	return f.maxLen >= 0 && int64(q.readyLocked(s)) > f.maxLen ||
		f.maxBytes >= 0 && q.readyBytesLocked(s) > f.maxBytes
}

// hasTTL reports whether the queue expires its messages (x-message-ttl).
func (f *features) hasTTL() bool { return f != nil && f.ttl >= 0 }

// limits applies the target queues' x-max-length and x-max-length-bytes
// over one publish batch.
type limits struct {
	trim    []*qstate   // drop-head queues to trim once the batch is dispatched
	refused []*features // reject-publish-dlx queues that refused the message admitted last
}

// any reports whether some target has a length limit.
func (l *limits) any(feats []*features) bool {
	for _, f := range feats {
		if f.limited() {
			return true
		}
	}
	return false
}

// admit drops from t the reject-publish queues that are full and returns
// the name of one (empty: none): a queue is full when the message (of
// size body bytes) would take it past a limit, as RabbitMQ's classic
// queue decides (rabbit_amqqueue_process will_overflow). stored is the
// end of the batch's last stored record (-1: none yet): the count of a
// reject-publish queue waits for its dispatch, so that it is exact. It
// loads the state of queues with a length limit, and of all targets when
// the message expires on its own (expiring marks them for the sweeper).
func (l *limits) admit(d *delivery, vhost string, t *Targets, expiring bool, size int, stored int64) string {
	refusedBy := ""
	l.refused = l.refused[:0]
	k := 0
	for j, id := range t.IDs {
		f := t.feats[j]
		if !expiring && !f.limited() {
			t.IDs[k], t.feats[k] = id, f
			k++
			continue
		}
		q := d.queue(vhost, id, f)
		if expiring {
			q.expiring.Store(true)
		}
		if f.limited() {
			if f.rejectPublish {
				if stored >= 0 {
					d.waitDispatched(stored)
					stored = -1
				}
				q.mu.Lock()
				full := f.maxLen >= 0 && int64(q.readyLocked(d.be.Store)) >= f.maxLen ||
					f.maxBytes >= 0 && q.readyBytesLocked(d.be.Store)+int64(size) > f.maxBytes
				q.mu.Unlock()
				if full {
					refusedBy = f.queue
					if f.rejectDLX {
						l.refused = append(l.refused, f)
					}
					continue
				}
			} else if !slices.Contains(l.trim, q) {
				l.trim = append(l.trim, q)
			}
		}
		t.IDs[k], t.feats[k] = id, f
		k++
	}
	t.IDs, t.feats = t.IDs[:k], t.feats[:k]
	return refusedBy
}

func rejectedFull(queue string) PublishResult {
	return PublishResult{Status: wire.AMQPFailed, Code: PreconditionFailed,
		Text: "PRECONDITION_FAILED - queue '" + queue + "' is full (x-max-length or x-max-length-bytes, x-overflow reject-publish)"}
}

// trimHead dead-letters (or drops) the oldest ready messages of a
// drop-head queue until it is within its x-max-length and
// x-max-length-bytes (reason maxlen).
func (d *delivery) trimHead(q *qstate) {
	f := q.feat.Load()
	if !f.limited() {
		return
	}
	s := d.be.Store
	var dead []uint64
	q.mu.Lock()
	maxOff := s.MaxOffset(q.lmq, wire.LMQQueueID)
	for f.overLocked(q, s) {
		off, _, ok := q.popLocked(s, maxOff)
		if !ok {
			break
		}
		dead = append(dead, d.buryLocked(q, off))
	}
	q.mu.Unlock()
	if len(dead) > 0 {
		if err := d.bury(q, dead, ReasonMaxLen); err != nil {
			d.e.log.Warn("[AMQP] dead-lettering messages past x-max-length failed; they stay at the head", "queue", f.queue, "err", err)
		}
	}
}

// maxSweep bounds the messages one sweep takes off one queue's head.
const maxSweep = 4096

// SweepExpired dead-letters (or drops) the expired messages at the head of
// every queue with x-message-ttl, and of queues that got messages with an
// expiration, also when nobody consumes (RabbitMQ expires at the head
// only). It returns how many.
func (e *Engine) SweepExpired(now time.Time) int {
	d, err := e.path()
	if err != nil {
		return 0
	}
	type ref struct {
		id uint64
		f  *features
	}
	var qs []*qstate
	for _, name := range e.Vhosts() {
		v, err := e.Vhost(name)
		if err != nil {
			continue
		}
		var refs []ref
		v.mu.RLock()
		for _, q := range v.queues {
			refs = append(refs, ref{q.id, q.feat})
		}
		v.mu.RUnlock()
		for _, r := range refs {
			d.mu.RLock()
			q := d.queues[QueueLMQ(name, r.id)]
			d.mu.RUnlock()
			switch {
			case q != nil && q.feat.Load() != r.f:
				q.feat.Store(r.f)
			case q == nil && r.f.hasTTL():
				q = d.queue(name, r.id, r.f)
			}
			if q != nil && (r.f.hasTTL() || q.expiring.Load()) {
				qs = append(qs, q)
			}
		}
	}
	n := 0
	for _, q := range qs {
		if dead := d.expireHead(q, now); len(dead) > 0 {
			n += len(dead)
			if err := d.bury(q, dead, ReasonExpired); err != nil {
				e.log.Warn("[AMQP] dead-lettering expired messages failed; they stay at the head", "queue", q.feat.Load().queue, "err", err)
			}
		}
	}
	return n
}

// expireHead takes q's expired head messages under dead handles.
func (d *delivery) expireHead(q *qstate, now time.Time) []uint64 {
	s := d.be.Store
	f := q.feat.Load()
	q.mu.Lock()
	defer q.mu.Unlock()
	maxOff := s.MaxOffset(q.lmq, wire.LMQQueueID)
	var dead []uint64
	var rec []byte
	for len(dead) < maxSweep {
		off, released, ok := q.popLocked(s, maxOff)
		if !ok {
			break
		}
		u, ok := s.UnitAt(q.lmq, wire.LMQQueueID, off)
		if !ok {
			continue // a filler, or gone since (take skips it too)
		}
		var err error
		if rec, err = s.ReadRecord(u.Phys, rec[:0]); err != nil {
			q.unpopLocked(s, off, released)
			break // take reports it
		}
		v := wire.RecordView(rec)
		p, err := base64.StdEncoding.DecodeString(string(wire.PropertyValue(v.Properties(), PropAMQP)))
		if err != nil || !messageExpired(f, p, v.StoreTimestamp(), now.UnixMilli()) {
			q.unpopLocked(s, off, released)
			break
		}
		dead = append(dead, d.buryLocked(q, off))
	}
	return dead
}

// ExpireQueues deletes the queues with x-expires that went unused that
// long: no fetch (a consumer's long poll or basic.get), no declare but a
// passive one (Touch), no delivery in flight. It returns them for the caller's log.
func (e *Engine) ExpireQueues(now time.Time) ([]QueueInfo, error) {
	d, err := e.path()
	if err != nil {
		return nil, err
	}
	var gone []QueueInfo
	var errs []error
	for _, name := range e.Vhosts() {
		v, err := e.Vhost(name)
		if err != nil {
			continue
		}
		type cand struct {
			name    string
			id      uint64
			since   time.Time
			expires time.Duration
		}
		var cands []cand
		v.mu.RLock()
		for _, q := range v.queues {
			if q.feat.expires > 0 {
				cands = append(cands, cand{q.name, q.id, q.created, q.feat.expires})
			}
		}
		v.mu.RUnlock()
		for _, c := range cands {
			since := c.since
			if d.attached.After(since) {
				since = d.attached
			}
			d.mu.RLock()
			q := d.queues[QueueLMQ(name, c.id)]
			d.mu.RUnlock()
			if q != nil {
				if q.fetching.Load() > 0 {
					continue
				}
				if u := time.UnixMilli(q.used.Load()); u.After(since) {
					since = u
				}
				q.mu.Lock()
				busy := len(q.inflight) > 0
				q.mu.Unlock()
				if busy {
					continue
				}
			}
			if now.Sub(since) < c.expires {
				continue
			}
			qi, ok, err := v.deleteExpired(c.name, c.id)
			if err != nil {
				errs = append(errs, err)
			}
			if !ok {
				continue
			}
			gone = append(gone, qi)
			if err := e.ForgetQueue(name, qi.ID); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return gone, errors.Join(errs...)
}
