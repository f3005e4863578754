package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// shovelMsg is message i of a shovel test: every basic property set, so
// that a property the shovel drops or alters shows.
func shovelMsg(i int) rmq.Publishing {
	return rmq.Publishing{
		Headers:         rmq.Table{"seq": int32(i), "tenant": "acme"},
		ContentType:     "application/json",
		ContentEncoding: "identity",
		DeliveryMode:    rmq.Persistent,
		Priority:        3,
		CorrelationId:   fmt.Sprintf("corr-%d", i),
		ReplyTo:         "replies",
		MessageId:       fmt.Sprintf("msg-%d", i),
		Timestamp:       time.Unix(1_700_000_000+int64(i), 0),
		Type:            "order.created",
		UserId:          "guest",
		AppId:           "shop",
		Body:            []byte(fmt.Sprintf(`{"order":%d}`, i)),
	}
}

// publishShovelMsgs publishes messages from..to-1 to queue q at url with
// confirms.
func publishShovelMsgs(t *testing.T, url, q string, from, to int) {
	t.Helper()
	_, ch := dialURL(t, url)
	keys := make([]string, to-from)
	for i := range keys {
		keys[i] = q
	}
	confirmedMsgs(t, ch, "", keys, func(i int) rmq.Publishing { return shovelMsg(from + i) })
}

// dialOwn opens a connection and a channel the caller closes (with the
// connection): consumers must not outlive their check, and polls must not
// pile up connections until the test ends.
func dialOwn(t *testing.T, url string) (*rmq.Connection, *rmq.Channel) {
	t.Helper()
	conn, err := rmq.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	return conn, ch
}

// queueDepth is q's ready message count at url (a passive declare).
func queueDepth(t *testing.T, url, q string) int {
	t.Helper()
	conn, ch := dialOwn(t, url)
	defer conn.Close()
	d, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("passive declare %s: %v", q, err)
	}
	return d.Messages
}

// consumeShovelMsgs takes every message of q at url (acknowledging them)
// until n arrived and the queue then stays empty for a moment; it returns
// their seq headers in arrival order and checks each message's body and
// properties against shovelMsg.
func consumeShovelMsgs(t *testing.T, url, q string, n int) []int {
	t.Helper()
	conn, ch := dialOwn(t, url)
	defer conn.Close()
	if err := ch.Qos(500, 0, false); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int
	timeout := 30 * time.Second
	for {
		select {
		case d := <-ds:
			seq, ok := d.Headers["seq"].(int32)
			if !ok {
				t.Fatalf("message %q: seq header %T %v", d.Body, d.Headers["seq"], d.Headers["seq"])
			}
			w := shovelMsg(int(seq))
			got := rmq.Publishing{Headers: d.Headers, ContentType: d.ContentType, ContentEncoding: d.ContentEncoding,
				DeliveryMode: d.DeliveryMode, Priority: d.Priority, CorrelationId: d.CorrelationId, ReplyTo: d.ReplyTo,
				MessageId: d.MessageId, Timestamp: d.Timestamp, Type: d.Type, UserId: d.UserId, AppId: d.AppId, Body: d.Body}
			if fmt.Sprint(got) != fmt.Sprint(w) || !got.Timestamp.Equal(w.Timestamp) {
				t.Fatalf("message %d arrived as\n%+v\nwant\n%+v", seq, got, w)
			}
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, int(seq))
			if len(seqs) >= n {
				timeout = 500 * time.Millisecond
			}
		case <-time.After(timeout):
			if len(seqs) < n {
				t.Fatalf("%s: %d of %d messages arrived", q, len(seqs), n)
			}
			return seqs
		}
	}
}

// shovelResult is what mqadmin amqp shovel -o json prints per queue.
type shovelResult struct {
	Source        string `json:"source"`
	Destination   string `json:"destination"`
	Moved         int64  `json:"moved"`
	Wanted        int64  `json:"wanted"`
	UserIDDropped int64  `json:"userIdDropped"`
}

func shovelArgs(src, dst string, extra ...string) []string {
	return append([]string{"amqp", "shovel", "--src-uri", src, "--dest-uri", dst, "-o", "json"}, extra...)
}

// A queue's backlog moves between two mqops clusters, after the first
// one's definitions were imported into the second: in order, with body and
// properties intact, and the source is empty afterwards. A missing
// destination queue fails before anything moves; so does a destination
// that cannot route (mandatory publishes), which leaves the source whole.
func TestAMQPShovel(t *testing.T) {
	t.Parallel()
	c1, gw1 := amqpStack(t)
	c2, gw2 := amqpStack(t)
	src, dst := amqpURL(gw1, "guest:guest", ""), amqpURL(gw2, "guest:guest", "")
	_, ch := dialURL(t, src)
	if _, err := ch.QueueDeclare("orders", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	defs := filepath.Join(t.TempDir(), "defs.json")
	cli(t, c1.ns.addr, "amqp", "definitions", "export", "-f", defs)
	cli(t, c2.ns.addr, "amqp", "definitions", "import", defs)
	const n = 3000
	publishShovelMsgs(t, src, "orders", 0, n)

	r := runCLI(t, nil, shovelArgs(src, dst, "--src-queue", "orders", "--dest-queue", "missing")...)
	if r.code != 1 || !strings.Contains(r.stderr, `destination queue "missing"`) || !strings.Contains(r.stderr, "404") {
		t.Fatalf("missing destination queue: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// An exchange with no binding: the first message comes back.
	_, ch2 := dialURL(t, dst)
	if err := ch2.ExchangeDeclare("nowhere", "direct", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, nil, shovelArgs(src, dst, "--src-queue", "orders", "--dest-exchange", "nowhere")...)
	if r.code != 1 || !strings.Contains(r.stderr, "unroutable") {
		t.Fatalf("unroutable destination: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	waitFor(t, 15*time.Second, "the source to hold every message again", func() bool { return queueDepth(t, src, "orders") == n })

	var res []shovelResult
	out := runCLI(t, nil, shovelArgs(src, dst, "--src-queue", "orders", "--window", "100")...)
	if out.code != 0 {
		t.Fatalf("shovel: exit %d\n%s%s", out.code, out.stdout, out.stderr)
	}
	if err := json.Unmarshal([]byte(out.stdout), &res); err != nil {
		t.Fatalf("shovel output %q: %v", out.stdout, err)
	}
	if len(res) != 1 || res[0].Moved != n || res[0].Wanted != n || res[0].Destination != "queue orders" || res[0].UserIDDropped != 0 {
		t.Fatalf("shovel result %+v", res)
	}
	if d := queueDepth(t, src, "orders"); d != 0 {
		t.Fatalf("source still holds %d messages", d)
	}
	seqs := consumeShovelMsgs(t, dst, "orders", n)
	for i, s := range seqs {
		if s != i {
			t.Fatalf("message %d arrived %d-th: order not kept", s, i)
		}
	}
}

// kill -9 of the shovel mid-way loses nothing: what it took but had not
// acknowledged returns to the source, so source and destination together
// hold every message; a second run moves the rest. --follow moves what
// arrives on two queues while it runs and, stopped with SIGINT, exits 0
// with what it moved.
func TestAMQPShovelKillAndFollow(t *testing.T) {
	t.Parallel()
	_, gw1 := amqpStack(t)
	_, gw2 := amqpStack(t)
	src, dst := amqpURL(gw1, "guest:guest", ""), amqpURL(gw2, "guest:guest", "")
	for _, u := range []string{src, dst} {
		_, ch := dialURL(t, u)
		for _, q := range []string{"backlog", "other"} {
			if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	const n = 20000
	publishShovelMsgs(t, src, "backlog", 0, n)

	cmd := exec.Command(filepath.Join(binDir, "mqadmin"), shovelArgs(src, dst, "--src-queue", "backlog", "--window", "64")...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the shovel to move 2000 messages", func() bool { return queueDepth(t, dst, "backlog") >= 2000 })
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	moved := queueDepth(t, dst, "backlog")
	if moved >= n {
		t.Fatalf("the shovel finished before it was killed (%d moved)", moved)
	}
	// The killed connection's unacknowledged deliveries go back to the
	// source's ready count once the gateway sees it close.
	waitFor(t, 30*time.Second, "source + destination to hold every message", func() bool {
		return queueDepth(t, src, "backlog")+queueDepth(t, dst, "backlog") >= n
	})
	if out := runCLI(t, nil, shovelArgs(src, dst, "--src-queue", "backlog")...); out.code != 0 {
		t.Fatalf("second shovel: exit %d\n%s%s", out.code, out.stdout, out.stderr)
	}
	seen := map[int]int{}
	for _, s := range consumeShovelMsgs(t, dst, "backlog", n) {
		seen[s]++
	}
	dups := 0
	for i := 0; i < n; i++ {
		switch c := seen[i]; {
		case c == 0:
			t.Fatalf("message %d lost", i)
		case c > 1:
			dups += c - 1
		}
	}
	// At most the window of messages confirmed but not acknowledged.
	if dups > 64 {
		t.Fatalf("%d messages moved twice, more than the window of 64", dups)
	}
	t.Logf("killed after ~%d moved; %d moved twice", moved, dups)

	// --follow: messages published while it runs move too, on every
	// queue at once.
	fcmd := exec.Command(filepath.Join(binDir, "mqadmin"), shovelArgs(src, dst, "--src-queue", "backlog", "--src-queue", "other", "--follow")...)
	fcmd.Env = cmd.Env
	var fout strings.Builder
	fcmd.Stdout = &fout
	if err := fcmd.Start(); err != nil {
		t.Fatal(err)
	}
	publishShovelMsgs(t, src, "backlog", n, n+500)
	publishShovelMsgs(t, src, "other", 0, 200)
	waitFor(t, 30*time.Second, "--follow to move 500 and 200 messages", func() bool {
		return queueDepth(t, dst, "backlog") == 500 && queueDepth(t, dst, "other") == 200
	})
	_ = fcmd.Process.Signal(syscall.SIGINT)
	if err := fcmd.Wait(); err != nil {
		t.Fatalf("--follow after SIGINT: %v\n%s", err, fout.String())
	}
	var res []shovelResult
	if err := json.Unmarshal([]byte(fout.String()), &res); err != nil || len(res) != 2 ||
		res[0].Source != "backlog" || res[0].Moved != 500 || res[0].Wanted != -1 || res[1].Source != "other" || res[1].Moved != 200 {
		t.Fatalf("--follow result %q: %v", fout.String(), err)
	}
}

// The messages half of a move from RabbitMQ (TestRabbitMQDefinitions is
// the definitions half): a real RabbitMQ queue's backlog, published there
// with every property, moves into mqops intact and in order; back the
// other way through an exchange with each message's own routing key.
func TestRabbitMQShovel(t *testing.T) {
	r := startRabbitMQ(t)
	rabbit := r.URL("")
	_, rch := dialURL(t, rabbit)
	if _, err := rch.QueueDeclare("migrate", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	publishShovelMsgs(t, rabbit, "migrate", 0, n)
	defs := filepath.Join(t.TempDir(), "rabbit.json")
	r.ctl(t, "export_definitions", defs)

	c, gw := amqpStack(t)
	mq := amqpURL(gw, "guest:guest", "")
	cli(t, c.ns.addr, "amqp", "definitions", "import", defs)
	if out := runCLI(t, nil, shovelArgs(rabbit, mq, "--src-queue", "migrate")...); out.code != 0 {
		t.Fatalf("shovel from RabbitMQ: exit %d\n%s%s", out.code, out.stdout, out.stderr)
	}
	if d := queueDepth(t, rabbit, "migrate"); d != 0 {
		t.Fatalf("RabbitMQ still holds %d messages", d)
	}
	seqs := consumeShovelMsgs(t, mq, "migrate", n)
	for i, s := range seqs {
		if s != i {
			t.Fatalf("message %d arrived %d-th: order not kept", s, i)
		}
	}

	// Back: into RabbitMQ's amq.topic, bound to a new queue by key.
	if _, err := rch.QueueDeclare("back", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := rch.QueueBind("back", "migrate", "amq.topic", false, nil); err != nil {
		t.Fatal(err)
	}
	publishShovelMsgs(t, mq, "migrate", 0, 100)
	if out := runCLI(t, nil, shovelArgs(mq, rabbit, "--src-queue", "migrate", "--dest-exchange", "amq.topic")...); out.code != 0 {
		t.Fatalf("shovel to RabbitMQ: exit %d\n%s%s", out.code, out.stdout, out.stderr)
	}
	if got := consumeShovelMsgs(t, rabbit, "back", 100); len(got) != 100 {
		t.Fatalf("RabbitMQ's queue got %d of 100", len(got))
	}
}
