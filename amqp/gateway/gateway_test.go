package gateway

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/amqpengine"
	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/wire/amqp"
)

// engineBackend runs the broker's AMQP engine in process, as the broker
// serves it over remoting (broker/server/amqp.go), for the requests these
// tests send; down makes every call fail as an unreachable broker does.
type engineBackend struct {
	e     *amqpengine.Engine
	down  atomic.Bool
	epoch atomic.Int64 // the lease answer's (0: none, as an older broker)
}

func (b *engineBackend) Call(vhost string, code int32, req, resp any) error {
	if b.down.Load() {
		return errors.New("dial 127.0.0.1:1: connection refused")
	}
	raw, _ := json.Marshal(req)
	v, err := b.e.Vhost(vhost)
	if err != nil {
		return toAMQP(err)
	}
	var out any
	switch code {
	case wire.AMQPDeclareQueue:
		var r wire.AMQPQueueDeclare
		_ = json.Unmarshal(raw, &r)
		q, err := v.DeclareQueue(amqpengine.QueueDecl{Name: r.Queue, Passive: r.Passive, Durable: r.Durable,
			Exclusive: r.Exclusive, AutoDelete: r.AutoDelete, Args: r.Arguments, Conn: amqpengine.Owner(r.Owner)})
		if err != nil {
			return toAMQP(err)
		}
		out = wire.AMQPQueueDeclareOk{Queue: q.Name, ID: q.ID}
	case wire.AMQPDeclareExchange:
		var r wire.AMQPExchangeDeclare
		_ = json.Unmarshal(raw, &r)
		err = v.DeclareExchange(amqpengine.ExchangeDecl{Name: r.Exchange, Type: r.Type, Passive: r.Passive, Durable: r.Durable})
	case wire.AMQPBind:
		var r wire.AMQPBinding
		_ = json.Unmarshal(raw, &r)
		err = v.Bind(amqpengine.BindingDecl{Source: r.Source, Destination: r.Destination, RoutingKey: r.RoutingKey}, amqpengine.Owner(r.Owner))
	case wire.AMQPAuthenticate:
		var r wire.AMQPLogin
		_ = json.Unmarshal(raw, &r)
		out, err = b.e.Authenticate(r.User, r.Password)
	case wire.AMQPReleaseOwner:
		var r wire.AMQPOwner
		_ = json.Unmarshal(raw, &r)
		_, err = b.e.ReleaseOwner(r.Gateway, r.Conn)
	case wire.AMQPLease:
		var r wire.AMQPLeaseRequest
		_ = json.Unmarshal(raw, &r)
		b.e.Renew(r.Gateway, time.Now())
		out = wire.AMQPLeaseOk{TTLMillis: amqpengine.LeaseTTL.Milliseconds(), Epoch: b.epoch.Load()}
	case wire.AMQPConsume:
		var r wire.AMQPConsumer
		_ = json.Unmarshal(raw, &r)
		var n uint32
		n, err = b.e.Consume(r.Vhost, r.Queue, r.Session, r.Tag, amqpengine.Owner(r.Owner), r.Exclusive)
		out = wire.AMQPConsumeOk{ConsumerCount: n, Epoch: b.epoch.Load()}
	case wire.AMQPCancel:
		var r wire.AMQPConsumer
		_ = json.Unmarshal(raw, &r)
		_, err = b.e.Cancel(r.Vhost, r.Session, r.Tag)
	default:
		return fmt.Errorf("request %d not served by the test backend", code)
	}
	if err != nil {
		return toAMQP(err)
	}
	if resp != nil && out != nil {
		j, _ := json.Marshal(out)
		return json.Unmarshal(j, resp)
	}
	return nil
}

func toAMQP(err error) error {
	var ae *amqpengine.Error
	if errors.As(err, &ae) {
		return &amqp.Error{Code: ae.Code, Text: ae.Text, Hard: amqp.IsHard(ae.Code)}
	}
	return err
}

func (b *engineBackend) VhostExists(vhost string) (bool, error) {
	if b.down.Load() {
		return false, errors.New("no name server answered")
	}
	for _, v := range b.e.Vhosts() {
		if v == vhost {
			return true, nil
		}
	}
	return false, nil
}

func startGateway(t *testing.T) (*Server, *engineBackend) {
	t.Helper()
	b := newEngineBackend(t)
	return serveGateway(t, b), b
}

func newEngineBackend(t *testing.T) *engineBackend {
	t.Helper()
	e, err := amqpengine.Open(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return &engineBackend{e: e}
}

func serveGateway(t *testing.T, b Backend) *Server {
	t.Helper()
	return serveGatewayWith(t, b, func(*Config) {})
}

// serveGatewayWith is serveGateway with the config changed by set.
func serveGatewayWith(t *testing.T, b Backend, set func(*Config)) *Server {
	t.Helper()
	cfg := Config{Heartbeat: 60, FrameMax: 131072, ChannelMax: 2047, HandshakeTimeout: 10 * time.Second,
		MaxMessageSize: 1000, GatewayID: "gw-test", Backend: b, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	set(&cfg)
	s, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(s.Close)
	return s
}

// openQueue opens channel ch, declares durable queue q on it and, with
// confirm, puts the channel in confirm mode.
func (c *client) openQueue(ch uint16, q string, confirm bool) {
	c.send(ch, &amqp.ChannelOpen{})
	c.want(ch, "channel.open-ok")
	c.send(ch, &amqp.QueueDeclare{Queue: q, Durable: true})
	c.want(ch, "queue.declare-ok")
	if confirm {
		c.send(ch, &amqp.ConfirmSelect{})
		c.want(ch, "confirm.select-ok")
	}
}

type client struct {
	t  testing.TB
	nc net.Conn
	fr *amqp.FrameReader
	// peerMayClose: the gateway may close mid-case; writes may fail.
	peerMayClose bool
}

func dial(t testing.TB, s *Server) *client {
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	c := &client{t: t, nc: nc, fr: amqp.NewFrameReader(bufio.NewReader(nc), 1<<20)}
	c.write(amqp.ProtocolHeader[:])
	c.want(0, "connection.start")
	c.send(0, &amqp.ConnectionStartOk{Mechanism: "PLAIN", Response: "\x00guest\x00guest"})
	c.want(0, "connection.tune")
	c.send(0, &amqp.ConnectionTuneOk{ChannelMax: 100, FrameMax: 131072})
	c.send(0, &amqp.ConnectionOpen{VirtualHost: "/"})
	c.want(0, "connection.open-ok")
	return c
}

func (c *client) write(b []byte) {
	if _, err := c.nc.Write(b); err != nil && !c.peerMayClose {
		c.t.Error(err)
	}
}

func (c *client) send(ch uint16, m amqp.Method) {
	b, err := amqp.AppendMethodFrame(nil, ch, m)
	if err != nil {
		c.t.Fatal(err)
	}
	c.write(b)
}

func (c *client) next() (uint16, amqp.Method, error) {
	f, err := c.fr.ReadFrame()
	if err != nil {
		return 0, nil, err
	}
	m, err := amqp.ReadMethod(f.Payload)
	return f.Channel, m, err
}

func (c *client) want(ch uint16, name string) amqp.Method {
	got, m, err := c.next()
	if err != nil || got != ch || m.Name() != name {
		c.t.Errorf("want %s on %d, got %T %v on %d: %v", name, ch, m, m, got, err)
		return nil
	}
	return m
}

// The channel state machine under concurrent connections (run with
// -race): pipelined methods are answered in arrival order, a soft error
// closes only its channel and later frames on it are ignored until
// close-ok, ids are reusable after close, and the exclusive queues of a
// closed connection are released.
func TestChannelStateMachine(t *testing.T) {
	s, b := startGateway(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial(t, s)
			defer c.nc.Close()
			for i := range 20 {
				ch := uint16(1 + i%3)
				c.send(ch, &amqp.ChannelOpen{})
				// Pipelined without waiting: declare, bind with the ""
				// shortcuts, a refused redeclare, then frames the closed
				// channel must ignore.
				c.send(ch, &amqp.QueueDeclare{Queue: fmt.Sprintf("q-%d-%d", g, i)})
				c.send(ch, &amqp.QueueBind{Exchange: "amq.direct"})
				c.send(ch, &amqp.QueueDeclare{Queue: fmt.Sprintf("q-%d-%d", g, i), Durable: true})
				c.send(ch, &amqp.QueueDeclare{Queue: "ignored"})
				c.write(amqp.AppendHeaderFrame(nil, ch, 60, 1, 0, nil))
				c.want(ch, "channel.open-ok")
				if ok, _ := c.want(ch, "queue.declare-ok").(*amqp.QueueDeclareOk); ok == nil || ok.Queue != fmt.Sprintf("q-%d-%d", g, i) {
					t.Errorf("declare-ok %+v", ok)
				}
				c.want(ch, "queue.bind-ok")
				if cl, _ := c.want(ch, "channel.close").(*amqp.ChannelClose); cl == nil || cl.ReplyCode != 406 || cl.ClassID != 50 || cl.MethodID != 10 {
					t.Errorf("close %+v", cl)
				}
				c.send(ch, &amqp.ChannelCloseOk{})
			}
			c.send(1, &amqp.ChannelOpen{})
			c.want(1, "channel.open-ok")
			c.send(1, &amqp.QueueDeclare{Exclusive: true})
			ok, _ := c.want(1, "queue.declare-ok").(*amqp.QueueDeclareOk)
			if ok == nil || !strings.HasPrefix(ok.Queue, "amq.gen-") {
				t.Errorf("server-named %+v", ok)
				return
			}
			c.send(0, &amqp.ConnectionClose{ReplyCode: 200})
			c.want(0, "connection.close-ok")
			v, _ := b.e.Vhost("/")
			deadline := time.Now().Add(10 * time.Second)
			for {
				// 405 while another connection owns it, 404 once released.
				_, err := v.DeclareQueue(amqpengine.QueueDecl{Name: ok.Queue, Passive: true})
				var ae *amqpengine.Error
				if errors.As(err, &ae) && ae.Code == amqp.NotFound {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("exclusive queue %s not released", ok.Queue)
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if n := s.Connections(); n != 0 {
		// The connection goroutines end after close-ok; wait for them.
		deadline := time.Now().Add(10 * time.Second)
		for s.Connections() != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n = s.Connections(); n != 0 {
			t.Fatalf("%d connections left", n)
		}
	}
}

// A home broker that cannot be reached during a synchronous method closes
// the connection with 541 INTERNAL_ERROR (RabbitMQ's answer to its own
// timeouts), naming the method.
func TestUnreachableBroker(t *testing.T) {
	s, b := startGateway(t)
	c := dial(t, s)
	defer c.nc.Close()
	c.send(1, &amqp.ChannelOpen{})
	c.want(1, "channel.open-ok")
	b.down.Store(true)
	c.send(1, &amqp.ExchangeDeclare{Exchange: "x", Type: "direct"})
	cl, _ := c.want(0, "connection.close").(*amqp.ConnectionClose)
	if cl == nil || cl.ReplyCode != 541 || cl.ClassID != 40 || cl.MethodID != 10 || !strings.HasPrefix(cl.ReplyText, "INTERNAL_ERROR - exchange.declare failed") {
		t.Fatalf("close %+v", cl)
	}
	c.send(0, &amqp.ConnectionCloseOk{})
	if _, _, err := c.next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after close-ok: %v", err)
	}
	// While the user database cannot be asked, the login gets 541 too
	// (not 403: the password may be right).
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	c2 := &client{t: t, nc: nc, fr: amqp.NewFrameReader(bufio.NewReader(nc), 1<<20)}
	c2.write(amqp.ProtocolHeader[:])
	c2.want(0, "connection.start")
	c2.send(0, &amqp.ConnectionStartOk{Mechanism: "PLAIN", Response: "\x00guest\x00guest"})
	if cl, _ := c2.want(0, "connection.close").(*amqp.ConnectionClose); cl == nil || cl.ReplyCode != 541 || cl.ClassID != 10 || cl.MethodID != 11 {
		t.Fatalf("login: %+v", cl)
	}
}

// Random well-framed input after the handshake (methods with random
// arguments, headers and bodies on random channels) never panics the
// gateway: every connection ends with a close or the socket closing, and
// the gateway keeps serving.
func TestRandomFramesNeverPanic(t *testing.T) {
	s, _ := startGateway(t)
	rng := rand.New(rand.NewPCG(1, 2))
	ids := [][2]uint16{{20, 10}, {20, 40}, {40, 10}, {50, 10}, {50, 20}, {60, 40}, {60, 80}, {85, 10}, {90, 10}, {90, 20}, {90, 30}, {10, 50}, {60, 999}}
	for i := range 300 {
		c := dial(t, s)
		c.peerMayClose = true
		for j := range 1 + rng.IntN(8) {
			ch := uint16(rng.IntN(3))
			typ := []uint8{amqp.FrameMethod, amqp.FrameMethod, amqp.FrameHeader, amqp.FrameBody}[rng.IntN(4)]
			b, start := amqp.BeginFrame(nil, typ, ch)
			if typ == amqp.FrameMethod {
				id := ids[rng.IntN(len(ids))]
				b = append(b, byte(id[0]>>8), byte(id[0]), byte(id[1]>>8), byte(id[1]))
			}
			for range rng.IntN(40) {
				b = append(b, byte(rng.IntN(256)))
			}
			if i%2 == 0 && j == 0 {
				// Most cases start on an open channel.
				c.send(1, &amqp.ChannelOpen{})
			}
			c.write(amqp.EndFrame(b, start))
		}
		// Whatever the gateway answered, the connection must end or stay
		// usable; read until a connection.close or the end.
		_ = c.nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		for {
			f, err := c.fr.ReadFrame()
			if err != nil {
				break
			}
			if cls, mth, _, _ := amqp.MethodIDs(f.Payload); f.Channel == 0 && cls == 10 && mth == 50 {
				c.send(0, &amqp.ConnectionCloseOk{})
			}
		}
		c.nc.Close()
	}
	c := dial(t, s)
	c.send(1, &amqp.ChannelOpen{})
	c.want(1, "channel.open-ok")
	c.nc.Close()
}

// channel.flow from the client is answered with flow-ok; tx.select with
// select-ok, after which confirm.select is a channel error (RabbitMQ's
// text); basic.recover requeue=false, not built, closes the connection
// with 540 naming it instead of pretending.
func TestFlowTxAndNotImplemented(t *testing.T) {
	s, _ := startGateway(t)
	c := dial(t, s)
	defer c.nc.Close()
	c.send(1, &amqp.ChannelOpen{})
	c.want(1, "channel.open-ok")
	c.send(1, &amqp.ChannelFlow{Active: false})
	if ok, _ := c.want(1, "channel.flow-ok").(*amqp.ChannelFlowOk); ok == nil || ok.Active {
		t.Fatalf("flow-ok %+v", ok)
	}
	c.send(1, &amqp.TxSelect{})
	c.want(1, "tx.select-ok")
	c.send(1, &amqp.ConfirmSelect{})
	if cl, _ := c.want(1, "channel.close").(*amqp.ChannelClose); cl == nil || cl.ReplyCode != 406 || cl.ClassID != 85 || cl.MethodID != 10 ||
		cl.ReplyText != "PRECONDITION_FAILED - cannot switch from tx to confirm mode" {
		t.Fatalf("close %+v", cl)
	}
	c.send(1, &amqp.ChannelCloseOk{})
	c.send(2, &amqp.ChannelOpen{})
	c.want(2, "channel.open-ok")
	c.send(2, &amqp.BasicRecover{Requeue: false})
	cl, _ := c.want(0, "connection.close").(*amqp.ConnectionClose)
	if cl == nil || cl.ReplyCode != 540 || cl.ClassID != 60 || cl.MethodID != 110 || !strings.Contains(cl.ReplyText, "requeue=false") {
		t.Fatalf("close %+v", cl)
	}
}
