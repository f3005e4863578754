package gateway

import (
	"testing"
	"time"

	"github.com/mqops/mqops/wire/amqp"
)

// getWithin polls basic.get (manual ack) on q for up to d; nil when the
// queue stayed empty.
func getWithin(t *testing.T, c *client, ch uint16, q string, d time.Duration) *amqp.BasicGetOk {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		c.send(ch, &amqp.BasicGet{Queue: q})
		_, m, err := c.next()
		if err != nil {
			t.Fatal(err)
		}
		if ok, is := m.(*amqp.BasicGetOk); is {
			c.frame()
			c.frame()
			return ok
		}
	}
	return nil
}

// requeueMode: graded (default) sends a nack with requeue through the
// broker's retry delays (the first is 10 s), immediate puts the message
// back at once, redelivered, as RabbitMQ does; a rejected one is gone
// either way.
func TestRequeueModes(t *testing.T) {
	for _, immediate := range []bool{false, true} {
		s := serveGatewayWith(t, newStoreBackend(t), func(c *Config) { c.ImmediateRequeue = immediate })
		c := dial(t, s)
		c.openQueue(1, "rq", true)
		c.write(publishFrames(1, "rq", []byte("x")))
		c.want(1, "basic.ack")
		d := getWithin(t, c, 1, "rq", 10*time.Second)
		if d == nil || d.Redelivered {
			t.Fatalf("immediate=%v: first get %+v", immediate, d)
		}
		c.send(1, &amqp.BasicNack{DeliveryTag: d.DeliveryTag, Requeue: true})
		again := getWithin(t, c, 1, "rq", map[bool]time.Duration{false: time.Second, true: 5 * time.Second}[immediate])
		switch {
		case immediate && (again == nil || !again.Redelivered):
			t.Fatalf("requeueMode=immediate: after the nack %+v, want the message back, redelivered", again)
		case !immediate && again != nil:
			t.Fatalf("requeueMode=graded: the message came back %+v within a second of the nack", again)
		}
		if immediate {
			// Stats count it as requeued either way.
			if st := s.Stats(); st.Requeued != 1 {
				t.Fatalf("stats %+v", st)
			}
		}
		c.nc.Close()
	}
}

// globalQos=false (PerConsumerQos): basic.qos global=1 of one gives each
// next consumer a window of one, as RabbitMQ 4.3 does by default, so two
// consumers on one channel hold a delivery each (TestPumpSharedWindow
// has the shared window of global=1 by default).
func TestPerConsumerQos(t *testing.T) {
	s := serveGatewayWith(t, newStoreBackend(t), func(c *Config) { c.PerConsumerQos = true })
	c := dial(t, s)
	defer c.nc.Close()
	c.send(1, &amqp.ChannelOpen{})
	c.want(1, "channel.open-ok")
	for _, q := range []string{"p1", "p2"} {
		c.send(1, &amqp.QueueDeclare{Queue: q})
		c.want(1, "queue.declare-ok")
	}
	c.send(1, &amqp.BasicQos{PrefetchCount: 1, Global: true})
	c.want(1, "basic.qos-ok")
	for _, q := range []string{"p1", "p2"} {
		c.send(1, &amqp.BasicConsume{Queue: q, ConsumerTag: q})
		c.want(1, "basic.consume-ok")
	}
	var frames []byte
	for _, q := range []string{"p1", "p1", "p2", "p2"} {
		frames = append(frames, publishFrames(1, q, []byte(q))...)
	}
	c.write(frames)
	got := map[string]int{}
	for range 2 {
		m, ok := c.want(1, "basic.deliver").(*amqp.BasicDeliver)
		if !ok {
			t.FailNow()
		}
		c.frame()
		c.frame()
		got[m.ConsumerTag]++
	}
	if got["p1"] != 1 || got["p2"] != 1 {
		t.Fatalf("deliveries per consumer %v, want one each", got)
	}
	// Each window is full: nothing more comes until an ack.
	_ = c.nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, m, err := c.next(); err == nil {
		t.Fatalf("a third delivery inside two windows of one: %v", m)
	}
}
