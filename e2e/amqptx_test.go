package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// AMQP transactions (tx.select, tx.commit, tx.rollback) as Spring AMQP's
// channelTransacted uses them, with amqp091-go against real mqnamesrv +
// mqbroker + mqamqp; TestAMQPEmbeddedGateway and TestRabbitMQTutorials
// run the same body against the broker's own gateway and a real RabbitMQ.
func TestAMQPTransactions(t *testing.T) { txSemantics(t, gatewayTarget(t)) }

func txSemantics(t *testing.T, a amqpTarget) {
	conn, _ := a.dial(t)
	const q = "txq"
	// och watches the queue from outside the transactions.
	och, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := och.QueueDeclare(q, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	ready := func(what string, want int) {
		t.Helper()
		qi, err := och.QueueDeclarePassive(q, true, false, false, false, nil)
		if err != nil || qi.Messages != want {
			t.Fatalf("%s: %d messages ready (%v), want %d", what, qi.Messages, err, want)
		}
	}
	txChannel := func() *rmq.Channel {
		t.Helper()
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.Tx(); err != nil {
			t.Fatal(err)
		}
		return ch
	}
	publish := func(ch *rmq.Channel, key string, mandatory bool, body string) {
		t.Helper()
		if err := ch.PublishWithContext(ctx15(t), "", key, mandatory, false, rmq.Publishing{DeliveryMode: rmq.Persistent, Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}

	// Publishes wait for the commit; a rollback drops them; a commit
	// stores them all, and an unroutable mandatory one comes back before
	// commit-ok.
	ch := txChannel()
	returns := ch.NotifyReturn(make(chan rmq.Return, 1))
	for i := range 3 {
		publish(ch, q, false, fmt.Sprintf("m%d", i))
	}
	ready("before the commit", 0)
	if err := ch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	ready("after the commit", 3)
	publish(ch, q, false, "rolled back")
	publish(ch, q, false, "rolled back too")
	if err := ch.TxRollback(); err != nil {
		t.Fatal(err)
	}
	ready("after a rollback", 3)
	publish(ch, "tx-no-such-queue", true, "returned")
	select {
	case r := <-returns:
		t.Fatalf("returned before the commit: %+v", r)
	default:
	}
	if err := ch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-returns:
		if r.ReplyCode != 312 || string(r.Body) != "returned" {
			t.Fatalf("return %d %q", r.ReplyCode, r.Body)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no basic.return for the unroutable mandatory publish of the commit")
	}
	ready("after a commit of an unroutable message", 3)
	// Uncommitted publishes go with the channel.
	publish(ch, q, false, "never committed")
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	ready("after closing a channel with an open transaction", 3)

	get := func(ch *rmq.Channel, n int) {
		t.Helper()
		for i := range n {
			d, ok, err := ch.Get(q, false)
			if err != nil || !ok {
				t.Fatalf("get %d: ok=%v %v", i, ok, err)
			}
			if d.DeliveryTag != uint64(i+1) {
				t.Fatalf("get %d: tag %d", i, d.DeliveryTag)
			}
		}
	}
	// An ack rolled back is unacked again: acking it anew is no error,
	// and closing the channel requeues it with the rest.
	ch = txChannel()
	get(ch, 3)
	if err := ch.Ack(1, false); err != nil {
		t.Fatal(err)
	}
	if err := ch.TxRollback(); err != nil {
		t.Fatal(err)
	}
	if err := ch.Ack(1, false); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	ready("after closing with an uncommitted ack", 3)
	// Committed acks settle.
	ch = txChannel()
	get(ch, 3)
	if err := ch.Ack(3, true); err != nil {
		t.Fatal(err)
	}
	if err := ch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	ready("after committed acks and a close", 0)

	// RabbitMQ's refusals, each closing its channel with 406.
	xch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	wantAMQPError(t, "tx.commit without tx.select", xch.TxCommit(), 406, "PRECONDITION_FAILED - channel is not transactional")
	if xch, err = conn.Channel(); err != nil {
		t.Fatal(err)
	}
	wantAMQPError(t, "tx.rollback without tx.select", xch.TxRollback(), 406, "PRECONDITION_FAILED - channel is not transactional")
	if xch, err = conn.Channel(); err != nil {
		t.Fatal(err)
	}
	if err := xch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	wantAMQPError(t, "tx.select on a confirm channel", xch.Tx(), 406, "PRECONDITION_FAILED - cannot switch from confirm to tx mode")
	xch = txChannel()
	wantAMQPError(t, "confirm.select on a tx channel", xch.Confirm(false), 406, "PRECONDITION_FAILED - cannot switch from tx to confirm mode")
	// The connection is still up.
	ready("at the end", 0)
}

// kill -9 of a SYNC_FLUSH broker while a client commits transactions of 8
// persistent messages through the broker's own gateway: after the restart
// every message of every transaction that got commit-ok is in the queue
// (commit-ok is an acknowledgement as a confirm is).
func TestAMQPTxCommitSurvivesBrokerKill(t *testing.T) {
	port := freePorts(t, 1)[0]
	flags := append([]string{"flushDiskType=SYNC_FLUSH"}, embeddedFlags(port)...)
	c := startCluster(t, flags...)
	a := amqpTarget{addr: embeddedAddr(t, c.broker), vhost: "/", embedded: true}
	conn, ch := a.dial(t)
	if _, err := ch.QueueDeclare("txkill", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Tx(); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	res := make(chan []string, 1)
	go func() {
		var committed, batch []string
		for i := 0; ; i++ {
			select {
			case <-stop:
				res <- committed
				return
			default:
			}
			body := fmt.Sprintf("t%07d", i)
			if err := ch.PublishWithContext(context.Background(), "", "txkill", false, false, rmq.Publishing{DeliveryMode: rmq.Persistent, Body: []byte(body)}); err != nil {
				res <- committed
				return
			}
			if batch = append(batch, body); len(batch) < 8 {
				continue
			}
			if err := ch.TxCommit(); err != nil {
				res <- committed
				return
			}
			committed, batch = append(committed, batch...), batch[:0]
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	c.broker.kill()
	close(stop)
	committed := <-res
	conn.Close()
	if len(committed) == 0 {
		t.Fatal("nothing committed before the kill")
	}
	c.broker = restartBroker(t, c, flags...)
	got := drainWhenUp(t, a.url(), "txkill")
	for _, b := range committed {
		if len(got[b]) == 0 {
			t.Errorf("committed %s lost", b)
		}
	}
	t.Logf("%d committed before the broker's kill -9, %d drained after", len(committed), len(got))
}
