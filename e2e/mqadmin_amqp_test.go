package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/wire"
)

// amqpQueueRow lists vhost "/" through mqadmin and returns queue q.
func amqpQueueRow(t *testing.T, ns, q string) wire.AMQPQueueInfo {
	t.Helper()
	var qs []wire.AMQPQueueInfo
	cliJSON(t, ns, &qs, "amqp", "queue", "list", "--vhost", "/")
	for _, x := range qs {
		if x.Name == q {
			return x
		}
	}
	t.Fatalf("queue %s not listed: %+v", q, qs)
	return wire.AMQPQueueInfo{}
}

func keysN(k string, n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = k
	}
	return ks
}

// TestMqadminAMQP manages the AMQP gateway's metadata with mqadmin while
// an amqp091-go application uses it: declare and list exchanges, queues
// and bindings, see ready/unacked/consumers/counters move, pause a queue
// (deliveries stop, consumers stay), resume it, rate-limit it, purge and
// delete, and add and delete a vhost.
func TestMqadminAMQP(t *testing.T) {
	c, gw := amqpStack(t)
	ns := c.ns.addr
	const x, q = "ops.x", "ops.q"

	cli(t, ns, "amqp", "exchange", "declare", x, "--type", "topic")
	cli(t, ns, "amqp", "queue", "declare", q, "--arg", "x-queue-type=classic")
	cli(t, ns, "amqp", "binding", "add", "--source", x, "--destination", q, "--routing-key", "a.*")
	// A redeclare that is not equivalent is the engine's 406, exit 1.
	if msg := cliFail(t, ns, "amqp", "exchange", "declare", x, "--type", "direct"); !strings.Contains(msg, "PRECONDITION_FAILED") {
		t.Fatalf("inequivalent redeclare: %s", msg)
	}
	if msg := cliFail(t, ns, "amqp", "queue", "pause", "no.such.queue"); !strings.Contains(msg, "NOT_FOUND") {
		t.Fatalf("pause of a missing queue: %s", msg)
	}

	var xs []wire.AMQPExchangeInfo
	cliJSON(t, ns, &xs, "amqp", "exchange", "list")
	found := false
	for _, e := range xs {
		found = found || e.Name == x && e.Type == "topic" && e.Durable
	}
	if !found {
		t.Fatalf("exchange %s not listed: %+v", x, xs)
	}
	var bs []wire.AMQPBindingInfo
	cliJSON(t, ns, &bs, "amqp", "binding", "list")
	if len(bs) != 1 || bs[0].Source != x || bs[0].Destination != q || bs[0].RoutingKey != "a.*" {
		t.Fatalf("bindings %+v", bs)
	}
	table := tableOf(t, cli(t, ns, "amqp", "queue", "list"))
	table.wantHeader(t, "Name", "LMQ", "Group", "Ready", "Unacked", "Consumers", "Paused", "Rate Limit", "Published", "Delivered", "Acked")

	_, pub := dialAMQP(t, gw)
	confirmed(t, pub, x, keysN("a.b", 5), func(i int) string { return "m" + strconv.Itoa(i) })
	r := amqpQueueRow(t, ns, q)
	if r.Ready != 5 || r.Unacked != 0 || r.Consumers != 0 || r.Published != 5 || r.LMQ == "" || r.Group == "" || r.Paused {
		t.Fatalf("after 5 publishes: %+v", r)
	}

	_, ch := dialAMQP(t, gw)
	if err := ch.Qos(2, 0, false); err != nil {
		t.Fatal(err)
	}
	ds := mustConsume(t, ch, q, false)
	d1, d2 := recv(t, "first", ds), recv(t, "second", ds)
	waitFor(t, 15*time.Second, "2 unacked, 1 consumer", func() bool {
		r = amqpQueueRow(t, ns, q)
		return r.Unacked == 2 && r.Ready == 3 && r.Consumers == 1 && r.Delivered == 2
	})
	for _, d := range []interface{ Ack(bool) error }{d1, d2} {
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		if err := recv(t, "rest", ds).Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 15*time.Second, "all acked", func() bool {
		r = amqpQueueRow(t, ns, q)
		return r.Acked == 5 && r.Ready == 0 && r.Unacked == 0
	})

	// Pause: after the fetches already out end (the gateway long-polls
	// 2 s; 4 s leaves room for a loaded machine), nothing is delivered;
	// the consumer stays subscribed.
	var sw struct {
		Group  string `json:"group"`
		Paused bool   `json:"paused"`
	}
	cliJSON(t, ns, &sw, "amqp", "queue", "pause", q)
	if !sw.Paused || sw.Group != r.Group {
		t.Fatalf("pause answered %+v (group %s)", sw, r.Group)
	}
	time.Sleep(4 * time.Second)
	confirmed(t, pub, x, keysN("a.c", 3), func(i int) string { return "p" + strconv.Itoa(i) })
	select {
	case d := <-ds:
		t.Fatalf("paused queue delivered %q", d.Body)
	case <-time.After(3 * time.Second):
	}
	r = amqpQueueRow(t, ns, q)
	if !r.Paused || r.Ready != 3 || r.Consumers != 1 {
		t.Fatalf("paused queue: %+v", r)
	}
	cli(t, ns, "amqp", "queue", "resume", q)
	for i := 0; i < 3; i++ {
		if err := recv(t, "after resume", ds).Ack(false); err != nil {
			t.Fatal(err)
		}
	}

	// Rate limit 2/s: the bucket holds a second's worth, so 10 messages
	// take at least 4 s (a lower bound: a slow machine only adds).
	cli(t, ns, "amqp", "queue", "rate-limit", q, "--rate", "2")
	if r = amqpQueueRow(t, ns, q); r.RateLimit != 2 || r.Paused {
		t.Fatalf("rate-limited queue: %+v", r)
	}
	confirmed(t, pub, x, keysN("a.d", 10), func(i int) string { return "r" + strconv.Itoa(i) })
	start := time.Now()
	for i := 0; i < 10; i++ {
		if err := recv(t, "rate limited", ds).Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 3*time.Second {
		t.Fatalf("10 messages at 2/s arrived in %v", el)
	}
	cli(t, ns, "amqp", "queue", "rate-limit", q, "--rate", "0")

	// Purge and delete.
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	confirmed(t, pub, x, keysN("a.e", 4), func(i int) string { return "d" + strconv.Itoa(i) })
	var purged wire.AMQPPurgeResponse
	cliJSON(t, ns, &purged, "amqp", "queue", "purge", q)
	if purged.MessageCount != 4 {
		t.Fatalf("purge answered %+v", purged)
	}
	cli(t, ns, "amqp", "binding", "delete", "--source", x, "--destination", q, "--routing-key", "a.*")
	cli(t, ns, "amqp", "queue", "delete", q)
	cli(t, ns, "amqp", "exchange", "delete", x)
	var qs []wire.AMQPQueueInfo
	cliJSON(t, ns, &qs, "amqp", "queue", "list")
	cliJSON(t, ns, &bs, "amqp", "binding", "list")
	if len(qs) != 0 || len(bs) != 0 {
		t.Fatalf("after deletes: queues %+v bindings %+v", qs, bs)
	}

	// Vhosts.
	const vh = "ops-vh"
	cli(t, ns, "amqp", "vhost", "add", vh)
	var vs []admin.AMQPVhost
	cliJSON(t, ns, &vs, "amqp", "vhost", "list")
	if len(vs) != 2 || vs[0].Vhost != "/" || vs[1].Vhost != vh || vs[1].Broker.Addr != c.broker.addr {
		t.Fatalf("vhosts %+v", vs)
	}
	cli(t, ns, "amqp", "queue", "declare", "inner", "--vhost", vh)
	// A new vhost admits no one until a user is given permissions in it
	// (RabbitMQ's add_vhost does the same); then an application enters it
	// through the gateway.
	_, err := rmq.Dial(amqpURL(gw, "guest:guest", vh))
	wantAMQPError(t, "vhost without permissions", err, 530, "NOT_ALLOWED - access to vhost 'ops-vh' refused for user 'guest'")
	cli(t, ns, "amqp", "user", "set-permissions", "guest", "--vhost", vh, "--configure", ".*", "--write", ".*", "--read", ".*")
	vconn, err := rmq.Dial(amqpURL(gw, "guest:guest", vh))
	if err != nil {
		t.Fatalf("open vhost %s: %v", vh, err)
	}
	vch, err := vconn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	confirmed(t, vch, "", keysN("inner", 2), func(i int) string { return "v" + strconv.Itoa(i) })
	vconn.Close()
	cliJSON(t, ns, &qs, "amqp", "queue", "list", "--vhost", vh)
	if len(qs) != 1 || qs[0].Name != "inner" || !strings.Contains(qs[0].LMQ, vh) || qs[0].Ready != 2 {
		t.Fatalf("queues of %s: %+v", vh, qs)
	}
	cli(t, ns, "amqp", "vhost", "delete", vh)
	cliJSON(t, ns, &vs, "amqp", "vhost", "list")
	if len(vs) != 1 {
		t.Fatalf("vhosts after delete %+v", vs)
	}
	// Its permissions went with it (RabbitMQ's delete_vhost does the same).
	var us []wire.AMQPUserAccess
	cliJSON(t, ns, &us, "amqp", "user", "list")
	for _, u := range us {
		if _, ok := u.Permissions[vh]; ok {
			t.Fatalf("user %s keeps permissions in deleted vhost %s: %+v", u.User, vh, u.Permissions)
		}
	}
	if msg := cliFail(t, ns, "amqp", "vhost", "delete", "/"); !strings.Contains(msg, "ACCESS_REFUSED") {
		t.Fatalf("delete of /: %s", msg)
	}
}
