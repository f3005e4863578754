package server

import (
	"time"

	"github.com/mqops/mqops/broker/grpcsvc"
	"github.com/mqops/mqops/broker/pop"
	"github.com/mqops/mqops/wire"
)

// FIFO POP for orderly groups (consumeMessageOrderly): one batch in
// flight per queue, redelivered in place when its lease ends. Java's
// counterparts: apache/rocketmq
// broker/src/main/java/org/apache/rocketmq/broker/offset/ConsumerOrderInfoManager.java
// (checkBlock, attemptId) and PopMessageProcessor.java (order pops).

// popRedeliver starts an orderly receive of a locked queue: it hands out
// the queue's batch again when its lease ended (in offset order,
// reconsume times + 1, dead-lettering what reached max attempts) or when
// the request retries the batch's attempt_id (same reconsume times). busy
// reports that the queue still has a batch in flight, so nothing behind
// it may be read.
func (b *Broker) popRedeliver(r *grpcsvc.PopRequest, q popQueue, tk *pop.Taker, maxAttempts int32, out []grpcsvc.Delivery) (_ []grpcsvc.Delivery, busy bool) {
	now := time.Now().UnixMilli()
	redo, replay, blocked := tk.FIFO(r.AttemptID, now)
	if blocked {
		return out, true
	}
	n := len(out)
	for _, old := range redo {
		if len(out) >= r.Batch {
			break // the rest stays expired: handed out by a later receive, still before anything behind it
		}
		rec, err := b.store.ReadRecord(old.PhyOffset, nil)
		if err != nil {
			if old.Offset < b.store.MinOffset(q.topic, q.id) {
				b.log.Warn("[POP] a FIFO message in flight was deleted from the store; skipping it", "group", r.Group, "topic", q.topic, "queueId", q.id, "queueOffset", old.Offset)
				tk.Drop(old.Offset)
				continue
			}
			b.log.Error("[POP] reading a FIFO message to deliver it again failed; its queue waits", "group", r.Group, "topic", q.topic, "queueId", q.id, "queueOffset", old.Offset, "err", err)
			break
		}
		v := wire.RecordView(rec)
		reconsume := old.Reconsume
		if !replay {
			reconsume++
		}
		if reconsume >= maxAttempts {
			// The attempt after the group's last goes to the dead-letter
			// topic, as the non-FIFO path does (Java PopMessageResultFilterImpl).
			if err := b.popDeadLetter(r.Group, r.Topic, v, reconsume); err != nil {
				b.log.Error("[DLQ] storing a FIFO message in the dead-letter topic failed; its queue waits", "group", r.Group, "topic", q.topic, "queueOffset", old.Offset, "err", err)
				break
			}
			tk.Drop(old.Offset)
			continue
		}
		l := pop.Lease{Offset: old.Offset, PhyOffset: old.PhyOffset, PopTime: now, VisibleAt: now + r.Invisible.Milliseconds(),
			Reconsume: reconsume, ClientID: r.ClientID, AutoRenew: r.AutoRenew}
		tk.Relet(l)
		h := pop.Handle{PopTime: l.PopTime, VisibleAt: l.VisibleAt, Kind: q.kind, Broker: b.cfg.BrokerName, Queue: q.id, Offset: l.Offset, PhyOffset: l.PhyOffset}
		out = append(out, grpcsvc.Delivery{Record: rec, Topic: r.Topic, Handle: h.String(), DeliveryCount: reconsume + 1})
	}
	if len(out) > n {
		b.stats.GroupGet([]byte(r.Topic), []byte(r.Group), len(out)-n, 0)
	}
	return out, tk.Leased() > 0
}

// popUnblocked wakes the receives waiting for k's topic when k is an
// orderly group's queue whose FIFO batch no longer blocks it (acked,
// dead-lettered or made visible).
func (b *Broker) popUnblocked(k pop.Key) {
	if orderly(b.groups.Lookup(k.Group)) && !b.pop.state.Blocked(k, time.Now().UnixMilli()) {
		b.pop.notify(k.Topic)
	}
}
