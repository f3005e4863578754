package gateway

import (
	"container/heap"
	"time"

	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/wire/amqp"
)

// Consume timeouts (https://www.rabbitmq.com/docs/consumers#acknowledgement-timeout):
// each unacked delivery has a deadline, the broker's consume timeout for
// it counted from its arrival here (so after the broker's own, which puts
// the message back at its queue's head and ignores later settles). When
// one passes, a consumer whose client advertised consumer_cancel_notify
// is cancelled with basic.cancel and its timed-out deliveries go back;
// otherwise, and for basic.get, the channel is closed with 406 as
// RabbitMQ does (rabbit_channel:evaluate_consumer_timeout). A late ack of
// a timed-out tag is ignored.

// ackDeadline is one delivery's deadline.
type ackDeadline struct {
	at      time.Time
	tag     uint64
	timeout time.Duration
}

// deadlines is a min-heap by at.
type deadlines []ackDeadline

func (h deadlines) Len() int           { return len(h) }
func (h deadlines) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlines) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlines) Push(x any)        { *h = append(*h, x.(ackDeadline)) }
func (h *deadlines) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// ackTimeout is the consume timeout a fetch answered with, else the
// gateway's.
func (ch *channel) ackTimeout(ms int64) time.Duration {
	if ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return ch.c.s.cfg.ConsumeTimeout
}

// trackLocked starts the deadline of delivery tag.
func (ch *channel) trackLocked(tag uint64, timeout time.Duration) {
	if timeout <= 0 {
		return
	}
	if len(ch.deadlines) > 2*len(ch.unacked)+64 {
		// Settled deliveries leave their deadlines behind: drop them
		// once they are the majority, so the heap stays the size of the
		// unacked set.
		k := 0
		for _, d := range ch.deadlines {
			if _, ok := ch.unacked[d.tag]; ok || ch.txAcked[d.tag].u.handle != 0 {
				ch.deadlines[k] = d
				k++
			}
		}
		ch.deadlines = ch.deadlines[:k]
		heap.Init(&ch.deadlines)
	}
	d := ackDeadline{at: time.Now().Add(timeout), tag: tag, timeout: timeout}
	earliest := len(ch.deadlines) == 0 || d.at.Before(ch.deadlines[0].at)
	heap.Push(&ch.deadlines, d)
	if earliest && ch.ackTimer != nil {
		ch.ackTimer.Stop()
		ch.ackTimer = nil
	}
	ch.armLocked()
}

// armLocked schedules checkAckTimeouts for the earliest deadline.
func (ch *channel) armLocked() {
	if ch.ackTimer == nil && len(ch.deadlines) > 0 {
		ch.ackTimer = time.AfterFunc(time.Until(ch.deadlines[0].at), ch.checkAckTimeouts)
	}
}

// stopAckTimeoutsLocked drops the deadlines of a channel whose unacked
// deliveries went back, so that no timer holds a closed channel.
func (ch *channel) stopAckTimeoutsLocked() {
	ch.deadlines = nil
	if ch.ackTimer != nil {
		ch.ackTimer.Stop()
		ch.ackTimer = nil
	}
}

// checkAckTimeouts acts on the deadlines that passed.
func (ch *channel) checkAckTimeouts() {
	now := time.Now()
	var release []uint64
	var closeAfter time.Duration // > 0: close the channel
	var cancelled []string       // consumer tags the broker must forget
	ch.mu.Lock()
	ch.ackTimer = nil
	if ch.state != stateOpen {
		ch.stopAckTimeoutsLocked()
		ch.mu.Unlock()
		return
	}
	for len(ch.deadlines) > 0 && !ch.deadlines[0].at.After(now) {
		d := heap.Pop(&ch.deadlines).(ackDeadline)
		u, ok := ch.unacked[d.tag]
		ta, inTx := ch.txAcked[d.tag]
		if inTx {
			// Acked in an open transaction: still unacked at the broker.
			u, ok = ta.u, true
		}
		if !ok || u.handle == 0 {
			continue // settled, or timed out already
		}
		cs := u.cons
		if cs == nil || !ch.c.cancelNotify {
			closeAfter = d.timeout
			break
		}
		if !cs.cancelled {
			ch.removeConsumerLocked(cs)
			cancelled = append(cancelled, cs.tag)
			ch.c.sendMethod(ch.id, &amqp.BasicCancel{ConsumerTag: cs.tag, NoWait: true})
		}
		release = append(release, u.handle)
		// Kept without a handle: its late ack settles nothing and is
		// not an unknown tag.
		if inTx {
			ch.txAcked[d.tag] = txAck{op: ta.op}
		} else {
			ch.unacked[d.tag] = unacked{}
		}
		cs.inflight--
		ch.inflight--
	}
	if closeAfter == 0 {
		ch.armLocked()
	}
	ch.mu.Unlock()
	if len(release) > 0 {
		ch.enqueue(op{kind: opRelease, handles: release})
	}
	for _, tag := range cancelled {
		if err := ch.call(wire.AMQPCancel, wire.AMQPConsumer{Vhost: ch.c.vhost, Session: ch.session, Tag: tag, Owner: ch.c.owner()}, nil); err != nil {
			ch.c.log.Warn("amqp cancel not registered with the broker", "channel", ch.id, "tag", tag, "err", err)
		}
	}
	if closeAfter > 0 {
		ch.serverClose(amqp.Errorf(amqp.PreconditionFailed, "delivery acknowledgement on channel %d timed out. Timeout value used: %d ms. "+
			"This timeout value can be configured, see consumers doc guide to learn more", ch.id, closeAfter.Milliseconds()))
	}
}
