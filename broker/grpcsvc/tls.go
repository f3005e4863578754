package grpcsvc

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mqops/mqops/tlsconf"
)

// TLS modes (tlsServerMode), as Java's tls.server.mode (apache/rocketmq
// remoting/src/main/java/org/apache/rocketmq/remoting/netty/TlsSystemConfig.java).
const (
	TLSDisabled   = tlsconf.Disabled
	TLSPermissive = tlsconf.Permissive
	TLSEnforcing  = tlsconf.Enforcing
)

// sniffTimeout bounds the wait for a new connection's first byte.
const sniffTimeout = 10 * time.Second

// sniffCreds serves TLS and plaintext on one port, as Java's
// ProxyAndTlsProtocolNegotiator does (apache/rocketmq
// proxy/src/main/java/org/apache/rocketmq/proxy/grpc/ProxyAndTlsProtocolNegotiator.java):
// a connection whose first byte is a TLS handshake record (0x16) gets
// TLS, anything else (the HTTP/2 preface) plaintext. The Go v5.1.2 client
// only dials TLS, the Node.js client plaintext by default.
type sniffCreds struct {
	tls   credentials.TransportCredentials
	plain credentials.TransportCredentials
	mode  string
}

func newSniffCreds(mode string, cfg *tls.Config) credentials.TransportCredentials {
	c := &sniffCreds{plain: insecure.NewCredentials(), mode: mode}
	if cfg != nil {
		c.tls = credentials.NewTLS(cfg) // adds ALPN h2
	}
	return c
}

// peekedConn is a conn whose first bytes were read into a buffer.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

func (c *sniffCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	switch c.mode {
	case TLSDisabled:
		return c.plain.ServerHandshake(conn)
	case TLSEnforcing:
		return c.tls.ServerHandshake(conn)
	}
	if err := conn.SetReadDeadline(time.Now().Add(sniffTimeout)); err != nil {
		return nil, nil, err
	}
	r := bufio.NewReader(conn)
	first, err := r.Peek(1)
	if err != nil {
		return nil, nil, fmt.Errorf("read the first byte: %w", err)
	}
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		return nil, nil, err
	}
	pc := &peekedConn{Conn: conn, r: r}
	if first[0] == 0x16 { // TLS record type handshake
		return c.tls.ServerHandshake(pc)
	}
	return c.plain.ServerHandshake(pc)
}

func (c *sniffCreds) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("server-side credentials only")
}

func (c *sniffCreds) Info() credentials.ProtocolInfo {
	if c.mode == TLSDisabled || c.tls == nil {
		return c.plain.Info()
	}
	return c.tls.Info()
}

func (c *sniffCreds) Clone() credentials.TransportCredentials {
	d := *c
	if c.tls != nil {
		d.tls = c.tls.Clone()
	}
	return &d
}

func (c *sniffCreds) OverrideServerName(string) error { return nil }
