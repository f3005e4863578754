package e2e

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
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
