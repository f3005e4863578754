// Package gateway is the front end of the AMQP 0-9-1 gateway (mqamqp): the
// listener, one goroutine pair per connection (a read loop that processes
// every frame in arrival order, and a bounded writer that flushes in
// bursts and sends heartbeats), connection negotiation, and channels as
// state machines. Metadata methods go to the vhost's home broker through a
// Backend, and so do publishes, fetches and settles (message.go; push
// delivery by per-queue pumps taking turns at the writer, pump.go;
// transactions, tx.go). Its own figures are served for monitoring
// (stats.go).
package gateway

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Config is what the gateway negotiates and enforces.
type Config struct {
	Heartbeat        uint16 // seconds proposed in connection.tune; 0 off
	FrameMax         uint32 // bytes proposed in connection.tune
	ChannelMax       uint16 // proposed in connection.tune
	HandshakeTimeout time.Duration
	MaxMessageSize   uint64 // larger bodies close the channel with 406
	MaxConnections   int    // 0: unlimited
	// LoopbackUsers may log in only from a loopback address (RabbitMQ's
	// loopback_users).
	LoopbackUsers []string
	// ConsumeTimeout is how long a delivery may stay unacknowledged
	// unless its queue sets x-consumer-timeout (timeout.go).
	ConsumeTimeout time.Duration
	// GatewayID names this gateway in exclusive queue owners
	// (gateway id, connection id).
	GatewayID string
	// MemoryHighWatermark, bytes of publish bodies buffered in the
	// gateway above which publishers are blocked (connection.blocked);
	// 0: no limit.
	MemoryHighWatermark int64
	// ImmediateRequeue (requeueMode=immediate): nack and reject with
	// requeue put the message back at once, as RabbitMQ does, instead of
	// through the graded retry delays.
	ImmediateRequeue bool
	// PerConsumerQos (globalQos=false): basic.qos global=1 sets each next
	// consumer's window, as RabbitMQ 4.3's default, not a shared one.
	PerConsumerQos bool
	// TLSAddr, when set, is a second listener serving AMQP over TLS
	// (amqps) with TLS: the same connections once the handshake is done.
	TLSAddr string
	TLS     *tls.Config
	Backend Backend
	Log     *slog.Logger
}

// Server accepts AMQP connections.
type Server struct {
	cfg    Config
	ln     net.Listener
	tlsLn  net.Listener // amqps; nil when TLSAddr is not set
	nextID atomic.Uint64
	flow   *publishFlow
	reg    registry      // consumers registered with the brokers (reregister.go)
	stop   chan struct{} // closed by Close
	// draining: Shutdown has begun (drain is closed then too); read
	// loops end their connections with 320 instead of reading on.
	draining atomic.Bool
	drain    chan struct{}

	stats   counters  // stats.go
	started time.Time // for Stats

	mu        sync.Mutex
	conns     map[*conn]struct{}
	statsSrv  *http.Server // ServeStats's, nil when not served
	statsAddr net.Addr
	vhosts    map[string]struct{} // opened by some connection: leased
	closed    bool
	wg        sync.WaitGroup
}

// Listen binds addr; Serve accepts.
func Listen(addr string, cfg Config) (*Server, error) {
	if cfg.Backend == nil || cfg.Log == nil {
		return nil, errors.New("gateway: Backend and Log are required")
	}
	if cfg.FrameMax < 4096 || cfg.ChannelMax == 0 || cfg.HandshakeTimeout <= 0 || cfg.MaxMessageSize == 0 {
		return nil, fmt.Errorf("gateway: bad limits %+v", cfg)
	}
	if (cfg.TLSAddr == "") != (cfg.TLS == nil) {
		return nil, errors.New("gateway: TLSAddr and TLS go together")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	var tlsLn net.Listener
	if cfg.TLSAddr != "" {
		raw, err := net.Listen("tcp", cfg.TLSAddr)
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("listen %s (tlsListenAddr): %w", cfg.TLSAddr, err)
		}
		// The handshake runs on the connection's first read, under its
		// handshake deadline (conn.run).
		tlsLn = tls.NewListener(raw, cfg.TLS)
	}
	s := &Server{cfg: cfg, ln: ln, tlsLn: tlsLn, conns: map[*conn]struct{}{}, vhosts: map[string]struct{}{}, stop: make(chan struct{}), drain: make(chan struct{}), started: time.Now()}
	s.flow = newPublishFlow(s, cfg.MemoryHighWatermark)
	go s.leaseLoop()
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// TLSAddr is the amqps listener's bound address, nil without one.
func (s *Server) TLSAddr() net.Addr {
	if s.tlsLn == nil {
		return nil
	}
	return s.tlsLn.Addr()
}

// Serve accepts connections on both listeners until Close.
func (s *Server) Serve() {
	if s.tlsLn != nil {
		go s.accept(s.tlsLn)
	}
	s.accept(s.ln)
}

func (s *Server) accept(ln net.Listener) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed || s.draining.Load()
			s.mu.Unlock()
			if closed {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.cfg.Log.Error("amqp accept failed", "err", err)
			time.Sleep(100 * time.Millisecond) // EMFILE and the like: do not spin
			continue
		}
		s.mu.Lock()
		if s.closed || (s.cfg.MaxConnections > 0 && len(s.conns) >= s.cfg.MaxConnections) {
			full := !s.closed
			s.mu.Unlock()
			if full {
				s.stats.refused.Add(1)
				s.cfg.Log.Warn("amqp connection refused: maxConnections reached", "remote", nc.RemoteAddr().String(), "max", s.cfg.MaxConnections)
			}
			_ = nc.Close()
			continue
		}
		s.stats.accepted.Add(1)
		c := newConn(s, nc, s.nextID.Add(1))
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Connections is the number of open connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Shutdown closes the gateway as RabbitMQ's shutdown does, for a rolling
// restart (drainTimeout): it stops accepting; each connection stops
// reading, lets its channels hand what they read to the broker and send
// the confirms, then sends connection.close 320 CONNECTION_FORCED, which
// clients with recovery (amqp091-go's, Spring's) answer by reconnecting,
// to another gateway. Unacked deliveries go back to their queues as on
// any close. What has not ended after timeout is closed as Close does.
func (s *Server) Shutdown(timeout time.Duration) {
	s.mu.Lock()
	if s.closed || s.draining.Load() {
		s.mu.Unlock()
		s.Close()
		return
	}
	s.draining.Store(true)
	close(s.drain)
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.closeListeners()
	s.cfg.Log.Info("amqp gateway draining: connections get connection.close 320 once their publishes are answered",
		"connections", len(conns), "drainTimeout", timeout)
	// A read loop blocked in a read wakes now; one that sets its next
	// deadline after this sees draining first (conn.run).
	for _, c := range conns {
		_ = c.nc.SetReadDeadline(time.Now())
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.cfg.Log.Warn("amqp gateway drain timed out: closing the remaining connections", "drainTimeout", timeout, "left", s.Connections())
	}
	s.Close()
}

// Close stops accepting and closes every connection's socket.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.closed {
		close(s.stop)
	}
	s.closed = true
	for c := range s.conns {
		_ = c.nc.Close()
	}
	s.mu.Unlock()
	s.closeListeners()
	s.closeStats()
	s.wg.Wait()
}

// closeListeners ends both accept loops (after Shutdown, again: harmless).
func (s *Server) closeListeners() {
	_ = s.ln.Close()
	if s.tlsLn != nil {
		_ = s.tlsLn.Close()
	}
}
