package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/wire/amqp"
)

// The RabbitMQ tutorials' steps (https://www.rabbitmq.com/tutorials),
// written anew against real mqnamesrv + mqbroker (light queues on) +
// mqamqp with the official Go client amqp091-go v1.17.0.

func ctx15(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// amqpStack starts a name server, a broker that stores AMQP messages and
// a gateway.
func amqpStack(t *testing.T) (*cluster, *proc) {
	c := startCluster(t, amqpLMQ...)
	return c, startAMQP(t, c)
}

func dialAMQP(t *testing.T, gw *proc) (*rmq.Connection, *rmq.Channel) {
	t.Helper()
	return dialURL(t, amqpURL(gw, "guest:guest", ""))
}

// dialURL opens a connection and a channel, closed when t ends.
func dialURL(t *testing.T, url string) (*rmq.Connection, *rmq.Channel) {
	t.Helper()
	conn, ch := dialOwn(t, url)
	t.Cleanup(func() { conn.Close() })
	return conn, ch
}

// amqpTarget is the server a tutorial runs against: our gateway in front
// of a fresh cluster (gatewayTarget) or a vhost of a private RabbitMQ node
// (rabbitNode.target, e2e/rabbitmq_test.go). The same program and the
// same assertions run against both: where RabbitMQ disagrees with a test,
// the test is wrong.
type amqpTarget struct {
	addr, vhost string
	gw          *proc // our gateway mqamqp; nil on RabbitMQ and for the broker's own
	embedded    bool  // the gateway inside the broker (enableAmqpGateway)
}

// rabbit reports whether the target is RabbitMQ.
func (a amqpTarget) rabbit() bool { return a.gw == nil && !a.embedded }

func gatewayTarget(t *testing.T) amqpTarget {
	_, gw := amqpStack(t)
	return amqpTarget{addr: gw.addr, vhost: "/", gw: gw}
}

func (a amqpTarget) url() string {
	return "amqp://guest:guest@" + a.addr + "/" + url.PathEscape(a.vhost)
}

func (a amqpTarget) dial(t *testing.T) (*rmq.Connection, *rmq.Channel) {
	t.Helper()
	return dialURL(t, a.url())
}

// raw is a hand-driven connection whose open asks for the target's vhost.
func (a amqpTarget) raw(t *testing.T) *rawAMQP {
	t.Helper()
	r := dialRawAddr(t, a.addr)
	r.vhost = a.vhost
	return r
}

// The tutorials both TestAMQPTutorial* (our gateway) and
// TestRabbitMQTutorials run.
var amqpTutorials = []struct {
	name string
	run  func(*testing.T, amqpTarget)
}{
	{"HelloWorld", tutorialHelloWorld},
	{"WorkQueues", tutorialWorkQueues},
	{"PublishSubscribe", tutorialPublishSubscribe},
	{"RoutingAndTopics", tutorialRoutingAndTopics},
	{"PublisherConfirms", tutorialPublisherConfirms},
}

// recv waits (generously) for the next delivery.
func recv(t *testing.T, what string, ds <-chan rmq.Delivery) rmq.Delivery {
	t.Helper()
	select {
	case d, ok := <-ds:
		if !ok {
			t.Fatalf("%s: delivery channel closed", what)
		}
		return d
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: no delivery", what)
	}
	return rmq.Delivery{}
}

func mustConsume(t *testing.T, ch *rmq.Channel, q string, autoAck bool) <-chan rmq.Delivery {
	t.Helper()
	ds, err := ch.Consume(q, "", autoAck, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume %s: %v", q, err)
	}
	return ds
}

// confirmed publishes msgs in confirm mode and waits for every ack.
func confirmed(t *testing.T, ch *rmq.Channel, exchange string, keys []string, body func(i int) string) {
	t.Helper()
	confirmedMsgs(t, ch, exchange, keys, func(i int) rmq.Publishing { return rmq.Publishing{Body: []byte(body(i))} })
}

// confirmedMsgs is confirmed with whole messages: msg(i) goes with keys[i].
func confirmedMsgs(t *testing.T, ch *rmq.Channel, exchange string, keys []string, msg func(i int) rmq.Publishing) {
	t.Helper()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	var dcs []*rmq.DeferredConfirmation
	for i, k := range keys {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx15(t), exchange, k, false, false, msg(i))
		if err != nil {
			t.Fatal(err)
		}
		dcs = append(dcs, dc)
	}
	for i, dc := range dcs {
		if ok, err := dc.WaitContext(ctx15(t)); !ok || err != nil {
			t.Fatalf("publish %d (%s): acked=%v %v", i, keys[i], ok, err)
		}
	}
}

// drainGet reads a queue with basic.get until get-empty.
func drainGet(t *testing.T, ch *rmq.Channel, q string) []string {
	t.Helper()
	var out []string
	for {
		d, ok, err := ch.Get(q, true)
		if err != nil {
			t.Fatalf("get %s: %v", q, err)
		}
		if !ok {
			return out
		}
		out = append(out, string(d.Body))
	}
}

// Tutorial 1: a durable quorum queue "hello", one publish closed at once
// (send.go's deferred closes), waiting for the receiver (message-count 1
// in its redeclare), consumed with auto-ack by a new connection, content
// type and body intact. An inequivalent redeclare closes the channel with
// 406, not the connection (RabbitMQ's text, cut to 255 bytes). Then amqplib send.js's sequence in raw
// frames: publish and connection.close with channel 1 still open; the
// message is there afterwards.
func TestAMQPTutorialHelloWorld(t *testing.T) { tutorialHelloWorld(t, gatewayTarget(t)) }

func tutorialHelloWorld(t *testing.T, a amqpTarget) {
	conn, ch := a.dial(t)
	if _, err := ch.QueueDeclare("hello", true, false, false, false, rmq.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	if err := ch.PublishWithContext(ctx15(t), "", "hello", false, false, rmq.Publishing{ContentType: "text/plain", Body: []byte("Hello World!")}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}

	rconn, rch := a.dial(t)
	// A publish without confirms reaches a RabbitMQ quorum queue after
	// the publisher's close-ok, and its count follows the Raft log: on a
	// loaded machine the first redeclare can still say 0 (seen in CI).
	var q rmq.Queue
	waitFor(t, 15*time.Second, "the message waiting for the receiver", func() bool {
		var err error
		q, err = rch.QueueDeclare("hello", true, false, false, false, rmq.Table{"x-queue-type": "quorum"})
		if err != nil {
			t.Fatalf("redeclare by the receiver: %v", err)
		}
		return q.Messages == 1
	})
	// An inequivalent redeclare closes that channel, not the connection.
	xch, err := rconn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	_, err = xch.QueueDeclare("hello", false, false, false, false, rmq.Table{"x-queue-type": "quorum"})
	wantAMQPError(t, "redeclare with durable=false", err, 406, fmt.Sprintf(
		"PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'hello' in vhost '%s': received 'false' but current is 'true'", a.vhost))
	// The same with a long queue name: the text outgrows a short string
	// and is cut to 252 bytes and "...".
	long := "hello-" + strings.Repeat("o", 240)
	lch, err := rconn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lch.QueueDeclare(long, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	// amqp091-go waits for an answer without a deadline.
	answered := make(chan error, 1)
	go func() {
		_, err := lch.QueueDeclare(long, false, false, false, false, nil)
		answered <- err
	}()
	select {
	case err = <-answered:
	case <-time.After(15 * time.Second):
		t.Fatal("no answer to an inequivalent redeclare of a long-named queue")
	}
	wantAMQPError(t, "redeclare of a long-named queue with durable=false", err, 406, amqp.ReplyText(fmt.Sprintf(
		"PRECONDITION_FAILED - inequivalent arg 'durable' for queue '%s' in vhost '%s': received 'false' but current is 'true'", long, a.vhost)))
	if rconn.IsClosed() {
		t.Fatal("a channel error closed the connection")
	}
	d := recv(t, "hello", mustConsume(t, rch, "hello", true))
	if string(d.Body) != "Hello World!" || d.ContentType != "text/plain" || d.Redelivered || d.RoutingKey != "hello" || d.Exchange != "" {
		t.Fatalf("delivery %+v", d)
	}

	r := a.raw(t)
	r.open(amqp.ConnectionTuneOk{ChannelMax: 2047, FrameMax: 131072, Heartbeat: 0})
	r.method(1, &amqp.ChannelOpen{})
	r.next()
	r.method(1, &amqp.QueueDeclare{Queue: "js-hello"})
	r.next()
	r.method(1, &amqp.BasicPublish{RoutingKey: "js-hello"})
	r.write(amqp.AppendHeaderFrame(nil, 1, 60, 5, 0, nil))
	r.write(amqp.AppendBodyFrames(nil, 1, []byte("hi js"), 131072))
	r.method(0, &amqp.ConnectionClose{ReplyCode: 200, ReplyText: "Goodbye"})
	if ch, m := r.next(); ch != 0 || m.Name() != "connection.close-ok" {
		t.Fatalf("after connection.close: %d %s", ch, m.Name())
	}
	_, gch := a.dial(t)
	if got := drainGet(t, gch, "js-hello"); !slices.Equal(got, []string{"hi js"}) {
		t.Fatalf("publish before connection.close: queue holds %q", got)
	}
}

// Tutorial 2: a durable quorum work queue, persistent tasks, two workers
// with Qos(1) and manual acks. A worker that closes its channel without
// acking gives its task to the other, redelivered; a worker holding an
// unacked task gets nothing more (the other worker receives every later
// task). An unknown delivery tag closes the channel with 406.
func TestAMQPTutorialWorkQueues(t *testing.T) { tutorialWorkQueues(t, gatewayTarget(t)) }

func tutorialWorkQueues(t *testing.T, a amqpTarget) {
	_, pch := a.dial(t)
	if _, err := pch.QueueDeclare("task_queue", true, false, false, false, rmq.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	publish := func(body string) {
		if err := pch.PublishWithContext(ctx15(t), "", "task_queue", false, false,
			rmq.Publishing{DeliveryMode: rmq.Persistent, ContentType: "text/plain", Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	_, ach := a.dial(t)
	if err := ach.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	ads := mustConsume(t, ach, "task_queue", false)
	publish("first.")
	first := recv(t, "worker A", ads)
	if string(first.Body) != "first." || first.Redelivered || first.DeliveryMode != rmq.Persistent {
		t.Fatalf("worker A got %+v", first)
	}

	_, bch := a.dial(t)
	if err := bch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	bds := mustConsume(t, bch, "task_queue", false)
	for i := range 3 {
		publish(fmt.Sprintf("task %d..", i))
	}
	// A holds "first." unacked with prefetch 1, so B must get all three.
	for i := range 3 {
		d := recv(t, "worker B", bds)
		if want := fmt.Sprintf("task %d..", i); string(d.Body) != want || d.Redelivered {
			t.Fatalf("worker B got %q redelivered=%v, want %q", d.Body, d.Redelivered, want)
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	// A dies without acking: B gets A's task, redelivered.
	if err := ach.Close(); err != nil {
		t.Fatal(err)
	}
	d := recv(t, "worker B after A closed", bds)
	if string(d.Body) != "first." || !d.Redelivered {
		t.Fatalf("worker B got %q redelivered=%v, want first. redelivered", d.Body, d.Redelivered)
	}
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}

	closed := bch.NotifyClose(make(chan *rmq.Error, 1))
	if err := bch.Ack(99, false); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-closed:
		if e == nil || e.Code != 406 || e.Reason != "PRECONDITION_FAILED - unknown delivery tag 99" {
			t.Fatalf("ack of an unknown tag: %v", e)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("ack of an unknown tag did not close the channel")
	}
	_, qch := a.dial(t)
	if got := drainGet(t, qch, "task_queue"); len(got) != 0 {
		t.Fatalf("acked tasks still queued: %q", got)
	}
}

// Tutorial 3: a fanout exchange "logs", each subscriber with a
// server-named (amq.gen-) exclusive queue bound to it; a line published
// before any subscriber reaches nobody, later ones reach both, in order.
// Another connection gets 405 for a live subscriber's queue and 404 once
// the subscriber has left.
func TestAMQPTutorialPublishSubscribe(t *testing.T) { tutorialPublishSubscribe(t, gatewayTarget(t)) }

func tutorialPublishSubscribe(t *testing.T, a amqpTarget) {
	_, pch := a.dial(t)
	if err := pch.ExchangeDeclare("logs", "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	// Nobody listens yet: the message vanishes without an error.
	confirmed(t, pch, "logs", []string{""}, func(int) string { return "unheard" })

	var subs []<-chan rmq.Delivery
	var conns []*rmq.Connection
	var names []string
	for i := range 2 {
		conn, ch := a.dial(t)
		if err := ch.ExchangeDeclare("logs", "fanout", true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		// amqplib's assertQueue('', {exclusive: true}) asks for durable=true.
		q, err := ch.QueueDeclare("", i == 1, false, true, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(q.Name, "amq.gen-") {
			t.Fatalf("server-named queue %q", q.Name)
		}
		if err := ch.QueueBind(q.Name, "", "logs", false, nil); err != nil {
			t.Fatal(err)
		}
		subs = append(subs, mustConsume(t, ch, q.Name, true))
		conns = append(conns, conn)
		names = append(names, q.Name)
	}
	for i := range 5 {
		if err := pch.PublishWithContext(ctx15(t), "logs", "", false, false, rmq.Publishing{Body: []byte(fmt.Sprintf("log %d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	for s, ds := range subs {
		for i := range 5 {
			if d := recv(t, "subscriber", ds); string(d.Body) != fmt.Sprintf("log %d", i) || d.Exchange != "logs" {
				t.Fatalf("subscriber %d message %d: %q from %q", s, i, d.Body, d.Exchange)
			}
		}
	}

	// Another connection cannot touch a subscriber's queue while it
	// lives, and finds it gone once the subscriber disconnected.
	oconn, _ := a.dial(t)
	passive := func(q string) error {
		ch, err := oconn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		_, err = ch.QueueDeclarePassive(q, false, false, true, false, nil)
		return err
	}
	wantAMQPError(t, "passive declare of a live exclusive queue", passive(names[0]), 405, amqp.ReplyText(fmt.Sprintf(
		"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '%s' in vhost '%s'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.", names[0], a.vhost)))
	if err := conns[0].Close(); err != nil {
		t.Fatal(err)
	}
	var err error
	waitFor(t, 15*time.Second, "the exclusive queue gone after its connection closed", func() bool {
		err = passive(names[0])
		// 405 while the closing connection still owns it.
		var e *rmq.Error
		return err != nil && !(errors.As(err, &e) && e.Code == 405)
	})
	wantAMQPError(t, "passive declare after the owner left", err, 404, fmt.Sprintf("NOT_FOUND - no queue '%s' in vhost '%s'", names[0], a.vhost))
}

// Tutorials 4 and 5: direct routing by severity and topic routing with
// the tutorial's keys; each queue holds exactly what its bindings select
// (read back with basic.get after confirmed publishes), also tutorial 5's
// kern.*/ *.critical receivers and #; a binding does not deliver earlier
// publishes. An unroutable
// mandatory publish comes back as basic.return 312 NO_ROUTE.
func TestAMQPTutorialRoutingAndTopics(t *testing.T) { tutorialRoutingAndTopics(t, gatewayTarget(t)) }

func tutorialRoutingAndTopics(t *testing.T, a amqpTarget) {
	_, ch := a.dial(t)
	if err := ch.ExchangeDeclare("direct_logs", "direct", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("topic_logs", "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	bind := func(q, ex string, keys ...string) {
		if _, err := ch.QueueDeclare(q, false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if err := ch.QueueBind(q, k, ex, false, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	bind("disk", "direct_logs", "error")
	bind("screen", "direct_logs", "info", "warning", "error")
	bind("Q1", "topic_logs", "*.orange.*")
	bind("Q2", "topic_logs", "*.*.rabbit", "lazy.#")

	_, pch := a.dial(t)
	sev := []string{"info", "warning", "error", "debug"}
	confirmed(t, pch, "direct_logs", sev, func(i int) string { return sev[i] })
	topics := []string{"quick.orange.rabbit", "lazy.orange.elephant", "quick.orange.fox", "lazy.brown.fox",
		"lazy.pink.rabbit", "quick.brown.fox", "orange", "quick.orange.new.rabbit", "lazy.orange.new.rabbit"}
	confirmed(t, pch, "topic_logs", topics, func(i int) string { return topics[i] })

	want := map[string][]string{
		"disk":   {"error"},
		"screen": {"info", "warning", "error"},
		"Q1":     {"quick.orange.rabbit", "lazy.orange.elephant", "quick.orange.fox"},
		"Q2":     {"quick.orange.rabbit", "lazy.orange.elephant", "lazy.brown.fox", "lazy.pink.rabbit", "lazy.orange.new.rabbit"},
	}
	for q, w := range want {
		if got := drainGet(t, ch, q); !slices.Equal(got, w) {
			t.Fatalf("queue %s holds %q, want %q", q, got, w)
		}
	}

	// A binding made after a publish does not deliver that message.
	confirmed(t, pch, "direct_logs", []string{"late"}, func(int) string { return "before the binding" })
	bind("screen", "direct_logs", "late")
	confirmed(t, pch, "direct_logs", []string{"late"}, func(int) string { return "after the binding" })
	if got := drainGet(t, ch, "screen"); !slices.Equal(got, []string{"after the binding"}) {
		t.Fatalf("screen holds %q, want only the message published after its binding", got)
	}

	// The receivers of tutorial 5's text: a queue with two matching
	// bindings gets a message once; # matches every key, the empty one
	// too; * is exactly one word.
	if err := ch.ExchangeDeclare("logs_topic", "topic", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	bind("all", "logs_topic", "#")
	bind("kern", "logs_topic", "kern.*")
	bind("crit", "logs_topic", "*.critical")
	bind("kerncrit", "logs_topic", "kern.*", "*.critical")
	keys := []string{"kern.critical", "", "kern.a.b", "app.critical", "kern.info"}
	confirmed(t, pch, "logs_topic", keys, func(i int) string { return "<" + keys[i] + ">" })
	want = map[string][]string{
		"all":      {"<kern.critical>", "<>", "<kern.a.b>", "<app.critical>", "<kern.info>"},
		"kern":     {"<kern.critical>", "<kern.info>"},
		"crit":     {"<kern.critical>", "<app.critical>"},
		"kerncrit": {"<kern.critical>", "<app.critical>", "<kern.info>"},
	}
	for q, w := range want {
		if got := drainGet(t, ch, q); !slices.Equal(got, w) {
			t.Fatalf("queue %s holds %q, want %q", q, got, w)
		}
	}

	returns := pch.NotifyReturn(make(chan rmq.Return, 1))
	dc, err := pch.PublishWithDeferredConfirmWithContext(ctx15(t), "topic_logs", "quick.brown.fox", true, false, rmq.Publishing{Body: []byte("lost")})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-returns:
		if r.ReplyCode != 312 || r.ReplyText != "NO_ROUTE" || string(r.Body) != "lost" || r.RoutingKey != "quick.brown.fox" {
			t.Fatalf("return %+v", r)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no basic.return for an unroutable mandatory publish")
	}
	if ok, err := dc.WaitContext(ctx15(t)); !ok || err != nil {
		t.Fatalf("unroutable publish: acked=%v %v, want acked", ok, err)
	}
}

// Tutorial 7: publisher confirms, 2 000 messages one by one (wait for
// each) and 2 000 asynchronously (every sequence number acknowledged
// exactly once, none nacked); the queue then holds all 4 000.
func TestAMQPTutorialPublisherConfirms(t *testing.T) { tutorialPublisherConfirms(t, gatewayTarget(t)) }

func tutorialPublisherConfirms(t *testing.T, a amqpTarget) {
	_, ch := a.dial(t)
	q, err := ch.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	start := time.Now()
	for i := range n {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx15(t), "", q.Name, false, false, rmq.Publishing{Body: []byte(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := dc.WaitContext(ctx15(t)); !ok || err != nil {
			t.Fatalf("message %d: acked=%v %v", i, ok, err)
		}
	}

	t.Logf("%d publishes confirmed one by one in %v", n, time.Since(start))
	_, ach := a.dial(t)
	if err := ach.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ach.NotifyPublish(make(chan rmq.Confirmation, n))
	start = time.Now()
	for i := range n {
		if err := ach.PublishWithContext(ctx15(t), "", q.Name, false, false, rmq.Publishing{Body: []byte(fmt.Sprint(n + i))}); err != nil {
			t.Fatal(err)
		}
	}
	seen := make([]bool, n+1)
	for range n {
		select {
		case c := <-confirms:
			if !c.Ack || c.DeliveryTag == 0 || c.DeliveryTag > n || seen[c.DeliveryTag] {
				t.Fatalf("confirmation %+v", c)
			}
			seen[c.DeliveryTag] = true
		case <-time.After(15 * time.Second):
			t.Fatal("confirmations missing")
		}
	}
	t.Logf("%d asynchronous publishes written and confirmed in %v", n, time.Since(start))
	ok, err := ch.QueueDeclarePassive(q.Name, false, false, true, false, nil)
	if err != nil || ok.Messages != 2*n {
		t.Fatalf("queue after confirms: %+v %v, want %d messages", ok, err, 2*n)
	}
}

// Consumer semantics (also run against RabbitMQ): basic.recover hands the
// unacked messages out again at once, redelivered, under new tags; ack
// with multiple frees the window; reject without requeue drops; nack with
// requeue comes back after the first graded delay (RabbitMQ: at once),
// redelivered; after cancel-ok nothing more is delivered to the consumer;
// basic.qos global=1 is one window for the channel's consumers;
// channel.flow pauses and resumes deliveries (RabbitMQ: 540); deleting a
// consumed queue cancels its consumer.
func TestAMQPConsumeSemantics(t *testing.T) {
	c := startCluster(t, append([]string{shortLevels}, amqpLMQ...)...)
	gw := startAMQP(t, c)
	consumeSemantics(t, amqpTarget{addr: gw.addr, vhost: "/", gw: gw})
}

func consumeSemantics(t *testing.T, a amqpTarget) {
	_, ch := a.dial(t)
	for _, q := range []string{"sem", "g1", "g2", "fq"} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	_, pch := a.dial(t)
	keys := []string{"sem", "sem", "sem"}
	confirmed(t, pch, "", keys, func(i int) string { return fmt.Sprintf("m%d", i) })

	if err := ch.Qos(2, 0, false); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume("sem", "c1", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	expect := func(what, body string, redelivered bool) rmq.Delivery {
		t.Helper()
		d := recv(t, what, ds)
		if string(d.Body) != body || d.Redelivered != redelivered {
			t.Fatalf("%s: got %q redelivered=%v, want %q redelivered=%v", what, d.Body, d.Redelivered, body, redelivered)
		}
		return d
	}
	expect("first", "m0", false)
	expect("second", "m1", false)
	//lint:ignore SA1019 basic.recover is what the gateway must still answer (Spring and amqplib send it)
	if err := ch.Recover(true); err != nil {
		t.Fatal(err)
	}
	expect("recovered first", "m0", true)
	d := expect("recovered second", "m1", true)
	if d.DeliveryTag != 4 {
		t.Fatalf("recovered delivery tag %d, want 4 (new tags)", d.DeliveryTag)
	}
	if err := d.Ack(true); err != nil {
		t.Fatal(err)
	}
	d = expect("third", "m2", false)
	if err := d.Reject(false); err != nil {
		t.Fatal(err)
	}
	confirmed(t, pch, "", []string{"sem"}, func(int) string { return "m3" })
	d = expect("fourth", "m3", false)
	if err := d.Nack(false, true); err != nil {
		t.Fatal(err)
	}
	d = expect("fourth after nack requeue", "m3", true)
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}

	if err := ch.Cancel("c1", false); err != nil {
		t.Fatal(err)
	}
	confirmed(t, pch, "", []string{"sem"}, func(int) string { return "m4" })
	for d := range ds { // closed by the client at cancel-ok
		t.Fatalf("delivery after cancel: %q", d.Body)
	}
	_, gch := a.dial(t)
	waitFor(t, 15*time.Second, "m4 in the queue after cancel", func() bool {
		d, ok, err := gch.Get("sem", true)
		if err != nil {
			t.Fatal(err)
		}
		if ok && string(d.Body) != "m4" {
			t.Fatalf("get after cancel: %q", d.Body)
		}
		return ok
	})
	if got := drainGet(t, gch, "sem"); len(got) != 0 {
		t.Fatalf("queue after everything settled: %q (m2 was rejected, m0..m3 acked)", got)
	}

	// One global window of 1 across two consumers of the channel.
	_, wch := a.dial(t)
	if err := wch.Qos(1, 0, true); err != nil {
		t.Fatal(err)
	}
	d1 := mustConsume(t, wch, "g1", false)
	d2 := mustConsume(t, wch, "g2", false)
	confirmed(t, pch, "", []string{"g1", "g2"}, func(i int) string { return fmt.Sprintf("g%d", i+1) })
	var first rmq.Delivery
	other, otherQ := d2, "g2"
	select {
	case first = <-d1:
	case first = <-d2:
		other, otherQ = d1, "g1"
	case <-time.After(15 * time.Second):
		t.Fatal("no delivery under the global window")
	}
	q, err := gch.QueueDeclarePassive(otherQ, true, false, false, false, nil)
	if err != nil || q.Messages != 1 {
		t.Fatalf("%s while the global window is full: %+v %v, want its message still ready", otherQ, q, err)
	}
	if err := first.Ack(false); err != nil {
		t.Fatal(err)
	}
	if d := recv(t, "second consumer after the ack", other); d.RoutingKey != otherQ {
		t.Fatalf("delivery %+v", d)
	}

	// channel.flow active=false pauses deliveries to the channel. RabbitMQ
	// 3.x does not implement it: the connection closes with 540.
	fconn, fch := a.dial(t)
	if err := fch.Flow(false); a.rabbit() {
		wantAMQPError(t, "channel.flow active=false on RabbitMQ", err, 540, "NOT_IMPLEMENTED - active=false")
		if !fconn.IsClosed() {
			t.Fatal("540 left the connection open")
		}
		_, fch = a.dial(t)
		mustConsume(t, fch, "fq", true)
	} else {
		if err != nil {
			t.Fatal(err)
		}
		fds := mustConsume(t, fch, "fq", true)
		confirmed(t, pch, "", []string{"fq"}, func(int) string { return "paused" })
		if q, err := gch.QueueDeclarePassive("fq", true, false, false, false, nil); err != nil || q.Messages != 1 {
			t.Fatalf("fq while its consumer's channel is paused: %+v %v, want the message still ready", q, err)
		}
		if err := fch.Flow(true); err != nil {
			t.Fatal(err)
		}
		if d := recv(t, "after flow resumed", fds); string(d.Body) != "paused" {
			t.Fatalf("delivery %q", d.Body)
		}
	}

	// Deleting a consumed queue cancels its consumers (basic.cancel from
	// the server, consumer_cancel_notify).
	cancels := fch.NotifyCancel(make(chan string, 1))
	if _, err := gch.QueueDelete("fq", false, false, false); err != nil {
		t.Fatal(err)
	}
	select {
	case tag := <-cancels:
		if tag == "" {
			t.Fatal("cancel without a tag")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no basic.cancel after the consumed queue was deleted")
	}
}

// The broker answers concurrent AMQP requests of one connection each
// with its own response: a fetch long-polling while a publish is served.
func TestAMQPConcurrentRequests(t *testing.T) {
	c := startCluster(t, amqpLMQ...)
	addr := c.broker.addr
	amqpOK(t, addr, wire.AMQPDeclareQueue, wire.AMQPQueueDeclare{Vhost: "/", Queue: "cc"}, nil)
	cl := remoting.NewClient(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer cl.Close()
	call := func(code int32, req, out any) {
		body, _ := json.Marshal(req)
		resp, err := cl.Invoke(addr, wire.NewRequest(code, nil, body), 10*time.Second)
		if err != nil || resp.Code != wire.Success {
			t.Errorf("request %d: %v %+v", code, err, resp)
			return
		}
		if err := json.Unmarshal(resp.Body, out); err != nil {
			t.Errorf("answer to %d: %v", code, err)
		}
	}
	fetched := make(chan wire.AMQPFetchResponse, 1)
	go func() {
		var r wire.AMQPFetchResponse
		call(wire.AMQPFetch, wire.AMQPFetchRequest{Vhost: "/", Queue: "cc", Session: "s", Max: 1, WaitMillis: 5000}, &r)
		fetched <- r
	}()
	var pub wire.AMQPPublishResponse
	for len(pub.Results) == 0 || pub.Results[0].Status != wire.AMQPStored {
		call(wire.AMQPPublish, wire.AMQPPublishRequest{Vhost: "/", Messages: []wire.AMQPPublishMessage{{RoutingKey: "cc", Body: []byte("x")}}}, &pub)
		if t.Failed() || len(pub.Results) != 1 {
			t.Fatalf("publish answer %+v", pub)
		}
	}
	if r := <-fetched; len(r.Deliveries) != 1 || string(r.Deliveries[0].Body) != "x" {
		t.Fatalf("fetch answer %+v", r)
	}
}
