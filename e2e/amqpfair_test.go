package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/mqops/mqops/wire"
)

// One queue with a large backlog consumed on the same connection as many
// quiet queues: every quiet queue's messages are delivered while the
// backlog drains (the gateway hands each queue a quantum per turn of the
// connection's writer, not first come first served). The quiet queues'
// delivery latency is logged, never asserted (loaded CI machines).
func TestAMQPFairnessFloodedQueue(t *testing.T) {
	const (
		backlog = 100_000 // prefilled over remoting in batches: seconds
		quiet   = 1000
		rounds  = 3 // messages per quiet queue, spread over the drain
	)
	c := startCluster(t, amqpLMQ...)
	logDir := t.TempDir()
	gw := startAMQP(t, c, "logDir="+logDir)
	addr := c.broker.addr
	amqpOK(t, addr, wire.AMQPDeclareQueue, wire.AMQPQueueDeclare{Vhost: "/", Queue: "flood", Durable: true}, nil)
	start := time.Now()
	batch := make([]wire.AMQPPublishMessage, 1000)
	for i := range batch {
		batch[i] = wire.AMQPPublishMessage{RoutingKey: "flood", Body: []byte("flood-message-0123456789")}
	}
	for n := 0; n < backlog; n += len(batch) {
		var pub wire.AMQPPublishResponse
		amqpOK(t, addr, wire.AMQPPublish, wire.AMQPPublishRequest{Vhost: "/", Messages: batch}, &pub)
		if len(pub.Results) != len(batch) || pub.Results[0].Status != wire.AMQPStored {
			t.Fatalf("prefill: %+v", pub.Results[:1])
		}
	}
	// The store dispatches the records to the queue's consume queue
	// behind the stored answers: wait for all, so the quiet queues'
	// messages do not queue behind the backlog's dispatch.
	waitFor(t, 60*time.Second, "the backlog dispatched", func() bool {
		var ok wire.AMQPQueueDeclareOk
		amqpOK(t, addr, wire.AMQPDeclareQueue, wire.AMQPQueueDeclare{Vhost: "/", Queue: "flood", Durable: true, Passive: true}, &ok)
		return ok.MessageCount == backlog
	})
	t.Logf("prefilled %d messages in %v", backlog, time.Since(start))
	for i := range quiet {
		amqpOK(t, addr, wire.AMQPDeclareQueue, wire.AMQPQueueDeclare{Vhost: "/", Queue: fmt.Sprintf("quiet-%04d", i)}, nil)
	}

	conn, fch := dialAMQP(t, gw)
	qch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	var lat []time.Duration
	var mu sync.Mutex
	got := map[string]bool{}
	allQuiet := make(chan struct{})
	for i := range quiet {
		ds := mustConsume(t, qch, fmt.Sprintf("quiet-%04d", i), true)
		go func() {
			for d := range ds {
				sent, _ := strconv.ParseInt(strings.SplitN(string(d.Body), "/", 2)[0], 10, 64)
				mu.Lock()
				if !strings.Contains(string(d.Body), "/warm/") {
					lat = append(lat, time.Since(time.Unix(0, sent)))
				}
				got[string(d.Body)] = true
				if len(got) == quiet*(rounds+1) {
					close(allQuiet)
				}
				mu.Unlock()
			}
		}()
	}
	_, pch := dialAMQP(t, gw)
	if err := pch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	// publishRound sends one message to each quiet queue, carrying its
	// send time, and waits for the confirms.
	publishRound := func(round string) time.Duration {
		began := time.Now()
		var last *rmq.DeferredConfirmation
		for i := range quiet {
			body := fmt.Sprintf("%d/%s/%d", time.Now().UnixNano(), round, i)
			dc, err := pch.PublishWithDeferredConfirmWithContext(ctx15(t), "", fmt.Sprintf("quiet-%04d", i), false, false, rmq.Publishing{Body: []byte(body)})
			if err != nil {
				t.Fatal(err)
			}
			last = dc
		}
		if ok, err := last.WaitContext(ctx15(t)); !ok || err != nil {
			t.Fatalf("round %s not confirmed: acked=%v %v", round, ok, err)
		}
		return time.Since(began)
	}
	// A first message to a queue creates its consume queue files, which
	// takes seconds for a thousand queues (past a gateway's request
	// timeout under -race): done over remoting in small batches before
	// the flood starts, and not counted.
	began := time.Now()
	for i := 0; i < quiet; i += 50 {
		var msgs []wire.AMQPPublishMessage
		for j := i; j < min(i+50, quiet); j++ {
			msgs = append(msgs, wire.AMQPPublishMessage{RoutingKey: fmt.Sprintf("quiet-%04d", j), Body: []byte(fmt.Sprintf("0/warm/%d", j))})
		}
		amqpOK(t, addr, wire.AMQPPublish, wire.AMQPPublishRequest{Vhost: "/", Messages: msgs}, nil)
	}
	warm := time.Since(began)
	gwLog := func() string {
		b, _ := os.ReadFile(filepath.Join(logDir, "amqp.log"))
		return fmt.Sprintf("gateway log: %d requests timed out, %d late answers dropped", strings.Count(string(b), "timed out"), strings.Count(string(b), "unmatched response"))
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == quiet {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d warm-up messages delivered; %s", n, quiet, gwLog())
		}
	}
	var flooded atomic.Int64
	floodDone := make(chan struct{})
	fds := mustConsume(t, fch, "flood", true)
	go func() {
		for range fds {
			if flooded.Add(1) == backlog {
				close(floodDone)
			}
		}
	}()
	// The quiet rounds go while the backlog drains, one every 200 ms.
	sentBefore := make([]int64, rounds)
	stored := make([]time.Duration, rounds) // a round's publish to its last confirm
	for r := range rounds {
		time.Sleep(200 * time.Millisecond)
		sentBefore[r] = flooded.Load()
		stored[r] = publishRound(fmt.Sprint(r))
	}
	select {
	case <-allQuiet:
	case <-time.After(60 * time.Second):
		mu.Lock()
		if b, err := os.ReadFile(filepath.Join(logDir, "amqp.log")); err == nil {
			t.Logf("gateway log:\n%s", b[max(0, len(b)-8000):])
		}
		t.Fatalf("%d of %d quiet messages delivered (flood: %d of %d)", len(got), quiet*(rounds+1), flooded.Load(), backlog)
	}
	atQuietDone := flooded.Load()
	select {
	case <-floodDone:
	case <-time.After(120 * time.Second):
		t.Fatalf("flood: %d of %d delivered", flooded.Load(), backlog)
	}
	t.Log(gwLog())
	mu.Lock()
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
	t.Logf("quiet deliveries: %d, latency p50 %v p99 %v max %v (a round of %d publishes took %v to confirm, the warm-up %v); flood delivered before the rounds %v, when all quiet were in %d of %d; total %v",
		len(lat), p(0.5), p(0.99), lat[len(lat)-1], quiet, stored, warm, sentBefore, atQuietDone, backlog, time.Since(start))
	mu.Unlock()
}

// publishUntilStopped publishes persistent messages on ch in confirm mode
// until stop or the channel fails, keeping up to window unconfirmed, and
// returns the bodies the server acked.
func publishUntilStopped(ch *rmq.Channel, queue string, window int, stop <-chan struct{}) []string {
	if err := ch.Confirm(false); err != nil {
		return nil
	}
	var acked []string
	type pending struct {
		dc   *rmq.DeferredConfirmation
		body string
	}
	var inflight []pending
	settle := func(all bool) {
		for len(inflight) > 0 && (all || len(inflight) >= window) {
			p := inflight[0]
			inflight = inflight[1:]
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			ok, err := p.dc.WaitContext(ctx)
			cancel()
			if ok && err == nil {
				acked = append(acked, p.body)
			}
		}
	}
	for i := 0; ; i++ {
		select {
		case <-stop:
			settle(true)
			return acked
		default:
		}
		body := fmt.Sprintf("c%07d", i)
		dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", queue, false, false,
			rmq.Publishing{DeliveryMode: rmq.Persistent, Body: []byte(body)})
		if err != nil {
			settle(true)
			return acked
		}
		inflight = append(inflight, pending{dc, body})
		settle(false)
	}
}

// drainQueueAcking consumes queue with manual acks until it stays empty for a
// while with nothing ready, returning body → deliveries (with their redelivered flags).
func drainQueueAcking(t *testing.T, ch *rmq.Channel, queue string) map[string][]bool {
	t.Helper()
	if err := ch.Qos(500, 0, false); err != nil {
		t.Fatal(err)
	}
	ds := mustConsume(t, ch, queue, false)
	out := map[string][]bool{}
	for {
		select {
		case d, ok := <-ds:
			if !ok {
				t.Fatal("consumer closed while draining")
			}
			out[string(d.Body)] = append(out[string(d.Body)], d.Redelivered)
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
		case <-time.After(3 * time.Second):
			// Quiet for a while: done when nothing is ready either (a
			// loaded broker may hold a fetch that long).
			q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			if q.Messages == 0 {
				return out
			}
		}
	}
}

// kill -9 of the gateway while a client publishes persistent messages
// with confirms: after a new gateway starts, every confirmed message is
// in the queue.
func TestAMQPGatewayKillConfirms(t *testing.T) {
	c := startCluster(t, amqpLMQ...)
	gw := startAMQP(t, c)
	_, ch := dialAMQP(t, gw)
	if _, err := ch.QueueDeclare("gwkill", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	res := make(chan []string, 1)
	go func() { res <- publishUntilStopped(ch, "gwkill", 64, stop) }()
	time.Sleep(1500 * time.Millisecond)
	gw.kill()
	close(stop)
	acked := <-res
	if len(acked) == 0 {
		t.Fatal("nothing confirmed before the kill")
	}
	gw = startAMQP(t, c)
	_, dch := dialAMQP(t, gw)
	got := drainQueueAcking(t, dch, "gwkill")
	for _, b := range acked {
		if len(got[b]) == 0 {
			t.Fatalf("confirmed %s lost (%d confirmed, %d drained)", b, len(acked), len(got))
		}
	}
	t.Logf("%d confirmed before the gateway's kill -9, %d drained after", len(acked), len(got))
}

// kill -9 of the broker under SYNC_FLUSH while a client publishes
// persistent messages with confirms through the gateway: after the
// broker restarts, every confirmed message not acked by the consumer is
// drained, and a message delivered before the kill or twice comes with
// redelivered=true.
func TestAMQPBrokerKillConfirms(t *testing.T) {
	flags := append([]string{"flushDiskType=SYNC_FLUSH"}, amqpLMQ...)
	c := startCluster(t, flags...)
	gw := startAMQP(t, c)
	conn, ch := dialAMQP(t, gw)
	if _, err := ch.QueueDeclare("brkill", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	// A consumer acks part of the stream, so unacked deliveries exist
	// at the kill too.
	cch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := cch.Qos(50, 0, false); err != nil {
		t.Fatal(err)
	}
	cds := mustConsume(t, cch, "brkill", false)
	var consumed, delivered sync.Map
	go func() {
		n := 0
		for d := range cds {
			delivered.Store(string(d.Body), true)
			if n++; n%2 == 0 {
				if d.Ack(false) == nil {
					consumed.Store(string(d.Body), true)
				}
			}
		}
	}()
	stop := make(chan struct{})
	res := make(chan []string, 1)
	go func() { res <- publishUntilStopped(ch, "brkill", 64, stop) }()
	time.Sleep(1500 * time.Millisecond)
	c.broker.kill()
	close(stop)
	acked := <-res
	conn.Close()
	if len(acked) == 0 {
		t.Fatal("nothing confirmed before the kill")
	}
	c.broker = restartBroker(t, c, flags...)
	got := drainWhenUp(t, amqpURL(gw, "guest:guest", ""), "brkill")
	lost := 0
	for _, b := range acked {
		if len(got[b]) == 0 {
			// Acked by the consumer before the kill: settled, may be gone.
			if _, ok := consumed.Load(b); !ok {
				lost++
				t.Errorf("confirmed %s lost", b)
			}
		}
	}
	// A message handed to a client before the kill, or twice, comes
	// with redelivered=true.
	for b, rs := range got {
		_, before := delivered.Load(b)
		for i, r := range rs {
			if (i > 0 || before) && !r {
				t.Errorf("%s delivered again (copy %d, delivered before the kill: %v) with redelivered=false", b, i+1, before)
			}
		}
	}
	t.Logf("%d confirmed before the broker's kill -9, %d drained after, %d lost", len(acked), len(got), lost)
}

// drainWhenUp drains queue through url, acking every message, once a
// channel there sees the queue (a restarted broker and its gateway are
// back); it returns what drainQueueAcking does.
func drainWhenUp(t *testing.T, url, queue string) map[string][]bool {
	t.Helper()
	var got map[string][]bool
	waitFor(t, 30*time.Second, "a gateway channel after the broker restart", func() bool {
		dconn, err := rmq.Dial(url)
		if err != nil {
			return false
		}
		dch, err := dconn.Channel()
		if err == nil {
			_, err = dch.QueueDeclarePassive(queue, true, false, false, false, nil)
		}
		if err != nil {
			dconn.Close()
			return false
		}
		t.Cleanup(func() { dconn.Close() })
		got = drainQueueAcking(t, dch, queue)
		return true
	})
	return got
}
