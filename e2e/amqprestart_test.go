package e2e

import (
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// A broker keeps the consumers the gateways register in memory, so a
// restart forgets them while mqamqp's consumers go on. mqamqp registers
// them again when the broker's lease answer shows a new epoch: after a
// kill -9 and a restart the queue's consumer count is back, an exclusive
// consumer still locks its queue against another, and the consumer gets
// what is published next.
func TestAMQPConsumersRegisteredAgainAfterBrokerRestart(t *testing.T) {
	c := startCluster(t, amqpLMQ...)
	gw := startAMQP(t, c)
	a := amqpTarget{addr: gw.addr, vhost: "/", gw: gw}
	_, ch := a.dial(t)
	for _, q := range []string{"held", "solo"} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := ch.Consume("held", "c-held", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Consume("solo", "c-solo", true, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	oconn, _ := a.dial(t)
	// consumers asks on a channel of its own: during the restart a
	// declare fails and closes its channel.
	consumers := func(q string) int {
		och, err := oconn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer och.Close()
		qi, err := och.QueueDeclarePassive(q, true, false, false, false, nil)
		if err != nil {
			return -1
		}
		return qi.Consumers
	}
	if n := consumers("held"); n != 1 {
		t.Fatalf("held has %d consumers before the restart, want 1", n)
	}
	c.broker.kill()
	c.broker = restartBroker(t, c, amqpLMQ...)
	waitFor(t, 60*time.Second, "the consumers registered again with the restarted broker", func() bool {
		return consumers("held") == 1 && consumers("solo") == 1
	})
	xch, err := oconn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	_, err = xch.Consume("solo", "intruder", true, false, false, false, nil)
	wantAMQPError(t, "a second consumer of the exclusively consumed queue", err, 403, "")
	pch, err := oconn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := pch.PublishWithContext(ctx15(t), "", "held", false, false, rmq.Publishing{Body: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	if d := recv(t, "the consumer after the restart", ds); string(d.Body) != "after" {
		t.Fatalf("got %q", d.Body)
	}
}
