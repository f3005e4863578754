package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/mqops/mqops/wire/amqp"
)

// Tutorial 6 (RPC, https://www.rabbitmq.com/tutorials/tutorial-six-go)
// and direct reply-to (https://www.rabbitmq.com/docs/direct-reply-to)
// with amqp091-go against real mqnamesrv + mqbroker + mqamqp.

func fib(n int) int {
	a, b := 0, 1
	for range n {
		a, b = b, a+b
	}
	return a
}

// rpcServer is rpc_server.go: rpc_queue durable (quorum), prefetch 1,
// fib(n) published to the request's reply-to through the default exchange
// with its correlation id, then the request acked. Each request's reply-to
// is sent on seen.
func rpcServer(t *testing.T, gw *proc, seen chan<- string) {
	t.Helper()
	_, ch := dialAMQP(t, gw)
	if _, err := ch.QueueDeclare("rpc_queue", true, false, false, false, rmq.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	ds := mustConsume(t, ch, "rpc_queue", false)
	go func() {
		for d := range ds {
			if seen != nil {
				seen <- d.ReplyTo
			}
			n, _ := strconv.Atoi(string(d.Body))
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			err := ch.PublishWithContext(ctx, "", d.ReplyTo, false, false, rmq.Publishing{ContentType: "text/plain",
				CorrelationId: d.CorrelationId, Body: []byte(strconv.Itoa(fib(n)))})
			cancel()
			if err != nil {
				return // the test is over
			}
			_ = d.Ack(false)
		}
	}()
}

// rpcCall publishes n to rpc_queue with replyTo and waits on ds for the
// reply carrying its correlation id; a reply with another id is an error
// (the client's reply queue is its own).
func rpcCall(ch *rmq.Channel, ds <-chan rmq.Delivery, replyTo, corrID string, n int) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := ch.PublishWithContext(ctx, "", "rpc_queue", false, false, rmq.Publishing{ContentType: "text/plain",
		CorrelationId: corrID, ReplyTo: replyTo, Body: []byte(strconv.Itoa(n))}); err != nil {
		return 0, err
	}
	select {
	case d, ok := <-ds:
		if !ok {
			return 0, fmt.Errorf("request %s: reply channel closed", corrID)
		}
		if d.CorrelationId != corrID {
			return 0, fmt.Errorf("request %s: got the reply of %q (%s)", corrID, d.CorrelationId, d.Body)
		}
		return strconv.Atoi(string(d.Body))
	case <-ctx.Done():
		return 0, fmt.Errorf("request %s: no reply", corrID)
	}
}

// Tutorial 6 as written: each client has an exclusive server-named reply
// queue consumed with auto-ack; fib(30) = 832040 comes back with the
// request's correlation id, and two clients calling at the same time each
// get only their own replies.
func TestAMQPTutorialRPC(t *testing.T) {
	_, gw := amqpStack(t)
	rpcServer(t, gw, nil)

	client := func() (*rmq.Channel, <-chan rmq.Delivery, string) {
		_, ch := dialAMQP(t, gw)
		q, err := ch.QueueDeclare("", false, false, true, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ch, mustConsume(t, ch, q.Name, true), q.Name
	}
	ch, ds, q := client()
	if got, err := rpcCall(ch, ds, q, "c0-fib30", 30); err != nil || got != 832040 {
		t.Fatalf("fib(30) = %d, %v; want 832040", got, err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for c := range 2 {
		ch, ds, q := client()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 8 {
				n := 20 + c*5 + i
				got, err := rpcCall(ch, ds, q, fmt.Sprintf("c%d-%d", c+1, i), n)
				if err == nil && got != fib(n) {
					err = fmt.Errorf("client %d: fib(%d) = %d, want %d", c, n, got, fib(n))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Direct reply-to with the requester on one gateway and the responder on
// another: the requester consumes amq.rabbitmq.reply-to (no declare) and
// publishes with that reply-to, which the server sees rewritten to
// amq.rabbitmq.reply-to.<suffix>; any connection's passive declare of
// that name answers while it lives; the reply arrives. RabbitMQ's two
// refusals: an acking reply consumer, and a publish with that reply-to on
// a channel without one (and a second reply consumer). amqplib's pattern (publish before consume-ok)
// works. The reply queue goes with its consumer's cancel, its channel and
// its connection.
func TestAMQPDirectReplyTo(t *testing.T) {
	c := startCluster(t, amqpLMQ...)
	gwReq, gwResp := startAMQP(t, c), startAMQP(t, c)
	seen := make(chan string, 16)
	rpcServer(t, gwResp, seen)
	replyTo := func() string {
		t.Helper()
		select {
		case r := <-seen:
			return r
		case <-time.After(15 * time.Second):
			t.Fatal("the server got no request")
		}
		return ""
	}
	_, other := dialAMQP(t, gwResp)
	declared := func(q string) error {
		ok, err := other.QueueDeclarePassive(q, false, false, false, false, nil)
		if err == nil && (ok.Name != q || ok.Consumers != 1 || ok.Messages != 0) {
			t.Fatalf("passive declare of %s: %+v", q, ok)
		}
		return err
	}
	// gone waits for q to be deleted (passive declare 404, which closes
	// the checking channel).
	gone := func(q string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			err := declared(q)
			if err == nil {
				if time.Now().After(deadline) {
					t.Fatalf("%s still exists", q)
				}
				time.Sleep(50 * time.Millisecond)
				continue
			}
			wantAMQPError(t, "passive declare of a deleted reply queue", err, 404, "NOT_FOUND - no queue '"+q+"' in vhost '/'")
			_, other = dialAMQP(t, gwResp)
			return
		}
	}

	conn, ch := dialAMQP(t, gwReq)
	if ok, err := ch.QueueDeclarePassive("amq.rabbitmq.reply-to", false, false, false, false, nil); err != nil || ok.Consumers != 1 {
		t.Fatalf("passive declare of amq.rabbitmq.reply-to: %+v %v", ok, err)
	}
	ds := mustConsume(t, ch, "amq.rabbitmq.reply-to", true)
	if got, err := rpcCall(ch, ds, "amq.rabbitmq.reply-to", "drt-fib30", 30); err != nil || got != 832040 {
		t.Fatalf("fib(30) through direct reply-to = %d, %v; want 832040", got, err)
	}
	q := replyTo()
	if !strings.HasPrefix(q, "amq.rabbitmq.reply-to.") || len(q) <= len("amq.rabbitmq.reply-to.") {
		t.Fatalf("the server saw reply-to %q", q)
	}
	if err := declared(q); err != nil {
		t.Fatalf("passive declare of the live reply queue %s from another gateway: %v", q, err)
	}
	for i := range 5 {
		if got, err := rpcCall(ch, ds, "amq.rabbitmq.reply-to", fmt.Sprintf("drt-%d", i), 10+i); err != nil || got != fib(10+i) {
			t.Fatalf("call %d: %d, %v", i, got, err)
		}
		if r := replyTo(); r != q {
			t.Fatalf("call %d: reply-to %q, then %q", i, q, r)
		}
	}

	// An acking reply consumer: 406, the channel closes.
	ach, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	_, err = ach.Consume("amq.rabbitmq.reply-to", "", false, false, false, false, nil)
	wantAMQPError(t, "reply consumer with acks", err, 406, "PRECONDITION_FAILED - reply consumer cannot acknowledge")

	// A second reply consumer on one channel: 406.
	sch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	mustConsume(t, sch, "amq.rabbitmq.reply-to", true)
	_, err = sch.Consume("amq.rabbitmq.reply-to", "", true, false, false, false, nil)
	wantAMQPError(t, "second reply consumer", err, 406, "PRECONDITION_FAILED - reply consumer already set")

	// A request with reply-to amq.rabbitmq.reply-to and no reply consumer
	// on its channel: 406; nothing reaches the server.
	pch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	closed := pch.NotifyClose(make(chan *rmq.Error, 1))
	if err := pch.PublishWithContext(ctx15(t), "", "rpc_queue", false, false, rmq.Publishing{ReplyTo: "amq.rabbitmq.reply-to",
		Body: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-closed:
		if e == nil || e.Code != 406 || e.Reason != "PRECONDITION_FAILED - fast reply consumer does not exist" {
			t.Fatalf("publish without a reply consumer: %v", e)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("publish without a reply consumer did not close the channel")
	}

	// A second channel's reply queue is its own and goes with the channel.
	ch2, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	ds2 := mustConsume(t, ch2, "amq.rabbitmq.reply-to", true)
	if got, err := rpcCall(ch2, ds2, "amq.rabbitmq.reply-to", "drt-ch2", 7); err != nil || got != 13 {
		t.Fatalf("fib(7) on a second channel = %d, %v", got, err)
	}
	q2 := replyTo()
	if q2 == q {
		t.Fatalf("two channels share reply queue %s", q)
	}
	if err := ch2.Close(); err != nil {
		t.Fatal(err)
	}
	gone(q2)
	if err := declared(q); err != nil {
		t.Fatalf("the first channel's reply queue went with the second channel: %v", err)
	}

	// Cancelling the reply consumer deletes its queue too; the channel
	// has no reply consumer any more.
	ch3, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	ds3, err := ch3.Consume("amq.rabbitmq.reply-to", "rt", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rpcCall(ch3, ds3, "amq.rabbitmq.reply-to", "drt-ch3", 8); err != nil || got != 21 {
		t.Fatalf("fib(8) on a third channel = %d, %v", got, err)
	}
	q3 := replyTo()
	if err := ch3.Cancel("rt", false); err != nil {
		t.Fatal(err)
	}
	gone(q3)

	// amqplib's RPC client: consume and publish at once, without waiting
	// for consume-ok.
	r := dialRaw(t, gwReq)
	r.open(amqp.ConnectionTuneOk{ChannelMax: 2047, FrameMax: 131072})
	r.method(1, &amqp.ChannelOpen{})
	r.next()
	consume, _ := amqp.AppendMethodFrame(nil, 1, &amqp.BasicConsume{Queue: "amq.rabbitmq.reply-to", NoAck: true})
	publish, _ := amqp.AppendMethodFrame(nil, 1, &amqp.BasicPublish{RoutingKey: "rpc_queue"})
	header, err := amqp.AppendPropertiesHeaderFrame(nil, 1, 2, &amqp.Properties{ReplyTo: "amq.rabbitmq.reply-to", CorrelationID: "js"})
	if err != nil {
		t.Fatal(err)
	}
	r.write(amqp.AppendBodyFrames(append(append(consume, publish...), header...), 1, []byte("10"), 131072))
	if _, m := r.next(); m.Name() != "basic.consume-ok" {
		t.Fatalf("got %s, want basic.consume-ok", m.Name())
	}
	if _, m := r.next(); m.Name() != "basic.deliver" {
		t.Fatalf("got %s, want basic.deliver", m.Name())
	}
	var props amqp.Properties
	if f, err := r.fr.ReadFrame(); err != nil || f.Type != amqp.FrameHeader {
		t.Fatalf("after basic.deliver: %+v %v", f, err)
	} else {
		var h amqp.ContentHeader
		if err := h.Read(f.Payload); err != nil || h.Properties(&props) != nil {
			t.Fatal(err)
		}
	}
	if f, err := r.fr.ReadFrame(); err != nil || string(f.Payload) != "55" || props.CorrelationID != "js" {
		t.Fatalf("reply %q %+v, %v; want 55 for js", f.Payload, props, err)
	}
	replyTo()

	// The connection's end deletes the first one.
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	gone(q)
	select {
	case r := <-seen:
		t.Fatalf("the server got a request with reply-to %q after the refused publish", r)
	default:
	}
}
