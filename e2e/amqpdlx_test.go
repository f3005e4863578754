package e2e

import (
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// getWithin polls basic.get on q until a message comes (generous wait:
// expiry runs on a 1 s sweep).
func getWithin(t *testing.T, ch *rmq.Channel, q string) rmq.Delivery {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		d, ok, err := ch.Get(q, true)
		if err != nil {
			t.Fatalf("get %s: %v", q, err)
		}
		if ok {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing in %s", q)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// firstDeath checks a dead-lettered message's x-death head entry and
// x-first-death-* headers.
func firstDeath(t *testing.T, d rmq.Delivery, queue, reason string, count int64) rmq.Table {
	t.Helper()
	ds, ok := d.Headers["x-death"].([]any)
	if !ok || len(ds) == 0 {
		t.Fatalf("%s: no x-death in %v", queue, d.Headers)
	}
	e, _ := ds[0].(rmq.Table)
	if e["queue"] != queue || e["reason"] != reason || e["count"] != count {
		t.Fatalf("%s: x-death %v", queue, ds)
	}
	if _, ok := e["time"].(time.Time); !ok {
		t.Fatalf("%s: x-death time %T", queue, e["time"])
	}
	if d.Headers["x-first-death-queue"] != queue || d.Headers["x-first-death-reason"] != reason {
		t.Fatalf("%s: x-first-death-* %v", queue, d.Headers)
	}
	return e
}

// Dead-lettering through a fanout exchange into one queue, by amqp091-go:
// reject(requeue=false), x-message-ttl with no consumer, a per-message
// expiration, x-max-length drop-head, nack past x-delivery-limit; and
// x-overflow reject-publish nacks the confirm.
func TestAMQPDeadLettering(t *testing.T) {
	_, gw := amqpStack(t)
	_, ch := dialAMQP(t, gw)
	if err := ch.ExchangeDeclare("dlx", "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	declare := func(name string, args rmq.Table) {
		t.Helper()
		if _, err := ch.QueueDeclare(name, true, false, false, false, args); err != nil {
			t.Fatalf("declare %s: %v", name, err)
		}
	}
	declare("dlq", nil)
	if err := ch.QueueBind("dlq", "", "dlx", false, nil); err != nil {
		t.Fatal(err)
	}
	publish := func(q, body string, p rmq.Publishing) {
		t.Helper()
		p.Body = []byte(body)
		if err := ch.PublishWithContext(ctx15(t), "", q, false, false, p); err != nil {
			t.Fatal(err)
		}
	}

	// reject requeue=false
	declare("work", rmq.Table{"x-dead-letter-exchange": "dlx"})
	publish("work", "rejected", rmq.Publishing{MessageId: "m1", DeliveryMode: rmq.Persistent})
	d, ok, err := ch.Get("work", false)
	if err != nil || !ok {
		t.Fatalf("get work: %v %v", ok, err)
	}
	if err := d.Reject(false); err != nil {
		t.Fatal(err)
	}
	d = getWithin(t, ch, "dlq")
	if string(d.Body) != "rejected" || d.MessageId != "m1" || d.Exchange != "dlx" || d.RoutingKey != "work" {
		t.Fatalf("dead-lettered %q id %q via %q/%q", d.Body, d.MessageId, d.Exchange, d.RoutingKey)
	}
	e := firstDeath(t, d, "work", "rejected", 1)
	if keys, _ := e["routing-keys"].([]any); len(keys) != 1 || keys[0] != "work" || e["exchange"] != "" {
		t.Fatalf("x-death %v", e)
	}

	// x-message-ttl, nobody consuming
	declare("ttl", rmq.Table{"x-dead-letter-exchange": "dlx", "x-message-ttl": int32(200)})
	publish("ttl", "aged", rmq.Publishing{})
	d = getWithin(t, ch, "dlq")
	if string(d.Body) != "aged" {
		t.Fatalf("got %q", d.Body)
	}
	firstDeath(t, d, "ttl", "expired", 1)

	// per-message expiration
	declare("perexp", rmq.Table{"x-dead-letter-exchange": "dlx"})
	publish("perexp", "short", rmq.Publishing{Expiration: "100"})
	d = getWithin(t, ch, "dlq")
	if string(d.Body) != "short" || d.Expiration != "" {
		t.Fatalf("got %q expiration %q", d.Body, d.Expiration)
	}
	if e := firstDeath(t, d, "perexp", "expired", 1); e["original-expiration"] != "100" {
		t.Fatalf("x-death %v", e)
	}

	// x-max-length drop-head
	declare("capped", rmq.Table{"x-dead-letter-exchange": "dlx", "x-max-length": int32(10)})
	keys := make([]string, 15)
	for i := range keys {
		keys[i] = "capped"
	}
	confirmed(t, ch, "", keys, func(i int) string { return string(rune('a' + i)) })
	if got := drainGet(t, ch, "capped"); len(got) != 10 || got[0] != "f" || got[9] != "o" {
		t.Fatalf("capped holds %q", got)
	}
	for i := range 5 {
		d = getWithin(t, ch, "dlq")
		if want := string(rune('a' + i)); string(d.Body) != want {
			t.Fatalf("dropped head %d: got %q want %q", i, d.Body, want)
		}
		firstDeath(t, d, "capped", "maxlen", 1)
	}

	// nack requeue=true past x-delivery-limit
	declare("limited", rmq.Table{"x-dead-letter-exchange": "dlx", "x-queue-type": "quorum", "x-delivery-limit": int32(0)})
	publish("limited", "poison", rmq.Publishing{})
	d, ok, err = ch.Get("limited", false)
	if err != nil || !ok {
		t.Fatalf("get limited: %v %v", ok, err)
	}
	if err := d.Nack(false, true); err != nil {
		t.Fatal(err)
	}
	d = getWithin(t, ch, "dlq")
	if string(d.Body) != "poison" {
		t.Fatalf("got %q", d.Body)
	}
	firstDeath(t, d, "limited", "delivery_limit", 1)

	// x-overflow reject-publish: confirms of the overflow are nacks
	declare("full", rmq.Table{"x-max-length": int32(10), "x-overflow": "reject-publish"})
	var dcs []*rmq.DeferredConfirmation
	for range 12 {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx15(t), "", "full", false, false, rmq.Publishing{Body: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		dcs = append(dcs, dc)
	}
	for i, dc := range dcs {
		acked, err := dc.WaitContext(ctx15(t))
		if err != nil || acked != (i < 10) {
			t.Fatalf("publish %d to the full queue: acked=%v %v", i, acked, err)
		}
	}
	if got := drainGet(t, ch, "full"); len(got) != 10 {
		t.Fatalf("full holds %d", len(got))
	}
	if got := drainGet(t, ch, "dlq"); len(got) != 0 {
		t.Fatalf("dlq holds more: %q", got)
	}
}
