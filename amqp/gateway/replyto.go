package gateway

import (
	"strings"

	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/wire/amqp"
)

// Direct reply-to (https://www.rabbitmq.com/docs/direct-reply-to): a
// channel consumes the pseudo-queue amq.rabbitmq.reply-to with no-ack and
// publishes requests with reply-to amq.rabbitmq.reply-to, which the
// gateway rewrites to amq.rabbitmq.reply-to.<suffix>; a responder publishes
// the reply to the default exchange with that name as routing key.
//
// The suffixed name is a real engine queue, transient and exclusive to the
// requester's connection, created at the consume: the default exchange
// routes replies to it whichever gateway the responder uses, and the
// reply consumer is an ordinary no-ack consumer of it. It is deleted with
// the consumer's cancel, the channel's close, and (as every exclusive
// queue) the connection's end.

// replyConsumer is a channel's direct reply-to consumer.
type replyConsumer struct {
	tag   string
	queue string // amq.rabbitmq.reply-to.<suffix>
}

// isReplyTo reports the pseudo-queue and the queues named after it, which
// queue.declare treats as passive (rabbit_channel: "all declares to these
// are effectively passive").
func isReplyTo(q string) bool {
	return q == wire.AMQPReplyTo || strings.HasPrefix(q, wire.AMQPReplyTo+".")
}

// consumeReply is basic.consume of amq.rabbitmq.reply-to, with
// rabbit_channel's checks and texts.
func (ch *channel) consumeReply(m *amqp.BasicConsume) error {
	ch.mu.Lock()
	_, dup := ch.consumers[m.ConsumerTag]
	ch.mu.Unlock()
	switch {
	case dup:
		return amqp.Errorf(amqp.NotAllowed, "attempt to reuse consumer tag '%s'", m.ConsumerTag)
	case !m.NoAck:
		return amqp.Errorf(amqp.PreconditionFailed, "reply consumer cannot acknowledge")
	case ch.replyCons != nil:
		return amqp.Errorf(amqp.PreconditionFailed, "reply consumer already set")
	}
	var ok wire.AMQPQueueDeclareOk
	if err := ch.call(wire.AMQPDeclareQueue, wire.AMQPQueueDeclare{Vhost: ch.c.vhost, ReplyTo: true, Owner: ch.c.owner()}, &ok); err != nil {
		return err
	}
	ch.c.ownsExclusive = true // the connection's end deletes it at the latest
	tag := m.ConsumerTag
	if tag == "" {
		tag = "amq.ctag-" + randomName()
	}
	ch.replyCons = &replyConsumer{tag: tag, queue: ok.Queue}
	if err := ch.consume(&amqp.BasicConsume{Queue: ok.Queue, ConsumerTag: tag, NoAck: true, NoWait: m.NoWait}); err != nil {
		ch.dropReply()
		return err
	}
	return nil
}

// declareReply is queue.declare of amq.rabbitmq.reply-to or of a reply
// queue: always passive; a live reply queue has one consumer and no
// messages, as RabbitMQ answers.
func (ch *channel) declareReply(m *amqp.QueueDeclare) error {
	if m.Queue != wire.AMQPReplyTo {
		if err := ch.call(wire.AMQPDeclareQueue, wire.AMQPQueueDeclare{Vhost: ch.c.vhost, Queue: m.Queue, Passive: true,
			Owner: ch.c.owner()}, nil); err != nil {
			return err
		}
	}
	ch.lastQueue = m.Queue
	ch.reply(m.NoWait, &amqp.QueueDeclareOk{Queue: m.Queue, MessageCount: 0, ConsumerCount: 1})
	return nil
}

// cancelReply deletes the reply queue once its consumer is cancelled.
func (ch *channel) cancelReply(tag string) {
	if ch.replyCons != nil && ch.replyCons.tag == tag {
		ch.dropReply()
	}
}

// dropReply deletes the channel's reply queue, if any: replies sent to it
// afterwards are unroutable and dropped.
func (ch *channel) dropReply() {
	if ch.replyCons == nil {
		return
	}
	q := ch.replyCons.queue
	ch.replyCons = nil
	if err := ch.call(wire.AMQPDeleteQueue, wire.AMQPQueueDelete{Vhost: ch.c.vhost, Queue: q, Owner: ch.c.owner()}, nil); err != nil {
		ch.c.log.Warn("deleting a direct reply-to queue failed; it goes with the connection", "queue", q, "err", err)
	}
}

// replyToPublish adjusts a publish whose content header h was just read:
// reply-to amq.rabbitmq.reply-to becomes the channel's reply queue (the
// stored properties re-encoded around it), and a reply to a reply queue is
// stored transient, as RabbitMQ never stores it at all.
func (ch *channel) replyToPublish(h *amqp.ContentHeader) error {
	if ch.pub.exchange == "" && wire.IsAMQPReplyQueue(ch.pub.msg.RoutingKey) {
		ch.pub.msg.Persistent = false
	}
	v, ok := h.Lookup(amqp.FlagReplyTo)
	if !ok || string(v) != wire.AMQPReplyTo {
		return nil
	}
	var e *amqp.Error
	if ch.replyCons == nil {
		e = amqp.Errorf(amqp.PreconditionFailed, "fast reply consumer does not exist")
	} else if props, err := h.AppendReplacingShortstr(nil, amqp.FlagReplyTo, ch.replyCons.queue); err != nil {
		e = amqp.Errorf(amqp.InternalError, "rewrite reply-to: %v", err)
	} else {
		ch.pub.msg.Properties = props
		return nil
	}
	e.ClassID, e.MethodID = 60, 40 // basic.publish
	return e
}
