package gateway

import (
	"sync"

	"github.com/mqops/mqops/wire"
)

// A broker keeps the consumers the gateways register (AMQP_CONSUME) in
// memory, for consumer counts, exclusive consumers and auto-delete. When
// it restarts it forgets them while the gateway's consumers go on (their
// pumps fetch again once it is back), so the gateway registers them again.
// The broker names its life with an epoch in the consume and lease
// answers; each lease renewal (every leaseRenew) re-sends the vhost's
// consumers registered under another epoch than the renewal's: after a
// restart, or when the vhost's home moved.

// consumerRef names a registered consumer: its channel's session (unique
// per channel opening) and its tag.
type consumerRef struct{ session, tag string }

type registered struct {
	c     wire.AMQPConsumer
	epoch int64 // of the broker that registered it last
}

// registry is what the gateway registered with the brokers. Its lock is
// taken under a channel's mu (removeConsumerLocked), never the other way
// round.
type registry struct {
	mu        sync.Mutex
	consumers map[consumerRef]registered
}

func (r *registry) add(c wire.AMQPConsumer, epoch int64) {
	r.mu.Lock()
	if r.consumers == nil {
		r.consumers = map[consumerRef]registered{}
	}
	r.consumers[consumerRef{c.Session, c.Tag}] = registered{c: c, epoch: epoch}
	r.mu.Unlock()
}

func (r *registry) remove(session, tag string) {
	r.mu.Lock()
	delete(r.consumers, consumerRef{session, tag})
	r.mu.Unlock()
}

// stale returns vhost's consumers registered under another epoch.
func (r *registry) stale(vhost string, epoch int64) []wire.AMQPConsumer {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []wire.AMQPConsumer
	for _, e := range r.consumers {
		if e.c.Vhost == vhost && e.epoch != epoch {
			out = append(out, e.c)
		}
	}
	return out
}

// registeredIn records that c was registered (or refused) under epoch;
// false when c was cancelled meanwhile.
func (r *registry) registeredIn(c wire.AMQPConsumer, epoch int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := consumerRef{c.Session, c.Tag}
	e, ok := r.consumers[k]
	if ok {
		e.epoch = epoch
		r.consumers[k] = e
	}
	return ok
}

// reregister registers again vhost's consumers that its broker, now in
// epoch, does not know. One cancelled meanwhile is cancelled there again,
// so that none is left behind (its own cancel may have reached the broker
// first); one the broker refuses now (its queue deleted, another
// gateway's exclusive consumer first) is logged and not tried again in
// this epoch.
func (s *Server) reregister(vhost string, epoch int64) {
	cs := s.reg.stale(vhost, epoch)
	if len(cs) == 0 {
		return
	}
	n := 0
	for _, c := range cs {
		var ok wire.AMQPConsumeOk
		err := s.cfg.Backend.Call(vhost, wire.AMQPConsume, c, &ok)
		if err != nil {
			s.cfg.Log.Warn("amqp consumer not registered again with its restarted broker", "vhost", vhost, "queue", c.Queue, "tag", c.Tag, "err", err)
			ok.Epoch = epoch
		} else {
			n++
		}
		if !s.reg.registeredIn(c, ok.Epoch) && err == nil {
			cancel := wire.AMQPConsumer{Vhost: c.Vhost, Session: c.Session, Tag: c.Tag, Owner: c.Owner}
			if err := s.cfg.Backend.Call(vhost, wire.AMQPCancel, cancel, nil); err != nil {
				s.cfg.Log.Warn("amqp consumer cancelled during its registration not cancelled at the broker", "vhost", vhost, "tag", c.Tag, "err", err)
			}
		}
	}
	s.cfg.Log.Info("amqp consumers registered again with the vhost's broker (restarted or moved)", "vhost", vhost, "consumers", n, "of", len(cs))
}
