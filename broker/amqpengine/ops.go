package amqpengine

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/wire"
)

// Operators' view of the queues (mqadmin amqp, Zabbix): running counters
// and who consumes, kept beside each queue's delivery state.

// consumerWindow is how long a channel counts as consuming a queue after
// its last fetch: gateways long-poll in far shorter rounds, and a channel
// whose window is full holds unacked messages, which count it as well.
const consumerWindow = 30 * time.Second

// queueOps are one queue's counters and recent fetchers.
type queueOps struct {
	delivered   atomic.Uint64
	redelivered atomic.Uint64
	acked       atomic.Uint64

	mu      sync.Mutex
	polling map[string]int       // session → fetches out now
	seen    map[string]time.Time // session → end of its last fetch
	pruned  time.Time            // last sweep of seen
}

// settled counts a settle op.
func (o *queueOps) settled(op string) {
	if op == wire.AMQPAck {
		o.acked.Add(1)
	}
}

// QueueStats is a queue's state for operators.
type QueueStats struct {
	LMQ, Group  string
	Ready       uint32
	Unacked     uint32
	Consumers   uint32
	Published   uint64 // the light queue's end offset: messages ever stored for the queue
	Delivered   uint64 // since the broker started
	Redelivered uint64 // of Delivered, those marked redelivered
	Acked       uint64 // since the broker started
}

// QueueRef is a queue's delivery state as the broker's admission checks
// (pause, rate limit) see it.
type QueueRef struct {
	q *qstate
	d *delivery
}

// Ref returns a queue's reference; a missing queue is 404.
func (e *Engine) Ref(vhost, queue string) (QueueRef, error) {
	d, err := e.path()
	if err != nil {
		return QueueRef{}, err
	}
	q, err := d.lookup(e, vhost, queue)
	if err != nil {
		return QueueRef{}, err
	}
	return QueueRef{q: q, d: d}, nil
}

// Group is the queue's consumer group (its consumeEnable and
// consumeRateLimit gate its deliveries).
func (r QueueRef) Group() string { return r.q.group }

// Ready is the queue's ready count.
func (r QueueRef) Ready() uint32 {
	r.q.mu.Lock()
	defer r.q.mu.Unlock()
	return r.q.readyLocked(r.d.be.Store)
}

// StartPoll marks session as fetching from the queue until EndPoll.
func (r QueueRef) StartPoll(session string) {
	o := &r.q.ops
	o.mu.Lock()
	if o.polling == nil {
		o.polling, o.seen = map[string]int{}, map[string]time.Time{}
	}
	o.polling[session]++
	o.mu.Unlock()
}

// EndPoll ends a StartPoll; the session keeps counting as a consumer for
// consumerWindow.
func (r QueueRef) EndPoll(session string) {
	o := &r.q.ops
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.polling[session]--; o.polling[session] <= 0 {
		delete(o.polling, session)
	}
	o.seen[session] = now
	if now.Sub(o.pruned) > consumerWindow {
		// Sessions are channels, new ones come all the time: forget
		// the quiet ones even if nobody lists the queue.
		o.pruned = now
		o.pruneLocked(now)
	}
}

func (o *queueOps) pruneLocked(now time.Time) {
	for s, t := range o.seen {
		if now.Sub(t) > consumerWindow {
			delete(o.seen, s)
		}
	}
}

// Delivered counts messages handed out.
func (r QueueRef) Delivered(ds []Delivery) {
	if len(ds) == 0 {
		return
	}
	r.q.ops.delivered.Add(uint64(len(ds)))
	n := 0
	for i := range ds {
		if ds[i].Redelivered {
			n++
		}
	}
	if n > 0 {
		r.q.ops.redelivered.Add(uint64(n))
	}
}

// QueueStats returns queue id's counts and counters.
func (e *Engine) QueueStats(vhost string, id uint64, now time.Time) QueueStats {
	d, err := e.path()
	if err != nil {
		return QueueStats{LMQ: QueueLMQ(vhost, id), Group: QueueGroup(vhost, id)}
	}
	q := d.queue(vhost, id, nil)
	st := QueueStats{LMQ: q.lmq, Group: q.group}
	sessions := map[string]bool{}
	q.mu.Lock()
	st.Ready = q.readyLocked(d.be.Store)
	st.Unacked = uint32(min(len(q.inflight), 1<<32-1))
	for _, f := range q.inflight {
		sessions[f.session] = true
	}
	q.mu.Unlock()
	st.Published = uint64(max(d.be.Store.MaxOffset(q.lmq, wire.LMQQueueID), 0))
	st.Delivered = q.ops.delivered.Load()
	st.Redelivered = q.ops.redelivered.Load()
	st.Acked = q.ops.acked.Load()
	o := &q.ops
	o.mu.Lock()
	o.pruneLocked(now)
	for s := range o.polling {
		sessions[s] = true
	}
	for s := range o.seen {
		sessions[s] = true
	}
	o.mu.Unlock()
	st.Consumers = uint32(len(sessions))
	return st
}

// ForgetVhost drops the delivery state and light queues of every queue of
// a deleted vhost (Listing taken before DeleteVhost).
func (e *Engine) ForgetVhost(l Listing) error {
	var first error
	for _, q := range l.Queues {
		if err := e.ForgetQueue(l.Vhost, q.ID); err != nil && first == nil {
			first = err
		}
	}
	return first
}
