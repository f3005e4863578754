package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Java's TLS property names set the same fields as mqops's keys, in the
// broker's and the name server's files.
func TestTLSJavaNames(t *testing.T) {
	b, warnings, err := LoadBroker("", map[string]string{
		"tls.server.mode": "enforcing", "tls.test.mode.enable": "false",
		"tls.server.certPath": "/c.pem", "tls.server.keyPath": "/k.pem",
		"tls.enable": "true", "tls.client.authServer": "true", "tls.client.trustCertPath": "/ca.pem",
	})
	if err != nil || len(warnings) > 0 {
		t.Fatalf("err %v, warnings %v", err, warnings)
	}
	if b.TLSServerMode != "enforcing" || b.TLSTestModeEnable || b.TLSCertPath != "/c.pem" || b.TLSKeyPath != "/k.pem" ||
		!b.UseTLS || !b.TLSClientAuthServer || b.TLSClientTrustCertPath != "/ca.pem" {
		t.Errorf("broker TLS settings %+v use %v %v %q", b.ServerTLS, b.UseTLS, b.TLSClientAuthServer, b.TLSClientTrustCertPath)
	}
	n, _, err := LoadNamesrv("", map[string]string{"tls.server.mode": "disabled"})
	if err != nil {
		t.Fatal(err)
	}
	if n.TLSServerMode != "disabled" {
		t.Errorf("name server tlsServerMode %q", n.TLSServerMode)
	}
	if n, _, _ := LoadNamesrv("", nil); n.TLSServerMode != "permissive" || !n.TLSTestModeEnable {
		t.Errorf("name server defaults %+v, want Java's permissive with a test certificate", n.ServerTLS)
	}
}

func TestTLSRefused(t *testing.T) {
	for _, c := range []struct {
		props map[string]string
		want  string
	}{
		{map[string]string{"tls.server.need.client.auth": "require"}, "tls.server.need.client.auth = require: not supported"},
		{map[string]string{"tls.server.keyPassword": "secret"}, "tls.server.keyPassword = secret: not supported"},
		{map[string]string{"tlsCertPath": "/c.pem"}, "tlsCertPath and tlsKeyPath go together"},
		{map[string]string{"tlsTestModeEnable": "false"}, "tlsServerMode = permissive needs tlsCertPath and tlsKeyPath"},
		{map[string]string{"tlsServerMode": "strict"}, "tlsServerMode"},
	} {
		if _, _, err := LoadBroker("", c.props); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("broker %v: err %v, want %q", c.props, err, c.want)
		}
		if _, _, err := LoadNamesrv("", c.props); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("name server %v: err %v, want %q", c.props, err, c.want)
		}
	}
	if _, _, err := LoadBroker("", map[string]string{"tls.server.need.client.auth": "none", "tlsServerMode": "disabled", "tlsTestModeEnable": "false"}); err != nil {
		t.Errorf("need.client.auth=none, disabled without certificate: %v", err)
	}
}

// A certificate path that cannot be loaded fails with the keys named.
func TestTLSConfigBadPath(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "k.pem")
	if err := os.WriteFile(key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _, err := LoadBroker("", map[string]string{"tlsCertPath": filepath.Join(dir, "missing.pem"), "tlsKeyPath": key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.TLSConfig("127.0.0.1"); err == nil || !strings.Contains(err.Error(), "tlsCertPath = "+filepath.Join(dir, "missing.pem")) {
		t.Errorf("err %v", err)
	}
	b.TLSServerMode = "disabled"
	if cfg, err := b.TLSConfig(); cfg != nil || err != nil {
		t.Errorf("disabled: %v %v", cfg, err)
	}
}
