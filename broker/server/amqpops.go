package server

import (
	"errors"
	"time"

	"github.com/mqops/mqops/broker/amqpengine"
	"github.com/mqops/mqops/wire"
)

// Operators' side of the AMQP engine: vhost add/delete, queue state in
// AMQP_LIST, and the queue group's consumeEnable / consumeRateLimit on
// AMQP_FETCH (as pull enforces them for RocketMQ consumers).

// amqpFetch serves AMQP_FETCH through the queue group's gate: a paused
// queue (consumeEnable=false) answers nothing after holding the poll up to
// pausedPullHold, so consumers stay subscribed without spinning; a rate
// limit (consumeRateLimit, shared with every gateway) caps each fetch to
// the tokens the group has.
func (b *Broker) amqpFetch(r *wire.AMQPFetchRequest) ([]wire.AMQPDelivery, uint32, time.Duration, error) {
	ref, err := b.amqp.Ref(r.Vhost, r.Queue)
	if err != nil {
		return nil, 0, 0, err
	}
	ref.StartPoll(r.Session)
	defer ref.EndPoll(r.Session)
	wait := time.Duration(r.WaitMillis) * time.Millisecond
	n := r.Max
	gc := b.groups.Lookup(ref.Group())
	if gc != nil && !gc.ConsumeEnable {
		b.amqpHold(min(wait, pausedPullHold))
		return nil, ref.Ready(), 0, nil
	}
	limited := gc != nil && gc.ConsumeRateLimit > 0
	var group []byte
	if limited {
		group = []byte(ref.Group())
		granted, next := b.limiter.take(group, gc.ConsumeRateLimit, max(n, 1), time.Now())
		if granted == 0 {
			b.amqpHold(min(wait, next))
			return nil, ref.Ready(), 0, nil
		}
		n = granted
	}
	ds, ready, timeout, err := b.amqp.Fetch(r.Vhost, r.Queue, r.Session, n, wait, r.NoAck, time.Duration(r.TimeoutMillis)*time.Millisecond)
	if limited {
		b.limiter.refund(group, n-len(ds))
	}
	ref.Delivered(ds)
	return ds, ready, timeout, err
}

// amqpHold waits d, or less when the broker stops.
func (b *Broker) amqpHold(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-b.stop:
	}
}

// amqpAddVhost creates a vhost and its store topic, registered with the
// name servers so that gateways find the vhost's broker.
func (b *Broker) amqpAddVhost(name string) error {
	if _, err := b.amqp.AddVhost(name); err != nil {
		return err
	}
	return b.amqpStoreTopic(amqpengine.StoreTopic(name))
}

// amqpDeleteVhost drops a vhost, its queues' light queues and offsets and
// its store topic. "/" stays: every broker has it.
func (b *Broker) amqpDeleteVhost(name string) error {
	if name == amqpengine.DefaultVhost {
		return &amqpengine.Error{Code: amqpengine.AccessRefused, Text: "ACCESS_REFUSED - the default vhost '/' cannot be deleted"}
	}
	v, err := b.amqp.Vhost(name)
	if err != nil {
		return &amqpengine.Error{Code: amqpengine.NotFound, Text: "NOT_FOUND - no vhost '" + name + "'"}
	}
	l := v.List()
	if err := b.amqp.DeleteVhost(name); err != nil {
		return err
	}
	errs := []error{b.amqp.ForgetVhost(l)}
	if topic := amqpengine.StoreTopic(name); b.topics.Lookup(topic) != nil {
		if _, err := b.topics.Delete(topic); err != nil {
			errs = append(errs, err)
		}
		b.kickRegister()
	}
	return errors.Join(errs...)
}

// amqpQueueState fills in a listed queue's state on this broker.
func (b *Broker) amqpQueueState(vhost string, q *wire.AMQPQueueInfo, now time.Time) {
	st := b.amqp.QueueStats(vhost, q.ID, now)
	q.LMQ, q.Group = st.LMQ, st.Group
	q.Ready, q.Unacked, q.Consumers = st.Ready, st.Unacked, st.Consumers
	q.Published, q.Delivered, q.Redelivered, q.Acked = st.Published, st.Delivered, st.Redelivered, st.Acked
	if gc := b.groups.Lookup(st.Group); gc != nil {
		q.Paused, q.RateLimit = !gc.ConsumeEnable, gc.ConsumeRateLimit
	}
}
