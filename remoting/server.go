package remoting

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
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
	return &Server{ln: ln, handler: h, log: log, conns: make(map[*Conn]struct{})}
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until Close. onAccept, if set, runs for every
// new connection before its first request is read.
func (s *Server) Serve(onAccept func(*Conn)) error {
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
		c := newConn(nc, s.handler, s.log, IdleTimeout)
		// A connection accepted while Close runs must not outlive it:
		// registration and the wait-group count happen under the lock
		// Close takes before it looks at either.
		s.mu.Lock()
		if s.closed {
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
			s.mu.Unlock()
		})
		if onAccept != nil {
			onAccept(c)
		}
		go func() { defer s.wg.Done(); c.writeLoop() }()
		go func() { defer s.wg.Done(); c.readLoop() }()
	}
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
