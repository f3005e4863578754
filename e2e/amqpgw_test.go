package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/wire/amqp"
)

var amqpReady = regexp.MustCompile(`The AMQP gateway boot success\. address (\S+),`)

// startAMQP runs mqamqp on a random loopback port in front of c.
func startAMQP(t *testing.T, c *cluster, extra ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	args := []string{"-p", "listenPort=0", "-p", "bindAddress=127.0.0.1", "-p", "namesrvAddr=" + c.ns.addr, "-p", "logDir=" + dir}
	for _, e := range extra {
		args = append(args, "-p", e)
	}
	return start(t, amqpReady, "mqamqp", args...)
}

func amqpURL(gw *proc, userPass, vhost string) string {
	return "amqp://" + userPass + "@" + gw.addr + "/" + vhost
}

// wantAMQPError checks err is the server's exception with code and text.
func wantAMQPError(t *testing.T, what string, err error, code int, text string) {
	t.Helper()
	var e *rmq.Error
	if !errors.As(err, &e) || e.Code != code || (text != "" && e.Reason != text) {
		t.Fatalf("%s: want %d %q, got %v", what, code, text, err)
	}
}

// RabbitMQ's own client against real mqnamesrv + mqbroker + mqamqp:
// declares, binds and deletes reach the broker engine; its refusals come
// back with RabbitMQ's codes and texts, closing the channel and not the
// connection; an exclusive queue is locked to its connection and gone
// after it closes; a publish the broker cannot store is nacked.
func TestAMQPGatewayMetadata(t *testing.T) {
	c := startCluster(t)
	gw := startAMQP(t, c)
	conn, err := rmq.Dial(amqpURL(gw, "guest:guest", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("logs", "fanout", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("task_queue", true, false, false, false, rmq.Table{"x-queue-type": "quorum"})
	if err != nil || q.Name != "task_queue" {
		t.Fatalf("declare: %+v %v", q, err)
	}
	if err := ch.QueueBind("task_queue", "k", "logs", false, nil); err != nil {
		t.Fatal(err)
	}
	err = ch.ExchangeDeclare("logs", "fanout", true, false, false, false, nil)
	wantAMQPError(t, "redeclare with other durable", err, 406,
		"PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'logs' in vhost '/': received 'true' but current is 'false'")
	if conn.IsClosed() {
		t.Fatal("a channel exception closed the connection")
	}
	ch, err = conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	_, err = ch.QueueDeclare("task_queue", false, false, false, false, rmq.Table{"x-queue-type": "quorum"})
	wantAMQPError(t, "queue redeclare", err, 406,
		"PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'task_queue' in vhost '/': received 'false' but current is 'true'")
	ch, _ = conn.Channel()
	err = ch.QueueBind("task_queue", "k", "nope", false, nil)
	wantAMQPError(t, "bind to a missing exchange", err, 404, "NOT_FOUND - no exchange 'nope' in vhost '/'")

	// Server-named exclusive queue and the "" shortcuts of queue.bind.
	ch, _ = conn.Channel()
	tmp, err := ch.QueueDeclare("", false, false, true, false, nil)
	if err != nil || !regexp.MustCompile(`^amq\.gen-[A-Za-z0-9_-]{22}$`).MatchString(tmp.Name) {
		t.Fatalf("server-named queue %+v %v", tmp, err)
	}
	if err := ch.QueueBind("", "", "logs", false, nil); err != nil {
		t.Fatal(err)
	}
	var l wire.AMQPListing
	amqpOK(t, c.broker.addr, wire.AMQPList, wire.AMQPListRequest{Vhost: "/"}, &l)
	found := false
	for _, b := range l.Bindings {
		found = found || (b.Source == "logs" && b.Destination == tmp.Name && b.RoutingKey == tmp.Name)
	}
	if !found {
		t.Fatalf("shortcut binding missing: %+v", l.Bindings)
	}

	other, err := rmq.Dial(amqpURL(gw, "guest:guest", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	och, _ := other.Channel()
	_, err = och.QueueDeclarePassive(tmp.Name, false, false, true, false, nil)
	wantAMQPError(t, "passive declare from another connection", err, 405, "")
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		och, err = other.Channel()
		if err != nil {
			t.Fatal(err)
		}
		_, err = och.QueueDeclarePassive(tmp.Name, false, false, true, false, nil)
		var e *rmq.Error
		if errors.As(err, &e) && e.Code == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exclusive queue still there after its connection closed: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	och, _ = other.Channel()
	if _, err := och.QueueDelete("task_queue", false, false, false); err != nil {
		t.Fatal(err)
	}
	if err := och.ExchangeDelete("logs", false, false); err != nil {
		t.Fatal(err)
	}
	// This broker runs without light queues, so it cannot store: a
	// publish in confirm mode is nacked and the channel stays open.
	if err := och.Confirm(false); err != nil {
		t.Fatal(err)
	}
	dc, err := och.PublishWithDeferredConfirm("", "q", false, false, rmq.Publishing{Body: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := dc.WaitContext(ctx15(t)); err != nil || ok {
		t.Fatalf("publish without light queues: acked=%v err=%v, want a nack", ok, err)
	}
	if och.IsClosed() || other.IsClosed() {
		t.Fatal("a failed store closed the channel")
	}
	if _, err := och.QueueDeclare("after-nack", false, true, false, false, nil); err != nil {
		t.Fatalf("channel after the nack: %v", err)
	}
}

// Logins: PLAIN and AMQPLAIN as guest, a bad password refused with 403
// before the socket closes, an unknown vhost with 530; a 2 s heartbeat
// keeps an idle client connected.
func TestAMQPGatewayLogin(t *testing.T) {
	c := startCluster(t)
	gw := startAMQP(t, c)
	loginCases(t, gw.addr)
}

// loginCases are TestAMQPGatewayLogin's cases against gw's address
// (TestRabbitMQConformance runs them against RabbitMQ).
func loginCases(t *testing.T, addr string) {
	gw := &proc{addr: addr} // for amqpURL
	conn, err := rmq.DialConfig(amqpURL(gw, "guest:guest", ""), rmq.Config{SASL: []rmq.Authentication{&rmq.AMQPlainAuth{Username: "guest", Password: "guest"}}})
	if err != nil {
		t.Fatalf("AMQPLAIN: %v", err)
	}
	conn.Close()
	// amqp091-go v1.17 does not advertise authentication_failure_close, so
	// the gateway just closes the socket (as RabbitMQ) and the client
	// reports its own 403; the raw test below sees connection.close 403.
	_, err = rmq.Dial(amqpURL(gw, "guest:nope", ""))
	wantAMQPError(t, "bad password", err, 403, "")
	_, err = rmq.Dial(amqpURL(gw, "guest:guest", "nope"))
	wantAMQPError(t, "unknown vhost", err, 530, "NOT_ALLOWED - vhost nope not found")

	conn, err = rmq.DialConfig(amqpURL(gw, "guest:guest", ""), rmq.Config{Heartbeat: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closed := conn.NotifyClose(make(chan *rmq.Error, 1))
	select {
	case e := <-closed:
		t.Fatalf("idle connection with 2 s heartbeats closed: %v", e)
	case <-time.After(10 * time.Second):
	}
	if _, err := conn.Channel(); err != nil {
		t.Fatal(err)
	}
}

// rawAMQP is a hand-driven client for the conformance cases.
type rawAMQP struct {
	t     *testing.T
	nc    net.Conn
	fr    *amqp.FrameReader
	vhost string // what open asks for; "" is "/"
}

func dialRaw(t *testing.T, gw *proc) *rawAMQP {
	t.Helper()
	return dialRawAddr(t, gw.addr)
}

func dialRawAddr(t *testing.T, addr string) *rawAMQP {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawAMQP{t: t, nc: nc, fr: amqp.NewFrameReader(bufio.NewReader(nc), 1<<20)}
}

func (r *rawAMQP) write(b []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawAMQP) method(ch uint16, m amqp.Method) {
	r.t.Helper()
	b, err := amqp.AppendMethodFrame(nil, ch, m)
	if err != nil {
		r.t.Fatal(err)
	}
	r.write(b)
}

// next reads frames up to the next method, skipping heartbeats.
func (r *rawAMQP) next() (uint16, amqp.Method) {
	r.t.Helper()
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			r.t.Fatalf("read: %v", err)
		}
		if f.Type == amqp.FrameHeartbeat {
			continue
		}
		m, err := amqp.ReadMethod(f.Payload)
		if err != nil {
			r.t.Fatalf("frame type %d: %v", f.Type, err)
		}
		return f.Channel, m
	}
}

// open performs the handshake with tune-ok values tune.
func (r *rawAMQP) open(tune amqp.ConnectionTuneOk) {
	r.t.Helper()
	r.write(amqp.ProtocolHeader[:])
	if _, m := r.next(); m.Name() != "connection.start" {
		r.t.Fatalf("got %s", m.Name())
	}
	r.method(0, &amqp.ConnectionStartOk{Mechanism: "PLAIN", Response: "\x00guest\x00guest", Locale: "en_US",
		ClientProperties: amqp.Table{"capabilities": amqp.Table{"authentication_failure_close": true}}})
	if _, m := r.next(); m.Name() != "connection.tune" {
		r.t.Fatalf("got %s", m.Name())
	}
	r.method(0, &tune)
	if tune.FrameMax < 4096 || tune.FrameMax > 131072 {
		return // refused: the gateway answers the tune-ok with a close
	}
	vhost := r.vhost
	if vhost == "" {
		vhost = "/"
	}
	r.method(0, &amqp.ConnectionOpen{VirtualHost: vhost})
	if _, m := r.next(); m.Name() != "connection.open-ok" {
		r.t.Fatalf("got %s %+v", m.Name(), m)
	}
}

// wantClose reads up to connection.close or channel.close (ch) and checks
// its code; a connection.close is answered with close-ok and must be
// followed by the end of the stream.
func (r *rawAMQP) wantClose(ch uint16, code uint16, text string) {
	r.t.Helper()
	got, m := r.next()
	switch c := m.(type) {
	case *amqp.ConnectionClose:
		if ch != 0 || c.ReplyCode != code || !strings.Contains(c.ReplyText, text) {
			r.t.Fatalf("connection.close %d %q, want channel %d code %d %q", c.ReplyCode, c.ReplyText, ch, code, text)
		}
		r.method(0, &amqp.ConnectionCloseOk{})
		if _, err := r.fr.ReadFrame(); !errors.Is(err, io.EOF) && !strings.Contains(fmt.Sprint(err), "reset") {
			r.t.Fatalf("after close-ok: %v", err)
		}
	case *amqp.ChannelClose:
		if got != ch || c.ReplyCode != code || !strings.Contains(c.ReplyText, text) {
			r.t.Fatalf("channel.close on %d: %d %q, want channel %d code %d %q", got, c.ReplyCode, c.ReplyText, ch, code, text)
		}
		r.method(ch, &amqp.ChannelCloseOk{})
	default:
		r.t.Fatalf("got %s, want a close with %d", m.Name(), code)
	}
}

// peerClosed reports whether err is the peer's close: EOF, or a reset
// (RabbitMQ closes a socket with unread input, which resets it).
func peerClosed(err error) bool {
	return err == nil || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// wantCloseOrDropped expects connection.close with code and text, or the
// end of the connection without one, which is what RabbitMQ does for a
// connection refused before connection.open-ok (3 s later, to slow down
// retries) and for an unknown method id (its reader crashes); we send the
// connection.close first.
func (r *rawAMQP) wantCloseOrDropped(code uint16, text string) {
	r.t.Helper()
	f, err := r.fr.ReadFrame()
	if err != nil {
		if !peerClosed(err) {
			r.t.Fatalf("want the connection closed, got %v", err)
		}
		return
	}
	m, err := amqp.ReadMethod(f.Payload)
	c, ok := m.(*amqp.ConnectionClose)
	if err != nil || !ok || c.ReplyCode != code || !strings.Contains(c.ReplyText, text) {
		r.t.Fatalf("got %v %v, want connection.close %d %q or the connection closed", m, err, code, text)
	}
}

// amqplainResponse is an AMQPLAIN start-ok response: a field table
// without its length prefix.
func amqplainResponse(t *testing.T, user, pass string) string {
	b, err := amqp.AppendTable(nil, amqp.Table{"LOGIN": user, "PASSWORD": pass})
	if err != nil {
		t.Fatal(err)
	}
	return string(b[4:])
}

var defaultTune = amqp.ConnectionTuneOk{ChannelMax: 10, FrameMax: 4096, Heartbeat: 0}

// The exceptions of the AMQP 0-9-1 conformance list, frame by frame over
// TCP; after every case the gateway still serves a normal client.
func TestAMQPGatewayRawFrames(t *testing.T) {
	c := startCluster(t)
	gw := startAMQP(t, c, "maxMessageSize=1000", "handshakeTimeout=1000")
	rawFrameCases(t, gw.addr)
	conn, err := rmq.Dial(amqpURL(gw, "guest:guest", ""))
	if err != nil {
		t.Fatalf("gateway after the raw cases: %v", err)
	}
	conn.Close()
	if strings.Contains(gw.out.String(), "panic") {
		t.Fatalf("gateway output: %s", gw.out.String())
	}
}

// rawFrameCases are the cases of TestAMQPGatewayRawFrames against the
// server at addr, configured with a maximum message size of 1000 bytes
// and a handshake timeout of 1 s (TestRabbitMQConformance runs them against
// RabbitMQ).
func rawFrameCases(t *testing.T, addr string) {
	t.Run("bad protocol header", func(t *testing.T) {
		r := dialRawAddr(t, addr)
		r.write([]byte("AMQP\x03\x01\x00\x00"))
		got, err := io.ReadAll(r.nc)
		if !peerClosed(err) || string(got) != string(amqp.ProtocolHeader[:]) {
			t.Fatalf("got % x %v", got, err)
		}
	})
	t.Run("bad password with authentication_failure_close", func(t *testing.T) {
		for _, mech := range []struct{ name, response string }{
			{"PLAIN", "\x00guest\x00nope"},
			{"AMQPLAIN", amqplainResponse(t, "guest", "nope")},
		} {
			r := dialRawAddr(t, addr)
			r.write(amqp.ProtocolHeader[:])
			r.next()
			r.method(0, &amqp.ConnectionStartOk{Mechanism: mech.name, Response: mech.response, Locale: "en_US",
				ClientProperties: amqp.Table{"capabilities": amqp.Table{"authentication_failure_close": true}}})
			r.wantClose(0, 403, "ACCESS_REFUSED - Login was refused using authentication mechanism "+mech.name+". For details see the broker logfile.")
		}
	})
	t.Run("handshake timeout", func(t *testing.T) {
		r := dialRawAddr(t, addr)
		r.write(amqp.ProtocolHeader[:])
		r.next() // connection.start, then silence
		if _, err := r.fr.ReadFrame(); !peerClosed(err) {
			t.Fatalf("a client that never sent start-ok: %v, want the gateway to close (EOF)", err)
		}
	})
	t.Run("heartbeat on a channel", func(t *testing.T) {
		r := dialRawAddr(t, addr)
		r.open(defaultTune)
		r.write([]byte{amqp.FrameHeartbeat, 0, 1, 0, 0, 0, 0, amqp.FrameEnd})
		r.wantClose(0, 505, "UNEXPECTED_FRAME")
	})
	t.Run("tune-ok frame_max 1024", func(t *testing.T) {
		r := dialRawAddr(t, addr)
		r.open(amqp.ConnectionTuneOk{ChannelMax: 10, FrameMax: 1024})
		r.wantCloseOrDropped(530, "NOT_ALLOWED - frame_max=1024 < 4096 min size")
	})
	t.Run("tune-ok frame_max above ours", func(t *testing.T) {
		r := dialRawAddr(t, addr)
		r.open(amqp.ConnectionTuneOk{ChannelMax: 10, FrameMax: 1 << 20})
		r.wantCloseOrDropped(530, "frame_max=1048576 > 131072 max size")
	})
	t.Run("wrong end octet", func(t *testing.T) {
		r := dialRawAddr(t, addr)
		r.open(defaultTune)
		b, _ := amqp.AppendMethodFrame(nil, 1, &amqp.ChannelOpen{})
		b[len(b)-1] = 0
		r.write(b)
		r.wantClose(0, 501, "FRAME_ERROR")
	})
	t.Run("header without method", func(t *testing.T) {
		r := dialRawAddr(t, addr)
		r.open(defaultTune)
		r.method(1, &amqp.ChannelOpen{})
		r.next()
		r.write(amqp.AppendHeaderFrame(nil, 1, 60, 0, 0, nil))
		r.wantClose(0, 505, "UNEXPECTED_FRAME")
	})
	t.Run("method on unopened channel", func(t *testing.T) {
		r := dialRawAddr(t, addr)
		r.open(defaultTune)
		r.method(5, &amqp.ExchangeDeclare{Exchange: "x", Type: "direct"})
		r.wantClose(0, 504, "CHANNEL_ERROR")
	})
	t.Run("second channel.open", func(t *testing.T) {
		r := dialRawAddr(t, addr)
		r.open(defaultTune)
		r.method(1, &amqp.ChannelOpen{})
		r.next()
		r.method(1, &amqp.ChannelOpen{})
		r.wantClose(0, 504, "CHANNEL_ERROR - second 'channel.open' seen")
	})
	// RabbitMQ counts open channels against channel_max (a first
	// channel.open with an id above it is accepted there, refused here).
	t.Run("channel over max", func(t *testing.T) {
		r := dialRawAddr(t, addr)
		r.open(amqp.ConnectionTuneOk{ChannelMax: 2, FrameMax: 4096})
		for ch := uint16(1); ch <= 2; ch++ {
			r.method(ch, &amqp.ChannelOpen{})
			if got, m := r.next(); got != ch || m.Name() != "channel.open-ok" {
				t.Fatalf("channel %d: %d %s", ch, got, m.Name())
			}
		}
		r.method(3, &amqp.ChannelOpen{})
		r.wantClose(0, 530, "NOT_ALLOWED - number of channels opened (2) has reached the negotiated channel_max (2)")
	})
	t.Run("unknown method", func(t *testing.T) {
		r := dialRawAddr(t, addr)
		r.open(defaultTune)
		r.method(1, &amqp.ChannelOpen{})
		r.next()
		b, start := amqp.BeginFrame(nil, amqp.FrameMethod, 1)
		b = append(b, 0, 60, 0x03, 0xe7)
		r.write(amqp.EndFrame(b, start))
		r.wantCloseOrDropped(503, "COMMAND_INVALID")
	})
	t.Run("body frame over frame_max", func(t *testing.T) {
		r := dialRawAddr(t, addr)
		r.open(defaultTune)
		r.method(1, &amqp.ChannelOpen{})
		r.next()
		r.method(1, &amqp.BasicPublish{RoutingKey: "q"})
		r.write(amqp.AppendHeaderFrame(nil, 1, 60, 900, 0, nil))
		b, start := amqp.BeginFrame(nil, amqp.FrameBody, 1)
		b = append(b, make([]byte, 5000)...)
		r.write(amqp.EndFrame(b, start))
		r.wantClose(0, 501, "FRAME_ERROR")
	})
	t.Run("method frame over the cap", func(t *testing.T) {
		r := dialRawAddr(t, addr)
		r.open(defaultTune)
		b, start := amqp.BeginFrame(nil, amqp.FrameMethod, 1)
		b = append(b, make([]byte, 2<<20)...)
		r.write(amqp.EndFrame(b, start)[:64])
		r.wantClose(0, 501, "FRAME_ERROR")
	})
	t.Run("message over maxMessageSize closes the channel only", func(t *testing.T) {
		r := dialRawAddr(t, addr)
		r.open(defaultTune)
		r.method(1, &amqp.ChannelOpen{})
		r.next()
		r.method(1, &amqp.BasicPublish{RoutingKey: "q"})
		r.write(amqp.AppendHeaderFrame(nil, 1, 60, 2000, 0, nil))
		r.write(amqp.AppendBodyFrames(nil, 1, make([]byte, 2000), 4096)) // ignored after the close
		r.wantClose(1, 406, "PRECONDITION_FAILED - message size 2000 is larger than configured max size 1000")
		r.method(1, &amqp.ChannelOpen{})
		if ch, m := r.next(); ch != 1 || m.Name() != "channel.open-ok" {
			t.Fatalf("reopen: %d %s", ch, m.Name())
		}
		r.method(1, &amqp.QueueDeclare{Queue: "raw-q"})
		if _, m := r.next(); m.Name() != "queue.declare-ok" {
			t.Fatalf("declare after reopen: %s", m.Name())
		}
	})
	t.Run("silent client dropped after two heartbeats", func(t *testing.T) {
		r := dialRawAddr(t, addr)
		r.open(amqp.ConnectionTuneOk{ChannelMax: 10, FrameMax: 4096, Heartbeat: 1})
		beats := 0
		for {
			f, err := r.fr.ReadFrame()
			if err != nil {
				if beats == 0 || !peerClosed(err) {
					t.Fatalf("after %d heartbeats: %v, want the gateway to close (EOF)", beats, err)
				}
				break
			}
			if f.Type != amqp.FrameHeartbeat {
				t.Fatalf("frame type %d", f.Type)
			}
			beats++
		}
	})

}
