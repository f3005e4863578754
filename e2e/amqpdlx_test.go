package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/wire/amqp"
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
// x-overflow reject-publish nacks the confirm; x-max-length-bytes
// (maxLengthBytesCases).
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

	maxLengthBytesCases(t, amqpTarget{addr: gw.addr, vhost: "/", gw: gw})

	// x-expires: gone once unused that long (passive declares do not
	// count as use).
	declare("ephemeral", rmq.Table{"x-expires": int32(300)})
	conn, _ := dialAMQP(t, gw)
	for deadline := time.Now().Add(15 * time.Second); ; {
		pc, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		_, err = pc.QueueDeclarePassive("ephemeral", true, false, false, false, rmq.Table{"x-expires": int32(300)})
		if err != nil {
			wantAMQPError(t, "passive declare of the expired queue", err, 404, "NOT_FOUND - no queue 'ephemeral' in vhost '/'")
			break
		}
		pc.Close()
		if time.Now().After(deadline) {
			t.Fatal("queue with x-expires=300 still there after 15 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// maxLengthBytesCases: x-max-length-bytes counts the ready messages' body
// bytes, with drop-head and reject-publish-dlx (TestRabbitMQTutorials runs
// it against RabbitMQ too).
func maxLengthBytesCases(t *testing.T, a amqpTarget) {
	_, ch := a.dial(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("bdlx", "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	declare := func(name string, args rmq.Table) {
		t.Helper()
		if _, err := ch.QueueDeclare(name, true, false, false, false, args); err != nil {
			t.Fatalf("declare %s: %v", name, err)
		}
	}
	declare("bdlq", nil)
	if err := ch.QueueBind("bdlq", "", "bdlx", false, nil); err != nil {
		t.Fatal(err)
	}

	// x-max-length-bytes counts ready body bytes: drop-head dead-letters
	// the oldest until they fit (15 bytes into 10: two of five go) ...
	declare("bytecapped", rmq.Table{"x-dead-letter-exchange": "bdlx", "x-max-length-bytes": int32(10)})
	confirmed(t, ch, "", []string{"bytecapped", "bytecapped", "bytecapped", "bytecapped", "bytecapped"},
		func(i int) string { return strings.Repeat(string(rune('a'+i)), 3) })
	if q, err := ch.QueueDeclarePassive("bytecapped", true, false, false, false, nil); err != nil || q.Messages != 3 {
		t.Fatalf("bytecapped: %+v %v, want 3 messages", q, err)
	}
	for _, want := range []string{"aaa", "bbb"} {
		d := getWithin(t, ch, "bdlq")
		if string(d.Body) != want {
			t.Fatalf("dropped head: got %q want %q", d.Body, want)
		}
		firstDeath(t, d, "bytecapped", "maxlen", 1)
	}
	if got := drainGet(t, ch, "bytecapped"); !slices.Equal(got, []string{"ccc", "ddd", "eee"}) {
		t.Fatalf("bytecapped holds %q", got)
	}
	// ... and reject-publish-dlx nacks (and dead-letters) a message that
	// would take the bodies past the limit; a smaller one still fits.
	declare("bytefull", rmq.Table{"x-dead-letter-exchange": "bdlx", "x-max-length-bytes": int32(10), "x-overflow": "reject-publish-dlx"})
	var dcs []*rmq.DeferredConfirmation
	for _, b := range []string{"aaaa", "bbbb", "ccc", "dd"} {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx15(t), "", "bytefull", false, false, rmq.Publishing{Body: []byte(b)})
		if err != nil {
			t.Fatal(err)
		}
		dcs = append(dcs, dc)
	}
	for i, dc := range dcs {
		acked, err := dc.WaitContext(ctx15(t))
		if err != nil || acked != (i != 2) {
			t.Fatalf("publish %d to bytefull: acked=%v %v", i, acked, err)
		}
	}
	if q, err := ch.QueueDeclarePassive("bytefull", true, false, false, false, nil); err != nil || q.Messages != 3 {
		t.Fatalf("bytefull: %+v %v, want 3 messages", q, err)
	}
	d := getWithin(t, ch, "bdlq")
	if string(d.Body) != "ccc" {
		t.Fatalf("refused message dead-lettered: got %q", d.Body)
	}
	firstDeath(t, d, "bytefull", "maxlen", 1)
}

// Consume timeout with amqp091-go (consumer_cancel_notify): a delivery
// held past the queue's x-consumer-timeout of 2 s cancels the consumer
// with basic.cancel, the message goes to another consumer redelivered,
// and the late ack is ignored (the channel stays open). A raw client
// without the capability has its channel closed with 406 after the
// gateway's consumeTimeout (2 s here).
func TestAMQPConsumeTimeout(t *testing.T) {
	c := startCluster(t, amqpLMQ...)
	gw := startAMQP(t, c, "consumeTimeout=2000")
	_, ch := dialAMQP(t, gw)
	if _, err := ch.QueueDeclare("slow", true, false, false, false, rmq.Table{"x-consumer-timeout": int32(2000)}); err != nil {
		t.Fatal(err)
	}
	cancels := ch.NotifyCancel(make(chan string, 1))
	ds := mustConsume(t, ch, "slow", false)
	if err := ch.PublishWithContext(ctx15(t), "", "slow", false, false, rmq.Publishing{Body: []byte("held")}); err != nil {
		t.Fatal(err)
	}
	held := recv(t, "first delivery", ds)
	select {
	case <-cancels:
	case <-time.After(15 * time.Second):
		t.Fatal("no basic.cancel after the consumer timeout")
	}
	_, ch2 := dialAMQP(t, gw)
	d := recv(t, "redelivery", mustConsume(t, ch2, "slow", false))
	if string(d.Body) != "held" || !d.Redelivered {
		t.Fatalf("redelivered %q redelivered=%v", d.Body, d.Redelivered)
	}
	if err := held.Ack(false); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclarePassive("slow", true, false, false, false, rmq.Table{"x-consumer-timeout": int32(2000)}); err != nil {
		t.Fatalf("channel closed after the late ack: %v", err)
	}
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}

	// Without consumer_cancel_notify: channel.close 406.
	if _, err := ch.QueueDeclare("slowraw", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.PublishWithContext(ctx15(t), "", "slowraw", false, false, rmq.Publishing{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	r := dialRaw(t, gw)
	r.open(amqp.ConnectionTuneOk{ChannelMax: 2047, FrameMax: 131072})
	r.method(1, &amqp.ChannelOpen{})
	if _, m := r.next(); m.Name() != "channel.open-ok" {
		t.Fatalf("got %s", m.Name())
	}
	r.method(1, &amqp.BasicConsume{Queue: "slowraw"})
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if f.Type != amqp.FrameMethod {
			continue // the delivery's header and body
		}
		m, err := amqp.ReadMethod(f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if cl, ok := m.(*amqp.ChannelClose); ok {
			const want = "PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out. Timeout value used: 2000 ms."
			if cl.ReplyCode != 406 || !strings.HasPrefix(cl.ReplyText, want) {
				t.Fatalf("channel.close %d %q", cl.ReplyCode, cl.ReplyText)
			}
			break
		}
	}
	r.method(1, &amqp.ChannelCloseOk{})
	if d := getWithin(t, ch, "slowraw"); string(d.Body) != "x" || !d.Redelivered {
		t.Fatalf("slowraw after the close: %q redelivered=%v", d.Body, d.Redelivered)
	}
}
