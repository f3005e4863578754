package gateway

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mqops/mqops/wire/amqp"
)

// Turns under -race: while the writer queue is full, pumps are granted
// in the order they asked, one quantum of room each, and a pump that had
// its turn asks again behind the others; a connection ending frees its
// waiters.
func TestTurnsRoundRobin(t *testing.T) {
	c := &conn{done: make(chan struct{})}
	for c.turns.queued < maxOutBytes {
		if !c.turn(make(chan struct{}, 1)) {
			t.Fatal("turn refused with room")
		}
	}
	const pumps = 5
	var mu sync.Mutex
	var order []int
	grants := make([]chan struct{}, pumps)
	var wg sync.WaitGroup
	for i := range pumps {
		grants[i] = make(chan struct{}, 1)
		c.turns.mu.Lock()
		waiting := len(c.turns.line)
		c.turns.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2 { // a turn, then a second one behind the others
				if !c.turn(grants[i]) {
					t.Error("turn refused")
					return
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				c.admitted(quantumBytes) // a full chunk is queued
			}
		}()
		for {
			c.turns.mu.Lock()
			n := len(c.turns.line)
			c.turns.mu.Unlock()
			if n > waiting {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	// The writer writes one quantum at a time.
	for k := 1; k <= 2*pumps; k++ {
		c.unqueue(quantumBytes)
		// Wait for the grantee to take it and, in the first round, to
		// ask again.
		for {
			mu.Lock()
			n := len(order)
			mu.Unlock()
			c.turns.mu.Lock()
			settled := n == k && len(c.turns.line) == min(pumps, 2*pumps-k)
			c.turns.mu.Unlock()
			if settled {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	wg.Wait()
	want := "[0 1 2 3 4 0 1 2 3 4]"
	if got := fmt.Sprint(order); got != want {
		t.Fatalf("grant order %s, want %s", got, want)
	}
	// Waiters leave when the connection ends.
	ended := make(chan bool)
	go func() { ended <- c.turn(make(chan struct{}, 1)) }()
	close(c.done)
	if <-ended {
		t.Fatal("turn granted on an ended connection")
	}
}

// A queue with a backlog and a quiet queue consumed on one connection
// whose client does not read: once the client reads, the quiet queue's
// message comes long before the backlog's end (without turns it came
// after every message already fetched for the backlog).
func TestPumpQuietQueueNotBehindBacklog(t *testing.T) {
	s, _ := startStoreGateway(t)
	c := dial(t, s)
	defer c.nc.Close()
	// A small receive window: what the kernels buffer stays well under
	// the backlog (a few MiB of the gateway's send buffer).
	if err := c.nc.(*net.TCPConn).SetReadBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	c.send(1, &amqp.ChannelOpen{})
	c.want(1, "channel.open-ok")
	for _, q := range []string{"flood", "quiet"} {
		c.send(1, &amqp.QueueDeclare{Queue: q})
		c.want(1, "queue.declare-ok")
	}
	c.send(1, &amqp.ConfirmSelect{})
	c.want(1, "confirm.select-ok")
	const n, size = 12000, 900 // the test gateway takes bodies up to 1000 bytes
	body := make([]byte, size)
	var frames []byte
	for range n {
		frames, _ = amqp.AppendMethodFrame(frames, 1, &amqp.BasicPublish{RoutingKey: "flood"})
		frames = amqp.AppendHeaderFrame(frames, 1, 60, size, 0, nil)
		frames = amqp.AppendBodyFrames(frames, 1, body, 131072)
	}
	c.write(frames)
	for acked := uint64(0); acked < n; {
		acked = wantMethod[*amqp.BasicAck](t, c, 1, "basic.ack").DeliveryTag
	}
	c.send(2, &amqp.ChannelOpen{})
	c.want(2, "channel.open-ok")
	c.send(2, &amqp.BasicConsume{Queue: "quiet", ConsumerTag: "quiet", NoAck: true})
	c.want(2, "basic.consume-ok")
	c.send(3, &amqp.ChannelOpen{})
	c.want(3, "channel.open-ok")
	c.send(3, &amqp.BasicConsume{Queue: "flood", ConsumerTag: "flood", NoAck: true})
	c.want(3, "basic.consume-ok")
	// The client reads nothing now: the backlog fills the socket and the
	// gateway's queue. Then one message for the quiet queue.
	time.Sleep(time.Second)
	c.send(1, &amqp.BasicPublish{RoutingKey: "quiet"})
	c.write(amqp.AppendHeaderFrame(nil, 1, 60, 5, 0, nil))
	c.write(amqp.AppendBodyFrames(nil, 1, []byte("quiet"), 131072))
	time.Sleep(time.Second)
	before := 0
	for {
		ch, m, err := c.next()
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := m.(*amqp.BasicDeliver); ok {
			c.frame()
			c.frame()
			if d.ConsumerTag == "quiet" {
				break
			}
			before++
			if before == n {
				t.Fatal("the quiet queue's message came after the whole backlog")
			}
			continue
		}
		if ch != 1 {
			t.Fatalf("unexpected %s on channel %d", m.Name(), ch)
		}
	}
	t.Logf("%d of %d backlog deliveries before the quiet one", before, n)
	// Without turns every fetched backlog message (all of them) went
	// first; the margin is for kernels with larger socket buffers.
	if before > n-1000 {
		t.Fatalf("%d of %d backlog deliveries came before the quiet queue's message", before, n)
	}
}

// A shared window (basic.qos global=1) of one across two queues: idle
// pumps wait with long polls (peeks), not by polling; one message is
// delivered and the other stays ready until the ack, which hands it out.
func TestPumpSharedWindow(t *testing.T) {
	s, b := startStoreGateway(t)
	c := dial(t, s)
	defer c.nc.Close()
	c.send(1, &amqp.ChannelOpen{})
	c.want(1, "channel.open-ok")
	for _, q := range []string{"g1", "g2"} {
		c.send(1, &amqp.QueueDeclare{Queue: q})
		c.want(1, "queue.declare-ok")
	}
	c.send(1, &amqp.ConfirmSelect{})
	c.want(1, "confirm.select-ok")
	c.send(2, &amqp.ChannelOpen{})
	c.want(2, "channel.open-ok")
	c.send(2, &amqp.BasicQos{PrefetchCount: 1, Global: true})
	c.want(2, "basic.qos-ok")
	for _, q := range []string{"g1", "g2"} {
		c.send(2, &amqp.BasicConsume{Queue: q, ConsumerTag: q})
		c.want(2, "basic.consume-ok")
	}
	b.mu.Lock()
	before := b.fetches
	b.mu.Unlock()
	time.Sleep(1500 * time.Millisecond)
	b.mu.Lock()
	idle := b.fetches - before
	b.mu.Unlock()
	// Each pump has at most its fetch and one peek (2 s) out meanwhile;
	// polling would be tens.
	if idle > 4 {
		t.Fatalf("%d fetches by two idle pumps in 1.5 s: polling", idle)
	}
	var frames []byte
	for _, k := range []string{"g1", "g2"} {
		frames, _ = amqp.AppendMethodFrame(frames, 1, &amqp.BasicPublish{RoutingKey: k})
		frames = amqp.AppendHeaderFrame(frames, 1, 60, 2, 0, nil)
		frames = amqp.AppendBodyFrames(frames, 1, []byte(k), 131072)
	}
	c.write(frames)
	// The confirms and the first delivery, in either order.
	var first delivery
	for acked := uint64(0); acked < 2 || first.m == nil; {
		ch, m, err := c.next()
		if err != nil {
			t.Fatal(err)
		}
		switch m := m.(type) {
		case *amqp.BasicAck:
			acked = m.DeliveryTag
		case *amqp.BasicDeliver:
			if first.m != nil {
				t.Fatalf("a second delivery (%s) inside a shared window of 1", m.ConsumerTag)
			}
			c.frame()
			first = delivery{m: m, body: string(c.frame().Payload)}
		default:
			t.Fatalf("unexpected %s on channel %d", m.Name(), ch)
		}
	}
	other := map[string]string{"g1": "g2", "g2": "g1"}[first.body]
	v, err := b.e.Vhost("/")
	if err != nil {
		t.Fatal(err)
	}
	qi, _ := v.Queue(other)
	time.Sleep(200 * time.Millisecond) // a wrong fetch would have come by now
	if n := b.e.Ready("/", qi.ID); n != 1 {
		t.Fatalf("%s holds %d ready while the shared window is full, want 1", other, n)
	}
	c.send(2, &amqp.BasicAck{DeliveryTag: first.m.DeliveryTag})
	if d := nextDelivery(t, c, 2); d.body != other || d.m.ConsumerTag != other {
		t.Fatalf("after the ack: %q to %s, want %s", d.body, d.m.ConsumerTag, other)
	}
}

// After cancel-ok of a queue's last consumer on a channel, nothing more
// is taken for it: a message published next is there for basic.get, not
// redelivered (RabbitMQ). The pump's long-polled fetch, waiting at the
// broker when the cancel arrives, is ended there.
func TestCancelOkThenGet(t *testing.T) {
	s, _ := startStoreGateway(t)
	c := dial(t, s)
	defer c.nc.Close()
	c.send(1, &amqp.ChannelOpen{})
	c.want(1, "channel.open-ok")
	c.send(1, &amqp.QueueDeclare{Queue: "cq"})
	c.want(1, "queue.declare-ok")
	for i := range 20 {
		c.send(1, &amqp.BasicConsume{Queue: "cq", ConsumerTag: "c"})
		c.want(1, "basic.consume-ok")
		time.Sleep(20 * time.Millisecond) // the pump's fetch is waiting at the broker
		c.send(1, &amqp.BasicCancel{ConsumerTag: "c"})
		c.want(1, "basic.cancel-ok")
		body := fmt.Sprintf("m%d", i)
		c.write(publishFrames(1, "cq", []byte(body)))
		c.send(1, &amqp.BasicGet{Queue: "cq", NoAck: true})
		id, m, err := c.next()
		ok, _ := m.(*amqp.BasicGetOk)
		if err != nil || id != 1 || ok == nil {
			t.Fatalf("round %d: basic.get after cancel-ok and a publish: %T %v on %d: %v", i, m, m, id, err)
		}
		if ok.Redelivered {
			t.Fatalf("round %d: redelivered, as if a cancelled consumer had taken it", i)
		}
		c.frame()
		if f := c.frame(); string(f.Payload) != body {
			t.Fatalf("round %d: body %q, want %q", i, f.Payload, body)
		}
	}
}
