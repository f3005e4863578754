package gateway

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/wire/amqp"
)

// dialCancelNotify is dial for a client advertising consumer_cancel_notify.
func dialCancelNotify(t *testing.T, s *Server) *client {
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	c := &client{t: t, nc: nc, fr: amqp.NewFrameReader(bufio.NewReader(nc), 1<<20)}
	c.write(amqp.ProtocolHeader[:])
	c.want(0, "connection.start")
	c.send(0, &amqp.ConnectionStartOk{Mechanism: "PLAIN", Response: "\x00guest\x00guest",
		ClientProperties: amqp.Table{"capabilities": amqp.Table{"consumer_cancel_notify": true}}})
	c.want(0, "connection.tune")
	c.send(0, &amqp.ConnectionTuneOk{ChannelMax: 100, FrameMax: 131072})
	c.send(0, &amqp.ConnectionOpen{VirtualHost: "/"})
	c.want(0, "connection.open-ok")
	return c
}

// Consume timeouts under -race: a consumer of a cancel-notify client that
// holds a delivery past the queue's x-consumer-timeout gets basic.cancel,
// its late ack is ignored, and the message comes again, redelivered; a
// basic.get delivery held too long closes the channel with RabbitMQ's 406.
func TestConsumeTimeout(t *testing.T) {
	s, _ := startStoreGateway(t)
	c := dialCancelNotify(t, s)
	defer c.nc.Close()
	c.send(1, &amqp.ChannelOpen{})
	c.want(1, "channel.open-ok")
	c.send(1, &amqp.QueueDeclare{Queue: "slow", Arguments: amqp.Table{"x-consumer-timeout": int32(300)}})
	c.want(1, "queue.declare-ok")
	body := []byte("held")
	c.write(publishFrames(1, "slow", body))
	c.send(1, &amqp.BasicConsume{Queue: "slow", ConsumerTag: "c1"})
	c.want(1, "basic.consume-ok")
	d := nextDelivery(t, c, 1)
	if m := wantMethod[*amqp.BasicCancel](t, c, 1, "basic.cancel"); m.ConsumerTag != "c1" {
		t.Fatalf("cancel %+v", m)
	}
	c.send(1, &amqp.BasicAck{DeliveryTag: d.m.DeliveryTag})
	c.send(1, &amqp.BasicConsume{Queue: "slow", ConsumerTag: "c2"})
	c.want(1, "basic.consume-ok")
	again := nextDelivery(t, c, 1)
	if again.body != "held" || !again.m.Redelivered || again.m.ConsumerTag != "c2" {
		t.Fatalf("redelivery %+v %q", again.m, again.body)
	}
	c.send(1, &amqp.BasicAck{DeliveryTag: again.m.DeliveryTag})
	c.send(1, &amqp.BasicCancel{ConsumerTag: "c2"})
	c.want(1, "basic.cancel-ok")

	// basic.get: the channel closes.
	c.send(2, &amqp.ChannelOpen{})
	c.want(2, "channel.open-ok")
	c.write(publishFrames(2, "slow", body))
	c.send(2, &amqp.BasicGet{Queue: "slow"})
	wantMethod[*amqp.BasicGetOk](t, c, 2, "basic.get-ok")
	c.frame()
	c.frame()
	cl := wantMethod[*amqp.ChannelClose](t, c, 2, "channel.close")
	const want = "PRECONDITION_FAILED - delivery acknowledgement on channel 2 timed out. Timeout value used: 300 ms."
	if cl.ReplyCode != amqp.PreconditionFailed || !strings.HasPrefix(cl.ReplyText, want) {
		t.Fatalf("close %d %q", cl.ReplyCode, cl.ReplyText)
	}
	c.send(2, &amqp.ChannelCloseOk{})
}
