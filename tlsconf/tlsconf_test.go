package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writePair writes a self-signed certificate and its key as PEM files.
func writePair(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	cert, err := SelfSigned([]string{"127.0.0.1", "broker.example"})
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

func TestServerErrorsNameKeys(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		cert, key string
		self      bool
		want      string
	}{
		{filepath.Join(dir, "none.pem"), filepath.Join(dir, "none.key"), true, "tlsCertPath = " + filepath.Join(dir, "none.pem")},
		{filepath.Join(dir, "none.pem"), "", true, "tlsCertPath and tlsKeyPath go together"},
		{"", "", false, "tlsTestModeEnable"},
	} {
		if _, err := Server(c.cert, c.key, c.self, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want %q", c, err, c.want)
		}
	}
}

// A client trusting the CA file verifies the server's name; a name the
// certificate lacks fails, and skipping verification accepts it.
func TestClientVerifies(t *testing.T) {
	certPath, keyPath := writePair(t, t.TempDir())
	scfg, err := Server(certPath, keyPath, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	dial := func(o ClientOptions) error {
		cfg, err := Client(o)
		if err != nil {
			return err
		}
		c, err := tls.DialWithDialer(&net.Dialer{}, "tcp", ln.Addr().String(), cfg)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(ClientOptions{CAFile: certPath}); err != nil {
		t.Errorf("trusted CA, address in the certificate: %v", err)
	}
	if err := dial(ClientOptions{CAFile: certPath, ServerName: "broker.example"}); err != nil {
		t.Errorf("trusted CA, name in the certificate: %v", err)
	}
	if err := dial(ClientOptions{CAFile: certPath, ServerName: "other.example"}); err == nil {
		t.Error("a name the certificate lacks was accepted")
	}
	if err := dial(ClientOptions{}); err == nil {
		t.Error("a self-signed certificate passed the system roots")
	}
	if err := dial(ClientOptions{InsecureSkipVerify: true}); err != nil {
		t.Errorf("insecure: %v", err)
	}
	if _, err := Client(ClientOptions{CAFile: keyPath, CAFileKey: "--tls-ca-file"}); err == nil || !strings.Contains(err.Error(), "--tls-ca-file = "+keyPath+": no PEM certificate") {
		t.Errorf("key as CA file: %v", err)
	}
}
