package gateway

import (
	"sync"
	"time"

	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/wire/amqp"
)

// Push delivery. Each queue with consumers on a channel has one pump: a
// goroutine that fetches only while the channel's consumers of that queue
// have credit (at most maxCredit at once), hands the messages round-robin
// to consumers with credit, and queues them for the connection's writer a
// quantum at a time (quantumMsgs or quantumBytes), taking a turn before
// each quantum. Turns are granted in request order while the writer queue
// has room (turns below), so a pump with a large backlog gets one quantum
// and then waits behind every other pump of the connection: one flooded
// queue cannot hold back quiet ones sharing the connection. A pump whose
// connection has no room waits for its turn as one without credit waits
// for an ack. Acks, nacks, recover and cancels return credit and wake the
// pumps (vivo's pusher design, as in RabbitMQ's consumer prefetch docs).

// maxCredit caps one fetch (the engine's own cap is the same order) when
// prefetch does not bound it.
const maxCredit = 256

// A quantum: what one pump queues for the writer per turn.
const (
	quantumMsgs  = 64
	quantumBytes = 256 << 10
)

// maxOutBytes bounds the delivery bytes queued for a connection's writer;
// beyond it pumps wait for turns.
const maxOutBytes = 4 * quantumBytes

// fetchWait is the consumer long poll, well under the gateway's request
// timeout (callTimeout in mqamqp).
const fetchWait = 2 * time.Second

// pump delivers one queue to its consumers on one channel. cons, rr, held
// and closed are guarded by the channel's mu.
type pump struct {
	ch     *channel
	queue  string
	cons   []*consumer // in consume order
	rr     int         // where the round-robin continues
	held   int         // shared-window credit held for the batch in hand (part of ch.reserved)
	closed bool        // no consumers left: the goroutine ends
	wake   chan struct{}
	grant  chan struct{} // the connection's turn
	ended  chan struct{} // closed when the goroutine has ended
}

func newPump(ch *channel, queue string) *pump {
	return &pump{ch: ch, queue: queue, wake: make(chan struct{}, 1), grant: make(chan struct{}, 1), ended: make(chan struct{})}
}

// start runs the pump's goroutine.
func (p *pump) start() {
	go func() {
		defer close(p.ended)
		p.run()
	}()
}

// maxCancelWait bounds how long cancel-ok waits for a closed pump's last
// fetch (the broker ends it at the cancel; an older broker lets it run
// out its long poll).
const maxCancelWait = time.Second

// waitEnded waits (at most maxCancelWait) until the closed pump's
// goroutine has ended: what its last fetch took is back in the queue.
func (p *pump) waitEnded() {
	t := time.NewTimer(maxCancelWait)
	defer t.Stop()
	select {
	case <-p.ended:
	case <-t.C:
	}
}

// poke wakes the pump to look at its credit again.
func (p *pump) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// creditLocked is how many more messages cs may hold unacked by its own
// window (basic.qos global=0); no-ack consumers are not limited.
func (cs *consumer) creditLocked() int {
	if cs.noAck || cs.prefetch == 0 {
		return maxCredit
	}
	return max(int(cs.prefetch)-cs.inflight, 0)
}

// sharedFreeLocked is what the channel's shared window (basic.qos
// global=1, RabbitMQ 3.x) has left, counting what pumps hold for their
// batches.
func (ch *channel) sharedFreeLocked() int {
	if ch.globalPrefetch == 0 {
		return maxCredit
	}
	return max(int(ch.globalPrefetch)-ch.inflight-ch.reserved, 0)
}

// fetchCreditLocked sizes the next fetch: n messages, of which acks may
// go to consumers that ack (the rest only to no-ack ones); shared says
// the channel's shared window applies.
func (p *pump) fetchCreditLocked() (n, acks int, shared bool) {
	ch := p.ch
	if ch.paused {
		return 0, 0, false
	}
	noAck := false
	for _, cs := range p.cons {
		if cs.noAck {
			noAck = true
		} else {
			acks += cs.creditLocked()
			shared = ch.globalPrefetch > 0
		}
	}
	acks = min(acks, ch.sharedFreeLocked(), maxCredit)
	if noAck {
		return maxCredit, acks, shared
	}
	return acks, acks, shared
}

// nextLocked picks the next consumer, round-robin, that may take a
// message now.
func (p *pump) nextLocked() *consumer {
	for i := range p.cons {
		j := (p.rr + i) % len(p.cons)
		cs := p.cons[j]
		if cs.noAck || (p.held > 0 && cs.creditLocked() > 0) {
			p.rr = j + 1
			return cs
		}
	}
	return nil
}

func (p *pump) run() {
	ch, c := p.ch, p.ch.c
	var backoff time.Duration
	peeked := false // the last peek said ready
	for {
		ch.mu.Lock()
		// No-ack deliveries are settled through the channel's op queue:
		// fetch no faster than those settles reach the broker.
		for len(ch.ops) >= maxPendingOps && ch.working && !p.closed {
			ch.cond.Wait()
		}
		if p.closed {
			ch.mu.Unlock()
			return
		}
		n, acks, shared := p.fetchCreditLocked()
		p.held = acks
		ch.reserved += acks
		ch.mu.Unlock()
		if n == 0 {
			select {
			case <-p.wake:
				continue
			case <-c.done:
				return
			}
		}
		if backoff > 0 {
			select {
			case <-time.After(backoff):
			case <-c.done:
				return
			}
		}
		wait := fetchWait
		if shared {
			// A long poll would hold the channel's shared window from
			// its other queues: take what is there, else wait below.
			wait = 0
		}
		var resp wire.AMQPFetchResponse
		err := ch.call(wire.AMQPFetch, wire.AMQPFetchRequest{Vhost: c.vhost, Queue: p.queue, Session: ch.session,
			Max: n, WaitMillis: int(wait / time.Millisecond), TimeoutMillis: c.s.cfg.ConsumeTimeout.Milliseconds()}, &resp)
		if !p.hand(resp.Deliveries, ch.ackTimeout(resp.TimeoutMillis)) {
			return
		}
		if err == nil && shared && len(resp.Deliveries) == 0 {
			if peeked {
				// Ready by the count yet nothing to take: do not spin.
				backoff = min(max(2*backoff, 50*time.Millisecond), time.Second)
				peeked = false
				continue
			}
			// Wait for a message without holding credit.
			resp = wire.AMQPFetchResponse{}
			err = ch.call(wire.AMQPFetch, wire.AMQPFetchRequest{Vhost: c.vhost, Queue: p.queue, Session: ch.session,
				Peek: true, WaitMillis: int(fetchWait / time.Millisecond), TimeoutMillis: c.s.cfg.ConsumeTimeout.Milliseconds()}, &resp)
			if !p.hand(resp.Deliveries, ch.ackTimeout(resp.TimeoutMillis)) { // none, unless a broker without peek took one
				return
			}
			if err == nil {
				peeked = resp.Ready > 0
				continue
			}
		}
		if err == nil {
			backoff = 0
			continue
		}
		if e, ok := amqp.AsError(err); ok && e.Code == amqp.NotFound {
			p.queueGone()
			return
		}
		c.log.Warn("amqp fetch failed", "channel", ch.id, "queue", p.queue, "err", err)
		backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
	}
}

// queueGone cancels the pump's consumers after their queue was deleted,
// telling the client (consumer_cancel_notify), as RabbitMQ does.
func (p *pump) queueGone() {
	ch := p.ch
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if p.closed {
		return
	}
	for _, cs := range append([]*consumer(nil), p.cons...) {
		ch.removeConsumerLocked(cs)
		ch.sendMethodLocked(&amqp.BasicCancel{ConsumerTag: cs.tag, NoWait: true})
	}
}

// hand delivers a fetched batch a quantum per turn of the connection and
// gives back the shared-window credit held for it; what no consumer can
// take any more (cancelled meanwhile) goes back to the queue. False when
// the pump is finished.
func (p *pump) hand(ds []wire.AMQPDelivery, timeout time.Duration) bool {
	ch, c := p.ch, p.ch.c
	for len(ds) > 0 && c.turn(p.grant) {
		ch.mu.Lock()
		sent, size := p.quantumLocked(ds, timeout)
		ch.mu.Unlock()
		c.admitted(size)
		if sent == 0 {
			break
		}
		ds = ds[sent:]
	}
	ch.mu.Lock()
	if p.held > 0 && ch.globalPrefetch > 0 {
		// Shared credit held for nothing: the channel's other pumps may
		// have waited for it.
		for _, o := range ch.pumps {
			if o != p {
				o.poke()
			}
		}
	}
	ch.reserved -= p.held
	p.held = 0
	done := p.closed || ch.state != stateOpen
	ch.mu.Unlock()
	if len(ds) > 0 {
		hs := make([]uint64, len(ds))
		for i := range ds {
			hs[i] = ds[i].Handle
		}
		ch.release(hs)
	}
	select {
	case <-c.done:
		return false
	default:
		return !done
	}
}

// quantumLocked encodes up to a quantum of ds for consumers with credit
// and queues it for the writer as one chunk, in the same hold of mu as
// the tags are given, so the channel's methods and deliveries leave in
// the order they were decided (nothing after cancel-ok or channel.close).
func (p *pump) quantumLocked(ds []wire.AMQPDelivery, timeout time.Duration) (sent, size int) {
	ch, c := p.ch, p.ch.c
	if p.closed || ch.state != stateOpen {
		return 0, 0
	}
	bp := chunkPool.Get().(*[]byte)
	buf := (*bp)[:0]
	redelivered := 0
	for sent < len(ds) && sent < quantumMsgs && len(buf) < quantumBytes {
		cs := p.nextLocked()
		if cs == nil {
			break
		}
		d := &ds[sent]
		ch.nextTag++
		tag := ch.nextTag
		var err error
		buf, err = appendContent(buf, ch.id, &amqp.BasicDeliver{ConsumerTag: cs.tag, DeliveryTag: tag, Redelivered: d.Redelivered,
			Exchange: d.Exchange, RoutingKey: d.RoutingKey}, d.Properties, d.Body, c.frameMax)
		if err != nil {
			c.log.Error("encode delivery", "err", err)
		}
		if d.Redelivered {
			redelivered++
		}
		if cs.noAck {
			// Settled once on its way, not at fetch time: a consumer
			// cancelled while its fetch was out gives the messages back
			// instead of losing them. Queued under mu, so before any
			// release the channel's close queues.
			ch.enqueueLocked(op{kind: opSettle, settle: wire.AMQPSettleItem{Handle: d.Handle, Op: wire.AMQPAck}})
		} else {
			ch.unacked[tag] = unacked{handle: d.Handle, cons: cs}
			ch.trackLocked(tag, timeout)
			cs.inflight++
			ch.inflight++
			p.held--
			ch.reserved--
		}
		sent++
	}
	if sent == 0 {
		chunkPool.Put(bp)
		return 0, 0
	}
	*bp = buf
	c.s.stats.delivered.Add(uint64(sent))
	if redelivered > 0 {
		c.s.stats.redelivered.Add(uint64(redelivered))
	}
	// If the connection is ending the messages stay in flight in the
	// engine under the channel's session, which the teardown releases.
	c.sendOut(outFrame{b: buf, pool: bp, admitted: len(buf)})
	return sent, len(buf)
}

// chunkPool recycles delivery chunk buffers: the writer returns each once
// written, so a steady stream encodes without allocating.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, quantumBytes+64<<10); return &b }}

// turns admits pumps' chunks to a connection's writer queue: at once
// while it has room and nobody waits, else in request order as the
// writer makes room. A turn reserves a quantum's bytes until the chunk's
// real size is known (admitted).
type turns struct {
	mu     sync.Mutex
	queued int               // delivery bytes reserved or waiting for the writer
	line   []chan<- struct{} // waiting pumps' grant channels
}

// turn waits for the pump's turn; false when the connection ends first.
func (c *conn) turn(grant chan struct{}) bool {
	t := &c.turns
	t.mu.Lock()
	if len(t.line) == 0 && t.queued < maxOutBytes {
		t.queued += quantumBytes
		t.mu.Unlock()
		return true
	}
	t.line = append(t.line, grant)
	t.mu.Unlock()
	select {
	case <-grant:
		return true
	case <-c.done:
		return false
	}
}

// admitted settles a turn's reservation: size bytes were queued.
func (c *conn) admitted(size int) { c.unqueue(quantumBytes - size) }

// unqueue gives back n bytes of room and grants waiting turns.
func (c *conn) unqueue(n int) {
	t := &c.turns
	t.mu.Lock()
	t.queued -= n
	for len(t.line) > 0 && t.queued < maxOutBytes {
		t.queued += quantumBytes
		t.line[0] <- struct{}{} // buffered, and a pump waits for one grant at a time
		t.line[0] = nil
		t.line = t.line[1:]
	}
	t.mu.Unlock()
}
