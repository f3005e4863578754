package gateway

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/mqops/mqops/wire/amqp"
)

// nonLoopbackIPv4 is an address of this host that is not loopback, or nil.
func nonLoopbackIPv4(t *testing.T) net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP
		}
	}
	return nil
}

// loopbackUsers (RabbitMQ's loopback_users): guest from a non-loopback
// address is refused with 403 while it is listed, let in when the list is
// empty, and from loopback always let in.
func TestLoopbackUsers(t *testing.T) {
	ip := nonLoopbackIPv4(t)
	if ip == nil {
		t.Skip("this host has no non-loopback IPv4 address to dial from")
	}
	for _, tc := range []struct {
		users []string
		from  net.IP
		want  string
	}{
		{[]string{"guest"}, ip, "connection.close"},
		{nil, ip, "connection.tune"},
		{[]string{"guest"}, net.IPv4(127, 0, 0, 1), "connection.tune"},
	} {
		s, err := Listen(net.JoinHostPort(tc.from.String(), "0"), Config{Heartbeat: 60, FrameMax: 131072, ChannelMax: 2047,
			HandshakeTimeout: 10 * time.Second, MaxMessageSize: 1000, GatewayID: "gw-test", LoopbackUsers: tc.users,
			Backend: newEngineBackend(t), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		go s.Serve()
		// Dialling the host's own address makes that address the peer's.
		nc, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
		c := &client{t: t, nc: nc, fr: amqp.NewFrameReader(bufio.NewReader(nc), 1<<20), peerMayClose: true}
		c.write(amqp.ProtocolHeader[:])
		c.want(0, "connection.start")
		c.send(0, &amqp.ConnectionStartOk{Mechanism: "PLAIN", Response: "\x00guest\x00guest",
			ClientProperties: amqp.Table{"capabilities": amqp.Table{"authentication_failure_close": true}}})
		m := c.want(0, tc.want)
		if cl, ok := m.(*amqp.ConnectionClose); ok && cl.ReplyCode != 403 {
			t.Errorf("users %v from %v: close %d %q, want 403", tc.users, tc.from, cl.ReplyCode, cl.ReplyText)
		}
		nc.Close()
		s.Close()
	}
}
