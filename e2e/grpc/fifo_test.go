package grpc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// orderlyGroup makes an orderly (FIFO) subscription group with Java 5's
// mqadmin updateSubGroup -o true.
func orderlyGroup(t *testing.T, c *cluster, group string, retryMaxTimes int) {
	t.Helper()
	if out, err := mqadmin(t, c, "updateSubGroup", "-b", c.broker.addr, "-g", group, "-o", "true", "-r", strconv.Itoa(retryMaxTimes)); err != nil {
		t.Fatalf("mqadmin updateSubGroup -o true: %v\n%s", err, out)
	}
}

// settingsFifo is subscription.fifo of the broker's reply to a
// SimpleConsumer's Settings for group.
func settingsFifo(t *testing.T, raw v2.MessagingServiceClient, group string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(withClient("raw-settings-"+group), 10*time.Second)
	defer cancel()
	tel, err := raw.Telemetry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tel.Send(&v2.TelemetryCommand{Command: &v2.TelemetryCommand_Settings{Settings: &v2.Settings{ClientType: v2.ClientType_SIMPLE_CONSUMER.Enum(),
		PubSub: &v2.Settings_Subscription{Subscription: &v2.Subscription{Group: &v2.Resource{Name: group}}}}}}); err != nil {
		t.Fatal(err)
	}
	reply, err := tel.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return reply.GetSettings().GetSubscription().GetFifo()
}

// fifoSend sends body <group>/<i> for i < n of each message group,
// interleaved, and returns the message ids by body.
func fifoSend(t *testing.T, p rmq.Producer, topic string, groups []string, from, n int) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for i := from; i < from+n; i++ {
		for _, g := range groups {
			m := &rmq.Message{Topic: topic, Body: []byte(fmt.Sprintf("%s/%d", g, i))}
			m.SetMessageGroup(g)
			r, err := send(t, p, m)
			if err != nil {
				t.Fatalf("FIFO send %s/%d: %v", g, i, err)
			}
			ids[string(m.Body)] = r[0].MessageID
		}
	}
	return ids
}

// waitDispatched waits until the topic's queues hold n messages: sends
// are answered before the consume queues are built, and the tests below
// need whole batches at their first receive.
func waitDispatched(t *testing.T, c *cluster, topic string, n int64) {
	t.Helper()
	waitFor(t, 20*time.Second, fmt.Sprintf("%d messages in the queues of %s", n, topic), func() bool {
		out, err := mqadmin(t, c, "topicStatus", "-t", topic, "-o", "json")
		if err != nil {
			t.Fatalf("mqadmin topicStatus: %v\n%s", err, out)
		}
		var qs []struct {
			MaxOffset int64 `json:"maxOffset"`
		}
		if err := json.Unmarshal([]byte(out), &qs); err != nil {
			t.Fatalf("topicStatus json: %v\n%s", err, out)
		}
		var sum int64
		for _, q := range qs {
			sum += q.MaxOffset
		}
		return sum >= n
	})
}

// fifoMsg splits a delivered <group>/<i> body and checks the message
// group it carries.
func fifoMsg(t *testing.T, mv *rmq.MessageView) (string, int) {
	t.Helper()
	g, i, ok := strings.Cut(string(mv.GetBody()), "/")
	n, err := strconv.Atoi(i)
	if !ok || err != nil || mv.GetMessageGroup() == nil || *mv.GetMessageGroup() != g {
		t.Fatalf("delivered %q with message group %v", mv.GetBody(), mv.GetMessageGroup())
	}
	return g, n
}

// oneBatch checks that mvs are messages from..from+len-1 of one message
// group, in order, at delivery attempt attempt, and returns the group.
func oneBatch(t *testing.T, mvs []*rmq.MessageView, from int, attempt int32) string {
	t.Helper()
	if len(mvs) == 0 {
		t.Fatal("empty batch")
	}
	g0, _ := fifoMsg(t, mvs[0])
	for k, mv := range mvs {
		g, i := fifoMsg(t, mv)
		if g != g0 || i != from+k || mv.GetDeliveryAttempt() != attempt {
			t.Fatalf("batch %s: message %d is %s (attempt %d), want %s/%d attempt %d", bodies(mvs), k, mv.GetBody(), mv.GetDeliveryAttempt(), g0, from+k, attempt)
		}
	}
	return g0
}

func bodies(mvs []*rmq.MessageView) string {
	var b []string
	for _, mv := range mvs {
		b = append(b, fmt.Sprintf("%s#%d", mv.GetBody(), mv.GetDeliveryAttempt()))
	}
	return "[" + strings.Join(b, " ") + "]"
}

func ackAll(t *testing.T, sc rmq.SimpleConsumer, mvs []*rmq.MessageView) {
	t.Helper()
	for _, mv := range mvs {
		if err := sc.Ack(context.Background(), mv); err != nil {
			t.Fatalf("ack %s: %v", mv.GetBody(), err)
		}
	}
}

// TestV5FIFOConsume: an orderly group (updateSubGroup -o true) on a FIFO
// topic, consumed by the official v5.1.2 SimpleConsumer: Settings say
// fifo; each message group's messages arrive in send order; while a
// batch is un-acked nothing behind it in its queue is delivered, while
// the other message groups (queues) still flow; acking the batch
// releases the rest; an un-acked batch comes back in place (same ids and
// offsets, nothing new mixed in) with delivery attempt 2, and only its
// un-acked messages; the old handles are dead.
func TestV5FIFOConsume(t *testing.T) {
	c := startCluster(t, popKV...)
	const topic, group, perGroup = "FifoPop", "FifoPopGroup", 10
	typedTopic(t, c, topic, "FIFO", 4)
	orderlyGroup(t, c, group, 16)
	raw, _ := dial(t, c.grpcAddr, true)
	if !settingsFifo(t, raw, group) {
		t.Fatal("Settings reply: fifo false for an orderly group")
	}
	if settingsFifo(t, raw, "FifoPopPlainGroup") {
		t.Fatal("Settings reply: fifo true for a group that is not orderly")
	}
	groups := []string{"g-a", "g-b", "g-c"} // queues 1, 2, 0 (TestV5FIFO)
	ids := fifoSend(t, newV5Producer(t, c, topic), topic, groups, 0, perGroup)
	waitDispatched(t, c, topic, int64(len(groups)*perGroup))
	sc := newV5Consumer(t, c.grpcAddr, group, map[string]*rmq.FilterExpression{topic: rmq.SUB_ALL})

	// One batch of 4 per message group; a fourth receive finds every
	// queue blocked by its batch.
	held := map[string][]*rmq.MessageView{}
	for range groups {
		mvs := receive(t, sc, 4, 30*time.Second)
		g := oneBatch(t, mvs, 0, 1)
		if held[g] != nil {
			t.Fatalf("group %s: %s delivered while %s is un-acked", g, bodies(mvs), bodies(held[g]))
		}
		if len(mvs) != 4 {
			t.Fatalf("batch %s, want 4 messages", bodies(mvs))
		}
		for _, mv := range mvs {
			if mv.GetMessageId() != ids[string(mv.GetBody())] {
				t.Fatalf("%s: id %s, want %s", mv.GetBody(), mv.GetMessageId(), ids[string(mv.GetBody())])
			}
		}
		held[g] = mvs
	}
	if mvs := receive(t, sc, 4, 30*time.Second); len(mvs) != 0 {
		t.Fatalf("delivered %s behind un-acked batches", bodies(mvs))
	}

	// Acking g-a's batch releases the rest of g-a, and only that.
	ackAll(t, sc, held["g-a"])
	next := receive(t, sc, 4, 30*time.Second)
	if g := oneBatch(t, next, 4, 1); g != "g-a" {
		t.Fatalf("after acking g-a's batch: %s", bodies(next))
	}
	held["g-a"] = next

	// g-b: the first message acked, the other three made visible in 1 s:
	// exactly those three come back, in order, attempt 2, same ids and
	// queue offsets; g-b/4 and beyond wait.
	b := held["g-b"]
	ackAll(t, sc, b[:1])
	old := map[string]string{}
	for _, mv := range b[1:] {
		old[string(mv.GetBody())] = mv.GetReceiptHandle()
		if err := sc.ChangeInvisibleDuration(mv, time.Second); err != nil {
			t.Fatalf("change invisible duration of %s: %v", mv.GetBody(), err)
		}
	}
	back := receiveUntil(t, sc, 3, 30*time.Second, 20*time.Second)
	if g := oneBatch(t, back, 1, 2); g != "g-b" || len(back) != 3 {
		t.Fatalf("redelivery %s, want g-b/1..3 at attempt 2", bodies(back))
	}
	for k, mv := range back {
		if mv.GetMessageId() != b[k+1].GetMessageId() || mv.GetOffset() != b[k+1].GetOffset() || mv.GetReceiptHandle() == old[string(mv.GetBody())] {
			t.Fatalf("redelivered %s: id %s offset %d, want %s %d and a new handle", mv.GetBody(), mv.GetMessageId(), mv.GetOffset(), b[k+1].GetMessageId(), b[k+1].GetOffset())
		}
	}
	if code := rawAck(t, raw, group, topic, old["g-b/1"]); code != v2.Code_INVALID_RECEIPT_HANDLE {
		t.Fatalf("ack with the handle of the expired delivery: %v, want INVALID_RECEIPT_HANDLE", code)
	}
	held["g-b"] = back

	// Ack everything in flight, then drain: every message group goes on
	// exactly where its acked messages end, in order, once.
	want := map[string]int{"g-a": 8, "g-b": 4, "g-c": 4}
	for _, g := range groups {
		ackAll(t, sc, held[g])
	}
	deadline := time.Now().Add(30 * time.Second)
	for want["g-a"]+want["g-b"]+want["g-c"] < len(groups)*perGroup {
		if time.Now().After(deadline) {
			t.Fatalf("drain: still expecting %v", want)
		}
		for _, mv := range receive(t, sc, 32, 30*time.Second) {
			g, i := fifoMsg(t, mv)
			if i != want[g] || mv.GetDeliveryAttempt() != 1 {
				t.Fatalf("drain: %s attempt %d, want %s/%d attempt 1", mv.GetBody(), mv.GetDeliveryAttempt(), g, want[g])
			}
			want[g]++
			ackAll(t, sc, []*rmq.MessageView{mv})
		}
	}
	if mvs := receive(t, sc, 32, 30*time.Second); len(mvs) != 0 {
		t.Fatalf("%s after everything was acked", bodies(mvs))
	}
}

// TestV5FIFOMaxAttemptsToDLQ: in an orderly group with retryMaxTimes=1
// (max attempts 2) an un-acked batch is delivered twice in place; the
// messages still un-acked then go to %DLQ%<group> and the queue moves
// on to the message behind them.
func TestV5FIFOMaxAttemptsToDLQ(t *testing.T) {
	c := startCluster(t, popKV...)
	const topic, group = "FifoPopDLQ", "FifoPopDLQGroup"
	typedTopic(t, c, topic, "FIFO", 1)
	orderlyGroup(t, c, group, 1)
	p := newV5Producer(t, c, topic)
	ids := fifoSend(t, p, topic, []string{"g-x"}, 0, 3)
	waitDispatched(t, c, topic, 3)
	sc := newV5Consumer(t, c.grpcAddr, group, map[string]*rmq.FilterExpression{topic: rmq.SUB_ALL})

	first := receiveUntil(t, sc, 3, 30*time.Second, 20*time.Second)
	oneBatch(t, first, 0, 1)
	for _, mv := range first {
		if err := sc.ChangeInvisibleDuration(mv, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	second := receiveUntil(t, sc, 3, 30*time.Second, 20*time.Second)
	oneBatch(t, second, 0, 2)
	ackAll(t, sc, second[:1])
	for k, id := range fifoSend(t, p, topic, []string{"g-x"}, 3, 1) {
		ids[k] = id
	}
	for _, mv := range second[1:] {
		if err := sc.ChangeInvisibleDuration(mv, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// The third attempt of g-x/1 and g-x/2 would exceed max attempts:
	// dead-lettered; g-x/3 behind them is delivered.
	after := receiveUntil(t, sc, 1, 30*time.Second, 20*time.Second)
	if len(after) != 1 {
		t.Fatalf("after the dead letters: %s, want g-x/3 alone", bodies(after))
	}
	oneBatch(t, after, 3, 1)
	ackAll(t, sc, after)

	dlq := newV5Consumer(t, c.grpcAddr, "FifoPopDLQReader", map[string]*rmq.FilterExpression{"%DLQ%" + group: rmq.SUB_ALL})
	dead := receiveUntil(t, dlq, 2, 20*time.Second, 20*time.Second)
	got := map[string]bool{}
	for _, mv := range dead {
		// The dead letter carries the attempts counted in the lease (its
		// stored record says 0): reconsume times 2, as a non-FIFO dead
		// letter of this group.
		if mv.GetDeliveryAttempt() != 3 {
			t.Errorf("dead letter %s: delivery attempt %d, want 3 (reconsume times 2)", mv.GetBody(), mv.GetDeliveryAttempt())
		}
		got[mv.GetMessageId()] = true
		ackAll(t, dlq, []*rmq.MessageView{mv})
	}
	if len(dead) != 2 || !got[ids["g-x/1"]] || !got[ids["g-x/2"]] {
		t.Fatalf("dead letters %s, want g-x/1 and g-x/2 (%s %s)", bodies(dead), ids["g-x/1"], ids["g-x/2"])
	}
}

// receiveAttempt is one ReceiveMessage with attempt_id and a 1 s
// long_polling_timeout (apis service.proto ReceiveMessageRequest fields
// 8 and 7, which the client module's v5.1.2 protos lack: Node.js 1.0.8
// sends both), appended to the encoded request.
func receiveAttempt(t *testing.T, conn *grpc.ClientConn, group, topic, attempt string, batch int32) []*v2.Message {
	t.Helper()
	b, err := proto.Marshal(&v2.ReceiveMessageRequest{Group: &v2.Resource{Name: group}, MessageQueue: &v2.MessageQueue{Topic: &v2.Resource{Name: topic}},
		BatchSize: batch, InvisibleDuration: durationpb.New(30 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	poll, _ := proto.Marshal(durationpb.New(time.Second))
	b = protowire.AppendBytes(protowire.AppendTag(b, 7, protowire.BytesType), poll)
	b = protowire.AppendString(protowire.AppendTag(b, 8, protowire.BytesType), attempt)
	ctx, cancel := context.WithTimeout(withClient("raw-fifo"), 10*time.Second)
	defer cancel()
	cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/apache.rocketmq.v2.MessagingService/ReceiveMessage", grpc.ForceCodec(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.SendMsg(b); err != nil {
		t.Fatal(err)
	}
	if err := cs.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var msgs []*v2.Message
	for {
		var out []byte
		if err := cs.RecvMsg(&out); err == io.EOF {
			return msgs
		} else if err != nil {
			t.Fatalf("receive stream: %v", err)
		}
		var r v2.ReceiveMessageResponse
		if err := proto.Unmarshal(out, &r); err != nil {
			t.Fatal(err)
		}
		if m := r.GetMessage(); m != nil {
			msgs = append(msgs, m)
		}
	}
}

// TestFIFOAttemptIDReplay: a receive repeating the attempt_id of the
// orderly group's batch in flight (a client retrying after a lost
// answer, as Node.js does) gets that batch again with new handles and
// the same delivery attempt; another attempt id gets nothing from the
// blocked queue until the batch is acked.
func TestFIFOAttemptIDReplay(t *testing.T) {
	c := startCluster(t, popKV...)
	const topic, group = "FifoPopAttempt", "FifoPopAttemptGroup"
	typedTopic(t, c, topic, "FIFO", 1)
	orderlyGroup(t, c, group, 16)
	fifoSend(t, newV5Producer(t, c, topic), topic, []string{"g-y"}, 0, 3)
	waitDispatched(t, c, topic, 3)
	raw, conn := dial(t, c.grpcAddr, true)
	bodiesOf := func(ms []*v2.Message) string {
		var b []string
		for _, m := range ms {
			b = append(b, fmt.Sprintf("%s#%d", m.GetBody(), m.GetSystemProperties().GetDeliveryAttempt()))
		}
		return strings.Join(b, " ")
	}
	var first []*v2.Message
	waitFor(t, 20*time.Second, "the first batch", func() bool {
		first = receiveAttempt(t, conn, group, topic, "attempt-1", 2)
		return len(first) > 0
	})
	if got := bodiesOf(first); got != "g-y/0#1 g-y/1#1" {
		t.Fatalf("first batch %s, want g-y/0#1 g-y/1#1", got)
	}
	if ms := receiveAttempt(t, conn, group, topic, "attempt-2", 2); len(ms) != 0 {
		t.Fatalf("another attempt got %s from the blocked queue", bodiesOf(ms))
	}
	again := receiveAttempt(t, conn, group, topic, "attempt-1", 2)
	if got := bodiesOf(again); got != "g-y/0#1 g-y/1#1" {
		t.Fatalf("replay of attempt-1: %s, want g-y/0#1 g-y/1#1", got)
	}
	for k, m := range again {
		h, oldH := m.GetSystemProperties().GetReceiptHandle(), first[k].GetSystemProperties().GetReceiptHandle()
		if h == oldH {
			t.Fatalf("replay of %s kept the handle", m.GetBody())
		}
		if code := rawAck(t, raw, group, topic, oldH); code != v2.Code_INVALID_RECEIPT_HANDLE {
			t.Fatalf("ack with the replaced handle of %s: %v", m.GetBody(), code)
		}
		if code := rawAck(t, raw, group, topic, h); code != v2.Code_OK {
			t.Fatalf("ack of the replayed %s: %v", m.GetBody(), code)
		}
	}
	if got := bodiesOf(receiveAttempt(t, conn, group, topic, "attempt-2", 2)); got != "g-y/2#1" {
		t.Fatalf("after the acks: %s, want g-y/2#1", got)
	}
}

// TestV5FIFOBatchSurvivesRestart: an orderly group's un-acked batch
// outlives a broker restart: it still blocks its queue (nothing behind it
// is delivered), its handles still work, and once its lease ends it
// comes back first, in place, before the messages behind it.
func TestV5FIFOBatchSurvivesRestart(t *testing.T) {
	ns := startNamesrv(t)
	dir := t.TempDir()
	br, ga := startBrokerIn(t, ns.addr, dir)
	c := &cluster{ns: ns, broker: br, grpcAddr: ga}
	const topic, group = "FifoPopRestart", "FifoPopRestartGroup"
	typedTopic(t, c, topic, "FIFO", 1)
	orderlyGroup(t, c, group, 16)
	p := newV5Producer(t, c, topic)
	fifoSend(t, p, topic, []string{"g-z"}, 0, 6)
	waitDispatched(t, c, topic, 6)
	sc := newV5Consumer(t, ga, group, map[string]*rmq.FilterExpression{topic: rmq.SUB_ALL})
	first := receive(t, sc, 3, time.Minute)
	oneBatch(t, first, 0, 1)
	if len(first) != 3 {
		t.Fatalf("first batch %s, want 3", bodies(first))
	}
	ackAll(t, sc, first[:1])
	_ = sc.GracefulStop()
	_ = p.GracefulStop()

	br.stop()
	br2, ga2 := startBrokerIn(t, ns.addr, dir)
	c.broker, c.grpcAddr = br2, ga2
	sc2 := newV5Consumer(t, ga2, group, map[string]*rmq.FilterExpression{topic: rmq.SUB_ALL})
	if mvs := receive(t, sc2, 32, time.Minute); len(mvs) != 0 {
		t.Fatalf("after the restart %s was delivered behind the un-acked batch", bodies(mvs))
	}
	raw, _ := dial(t, ga2, true)
	for _, mv := range first[1:] {
		if code, _ := rawChange(t, raw, group, topic, mv.GetReceiptHandle(), 0); code != v2.Code_OK {
			t.Fatalf("change of the pre-restart handle of %s: %v", mv.GetBody(), code)
		}
	}
	back := receiveUntil(t, sc2, 2, time.Minute, 20*time.Second)
	if oneBatch(t, back, 1, 2); len(back) != 2 {
		t.Fatalf("after the restart: %s, want g-z/1 and g-z/2 at attempt 2 alone", bodies(back))
	}
	ackAll(t, sc2, back)
	rest := receiveUntil(t, sc2, 3, time.Minute, 20*time.Second)
	oneBatch(t, rest, 3, 1)
	ackAll(t, sc2, rest)
}
