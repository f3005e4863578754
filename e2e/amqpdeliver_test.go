package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/amqpengine"
	"github.com/mqops/mqops/wire"
)

var amqpLMQ = []string{"enableLmq=true", "enableMultiDispatch=true"}

func amqpFetch(t *testing.T, addr, queue, session string, n, waitMs int) wire.AMQPFetchResponse {
	t.Helper()
	var r wire.AMQPFetchResponse
	amqpOK(t, addr, wire.AMQPFetch, wire.AMQPFetchRequest{Vhost: "/", Queue: queue, Session: session, Max: n, WaitMillis: waitMs}, &r)
	return r
}

// A publish to a fanout exchange over remoting is stored once and
// fetched by each of the three bound queues; ack, release (redelivered at
// once) and requeue (back after its delay level, redelivered) work on the
// copies independently; a missing exchange is 404, a publish nobody
// routes is unroutable.
func TestAMQPPublishFetchFanout(t *testing.T) {
	c := startCluster(t, append([]string{shortLevels}, amqpLMQ...)...)
	addr := c.broker.addr
	amqpOK(t, addr, wire.AMQPDeclareExchange, wire.AMQPExchangeDeclare{Vhost: "/", Exchange: "logs", Type: "fanout", Durable: true}, nil)
	queues := []string{"q1", "q2", "q3"}
	for _, q := range queues {
		amqpOK(t, addr, wire.AMQPDeclareQueue, wire.AMQPQueueDeclare{Vhost: "/", Queue: q, Durable: true}, nil)
		amqpOK(t, addr, wire.AMQPBind, wire.AMQPBinding{Vhost: "/", Source: "logs", Destination: q}, nil)
	}
	props := []byte{0x10, 0x00, 2} // delivery-mode 2
	var pub wire.AMQPPublishResponse
	amqpOK(t, addr, wire.AMQPPublish, wire.AMQPPublishRequest{Vhost: "/", Exchange: "logs", Messages: []wire.AMQPPublishMessage{
		{RoutingKey: "info", Properties: props, Body: []byte("m1"), Persistent: true},
		{RoutingKey: "info", Properties: props, Body: []byte("m2"), Persistent: true},
	}}, &pub)
	if len(pub.Results) != 2 || pub.Results[0].Status != wire.AMQPStored || pub.Results[1].Status != wire.AMQPStored {
		t.Fatalf("publish results %+v", pub.Results)
	}
	amqpOK(t, addr, wire.AMQPPublish, wire.AMQPPublishRequest{Vhost: "/", Exchange: "", Messages: []wire.AMQPPublishMessage{
		{RoutingKey: "no-such-queue", Mandatory: true, Body: []byte("x")}}}, &pub)
	if pub.Results[0].Status != wire.AMQPUnroutable {
		t.Fatalf("unroutable publish: %+v", pub.Results)
	}
	amqpRefused(t, addr, wire.AMQPPublish, wire.AMQPPublishRequest{Vhost: "/", Exchange: "nope", Messages: []wire.AMQPPublishMessage{{Body: []byte("x")}}},
		"404", "NOT_FOUND - no exchange 'nope' in vhost '/'")
	var ok wire.AMQPQueueDeclareOk
	amqpOK(t, addr, wire.AMQPDeclareQueue, wire.AMQPQueueDeclare{Vhost: "/", Queue: "q1", Durable: true, Passive: true}, &ok)
	if ok.MessageCount != 2 {
		t.Fatalf("q1 message count %d, want 2", ok.MessageCount)
	}

	got := map[string]wire.AMQPFetchResponse{}
	for _, q := range queues {
		r := amqpFetch(t, addr, q, "s-"+q, 10, 5000)
		if len(r.Deliveries) != 2 || string(r.Deliveries[0].Body) != "m1" || string(r.Deliveries[1].Body) != "m2" ||
			r.Deliveries[0].Exchange != "logs" || r.Deliveries[0].RoutingKey != "info" || r.Deliveries[0].Redelivered || r.Ready != 0 {
			t.Fatalf("%s fetched %+v", q, r)
		}
		got[q] = r
	}
	// q1 acks both, q2 releases its session, q3 requeues m1 and acks m2.
	var st wire.AMQPSettleResponse
	amqpOK(t, addr, wire.AMQPSettle, wire.AMQPSettleRequest{Vhost: "/", Items: []wire.AMQPSettleItem{
		{Handle: got["q1"].Deliveries[0].Handle, Op: wire.AMQPAck}, {Handle: got["q1"].Deliveries[1].Handle, Op: wire.AMQPAck},
		{Handle: got["q3"].Deliveries[0].Handle, Op: wire.AMQPRequeue}, {Handle: got["q3"].Deliveries[1].Handle, Op: wire.AMQPAck}}}, &st)
	if st.Settled != 4 {
		t.Fatalf("settled %d", st.Settled)
	}
	var rel wire.AMQPReleaseResponse
	amqpOK(t, addr, wire.AMQPRelease, wire.AMQPReleaseRequest{Vhost: "/", Session: "s-q2"}, &rel)
	if rel.Released != 2 {
		t.Fatalf("released %d", rel.Released)
	}
	if r := amqpFetch(t, addr, "q2", "s2b", 10, 0); len(r.Deliveries) != 2 || !r.Deliveries[0].Redelivered || !r.Deliveries[1].Redelivered {
		t.Fatalf("q2 after release: %+v", r)
	}
	if r := amqpFetch(t, addr, "q1", "s1b", 10, 0); len(r.Deliveries) != 0 {
		t.Fatalf("q1 after acks: %+v", r)
	}
	// Level 3 is 2 s here; the long poll is woken by the re-dispatch.
	r := amqpFetch(t, addr, "q3", "s3b", 10, 20000)
	if len(r.Deliveries) != 1 || string(r.Deliveries[0].Body) != "m1" || !r.Deliveries[0].Redelivered {
		t.Fatalf("q3 requeued copy: %+v", r)
	}

	// queue.purge drops the ready messages and counts them.
	amqpOK(t, addr, wire.AMQPPublish, wire.AMQPPublishRequest{Vhost: "/", Exchange: "", Messages: []wire.AMQPPublishMessage{
		{RoutingKey: "q1", Body: []byte("p1")}, {RoutingKey: "q1", Body: []byte("p2")}}}, &pub)
	var purged wire.AMQPPurgeResponse
	amqpOK(t, addr, wire.AMQPPurge, wire.AMQPPurgeRequest{Vhost: "/", Queue: "q1"}, &purged)
	if purged.MessageCount != 2 {
		t.Fatalf("purged %d, want 2", purged.MessageCount)
	}
	if r := amqpFetch(t, addr, "q1", "s1c", 10, 0); len(r.Deliveries) != 0 {
		t.Fatalf("q1 after purge: %+v", r)
	}
	amqpRefused(t, addr, wire.AMQPPurge, wire.AMQPPurgeRequest{Vhost: "/", Queue: "nope"}, "404", "NOT_FOUND - no queue 'nope' in vhost '/'")
}

// Without light queues the broker refuses AMQP publishes rather than
// store records no queue would see.
func TestAMQPPublishNeedsLightQueues(t *testing.T) {
	c := startCluster(t)
	amqpOK(t, c.broker.addr, wire.AMQPDeclareQueue, wire.AMQPQueueDeclare{Vhost: "/", Queue: "q"}, nil)
	amqpRefused(t, c.broker.addr, wire.AMQPPublish, wire.AMQPPublishRequest{Vhost: "/", Messages: []wire.AMQPPublishMessage{{RoutingKey: "q", Body: []byte("x")}}},
		"541", "INTERNAL_ERROR - the broker stores AMQP messages only with enableLmq=true and enableMultiDispatch=true")
}

// kill -9 under SYNC_FLUSH right after the stored answers: every stored
// persistent message is fetched after the restart, acked ones are not
// fetched again, unacked ones come back redelivered.
func TestAMQPStoredSurvivesBrokerKill(t *testing.T) {
	c := startCluster(t, append([]string{"flushDiskType=SYNC_FLUSH"}, amqpLMQ...)...)
	addr := c.broker.addr
	amqpOK(t, addr, wire.AMQPDeclareQueue, wire.AMQPQueueDeclare{Vhost: "/", Queue: "durable", Durable: true}, nil)
	const n = 200
	var msgs []wire.AMQPPublishMessage
	for i := range n {
		msgs = append(msgs, wire.AMQPPublishMessage{RoutingKey: "durable", Properties: []byte{0x10, 0x00, 2}, Body: []byte(fmt.Sprintf("m%03d", i)), Persistent: true})
	}
	stored := 0
	for i := 0; i < n; i += 20 {
		var pub wire.AMQPPublishResponse
		amqpOK(t, addr, wire.AMQPPublish, wire.AMQPPublishRequest{Vhost: "/", Exchange: "", Messages: msgs[i : i+20]}, &pub)
		for _, r := range pub.Results {
			if r.Status != wire.AMQPStored {
				t.Fatalf("publish: %+v", r)
			}
			stored++
		}
	}
	// Ack the first 10 and wait for the offset flush (every 5 s) to
	// write the committed offset, then fetch 10 more without acking.
	first := amqpFetch(t, addr, "durable", "s", 10, 0)
	var items []wire.AMQPSettleItem
	for _, d := range first.Deliveries {
		items = append(items, wire.AMQPSettleItem{Handle: d.Handle, Op: wire.AMQPAck})
	}
	amqpOK(t, addr, wire.AMQPSettle, wire.AMQPSettleRequest{Vhost: "/", Items: items}, nil)
	waitFor(t, 20*time.Second, "committed offset 10 on disk", func() bool {
		return committedOnDisk(c, "AMQP_Q1", amqpengine.QueueLMQ("/", 1)) == 10
	})
	unacked := amqpFetch(t, addr, "durable", "s", 10, 0)
	if len(unacked.Deliveries) != 10 {
		t.Fatalf("second fetch %d", len(unacked.Deliveries))
	}
	c.broker.kill()
	c.broker = restartBroker(t, c, append([]string{"flushDiskType=SYNC_FLUSH"}, amqpLMQ...)...)
	addr = c.broker.addr

	seen := map[string]bool{}
	for len(seen) < stored-10 {
		r := amqpFetch(t, addr, "durable", "after", 64, 5000)
		if len(r.Deliveries) == 0 {
			t.Fatalf("after restart: %d of %d fetched, then nothing", len(seen), stored-10)
		}
		for _, d := range r.Deliveries {
			b := string(d.Body)
			if seen[b] || b < "m010" {
				t.Fatalf("%s fetched again after restart", b)
			}
			// Handed out before the crash: redelivered. (Messages never
			// handed out may be flagged too, up to the engine's reserve.)
			if b < "m020" && !d.Redelivered {
				t.Fatalf("%s redelivered=false after the crash", b)
			}
			seen[b] = true
		}
	}
}

// committedOnDisk reads a committed offset (queue 0) from the broker's
// consumerOffset.json; -1 when absent.
func committedOnDisk(c *cluster, group, topic string) int64 {
	b, err := os.ReadFile(filepath.Join(configDir(c), "consumerOffset.json"))
	if err != nil {
		return -1
	}
	var f struct {
		OffsetTable map[string]map[string]int64 `json:"offsetTable"`
	}
	if json.Unmarshal(b, &f) != nil {
		return -1
	}
	if off, ok := f.OffsetTable[topic+"@"+group]["0"]; ok {
		return off
	}
	return -1
}
