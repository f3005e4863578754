package controller

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// raftMarker is the first byte of every Raft stream. A remoting frame starts
// with the high byte of its 4-byte length, 0x00 for any frame below 16 MiB,
// so one port serves both: brokers' controllerAddr lists the Raft peer
// addresses, as with Java's DLedger controller.
const raftMarker byte = 0xA5

// firstByteTimeout bounds how long an accepted connection may stay silent
// before it is classified.
const firstByteTimeout = 10 * time.Second

// muxListener accepts on one TCP port and sorts connections by their first
// byte into a Raft stream layer and a remoting listener.
type muxListener struct {
	ln     net.Listener
	log    *slog.Logger
	raft   *chanListener
	remote *chanListener
	wg     sync.WaitGroup
}

func newMux(ln net.Listener, log *slog.Logger) *muxListener {
	m := &muxListener{ln: ln, log: log}
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
	_ = c.SetReadDeadline(time.Time{})
	if b[0] == raftMarker {
		m.raft.deliver(c)
		return
	}
	m.remote.deliver(&prefixConn{Conn: c, first: b[0], pending: true})
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
// themselves with raftMarker.
type streamLayer struct {
	*chanListener
	advertise net.Addr
}

func (s *streamLayer) Addr() net.Addr { return s.advertise }

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte{raftMarker}); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("raft stream to %s: %w", addr, err)
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}

// tcpAddr is the advertised peer address (the configured one, which may
// differ from the bound 0.0.0.0 form).
type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }
