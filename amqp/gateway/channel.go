package gateway

import (
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
	c     *conn
	id    uint16
	state chanState

	// Content assembly of a basic.publish: the method, then exactly one
	// header, then bodies adding up to its body size.
	inContent  bool
	haveHeader bool
	bodySize   uint64
	bodyGot    uint64

	lastQueue string // queue.declare's answer, for the "" shortcuts
}

func newChannel(c *conn, id uint16) *channel { return &channel{c: c, id: id} }

// serverClose closes the channel for a soft exception; frames other than
// close and close-ok are ignored until the client's close-ok.
func (ch *channel) serverClose(e *amqp.Error) {
	ch.c.log.Info("amqp channel exception", "channel", ch.id, "code", e.Code, "text", e.Text)
	ch.state = stateClosing
	ch.inContent = false
	ch.c.sendMethod(ch.id, &amqp.ChannelClose{ReplyCode: e.Code, ReplyText: e.Text, ClassID: e.ClassID, MethodID: e.MethodID})
}

// handle processes one frame. A returned *amqp.Error is a channel
// exception when not Hard, else a connection exception.
func (ch *channel) handle(f amqp.Frame) error {
	if ch.state == stateClosing {
		if f.Type != amqp.FrameMethod {
			return nil
		}
		cls, mth, _, err := amqp.MethodIDs(f.Payload)
		if err != nil {
			return nil
		}
		switch {
		case cls == 20 && mth == 40: // crossing close
			ch.c.sendMethod(ch.id, &amqp.ChannelCloseOk{})
		case cls == 20 && mth == 41:
			ch.state = stateClosed
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
		ch.haveHeader, ch.bodySize, ch.bodyGot = true, h.BodySize, 0
	default:
		if f.Type != amqp.FrameBody {
			return amqp.Errorf(amqp.UnexpectedFrame, "expected content body, got frame type %d", f.Type)
		}
		ch.bodyGot += uint64(len(f.Payload))
		if ch.bodyGot > ch.bodySize {
			return amqp.Errorf(amqp.FrameError, "content body of %d bytes exceeds the header's body size %d", ch.bodyGot, ch.bodySize)
		}
	}
	if ch.bodyGot < ch.bodySize {
		return nil
	}
	ch.inContent = false
	return notImplemented(60, 40, "basic.publish")
}

// notImplemented is the answer to the methods of publishing and consuming
// until the broker's publish/fetch/settle exist: a connection exception,
// so that no client believes a message was taken.
func notImplemented(cls, mth uint16, name string) *amqp.Error {
	e := amqp.Errorf(amqp.NotImplemented, "%s is not implemented by this gateway yet (metadata methods only)", name)
	e.ClassID, e.MethodID = cls, mth
	return e
}

func (ch *channel) call(code int32, req, resp any) error {
	return ch.c.s.cfg.Backend.Call(ch.c.vhost, code, req, resp)
}

func (ch *channel) reply(noWait bool, m amqp.Method) {
	if !noWait {
		ch.c.sendMethod(ch.id, m)
	}
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
	switch m := m.(type) {
	case *amqp.ChannelOpen:
		return amqp.Errorf(amqp.ChannelError, "second 'channel.open' seen")
	case *amqp.ChannelFlow:
		// Deliveries do not exist yet, so pausing them is trivially kept.
		ch.c.sendMethod(ch.id, &amqp.ChannelFlowOk{Active: m.Active})
	case *amqp.ChannelFlowOk:
		// The gateway never sends channel.flow; a stray flow-ok is harmless.
	case *amqp.ChannelClose:
		ch.c.sendMethod(ch.id, &amqp.ChannelCloseOk{})
		ch.state = stateClosed
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
		ch.c.sendMethod(ch.id, &amqp.QueueUnbindOk{})
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
		// No consumers exist yet, so any prefetch count is kept.
		ch.c.sendMethod(ch.id, &amqp.BasicQosOk{})
	case *amqp.BasicPublish:
		if m.Immediate {
			return amqp.Errorf(amqp.NotImplemented, "immediate=true")
		}
		ch.inContent, ch.haveHeader = true, false
	case *amqp.BasicAck:
		// Nothing has been delivered, so every tag is unknown.
		return amqp.Errorf(amqp.PreconditionFailed, "unknown delivery tag %d", m.DeliveryTag)
	case *amqp.BasicNack:
		return amqp.Errorf(amqp.PreconditionFailed, "unknown delivery tag %d", m.DeliveryTag)
	case *amqp.BasicReject:
		return amqp.Errorf(amqp.PreconditionFailed, "unknown delivery tag %d", m.DeliveryTag)
	case *amqp.BasicCancel:
		ch.reply(m.NoWait, &amqp.BasicCancelOk{ConsumerTag: m.ConsumerTag})
	case *amqp.QueuePurge, *amqp.BasicConsume, *amqp.BasicGet, *amqp.BasicRecover, *amqp.BasicRecoverAsync,
		*amqp.ConfirmSelect, *amqp.TxSelect, *amqp.TxCommit, *amqp.TxRollback:
		c, mm := m.IDs()
		return notImplemented(c, mm, m.Name())
	default:
		// Server-to-client methods and connection methods on a channel.
		return amqp.Errorf(amqp.CommandInvalid, "unexpected method %s on channel %d", m.Name(), ch.id)
	}
	return nil
}
