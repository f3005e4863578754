package remoting

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// IdleTimeout closes server-side connections that sent nothing for this long
// (clients heartbeat every 30 s; Java uses the same 120 s,
// serverChannelMaxIdleTimeSeconds in apache/rocketmq
// remoting/src/main/java/org/apache/rocketmq/remoting/netty/NettyServerConfig.java).
const IdleTimeout = 120 * time.Second

// Server accepts remoting connections and serves them with one Handler.
type Server struct {
	ln      net.Listener
	handler Handler
	log     *slog.Logger

	mu     sync.Mutex
	conns  map[*Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	adm    admission // guarded by mu, but for its atomic counters
}

// Listen binds addr and returns a server that is not yet accepting.
func Listen(addr string, h Handler, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return NewServer(ln, h, log), nil
}

// NewServer serves connections accepted from ln, which the server owns and
// closes: a listener shared with another protocol hands remoting its share.
func NewServer(ln net.Listener, h Handler, log *slog.Logger) *Server {
	if log == nil { // tests and tools that want no log pass nil
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{ln: ln, handler: h, log: log, conns: make(map[*Conn]struct{})}
	s.SetLimits(Limits{})
	return s
}

// SetLimits replaces the server's limits (zero fields: defaults); call it
// before Serve.
func (s *Server) SetLimits(l Limits) {
	l = l.WithDefaults()
	s.adm = admission{limits: l, nofile: openFileLimit(), perAddr: make(map[netip.Addr]int), budget: newFrameBudget(l.FrameBudget)}
}

// Stats returns the server's connection counters.
func (s *Server) Stats() ServerStats {
	s.mu.Lock()
	n := len(s.conns)
	s.mu.Unlock()
	return ServerStats{
		Conns: n, Refused: s.adm.refused.Load(), Stalled: s.adm.stalled.Load(),
		StalledTotal: s.adm.stallsN.Load(), FrameBytes: s.adm.budget.inUse(),
		Paused: s.adm.paused.Load(), PausedTotal: s.adm.pausesN.Load(),
	}
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until Close. onAccept, if set, runs for every
// new connection before its first request is read.
func (s *Server) Serve(onAccept func(*Conn)) error {
	l := s.adm.limits
	s.log.Info("[CONN_LIMITS] remoting connection limits", "addr", s.Addr().String(), "maxConnections", l.MaxConns,
		"maxConnectionsPerAddress", l.MaxConnsPerAddr, "connectionFdReserve", l.FDReserve, "frameMemoryBudget", l.FrameBudget,
		"outputHighWaterMark", l.HighWater, "outputLowWaterMark", l.LowWater)
	var backoff time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors or memory: existing connections
			// keep working, and accepting resumes once resources free up.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Error("[ACCEPT_FAILED] accept failed, retrying", "err", err, "backoff", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		addr := sourceAddr(nc)
		if !s.admit(nc, addr) {
			continue
		}
		c := newConn(nc, s.handler, s.log, IdleTimeout)
		c.limit(&s.adm)
		// A connection accepted while Close runs must not outlive it:
		// registration and the wait-group count happen under the lock
		// Close takes before it looks at either.
		s.mu.Lock()
		if s.closed {
			s.adm.leave(addr)
			s.mu.Unlock()
			_ = nc.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(2)
		s.mu.Unlock()
		c.OnClose(func(c *Conn) {
			s.mu.Lock()
			delete(s.conns, c)
			s.adm.leave(addr)
			s.mu.Unlock()
		})
		if onAccept != nil {
			onAccept(c)
		}
		go func() { defer s.wg.Done(); c.writeLoop() }()
		go func() { defer s.wg.Done(); c.readLoop() }()
	}
}

// admit counts a new connection against the limits, or closes it at once:
// refusing costs an accept and a close, and one log line per 10 s.
func (s *Server) admit(nc net.Conn, addr netip.Addr) bool {
	s.mu.Lock()
	reason := s.adm.admit(nc, addr)
	var log bool
	var suppressed int
	if reason != "" {
		log, suppressed = s.adm.noteRefusal(time.Now())
	}
	s.mu.Unlock()
	if reason == "" {
		return true
	}
	_ = nc.Close()
	if log {
		s.log.Warn("[CONN_REFUSED] connection limit reached, closing new connections", "limit", reason,
			"remote", nc.RemoteAddr().String(), "suppressed", suppressed)
	}
	return false
}

// Close stops accepting, closes every connection and waits for their loops.
func (s *Server) Close() {
	_ = s.ln.Close()
	s.mu.Lock()
	s.closed = true
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	s.wg.Wait()
}
