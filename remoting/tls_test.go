package remoting

import (
	"bufio"
	"crypto/tls"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/mqops/mqops/tlsconf"
	"github.com/mqops/mqops/wire"
)

// tlsServer starts an echo server whose listener TLSListener wraps in mode.
func tlsServer(t *testing.T, mode string, firstByte time.Duration) (*testServer, *logSink) {
	t.Helper()
	return tlsServerSetup(t, mode, firstByte, nil)
}

func tlsServerSetup(t *testing.T, mode string, firstByte time.Duration, setup func(*Conn)) (*testServer, *logSink) {
	t.Helper()
	cfg, err := tlsconf.Server("", "", true, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	sink := &logSink{}
	ts := startServer(t, serverOpts{handler: echo, setup: setup, ln: func(ln net.Listener) net.Listener {
		tl, err := TLSListener(ln, mode, cfg, firstByte, slog.New(sink))
		if err != nil {
			t.Fatal(err)
		}
		return tl
	}})
	return ts, sink
}

// tlsClient is a Client dialling TLS without verifying the self-signed
// certificate.
func tlsClient(t *testing.T) *Client {
	t.Helper()
	cl, _ := newClient(t, nil)
	cfg, err := tlsconf.Client(tlsconf.ClientOptions{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	cl.UseTLS(cfg)
	return cl
}

// invokeEcho calls the echo server and checks the answer.
func invokeEcho(t *testing.T, cl *Client, addr string) {
	t.Helper()
	resp, err := cl.Invoke(addr, request(10, NextOpaque(), []byte("body")), waitTimeout)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	if resp.Code != wire.Success || string(resp.Body) != "body" {
		t.Fatalf("answer code %d body %q", resp.Code, resp.Body)
	}
}

// servedTLS reports whether the server served c with TLS.
func servedTLS(t *testing.T, c *Conn) bool {
	t.Helper()
	if _, ok := c.nc.(*sniffConn); !ok {
		t.Fatalf("accepted connection is a %T, not a sniffing one", c.nc)
	}
	return IsTLS(c.nc)
}

func TestTLSPermissiveServesBoth(t *testing.T) {
	ts, _ := tlsServer(t, tlsconf.Permissive, time.Minute)
	invokeEcho(t, tlsClient(t), ts.addr())
	if !servedTLS(t, recv(t, "TLS connection", ts.conns)) {
		t.Error("TLS client served in plaintext")
	}
	plain, _ := newClient(t, nil)
	invokeEcho(t, plain, ts.addr())
	c := recv(t, "plaintext connection", ts.conns)
	if servedTLS(t, c) {
		t.Error("plaintext client served with TLS")
	}
	// The descriptor reserve of the accept path must see the socket
	// through the sniffing wrapper.
	if fd := socketFD(c.nc); fd <= 0 {
		t.Errorf("socketFD of a sniffed connection = %d, want its descriptor", fd)
	}
}

func TestTLSEnforcingRefusesPlaintext(t *testing.T) {
	ts, sink := tlsServer(t, tlsconf.Enforcing, time.Minute)
	invokeEcho(t, tlsClient(t), ts.addr())
	frame := wire.AppendFrame(nil, request(10, 1, nil))
	for i := range 3 {
		nc := dial(t, ts.addr())
		if _, err := nc.Write(frame); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, nc)
		if i == 0 {
			sink.wait(t, "plaintext connection refused")
		}
	}
	// One line per window: the two others are counted, not logged.
	waitFor(t, "refusals counted", func() bool {
		l := ts.Server.ln.(*sniffListener)
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.suppressed == 2
	})
	n := 0
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for _, r := range sink.recs {
		if r.msg == "[TLS] plaintext connection refused (tlsServerMode=enforcing)" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d refusal lines, want 1:\n%s", n, sink)
	}
	plain, _ := newClient(t, nil)
	if _, err := plain.Invoke(ts.addr(), request(10, NextOpaque(), nil), waitTimeout); err == nil {
		t.Error("plaintext client answered by an enforcing server")
	}
}

func TestTLSDisabledIsPlain(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got, err := TLSListener(ln, tlsconf.Disabled, nil, time.Minute, slog.New(slog.DiscardHandler))
	if err != nil || got != ln {
		t.Fatalf("disabled: listener %v, err %v; want the listener itself", got, err)
	}
	for _, c := range []struct {
		mode string
		cfg  *tls.Config
		fb   time.Duration
	}{{"strict", &tls.Config{}, time.Minute}, {tlsconf.Enforcing, nil, time.Minute}, {tlsconf.Permissive, &tls.Config{}, 0}} {
		if _, err := TLSListener(ln, c.mode, c.cfg, c.fb, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("mode %q cfg %v first-byte %v: no error", c.mode, c.cfg, c.fb)
		}
	}
}

// A peer that connects and sends nothing occupies its own connection
// only: the others are accepted and served meanwhile.
func TestTLSSilentPeerBlocksNobody(t *testing.T) {
	for _, mode := range []string{tlsconf.Permissive, tlsconf.Enforcing} {
		ts, _ := tlsServer(t, mode, time.Hour)
		dial(t, ts.addr())
		recv(t, "silent connection accepted", ts.conns)
		invokeEcho(t, tlsClient(t), ts.addr())
		if mode == tlsconf.Permissive {
			plain, _ := newClient(t, nil)
			invokeEcho(t, plain, ts.addr())
		}
	}
}

// The silent peer is closed once the first-byte timeout passes.
func TestTLSSilentPeerClosed(t *testing.T) {
	ts, _ := tlsServer(t, tlsconf.Enforcing, 200*time.Millisecond)
	expectClosed(t, dial(t, ts.addr()))
}

// A TLS record header followed by garbage fails the handshake and closes
// that connection only.
func TestTLSBadHandshakeClosed(t *testing.T) {
	ts, _ := tlsServer(t, tlsconf.Permissive, time.Minute)
	nc := dial(t, ts.addr())
	if _, err := nc.Write([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5}); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, nc)
	invokeEcho(t, tlsClient(t), ts.addr())
}

// Deadlines the connection code set before the sniff are back in force
// after it: the idle timeout still closes a plaintext peer that sent one
// request and went quiet.
func TestTLSSniffKeepsDeadlines(t *testing.T) {
	ts, _ := tlsServerSetup(t, tlsconf.Permissive, time.Minute, func(c *Conn) {
		c.idle = 0 // the read loop sets no deadline of its own
		_ = c.nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	})
	nc := dial(t, ts.addr())
	if _, err := nc.Write(wire.AppendFrame(nil, request(10, 7, nil))); err != nil {
		t.Fatal(err)
	}
	if resp := mustRead(t, nc, bufio.NewReader(nc)); resp.Opaque != 7 {
		t.Fatalf("answer opaque %d", resp.Opaque)
	}
	expectClosed(t, nc)
}
