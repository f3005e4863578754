package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, as PEM files.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	pool                                             *x509.CertPool
}

func writePKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{pool: x509.NewCertPool()}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mqops test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p.pool.AddCert(caCert)
	p.ca = write("ca.pem", "CERTIFICATE", caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage, ips []net.IP) (cert, key string) {
		k := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature, IPAddresses: ips}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der), write(name+".key", "PRIVATE KEY", kder)
	}
	p.serverCert, p.serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.clientCert, p.clientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth, nil)
	return p
}

var amqpsLine = regexp.MustCompile(`, amqps (127\.0\.0\.1:[0-9]+)`)

// amqpsRoundTrip publishes one confirmed message over url with tc and
// gets it back.
func amqpsRoundTrip(t *testing.T, url string, tc *tls.Config, queue string) error {
	t.Helper()
	conn, err := rmq.DialTLS(url, tc)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	confirmed(t, ch, "", []string{queue}, func(int) string { return "over tls" })
	var d rmq.Delivery
	waitFor(t, 15*time.Second, "the message back over TLS", func() bool {
		var ok bool
		d, ok, err = ch.Get(queue, true)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	})
	if string(d.Body) != "over tls" {
		t.Fatalf("got %q", d.Body)
	}
	return nil
}

// AMQP over TLS (amqps, tlsListenAddr) with amqp091-go: the gateway
// serves both ports; a client that trusts the CA works over TLS, one that
// does not, or that speaks plain AMQP to the TLS port, is refused; with
// tlsCaPath the gateway wants a client certificate from that CA;
// mqadmin amqp shovel reads an amqps source only with --ca-file.
func TestAMQPGatewayTLS(t *testing.T) {
	pki := writePKI(t)
	c := startCluster(t, amqpLMQ...)
	tlsPort := freePorts(t, 1)[0]
	gw := startAMQP(t, c, fmt.Sprintf("tlsListenAddr=127.0.0.1:%d", tlsPort), "tlsCertPath="+pki.serverCert, "tlsKeyPath="+pki.serverKey)
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", tlsPort)
	// The ready line may reach gw.out just after start returned.
	waitFor(t, 10*time.Second, "the boot line naming the amqps address", func() bool {
		m := amqpsLine.FindStringSubmatch(gw.out.String())
		return m != nil && m[1] == tlsAddr
	})
	amqps := "amqps://guest:guest@" + tlsAddr + "/"
	trusting := &tls.Config{RootCAs: pki.pool, ServerName: "127.0.0.1"}
	if err := amqpsRoundTrip(t, amqps, trusting, "tls.q"); err != nil {
		t.Fatalf("amqps with the CA: %v", err)
	}
	if err := amqpsRoundTrip(t, amqps, &tls.Config{ServerName: "127.0.0.1"}, "tls.q"); err == nil {
		t.Fatal("a client that does not trust the CA connected")
	}
	if _, err := rmq.Dial("amqp://guest:guest@" + tlsAddr + "/"); err == nil {
		t.Fatal("plain AMQP on the TLS port connected")
	}
	// The plain port still serves.
	_, ch := dialAMQP(t, gw)
	if _, err := ch.QueueDeclarePassive("tls.q", true, false, false, false, nil); err != nil {
		t.Fatalf("plain port: %v", err)
	}

	// mqadmin amqp shovel reads an amqps source with --ca-file; without it
	// the certificate is not trusted and nothing moves.
	t.Run("Shovel", func(t *testing.T) {
		plain := amqpURL(gw, "guest:guest", "")
		_, pch := dialURL(t, plain)
		for _, q := range []string{"tls.src", "tls.dst"} {
			if _, err := pch.QueueDeclare(q, true, false, false, false, nil); err != nil {
				t.Fatal(err)
			}
		}
		publishShovelMsgs(t, plain, "tls.src", 0, 50)
		r := runCLI(t, nil, shovelArgs(amqps, plain, "--src-queue", "tls.src", "--dest-queue", "tls.dst")...)
		if r.code != 1 || !regexp.MustCompile(`certificate`).MatchString(r.stderr) || queueDepth(t, plain, "tls.src") != 50 {
			t.Fatalf("amqps source without --ca-file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if r := runCLI(t, nil, shovelArgs(amqps, plain, "--src-queue", "tls.src", "--dest-queue", "tls.dst", "--ca-file", pki.ca)...); r.code != 0 {
			t.Fatalf("amqps source with --ca-file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if got := consumeShovelMsgs(t, plain, "tls.dst", 50); len(got) != 50 {
			t.Fatalf("%d of 50 moved over amqps", len(got))
		}
	})

	t.Run("ClientCertificates", func(t *testing.T) {
		port := freePorts(t, 1)[0]
		startAMQP(t, c, fmt.Sprintf("tlsListenAddr=127.0.0.1:%d", port), "tlsCertPath="+pki.serverCert,
			"tlsKeyPath="+pki.serverKey, "tlsCaPath="+pki.ca)
		url := fmt.Sprintf("amqps://guest:guest@127.0.0.1:%d/", port)
		if err := amqpsRoundTrip(t, url, trusting, "tls.mutual"); err == nil {
			t.Fatal("a client without a certificate connected")
		}
		cert, err := tls.LoadX509KeyPair(pki.clientCert, pki.clientKey)
		if err != nil {
			t.Fatal(err)
		}
		withCert := &tls.Config{RootCAs: pki.pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}}
		if err := amqpsRoundTrip(t, url, withCert, "tls.mutual"); err != nil {
			t.Fatalf("client certificate from the CA: %v", err)
		}
	})

	t.Run("BadFiles", func(t *testing.T) {
		// A certificate that cannot be loaded stops the start, naming
		// the keys; tlsListenAddr without them too.
		for _, args := range [][]string{
			{"tlsListenAddr=127.0.0.1:0", "tlsCertPath=/nonexistent.pem", "tlsKeyPath=" + pki.serverKey},
			{"tlsListenAddr=127.0.0.1:0"},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			all := append([]string{"-p", "listenPort=0", "-p", "namesrvAddr=" + c.ns.addr, "-p", "logDir=" + t.TempDir()}, pargs(args)...)
			out, err := exec.CommandContext(ctx, filepath.Join(binDir, "mqamqp"), all...).CombinedOutput()
			cancel()
			if err == nil || amqpReady.Match(out) {
				t.Fatalf("%v: mqamqp started:\n%s", args, out)
			}
			if !regexp.MustCompile(`tlsCertPath`).Match(out) {
				t.Fatalf("%v: start-up failure does not name tlsCertPath:\n%s", args, out)
			}
		}
	})
}

// pargs turns key=value pairs into -p flags.
func pargs(kvs []string) []string {
	var out []string
	for _, kv := range kvs {
		out = append(out, "-p", kv)
	}
	return out
}
