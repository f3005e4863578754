package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// A gateway stopped with SIGTERM/SIGINT drains (drainTimeout): a
// publisher in confirm mode gets its confirms, then connection.close 320
// CONNECTION_FORCED, which amqp091-go reports on NotifyClose (its
// recovery reconnects on it); every message confirmed before the close is
// in the queue, read through another gateway. (Publishes still unread in
// the socket when the drain began get no confirm: never promised.)
func TestAMQPGatewayDrain(t *testing.T) {
	c, gw := amqpStack(t)
	other := startAMQP(t, c)
	conn, ch := dialAMQP(t, gw)
	closed := conn.NotifyClose(make(chan *rmq.Error, 1))
	if _, err := ch.QueueDeclare("drain.q", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	acks := ch.NotifyPublish(make(chan rmq.Confirmation, 100000))
	published := make(chan int, 1)
	go func() {
		n := 0
		for ; ; n++ {
			if err := ch.PublishWithContext(context.Background(), "", "drain.q", false, false,
				rmq.Publishing{Body: []byte("m"), DeliveryMode: rmq.Persistent}); err != nil {
				break
			}
			if n == 200 {
				_ = gw.cmd.Process.Signal(os.Interrupt) // Ctrl-C, mid-stream
			}
		}
		published <- n
	}()
	var e *rmq.Error
	select {
	case e = <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("no connection.close from the draining gateway")
	}
	if e == nil || e.Code != rmq.ConnectionForced || !e.Server {
		t.Fatalf("close: %+v, want 320 from the server", e)
	}
	publishedN := make(chan int, 1)
	publishedN <- <-published
	gw.stop() // waits for the exit, which must be clean
	confirmed := 0
	for a := range acks { // closed with the channel
		if !a.Ack {
			t.Fatalf("nack %d", a.DeliveryTag)
		}
		confirmed++
	}
	// What the gateway read before the drain is confirmed; frames still
	// in the socket were never read, so never promised.
	if confirmed == 0 {
		t.Fatal("no confirms before the close")
	}
	t.Logf("%d published, %d confirmed before the 320", <-publishedN, confirmed)
	if !strings.Contains(gw.out.String(), "The AMQP gateway shut down cleanly.") {
		t.Fatalf("no clean shutdown:\n%s", gw.out.String())
	}
	_, och := dialAMQP(t, other)
	q, err := och.QueueDeclarePassive("drain.q", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages < confirmed {
		t.Fatalf("%d messages in the queue, %d were confirmed", q.Messages, confirmed)
	}
}
