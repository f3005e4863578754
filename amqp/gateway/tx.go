package gateway

import (
	"slices"

	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/wire/amqp"
)

// AMQP transactions (class tx), as RabbitMQ's rabbit_channel keeps them:
// after tx.select a channel's publishes and acks wait in the channel until
// tx.commit hands them to the broker, publishes first; commit-ok leaves
// once the broker has answered every one of them (persistent messages to
// durable queues flushed as flushDiskType says, as for a confirm).
// tx.rollback drops the waiting publishes and gives the acked deliveries
// back to the unacked set. Spring AMQP's channelTransacted needs this.
//
// A commit is not atomic, in RabbitMQ neither: a broker that fails part of
// it (or dies meanwhile) leaves the rest stored; the client is told with
// 406 "partial tx completion" on the channel.

// Bounds of one transaction's waiting publishes (RabbitMQ has none; these
// keep a client that never commits from holding the gateway's memory).
const (
	maxTxMessages = 10000
	maxTxBytes    = 64 << 20
)

// txAck is a delivery acknowledged (or nacked, rejected) inside a
// transaction: out of the unacked set, its credit and its settlement wait
// for the commit.
type txAck struct {
	u  unacked
	op string // wire.AMQPAck, AMQPRequeue or AMQPReject
}

func (ch *channel) txSelect() error {
	if ch.confirm {
		return amqp.Errorf(amqp.PreconditionFailed, "cannot switch from confirm to tx mode")
	}
	ch.tx = true
	ch.sendMethodOpen(&amqp.TxSelectOk{})
	return nil
}

// txPublish keeps an assembled publish for the commit.
func (ch *channel) txPublish(o op) error {
	o.tx = true
	ch.mu.Lock()
	if len(ch.txPubs) >= maxTxMessages || ch.txBytes+len(o.msg.Body) > maxTxBytes {
		ch.mu.Unlock()
		e := amqp.Errorf(amqp.PreconditionFailed, "transaction too large: over %d messages or %d body bytes before tx.commit", maxTxMessages, maxTxBytes)
		e.ClassID, e.MethodID = 60, 40
		return e
	}
	ch.txPubs = append(ch.txPubs, o)
	ch.txBytes += len(o.msg.Body)
	ch.mu.Unlock()
	// Buffered publish bytes count against the memory watermark.
	ch.c.s.flow.add(len(o.msg.Body))
	return nil
}

// txAckLocked moves tags, taken off the unacked set, into the
// transaction.
func (ch *channel) txAckLocked(tags []uint64, settleOp string) {
	if ch.txAcked == nil {
		ch.txAcked = make(map[uint64]txAck, len(tags))
	}
	for _, t := range tags {
		ch.txAcked[t] = txAck{u: ch.unacked[t], op: settleOp}
		delete(ch.unacked, t)
	}
}

func (ch *channel) txCommit() error {
	if !ch.tx {
		return amqp.Errorf(amqp.PreconditionFailed, "channel is not transactional")
	}
	ch.mu.Lock()
	pubs, n := ch.txPubs, ch.txBytes
	ch.txPubs, ch.txBytes = nil, 0
	ch.mu.Unlock()
	ch.c.s.flow.add(-n) // enqueue counts them again
	for _, o := range pubs {
		ch.enqueue(o)
	}
	ch.mu.Lock()
	tags := make([]uint64, 0, len(ch.txAcked))
	for t := range ch.txAcked {
		tags = append(tags, t)
	}
	slices.Sort(tags)
	items := make([]op, 0, len(tags))
	var requeued []uint64 // requeueMode=immediate: released, not settled
	for _, t := range tags {
		a := ch.txAcked[t]
		ch.creditBackLocked(a.u.cons)
		if a.u.handle == 0 {
			continue // timed out and released already
		}
		ch.c.s.stats.settled(a.op, 1)
		if a.op == wire.AMQPRequeue && ch.c.s.cfg.ImmediateRequeue {
			requeued = append(requeued, a.u.handle)
			continue
		}
		items = append(items, op{kind: opSettle, tx: true, settle: wire.AMQPSettleItem{Handle: a.u.handle, Op: a.op}})
	}
	if requeued != nil {
		items = append(items, op{kind: opRelease, handles: requeued})
	}
	ch.txAcked = nil
	ch.mu.Unlock()
	for _, o := range items {
		ch.enqueue(o)
	}
	ch.drain()
	ch.mu.Lock()
	failed, open := ch.txFailed, ch.state == stateOpen
	ch.txFailed = false
	ch.mu.Unlock()
	if !open {
		return nil // the worker closed the channel for a publish (404, 403)
	}
	if failed {
		return amqp.Errorf(amqp.PreconditionFailed, "partial tx completion")
	}
	ch.sendMethodOpen(&amqp.TxCommitOk{})
	return nil
}

func (ch *channel) txRollback() error {
	if !ch.tx {
		return amqp.Errorf(amqp.PreconditionFailed, "channel is not transactional")
	}
	ch.dropTxPubs()
	ch.mu.Lock()
	for t, a := range ch.txAcked {
		ch.unacked[t] = a.u
	}
	ch.txAcked = nil
	ch.mu.Unlock()
	ch.sendMethodOpen(&amqp.TxRollbackOk{})
	return nil
}

// dropTxPubs forgets the waiting publishes (rolled back or the channel
// closed).
func (ch *channel) dropTxPubs() {
	ch.mu.Lock()
	n := ch.txBytes
	ch.txPubs, ch.txBytes = nil, 0
	ch.mu.Unlock()
	ch.c.s.flow.add(-n)
}

// txFailedRun records that an op of a committing transaction was not
// done, so that its commit answers 406 instead of commit-ok.
func (ch *channel) txFailedRun(run []op) {
	for i := range run {
		if run[i].tx {
			ch.mu.Lock()
			ch.txFailed = true
			ch.mu.Unlock()
			return
		}
	}
}
