package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/mqops/mqops/tlsconf"
	"github.com/mqops/mqops/wire"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and localhost
// and its key as PEM files, as openssl would.
func writeCert(t *testing.T) (certPath, keyPath string) {
	t.Helper()
	cert, err := tlsconf.SelfSigned([]string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

// frameCall writes req on nc and reads the answer, with Go's own TLS or
// plain TCP underneath: the remoting frames are hand-made.
func frameCall(nc net.Conn, req *wire.Command) (*wire.Command, error) {
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(wire.AppendFrame(nil, req)); err != nil {
		return nil, err
	}
	return wire.ReadCommand(nc)
}

// tlsFrameCall dials addr with crypto/tls (trusting the CA file, or any
// certificate when caFile is "") and makes one call.
func tlsFrameCall(t *testing.T, addr, caFile string, req *wire.Command) *wire.Command {
	t.Helper()
	cfg := &tls.Config{InsecureSkipVerify: true}
	if caFile != "" {
		pemBytes, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pemBytes)
		cfg = &tls.Config{RootCAs: pool}
	}
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	defer nc.Close()
	resp, err := frameCall(nc, req)
	if err != nil {
		t.Fatalf("TLS call %d to %s: %v", req.Code, addr, err)
	}
	return resp
}

// plainFrameCall makes one call over plain TCP.
func plainFrameCall(t *testing.T, addr string, req *wire.Command) (*wire.Command, error) {
	t.Helper()
	return frameCall(rawConn(t, addr), req)
}

func clusterInfo() *wire.Command        { return wire.NewRequest(wire.GetBrokerClusterInfo, nil, nil) }
func runtimeInfoRequest() *wire.Command { return wire.NewRequest(wire.GetBrokerRuntimeInfo, nil, nil) }

// An enforcing cluster: TLS clients (crypto/tls with hand-made frames, and
// mqadmin --tls) are served, plaintext ones are closed unanswered, the
// broker registers over TLS (verifying the name server's certificate), and
// a peer that connects and says nothing holds up nobody.
func TestTLSEnforcingCluster(t *testing.T) {
	cert, key := writeCert(t)
	tlsKeys := []string{"tlsServerMode=enforcing", "tlsCertPath=" + cert, "tlsKeyPath=" + key}
	ns := startNamesrv(t, tlsKeys...)
	dir := newBrokerDir(t)
	broker := startBroker(t, dir, ns.addr, append(tlsKeys, "useTLS=true", "tlsClientAuthServer=true", "tlsClientTrustCertPath="+cert)...)

	// Silent peers on both ports, open for the whole test.
	silentNs, silentBroker := rawConn(t, ns.addr), rawConn(t, broker.addr)

	if resp := tlsFrameCall(t, broker.addr, cert, runtimeInfoRequest()); resp.Code != wire.Success {
		t.Fatalf("broker runtime info over TLS: code %d %s", resp.Code, resp.Remark)
	}
	waitFor(t, 30*time.Second, "the broker registered over TLS", func() bool {
		resp := tlsFrameCall(t, ns.addr, cert, clusterInfo())
		return resp.Code == wire.Success && strings.Contains(string(resp.Body), broker.addr)
	})
	for _, addr := range []string{ns.addr, broker.addr} {
		if resp, err := plainFrameCall(t, addr, runtimeInfoRequest()); err == nil {
			t.Errorf("%s answered a plaintext client: code %d", addr, resp.Code)
		}
	}
	waitFor(t, 10*time.Second, "broker.log to report the refused plaintext connection", func() bool {
		logs, _ := os.ReadFile(filepath.Join(string(dir), "logs", "broker.log"))
		return strings.Contains(string(logs), "[TLS] plaintext connection refused")
	})

	// mqadmin: --tls with the CA file; the environment with insecure
	// skip-verify; plaintext fails.
	tlsArgs := []string{"-n", ns.addr, "--tls", "--tls-ca-file", cert}
	if r := runCLI(t, nil, append([]string{"clusterList"}, tlsArgs...)...); r.code != 0 || !strings.Contains(r.stdout, broker.addr) {
		t.Fatalf("mqadmin clusterList --tls: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, nil, append([]string{"topic", "create", "-t", "TLSTopic", "-c", "DefaultCluster"}, tlsArgs...)...); r.code != 0 {
		t.Fatalf("mqadmin topic create --tls: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	env := []string{"MQADMIN_TLS=true", "MQADMIN_TLS_INSECURE_SKIP_VERIFY=true"}
	waitFor(t, 30*time.Second, "the topic's route, asked with MQADMIN_TLS (it comes with the next registration)", func() bool {
		r := runCLI(t, env, "topic", "route", "-t", "TLSTopic", "-n", ns.addr)
		return r.code == 0 && strings.Contains(r.stdout, broker.addr)
	})
	// message send runs the v2.1.2 producer, which cannot do TLS.
	if r := runCLI(t, env, "message", "send", "-t", "TLSTopic", "--body", "x", "-n", ns.addr); r.code == 0 || !strings.Contains(r.stderr, "has no TLS") {
		t.Errorf("mqadmin message send with MQADMIN_TLS: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, nil, "clusterList", "-n", ns.addr, "--timeout", "3s"); r.code == 0 {
		t.Errorf("mqadmin without --tls against an enforcing name server succeeded:\n%s", r.stdout)
	}
	// The certificate names 127.0.0.1, not this name: verification fails.
	if r := runCLI(t, nil, append([]string{"clusterList", "--tls-server-name", "other.example"}, tlsArgs...)...); r.code == 0 {
		t.Errorf("mqadmin accepted a certificate for another name:\n%s", r.stdout)
	}

	// The silent peers were never closed for the others' sake and are
	// still waiting (the first-byte wait is the idle timeout).
	for _, nc := range []net.Conn{silentNs, silentBroker} {
		_ = nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		var b [1]byte
		if _, err := nc.Read(b[:]); err == nil || !os.IsTimeout(err) {
			t.Errorf("silent peer %s: read %v, want a timeout (connection still open)", nc.RemoteAddr(), err)
		}
	}
}

// A permissive cluster serves the official v2.1.2 client (plaintext) end
// to end, and TLS clients on the same ports.
func TestTLSPermissiveOfficialClient(t *testing.T) {
	ns := startNamesrv(t, "tlsServerMode=permissive")
	dir := newBrokerDir(t)
	c := &cluster{ns: ns, dir: dir, broker: startBroker(t, dir, ns.addr, "tlsServerMode=permissive")}
	const topic = "TLSPermissive"
	createTopic(t, c, topic, 2)
	p := newProducer(t, ns.addr)
	for i := range 10 {
		if r, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(fmt.Sprintf("m-%d", i)))); err != nil || r.Status != primitive.SendOK {
			t.Fatalf("send %d: %v %v", i, r, err)
		}
	}
	col := newCollector()
	newPushConsumer(t, ns.addr, "TLSPermissiveGroup", topic, consumer.MessageSelector{}, col)
	waitFor(t, 60*time.Second, "10 messages consumed", func() bool { return col.count() >= 10 })

	for _, call := range []struct {
		addr string
		req  func() *wire.Command
	}{{ns.addr, clusterInfo}, {c.broker.addr, runtimeInfoRequest}} {
		if resp := tlsFrameCall(t, call.addr, "", call.req()); resp.Code != wire.Success {
			t.Errorf("%s over TLS: code %d %s", call.addr, resp.Code, resp.Remark)
		}
		if resp, err := plainFrameCall(t, call.addr, call.req()); err != nil || resp.Code != wire.Success {
			t.Errorf("%s in plaintext: %v %v", call.addr, resp, err)
		}
	}
}

// A certificate that cannot be loaded stops either daemon with an error
// naming the key.
func TestTLSBadCertificatePath(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, c := range []struct {
		name string
		args []string
	}{
		{"mqnamesrv", []string{"-p", "listenPort=0", "-p", "kvConfigPath=" + filepath.Join(dir, "kv.json"), "-p", "logDir=" + filepath.Join(dir, "nslogs")}},
		{"mqbroker", brokerArgs(brokerDir(dir), "127.0.0.1:1")},
	} {
		args := append(c.args, "-p", "tlsServerMode=enforcing", "-p", "tlsCertPath="+missing, "-p", "tlsKeyPath="+missing)
		out, err := exec.CommandContext(ctx, filepath.Join(binDir, c.name), args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "tlsCertPath = "+missing) {
			t.Errorf("%s with tlsCertPath=%s: %v\n%s", c.name, missing, err, out)
		}
	}
}

// A slave with useTLS syncs its metadata from an enforcing master and
// registers with an enforcing name server; HA replication (its own port,
// plaintext as in Java) carries the messages.
func TestTLSSlaveSyncsFromEnforcingMaster(t *testing.T) {
	cert, key := writeCert(t)
	tlsKeys := []string{"tlsServerMode=enforcing", "tlsCertPath=" + cert, "tlsKeyPath=" + key}
	ns := startNamesrv(t, tlsKeys...)
	master := startBroker(t, newBrokerDir(t), ns.addr, append(tlsKeys, "useTLS=true")...)
	// The slave's own port stays permissive so the plaintext helpers can
	// look at it.
	slave := startSlave(t, newBrokerDir(t), ns.addr, "useTLS=true", "tlsClientAuthServer=true", "tlsClientTrustCertPath="+cert)

	tlsArgs := []string{"-n", ns.addr, "--tls", "--tls-ca-file", cert}
	if r := runCLI(t, nil, append([]string{"topic", "create", "-t", "TLSSyncTopic", "-b", master.addr}, tlsArgs...)...); r.code != 0 {
		t.Fatalf("mqadmin topic create --tls: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	waitFor(t, slaveSyncWait, "the topic on the slave", func() bool { return slaveHasTopic(t, slave.addr, "TLSSyncTopic") })
	waitFor(t, 30*time.Second, "both brokers registered over TLS", func() bool {
		resp := tlsFrameCall(t, ns.addr, cert, clusterInfo())
		return strings.Contains(string(resp.Body), master.addr) && strings.Contains(string(resp.Body), slave.addr)
	})
}
