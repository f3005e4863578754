package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"github.com/mqops/mqops/tlsconf"
)

// ServerTLS is the TLS of a daemon's remoting port (and the broker's gRPC
// port). Keys and defaults are Java's (apache/rocketmq
// remoting/src/main/java/org/apache/rocketmq/remoting/netty/TlsSystemConfig.java):
// permissive with a self-signed certificate unless files are given.
type ServerTLS struct {
	// tlsServerMode (Java's tls.server.mode): disabled (plaintext only),
	// permissive (TLS and plaintext on one port, the first byte decides)
	// or enforcing (TLS only).
	TLSServerMode     string
	TLSTestModeEnable bool   // tlsTestModeEnable (tls.test.mode.enable): a self-signed certificate when tlsCertPath/tlsKeyPath are not set
	TLSCertPath       string // tlsCertPath (tls.server.certPath), PEM
	TLSKeyPath        string // tlsKeyPath (tls.server.keyPath), PEM, unencrypted
}

func defaultServerTLS() ServerTLS {
	return ServerTLS{TLSServerMode: tlsconf.Permissive, TLSTestModeEnable: true}
}

func (t *ServerTLS) keys() []key {
	return []key{
		str("tlsServerMode", &t.TLSServerMode, oneOf(tlsconf.Disabled, tlsconf.Permissive, tlsconf.Enforcing)),
		boolean("tlsTestModeEnable", &t.TLSTestModeEnable),
		str("tlsCertPath", &t.TLSCertPath, nil),
		str("tlsKeyPath", &t.TLSKeyPath, nil),
	}
}

// tlsAliases are the names of Java's TLS properties (JVM -D options or
// tls.properties) for the keys mqops implements.
var tlsAliases = map[string]string{
	"tls.server.mode":      "tlsServerMode",
	"tls.test.mode.enable": "tlsTestModeEnable",
	"tls.server.certPath":  "tlsCertPath",
	"tls.server.keyPath":   "tlsKeyPath",
}

// tlsRefusedKeys are Java TLS properties mqops takes only at the value
// that asks for nothing it lacks: client certificates and encrypted keys.
var tlsRefusedKeys = map[string]string{
	"tls.server.need.client.auth": "none",
	"tls.server.keyPassword":      "",
}

func tlsRefusedKeyNames() []string {
	var out []string
	for k := range tlsRefusedKeys {
		out = append(out, k)
	}
	return out
}

// check is the rule that spans the keys: a mode other than disabled needs
// a certificate, and the refused Java properties must ask for nothing.
func (t *ServerTLS) check(compat map[string]string) error {
	for k, ok := range tlsRefusedKeys {
		if v, set := compat[k]; set && strings.TrimSpace(v) != ok && strings.TrimSpace(v) != "" {
			return fmt.Errorf("%s = %s: not supported (mqops serves TLS without client certificates, from an unencrypted key)", k, v)
		}
	}
	if (t.TLSCertPath == "") != (t.TLSKeyPath == "") {
		return errors.New("tlsCertPath and tlsKeyPath go together: set both or neither")
	}
	if t.TLSServerMode != tlsconf.Disabled && t.TLSCertPath == "" && !t.TLSTestModeEnable {
		return errors.New("tlsServerMode = " + t.TLSServerMode + " needs tlsCertPath and tlsKeyPath, or tlsTestModeEnable = true for a self-signed certificate")
	}
	return nil
}

// TLSConfig is the certificate configuration of the server ports, nil
// when tlsServerMode is disabled; hosts name the self-signed certificate.
// A certificate or key file that cannot be loaded is an error naming the
// keys.
func (t *ServerTLS) TLSConfig(hosts ...string) (*tls.Config, error) {
	if t.TLSServerMode == tlsconf.Disabled {
		return nil, nil
	}
	return tlsconf.Server(t.TLSCertPath, t.TLSKeyPath, t.TLSTestModeEnable, hosts)
}
