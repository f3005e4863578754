// Package tlsconf builds the TLS configurations of mqops's daemons and
// clients: the server certificate (files, or a self-signed one as Java's
// test mode makes) and the client's trust settings. Modes and defaults
// follow apache/rocketmq
// remoting/src/main/java/org/apache/rocketmq/remoting/netty/TlsSystemConfig.java.
package tlsconf

import (
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
	"os"
	"time"
)

// Server modes (tlsServerMode, Java's tls.server.mode).
const (
	Disabled   = "disabled"   // plaintext only
	Permissive = "permissive" // TLS and plaintext on one port, the first byte decides
	Enforcing  = "enforcing"  // TLS only
)

// Server is the certificate a daemon presents: certPath/keyPath (PEM),
// else, if selfSigned, one made now for hosts (Java's
// tls.test.mode.enable makes one at every start too). Errors name the
// configuration keys involved.
func Server(certPath, keyPath string, selfSigned bool, hosts []string) (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	switch {
	case certPath != "" || keyPath != "":
		if certPath == "" || keyPath == "" {
			return nil, errors.New("tlsCertPath and tlsKeyPath go together: set both or neither")
		}
		cert, err = tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			return nil, fmt.Errorf("tlsCertPath = %s, tlsKeyPath = %s: %w", certPath, keyPath, err)
		}
	case !selfSigned:
		return nil, errors.New("TLS needs tlsCertPath and tlsKeyPath, or tlsTestModeEnable = true for a self-signed certificate")
	default:
		if cert, err = SelfSigned(hosts); err != nil {
			return nil, fmt.Errorf("make a self-signed certificate: %w", err)
		}
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// SelfSigned makes an ECDSA P-256 certificate valid for a year for the
// given host names and addresses.
func SelfSigned(hosts []string) (tls.Certificate, error) {
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
		Subject:      pkix.Name{CommonName: "mqops (self-signed)"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !ip.IsUnspecified() { // 0.0.0.0, a wildcard bindAddress, names no host
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
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

// ClientOptions say how a client trusts the server (Java's tls.client.*).
type ClientOptions struct {
	// ServerName is checked against the certificate; empty means the host
	// part of the address dialled.
	ServerName string
	// CAFile (PEM) holds the authorities to trust instead of the system's.
	CAFile string
	// InsecureSkipVerify accepts any certificate, e.g. a self-signed one
	// (Java's default, tls.client.authServer=false): the connection is
	// encrypted but not authenticated.
	InsecureSkipVerify bool
	// CAFileKey names the setting CAFile came from in errors
	// (tlsClientTrustCertPath, --tls-ca-file).
	CAFileKey string
}

// Client is the configuration a client dials with.
func Client(o ClientOptions) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: o.ServerName, MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.InsecureSkipVerify}
	if o.CAFile != "" && !o.InsecureSkipVerify {
		key := o.CAFileKey
		if key == "" {
			key = "CA file"
		}
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s = %s: no PEM certificate in the file", key, o.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
