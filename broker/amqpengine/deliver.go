package amqpengine

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/schedule"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/wire/amqp"
)

// The message path: publish routes and stores one record per message in
// the vhost's store topic, multi-dispatched (store/lmq.go) into one light
// queue per target AMQP queue; fetch and settle keep per-message delivery
// state over each light queue.

// Properties of a stored AMQP message.
const (
	PropExchange   = "AMQP_X"  // exchange published to, escaped (EscapeProp)
	PropRoutingKey = "AMQP_RK" // routing key, escaped
	PropAMQP       = "AMQP_P"  // base64 of the raw property flags + list
)

// hwmQueueID is the consumer-offset slot beside a queue's committed offset
// (light queue id 0) that keeps its delivered high-water mark: both live
// in the broker's consumer-offset store, written and persisted together.
const hwmQueueID = 1

// hwmReserve is how far past the delivered high-water mark the stored
// mark runs: the offset table is written before a delivery crosses the
// stored mark, once per hwmReserve deliveries of a queue, so after a
// crash every message handed out comes back redelivered (and up to
// hwmReserve never handed out do too: AMQP allows the false positive, not
// the false negative). A clean shutdown stores the exact mark
// (Checkpoint).
const hwmReserve = 256

// maxFetchWait caps a fetch's long poll below the gateway's request timeout.
const maxFetchWait = 20 * time.Second

// maxFetch bounds the messages of one fetch (its answer's size).
const maxFetch = 1024

// dispatchWait bounds how long a publish waits for its records' dispatch.
const dispatchWait = 5 * time.Second

// cancelled makes WaitDispatched a non-blocking check.
var cancelled = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// Backend is what the message path needs from the broker.
type Backend struct {
	Store   *store.Store
	Offsets *meta.Offsets
	// EnsureTopic creates a vhost store topic (1 queue, read-write) if it
	// does not exist.
	EnsureTopic func(topic string) error
	// Durable blocks until the log up to end is as durable as an
	// acknowledged send must be (SYNC_FLUSH flush, SYNC_MASTER slave ack).
	Durable func(end int64) error
	// LightQueues says the store multi-dispatches (enableLmq and
	// enableMultiDispatch): without it a publish would store records no
	// queue sees, so publishes are refused.
	LightQueues bool
	// MaxDelayLevel is the highest delay level (messageDelayLevel).
	MaxDelayLevel int
	// ConsumeTimeout is a delivery's deadline (default 15 min).
	ConsumeTimeout time.Duration
}

// delivery is the state of the engine's message path.
type delivery struct {
	be Backend
	e  *Engine // routes dead-lettered messages
	// attached is when the store came: an x-expires period runs from
	// then at the earliest, as RabbitMQ's restarts the timer.
	attached time.Time

	mu      sync.RWMutex
	queues  map[string]*qstate // by light queue name
	handles map[uint64]*qstate // in-flight handle → its queue
	next    atomic.Uint64      // last handle handed out
	notify  atomic.Bool        // some fetch waits
}

// Attach gives the engine its store: until then the message path answers
// internal errors.
func (e *Engine) Attach(be Backend) {
	if be.ConsumeTimeout <= 0 {
		be.ConsumeTimeout = 15 * time.Minute
	}
	e.mu.Lock()
	e.d = &delivery{be: be, e: e, attached: time.Now(), queues: map[string]*qstate{}, handles: map[uint64]*qstate{}}
	e.mu.Unlock()
}

func (e *Engine) path() (*delivery, error) {
	e.mu.RLock()
	d := e.d
	e.mu.RUnlock()
	if d == nil {
		return nil, internalError(errors.New("the AMQP message path has no store"))
	}
	return d, nil
}

// StoreTopic is the topic a vhost's messages are stored in: AMQP_STORE for
// "/", <vhost id>%AMQP_STORE (RocketMQ's namespace form) otherwise.
func StoreTopic(vhost string) string {
	if vhost == DefaultVhost {
		return "AMQP_STORE"
	}
	return VhostID(vhost) + "%AMQP_STORE"
}

// QueueGroup is the consumer group holding a queue's offsets.
func QueueGroup(vhost string, id uint64) string {
	g := "AMQP_Q" + strconv.FormatUint(id, 10)
	if vhost == DefaultVhost {
		return g
	}
	return VhostID(vhost) + "%" + g
}

// QueueLMQ is the light queue holding a queue's messages.
func QueueLMQ(vhost string, id uint64) string {
	return wire.LMQPrefix + "AMQP_" + VhostID(vhost) + "_" + strconv.FormatUint(id, 10)
}

// EscapeProp percent-escapes the RocketMQ property separators (\x01,
// \x02) and '%' so that any exchange name or routing key can be a
// property value.
func EscapeProp(s string) string {
	if !strings.ContainsAny(s, "\x01\x02%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 1, 2, '%':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// UnescapeProp reverses EscapeProp.
func UnescapeProp(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// PublishMsg is one basic.publish (wire.AMQPPublishMessage).
type PublishMsg = wire.AMQPPublishMessage

// PublishResult is one message's fate (wire.AMQPPublishResult).
type PublishResult = wire.AMQPPublishResult

// Publish routes and stores msgs, published to exchange in one channel's
// order. A missing (404) or internal (403) exchange is the error of the
// whole request. Persistent messages are answered stored only once the
// log holds them as durably as the broker is configured to; the batch
// waits once, for its last persistent message.
func (e *Engine) Publish(vhost, exchange string, msgs []PublishMsg) ([]PublishResult, error) {
	return e.PublishGated(vhost, exchange, msgs, nil)
}

// PublishGated is Publish for a caller holding one of the broker's append
// slots (its send admission): appended (nil: none) is called once, when
// the appends are done or refused, before the flush and replication wait,
// so that a slot is not held for a whole fsync.
func (e *Engine) PublishGated(vhost, exchange string, msgs []PublishMsg, appended func()) ([]PublishResult, error) {
	a, err := e.PublishAppend(vhost, exchange, msgs, appended)
	if err != nil {
		return nil, err
	}
	if a.DurableEnd >= 0 {
		a.Durable(a.d.be.Durable(a.DurableEnd))
	}
	a.Wait()
	return a.Results, nil
}

// propsPool holds parsed properties between publishes: the parser keeps a
// string equal to the one it holds (content-type, app-id, ...) instead of
// allocating it again for every message.
var propsPool = sync.Pool{New: func() any { return new(amqp.Properties) }}

// targetsPool holds routing results between publishes, with their
// slices (Route resets them; nothing keeps them past a publish).
var targetsPool = sync.Pool{New: func() any { return new(Targets) }}

// Appended is a publish whose messages are in the log but not yet known
// durable: the broker answers it once the log up to DurableEnd is flushed
// (and replicated) as configured, without a goroutine waiting for that.
type Appended struct {
	Results []PublishResult
	// DurableEnd is where the last persistent message ends in the log;
	// -1 without persistent messages stored.
	DurableEnd int64
	d          *delivery
	storedEnd  int64
	persistent []bool // per message: Durable fails only these
	trim       []*qstate
	vhost      string
	exchange   string
	dead       []deadLetter // refused by reject-publish-dlx queues
}

// deadLetter is a published message a full reject-publish-dlx queue
// refused, to be dead-lettered from it.
type deadLetter struct {
	f           *features
	props, body []byte
	rk          string
	born        int64
}

// Durable records the outcome of the flush and replication wait up to
// DurableEnd: on err no persistent message may be confirmed (the gateway
// nacks them).
func (a *Appended) Durable(err error) {
	if err == nil {
		return
	}
	for i := range a.Results {
		if a.Results[i].Status == wire.AMQPStored && a.persistent[i] {
			a.Results[i] = PublishResult{Status: wire.AMQPFailed, Code: InternalError, Text: "not durable: " + err.Error()}
		}
	}
}

// Settled reports, without blocking, whether Wait has nothing left to do:
// the stored messages are dispatched into their queues and no queue is to
// be trimmed.
func (a *Appended) Settled() bool {
	return len(a.trim) == 0 && len(a.dead) == 0 && (a.storedEnd < 0 || a.d.be.Store.WaitDispatched(cancelled, a.storedEnd) == nil)
}

// Wait makes the answer true when it leaves: a confirmed message is in its
// queues (basic.get, message-count right after a confirm), drop-head
// queues are trimmed and messages refused by reject-publish-dlx queues are
// dead-lettered. Called after the flush wait, by when the dispatch is
// mostly done.
func (a *Appended) Wait() {
	for _, m := range a.dead {
		if err := a.d.deadLetterMsg(a.vhost, m.f, m.props, a.exchange, m.rk, m.body, m.born, ReasonMaxLen); err != nil {
			a.d.e.log.Warn("[AMQP] dead-lettering a message refused by a full queue failed", "queue", m.f.queue, "err", err)
		}
	}
	a.dead = nil
	if a.storedEnd >= 0 {
		a.d.waitDispatched(a.storedEnd)
	}
	for _, q := range a.trim {
		a.d.trimHead(q)
	}
	a.trim = nil
}

// PublishAppend routes and appends msgs as Publish does and returns
// before any flush or replication wait; appended is as for PublishGated.
// The caller waits for a DurableEnd >= 0 as configured, reports it with
// Durable, and calls Wait (or checks Settled) before answering. The
// message bodies are copied into the log: msgs may alias a buffer reused
// after the call.
func (e *Engine) PublishAppend(vhost, exchange string, msgs []PublishMsg, appended func()) (*Appended, error) {
	if appended != nil {
		once := appended
		appended = func() {
			if once != nil {
				once()
				once = nil
			}
		}
		defer appended()
	}
	d, err := e.path()
	if err != nil {
		return nil, err
	}
	v, err := e.Vhost(vhost)
	if err != nil {
		return nil, err
	}
	if !d.be.LightQueues {
		return nil, errorf(InternalError, "the broker stores AMQP messages only with enableLmq=true and enableMultiDispatch=true")
	}
	topic := StoreTopic(vhost)
	if err := d.be.EnsureTopic(topic); err != nil {
		return nil, internalError(fmt.Errorf("create store topic %s: %w", topic, err))
	}
	res := make([]PublishResult, len(msgs))
	t := targetsPool.Get().(*Targets)
	defer targetsPool.Put(t)
	var lim limits
	var dead []deadLetter
	var props, list []byte
	durableEnd, storedEnd := int64(-1), int64(-1)
	p := propsPool.Get().(*amqp.Properties)
	defer propsPool.Put(p)
	for i := range msgs {
		m := &msgs[i]
		if len(m.Properties) == 0 {
			*p = amqp.Properties{}
		} else {
			if len(m.Properties) < 2 {
				res[i] = PublishResult{Status: wire.AMQPFailed, Code: amqp.SyntaxError, Text: "content header properties: no property flags"}
				continue
			}
			h := amqp.ContentHeader{Flags: uint16(m.Properties[0])<<8 | uint16(m.Properties[1]), Props: m.Properties[2:]}
			if err := h.Properties(p); err != nil {
				res[i] = PublishResult{Status: wire.AMQPFailed, Code: amqp.SyntaxError, Text: err.Error()}
				continue
			}
		}
		if err := v.Route(exchange, m.RoutingKey, p.Headers, t); err != nil {
			return nil, err
		}
		full := ""
		if len(t.IDs) > 0 && (p.Expiration != "" || lim.any(t.feats)) {
			full = lim.admit(d, vhost, t, p.Expiration != "", len(m.Body), storedEnd)
			for _, f := range lim.refused {
				// reject-publish-dlx: the refused message is
				// dead-lettered (maxlen) as well as nacked, in Wait: a
				// persistent dead letter waits for its own flush. The
				// message is copied, as msgs may alias a reused buffer.
				dead = append(dead, deadLetter{f: f, props: slices.Clone(m.Properties), rk: m.RoutingKey,
					body: slices.Clone(m.Body), born: time.Now().UnixMilli()})
			}
		}
		if len(t.IDs) == 0 {
			if full != "" {
				res[i] = rejectedFull(full)
			} else {
				res[i] = PublishResult{Status: wire.AMQPUnroutable}
			}
			continue
		}
		props, list = recordProps(props[:0], list, vhost, exchange, m.RoutingKey, m.Properties, p.MessageID, t.IDs, m.Persistent)
		sm := store.Message{Topic: topic, BornTimestamp: time.Now().UnixMilli(), Body: m.Body, Properties: props}
		r := d.be.Store.Put(&sm)
		switch r.Status {
		case store.PutOK:
		case store.MessageIllegal, store.PropertiesTooLong:
			// The body or the properties (AMQP_P, the fan-out list) pass
			// the broker's limits (maxMessageSize, 32 767 property bytes).
			res[i] = PublishResult{Status: wire.AMQPFailed, Code: PreconditionFailed,
				Text: fmt.Sprintf("PRECONDITION_FAILED - message too large for the broker (%s: body %d bytes, stored properties %d bytes, limit 32767)", r.Status, len(m.Body), len(props))}
			continue
		case store.ServiceNotAvailable:
			// Disk full or write-disabled since the request was admitted.
			res[i] = PublishResult{Status: wire.AMQPFailed, Code: InternalError, Text: "INTERNAL_ERROR - the broker's store is not writable (disk full, slave or shut down)"}
			continue
		default:
			res[i] = PublishResult{Status: wire.AMQPFailed, Code: InternalError, Text: "INTERNAL_ERROR - store refused the message: " + r.Status.String()}
			continue
		}
		res[i] = PublishResult{Status: wire.AMQPStored}
		if full != "" {
			// Stored for the other queues, but a confirm must say a
			// queue refused it (RabbitMQ nacks).
			res[i] = rejectedFull(full)
		}
		storedEnd = r.EndOffset
		if m.Persistent {
			durableEnd = r.EndOffset
		}
	}
	if appended != nil {
		appended()
	}
	a := &Appended{Results: res, DurableEnd: durableEnd, d: d, storedEnd: storedEnd, trim: lim.trim,
		vhost: vhost, exchange: exchange, dead: dead}
	if durableEnd >= 0 {
		a.persistent = make([]bool, len(msgs))
		for i := range msgs {
			a.persistent[i] = msgs[i].Persistent
		}
	}
	return a, nil
}

// waitDispatched waits for the dispatcher to pass end, after the flush
// wait, by when it is mostly done: a few yields before the store's 1 ms
// polling wait. Past dispatchWait the message is stored and shows up when
// dispatched.
func (d *delivery) waitDispatched(end int64) {
	for range 16 {
		if d.be.Store.WaitDispatched(cancelled, end) == nil {
			return
		}
		runtime.Gosched()
	}
	ctx, cancel := context.WithTimeout(context.Background(), dispatchWait)
	_ = d.be.Store.WaitDispatched(ctx, end)
	cancel()
}

// qstate is one AMQP queue's delivery state over its light queue.
//
// Offsets below committed are settled; in [committed, cursor) an offset is
// in flight, released (waiting at the head) or settled; from cursor on it
// is ready. committed, the lowest unsettled offset, is the group's
// consumer offset, so a broker restart hands out again everything not
// settled and never skips an unsettled message below a settled one.
type qstate struct {
	vhost, lmq, group string

	mu        sync.Mutex
	cursor    int64
	committed int64
	hwm       int64   // offsets below it were handed out before (redelivered)
	hwmSaved  int64   // the mark in the offset table, ≥ hwm once persisted
	released  []int64 // ascending, handed out before cursor
	inflight  map[uint64]*flight
	wake      chan struct{} // closed when the queue may have grown
	ops       queueOps      // counters for operators (ops.go)
	feat      atomic.Pointer[features]
	expiring  atomic.Bool  // got messages with an expiration: the sweeper looks at its head
	used      atomic.Int64 // Unix ms of the last fetch or declare (x-expires)
	fetching  atomic.Int32 // fetches under way (a consumer's long poll is a use)
	bytes     readyBytes   // x-max-length-bytes queues only (readybytes.go)
	// stops: when each session's last consumer of the queue was
	// cancelled. A fetch or peek of that session that started earlier
	// takes nothing more and stops waiting, so that once the gateway
	// answers cancel-ok no message goes to a consumer that is gone
	// (RabbitMQ: after cancel-ok, basic.get sees what is published).
	// Entries older than any fetch can run are pruned.
	stops map[string]time.Time
}

// stopSession ends the fetches and peeks of session that started before
// now (see stops).
func (q *qstate) stopSession(session string) {
	now := time.Now()
	q.mu.Lock()
	if q.stops == nil {
		q.stops = map[string]time.Time{}
	}
	for s, at := range q.stops {
		if now.Sub(at) > 2*maxFetchWait {
			delete(q.stops, s)
		}
	}
	q.stops[session] = now
	close(q.wake)
	q.wake = make(chan struct{})
	q.mu.Unlock()
}

// stoppedLocked reports whether a fetch or peek of session that started
// at since was stopped.
func (q *qstate) stoppedLocked(session string, since time.Time) bool {
	at, ok := q.stops[session]
	return ok && at.After(since)
}

func (q *qstate) stopped(session string, since time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.stoppedLocked(session, since)
}

type flight struct {
	off      int64
	session  string
	deadline time.Time
	dead     bool // taken off the head to be dead-lettered (bury), not handed out
}

// queue returns (loading) the state of queue id of vhost, with its
// features when f is not nil.
func (d *delivery) queue(vhost string, id uint64, f *features) *qstate {
	lmq := QueueLMQ(vhost, id)
	d.mu.RLock()
	q := d.queues[lmq]
	d.mu.RUnlock()
	if q != nil {
		if f != nil && q.feat.Load() != f {
			q.feat.Store(f)
		}
		return q
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if q = d.queues[lmq]; q != nil {
		return q
	}
	q = &qstate{vhost: vhost, lmq: lmq, group: QueueGroup(vhost, id), inflight: map[uint64]*flight{}, wake: make(chan struct{})}
	if off, ok := d.be.Offsets.Query(q.group, lmq, wire.LMQQueueID); ok {
		q.committed = off
	}
	if hwm, ok := d.be.Offsets.Query(q.group, lmq, hwmQueueID); ok {
		q.hwm, q.hwmSaved = hwm, hwm
	}
	if m := d.be.Store.MinOffset(lmq, wire.LMQQueueID); m > q.committed {
		q.committed = m // fell off the log (retention)
	}
	q.cursor = q.committed
	if f != nil {
		q.feat.Store(f)
	}
	d.queues[lmq] = q
	return q
}

// Notify is the store's dispatch hook (long-poll wake-up, as pulls are
// woken in broker/server/pull.go): it must stay cheap.
func (e *Engine) Notify(topic string) {
	if !strings.HasPrefix(topic, wire.LMQPrefix+"AMQP_") {
		return
	}
	e.mu.RLock()
	d := e.d
	e.mu.RUnlock()
	if d == nil || !d.notify.Load() {
		return
	}
	d.mu.RLock()
	q := d.queues[topic]
	d.mu.RUnlock()
	if q != nil {
		q.signal()
	}
}

func (q *qstate) signal() {
	q.mu.Lock()
	close(q.wake)
	q.wake = make(chan struct{})
	q.mu.Unlock()
}

// readyLocked is the ready count: released plus not yet handed out.
func (q *qstate) readyLocked(s *store.Store) uint32 {
	n := max(s.MaxOffset(q.lmq, wire.LMQQueueID)-q.cursor, 0) + int64(len(q.released))
	return uint32(min(n, 1<<32-1))
}

// commitLocked recomputes the lowest unsettled offset and stores it and
// the high-water mark as the group's consumer offsets.
func (q *qstate) commitLocked(o *meta.Offsets) {
	low := q.cursor
	if len(q.released) > 0 {
		low = min(low, q.released[0])
	}
	for _, f := range q.inflight {
		low = min(low, f.off)
	}
	q.committed = low
	o.Commit(q.group, q.lmq, wire.LMQQueueID, low)
	o.Commit(q.group, q.lmq, hwmQueueID, q.hwmSaved)
}

// Delivery is one message handed out (wire.AMQPDelivery).
type Delivery = wire.AMQPDelivery

func (d *delivery) lookup(e *Engine, vhost, queue string) (*qstate, error) {
	v, err := e.Vhost(vhost)
	if err != nil {
		return nil, err
	}
	qi, ok := v.Queue(queue)
	if !ok {
		return nil, notFound("queue", queue, vhost)
	}
	return d.queue(vhost, qi.ID, qi.feat), nil
}

// Fetch hands out up to n messages of a queue to session, waiting up to
// wait (at most 20 s) for the first, and returns them with the queue's
// ready count afterwards and their consume timeout: the queue's
// x-consumer-timeout, else timeout when positive, else the broker's.
func (e *Engine) Fetch(vhost, queue, session string, n int, wait time.Duration, noAck bool, timeout time.Duration) ([]Delivery, uint32, time.Duration, error) {
	started := time.Now()
	d, err := e.path()
	if err != nil {
		return nil, 0, 0, err
	}
	q, err := d.lookup(e, vhost, queue)
	if err != nil {
		return nil, 0, 0, err
	}
	if f := q.feat.Load(); f != nil && f.consumeTimeout > 0 {
		timeout = f.consumeTimeout
	} else if timeout <= 0 {
		timeout = d.be.ConsumeTimeout
	}
	q.fetching.Add(1)
	defer func() {
		q.used.Store(time.Now().UnixMilli())
		q.fetching.Add(-1)
	}()
	n = min(max(n, 1), maxFetch)
	if wait > 0 {
		d.notify.Store(true) // before the first look, or a dispatch in between goes unseen
	}
	var timer *time.Timer
	for {
		out, ready, wake, dead, err := d.take(q, session, started, n, noAck, timeout)
		if len(dead) > 0 {
			// A failure leaves them at the head for the next try; the
			// deliveries taken must go out regardless.
			if berr := d.bury(q, dead, ReasonExpired); berr != nil {
				e.log.Warn("[AMQP] dead-lettering expired messages failed; they stay at the head", "queue", queue, "err", berr)
			} else if len(out) == 0 && err == nil {
				continue // more may follow the expired run
			}
		}
		if err != nil || len(out) > 0 || wait <= 0 || q.stopped(session, started) {
			if timer != nil {
				timer.Stop()
			}
			return out, ready, timeout, err
		}
		if timer == nil {
			timer = time.NewTimer(min(wait, maxFetchWait))
		}
		select {
		case <-wake:
		case <-timer.C:
			wait = 0
		}
	}
}

// WaitReady waits up to wait (at most 20 s) for queue to have a ready
// message and returns its ready count, handing nothing out; it ends early
// when session's last consumer of the queue is cancelled.
func (e *Engine) WaitReady(vhost, queue, session string, wait time.Duration) (uint32, error) {
	started := time.Now()
	d, err := e.path()
	if err != nil {
		return 0, err
	}
	q, err := d.lookup(e, vhost, queue)
	if err != nil {
		return 0, err
	}
	if wait > 0 {
		d.notify.Store(true) // before the first look, as in Fetch
	}
	timer := time.NewTimer(min(wait, maxFetchWait))
	defer timer.Stop()
	for {
		q.mu.Lock()
		ready, wake, stopped := q.readyLocked(d.be.Store), q.wake, q.stoppedLocked(session, started)
		q.mu.Unlock()
		if ready > 0 || wait <= 0 || stopped {
			return ready, nil
		}
		select {
		case <-wake:
		case <-timer.C:
			wait = 0
		}
	}
}

// popLocked takes the head of q's ready messages: the first released,
// else the one at the cursor. ok is false when nothing is ready.
func (q *qstate) popLocked(s *store.Store, maxOff int64) (off int64, released, ok bool) {
	for {
		switch {
		case len(q.released) > 0:
			off, q.released = q.released[0], q.released[1:]
			q.leftLocked(s, off, true)
			return off, true, true
		case q.cursor < maxOff:
			if m := s.MinOffset(q.lmq, wire.LMQQueueID); q.cursor < m {
				// Fell off the log: their bodies cannot be read to
				// uncount them, so the byte count starts over.
				q.cursor = m
				q.bytes.on = false
				continue
			}
			q.cursor++
			q.leftLocked(s, q.cursor-1, false)
			return q.cursor - 1, false, true
		default:
			return 0, false, false
		}
	}
}

// unpopLocked puts back what popLocked took.
func (q *qstate) unpopLocked(s *store.Store, off int64, released bool) {
	if released {
		q.released = append([]int64{off}, q.released...)
	} else {
		q.cursor--
	}
	q.backLocked(s, off)
}

// buryLocked holds off under a new dead handle for bury.
func (d *delivery) buryLocked(q *qstate, off int64) uint64 {
	h := d.next.Add(1)
	q.inflight[h] = &flight{off: off, dead: true}
	return h
}

// take hands out what is ready now. Expired messages it meets are held
// under the dead handles it returns, for bury.
func (d *delivery) take(q *qstate, session string, started time.Time, n int, noAck bool, timeout time.Duration) ([]Delivery, uint32, <-chan struct{}, []uint64, error) {
	s := d.be.Store
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stoppedLocked(session, started) {
		return nil, q.readyLocked(s), q.wake, nil, nil
	}
	var out []Delivery
	var rec []byte
	var dead []uint64
	f := q.feat.Load()
	now := time.Now()
	deadline := now.Add(timeout)
	maxOff := s.MaxOffset(q.lmq, wire.LMQQueueID)
	for len(out) < n {
		off, released, ok := q.popLocked(s, maxOff)
		if !ok {
			break
		}
		u, ok := s.UnitAt(q.lmq, wire.LMQQueueID, off)
		if !ok {
			continue // a filler, or gone since
		}
		var err error
		if rec, err = s.ReadRecord(u.Phys, rec[:0]); err != nil {
			q.unpopLocked(s, off, released)
			return out, q.readyLocked(s), q.wake, dead, internalError(fmt.Errorf("read %s offset %d: %w", q.lmq, off, err))
		}
		v := wire.RecordView(rec)
		props := v.Properties()
		p, err := base64.StdEncoding.DecodeString(string(wire.PropertyValue(props, PropAMQP)))
		if err != nil {
			continue // not written by Publish: nothing an AMQP client can take
		}
		if messageExpired(f, p, v.StoreTimestamp(), now.UnixMilli()) {
			dead = append(dead, d.buryLocked(q, off))
			if len(dead) >= maxSweep {
				break // a long expired run is buried in parts
			}
			continue
		}
		dl := Delivery{
			Redelivered: released || off < q.hwm || v.ReconsumeTimes() > 0,
			Exchange:    UnescapeProp(string(wire.PropertyValue(props, PropExchange))),
			RoutingKey:  UnescapeProp(string(wire.PropertyValue(props, PropRoutingKey))),
			Properties:  p,
			Body:        slices.Clone(v.Body()),
		}
		if !noAck {
			dl.Handle = d.next.Add(1)
			q.inflight[dl.Handle] = &flight{off: off, session: session, deadline: deadline}
		}
		q.hwm = max(q.hwm, off+1)
		out = append(out, dl)
	}
	if len(out) > 0 {
		if !noAck {
			d.mu.Lock()
			for _, dl := range out {
				d.handles[dl.Handle] = q
			}
			d.mu.Unlock()
		}
		if q.hwm > q.hwmSaved {
			saved := q.hwmSaved
			q.hwmSaved = q.hwm + hwmReserve
			q.commitLocked(d.be.Offsets)
			if err := d.be.Offsets.Persist(); err != nil {
				// The deliveries go out anyway; the next fetch tries again.
				q.hwmSaved = saved
				q.commitLocked(d.be.Offsets)
			}
		} else {
			q.commitLocked(d.be.Offsets)
		}
	}
	return out, q.readyLocked(s), q.wake, dead, nil
}

// SettleItem settles one handle (wire.AMQPSettleItem).
type SettleItem = wire.AMQPSettleItem

// Settle applies acks, requeues and rejects. A requeue stores a copy that
// the delay service (broker/schedule) republishes after delay level
// 3 + the message's earlier requeues (10 s, 30 s, 1 m … with the default
// messageDelayLevel) into the vhost store topic, dispatched into this
// queue's light queue only: it comes back at the queue's tail,
// redelivered, through the same cursor, and counts as ready meanwhile in
// nobody's count. (A %RETRY%<group> topic would give each queue a
// second source to merge; re-dispatch keeps one.) A requeue past the
// queue's delivery limit, and a reject, dead-letter the message (or drop
// it without a dead-letter exchange). Unknown handles are skipped.
func (e *Engine) Settle(vhost string, items []SettleItem) (int, error) {
	d, err := e.path()
	if err != nil {
		return 0, err
	}
	n := 0
	// The committed offset is recomputed once per queue and call, not
	// per item: the scan is over the queue's in-flight table, which a
	// no-ack consumer of a backlog keeps large.
	var touched []*qstate
	defer func() {
		for _, q := range touched {
			q.mu.Lock()
			q.commitLocked(d.be.Offsets)
			q.mu.Unlock()
		}
	}()
	for _, it := range items {
		switch it.Op {
		case wire.AMQPAck, wire.AMQPReject, wire.AMQPRequeue:
		default:
			return n, errorf(CommandInvalid, "unknown settle op %q", it.Op)
		}
		d.mu.RLock()
		q := d.handles[it.Handle]
		d.mu.RUnlock()
		if q == nil || q.vhost != vhost {
			continue
		}
		q.mu.Lock()
		f := q.inflight[it.Handle]
		q.mu.Unlock()
		if f == nil || f.dead {
			continue
		}
		switch it.Op {
		case wire.AMQPRequeue:
			if err := d.requeue(q, f.off); err != nil {
				return n, err
			}
		case wire.AMQPReject:
			if err := d.deadLetter(q, f.off, ReasonRejected); err != nil {
				return n, err
			}
		}
		q.mu.Lock()
		if q.inflight[it.Handle] != nil {
			delete(q.inflight, it.Handle)
			if !slices.Contains(touched, q) {
				touched = append(touched, q)
			}
			q.ops.settled(it.Op)
			n++
		}
		q.mu.Unlock()
		d.mu.Lock()
		delete(d.handles, it.Handle)
		d.mu.Unlock()
	}
	return n, nil
}

// requeue stores the graded-delay copy of q's message at off, durably,
// before the original is settled; past the queue's delivery limit it
// dead-letters the message instead.
func (d *delivery) requeue(q *qstate, off int64) error {
	s := d.be.Store
	u, ok := s.UnitAt(q.lmq, wire.LMQQueueID, off)
	if !ok {
		return nil // gone from the log: nothing left to redeliver
	}
	rec, err := s.ReadRecord(u.Phys, nil)
	if err != nil {
		return internalError(fmt.Errorf("requeue %s offset %d: %w", q.lmq, off, err))
	}
	v := wire.RecordView(rec)
	if f := q.feat.Load(); f != nil && f.deliveryLimit >= 0 && int64(v.ReconsumeTimes()) >= f.deliveryLimit {
		return d.deadLetterRecord(q, f, v, ReasonDeliveryLimit)
	}
	props := wire.RemoveProperty(nil, v.Properties(), wire.PropInnerMultiDispatch)
	props = wire.RemoveProperty(props[:0], props, wire.PropInnerMultiQueueOffset)
	props = wire.RemoveProperty(props[:0], props, wire.PropDelay)
	props = wire.AppendProperty(props, wire.PropInnerMultiDispatch, q.lmq)
	m := store.Republish(v, StoreTopic(q.vhost), 0, props)
	m.ReconsumeTimes++
	level := min(3+int(v.ReconsumeTimes()), d.be.MaxDelayLevel)
	props = wire.AppendProperty(props, wire.PropDelay, strconv.Itoa(level))
	m.Properties = props
	schedule.Park(nil, &m, level)
	r := s.Put(&m)
	if r.Status != store.PutOK {
		return internalError(fmt.Errorf("requeue %s offset %d: store refused the copy: %s", q.lmq, off, r.Status))
	}
	if err := d.be.Durable(r.EndOffset); err != nil {
		return internalError(fmt.Errorf("requeue %s offset %d: %w", q.lmq, off, err))
	}
	return nil
}

// Release puts in-flight messages back at the head of their queues,
// redelivered: session's (all of them when handles is empty) or the given
// handles. It returns how many.
func (e *Engine) Release(vhost, session string, handles []uint64) (int, error) {
	d, err := e.path()
	if err != nil {
		return 0, err
	}
	return d.releaseWhere(func(q *qstate) bool { return q.vhost == vhost }, func(h uint64, f *flight) bool {
		return !f.dead && (len(handles) > 0 && slices.Contains(handles, h) || len(handles) == 0 && f.session == session)
	}), nil
}

// releaseWhere puts the in-flight messages that match (in queues that
// match) back at their queues' heads, redelivered, and wakes the queues;
// it returns how many.
func (d *delivery) releaseWhere(queue func(*qstate) bool, match func(uint64, *flight) bool) int {
	d.mu.RLock()
	qs := make([]*qstate, 0, len(d.queues))
	for _, q := range d.queues {
		if queue(q) {
			qs = append(qs, q)
		}
	}
	d.mu.RUnlock()
	n := 0
	var gone []uint64
	for _, q := range qs {
		q.mu.Lock()
		k := 0
		for h, f := range q.inflight {
			if !match(h, f) {
				continue
			}
			delete(q.inflight, h)
			q.releaseLocked(d.be.Store, f.off)
			gone = append(gone, h)
			k++
		}
		if k > 0 {
			slices.Sort(q.released)
			q.commitLocked(d.be.Offsets)
		}
		q.mu.Unlock()
		if k > 0 {
			q.signal()
		}
		n += k
	}
	d.mu.Lock()
	for _, h := range gone {
		delete(d.handles, h)
	}
	d.mu.Unlock()
	return n
}

// ExpireDeliveries releases in-flight messages whose consume timeout
// passed by now (redelivered, at the head), as RabbitMQ's consumer
// timeout does; a later settle of their handles is ignored. It returns
// how many.
func (e *Engine) ExpireDeliveries(now time.Time) int {
	d, err := e.path()
	if err != nil {
		return 0
	}
	d.mu.RLock()
	qs := make([]*qstate, 0, len(d.queues))
	for _, q := range d.queues {
		qs = append(qs, q)
	}
	d.mu.RUnlock()
	var gone []uint64
	for _, q := range qs {
		q.mu.Lock()
		k := len(gone)
		for h, f := range q.inflight {
			if !f.dead && now.After(f.deadline) {
				delete(q.inflight, h)
				q.releaseLocked(d.be.Store, f.off)
				gone = append(gone, h)
			}
		}
		expired := len(gone) > k
		if expired {
			slices.Sort(q.released)
			q.commitLocked(d.be.Offsets)
		}
		q.mu.Unlock()
		if expired {
			q.signal()
		}
	}
	d.mu.Lock()
	for _, h := range gone {
		delete(d.handles, h)
	}
	d.mu.Unlock()
	return len(gone)
}

// Checkpoint stores every queue's exact delivered mark, for a clean
// shutdown before the offset table's last flush.
func (e *Engine) Checkpoint() {
	d, err := e.path()
	if err != nil {
		return
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, q := range d.queues {
		q.mu.Lock()
		q.hwmSaved = q.hwm
		q.commitLocked(d.be.Offsets)
		q.mu.Unlock()
	}
}

// Ready is a queue's ready count (queue.declare-ok, basic.get-ok).
func (e *Engine) Ready(vhost string, id uint64) uint32 {
	d, err := e.path()
	if err != nil {
		return 0
	}
	q := d.queue(vhost, id, nil)
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.readyLocked(d.be.Store)
}

// Touch marks a queue used now (a declare that is not passive: x-expires).
func (e *Engine) Touch(vhost string, id uint64) {
	if d, err := e.path(); err == nil {
		d.queue(vhost, id, nil).used.Store(time.Now().UnixMilli())
	}
}

// PurgeQueue drops a queue's ready messages (queue.purge): its cursor
// moves to the end of its light queue. In-flight messages stay.
func (e *Engine) PurgeQueue(vhost, queue string, conn Owner) (uint32, error) {
	d, err := e.path()
	if err != nil {
		return 0, err
	}
	v, err := e.Vhost(vhost)
	if err != nil {
		return 0, err
	}
	return v.Purge(queue, conn, func(id uint64) (uint32, error) {
		q := d.queue(vhost, id, nil)
		q.mu.Lock()
		defer q.mu.Unlock()
		n := q.readyLocked(d.be.Store)
		q.released = q.released[:0]
		q.cursor = max(q.cursor, d.be.Store.MaxOffset(q.lmq, wire.LMQQueueID))
		q.bytes.n, q.bytes.upto = 0, q.cursor
		q.commitLocked(d.be.Offsets)
		return n, nil
	})
}

// ForgetQueue drops a deleted queue's delivery state and light queue.
func (e *Engine) ForgetQueue(vhost string, id uint64) error {
	d, err := e.path()
	if err != nil {
		return err
	}
	lmq := QueueLMQ(vhost, id)
	d.mu.Lock()
	q := d.queues[lmq]
	delete(d.queues, lmq)
	if q != nil {
		for h := range q.inflight {
			delete(d.handles, h)
		}
	}
	d.mu.Unlock()
	d.be.Offsets.DeleteGroup(QueueGroup(vhost, id))
	return d.be.Store.DeleteLMQ(lmq)
}
