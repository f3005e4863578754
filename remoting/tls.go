package remoting

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/mqops/mqops/tlsconf"
)

// handshakeTimeout bounds a TLS handshake once its first byte arrived.
const handshakeTimeout = 10 * time.Second

// refusedLogEvery is the window in which refused plaintext connections of
// an enforcing listener are logged once, with the count of the others.
const refusedLogEvery = 10 * time.Second

// errPlaintextRefused ends a plaintext connection to an enforcing port.
var errPlaintextRefused = errors.New("plaintext connection refused: tlsServerMode is enforcing")

// ListenTLS is Listen with the remoting port's TLS mode applied (see
// TLSListener); cfg may be nil when mode is disabled.
func ListenTLS(addr, mode string, cfg *tls.Config, h Handler, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	tl, err := TLSListener(ln, mode, cfg, IdleTimeout, log)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	return NewServer(tl, h, log), nil
}

// TLSListener applies a TLS mode to ln. Disabled returns ln as is.
// Permissive and enforcing look at each connection's first byte, as Java's
// HandshakeHandler does (apache/rocketmq
// remoting/src/main/java/org/apache/rocketmq/remoting/netty/NettyRemotingServer.java):
// 0x16, a TLS handshake record, gets TLS; anything else is plaintext in
// permissive mode and closed in enforcing mode. A remoting frame never
// starts with 0x16: its length prefix would be at least 0x16000000, beyond
// the 16 MiB frame limit.
//
// Accept does no I/O: the sniff and the handshake run on the first Read or
// Write of the connection, that is on its own goroutine, so a silent peer
// never holds up the accept loop. The first byte must come within
// firstByte, the handshake within 10 s after it.
func TLSListener(ln net.Listener, mode string, cfg *tls.Config, firstByte time.Duration, log *slog.Logger) (net.Listener, error) {
	switch mode {
	case tlsconf.Disabled:
		return ln, nil
	case tlsconf.Permissive, tlsconf.Enforcing:
		if firstByte <= 0 {
			return nil, fmt.Errorf("TLS listener: first-byte timeout %v, want > 0", firstByte)
		}
		if cfg == nil {
			return nil, fmt.Errorf("tlsServerMode = %s needs a certificate", mode)
		}
		return &sniffListener{Listener: ln, enforcing: mode == tlsconf.Enforcing, cfg: cfg, firstByte: firstByte, log: log}, nil
	}
	return nil, fmt.Errorf("tlsServerMode = %q: want disabled, permissive or enforcing", mode)
}

type sniffListener struct {
	net.Listener
	enforcing bool
	cfg       *tls.Config
	firstByte time.Duration
	log       *slog.Logger

	mu         sync.Mutex // guards the refusal log's window
	lastLogged time.Time
	suppressed int
}

func (l *sniffListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &sniffConn{Conn: nc, l: l}, nil
}

// refused logs a refused plaintext connection, once per window.
func (l *sniffListener) refused(remote net.Addr) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.lastLogged) < refusedLogEvery {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.lastLogged, l.suppressed = now, 0
	l.mu.Unlock()
	l.log.Warn("[TLS] plaintext connection refused (tlsServerMode=enforcing)", "remote", remote.String(), "suppressed", n)
}

// sniffConn is an accepted connection whose protocol its first byte
// decides. Its embedded Conn is the raw TCP connection.
type sniffConn struct {
	net.Conn
	l *sniffListener

	once sync.Once
	c    net.Conn // after the decision: the plaintext or TLS stream
	err  error    // the decision failed: every call returns it

	dmu           sync.Mutex // guards the deadlines the user set
	readDeadline  time.Time
	writeDeadline time.Time
}

// SyscallConn exposes the socket beneath, so that the accept path's
// descriptor reserve (limits.go socketFD) sees TLS-capable connections too.
func (c *sniffConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("not a socket")
	}
	return sc.SyscallConn()
}

// IsTLS reports whether c, accepted from a TLSListener (or a plain
// listener), speaks TLS. It waits for the first byte when nothing was read
// yet, so call it once the peer's first request arrived.
func IsTLS(c net.Conn) bool {
	s, ok := c.(*sniffConn)
	if !ok {
		_, ok = c.(*tls.Conn)
		return ok
	}
	s.decide()
	_, ok = s.c.(*tls.Conn)
	return ok
}

func (s *sniffConn) decide() {
	s.once.Do(func() {
		s.c, s.err = s.sniff()
		if s.err != nil {
			_ = s.Conn.Close()
		}
	})
}

func (s *sniffConn) sniff() (net.Conn, error) {
	var first [1]byte
	_ = s.Conn.SetReadDeadline(time.Now().Add(s.l.firstByte))
	if _, err := io.ReadFull(s.Conn, first[:]); err != nil {
		return nil, fmt.Errorf("read the first byte: %w", err)
	}
	pc := &prefixConn{Conn: s.Conn, b: first[0], has: true}
	if first[0] != 0x16 {
		if s.l.enforcing {
			s.l.refused(s.RemoteAddr())
			return nil, errPlaintextRefused
		}
		s.restoreDeadlines()
		return pc, nil
	}
	tc := tls.Server(pc, s.l.cfg)
	_ = s.Conn.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	s.restoreDeadlines()
	return tc, nil
}

// restoreDeadlines puts back what the user set before the sniff.
func (s *sniffConn) restoreDeadlines() {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	_ = s.Conn.SetReadDeadline(s.readDeadline)
	_ = s.Conn.SetWriteDeadline(s.writeDeadline)
}

func (s *sniffConn) Read(b []byte) (int, error) {
	s.decide()
	if s.err != nil {
		return 0, s.err
	}
	return s.c.Read(b)
}

func (s *sniffConn) Write(b []byte) (int, error) {
	s.decide()
	if s.err != nil {
		return 0, s.err
	}
	return s.c.Write(b)
}

// Close closes the TCP connection without a TLS close_notify: sending
// one may block for seconds on a peer that stopped reading, and Server.Close
// closes its connections one after the other. Frames delimit the stream,
// so the peer loses nothing by the missing alert.
func (s *sniffConn) Close() error { return s.Conn.Close() }

// The deadline setters record the user's deadlines, which the sniff
// replaces with its own while it runs.
func (s *sniffConn) SetDeadline(t time.Time) error {
	s.dmu.Lock()
	s.readDeadline, s.writeDeadline = t, t
	s.dmu.Unlock()
	return s.Conn.SetDeadline(t)
}

func (s *sniffConn) SetReadDeadline(t time.Time) error {
	s.dmu.Lock()
	s.readDeadline = t
	s.dmu.Unlock()
	return s.Conn.SetReadDeadline(t)
}

func (s *sniffConn) SetWriteDeadline(t time.Time) error {
	s.dmu.Lock()
	s.writeDeadline = t
	s.dmu.Unlock()
	return s.Conn.SetWriteDeadline(t)
}

// prefixConn gives back the sniffed byte before the rest of the stream.
type prefixConn struct {
	net.Conn
	b   byte
	has bool
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if p.has && len(b) > 0 {
		b[0], p.has = p.b, false
		return 1, nil
	}
	return p.Conn.Read(b)
}
