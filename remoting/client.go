package remoting

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mqops/mqops/wire"
)

// DialTimeout bounds connection set-up to a peer.
const DialTimeout = 3 * time.Second

// Client keeps one connection per remote address, like RocketMQ clients do,
// and serves requests the peer initiates on it with handler (may be nil).
type Client struct {
	handler Handler
	log     *slog.Logger

	mu     sync.Mutex
	conns  map[string]*Conn
	closed bool
	signer *wire.Signer // signs every request when set (plain ACL)
	tls    *tls.Config  // nil: plaintext
	dial   func(addr string) (net.Conn, error)

	// signMu serialises signing: a Signer reuses its hashes and buffers,
	// so a request costs the hash of its bytes, not a new HMAC.
	signMu sync.Mutex
}

// SetCredentials makes Invoke and InvokeOneway sign each request with
// RocketMQ's plain-ACL signature (empty credentials: unsigned); call it
// before the first request.
func (cl *Client) SetCredentials(cr wire.Credentials) {
	var s *wire.Signer
	if !cr.IsEmpty() {
		s = wire.NewSigner(cr.AccessKey, cr.SecretKey, "")
	}
	cl.mu.Lock()
	cl.signer = s
	cl.mu.Unlock()
}

// sign signs req when the client has credentials. req must not be shared
// with another goroutine: signing adds fields.
func (cl *Client) sign(req *wire.Command) {
	cl.mu.Lock()
	s := cl.signer
	cl.mu.Unlock()
	if s != nil {
		cl.signMu.Lock()
		s.Sign(req)
		cl.signMu.Unlock()
	}
}

// NewClient returns a client with no connections yet.
func NewClient(h Handler, log *slog.Logger) *Client {
	return &Client{handler: h, log: log, conns: make(map[string]*Conn)}
}

// UseTLS makes connections dialled from now on TLS with cfg (nil:
// plaintext), as Java's useTLS/tls.enable; the handshake counts against
// DialTimeout. A server name left empty is the dialled address's host.
func (cl *Client) UseTLS(cfg *tls.Config) {
	cl.mu.Lock()
	cl.tls = cfg
	cl.mu.Unlock()
}

// SetDial makes connections dialled from now on come from dial (nil: TCP,
// or TLS after UseTLS): a front end embedded in a daemon routes the
// daemon's own address to its MemListener and dials the others.
func (cl *Client) SetDial(dial func(addr string) (net.Conn, error)) {
	cl.mu.Lock()
	cl.dial = dial
	cl.mu.Unlock()
}

// Conn returns the connection to addr, dialling it if needed.
func (cl *Client) Conn(addr string) (*Conn, error) {
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		return nil, ErrClosed
	}
	// A connection that just failed stays in the map until its close
	// callbacks run: a caller retrying at once must get a new one.
	if c, ok := cl.conns[addr]; ok && !c.isClosed() {
		cl.mu.Unlock()
		return c, nil
	}
	tcfg, dial := cl.tls, cl.dial
	cl.mu.Unlock()
	var nc net.Conn
	var err error
	if dial != nil {
		nc, err = dial(addr)
	} else if tcfg != nil {
		nc, err = tls.DialWithDialer(&net.Dialer{Timeout: DialTimeout}, "tcp", addr, tcfg)
	} else {
		nc, err = net.DialTimeout("tcp", addr, DialTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c := newConn(nc, cl.handler, cl.log, 0)
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		_ = nc.Close()
		return nil, ErrClosed
	}
	if old, ok := cl.conns[addr]; ok && !old.isClosed() {
		cl.mu.Unlock()
		_ = nc.Close()
		return old, nil
	}
	cl.conns[addr] = c
	cl.mu.Unlock()
	c.OnClose(func(c *Conn) {
		cl.mu.Lock()
		if cl.conns[addr] == c {
			delete(cl.conns, addr)
		}
		cl.mu.Unlock()
	})
	go c.writeLoop()
	go c.readLoop()
	return c, nil
}

// Invoke sends req to addr and waits for the answer.
func (cl *Client) Invoke(addr string, req *wire.Command, timeout time.Duration) (*wire.Command, error) {
	c, err := cl.Conn(addr)
	if err != nil {
		return nil, err
	}
	cl.sign(req)
	return c.Invoke(req, timeout)
}

// InvokeOneway sends req to addr without waiting.
func (cl *Client) InvokeOneway(addr string, req *wire.Command) error {
	c, err := cl.Conn(addr)
	if err != nil {
		return err
	}
	cl.sign(req)
	return c.InvokeOneway(req)
}

// Close closes every connection.
func (cl *Client) Close() {
	cl.mu.Lock()
	cl.closed = true
	conns := cl.conns
	cl.conns = map[string]*Conn{}
	cl.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}
