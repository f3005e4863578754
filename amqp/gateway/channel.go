package gateway

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/wire/amqp"
)

type chanState uint8

const (
	stateOpen    chanState = iota
	stateClosing           // the server sent channel.close: only close/close-ok count
	stateClosed            // finished: the id is free again
)

// channel is one AMQP channel's state machine. The connection's read loop
// drives it, so a channel's frames are processed strictly in arrival
// order, synchronous metadata calls included.
type channel struct {
	c  *conn
	id uint16
	// session names this channel's deliveries in the engine (AMQP_FETCH,
	// AMQP_RELEASE); unique per opening, as ids are reused.
	session string

	// Content assembly of a basic.publish: the method, then exactly one
	// header, then bodies adding up to its body size.
	inContent  bool
	haveHeader bool
	bodySize   uint64
	pub        op

	lastQueue string         // queue.declare's answer, for the "" shortcuts
	confirm   bool           // confirm.select seen
	tx        bool           // tx.select seen (tx.go)
	nextSeq   uint64         // last confirm sequence number given
	prefetch  uint16         // basic.qos global=0: for consumers created next
	replyCons *replyConsumer // direct reply-to (replyto.go)

	// mu guards what the worker and the pumps share with the read loop.
	mu      sync.Mutex
	cond    *sync.Cond
	state   chanState
	ops     []op
	working bool // the worker has ops to hand over or answers to wait for
	// workerAlive: the worker goroutine exists (it lingers idle for
	// workerLinger); wake tells a lingering worker that ops arrived.
	workerAlive    bool
	wake           chan struct{}
	pubDead        bool // closed for a refused publish: drop the rest
	globalPrefetch uint16
	inflight       int  // unacked deliveries to consumers (global window)
	reserved       int  // shared-window credit the pumps hold for fetched batches
	paused         bool // channel.flow active=false
	opBytes        int  // body bytes queued in ops
	// spareOps is the worker's last batch slice, cleared, for ops to
	// reuse; pubMsgs the worker's request buffer (worker only): no
	// allocation per publish for either.
	spareOps  []op
	pubMsgs   []wire.AMQPPublishMessage
	nextTag   uint64
	unacked   map[uint64]unacked
	txPubs    []op             // publishes waiting for tx.commit (tx.go)
	txBytes   int              // their body bytes
	txAcked   map[uint64]txAck // acked in the open transaction
	txFailed  bool             // an op of the committing transaction failed
	consumers map[string]*consumer
	deadlines deadlines   // of unacked deliveries (timeout.go)
	ackTimer  *time.Timer // fires at the earliest deadline

	// registered: a consumer was registered with the broker and the
	// channel's consumers have not been cancelled there since.
	registered atomic.Bool
	pumps      map[string]*pump // by queue: one per queue with consumers
}

func newChannel(c *conn, id uint16, session string) *channel {
	ch := &channel{c: c, id: id, session: session, unacked: map[uint64]unacked{}, consumers: map[string]*consumer{}, pumps: map[string]*pump{},
		wake: make(chan struct{}, 1)}
	ch.cond = sync.NewCond(&ch.mu)
	return ch
}

func (ch *channel) getState() chanState {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.state
}

func (ch *channel) setState(s chanState) {
	ch.mu.Lock()
	ch.state = s
	ch.mu.Unlock()
}

// serverClose closes the channel for a soft exception; frames other than
// close and close-ok are ignored until the client's close-ok.
func (ch *channel) serverClose(e *amqp.Error) {
	ch.mu.Lock()
	if ch.state != stateOpen {
		ch.mu.Unlock()
		return // the worker closed it already
	}
	ch.state = stateClosing
	ch.c.s.stats.chanErrors.Add(1)
	ch.c.sendMethod(ch.id, &amqp.ChannelClose{ReplyCode: e.Code, ReplyText: amqp.ReplyText(e.Text), ClassID: e.ClassID, MethodID: e.MethodID})
	ch.mu.Unlock()
	ch.c.log.Info("amqp channel exception", "channel", ch.id, "code", e.Code, "text", e.Text)
	ch.inContent = false
	ch.teardown()
}

// handle processes one frame. A returned *amqp.Error is a channel
// exception when not Hard, else a connection exception.
func (ch *channel) handle(f amqp.Frame) error {
	if ch.getState() == stateClosing {
		if f.Type != amqp.FrameMethod {
			return nil
		}
		cls, mth, _, err := amqp.MethodIDs(f.Payload)
		if err != nil {
			return nil
		}
		switch {
		case cls == 20 && mth == 40: // crossing close
			ch.unregister()
			ch.c.sendMethod(ch.id, &amqp.ChannelCloseOk{})
		case cls == 20 && mth == 41:
			ch.unregister()
			ch.setState(stateClosed)
			ch.dropReply()
		}
		return nil
	}
	if ch.inContent {
		return ch.content(f)
	}
	if f.Type != amqp.FrameMethod {
		return amqp.Errorf(amqp.UnexpectedFrame, "expected method frame, got non method frame instead")
	}
	cls, mth, args, err := amqp.MethodIDs(f.Payload)
	if err != nil {
		return err
	}
	m, err := amqp.NewMethod(cls, mth)
	if err != nil {
		return err
	}
	if err := m.Read(args); err != nil {
		return err
	}
	if err := ch.method(m); err != nil {
		if e, ok := amqp.AsError(err); ok {
			if e.ClassID == 0 && e.MethodID == 0 {
				e.ClassID, e.MethodID = cls, mth
			}
			return e
		}
		// The home broker did not answer: RabbitMQ uses internal_error for
		// its own timeouts, and clients reconnect.
		ch.c.log.Error("amqp metadata call failed", "method", m.Name(), "err", err)
		e := amqp.Errorf(amqp.InternalError, "%s failed: %v", m.Name(), err)
		e.ClassID, e.MethodID = cls, mth
		return e
	}
	return nil
}

func (ch *channel) content(f amqp.Frame) error {
	switch {
	case !ch.haveHeader:
		if f.Type != amqp.FrameHeader {
			return amqp.Errorf(amqp.UnexpectedFrame, "expected content header for class 60, got frame type %d", f.Type)
		}
		var h amqp.ContentHeader
		if err := h.Read(f.Payload); err != nil {
			return err
		}
		if max := ch.c.s.cfg.MaxMessageSize; h.BodySize > max {
			ch.inContent = false
			e := amqp.Errorf(amqp.PreconditionFailed, "message size %d is larger than configured max size %d", h.BodySize, max)
			e.ClassID, e.MethodID = 60, 40
			return e
		}
		ch.haveHeader, ch.bodySize = true, h.BodySize
		// The frame buffer is reused: keep copies. The raw flags and list
		// are stored as received and handed back on delivery.
		ch.pub.msg.Properties = append([]byte(nil), f.Payload[12:]...)
		mode, _ := h.Lookup(amqp.FlagDeliveryMode)
		ch.pub.msg.Persistent = len(mode) == 1 && mode[0] == 2
		ch.pub.msg.Body = make([]byte, 0, h.BodySize)
		if err := ch.replyToPublish(&h); err != nil {
			ch.inContent = false
			return err
		}
	default:
		if f.Type != amqp.FrameBody {
			return amqp.Errorf(amqp.UnexpectedFrame, "expected content body, got frame type %d", f.Type)
		}
		if uint64(len(ch.pub.msg.Body))+uint64(len(f.Payload)) > ch.bodySize {
			return amqp.Errorf(amqp.FrameError, "content body of %d bytes exceeds the header's body size %d",
				uint64(len(ch.pub.msg.Body))+uint64(len(f.Payload)), ch.bodySize)
		}
		ch.pub.msg.Body = append(ch.pub.msg.Body, f.Payload...)
	}
	if uint64(len(ch.pub.msg.Body)) < ch.bodySize {
		return nil
	}
	ch.inContent = false
	o := ch.pub
	ch.pub = op{}
	if ch.tx {
		return ch.txPublish(o)
	}
	if ch.confirm {
		ch.nextSeq++
		o.seq = ch.nextSeq
	}
	ch.enqueue(o)
	return nil
}

// unregister ends the channel's consumers at the broker (their count,
// exclusive use, auto-delete) once the channel closes.
func (ch *channel) unregister() {
	if !ch.registered.Swap(false) {
		return
	}
	if err := ch.call(wire.AMQPCancel, wire.AMQPConsumer{Vhost: ch.c.vhost, Session: ch.session, Owner: ch.c.owner()}, nil); err != nil {
		ch.c.log.Warn("amqp channel's consumers not cancelled at the broker; they go with the connection", "channel", ch.id, "err", err)
	}
}

func (ch *channel) call(code int32, req, resp any) error {
	return ch.c.s.cfg.Backend.Call(ch.c.vhost, code, req, resp)
}

func (ch *channel) reply(noWait bool, m amqp.Method) {
	if !noWait {
		ch.sendMethodOpen(m)
	}
}

// settleOp maps nack/reject's requeue bit: requeue goes through the graded
// retry delays, no requeue drops (dead-letters) the message.
func settleOp(requeue bool) string {
	if requeue {
		return wire.AMQPRequeue
	}
	return wire.AMQPReject
}

// queueName applies the "" shortcut: the last queue declared on the
// channel (rabbit_channel expand_queue_name_shortcut).
func (ch *channel) queueName(q string) (string, error) {
	if q != "" {
		return q, nil
	}
	if ch.lastQueue == "" {
		return "", amqp.Errorf(amqp.NotFound, "no previously declared queue")
	}
	return ch.lastQueue, nil
}

func (ch *channel) method(m amqp.Method) error {
	vhost := ch.c.vhost
	if err := ch.authorize(m); err != nil {
		return err
	}
	switch m := m.(type) {
	case *amqp.ChannelOpen:
		return amqp.Errorf(amqp.ChannelError, "second 'channel.open' seen")
	case *amqp.ChannelFlow:
		// active=false pauses deliveries to the channel (pumps get no
		// credit); RabbitMQ answers 540, pausing is harmless.
		ch.mu.Lock()
		ch.paused = !m.Active
		ch.pokeAllLocked()
		ch.mu.Unlock()
		ch.sendMethodOpen(&amqp.ChannelFlowOk{Active: m.Active})
	case *amqp.ChannelFlowOk:
		// The gateway never sends channel.flow; a stray flow-ok is harmless.
	case *amqp.ChannelClose:
		// Publishes, acks and the release reach the broker before
		// close-ok (amqplib's send.js closes right after publishing).
		ch.teardown()
		ch.drain()
		ch.dropReply()
		ch.c.sendMethod(ch.id, &amqp.ChannelCloseOk{})
		ch.setState(stateClosed)
	case *amqp.ChannelCloseOk:
		// Nothing was asked; RabbitMQ ignores it as well.
	case *amqp.ExchangeDeclare:
		if err := ch.call(wire.AMQPDeclareExchange, wire.AMQPExchangeDeclare{Vhost: vhost, Exchange: m.Exchange, Type: m.Type,
			Passive: m.Passive, Durable: m.Durable, AutoDelete: m.AutoDelete, Internal: m.Internal, Arguments: m.Arguments}, nil); err != nil {
			return err
		}
		ch.reply(m.NoWait, &amqp.ExchangeDeclareOk{})
	case *amqp.ExchangeDelete:
		if err := ch.call(wire.AMQPDeleteExchange, wire.AMQPExchangeDelete{Vhost: vhost, Exchange: m.Exchange, IfUnused: m.IfUnused}, nil); err != nil {
			return err
		}
		ch.reply(m.NoWait, &amqp.ExchangeDeleteOk{})
	case *amqp.ExchangeBind:
		if err := ch.call(wire.AMQPBind, wire.AMQPBinding{Vhost: vhost, Source: m.Source, Destination: m.Destination, ToExchange: true,
			RoutingKey: m.RoutingKey, Arguments: m.Arguments, Owner: ch.c.owner()}, nil); err != nil {
			return err
		}
		ch.reply(m.NoWait, &amqp.ExchangeBindOk{})
	case *amqp.ExchangeUnbind:
		if err := ch.call(wire.AMQPUnbind, wire.AMQPBinding{Vhost: vhost, Source: m.Source, Destination: m.Destination, ToExchange: true,
			RoutingKey: m.RoutingKey, Arguments: m.Arguments, Owner: ch.c.owner()}, nil); err != nil {
			return err
		}
		ch.reply(m.NoWait, &amqp.ExchangeUnbindOk{})
	case *amqp.QueueDeclare:
		if isReplyTo(m.Queue) {
			return ch.declareReply(m)
		}
		var ok wire.AMQPQueueDeclareOk
		if err := ch.call(wire.AMQPDeclareQueue, wire.AMQPQueueDeclare{Vhost: vhost, Queue: m.Queue, Passive: m.Passive, Durable: m.Durable,
			Exclusive: m.Exclusive, AutoDelete: m.AutoDelete, Arguments: m.Arguments, Owner: ch.c.owner()}, &ok); err != nil {
			return err
		}
		if m.Exclusive && !m.Passive {
			ch.c.ownsExclusive = true
		}
		ch.lastQueue = ok.Queue
		ch.reply(m.NoWait, &amqp.QueueDeclareOk{Queue: ok.Queue, MessageCount: ok.MessageCount, ConsumerCount: ok.ConsumerCount})
	case *amqp.QueueBind:
		q, err := ch.queueName(m.Queue)
		if err != nil {
			return err
		}
		key := m.RoutingKey
		if m.Queue == "" && key == "" {
			key = q
		}
		if err := ch.call(wire.AMQPBind, wire.AMQPBinding{Vhost: vhost, Source: m.Exchange, Destination: q, RoutingKey: key,
			Arguments: m.Arguments, Owner: ch.c.owner()}, nil); err != nil {
			return err
		}
		ch.reply(m.NoWait, &amqp.QueueBindOk{})
	case *amqp.QueueUnbind:
		q, err := ch.queueName(m.Queue)
		if err != nil {
			return err
		}
		key := m.RoutingKey
		if m.Queue == "" && key == "" {
			key = q
		}
		if err := ch.call(wire.AMQPUnbind, wire.AMQPBinding{Vhost: vhost, Source: m.Exchange, Destination: q, RoutingKey: key,
			Arguments: m.Arguments, Owner: ch.c.owner()}, nil); err != nil {
			return err
		}
		ch.sendMethodOpen(&amqp.QueueUnbindOk{})
	case *amqp.QueueDelete:
		q, err := ch.queueName(m.Queue)
		if err != nil {
			return err
		}
		var ok wire.AMQPQueueDeleteOk
		if err := ch.call(wire.AMQPDeleteQueue, wire.AMQPQueueDelete{Vhost: vhost, Queue: q, IfUnused: m.IfUnused, IfEmpty: m.IfEmpty,
			Owner: ch.c.owner()}, &ok); err != nil {
			return err
		}
		ch.reply(m.NoWait, &amqp.QueueDeleteOk{MessageCount: ok.MessageCount})
	case *amqp.BasicQos:
		if m.PrefetchSize != 0 {
			return amqp.Errorf(amqp.NotImplemented, "prefetch_size!=0 (%d)", m.PrefetchSize)
		}
		// RabbitMQ 3.x: global=0 is the window of each consumer created
		// afterwards, global=1 one window shared by the channel.
		// globalQos=false takes global=1 as global=0, as RabbitMQ 4.3
		// does by default.
		if m.Global && !ch.c.s.cfg.PerConsumerQos {
			ch.mu.Lock()
			ch.globalPrefetch = m.PrefetchCount
			ch.pokeAllLocked()
			ch.mu.Unlock()
		} else {
			ch.prefetch = m.PrefetchCount
		}
		ch.sendMethodOpen(&amqp.BasicQosOk{})
	case *amqp.BasicPublish:
		if m.Immediate {
			return amqp.Errorf(amqp.NotImplemented, "immediate=true")
		}
		ch.inContent, ch.haveHeader = true, false
		if !ch.c.published.Load() {
			ch.c.published.Store(true)
		}
		ch.pub = op{kind: opPublish, exchange: m.Exchange, msg: wire.AMQPPublishMessage{RoutingKey: m.RoutingKey, Mandatory: m.Mandatory}}
	case *amqp.ConfirmSelect:
		if ch.tx {
			return amqp.Errorf(amqp.PreconditionFailed, "cannot switch from tx to confirm mode")
		}
		ch.confirm = true
		ch.reply(m.NoWait, &amqp.ConfirmSelectOk{})
	case *amqp.BasicAck:
		return ch.ack(m.DeliveryTag, m.Multiple, wire.AMQPAck)
	case *amqp.BasicNack:
		return ch.ack(m.DeliveryTag, m.Multiple, settleOp(m.Requeue))
	case *amqp.BasicReject:
		return ch.ack(m.DeliveryTag, false, settleOp(m.Requeue))
	case *amqp.BasicGet:
		return ch.get(m)
	case *amqp.BasicConsume:
		if m.Queue == wire.AMQPReplyTo {
			return ch.consumeReply(m)
		}
		return ch.consume(m)
	case *amqp.BasicCancel:
		ch.cancel(m)
		ch.cancelReply(m.ConsumerTag)
	case *amqp.BasicRecover, *amqp.BasicRecoverAsync:
		requeue := false
		if r, ok := m.(*amqp.BasicRecover); ok {
			requeue = r.Requeue
		} else {
			requeue = m.(*amqp.BasicRecoverAsync).Requeue
		}
		if !requeue {
			return amqp.Errorf(amqp.NotImplemented, "requeue=false")
		}
		ch.recoverAll()
		if _, ok := m.(*amqp.BasicRecover); ok {
			ch.sendMethodOpen(&amqp.BasicRecoverOk{})
		}
	case *amqp.QueuePurge:
		q, err := ch.queueName(m.Queue)
		if err != nil {
			return err
		}
		ch.drain()
		var ok wire.AMQPPurgeResponse
		if err := ch.call(wire.AMQPPurge, wire.AMQPPurgeRequest{Vhost: vhost, Queue: q, Owner: ch.c.owner()}, &ok); err != nil {
			return err
		}
		ch.reply(m.NoWait, &amqp.QueuePurgeOk{MessageCount: ok.MessageCount})
	case *amqp.TxSelect:
		return ch.txSelect()
	case *amqp.TxCommit:
		return ch.txCommit()
	case *amqp.TxRollback:
		return ch.txRollback()
	default:
		// Server-to-client methods and connection methods on a channel.
		return amqp.Errorf(amqp.CommandInvalid, "unexpected method %s on channel %d", m.Name(), ch.id)
	}
	return nil
}
