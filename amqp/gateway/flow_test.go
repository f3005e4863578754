package gateway

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/wire/amqp"
)

// heldBackend holds every AMQP_PUBLISH until release is closed, then
// stores nothing and answers each message stored: a slow broker.
type heldBackend struct {
	*engineBackend
	release chan struct{}
}

func (b *heldBackend) Call(vhost string, code int32, req, resp any) error {
	if code != wire.AMQPPublish {
		return b.engineBackend.Call(vhost, code, req, resp)
	}
	<-b.release
	r := req.(wire.AMQPPublishRequest)
	out := resp.(*wire.AMQPPublishResponse)
	out.Results = make([]wire.AMQPPublishResult, len(r.Messages))
	for i := range out.Results {
		out.Results[i].Status = wire.AMQPStored
	}
	return nil
}

// TestMemoryHighWatermark: publish bytes buffered in the gateway above
// memoryHighWatermark block the publishing connection (connection.blocked
// to a client with the capability, its socket no longer read); once the
// broker answers, connection.unblocked follows and the socket is read
// again.
func TestMemoryHighWatermark(t *testing.T) {
	b := &heldBackend{engineBackend: newEngineBackend(t), release: make(chan struct{})}
	s := serveGatewayWith(t, b, func(c *Config) { c.MaxMessageSize, c.MemoryHighWatermark = 1<<20, 1500 })

	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	c := &client{t: t, nc: nc, fr: amqp.NewFrameReader(bufio.NewReader(nc), 1<<20)}
	c.write(amqp.ProtocolHeader[:])
	c.want(0, "connection.start")
	c.send(0, &amqp.ConnectionStartOk{Mechanism: "PLAIN", Response: "\x00guest\x00guest",
		ClientProperties: amqp.Table{"capabilities": amqp.Table{"connection.blocked": true}}})
	c.want(0, "connection.tune")
	c.send(0, &amqp.ConnectionTuneOk{ChannelMax: 100, FrameMax: 131072})
	c.send(0, &amqp.ConnectionOpen{VirtualHost: "/"})
	c.want(0, "connection.open-ok")
	c.send(1, &amqp.ChannelOpen{})
	c.want(1, "channel.open-ok")
	publish := func() {
		c.send(1, &amqp.BasicPublish{RoutingKey: "q"})
		c.write(amqp.AppendHeaderFrame(nil, 1, 60, 900, 0, nil))
		c.write(amqp.AppendBodyFrames(nil, 1, make([]byte, 900), 131072))
	}
	publish() // in flight at the held broker
	publish() // 1800 bytes buffered > 1500
	if m, _ := c.want(0, "connection.blocked").(*amqp.ConnectionBlocked); m == nil || !strings.HasPrefix(m.Reason, "memory high watermark: 1800 publish bytes buffered") {
		t.Fatalf("blocked: %+v", m)
	}
	// Not read while blocked: a channel.open stays unanswered.
	c.send(2, &amqp.ChannelOpen{})
	_ = nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if ch, m, err := c.next(); err == nil {
		t.Fatalf("answered while blocked: %v on %d", m, ch)
	}
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	c.fr = amqp.NewFrameReader(bufio.NewReader(nc), 1<<20) // the timed-out read left no partial frame
	close(b.release)
	c.want(0, "connection.unblocked")
	c.want(2, "channel.open-ok")
}
