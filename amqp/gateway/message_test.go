package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/amqpengine"
	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/wire/amqp"
)

// storeBackend adds the message path to engineBackend: the engine on a
// real store in a temp dir, as the broker serves AMQP_PUBLISH and
// AMQP_FETCH (and its peek). gate, when set, holds every publish call until it is
// closed; calls and maxBusy count publish calls and the most in flight at
// once.
type storeBackend struct {
	*engineBackend
	gate    chan struct{}
	entered chan struct{} // a publish call is waiting at gate

	mu               sync.Mutex
	calls, busy, max int
	sizes            []int
	fetches          int // AMQP_FETCH calls, peeks included
}

func startStoreGateway(t *testing.T) (*Server, *storeBackend) {
	t.Helper()
	sb := newStoreBackend(t)
	return serveGateway(t, sb), sb
}

// newStoreBackend is an engine over a SYNC_FLUSH store with light queues.
func newStoreBackend(t *testing.T) *storeBackend {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(store.Config{RootDir: filepath.Join(dir, "store"), FlushMode: store.SyncFlush, LightQueues: true})
	if err != nil {
		t.Fatal(err)
	}
	offs, err := meta.LoadOffsets(filepath.Join(dir, "consumerOffset.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	eb := newEngineBackend(t)
	t.Cleanup(func() { _ = st.Close() })
	st.OnDispatch(func(topic string, _ int32, _, _ int64) { eb.e.Notify(topic) })
	eb.e.Attach(amqpengine.Backend{Store: st, Offsets: offs, LightQueues: true, MaxDelayLevel: 18,
		EnsureTopic: func(string) error { return nil },
		Durable: func(end int64) error {
			done := make(chan bool, 1)
			st.WaitFlushed(end, func(ok bool) { done <- ok })
			if !<-done {
				return errors.New("flush failed")
			}
			return nil
		}})
	return &storeBackend{engineBackend: eb}
}

func (c *client) frame() amqp.Frame {
	f, err := c.fr.ReadFrame()
	if err != nil {
		c.t.Fatal(err)
	}
	return f
}

func wantMethod[M amqp.Method](t *testing.T, c *client, ch uint16, name string) M {
	t.Helper()
	m, ok := c.want(ch, name).(M)
	if !ok {
		t.FailNow()
	}
	return m
}

func (b *storeBackend) Call(vhost string, code int32, req, resp any) error {
	var out any
	var err error
	switch r := req.(type) {
	case wire.AMQPFetchRequest:
		b.mu.Lock()
		b.fetches++
		b.mu.Unlock()
		var f wire.AMQPFetchResponse
		if r.Peek {
			f.Ready, err = b.e.WaitReady(r.Vhost, r.Queue, r.Session, time.Duration(r.WaitMillis)*time.Millisecond)
		} else {
			var timeout time.Duration
			f.Deliveries, f.Ready, timeout, err = b.e.Fetch(r.Vhost, r.Queue, r.Session, r.Max, time.Duration(r.WaitMillis)*time.Millisecond, r.NoAck,
				time.Duration(r.TimeoutMillis)*time.Millisecond)
			f.TimeoutMillis = timeout.Milliseconds()
		}
		out = f
	case wire.AMQPSettleRequest:
		_, err = b.e.Settle(r.Vhost, r.Items)
	case wire.AMQPReleaseRequest:
		_, err = b.e.Release(r.Vhost, r.Session, r.Handles)
	case wire.AMQPPublishRequest:
	default:
		return b.engineBackend.Call(vhost, code, req, resp)
	}
	if err != nil {
		return toAMQP(err)
	}
	if code != wire.AMQPPublish {
		if out != nil && resp != nil {
			j, _ := json.Marshal(out)
			return json.Unmarshal(j, resp)
		}
		return nil
	}
	r := req.(wire.AMQPPublishRequest)
	b.mu.Lock()
	b.calls++
	b.busy++
	b.max = max(b.max, b.busy)
	b.sizes = append(b.sizes, len(r.Messages))
	gate := b.gate
	b.mu.Unlock()
	if gate != nil {
		b.entered <- struct{}{}
		<-gate
	}
	defer func() {
		b.mu.Lock()
		b.busy--
		b.mu.Unlock()
	}()
	res, err := b.e.Publish(r.Vhost, r.Exchange, r.Messages)
	if err != nil {
		return toAMQP(err)
	}
	j, _ := json.Marshal(wire.AMQPPublishResponse{Results: res})
	return json.Unmarshal(j, resp)
}

// Publishes that arrive while a channel's publish request is out form the
// next request, in channel order: while the request of the first publish
// is held, 99 more publishes followed by basic.qos (answered only after
// the read loop has taken every publish) go to the broker as one request
// of 99, never two requests at once; confirms cover every sequence number once, the last
// with multiple=1; the messages come back in publish order.
func TestPublishBatching(t *testing.T) {
	const n = 100
	s, b := startStoreGateway(t)
	c := dial(t, s)
	defer c.nc.Close()
	c.send(1, &amqp.ChannelOpen{})
	c.want(1, "channel.open-ok")
	c.send(1, &amqp.QueueDeclare{Queue: "batch"})
	c.want(1, "queue.declare-ok")
	c.send(1, &amqp.ConfirmSelect{})
	c.want(1, "confirm.select-ok")
	b.mu.Lock()
	b.gate, b.entered = make(chan struct{}), make(chan struct{}, n)
	b.mu.Unlock()
	var frames []byte
	publish := func(i int) {
		frames, _ = amqp.AppendMethodFrame(frames, 1, &amqp.BasicPublish{RoutingKey: "batch"})
		body := []byte(fmt.Sprint(i))
		frames = amqp.AppendHeaderFrame(frames, 1, 60, uint64(len(body)), 0, nil)
		frames = amqp.AppendBodyFrames(frames, 1, body, 131072)
	}
	publish(0)
	c.write(frames)
	<-b.entered // the first request is out and held
	frames = frames[:0]
	for i := 1; i < n; i++ {
		publish(i)
	}
	c.write(frames)
	c.send(1, &amqp.BasicQos{PrefetchCount: 1})
	c.want(1, "basic.qos-ok")
	close(b.gate)
	acked := uint64(0)
	for acked < n {
		m := wantMethod[*amqp.BasicAck](t, c, 1, "basic.ack")
		if m.DeliveryTag <= acked || (!m.Multiple && m.DeliveryTag != acked+1) {
			t.Fatalf("ack %+v after %d", m, acked)
		}
		acked = m.DeliveryTag
	}
	b.mu.Lock()
	calls, most, sizes := b.calls, b.max, b.sizes
	b.mu.Unlock()
	if calls != 2 || sizes[0] != 1 || sizes[1] != n-1 || most != 1 {
		t.Fatalf("publish requests %v (at most %d at once), want [1 %d] one at a time", sizes, most, n-1)
	}
	for i := range n {
		c.send(1, &amqp.BasicGet{Queue: "batch", NoAck: true})
		ok := wantMethod[*amqp.BasicGetOk](t, c, 1, "basic.get-ok")
		if ok.DeliveryTag != uint64(i+1) || ok.MessageCount != uint32(n-1-i) {
			t.Fatalf("get-ok %+v at %d", ok, i)
		}
		if f := c.frame(); f.Type != amqp.FrameHeader {
			t.Fatalf("frame type %d, want the content header", f.Type)
		}
		if f := c.frame(); string(f.Payload) != fmt.Sprint(i) {
			t.Fatalf("message %d: body %q", i, f.Payload)
		}
	}
	c.send(1, &amqp.BasicGet{Queue: "batch"})
	c.want(1, "basic.get-empty")
}

type delivery struct {
	m    *amqp.BasicDeliver
	body string
}

// nextDelivery reads a basic.deliver and its content (one body frame).
func nextDelivery(t *testing.T, c *client, ch uint16) delivery {
	t.Helper()
	m := wantMethod[*amqp.BasicDeliver](t, c, ch, "basic.deliver")
	if f := c.frame(); f.Type != amqp.FrameHeader || f.Channel != ch {
		t.Fatalf("frame type %d on %d, want the content header", f.Type, f.Channel)
	}
	f := c.frame()
	if f.Type != amqp.FrameBody {
		t.Fatalf("frame type %d, want a body", f.Type)
	}
	return delivery{m: m, body: string(f.Payload)}
}

// Consumers under -race: consume-ok comes before the first deliver; a
// consumer with prefetch 5 holds five; ack multiple takes the next ones;
// closing the channel with unacked messages hands them to a consumer on
// another channel at once, redelivered, and everything else follows in
// order; a connection that drops with a basic.get unacked gives it back,
// redelivered; an unknown tag closes the channel with 406.
func TestConsumePrefetchAndRelease(t *testing.T) {
	s, _ := startStoreGateway(t)
	c := dial(t, s)
	defer c.nc.Close()
	c.send(1, &amqp.ChannelOpen{})
	c.want(1, "channel.open-ok")
	c.send(1, &amqp.QueueDeclare{Queue: "work"})
	c.want(1, "queue.declare-ok")
	c.send(1, &amqp.ConfirmSelect{})
	c.want(1, "confirm.select-ok")
	const n = 20
	var frames []byte
	for i := range n {
		frames, _ = amqp.AppendMethodFrame(frames, 1, &amqp.BasicPublish{RoutingKey: "work"})
		body := []byte(fmt.Sprintf("m%02d", i))
		frames = amqp.AppendHeaderFrame(frames, 1, 60, uint64(len(body)), 0, nil)
		frames = amqp.AppendBodyFrames(frames, 1, body, 131072)
	}
	c.write(frames)
	for acked := uint64(0); acked < n; {
		acked = wantMethod[*amqp.BasicAck](t, c, 1, "basic.ack").DeliveryTag
	}

	c.send(2, &amqp.ChannelOpen{})
	c.want(2, "channel.open-ok")
	c.send(2, &amqp.BasicQos{PrefetchCount: 5})
	c.want(2, "basic.qos-ok")
	c.send(2, &amqp.BasicConsume{Queue: "work", ConsumerTag: "w1"})
	c.want(2, "basic.consume-ok")
	for i := range 5 {
		d := nextDelivery(t, c, 2)
		if d.body != fmt.Sprintf("m%02d", i) || d.m.DeliveryTag != uint64(i+1) || d.m.Redelivered || d.m.ConsumerTag != "w1" {
			t.Fatalf("delivery %d: %+v %q", i, d.m, d.body)
		}
	}
	c.send(2, &amqp.BasicAck{DeliveryTag: 3, Multiple: true})
	for i := 5; i < 8; i++ {
		if d := nextDelivery(t, c, 2); d.body != fmt.Sprintf("m%02d", i) {
			t.Fatalf("after ack multiple: %q, want m%02d", d.body, i)
		}
	}
	// Unacked now: m03..m07. Close: they go back at once.
	c.send(2, &amqp.ChannelClose{ReplyCode: 200})
	c.want(2, "channel.close-ok")

	c.send(3, &amqp.ChannelOpen{})
	c.want(3, "channel.open-ok")
	c.send(3, &amqp.BasicConsume{Queue: "work", ConsumerTag: "w2", NoAck: true})
	c.want(3, "basic.consume-ok")
	for i := 3; i < n; i++ {
		d := nextDelivery(t, c, 3)
		if d.body != fmt.Sprintf("m%02d", i) || d.m.Redelivered != (i < 8) {
			t.Fatalf("after release: %q redelivered=%v, want m%02d redelivered=%v", d.body, d.m.Redelivered, i, i < 8)
		}
	}
	c.send(3, &amqp.BasicAck{DeliveryTag: 1}) // no-ack deliveries have nothing to ack
	cl := wantMethod[*amqp.ChannelClose](t, c, 3, "channel.close")
	if cl.ReplyCode != 406 || cl.ReplyText != "PRECONDITION_FAILED - unknown delivery tag 1" || cl.ClassID != 60 || cl.MethodID != 80 {
		t.Fatalf("close %+v", cl)
	}
	c.send(3, &amqp.ChannelCloseOk{})

	// Connection loss releases too.
	c.send(1, &amqp.BasicPublish{RoutingKey: "work"})
	c.write(amqp.AppendHeaderFrame(nil, 1, 60, 4, 0, nil))
	c.write(amqp.AppendBodyFrames(nil, 1, []byte("lost"), 131072))
	c.want(1, "basic.ack")
	lost := dial(t, s)
	lost.send(1, &amqp.ChannelOpen{})
	lost.want(1, "channel.open-ok")
	// (The pump of channel 3's cancelled consumer may hold it for a moment
	// and release it, redelivered.)
	getEventually(t, lost, 1, "work", false)
	lost.nc.Close()
	c.send(4, &amqp.ChannelOpen{})
	c.want(4, "channel.open-ok")
	if ok, body := getEventually(t, c, 4, "work", true); body != "lost" || !ok.Redelivered {
		t.Fatalf("after the connection loss: %+v %q", ok, body)
	}
}

// getEventually repeats basic.get until a message comes.
func getEventually(t *testing.T, c *client, ch uint16, queue string, noAck bool) (*amqp.BasicGetOk, string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; {
		c.send(ch, &amqp.BasicGet{Queue: queue, NoAck: noAck})
		_, m, err := c.next()
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := m.(*amqp.BasicGetOk); ok != nil {
			c.frame()
			return ok, string(c.frame().Payload)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message in %s", queue)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Once the server closed a channel nothing more is sent on it (amqp091-go
// closes the connection on a method for a channel it closed): the
// confirm of a publish whose request was out when an unknown tag closed
// the channel is dropped.
func TestNothingAfterChannelClose(t *testing.T) {
	s, b := startStoreGateway(t)
	c := dial(t, s)
	defer c.nc.Close()
	c.send(1, &amqp.ChannelOpen{})
	c.want(1, "channel.open-ok")
	c.send(1, &amqp.QueueDeclare{Queue: "q"})
	c.want(1, "queue.declare-ok")
	c.send(1, &amqp.ConfirmSelect{})
	c.want(1, "confirm.select-ok")
	b.mu.Lock()
	b.gate, b.entered = make(chan struct{}), make(chan struct{}, 1)
	b.mu.Unlock()
	c.send(1, &amqp.BasicPublish{RoutingKey: "q"})
	c.write(amqp.AppendHeaderFrame(nil, 1, 60, 1, 0, nil))
	c.write(amqp.AppendBodyFrames(nil, 1, []byte("x"), 131072))
	<-b.entered
	c.send(1, &amqp.BasicAck{DeliveryTag: 7})
	if cl := wantMethod[*amqp.ChannelClose](t, c, 1, "channel.close"); cl.ReplyCode != 406 {
		t.Fatalf("close %+v", cl)
	}
	c.send(1, &amqp.ChannelCloseOk{})
	close(b.gate)
	for {
		b.mu.Lock()
		busy := b.busy
		b.mu.Unlock()
		if busy == 0 {
			break
		}
		runtime.Gosched()
	}
	c.send(2, &amqp.ChannelOpen{})
	c.want(2, "channel.open-ok")
	c.send(2, &amqp.BasicGet{Queue: "q", NoAck: true})
	c.want(2, "basic.get-ok") // stored all the same
}
