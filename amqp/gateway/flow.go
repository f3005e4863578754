package gateway

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/wire/amqp"
)

// RabbitMQ's connection.blocked extension
// (https://www.rabbitmq.com/docs/connection-blocked): while a vhost's
// broker refuses publishes (disk full, write-disabled, flow control) or
// the gateway buffers more publish bytes than memoryHighWatermark, the
// gateway stops reading the sockets of connections that have published,
// after telling those that advertised the capability connection.blocked;
// connection.unblocked follows when it clears. Connections that only
// consume keep flowing.

// probeInterval is how often a blocked vhost's broker is asked whether it
// admits publishes again.
const probeInterval = 500 * time.Millisecond

type publishFlow struct {
	s         *Server
	watermark int64 // memoryHighWatermark, bytes; 0: off

	buffered atomic.Int64 // publish body bytes read and not yet answered by a broker
	overMem  atomic.Bool  // mirrors memory != "" for the lock-free check

	mu      sync.Mutex
	memory  string            // why the gateway's memory blocks publishers, "" when it does not
	vhosts  map[string]string // vhosts whose broker refuses publishes: the reason
	changed chan struct{}     // closed and replaced on every change
}

func newPublishFlow(s *Server, watermark int64) *publishFlow {
	return &publishFlow{s: s, watermark: watermark, vhosts: map[string]string{}, changed: make(chan struct{})}
}

// blocked is why publishers of vhost are blocked ("" when they are not)
// and a channel closed at the next change.
func (f *publishFlow) blocked(vhost string) (reason string, changed <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	reason = f.memory
	if reason == "" {
		reason = f.vhosts[vhost]
	}
	return reason, f.changed
}

// changedLocked wakes the waiting read loops; the caller notifies the
// connections after unlocking.
func (f *publishFlow) changedLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// add counts n publish bytes buffered (negative: answered) against the
// watermark.
func (f *publishFlow) add(n int) {
	if f.watermark <= 0 || n == 0 {
		return
	}
	v := f.buffered.Add(int64(n))
	if over := v > f.watermark; over != f.overMem.Load() {
		f.setMemory(over)
	}
}

func (f *publishFlow) setMemory(over bool) {
	f.mu.Lock()
	v := f.buffered.Load()
	if over != (v > f.watermark) || over == (f.memory != "") {
		f.mu.Unlock()
		return // raced with another change
	}
	if over {
		f.memory = fmt.Sprintf("memory high watermark: %d publish bytes buffered, memoryHighWatermark %d", v, f.watermark)
		f.s.cfg.Log.Warn("amqp publishers blocked", "reason", f.memory)
	} else {
		f.memory = ""
		f.s.cfg.Log.Info("amqp publishers unblocked: buffered publishes below memoryHighWatermark", "bytes", v)
	}
	f.overMem.Store(over)
	f.changedLocked()
	f.mu.Unlock()
	f.s.notifyBlocked()
}

// refused blocks vhost's publishers after its broker refused a publish,
// until a probe is admitted.
func (f *publishFlow) refused(vhost string, r *Refused) {
	reason := "broker flow control: " + r.Remark
	if r.Code == wire.ServiceNotAvailable {
		reason = "broker store not writable (disk full?): " + r.Remark
	}
	reason = clipText(reason)
	f.mu.Lock()
	if _, ok := f.vhosts[vhost]; ok {
		f.mu.Unlock()
		return
	}
	f.vhosts[vhost] = reason
	f.changedLocked()
	f.mu.Unlock()
	f.s.cfg.Log.Warn("amqp publishers blocked", "vhost", vhost, "reason", reason)
	f.s.notifyBlocked()
	go f.probe(vhost)
}

// probe asks vhost's broker to admit a publish of no message until it
// does, then unblocks the vhost.
func (f *publishFlow) probe(vhost string) {
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		select {
		case <-f.s.stop:
			return
		case <-t.C:
		}
		var resp wire.AMQPPublishResponse
		err := f.s.cfg.Backend.Call(vhost, wire.AMQPPublish, wire.AMQPPublishRequest{Vhost: vhost}, &resp)
		if err != nil {
			continue // still refused, or the broker is unreachable
		}
		f.mu.Lock()
		delete(f.vhosts, vhost)
		f.changedLocked()
		f.mu.Unlock()
		f.s.cfg.Log.Info("amqp publishers unblocked: the broker admits publishes again", "vhost", vhost)
		f.s.notifyBlocked()
		return
	}
}

// notifyBlocked sends connection.blocked or unblocked to the publishing
// connections whose state changed.
func (s *Server) notifyBlocked() {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		if c.published.Load() {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.updateBlocked()
	}
}

// updateBlocked tells a publishing connection that advertised the
// capability that it is blocked or unblocked, once per change.
func (c *conn) updateBlocked() {
	if !c.blockCap {
		return
	}
	c.blockMu.Lock()
	defer c.blockMu.Unlock()
	reason, _ := c.s.flow.blocked(c.vhost)
	switch {
	case reason != "" && !c.blockSent:
		c.blockSent = true
		c.sendMethod(0, &amqp.ConnectionBlocked{Reason: reason})
	case reason == "" && c.blockSent:
		c.blockSent = false
		c.sendMethod(0, &amqp.ConnectionUnblocked{})
	}
}

// waitPublishable holds the read loop of a connection that has published
// while its publishers are blocked.
func (c *conn) waitPublishable() {
	if !c.published.Load() {
		return
	}
	for waited := false; ; waited = true {
		reason, changed := c.s.flow.blocked(c.vhost)
		if reason == "" {
			if waited {
				// connection.unblocked goes out before any answer to
				// what this loop reads next, not whenever the notifier
				// gets to this connection.
				c.updateBlocked()
			}
			return
		}
		c.updateBlocked()
		select {
		case <-changed:
		case <-c.done:
			return
		case <-c.s.stop:
			return
		case <-c.s.drain:
			return
		}
	}
}

// leaseRenew is how often the gateway renews its lease with the home
// broker of each vhost it has served (AMQP_LEASE); the broker ends what
// the gateway's connections held when three renewals in a row are missing.
const leaseRenew = 5 * time.Second

// servedVhost notes that a connection opened vhost; the first one renews
// the lease with its broker at once, so that a gateway killed before its
// next renewal is cleaned up too.
func (s *Server) servedVhost(vhost string) {
	s.mu.Lock()
	_, known := s.vhosts[vhost]
	s.vhosts[vhost] = struct{}{}
	s.mu.Unlock()
	if !known {
		go s.renew(vhost)
	}
}

func (s *Server) renew(vhost string) {
	var ok wire.AMQPLeaseOk
	if err := s.cfg.Backend.Call(vhost, wire.AMQPLease, wire.AMQPLeaseRequest{Gateway: s.cfg.GatewayID}, &ok); err != nil {
		s.cfg.Log.Warn("amqp gateway lease not renewed", "vhost", vhost, "err", err)
		return
	}
	if ok.Epoch != 0 {
		s.reregister(vhost, ok.Epoch)
	}
}

// leaseLoop renews the leases until Close.
func (s *Server) leaseLoop() {
	t := time.NewTicker(leaseRenew)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		vhosts := make([]string, 0, len(s.vhosts))
		for v := range s.vhosts {
			vhosts = append(vhosts, v)
		}
		s.mu.Unlock()
		for _, v := range vhosts {
			s.renew(v)
		}
	}
}
