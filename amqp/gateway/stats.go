package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/wire"
)

// counters are the gateway's running totals for Stats. Each is bumped
// once per event or per batch (a delivery quantum, a publish run), never
// per frame, so monitoring costs the message paths an atomic add.
type counters struct {
	accepted, refused, loginsRefused, connErrors, chanErrors atomic.Uint64
	published, publishFailed, returned                       atomic.Uint64
	delivered, redelivered, acked, requeued, rejected        atomic.Uint64
	channels                                                 atomic.Int64
}

// settled counts n client settlements of kind op (wire.AMQPAck,
// AMQPRequeue, AMQPReject).
func (k *counters) settled(op string, n int) {
	switch op {
	case wire.AMQPAck:
		k.acked.Add(uint64(n))
	case wire.AMQPRequeue:
		k.requeued.Add(uint64(n))
	default:
		k.rejected.Add(uint64(n))
	}
}

// Stats is the gateway's state now and its counters since start.
func (s *Server) Stats() wire.AMQPGatewayStats {
	k := &s.stats
	st := wire.AMQPGatewayStats{
		Gateway: s.cfg.GatewayID, StartTime: s.started.UnixMilli(),
		Channels:            k.channels.Load(),
		BufferedBytes:       s.flow.buffered.Load(),
		ConnectionsAccepted: k.accepted.Load(), ConnectionsRefused: k.refused.Load(), LoginsRefused: k.loginsRefused.Load(),
		ConnectionErrors: k.connErrors.Load(), ChannelErrors: k.chanErrors.Load(),
		Published: k.published.Load(), PublishFailed: k.publishFailed.Load(), Returned: k.returned.Load(),
		Delivered: k.delivered.Load(), Redelivered: k.redelivered.Load(),
		Acked: k.acked.Load(), Requeued: k.requeued.Load(), Rejected: k.rejected.Load(),
	}
	if s.flow.overMem.Load() {
		st.MemoryAlarm = 1
	}
	s.flow.mu.Lock()
	st.BlockedVhosts = len(s.flow.vhosts)
	s.flow.mu.Unlock()
	s.reg.mu.Lock()
	st.Consumers = len(s.reg.consumers)
	s.reg.mu.Unlock()
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	st.Connections = len(conns)
	for _, c := range conns {
		// vhost is set before published (conn.published).
		if c.published.Load() {
			if reason, _ := s.flow.blocked(c.vhost); reason != "" {
				st.BlockedPublishers++
			}
		}
	}
	return st
}

// ServeStats serves Stats as JSON on addr (GET /stats) until Close, for
// monitoring (statsListenAddr). The listener is bound before it returns,
// so a bad or taken address fails the start.
func (s *Server) ServeStats(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("statsListenAddr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Stats())
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return errors.New("gateway closed")
	}
	s.statsSrv, s.statsAddr = hs, ln.Addr()
	s.mu.Unlock()
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Log.Error("amqp gateway stats endpoint stopped", "addr", addr, "err", err)
		}
	}()
	s.cfg.Log.Info("amqp gateway stats served", "addr", "http://"+ln.Addr().String()+"/stats")
	return nil
}

// StatsAddr is the stats endpoint's bound address, nil when not served.
func (s *Server) StatsAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statsAddr
}

// closeStats stops the stats endpoint, if served.
func (s *Server) closeStats() {
	s.mu.Lock()
	hs := s.statsSrv
	s.mu.Unlock()
	if hs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	}
}
