package amqpengine

import (
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/wire/amqp"
)

// headersOf decodes a delivery's headers.
func headersOf(t *testing.T, d Delivery) amqp.Table {
	t.Helper()
	var p amqp.Properties
	h := amqp.ContentHeader{Flags: uint16(d.Properties[0])<<8 | uint16(d.Properties[1]), Props: d.Properties[2:]}
	must(t, h.Properties(&p))
	return p.Headers
}

// death returns the first x-death entry and the number of entries.
func death(t *testing.T, h amqp.Table) (map[string]any, int) {
	t.Helper()
	ds, ok := h["x-death"].([]any)
	if !ok || len(ds) == 0 {
		t.Fatalf("no x-death in %v", h)
	}
	return ds[0].(map[string]any), len(ds)
}

// dlxRig declares queue q dead-lettering through direct exchange dlx
// into queue dlq (bound with key), with extra arguments for q.
func dlxRig(t *testing.T, extra Args) (*rig, *Vhost) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	must(t, v.DeclareExchange(ExchangeDecl{Name: "dlx", Type: Direct}))
	declareQ(t, v, "dlq")
	must(t, v.Bind(BindingDecl{Source: "dlx", Destination: "dlq", RoutingKey: "q"}, Owner{}))
	args := Args{"x-dead-letter-exchange": "dlx"}
	for k, a := range extra {
		args[k] = a
	}
	_, err := v.DeclareQueue(QueueDecl{Name: "q", Args: args})
	must(t, err)
	return r, v
}

func TestRejectDeadLetters(t *testing.T) {
	r, v := dlxRig(t, nil)
	r.publish(t, "", "q", "a")
	ds := r.fetch(t, "q", "s", 1, 0)
	must2(r.e.Settle("/", []SettleItem{{Handle: ds[0].Handle, Op: wire.AMQPReject}}))
	dl := r.fetch(t, "dlq", "s", 1, 0)
	wantBodies(t, dl, "a")
	if dl[0].Exchange != "dlx" || dl[0].RoutingKey != "q" || dl[0].Redelivered {
		t.Fatalf("dead-lettered delivery %+v", dl[0])
	}
	h := headersOf(t, dl[0])
	d, n := death(t, h)
	if n != 1 || d["queue"] != "q" || d["reason"] != ReasonRejected || d["count"] != int64(1) || d["exchange"] != "" {
		t.Fatalf("x-death %v", h["x-death"])
	}
	if keys, _ := d["routing-keys"].([]any); len(keys) != 1 || keys[0] != "q" {
		t.Fatalf("routing-keys %v", d["routing-keys"])
	}
	if _, ok := d["time"].(time.Time); !ok {
		t.Fatalf("time %T", d["time"])
	}
	if h["x-first-death-queue"] != "q" || h["x-first-death-reason"] != ReasonRejected || h["x-first-death-exchange"] != "" {
		t.Fatalf("x-first-death-* %v", h)
	}
	// The message id survives the re-encoding.
	var p amqp.Properties
	hd := amqp.ContentHeader{Flags: uint16(dl[0].Properties[0])<<8 | uint16(dl[0].Properties[1]), Props: dl[0].Properties[2:]}
	must(t, hd.Properties(&p))
	if p.MessageID != "id-a" || p.DeliveryMode != 2 {
		t.Fatalf("properties %+v", p)
	}

	// Back into q by hand and rejected again: the same entry counts up.
	must(t, v.Bind(BindingDecl{Source: "amq.fanout", Destination: "q"}, Owner{}))
	res, err := r.e.Publish("/", "amq.fanout", []PublishMsg{{RoutingKey: "q", Properties: dl[0].Properties, Body: dl[0].Body}})
	must(t, err)
	if res[0].Status != wire.AMQPStored {
		t.Fatalf("republish %+v", res[0])
	}
	must2(r.e.Settle("/", []SettleItem{{Handle: dl[0].Handle, Op: wire.AMQPAck}}))
	ds = r.fetch(t, "q", "s", 1, 0)
	must2(r.e.Settle("/", []SettleItem{{Handle: ds[0].Handle, Op: wire.AMQPReject}}))
	dl = r.fetch(t, "dlq", "s", 1, 0)
	wantBodies(t, dl, "a")
	h = headersOf(t, dl[0])
	if d, n := death(t, h); n != 1 || d["count"] != int64(2) {
		t.Fatalf("x-death after the second reject %v", h["x-death"])
	}
}

func TestRejectWithoutDLXDrops(t *testing.T) {
	r, _ := dlxRig(t, nil)
	v, _ := r.e.Vhost("/")
	declareQ(t, v, "plain")
	r.publish(t, "", "plain", "a")
	ds := r.fetch(t, "plain", "s", 1, 0)
	must2(r.e.Settle("/", []SettleItem{{Handle: ds[0].Handle, Op: wire.AMQPReject}}))
	if ds := r.fetch(t, "dlq", "s", 1, 0); len(ds) != 0 {
		t.Fatalf("dropped message dead-lettered: %q", bodies(ds))
	}
}

func TestDeadLetterRoutingKey(t *testing.T) {
	r, v := dlxRig(t, nil)
	declareQ(t, v, "dlq2")
	must(t, v.Bind(BindingDecl{Source: "dlx", Destination: "dlq2", RoutingKey: "other"}, Owner{}))
	_, err := v.DeclareQueue(QueueDecl{Name: "q2", Args: Args{"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "other"}})
	must(t, err)
	r.publish(t, "", "q2", "a")
	ds := r.fetch(t, "q2", "s", 1, 0)
	must2(r.e.Settle("/", []SettleItem{{Handle: ds[0].Handle, Op: wire.AMQPReject}}))
	dl := r.fetch(t, "dlq2", "s", 1, 0)
	wantBodies(t, dl, "a")
	if dl[0].RoutingKey != "other" {
		t.Fatalf("routing key %q", dl[0].RoutingKey)
	}
	if ds := r.fetch(t, "dlq", "s", 1, 0); len(ds) != 0 {
		t.Fatal("the original routing key was used")
	}
}

func TestDeliveryLimitDeadLetters(t *testing.T) {
	r, _ := dlxRig(t, Args{"x-delivery-limit": int64(1)})
	r.publish(t, "", "q", "a")
	ds := r.fetch(t, "q", "s", 1, 0)
	must2(r.e.Settle("/", []SettleItem{{Handle: ds[0].Handle, Op: wire.AMQPRequeue}}))
	ds = r.fetch(t, "q", "s", 1, 15*time.Second) // the graded retry (100 ms in the rig)
	wantBodies(t, ds, "a")
	must2(r.e.Settle("/", []SettleItem{{Handle: ds[0].Handle, Op: wire.AMQPRequeue}}))
	dl := r.fetch(t, "dlq", "s", 1, 0)
	wantBodies(t, dl, "a")
	if d, _ := death(t, headersOf(t, dl[0])); d["reason"] != ReasonDeliveryLimit {
		t.Fatalf("x-death %v", d)
	}
	if ds := r.fetch(t, "q", "s", 1, 500*time.Millisecond); len(ds) != 0 {
		t.Fatal("requeued past the limit")
	}
}

func TestTTLSweepDeadLettersWithoutConsumer(t *testing.T) {
	r, _ := dlxRig(t, Args{"x-message-ttl": int64(60000)})
	r.publish(t, "", "q", "a", "b")
	if n := r.e.SweepExpired(time.Now()); n != 0 {
		t.Fatalf("%d swept before the TTL", n)
	}
	if n := r.e.SweepExpired(time.Now().Add(2 * time.Minute)); n != 2 {
		t.Fatalf("%d swept after the TTL, want 2", n)
	}
	dl := r.fetch(t, "dlq", "s", 5, 0)
	wantBodies(t, dl, "a", "b")
	if d, _ := death(t, headersOf(t, dl[0])); d["reason"] != ReasonExpired {
		t.Fatalf("x-death %v", d)
	}
	if ds := r.fetch(t, "q", "s", 5, 0); len(ds) != 0 {
		t.Fatalf("expired messages delivered: %q", bodies(ds))
	}
	if c := r.committed(t, "q"); c != 2 {
		t.Fatalf("expired messages not settled: committed %d", c)
	}
}

func TestPerMessageExpiration(t *testing.T) {
	r, _ := dlxRig(t, nil)
	exp, err := encodeProperties(&amqp.Properties{Expiration: "50", MessageID: "m1"})
	must(t, err)
	_, err = r.e.Publish("/", "", []PublishMsg{{RoutingKey: "q", Properties: exp, Body: []byte("old")}})
	must(t, err)
	r.publish(t, "", "q", "fresh")
	time.Sleep(100 * time.Millisecond)
	// Fetch re-checks the deadline: the expired head is dead-lettered,
	// the next message delivered.
	wantBodies(t, r.fetch(t, "q", "s", 5, 0), "fresh")
	dl := r.fetch(t, "dlq", "s", 5, 0)
	wantBodies(t, dl, "old")
	d, _ := death(t, headersOf(t, dl[0]))
	if d["reason"] != ReasonExpired || d["original-expiration"] != "50" {
		t.Fatalf("x-death %v", d)
	}
	var p amqp.Properties
	h := amqp.ContentHeader{Flags: uint16(dl[0].Properties[0])<<8 | uint16(dl[0].Properties[1]), Props: dl[0].Properties[2:]}
	must(t, h.Properties(&p))
	if p.Expiration != "" {
		t.Fatalf("expiration kept: %q", p.Expiration)
	}
}

func TestMaxLengthDropHead(t *testing.T) {
	r, _ := dlxRig(t, Args{"x-max-length": int64(3)})
	r.publish(t, "", "q", "1", "2", "3", "4", "5")
	wantBodies(t, r.fetch(t, "q", "s", 10, 0), "3", "4", "5")
	dl := r.fetch(t, "dlq", "s", 10, 0)
	wantBodies(t, dl, "1", "2")
	if d, _ := death(t, headersOf(t, dl[0])); d["reason"] != ReasonMaxLen {
		t.Fatalf("x-death %v", d)
	}
}

func TestMaxLengthRejectPublish(t *testing.T) {
	r, v := dlxRig(t, Args{"x-max-length": int64(2), "x-overflow": "reject-publish"})
	res := r.publish(t, "", "q", "1", "2", "3")
	if res[0].Status != wire.AMQPStored || res[1].Status != wire.AMQPStored || res[2].Status != wire.AMQPFailed {
		t.Fatalf("results %+v", res)
	}
	// Fanned out to a queue with room too: stored there, still nacked.
	declareQ(t, v, "roomy")
	must(t, v.DeclareExchange(ExchangeDecl{Name: "fx", Type: Fanout}))
	must(t, v.Bind(BindingDecl{Source: "fx", Destination: "q"}, Owner{}))
	must(t, v.Bind(BindingDecl{Source: "fx", Destination: "roomy"}, Owner{}))
	if res := r.publish(t, "fx", "", "4"); res[0].Status != wire.AMQPFailed {
		t.Fatalf("result %+v", res[0])
	}
	wantBodies(t, r.fetch(t, "roomy", "s", 10, 0), "4")
	wantBodies(t, r.fetch(t, "q", "s", 10, 0), "1", "2")
	if ds := r.fetch(t, "dlq", "s", 10, 0); len(ds) != 0 {
		t.Fatalf("reject-publish dead-lettered %q", bodies(ds))
	}
}

func TestConsumerTimeoutArgument(t *testing.T) {
	r, _ := dlxRig(t, Args{"x-consumer-timeout": int64(60000)})
	r.publish(t, "", "q", "a")
	_, _, timeout, err := r.e.Fetch("/", "q", "s", 1, 0, false, time.Hour)
	must(t, err)
	if timeout != time.Minute {
		t.Fatalf("timeout %v, want the queue's 1 min", timeout)
	}
	if n := r.e.ExpireDeliveries(time.Now()); n != 0 {
		t.Fatalf("%d expired before the queue's consumer timeout", n)
	}
	if n := r.e.ExpireDeliveries(time.Now().Add(2 * time.Minute)); n != 1 {
		t.Fatalf("%d expired past the queue's 1 min consumer timeout", n)
	}
}

func TestQueueExpires(t *testing.T) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	_, err := v.DeclareQueue(QueueDecl{Name: "tmp", Args: Args{"x-expires": int64(60000)}})
	must(t, err)
	r.publish(t, "", "tmp", "a")
	if gone, err := r.e.ExpireQueues(time.Now()); err != nil || len(gone) != 0 {
		t.Fatalf("expired at once: %v %v", gone, err)
	}
	// A delivery in flight keeps it in use.
	ds := r.fetch(t, "tmp", "s", 1, 0)
	if gone, _ := r.e.ExpireQueues(time.Now().Add(time.Hour)); len(gone) != 0 {
		t.Fatalf("expired with a delivery in flight: %v", gone)
	}
	must2(r.e.Settle("/", []SettleItem{{Handle: ds[0].Handle, Op: wire.AMQPAck}}))
	gone, err := r.e.ExpireQueues(time.Now().Add(2 * time.Minute))
	if err != nil || len(gone) != 1 || gone[0].Name != "tmp" {
		t.Fatalf("not expired after 2 min unused: %v %v", gone, err)
	}
	if _, ok := v.Queue("tmp"); ok {
		t.Fatal("queue still there")
	}
}

func TestDeadLetterTargetTrimmed(t *testing.T) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	_, err := v.DeclareQueue(QueueDecl{Name: "small", Args: Args{"x-max-length": int64(1)}})
	must(t, err)
	_, err = v.DeclareQueue(QueueDecl{Name: "q", Args: Args{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "small"}})
	must(t, err)
	r.publish(t, "", "q", "a", "b")
	ds := r.fetch(t, "q", "s", 2, 0)
	must2(r.e.Settle("/", []SettleItem{{Handle: ds[0].Handle, Op: wire.AMQPReject}, {Handle: ds[1].Handle, Op: wire.AMQPReject}}))
	wantBodies(t, r.fetch(t, "small", "s", 5, 0), "b")
}

func TestMaxLengthRejectPublishDLX(t *testing.T) {
	r, _ := dlxRig(t, Args{"x-max-length": int64(1), "x-overflow": "reject-publish-dlx"})
	res := r.publish(t, "", "q", "1", "2")
	if res[0].Status != wire.AMQPStored || res[1].Status != wire.AMQPFailed {
		t.Fatalf("results %+v", res)
	}
	wantBodies(t, r.fetch(t, "q", "s", 10, 0), "1")
	dl := r.fetch(t, "dlq", "s", 10, 0)
	wantBodies(t, dl, "2")
	if d, _ := death(t, headersOf(t, dl[0])); d["reason"] != ReasonMaxLen || d["queue"] != "q" {
		t.Fatalf("x-death %v", d)
	}
}
