package gateway

import (
	"testing"
	"time"

	"github.com/mqops/mqops/wire/amqp"
)

func publishFrames(ch uint16, key string, body []byte) []byte {
	frames, _ := amqp.AppendMethodFrame(nil, ch, &amqp.BasicPublish{RoutingKey: key})
	frames = amqp.AppendHeaderFrame(frames, ch, 60, uint64(len(body)), 0, nil)
	return amqp.AppendBodyFrames(frames, ch, body, 131072)
}

// waitBuffered waits until the gateway counts want publish bytes buffered.
func waitBuffered(t *testing.T, s *Server, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.flow.buffered.Load() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d publish bytes buffered, want %d", s.flow.buffered.Load(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// takeAll takes want messages off queue q with basic.get (polling: this
// test engine dispatches after it answers), then expects get-empty.
func takeAll(t *testing.T, c *client, ch uint16, q string, want int) {
	t.Helper()
	got := 0
	for deadline := time.Now().Add(10 * time.Second); ; {
		c.send(ch, &amqp.BasicGet{Queue: q, NoAck: true})
		id, m, err := c.next()
		if err != nil || id != ch {
			t.Fatalf("basic.get on %d: %v %v on %d", ch, m, err, id)
		}
		if _, empty := m.(*amqp.BasicGetEmpty); empty {
			if got == want {
				return
			}
			if got > want || time.Now().After(deadline) {
				t.Fatalf("queue %s: %d messages, want %d", q, got, want)
			}
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if _, ok := m.(*amqp.BasicGetOk); !ok {
			t.Fatalf("basic.get: %T %v", m, m)
		}
		c.frame() // header
		c.frame() // body
		got++
	}
}

// A transaction's waiting publishes count against memoryHighWatermark
// and stop counting when the commit hands them to the broker (once it
// answered), the rollback drops them or the channel closes; a
// transaction over 10 000 messages closes the channel with 406 and
// leaves nothing counted.
func TestTxBufferedBytes(t *testing.T) {
	s := serveGatewayWith(t, newStoreBackend(t), func(c *Config) { c.MemoryHighWatermark = 64 << 20 })
	c := dial(t, s)
	defer c.nc.Close()
	c.send(1, &amqp.ChannelOpen{})
	c.want(1, "channel.open-ok")
	c.send(1, &amqp.QueueDeclare{Queue: "txb", Durable: true})
	c.want(1, "queue.declare-ok")
	c.send(1, &amqp.TxSelect{})
	c.want(1, "tx.select-ok")
	body := make([]byte, 100)
	for range 3 {
		c.write(publishFrames(1, "txb", body))
	}
	waitBuffered(t, s, 300)
	c.send(1, &amqp.TxRollback{})
	c.want(1, "tx.rollback-ok")
	waitBuffered(t, s, 0)
	for range 2 {
		c.write(publishFrames(1, "txb", body))
	}
	waitBuffered(t, s, 200)
	c.send(1, &amqp.TxCommit{})
	c.want(1, "tx.commit-ok")
	waitBuffered(t, s, 0)
	takeAll(t, c, 1, "txb", 2)
	c.write(publishFrames(1, "txb", body))
	waitBuffered(t, s, 100)
	c.send(1, &amqp.ChannelClose{ReplyCode: 200})
	c.want(1, "channel.close-ok")
	waitBuffered(t, s, 0)

	c.send(2, &amqp.ChannelOpen{})
	c.want(2, "channel.open-ok")
	c.send(2, &amqp.TxSelect{})
	c.want(2, "tx.select-ok")
	var all []byte
	for range maxTxMessages + 1 {
		all = append(all, publishFrames(2, "txb", []byte("x"))...)
	}
	c.write(all)
	cl := wantMethod[*amqp.ChannelClose](t, c, 2, "channel.close")
	if cl.ReplyCode != amqp.PreconditionFailed || cl.ClassID != 60 || cl.MethodID != 40 {
		t.Fatalf("close %+v", cl)
	}
	c.send(2, &amqp.ChannelCloseOk{})
	waitBuffered(t, s, 0)
	c.send(1, &amqp.ChannelOpen{})
	c.want(1, "channel.open-ok")
	takeAll(t, c, 1, "txb", 0)
}

// A delivery acked inside an open transaction is still unacked at the
// broker: its consume timeout cancels the consumer (cancel-notify client),
// the commit then settles nothing, and the message comes again,
// redelivered. Under -race: the timer goroutine and the read loop share
// the transaction's acks.
func TestTxAckedDeliveryTimesOut(t *testing.T) {
	s, _ := startStoreGateway(t)
	c := dialCancelNotify(t, s)
	defer c.nc.Close()
	c.send(1, &amqp.ChannelOpen{})
	c.want(1, "channel.open-ok")
	c.send(1, &amqp.QueueDeclare{Queue: "txslow", Arguments: amqp.Table{"x-consumer-timeout": int32(300)}})
	c.want(1, "queue.declare-ok")
	c.write(publishFrames(1, "txslow", []byte("held")))
	c.send(1, &amqp.TxSelect{})
	c.want(1, "tx.select-ok")
	c.send(1, &amqp.BasicConsume{Queue: "txslow", ConsumerTag: "c1"})
	c.want(1, "basic.consume-ok")
	d := nextDelivery(t, c, 1)
	c.send(1, &amqp.BasicAck{DeliveryTag: d.m.DeliveryTag})
	if m := wantMethod[*amqp.BasicCancel](t, c, 1, "basic.cancel"); m.ConsumerTag != "c1" {
		t.Fatalf("cancel %+v", m)
	}
	c.send(1, &amqp.TxCommit{})
	c.want(1, "tx.commit-ok")
	c.send(1, &amqp.BasicConsume{Queue: "txslow", ConsumerTag: "c2"})
	c.want(1, "basic.consume-ok")
	again := nextDelivery(t, c, 1)
	if again.body != "held" || !again.m.Redelivered || again.m.ConsumerTag != "c2" {
		t.Fatalf("redelivery %+v %q", again.m, again.body)
	}
	c.send(1, &amqp.BasicAck{DeliveryTag: again.m.DeliveryTag})
	c.send(1, &amqp.TxCommit{})
	c.want(1, "tx.commit-ok")
}

// A commit whose publishes the broker cannot store (this engine has no
// store) fails as RabbitMQ's does: channel.close 406 "partial tx
// completion" instead of commit-ok.
func TestTxCommitFails(t *testing.T) {
	s, _ := startGateway(t)
	c := dial(t, s)
	defer c.nc.Close()
	c.send(1, &amqp.ChannelOpen{})
	c.want(1, "channel.open-ok")
	c.send(1, &amqp.QueueDeclare{Queue: "txf"})
	c.want(1, "queue.declare-ok")
	c.send(1, &amqp.TxSelect{})
	c.want(1, "tx.select-ok")
	c.write(publishFrames(1, "txf", []byte("lost")))
	c.send(1, &amqp.TxCommit{})
	cl := wantMethod[*amqp.ChannelClose](t, c, 1, "channel.close")
	if cl.ReplyCode != amqp.PreconditionFailed || cl.ReplyText != "PRECONDITION_FAILED - partial tx completion" || cl.ClassID != 90 || cl.MethodID != 20 {
		t.Fatalf("close %+v", cl)
	}
	c.send(1, &amqp.ChannelCloseOk{})
}
