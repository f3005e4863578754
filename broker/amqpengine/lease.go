package amqpengine

import (
	"strings"
	"sync"
	"time"
)

// Gateway leases: a gateway renews its lease with each home broker it
// uses every LeaseRenew (AMQP_LEASE). When one runs out the gateway is
// taken for dead (kill -9, partition): what its connections held goes as
// if they had closed — their consumers (auto-delete queues whose last
// consumer that was are deleted), their exclusive queues, and their
// in-flight deliveries, which go back at the head, redelivered.

// LeaseRenew is how often gateways renew; LeaseTTL how long a lease lasts.
const (
	LeaseRenew = 5 * time.Second
	LeaseTTL   = 15 * time.Second
)

type leases struct {
	mu    sync.Mutex
	until map[string]time.Time // gateway id → end of its lease
}

// Epoch names this engine's life (its start, in Unix ns): the consumers
// it knows (in memory) are those registered since.
func (e *Engine) Epoch() int64 { return e.epoch }

// Renew extends gateway's lease to now + LeaseTTL.
func (e *Engine) Renew(gateway string, now time.Time) {
	l := &e.leases
	l.mu.Lock()
	if l.until == nil {
		l.until = map[string]time.Time{}
	}
	l.until[gateway] = now.Add(LeaseTTL)
	l.mu.Unlock()
}

// ExpireLeases ends the gateways whose lease ran out by now and releases
// what their connections held. It returns the gateways, how many
// deliveries went back and the queues deleted.
func (e *Engine) ExpireLeases(now time.Time) (gateways []string, released int, deleted []QueueInfo, err error) {
	l := &e.leases
	l.mu.Lock()
	for gw, until := range l.until {
		if now.After(until) {
			gateways = append(gateways, gw)
			delete(l.until, gw)
		}
	}
	l.mu.Unlock()
	for _, gw := range gateways {
		ad, cerr := e.CancelOwners(func(o Owner) bool { return o.Gateway == gw })
		ex, rerr := e.ReleaseGateway(gw)
		deleted = append(append(deleted, ad...), ex...)
		released += e.releaseSessions(gw + "/")
		if err == nil {
			err = cerr
		}
		if err == nil {
			err = rerr
		}
	}
	return gateways, released, deleted, err
}

// releaseSessions puts the in-flight deliveries of every session named
// with prefix (a gateway's "<gateway id>/<conn>/<channel>") back at their
// queues' heads, as Release does for one session.
func (e *Engine) releaseSessions(prefix string) int {
	d, err := e.path()
	if err != nil {
		return 0
	}
	return d.releaseWhere(func(*qstate) bool { return true }, func(_ uint64, f *flight) bool {
		return strings.HasPrefix(f.session, prefix)
	})
}
