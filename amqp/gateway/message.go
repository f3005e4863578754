package gateway

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/wire/amqp"
)

// The message path of a channel. The read loop parses publishes, acks and
// consumer methods in arrival order and hands what goes to the broker to
// the channel's worker: one goroutine at a time per channel, so at most one
// AMQP_PUBLISH of a channel is in flight and whatever arrives meanwhile
// forms the next batch (channel order kept, the broker's group commit
// used). Settles and releases go through the same queue, so an ack sent
// before a channel.close reaches the broker before the close's release.

// maxPendingOps and maxPendingBytes bound the operations queued behind
// the one in flight; a faster publisher waits (its socket is not read)
// until the broker catches up.
const (
	maxPendingOps   = 8192
	maxPendingBytes = 64 << 20
)

// maxSettleBatch bounds one AMQP_SETTLE: a no-ack consumer of a backlog
// settles tens of thousands while one request is out, and a request that
// large outlasts the request timeout on a busy broker.
const maxSettleBatch = 1024

type opKind uint8

const (
	opPublish opKind = iota
	opSettle
	opRelease
)

type op struct {
	kind     opKind
	tx       bool   // committed by tx.commit: a failure fails the commit
	seq      uint64 // confirm sequence number; 0 outside confirm mode
	exchange string
	msg      wire.AMQPPublishMessage
	settle   wire.AMQPSettleItem
	handles  []uint64 // opRelease: these, or the whole session when nil
}

// consumer is one basic.consume of a channel; the pump of its queue on
// the channel (pump.go) hands it messages while it has credit. inflight
// and cancelled are guarded by the channel's mu.
type consumer struct {
	tag       string
	queue     string
	noAck     bool
	prefetch  uint16 // 0: unlimited
	inflight  int
	cancelled bool
	p         *pump
}

type unacked struct {
	handle uint64
	cons   *consumer // nil for basic.get
}

// enqueue queues o for the worker, starting it when idle.
func (ch *channel) enqueue(o op) {
	ch.mu.Lock()
	for (len(ch.ops) >= maxPendingOps || ch.opBytes >= maxPendingBytes) && ch.working {
		ch.cond.Wait()
	}
	ch.enqueueLocked(o)
	ch.mu.Unlock()
}

// enqueueLocked queues o without waiting for room.
func (ch *channel) enqueueLocked(o op) {
	if ch.ops == nil {
		ch.ops, ch.spareOps = ch.spareOps, nil
	}
	ch.ops = append(ch.ops, o)
	ch.opBytes += len(o.msg.Body)
	ch.c.s.flow.add(len(o.msg.Body))
	if !ch.working {
		ch.working = true
		if !ch.workerAlive {
			ch.workerAlive = true
			go ch.work()
		} else {
			select {
			case ch.wake <- struct{}{}:
			default: // a wake-up is pending already
			}
		}
	}
}

// workerLinger is how long an idle worker waits for more ops before it
// exits. A publisher waiting for each confirm publishes again within a
// round trip: a new goroutine for each publish would start on a small
// stack and grow it down the broker's append path (stack copies were ~9 %
// of the broker's CPU with the embedded gateway, confirm-16).
const workerLinger = 2 * time.Second

// drain waits until the worker has handed everything queued to the broker
// and has its answers.
func (ch *channel) drain() {
	ch.mu.Lock()
	for ch.working {
		ch.cond.Wait()
	}
	ch.mu.Unlock()
}

// maxSpareOps bounds the batch slice a channel keeps for reuse.
const maxSpareOps = 256

func (ch *channel) work() {
	var done []op // the batch handled last, cleared
	var linger *time.Timer
	for {
		ch.mu.Lock()
		if done != nil {
			// Handed over once: enqueue may take spareOps for ch.ops at
			// any time, so done must not be handed over again.
			if ch.spareOps == nil {
				ch.spareOps = done[:0]
			}
			done = nil
		}
		ops, taken := ch.ops, ch.opBytes
		ch.ops, ch.opBytes = nil, 0
		if len(ops) == 0 {
			ch.working = false
			ch.cond.Broadcast()
			ch.mu.Unlock()
			if linger == nil {
				linger = time.NewTimer(workerLinger)
			} else {
				linger.Reset(workerLinger)
			}
			select {
			case <-ch.wake:
				continue
			case <-linger.C:
			}
			ch.mu.Lock()
			if ch.working {
				// Ops came as the timer fired: their wake-up is
				// pending or taken; either way this worker runs them.
				ch.mu.Unlock()
				continue
			}
			ch.workerAlive = false
			ch.mu.Unlock()
			return
		}
		ch.cond.Broadcast() // room for a waiting publisher
		ch.mu.Unlock()
		for i := 0; i < len(ops); {
			j := i + 1
			for j < len(ops) && ops[j].kind == ops[i].kind && ops[i].kind != opRelease &&
				(ops[i].kind != opPublish || ops[j].exchange == ops[i].exchange) &&
				(ops[i].kind != opSettle || j-i < maxSettleBatch) {
				j++
			}
			switch ops[i].kind {
			case opPublish:
				ch.publish(ops[i:j])
			case opSettle:
				ch.settleRun(ops[i:j])
			case opRelease:
				ch.release(ops[i].handles)
			}
			i = j
		}
		// Answered (or dropped with a closed channel): no longer buffered.
		ch.c.s.flow.add(-taken)
		clear(ops) // the bodies go
		done = nil
		if cap(ops) <= maxSpareOps {
			done = ops
		}
	}
}

// publish sends one run of publishes to the same exchange and answers
// returns and confirms in order.
func (ch *channel) publish(run []op) {
	ch.mu.Lock()
	dead := ch.pubDead
	ch.mu.Unlock()
	if dead {
		return // the channel was closed for an earlier message: RabbitMQ drops the rest
	}
	c := ch.c
	msgs := ch.pubMsgs[:0]
	for i := range run {
		msgs = append(msgs, run[i].msg)
	}
	req := wire.AMQPPublishRequest{Vhost: c.vhost, Exchange: run[0].exchange, Messages: msgs}
	defer func() {
		// Encoded into the request by now; kept, emptied, for the next.
		clear(msgs)
		if cap(msgs) <= maxSpareOps {
			ch.pubMsgs = msgs[:0]
		}
	}()
	var resp wire.AMQPPublishResponse
	err := ch.call(wire.AMQPPublish, req, &resp)
	if err == nil && len(resp.Results) != len(run) {
		err = fmt.Errorf("broker answered %d results for %d messages", len(resp.Results), len(run))
	}
	if err != nil {
		c.s.stats.publishFailed.Add(uint64(len(run)))
		if e, ok := amqp.AsError(err); ok && !e.Hard {
			// 404 no exchange / 403 internal exchange: a channel exception,
			// as RabbitMQ raises it on the publish itself.
			e.ClassID, e.MethodID = 60, 40
			ch.closeFromWorker(e)
			return
		}
		// The broker did not answer, cannot store (541) or refused the
		// publish for flow control: nack, keep the channel (RabbitMQ nacks
		// when a queue cannot take a message); a refusal also blocks the
		// vhost's publishers until the broker admits publishes again.
		c.log.Warn("amqp publish failed", "channel", ch.id, "messages", len(run), "err", err)
		ch.txFailedRun(run)
		if r := (*Refused)(nil); errors.As(err, &r) && !r.Quota() {
			c.s.flow.refused(c.vhost, r)
		}
		// Earlier sequence numbers are all answered (one request in
		// flight), so multiple=1 names exactly this run's confirm-mode
		// messages.
		if last := run[len(run)-1].seq; last != 0 {
			ch.sendMethodOpen(&amqp.BasicNack{DeliveryTag: last, Multiple: true})
		}
		return
	}
	var acked uint64 // highest sequence of the pending run of acks
	n, took, returned := 0, 0, 0
	flush := func() {
		if n > 0 {
			ch.sendMethodOpen(&amqp.BasicAck{DeliveryTag: acked, Multiple: n > 1})
			n = 0
		}
	}
	for i, r := range resp.Results {
		o := &run[i]
		switch r.Status {
		case wire.AMQPUnroutable:
			took++
			if o.msg.Mandatory {
				returned++
				// The return goes before the ack that covers it.
				ch.sendContent(&amqp.BasicReturn{ReplyCode: amqp.NoRoute, ReplyText: "NO_ROUTE", Exchange: o.exchange,
					RoutingKey: o.msg.RoutingKey}, o.msg.Properties, o.msg.Body)
			}
		case wire.AMQPStored:
			took++
		default:
			c.log.Warn("amqp message not stored", "channel", ch.id, "code", r.Code, "text", r.Text)
			ch.txFailedRun(run[i : i+1])
			if o.seq != 0 {
				flush()
				ch.sendMethodOpen(&amqp.BasicNack{DeliveryTag: o.seq})
			}
			continue
		}
		if o.seq != 0 {
			acked = o.seq
			n++
		}
	}
	flush()
	k := &c.s.stats
	k.published.Add(uint64(took))
	if returned > 0 {
		k.returned.Add(uint64(returned))
	}
	if failed := len(run) - took; failed > 0 {
		k.publishFailed.Add(uint64(failed))
	}
}

// closeFromWorker closes the channel for a refusal found by the worker:
// later publishes are dropped, consumers stop, unacked messages go back.
func (ch *channel) closeFromWorker(e *amqp.Error) {
	ch.mu.Lock()
	if ch.state != stateOpen {
		ch.mu.Unlock()
		return
	}
	ch.pubDead = true
	ch.state = stateClosing
	ch.cancelAllLocked()
	kept := ch.ops[:0]
	for _, o := range ch.ops {
		if o.kind != opPublish {
			kept = append(kept, o)
		}
	}
	ch.ops = append(kept, op{kind: opRelease})
	ch.c.s.stats.chanErrors.Add(1)
	ch.c.sendMethod(ch.id, &amqp.ChannelClose{ReplyCode: e.Code, ReplyText: amqp.ReplyText(e.Text), ClassID: e.ClassID, MethodID: e.MethodID})
	ch.mu.Unlock()
	ch.c.log.Info("amqp channel exception", "channel", ch.id, "code", e.Code, "text", e.Text)
}

func (ch *channel) settleRun(run []op) {
	req := wire.AMQPSettleRequest{Vhost: ch.c.vhost, Items: make([]wire.AMQPSettleItem, len(run))}
	for i := range run {
		req.Items[i] = run[i].settle
	}
	if err := ch.call(wire.AMQPSettle, req, nil); err != nil {
		// The messages stay in flight in the engine and come back after
		// the consume timeout or the channel's release.
		ch.c.log.Warn("amqp settle failed", "channel", ch.id, "items", len(run), "err", err)
		ch.txFailedRun(run)
	}
}

func (ch *channel) release(handles []uint64) {
	req := wire.AMQPReleaseRequest{Vhost: ch.c.vhost, Handles: handles}
	if handles == nil {
		req.Session = ch.session
	}
	if err := ch.call(wire.AMQPRelease, req, nil); err != nil {
		ch.c.log.Warn("amqp release failed; the consume timeout returns the messages", "channel", ch.id, "err", err)
	}
}

// appendContent appends a content-carrying method with its header (the
// raw property flags and list as published) and body frames.
func appendContent(dst []byte, chID uint16, m amqp.Method, props, body []byte, frameMax uint32) ([]byte, error) {
	dst, err := amqp.AppendMethodFrame(dst, chID, m)
	if err != nil {
		return dst, err
	}
	var flags uint16
	var list []byte
	if len(props) >= 2 {
		flags, list = uint16(props[0])<<8|uint16(props[1]), props[2:]
	}
	dst = amqp.AppendHeaderFrame(dst, chID, amqp.ClassBasic, uint64(len(body)), flags, list)
	return amqp.AppendBodyFrames(dst, chID, body, frameMax), nil
}

// The send helpers write nothing once the server closed the channel:
// amqp091-go closes the whole connection (504) on a method for a channel
// it has finished closing. The check and the send share one hold of mu,
// as the closes set the state under it.

func (ch *channel) sendContent(m amqp.Method, props, body []byte) {
	ch.mu.Lock()
	ch.sendContentLocked(m, props, body)
	ch.mu.Unlock()
}

func (ch *channel) sendContentLocked(m amqp.Method, props, body []byte) {
	if ch.state != stateOpen {
		return
	}
	b, err := appendContent(nil, ch.id, m, props, body, ch.c.frameMax)
	if err != nil {
		ch.c.log.Error("encode content", "method", m.Name(), "err", err)
		return
	}
	ch.c.send(b)
}

func (ch *channel) sendMethodOpen(m amqp.Method) {
	ch.mu.Lock()
	ch.sendMethodLocked(m)
	ch.mu.Unlock()
}

func (ch *channel) sendMethodLocked(m amqp.Method) {
	if ch.state == stateOpen {
		ch.c.sendMethod(ch.id, m)
	}
}

// cancelAllLocked stops every consumer of the channel.
func (ch *channel) cancelAllLocked() {
	for _, cs := range ch.consumers {
		ch.removeConsumerLocked(cs)
	}
}

// addConsumerLocked registers cs and joins it to its queue's pump,
// starting one when the queue has no other consumer on the channel.
func (ch *channel) addConsumerLocked(cs *consumer) {
	ch.consumers[cs.tag] = cs
	p := ch.pumps[cs.queue]
	if p == nil {
		p = newPump(ch, cs.queue)
		ch.pumps[cs.queue] = p
		p.start()
	}
	cs.p = p
	p.cons = append(p.cons, cs)
	p.poke()
}

// removeConsumerLocked stops cs: nothing more is handed to it; its
// unacked messages stay unacked (RabbitMQ). A pump left without
// consumers ends.
func (ch *channel) removeConsumerLocked(cs *consumer) {
	if cs.cancelled {
		return
	}
	cs.cancelled = true
	delete(ch.consumers, cs.tag)
	ch.c.s.reg.remove(ch.session, cs.tag)
	p := cs.p
	if i := slices.Index(p.cons, cs); i >= 0 {
		p.cons = slices.Delete(p.cons, i, i+1)
	}
	if len(p.cons) == 0 {
		p.closed = true
		delete(ch.pumps, p.queue)
	}
	p.poke()
}

// teardown ends the channel's message state: consumers stop and its
// unacked messages go back to their queues at once, redelivered, after
// whatever was queued before (RabbitMQ requeues on channel close).
func (ch *channel) teardown() {
	ch.dropTxPubs() // an uncommitted transaction goes with the channel
	ch.mu.Lock()
	ch.cancelAllLocked()
	ch.unacked = map[uint64]unacked{}
	ch.txAcked = nil // released with the session below
	ch.inflight = 0
	ch.stopAckTimeoutsLocked()
	ch.mu.Unlock()
	ch.unregister()
	if ch.session != "" {
		ch.enqueue(op{kind: opRelease})
	}
}

// ack settles tag (or all up to it with multiple; 0 with multiple is every
// outstanding one) with the engine op.
func (ch *channel) ack(tag uint64, multiple bool, settleOp string) error {
	ch.mu.Lock()
	var tags []uint64
	if multiple {
		for t := range ch.unacked {
			if tag == 0 || t <= tag {
				tags = append(tags, t)
			}
		}
		slices.Sort(tags)
	} else {
		tags = []uint64{tag}
	}
	if tag != 0 || !multiple {
		if _, ok := ch.unacked[tag]; !ok {
			ch.mu.Unlock()
			return amqp.Errorf(amqp.PreconditionFailed, "unknown delivery tag %d", tag)
		}
	}
	if ch.tx {
		ch.txAckLocked(tags, settleOp)
		ch.mu.Unlock()
		return nil
	}
	ch.c.s.stats.settled(settleOp, len(tags))
	if settleOp == wire.AMQPRequeue && ch.c.s.cfg.ImmediateRequeue && len(tags) > 0 {
		// requeueMode=immediate: back in the queue at once, marked
		// redelivered, as RabbitMQ requeues; no graded delay.
		handles := make([]uint64, 0, len(tags))
		for _, t := range tags {
			u := ch.unacked[t]
			delete(ch.unacked, t)
			handles = append(handles, u.handle)
			ch.creditBackLocked(u.cons)
		}
		ch.mu.Unlock()
		ch.enqueue(op{kind: opRelease, handles: handles})
		return nil
	}
	items := make([]op, 0, len(tags))
	for _, t := range tags {
		u := ch.unacked[t]
		delete(ch.unacked, t)
		items = append(items, op{kind: opSettle, settle: wire.AMQPSettleItem{Handle: u.handle, Op: settleOp}})
		ch.creditBackLocked(u.cons)
	}
	ch.mu.Unlock()
	for _, o := range items {
		ch.enqueue(o)
	}
	return nil
}

// creditBackLocked returns the credit of one settled delivery to cs (nil
// for basic.get) and wakes the pumps it may let fetch: cs's own, or all
// of the channel's under a shared window.
func (ch *channel) creditBackLocked(cs *consumer) {
	if cs == nil {
		return
	}
	cs.inflight--
	ch.inflight--
	if ch.globalPrefetch > 0 {
		ch.pokeAllLocked()
	} else {
		cs.p.poke()
	}
}

// pokeAllLocked wakes every pump of the channel.
func (ch *channel) pokeAllLocked() {
	for _, p := range ch.pumps {
		p.poke()
	}
}

// recover gives every unacked message of the channel back to its queue at
// once (basic.recover requeue=true); the consumers get them again,
// redelivered, with new tags.
func (ch *channel) recoverAll() {
	ch.mu.Lock()
	hs := make([]uint64, 0, len(ch.unacked))
	for t, u := range ch.unacked {
		hs = append(hs, u.handle)
		if u.cons != nil {
			u.cons.inflight--
			ch.inflight--
		}
		delete(ch.unacked, t)
	}
	// The credit comes back once the messages are back in their queues
	// (pokeAllLocked below), so they are fetched again.
	ch.mu.Unlock()
	if len(hs) > 0 {
		ch.enqueue(op{kind: opRelease, handles: hs})
	}
	ch.drain()
	ch.mu.Lock()
	ch.pokeAllLocked()
	ch.mu.Unlock()
}

// get is basic.get: one fetch without waiting.
func (ch *channel) get(m *amqp.BasicGet) error {
	q, err := ch.queueName(m.Queue)
	if err != nil {
		return err
	}
	ch.drain() // this channel's own publishes are in the queue first
	var resp wire.AMQPFetchResponse
	if err := ch.call(wire.AMQPFetch, wire.AMQPFetchRequest{Vhost: ch.c.vhost, Queue: q, Session: ch.session, Max: 1, NoAck: m.NoAck,
		TimeoutMillis: ch.c.s.cfg.ConsumeTimeout.Milliseconds()}, &resp); err != nil {
		return err
	}
	if len(resp.Deliveries) == 0 {
		ch.sendMethodOpen(&amqp.BasicGetEmpty{})
		return nil
	}
	d := &resp.Deliveries[0]
	ch.c.s.stats.delivered.Add(1)
	if d.Redelivered {
		ch.c.s.stats.redelivered.Add(1)
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.nextTag++
	tag := ch.nextTag
	if !m.NoAck {
		ch.unacked[tag] = unacked{handle: d.Handle}
		ch.trackLocked(tag, ch.ackTimeout(resp.TimeoutMillis))
	}
	ch.sendContentLocked(&amqp.BasicGetOk{DeliveryTag: tag, Redelivered: d.Redelivered, Exchange: d.Exchange,
		RoutingKey: d.RoutingKey, MessageCount: resp.Ready}, d.Properties, d.Body)
	return nil
}

// consume is basic.consume: the queue is checked (404, 405) before
// consume-ok, which goes out before the pump can deliver.
func (ch *channel) consume(m *amqp.BasicConsume) error {
	q, err := ch.queueName(m.Queue)
	if err != nil {
		return err
	}
	tag := m.ConsumerTag
	if tag == "" {
		tag = "amq.ctag-" + randomName()
	}
	ch.mu.Lock()
	_, dup := ch.consumers[tag]
	ch.mu.Unlock()
	if dup {
		return amqp.Errorf(amqp.NotAllowed, "attempt to reuse consumer tag '%s'", tag)
	}
	// The broker checks the queue (404, 405) and its other consumers (403
	// for exclusive) across gateways, and counts this one.
	reg := wire.AMQPConsumer{Vhost: ch.c.vhost, Queue: q, Session: ch.session, Tag: tag, Exclusive: m.Exclusive, Owner: ch.c.owner()}
	var ok wire.AMQPConsumeOk
	if err := ch.call(wire.AMQPConsume, reg, &ok); err != nil {
		return err
	}
	ch.c.s.reg.add(reg, ok.Epoch)
	ch.registered.Store(true)
	ch.c.consumed = true
	ch.mu.Lock()
	if !m.NoWait {
		ch.sendMethodLocked(&amqp.BasicConsumeOk{ConsumerTag: tag})
	}
	ch.addConsumerLocked(&consumer{tag: tag, queue: q, noAck: m.NoAck, prefetch: ch.prefetch})
	ch.mu.Unlock()
	return nil
}

// cancel is basic.cancel: nothing is delivered for tag after cancel-ok;
// its unacked messages stay unacked (RabbitMQ).
func (ch *channel) cancel(m *amqp.BasicCancel) {
	ch.mu.Lock()
	cs := ch.consumers[m.ConsumerTag]
	var ended *pump // the queue's pump, left without consumers
	if cs != nil {
		ch.removeConsumerLocked(cs)
		if cs.p.closed {
			ended = cs.p
		}
	}
	ch.mu.Unlock()
	// Before cancel-ok: an auto-delete queue whose last consumer this was
	// is gone by then (RabbitMQ). An unknown tag has nothing to end.
	if cs != nil {
		if err := ch.call(wire.AMQPCancel, wire.AMQPConsumer{Vhost: ch.c.vhost, Session: ch.session, Tag: m.ConsumerTag, Owner: ch.c.owner()}, nil); err != nil {
			ch.c.log.Warn("amqp cancel not registered with the broker", "channel", ch.id, "tag", m.ConsumerTag, "err", err)
		}
	}
	if ended != nil {
		// The broker ended the pump's fetch at the cancel; what it took
		// meanwhile goes back before cancel-ok, so that a basic.get right
		// after it sees the queue as RabbitMQ's would.
		ended.waitEnded()
	}
	if !m.NoWait {
		ch.sendMethodOpen(&amqp.BasicCancelOk{ConsumerTag: m.ConsumerTag})
	}
}

// randomName is RabbitMQ's 22 url-safe base64 characters (16 random bytes).
func randomName() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
