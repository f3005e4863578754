package grpcsvc

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// TLS modes (tlsServerMode), as Java's tls.server.mode (apache/rocketmq
// remoting/src/main/java/org/apache/rocketmq/remoting/netty/TlsSystemConfig.java).
const (
	TLSDisabled   = "disabled"
	TLSPermissive = "permissive"
	TLSEnforcing  = "enforcing"
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

// serverTLS is the certificate the service presents: the configured
// files, else, if selfSigned, one made now for hosts (Java's
// tlsTestModeEnable makes one at every start too).
func serverTLS(certPath, keyPath string, selfSigned bool, hosts []string) (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	if certPath != "" {
		cert, err = tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			return nil, fmt.Errorf("load tlsCertPath %s / tlsKeyPath %s: %w", certPath, keyPath, err)
		}
	} else if !selfSigned {
		return nil, errors.New("TLS needs tlsCertPath and tlsKeyPath, or tlsTestModeEnable=true for a self-signed certificate")
	} else if cert, err = makeSelfSigned(hosts); err != nil {
		return nil, fmt.Errorf("make a self-signed certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// makeSelfSigned makes an ECDSA P-256 certificate valid for a year for the
// given host names and addresses.
func makeSelfSigned(hosts []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "mqops broker (self-signed)"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
