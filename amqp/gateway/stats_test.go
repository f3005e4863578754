package gateway

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/wire/amqp"
)

// getStats reads the stats endpoint as a monitoring agent does.
func getStats(t *testing.T, s *Server) wire.AMQPGatewayStats {
	t.Helper()
	resp, err := http.Get("http://" + s.StatsAddr().String() + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st wire.AMQPGatewayStats
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /stats: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// The stats endpoint counts what clients did: connections and channels
// open now, a refused login, publishes taken, returned and confirmed,
// deliveries and their settlements by kind, channel exceptions; and it
// goes with the gateway.
func TestStats(t *testing.T) {
	s, _ := startStoreGateway(t)
	if err := s.ServeStats("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if st := getStats(t, s); st.Gateway != "gw-test" || st.StartTime == 0 || st.Connections != 0 || st.Published != 0 {
		t.Fatalf("idle gateway: %+v", st)
	}

	// A wrong password: refused, counted.
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	bad := &client{t: t, nc: nc, fr: amqp.NewFrameReader(bufio.NewReader(nc), 1<<20), peerMayClose: true}
	bad.write(amqp.ProtocolHeader[:])
	bad.want(0, "connection.start")
	bad.send(0, &amqp.ConnectionStartOk{Mechanism: "PLAIN", Response: "\x00guest\x00wrong"})
	for {
		if _, _, err := bad.next(); err != nil {
			break // the gateway closed the socket
		}
	}
	_ = nc.Close()

	c := dial(t, s)
	defer c.nc.Close()
	c.openQueue(1, "st", true)
	c.send(2, &amqp.ChannelOpen{})
	c.want(2, "channel.open-ok")
	for range 3 {
		c.write(publishFrames(1, "st", []byte("m")))
	}
	// Mandatory, to a queue that does not exist: returned, then acked.
	frames, _ := amqp.AppendMethodFrame(nil, 1, &amqp.BasicPublish{RoutingKey: "nowhere", Mandatory: true})
	frames = amqp.AppendHeaderFrame(frames, 1, 60, 1, 0, nil)
	c.write(amqp.AppendBodyFrames(frames, 1, []byte("r"), 131072))
	for confirmed := uint64(0); confirmed < 4; {
		f := c.frame()
		if f.Type != amqp.FrameMethod {
			continue // the return's header and body
		}
		m, err := amqp.ReadMethod(f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if a, ok := m.(*amqp.BasicAck); ok {
			confirmed = a.DeliveryTag
		} else if _, ok := m.(*amqp.BasicReturn); !ok {
			t.Fatalf("while waiting for confirms: %T %v", m, m)
		}
	}

	// Three deliveries (by basic.get), settled three ways.
	var tags []uint64
	for range 3 {
		d := getWithin(t, c, 2, "st", 10*time.Second)
		if d == nil {
			t.Fatal("no delivery in st")
		}
		tags = append(tags, d.DeliveryTag)
	}
	c.send(2, &amqp.BasicAck{DeliveryTag: tags[0]})
	c.send(2, &amqp.BasicNack{DeliveryTag: tags[1], Requeue: true})
	c.send(2, &amqp.BasicReject{DeliveryTag: tags[2]})
	// A round trip on channel 2 after the settlements: they were read.
	c.send(2, &amqp.QueueDeclare{Queue: "st", Durable: true, Passive: true})
	c.want(2, "queue.declare-ok")

	st := getStats(t, s)
	want := wire.AMQPGatewayStats{Gateway: "gw-test", StartTime: st.StartTime, Connections: 1, Channels: 2,
		BufferedBytes: st.BufferedBytes, ConnectionsAccepted: 2, LoginsRefused: 1, ConnectionErrors: st.ConnectionErrors,
		Published: 4, Returned: 1, Delivered: 3, Acked: 1, Requeued: 1, Rejected: 1}
	if st != want {
		t.Fatalf("stats\n got %+v\nwant %+v", st, want)
	}

	// An unknown delivery tag is a channel exception (406).
	c.send(2, &amqp.BasicAck{DeliveryTag: 99})
	c.want(2, "channel.close")
	c.send(2, &amqp.ChannelCloseOk{})
	c.send(1, &amqp.ChannelClose{})
	c.want(1, "channel.close-ok")
	c.send(0, &amqp.ConnectionClose{})
	c.want(0, "connection.close-ok")
	deadline := time.Now().Add(10 * time.Second)
	for st = getStats(t, s); st.Connections != 0 || st.Channels != 0; st = getStats(t, s) {
		if time.Now().After(deadline) {
			t.Fatalf("after close: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st.ChannelErrors != 1 || st.ConnectionsAccepted != 2 {
		t.Fatalf("after close: %+v", st)
	}

	addr := s.StatsAddr().String()
	s.Close()
	if _, err := http.Get("http://" + addr + "/stats"); err == nil {
		t.Fatal("stats endpoint still served after Close")
	}
}

// A taken stats address fails ServeStats (and so the gateway's start).
func TestStatsAddrTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, _ := startGateway(t)
	if err := s.ServeStats(ln.Addr().String()); err == nil {
		t.Fatal("ServeStats on a taken port succeeded")
	}
}

// Shutdown answers what was read before it closes: a publisher in
// confirm mode gets an ack for every message the broker stored, then
// connection.close 320; the close-ok ends it well before the drain
// timeout, and nothing is accepted meanwhile.
func TestShutdownDrains(t *testing.T) {
	s, _ := startStoreGateway(t)
	c := dial(t, s)
	defer c.nc.Close()
	c.openQueue(1, "drain", true)
	var frames []byte
	const n = 200
	for range n {
		frames = append(frames, publishFrames(1, "drain", []byte("d"))...)
	}
	c.write(frames)
	// Some of them are in the worker's hands when the drain starts.
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Published == 0 {
		if time.Now().After(deadline) {
			t.Fatal("nothing published")
		}
		time.Sleep(time.Millisecond)
	}
	shut := make(chan time.Duration, 1)
	go func() {
		t0 := time.Now()
		s.Shutdown(20 * time.Second)
		shut <- time.Since(t0)
	}()
	var acked uint64
	for {
		_, m, err := c.next()
		if err != nil {
			t.Fatalf("before connection.close: %v (acked %d)", err, acked)
		}
		if a, ok := m.(*amqp.BasicAck); ok {
			acked = a.DeliveryTag
			continue
		}
		cl, ok := m.(*amqp.ConnectionClose)
		if !ok {
			t.Fatalf("got %T %v", m, m)
		}
		if cl.ReplyCode != amqp.ConnectionForced || !strings.Contains(cl.ReplyText, "shutdown") {
			t.Fatalf("close %d %q", cl.ReplyCode, cl.ReplyText)
		}
		break
	}
	if st := s.Stats(); acked == 0 || acked != st.Published || st.PublishFailed != 0 {
		t.Fatalf("acked up to %d, the broker took %d (failed %d)", acked, st.Published, st.PublishFailed)
	}
	if _, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		t.Error("a connection was accepted while draining")
	}
	c.peerMayClose = true // the gateway may have dropped a frame it was cut off in
	c.send(0, &amqp.ConnectionCloseOk{})
	select {
	case d := <-shut:
		if d > 10*time.Second {
			t.Fatalf("Shutdown took %v after close-ok", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Shutdown did not return after close-ok")
	}
}
