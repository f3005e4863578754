package controller

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// raftMarker is the first byte of every plaintext Raft stream, and
// raftTLSMarker of every Raft stream that continues with a TLS handshake.
// A remoting frame starts with the high byte of its 4-byte length, 0x00
// for any frame below 16 MiB, and a TLS remoting connection with 0x16, so
// one port serves all three: brokers' controllerAddr lists the Raft peer
// addresses, as with Java's DLedger controller.
const (
	raftMarker    byte = 0xA5
	raftTLSMarker byte = 0xA6
)

// raftTLS is how a node's Raft streams use TLS, following its
// tlsServerMode: disabled, plaintext only; permissive, TLS when dialling
// and both accepted (a node of the group not yet restarted with TLS still
// reaches it); enforcing, TLS only.
type raftTLS struct {
	server    *tls.Config  // accepted TLS streams; nil: refused
	client    *tls.Config  // dialled streams; nil: plaintext
	plainRaft bool         // accept plaintext streams
	refused   atomic.Int64 // streams refused, for the log's rate
}

// firstByteTimeout bounds how long an accepted connection may stay silent
// before it is classified.
const firstByteTimeout = 10 * time.Second

// muxListener accepts on one TCP port and sorts connections by their first
// byte into a Raft stream layer and a remoting listener.
type muxListener struct {
	ln     net.Listener
	log    *slog.Logger
	tls    *raftTLS
	raft   *chanListener
	remote *chanListener
	wg     sync.WaitGroup
}

func newMux(ln net.Listener, rt *raftTLS, log *slog.Logger) *muxListener {
	m := &muxListener{ln: ln, log: log, tls: rt}
	m.raft = newChanListener(ln.Addr())
	m.remote = newChanListener(ln.Addr())
	return m
}

func (m *muxListener) serve() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				m.raft.Close()
				m.remote.Close()
				return
			}
			m.log.Error("[CONTROLLER] accept failed", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.classify(c)
		}()
	}
}

func (m *muxListener) classify(c net.Conn) {
	var b [1]byte
	_ = c.SetReadDeadline(time.Now().Add(firstByteTimeout))
	if _, err := c.Read(b[:]); err != nil {
		_ = c.Close()
		return
	}
	switch b[0] {
	case raftMarker:
		_ = c.SetReadDeadline(time.Time{})
		if !m.tls.plainRaft {
			m.refuseRaft(c, "plaintext Raft stream refused (tlsServerMode=enforcing): the peer must run with TLS too", nil)
			return
		}
		m.raft.deliver(c)
	case raftTLSMarker:
		if m.tls.server == nil {
			m.refuseRaft(c, "TLS Raft stream refused (tlsServerMode=disabled): the peer must run without TLS too", nil)
			return
		}
		tc := tls.Server(c, m.tls.server)
		_ = c.SetDeadline(time.Now().Add(firstByteTimeout))
		if err := tc.Handshake(); err != nil {
			m.refuseRaft(c, "TLS handshake of a Raft stream failed", err)
			return
		}
		_ = c.SetDeadline(time.Time{})
		m.raft.deliver(tc)
	default:
		_ = c.SetReadDeadline(time.Time{})
		m.remote.deliver(&prefixConn{Conn: c, first: b[0], pending: true})
	}
}

// refuseRaft closes a Raft stream this node does not take, logging one
// refusal in 100: a peer keeps redialling.
func (m *muxListener) refuseRaft(c net.Conn, why string, err error) {
	if m.tls.refused.Add(1)%100 == 1 {
		m.log.Warn("[CONTROLLER] "+why, "remote", c.RemoteAddr().String(), "err", err)
	}
	_ = c.Close()
}

func (m *muxListener) close() {
	_ = m.ln.Close()
	m.wg.Wait()
}

// prefixConn gives back the byte the classifier read.
type prefixConn struct {
	net.Conn
	first   byte
	pending bool
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if p.pending && len(b) > 0 {
		p.pending = false
		b[0] = p.first
		return 1, nil
	}
	return p.Conn.Read(b)
}

// chanListener is a net.Listener fed by the mux.
type chanListener struct {
	addr      net.Addr
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		_ = c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// streamLayer is raft.StreamLayer over the mux: dialled streams announce
// themselves with raftMarker, or with raftTLSMarker and then run a TLS
// handshake when the node's Raft streams use TLS.
type streamLayer struct {
	*chanListener
	advertise net.Addr
	tls       *tls.Config // nil: plaintext
}

func (s *streamLayer) Addr() net.Addr { return s.advertise }

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	marker := raftMarker
	if s.tls != nil {
		marker = raftTLSMarker
	}
	if _, err := c.Write([]byte{marker}); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("raft stream to %s: %w", addr, err)
	}
	if s.tls != nil {
		tc := tls.Client(c, s.tls)
		if err := tc.Handshake(); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("raft stream to %s: TLS handshake: %w", addr, err)
		}
		c = tc
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// tcpAddr is the advertised peer address (the configured one, which may
// differ from the bound 0.0.0.0 form).
type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }
