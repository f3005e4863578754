package grpc

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	rmq "github.com/apache/rocketmq-clients/golang/v5"
	"github.com/apache/rocketmq-clients/golang/v5/credentials"
	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/protobuf/types/known/durationpb"
)

// popKV are the broker settings of the consumer tests: 1 s invisibility
// is allowed, so expiry tests take seconds.
var popKV = []string{"minInvisibleTimeMillsForRecv=1000"}

// newV5Consumer starts the official Go v5.1.2 SimpleConsumer.
func newV5Consumer(t *testing.T, grpcAddr, group string, subs map[string]*rmq.FilterExpression) rmq.SimpleConsumer {
	t.Helper()
	sc, err := rmq.NewSimpleConsumer(&rmq.Config{Endpoint: grpcAddr, ConsumerGroup: group, Credentials: &credentials.SessionCredentials{}},
		rmq.WithAwaitDuration(2*time.Second), rmq.WithSubscriptionExpressions(subs))
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Start(); err != nil {
		t.Fatalf("start the v5 simple consumer: %v", err)
	}
	t.Cleanup(func() { _ = sc.GracefulStop() })
	return sc
}

// receive is one Receive; MESSAGE_NOT_FOUND (which v5.1.2 returns as an
// error) is an empty result.
func receive(t *testing.T, sc rmq.SimpleConsumer, n int32, invisible time.Duration) []*rmq.MessageView {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mvs, err := sc.Receive(ctx, n, invisible)
	if err != nil {
		var rs *rmq.ErrRpcStatus
		if errors.As(err, &rs) && rs.Code == int32(v2.Code_MESSAGE_NOT_FOUND) {
			return nil
		}
		t.Fatalf("receive: %v", err)
	}
	return mvs
}

// receiveUntil receives until want messages arrived or timeout passed.
func receiveUntil(t *testing.T, sc rmq.SimpleConsumer, want int, invisible, timeout time.Duration) []*rmq.MessageView {
	t.Helper()
	var got []*rmq.MessageView
	deadline := time.Now().Add(timeout)
	for len(got) < want && time.Now().Before(deadline) {
		got = append(got, receive(t, sc, 32, invisible)...)
	}
	if len(got) < want {
		t.Fatalf("received %d messages within %v, want %d", len(got), timeout, want)
	}
	return got
}

// rawStatus acks or changes a handle through a raw client, to see the
// code the v5.1.2 client hides (its Ack returns no status).
func rawAck(t *testing.T, cl v2.MessagingServiceClient, group, topic, handle string) v2.Code {
	t.Helper()
	r, err := cl.AckMessage(withClient("raw-pop"), &v2.AckMessageRequest{Group: &v2.Resource{Name: group}, Topic: &v2.Resource{Name: topic},
		Entries: []*v2.AckMessageEntry{{MessageId: "x", ReceiptHandle: handle}}})
	if err != nil {
		t.Fatalf("ack: transport error %v", err)
	}
	return r.GetStatus().GetCode()
}

func rawChange(t *testing.T, cl v2.MessagingServiceClient, group, topic, handle string, d time.Duration) (v2.Code, string) {
	t.Helper()
	r, err := cl.ChangeInvisibleDuration(withClient("raw-pop"), &v2.ChangeInvisibleDurationRequest{Group: &v2.Resource{Name: group},
		Topic: &v2.Resource{Name: topic}, ReceiptHandle: handle, InvisibleDuration: durationpb.New(d), MessageId: "x"})
	if err != nil {
		t.Fatalf("change invisible duration: transport error %v", err)
	}
	if r.GetReceiptHandle() == "" {
		t.Fatalf("change invisible duration answered %v with an empty handle", r.GetStatus())
	}
	return r.GetStatus().GetCode(), r.GetReceiptHandle()
}

// createGroup makes a subscription group with retryMaxTimes through a
// raw UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (code 200) remoting request:
// rocketmq-client-go's admin has no call for it.
func createGroup(t *testing.T, brokerAddr, group string, retryMaxTimes int) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", brokerAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	hdr, _ := json.Marshal(map[string]any{"code": 200, "language": "GO", "version": 317, "opaque": 1, "flag": 0, "extFields": map[string]string{}})
	body, _ := json.Marshal(map[string]any{"groupName": group, "consumeEnable": true, "consumeFromMinEnable": true, "consumeBroadcastEnable": true,
		"retryQueueNums": 1, "retryMaxTimes": retryMaxTimes, "brokerId": 0, "whichBrokerWhenConsumeSlowly": 1, "notifyConsumerIdsChangedEnable": true})
	frame := binary.BigEndian.AppendUint32(nil, uint32(4+len(hdr)+len(body)))
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(hdr)))
	frame = append(append(frame, hdr...), body...)
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	var lens [8]byte
	if _, err := io.ReadFull(conn, lens[:]); err != nil {
		t.Fatal(err)
	}
	total, hl := binary.BigEndian.Uint32(lens[:4]), binary.BigEndian.Uint32(lens[4:])&0xffffff
	rest := make([]byte, total-4)
	if _, err := io.ReadFull(conn, rest); err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Code   int    `json:"code"`
		Remark string `json:"remark"`
	}
	if err := json.Unmarshal(rest[:hl], &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Code != 0 {
		t.Fatalf("create group %s: code %d %s", group, resp.Code, resp.Remark)
	}
}

func sendV5(t *testing.T, p rmq.Producer, topic string, n int, tag string) map[string]string {
	t.Helper()
	ids := map[string]string{} // message id → body
	for i := 0; i < n; i++ {
		m := &rmq.Message{Topic: topic, Body: []byte(fmt.Sprintf("%s-%d", topic, i))}
		m.SetTag(tag)
		m.SetKeys("k"+strconv.Itoa(i), "common")
		m.AddProperty("seq", strconv.Itoa(i))
		r, err := p.Send(context.Background(), m)
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		ids[r[0].MessageID] = string(m.Body)
	}
	return ids
}

// TestV5SimpleConsumerReceiveAck: 5.x messages received by the official
// SimpleConsumer arrive once each with their body, tag, keys, properties
// and id, delivery attempt 1 and a handle; after the acks nothing comes
// back, and a second ack of a handle is INVALID_RECEIPT_HANDLE.
func TestV5SimpleConsumerReceiveAck(t *testing.T) {
	c := startCluster(t, popKV...)
	const topic, group, n = "PopBasic", "PopBasicGroup", 20
	createTopic(t, c, topic, 4)
	ids := sendV5(t, newV5Producer(t, c, topic), topic, n, "TagA")
	sc := newV5Consumer(t, c.grpcAddr, group, map[string]*rmq.FilterExpression{topic: rmq.SUB_ALL})
	got := receiveUntil(t, sc, n, 20*time.Second, 30*time.Second)
	seen := map[string]bool{}
	var handles []string
	for _, mv := range got {
		body, ok := ids[mv.GetMessageId()]
		switch {
		case !ok:
			t.Fatalf("unknown message id %s", mv.GetMessageId())
		case seen[mv.GetMessageId()]:
			t.Fatalf("message %s delivered twice while its lease was alive", mv.GetMessageId())
		case string(mv.GetBody()) != body:
			t.Errorf("body %q, want %q", mv.GetBody(), body)
		case mv.GetTag() == nil || *mv.GetTag() != "TagA":
			t.Errorf("tag %v, want TagA", mv.GetTag())
		case len(mv.GetKeys()) != 2 || mv.GetKeys()[1] != "common":
			t.Errorf("keys %v", mv.GetKeys())
		case mv.GetProperties()["seq"] == "":
			t.Errorf("user properties %v lack seq", mv.GetProperties())
		case mv.GetDeliveryAttempt() != 1:
			t.Errorf("delivery attempt %d, want 1", mv.GetDeliveryAttempt())
		case mv.GetReceiptHandle() == "" || mv.GetTopic() != topic:
			t.Errorf("handle %q topic %q", mv.GetReceiptHandle(), mv.GetTopic())
		}
		seen[mv.GetMessageId()] = true
		handles = append(handles, mv.GetReceiptHandle())
		if err := sc.Ack(context.Background(), mv); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	if extra := receive(t, sc, 32, 20*time.Second); len(extra) != 0 {
		t.Fatalf("%d messages delivered again after their acks", len(extra))
	}
	raw, _ := dial(t, c.grpcAddr, true)
	qa, err := raw.QueryAssignment(withClient("raw-pop"), &v2.QueryAssignmentRequest{Topic: &v2.Resource{Name: topic}, Group: &v2.Resource{Name: group}})
	if err != nil || qa.GetStatus().GetCode() != v2.Code_OK || len(qa.GetAssignments()) != 1 {
		t.Fatalf("query assignment: %v %v %v", qa.GetStatus(), qa.GetAssignments(), err)
	}
	a := qa.GetAssignments()[0].GetMessageQueue()
	if a.GetId() != -1 || len(a.GetBroker().GetEndpoints().GetAddresses()) != 1 ||
		fmt.Sprintf("%s:%d", a.GetBroker().GetEndpoints().GetAddresses()[0].GetHost(), a.GetBroker().GetEndpoints().GetAddresses()[0].GetPort()) != c.grpcAddr {
		t.Fatalf("assignment %v, want queue -1 at %s", a, c.grpcAddr)
	}
	if code := rawAck(t, raw, group, topic, handles[0]); code != v2.Code_INVALID_RECEIPT_HANDLE {
		t.Errorf("second ack of a handle: %v, want INVALID_RECEIPT_HANDLE", code)
	}
	if code := rawAck(t, raw, group, topic, "not a handle"); code != v2.Code_INVALID_RECEIPT_HANDLE {
		t.Errorf("ack of garbage: %v, want INVALID_RECEIPT_HANDLE", code)
	}
}

// TestV5RedeliveryAndChangeInvisibility: a message not acked comes back
// with delivery attempt + 1 and the same id after its invisibility; the
// expired handle is refused; ChangeInvisibleDuration to 1 s brings it back
// once more; after the ack it never returns.
func TestV5RedeliveryAndChangeInvisibility(t *testing.T) {
	c := startCluster(t, popKV...)
	const topic, group = "PopRedeliver", "PopRedeliverGroup"
	createTopic(t, c, topic, 2)
	ids := sendV5(t, newV5Producer(t, c, topic), topic, 1, "T")
	sc := newV5Consumer(t, c.grpcAddr, group, map[string]*rmq.FilterExpression{topic: rmq.SUB_ALL})
	raw, _ := dial(t, c.grpcAddr, true)

	first := receiveUntil(t, sc, 1, time.Second, 20*time.Second)[0]
	if _, ok := ids[first.GetMessageId()]; !ok || first.GetDeliveryAttempt() != 1 {
		t.Fatalf("first delivery: id %s attempt %d", first.GetMessageId(), first.GetDeliveryAttempt())
	}
	second := receiveUntil(t, sc, 1, 30*time.Second, 20*time.Second)[0]
	if second.GetMessageId() != first.GetMessageId() || second.GetDeliveryAttempt() != 2 {
		t.Fatalf("redelivery: id %s attempt %d, want %s attempt 2", second.GetMessageId(), second.GetDeliveryAttempt(), first.GetMessageId())
	}
	if second.GetReceiptHandle() == first.GetReceiptHandle() {
		t.Fatal("the redelivery has the expired delivery's handle")
	}
	if code := rawAck(t, raw, group, topic, first.GetReceiptHandle()); code != v2.Code_INVALID_RECEIPT_HANDLE {
		t.Fatalf("ack of the expired handle: %v, want INVALID_RECEIPT_HANDLE", code)
	}
	// Still invisible for 30 s: nothing now.
	if again := receive(t, sc, 32, 30*time.Second); len(again) != 0 {
		t.Fatalf("a message under a live lease was delivered again (attempt %d)", again[0].GetDeliveryAttempt())
	}
	if err := sc.ChangeInvisibleDuration(second, time.Second); err != nil {
		t.Fatalf("change invisible duration: %v", err)
	}
	third := receiveUntil(t, sc, 1, 30*time.Second, 20*time.Second)[0]
	if third.GetMessageId() != first.GetMessageId() || third.GetDeliveryAttempt() != 3 {
		t.Fatalf("after the change: id %s attempt %d, want attempt 3", third.GetMessageId(), third.GetDeliveryAttempt())
	}
	// Change, then ack with the handle the change returned (the client keeps it).
	if err := sc.ChangeInvisibleDuration(third, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if code := rawAck(t, raw, group, topic, third.GetReceiptHandle()); code != v2.Code_OK {
		t.Fatalf("ack with the changed handle: %v", code)
	}
	if code, _ := rawChange(t, raw, group, topic, third.GetReceiptHandle(), time.Second); code != v2.Code_INVALID_RECEIPT_HANDLE {
		t.Fatalf("change of an acked handle: %v, want INVALID_RECEIPT_HANDLE", code)
	}
	waitGone := receive(t, sc, 32, time.Second)
	waitGone = append(waitGone, receive(t, sc, 32, time.Second)...)
	if len(waitGone) != 0 {
		t.Fatalf("an acked message came back (attempt %d)", waitGone[0].GetDeliveryAttempt())
	}
}

// TestV5MaxAttemptsToDLQ: a group with retryMaxTimes=1 (max attempts 2)
// gets a message twice, then it is in %DLQ%<group> with its id and body.
func TestV5MaxAttemptsToDLQ(t *testing.T) {
	c := startCluster(t, popKV...)
	const topic, group = "PopDLQ", "PopDLQGroup"
	createTopic(t, c, topic, 1)
	createGroup(t, c.broker.addr, group, 1)
	// The Settings reply tells the group's max attempts: retryMaxTimes + 1.
	raw, _ := dial(t, c.grpcAddr, true)
	ctx, cancel := context.WithTimeout(withClient("raw-settings"), 10*time.Second)
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
	if got := reply.GetSettings().GetBackoffPolicy().GetMaxAttempts(); got != 2 {
		t.Fatalf("Settings reply max_attempts %d, want 2 (retryMaxTimes 1 + 1)", got)
	}
	cancel()

	ids := sendV5(t, newV5Producer(t, c, topic), topic, 1, "T")
	sc := newV5Consumer(t, c.grpcAddr, group, map[string]*rmq.FilterExpression{topic: rmq.SUB_ALL})
	var id string
	for attempt := int32(1); attempt <= 2; attempt++ {
		mv := receiveUntil(t, sc, 1, time.Second, 20*time.Second)[0]
		if _, ok := ids[mv.GetMessageId()]; !ok || mv.GetDeliveryAttempt() != attempt {
			t.Fatalf("delivery %d: id %s attempt %d", attempt, mv.GetMessageId(), mv.GetDeliveryAttempt())
		}
		id = mv.GetMessageId()
	}
	// The third attempt would exceed max attempts: dead-lettered instead.
	for i := 0; i < 3; i++ {
		if mvs := receive(t, sc, 32, time.Second); len(mvs) != 0 {
			t.Fatalf("delivered beyond max attempts: attempt %d", mvs[0].GetDeliveryAttempt())
		}
	}
	dlq := newV5Consumer(t, c.grpcAddr, "PopDLQReader", map[string]*rmq.FilterExpression{"%DLQ%" + group: rmq.SUB_ALL})
	got := receiveUntil(t, dlq, 1, 20*time.Second, 20*time.Second)
	if got[0].GetMessageId() != id || string(got[0].GetBody()) != ids[id] {
		t.Fatalf("dead letter: id %s body %q, want %s %q", got[0].GetMessageId(), got[0].GetBody(), id, ids[id])
	}
	if err := dlq.Ack(context.Background(), got[0]); err != nil {
		t.Fatal(err)
	}

	// ForwardMessageToDeadLetterQueue (Node's FIFO push path) moves a
	// delivery there at once and finishes it.
	ids2 := sendV5(t, newV5Producer(t, c, topic), topic, 1, "T")
	var fwd *v2.Message
	waitFor(t, 20*time.Second, "a message for the forward", func() bool {
		_, msgs, _ := rawReceive(t, raw, &v2.ReceiveMessageRequest{Group: &v2.Resource{Name: group}, MessageQueue: &v2.MessageQueue{Topic: &v2.Resource{Name: topic}},
			InvisibleDuration: durationpb.New(time.Minute), BatchSize: 1})
		if len(msgs) > 0 {
			fwd = msgs[0]
		}
		return fwd != nil
	})
	if _, ok := ids2[fwd.GetSystemProperties().GetMessageId()]; !ok {
		t.Fatalf("received %s, want the new message", fwd.GetSystemProperties().GetMessageId())
	}
	h := fwd.GetSystemProperties().GetReceiptHandle()
	fr, err := raw.ForwardMessageToDeadLetterQueue(withClient("raw-pop"), &v2.ForwardMessageToDeadLetterQueueRequest{Group: &v2.Resource{Name: group},
		Topic: &v2.Resource{Name: topic}, ReceiptHandle: h, MessageId: fwd.GetSystemProperties().GetMessageId(), DeliveryAttempt: 1, MaxDeliveryAttempts: 2})
	if err != nil || fr.GetStatus().GetCode() != v2.Code_OK {
		t.Fatalf("forward to DLQ: %v %v", fr.GetStatus(), err)
	}
	if code := rawAck(t, raw, group, topic, h); code != v2.Code_INVALID_RECEIPT_HANDLE {
		t.Fatalf("ack after the forward: %v, want INVALID_RECEIPT_HANDLE (the forward finished it)", code)
	}
	got = receiveUntil(t, dlq, 1, 20*time.Second, 20*time.Second)
	if got[0].GetMessageId() != fwd.GetSystemProperties().GetMessageId() {
		t.Fatalf("dead letter after the forward: %s, want %s", got[0].GetMessageId(), fwd.GetSystemProperties().GetMessageId())
	}
}

// TestV5LeasesSurviveRestart: leases taken before a clean broker restart
// still hold after it (nothing is handed out again while they live, and
// their handles still work), and the messages come back once the leases
// end: none is lost.
func TestV5LeasesSurviveRestart(t *testing.T) {
	ns := startNamesrv(t)
	dir := t.TempDir()
	br, ga := startBrokerIn(t, ns.addr, dir)
	c := &cluster{ns: ns, broker: br, grpcAddr: ga}
	const topic, group, n = "PopRestart", "PopRestartGroup", 6
	createTopic(t, c, topic, 2)
	p := newV5Producer(t, c, topic)
	ids := sendV5(t, p, topic, n, "T")
	sc := newV5Consumer(t, ga, group, map[string]*rmq.FilterExpression{topic: rmq.SUB_ALL})
	got := receiveUntil(t, sc, n, 60*time.Second, 30*time.Second)
	handles := map[string]string{}
	for _, mv := range got[:n-2] {
		handles[mv.GetMessageId()] = mv.GetReceiptHandle()
	}
	for _, mv := range got[n-2:] {
		if err := sc.Ack(context.Background(), mv); err != nil { // acked before the restart: never again
			t.Fatal(err)
		}
	}
	_ = sc.GracefulStop()
	_ = p.GracefulStop()

	br.stop()
	br2, ga2 := startBrokerIn(t, ns.addr, dir)
	c.broker, c.grpcAddr = br2, ga2
	sc2 := newV5Consumer(t, ga2, group, map[string]*rmq.FilterExpression{topic: rmq.SUB_ALL})
	if mvs := receive(t, sc2, 32, 60*time.Second); len(mvs) != 0 {
		t.Fatalf("after the restart %d leased messages were handed out again (attempt %d)", len(mvs), mvs[0].GetDeliveryAttempt())
	}
	// The leases' handles survived: end them now instead of waiting 60 s.
	raw, _ := dial(t, ga2, true)
	for id, h := range handles {
		if code, _ := rawChange(t, raw, group, topic, h, 0); code != v2.Code_OK {
			t.Fatalf("change of a pre-restart handle for %s: %v, want OK", id, code)
		}
	}
	back := receiveUntil(t, sc2, len(handles), 60*time.Second, 30*time.Second)
	var backIDs []string
	for _, mv := range back {
		if _, ok := handles[mv.GetMessageId()]; !ok || mv.GetDeliveryAttempt() != 2 {
			t.Fatalf("after the restart: id %s attempt %d (known %v)", mv.GetMessageId(), mv.GetDeliveryAttempt(), known(ids, mv.GetMessageId()))
		}
		backIDs = append(backIDs, mv.GetMessageId())
		if err := sc2.Ack(context.Background(), mv); err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(backIDs)
	for i := 1; i < len(backIDs); i++ {
		if backIDs[i] == backIDs[i-1] {
			t.Fatalf("message %s came back twice", backIDs[i])
		}
	}
	if mvs := receive(t, sc2, 32, 60*time.Second); len(mvs) != 0 {
		t.Fatalf("%d messages after all were acked", len(mvs))
	}
}

func known(m map[string]string, k string) bool { _, found := m[k]; return found }

// startBrokerIn is startBroker on a given store directory (restarts).
func startBrokerIn(t *testing.T, namesrv, dir string, kv ...string) (*proc, string) {
	t.Helper()
	return startGRPCBroker(t, namesrv, dir, append(append([]string{}, popKV...), kv...)...)
}

// TestV4ProducerToV5SimpleConsumer: messages sent by the 4.x Go client
// over remoting reach the 5.x SimpleConsumer with their tag, keys,
// properties and message id; the tag filter passes only TagA.
func TestV4ProducerToV5SimpleConsumer(t *testing.T) {
	c := startCluster(t, popKV...)
	const topic, group, n = "PopMixed", "PopMixedGroup", 20
	createTopic(t, c, topic, 4)
	p, err := rocketmq.NewProducer(producer.WithNsResolver(primitive.NewPassthroughResolver([]string{c.ns.addr})), producer.WithRetry(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	want := map[string]string{} // id → body, TagA only
	for i := 0; i < n; i++ {
		m := primitive.NewMessage(topic, []byte("v4-"+strconv.Itoa(i)))
		tag := "TagA"
		if i%2 == 1 {
			tag = "TagB"
		}
		m.WithTag(tag)
		m.WithKeys([]string{"key" + strconv.Itoa(i)})
		m.WithProperty("origin", "v4")
		r, err := p.SendSync(context.Background(), m)
		if err != nil || r.Status != primitive.SendOK {
			t.Fatalf("v4 send %d: %v %v", i, r, err)
		}
		if tag == "TagA" {
			want[r.MsgID] = string(m.Body)
		}
	}
	sc := newV5Consumer(t, c.grpcAddr, group, map[string]*rmq.FilterExpression{topic: rmq.NewFilterExpression("TagA")})
	got := receiveUntil(t, sc, len(want), 20*time.Second, 30*time.Second)
	for _, mv := range got {
		body, found := want[mv.GetMessageId()]
		if !found {
			t.Fatalf("unexpected message %s (tag %v): the filter or the id is wrong", mv.GetMessageId(), mv.GetTag())
		}
		if string(mv.GetBody()) != body || *mv.GetTag() != "TagA" || mv.GetProperties()["origin"] != "v4" || len(mv.GetKeys()) != 1 {
			t.Errorf("message %s: body %q tag %v keys %v props %v", mv.GetMessageId(), mv.GetBody(), mv.GetTag(), mv.GetKeys(), mv.GetProperties())
		}
		delete(want, mv.GetMessageId())
		if err := sc.Ack(context.Background(), mv); err != nil {
			t.Fatal(err)
		}
	}
	if len(want) != 0 {
		t.Fatalf("%d TagA messages not received", len(want))
	}
	if extra := receive(t, sc, 32, 20*time.Second); len(extra) != 0 {
		t.Fatalf("%d messages after everything was acked (TagB leaked?)", len(extra))
	}
}

// rawReceive runs one ReceiveMessage and returns the stream's status,
// messages and whether it ended with a delivery timestamp.
func rawReceive(t *testing.T, cl v2.MessagingServiceClient, req *v2.ReceiveMessageRequest) (*v2.Status, []*v2.Message, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(withClient("raw-pop"), 10*time.Second)
	defer cancel()
	rs, err := cl.ReceiveMessage(ctx, req)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	var stat *v2.Status
	var msgs []*v2.Message
	stamped := false
	for {
		r, err := rs.Recv()
		if err == io.EOF {
			return stat, msgs, stamped
		}
		if err != nil {
			t.Fatalf("receive stream: %v", err)
		}
		switch {
		case r.GetStatus() != nil:
			if stat != nil || stamped {
				t.Fatalf("second status %v", r.GetStatus())
			}
			stat = r.GetStatus()
		case r.GetMessage() != nil:
			msgs = append(msgs, r.GetMessage())
		case r.GetDeliveryTimestamp() != nil:
			stamped = true
		}
	}
}

// TestPopBadInputAndSQLFilter: refused receives get their codes (and the
// stream layout status, timestamp, end), nothing is lost by them, and a
// SQL92 filter (enablePropertyFilter=true) from the v5.1.2 client selects
// by user property.
func TestPopBadInputAndSQLFilter(t *testing.T) {
	c := startCluster(t, append([]string{"enablePropertyFilter=true"}, popKV...)...)
	const topic, group, n = "PopSQL", "PopSQLGroup", 10
	createTopic(t, c, topic, 2)
	ids := sendV5(t, newV5Producer(t, c, topic), topic, n, "T")
	raw, _ := dial(t, c.grpcAddr, true)
	mq := &v2.MessageQueue{Topic: &v2.Resource{Name: topic}}
	for _, tc := range []struct {
		name string
		req  *v2.ReceiveMessageRequest
		want v2.Code
	}{
		{"invisible 0", &v2.ReceiveMessageRequest{Group: &v2.Resource{Name: group}, MessageQueue: mq, InvisibleDuration: durationpb.New(0)}, v2.Code_ILLEGAL_INVISIBLE_TIME},
		{"invisible 13 h", &v2.ReceiveMessageRequest{Group: &v2.Resource{Name: group}, MessageQueue: mq, InvisibleDuration: durationpb.New(13 * time.Hour)}, v2.Code_ILLEGAL_INVISIBLE_TIME},
		{"no invisible duration", &v2.ReceiveMessageRequest{Group: &v2.Resource{Name: group}, MessageQueue: mq}, v2.Code_ILLEGAL_INVISIBLE_TIME},
		{"unknown topic", &v2.ReceiveMessageRequest{Group: &v2.Resource{Name: group}, MessageQueue: &v2.MessageQueue{Topic: &v2.Resource{Name: "NoSuchPopTopic"}}, InvisibleDuration: durationpb.New(time.Minute)}, v2.Code_TOPIC_NOT_FOUND},
		{"bad group", &v2.ReceiveMessageRequest{Group: &v2.Resource{Name: "bad group"}, MessageQueue: mq, InvisibleDuration: durationpb.New(time.Minute)}, v2.Code_ILLEGAL_CONSUMER_GROUP},
		{"bad SQL", &v2.ReceiveMessageRequest{Group: &v2.Resource{Name: group}, MessageQueue: mq, InvisibleDuration: durationpb.New(time.Minute),
			FilterExpression: &v2.FilterExpression{Type: v2.FilterType_SQL, Expression: "seq >>> 1"}}, v2.Code_ILLEGAL_FILTER_EXPRESSION},
	} {
		stat, msgs, stamped := rawReceive(t, raw, tc.req)
		if stat.GetCode() != tc.want || len(msgs) != 0 || !stamped {
			t.Errorf("%s: %v %q, %d messages, timestamp %v; want %v, none, timestamp", tc.name, stat.GetCode(), stat.GetMessage(), len(msgs), stamped, tc.want)
		}
	}
	// An absurd batch size is capped at 32, not refused.
	stat, msgs, _ := rawReceive(t, raw, &v2.ReceiveMessageRequest{Group: &v2.Resource{Name: "PopSQLOther"}, MessageQueue: mq, BatchSize: 1 << 30,
		InvisibleDuration: durationpb.New(time.Minute), FilterExpression: &v2.FilterExpression{Type: v2.FilterType_SQL, Expression: "seq < 3"}})
	if stat.GetCode() != v2.Code_OK || len(msgs) == 0 {
		t.Fatalf("receive with batch 2^30: %v %d messages", stat, len(msgs))
	}
	for _, m := range msgs {
		if d := m.GetSystemProperties().GetBodyDigest().GetChecksum(); d == "" || d != strings.ToUpper(d) {
			t.Errorf("body digest %q, want upper-case MD5", d)
		}
	}

	// The refusals lost nothing: the SQL consumer gets exactly seq ≥ 5.
	sc := newV5Consumer(t, c.grpcAddr, group, map[string]*rmq.FilterExpression{topic: rmq.NewFilterExpressionWithType("seq >= 5", rmq.SQL92)})
	got := receiveUntil(t, sc, n-5, 20*time.Second, 30*time.Second)
	seen := map[string]bool{}
	for _, mv := range got {
		seq, _ := strconv.Atoi(mv.GetProperties()["seq"])
		if _, ok := ids[mv.GetMessageId()]; !ok || seq < 5 || seen[mv.GetMessageId()] {
			t.Fatalf("SQL filter seq >= 5 delivered seq %d (id %s, seen %v)", seq, mv.GetMessageId(), seen[mv.GetMessageId()])
		}
		seen[mv.GetMessageId()] = true
		if err := sc.Ack(context.Background(), mv); err != nil {
			t.Fatal(err)
		}
	}
	if extra := receive(t, sc, 32, 20*time.Second); len(extra) != 0 {
		t.Fatalf("%d more messages through the SQL filter", len(extra))
	}
}

// TestPopLongPolling: a receive on an empty topic waits, and a message
// sent during the wait is returned by that same receive (woken by the
// dispatch, not found by a later call).
func TestPopLongPolling(t *testing.T) {
	c := startCluster(t, popKV...)
	const topic, group = "PopLongPoll", "PopLongPollGroup"
	createTopic(t, c, topic, 2)
	p := newV5Producer(t, c, topic)
	sc, err := rmq.NewSimpleConsumer(&rmq.Config{Endpoint: c.grpcAddr, ConsumerGroup: group, Credentials: &credentials.SessionCredentials{}},
		rmq.WithAwaitDuration(15*time.Second), rmq.WithSubscriptionExpressions(map[string]*rmq.FilterExpression{topic: rmq.SUB_ALL}))
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Start(); err != nil {
		t.Fatal(err)
	}
	defer sc.GracefulStop()
	// Warm up: the first receive creates the group; the topic is empty.
	if mvs := receive(t, sc, 32, 20*time.Second); len(mvs) != 0 {
		t.Fatalf("%d messages in an empty topic", len(mvs))
	}
	type result struct {
		mvs []*rmq.MessageView
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		mvs, err := sc.Receive(ctx, 32, 20*time.Second)
		done <- result{mvs, err}
	}()
	time.Sleep(500 * time.Millisecond) // let the receive start waiting (ordering only)
	ids := sendV5(t, p, topic, 1, "T")
	r := <-done
	if r.err != nil || len(r.mvs) != 1 {
		t.Fatalf("the waiting receive returned %d messages, %v; want the message sent during the wait", len(r.mvs), r.err)
	}
	if _, ok := ids[r.mvs[0].GetMessageId()]; !ok {
		t.Fatalf("received %s, want the sent message", r.mvs[0].GetMessageId())
	}
}

// TestPopAutoRenew: an auto_renew lease (no invisible duration, as Node's
// PushConsumer receives) stays while its client's Telemetry stream is
// open, and is released within seconds when the client has none.
func TestPopAutoRenew(t *testing.T) {
	c := startCluster(t, popKV...)
	const topic, group = "PopRenew", "PopRenewGroup"
	createTopic(t, c, topic, 1)
	ids := sendV5(t, newV5Producer(t, c, topic), topic, 2, "T")
	raw, _ := dial(t, c.grpcAddr, true)
	mq := &v2.MessageQueue{Topic: &v2.Resource{Name: topic}}

	// Client "renew-live" keeps a Telemetry stream open.
	ctx, cancel := context.WithCancel(withClient("renew-live"))
	defer cancel()
	tel, err := raw.Telemetry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tel.Send(&v2.TelemetryCommand{Command: &v2.TelemetryCommand_Settings{Settings: &v2.Settings{ClientType: v2.ClientType_PUSH_CONSUMER.Enum(),
		PubSub: &v2.Settings_Subscription{Subscription: &v2.Subscription{Group: &v2.Resource{Name: group}}}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := tel.Recv(); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(withClient("renew-live"), 10*time.Second)
	defer rcancel()
	rs, err := raw.ReceiveMessage(rctx, &v2.ReceiveMessageRequest{Group: &v2.Resource{Name: group}, MessageQueue: mq, BatchSize: 1, AutoRenew: true})
	if err != nil {
		t.Fatal(err)
	}
	var live *v2.Message
	for {
		r, err := rs.Recv()
		if err != nil {
			break
		}
		if r.GetMessage() != nil {
			live = r.GetMessage()
		}
	}
	if live == nil {
		t.Fatal("the connected client received nothing")
	}
	// Client "renew-gone" has no stream: its lease is released.
	stat, msgs, _ := rawReceive(t, raw, &v2.ReceiveMessageRequest{Group: &v2.Resource{Name: group}, MessageQueue: mq, BatchSize: 1, AutoRenew: true})
	if stat.GetCode() != v2.Code_OK || len(msgs) != 1 {
		t.Fatalf("receive of the second message: %v, %d messages", stat, len(msgs))
	}
	gone := msgs[0]
	sc := newV5Consumer(t, c.grpcAddr, group, map[string]*rmq.FilterExpression{topic: rmq.SUB_ALL})
	got := receiveUntil(t, sc, 1, time.Minute, 20*time.Second)
	if got[0].GetMessageId() != gone.GetSystemProperties().GetMessageId() || got[0].GetDeliveryAttempt() != 2 {
		t.Fatalf("redelivered %s attempt %d, want the gone client's %s attempt 2", got[0].GetMessageId(), got[0].GetDeliveryAttempt(), gone.GetSystemProperties().GetMessageId())
	}
	if _, ok := ids[got[0].GetMessageId()]; !ok {
		t.Fatal("unknown message")
	}
	// The connected client's lease holds; its handle still acks.
	if mvs := receive(t, sc, 32, time.Minute); len(mvs) != 0 {
		t.Fatalf("the connected client's auto-renewed message was handed out again (%s)", mvs[0].GetMessageId())
	}
	if code := rawAck(t, raw, group, topic, live.GetSystemProperties().GetReceiptHandle()); code != v2.Code_OK {
		t.Fatalf("ack of the auto-renewed delivery: %v", code)
	}
}

// TestPopInflightThreshold: with popInflightMessageThreshold=3 a group
// gets 3 of 5 messages, then TOO_MANY_REQUESTS, and one more after an ack.
func TestPopInflightThreshold(t *testing.T) {
	c := startCluster(t, append([]string{"popInflightMessageThreshold=3"}, popKV...)...)
	const topic, group = "PopCap", "PopCapGroup"
	createTopic(t, c, topic, 1)
	sendV5(t, newV5Producer(t, c, topic), topic, 5, "T")
	raw, _ := dial(t, c.grpcAddr, true)
	req := &v2.ReceiveMessageRequest{Group: &v2.Resource{Name: group}, MessageQueue: &v2.MessageQueue{Topic: &v2.Resource{Name: topic}},
		InvisibleDuration: durationpb.New(time.Minute), BatchSize: 32}
	// The sends are acked before their dispatch: receive until 3 arrived.
	var msgs []*v2.Message
	waitFor(t, 20*time.Second, "3 messages", func() bool {
		stat, got, _ := rawReceive(t, raw, req)
		if stat.GetCode() == v2.Code_TOO_MANY_REQUESTS && len(msgs) < 3 {
			t.Fatalf("TOO_MANY_REQUESTS with %d in flight", len(msgs))
		}
		msgs = append(msgs, got...)
		if len(msgs) > 3 {
			t.Fatalf("%d messages in flight, threshold 3", len(msgs))
		}
		return len(msgs) == 3
	})
	if stat, more, _ := rawReceive(t, raw, req); stat.GetCode() != v2.Code_TOO_MANY_REQUESTS || len(more) != 0 {
		t.Fatalf("receive at the threshold: %v, %d messages; want TOO_MANY_REQUESTS", stat, len(more))
	}
	if code := rawAck(t, raw, group, topic, msgs[0].GetSystemProperties().GetReceiptHandle()); code != v2.Code_OK {
		t.Fatalf("ack: %v", code)
	}
	if stat, more, _ := rawReceive(t, raw, req); stat.GetCode() != v2.Code_OK || len(more) != 1 {
		t.Fatalf("receive after an ack: %v, %d messages; want 1", stat, len(more))
	}
}
