package grpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	rmq "github.com/apache/rocketmq-clients/golang/v5"
	"github.com/apache/rocketmq-clients/golang/v5/credentials"
	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// mqadmin runs the real mqadmin binary against the cluster's name server.
func mqadmin(t *testing.T, c *cluster, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(filepath.Join(binDir, "mqadmin"), append(args, "-n", c.ns.addr)...).CombinedOutput()
	return string(out), err
}

// typedTopic creates a topic with a message.type through Java 5's
// updateTopic syntax.
func typedTopic(t *testing.T, c *cluster, topic, typ string, queues int) {
	t.Helper()
	q := fmt.Sprint(queues)
	if out, err := mqadmin(t, c, "updateTopic", "-b", c.broker.addr, "-t", topic, "-r", q, "-w", q, "-a", "+message.type="+typ); err != nil {
		t.Fatalf("mqadmin updateTopic: %v\n%s", err, out)
	}
}

// rpcCode is the RocketMQ code of a v5 client error (0 if none).
func rpcCode(err error) int32 {
	var rs *rmq.ErrRpcStatus
	if errors.As(err, &rs) {
		return rs.Code
	}
	return 0
}

// clientTypeRefusal is how Go v5.1.2 refuses, before sending, a message
// whose type the route's accept_message_types lack (producer.go send).
const clientTypeRefusal = "current message type not match with topic accept message types"

// rawSend sends one message with a raw client (no client-side type
// check) and returns the entry's code.
func rawSend(t *testing.T, c *cluster, m *v2.Message) v2.Code {
	t.Helper()
	cli, _ := dial(t, c.grpcAddr, true)
	r, err := cli.SendMessage(withClient("raw-typed"), &v2.SendMessageRequest{Messages: []*v2.Message{m}})
	if err != nil {
		t.Fatal(err)
	}
	return r.Status.Code
}

// v4Collector consumes a topic with the 4.x push consumer and keeps what
// arrives, with when.
type v4Collector struct {
	mu   sync.Mutex
	msgs []*primitive.MessageExt
	at   map[string]time.Time // body -> arrival
}

func collect(t *testing.T, c *cluster, topic, group string) *v4Collector {
	t.Helper()
	col := &v4Collector{at: map[string]time.Time{}}
	pc, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{c.ns.addr}), consumer.WithGroupName(group),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset), consumer.WithInstance(group))
	if err != nil {
		t.Fatal(err)
	}
	err = pc.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		col.mu.Lock()
		defer col.mu.Unlock()
		for _, m := range msgs {
			col.msgs = append(col.msgs, m)
			if _, ok := col.at[string(m.Body)]; !ok {
				col.at[string(m.Body)] = time.Now()
			}
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Shutdown() })
	return col
}

func (col *v4Collector) count() int {
	col.mu.Lock()
	defer col.mu.Unlock()
	return len(col.at)
}

func send(t *testing.T, p rmq.Producer, m *rmq.Message) ([]*rmq.SendReceipt, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.Send(ctx, m)
}

// TestV5FIFO: FIFO messages of three groups, sent interleaved by the
// official v5 producer to a FIFO topic (made with mqadmin updateTopic -a),
// land each group in one queue, the queue Java's proxy picks (Guava's
// consistent hash: broker/grpcsvc TestQueueForGroupMatchesGuava), in send
// order. A NORMAL message to the FIFO topic is refused with 40014.
func TestV5FIFO(t *testing.T) {
	c := startCluster(t)
	const topic, perGroup = "GrpcFifo", 10
	typedTopic(t, c, topic, "FIFO", 4)
	p := newV5Producer(t, c, topic)
	want := map[string]int{"g-a": 1, "g-b": 2, "g-c": 0} // QueueForGroup(group, 4)
	groups := []string{"g-a", "g-b", "g-c"}
	for i := range perGroup {
		for _, g := range groups {
			m := &rmq.Message{Topic: topic, Body: []byte(fmt.Sprintf("%s/%d", g, i))}
			m.SetMessageGroup(g)
			if _, err := send(t, p, m); err != nil {
				t.Fatalf("FIFO send %s/%d: %v", g, i, err)
			}
		}
	}
	// The route says FIFO only: the official client refuses by itself,
	// and the broker refuses a raw client's NORMAL message.
	if _, err := send(t, p, &rmq.Message{Topic: topic, Body: []byte("normal")}); err == nil || !strings.Contains(err.Error(), clientTypeRefusal) {
		t.Errorf("NORMAL message to a FIFO topic: %v, want the client's own refusal", err)
	}
	if code := rawSend(t, c, msg(topic, "normal-raw")); code != v2.Code_MESSAGE_PROPERTY_CONFLICT_WITH_TYPE {
		t.Errorf("raw NORMAL message to a FIFO topic: %v, want 40014", code)
	}

	col := collect(t, c, topic, "GID_FIFO_CHECK")
	waitFor(t, 60*time.Second, "every FIFO message", func() bool { return col.count() == perGroup*len(groups) })
	col.mu.Lock()
	defer col.mu.Unlock()
	byGroup := map[string][]*primitive.MessageExt{}
	for _, m := range col.msgs {
		if strings.HasPrefix(string(m.Body), "normal") {
			t.Errorf("the refused NORMAL message was stored")
		}
		g, _, _ := strings.Cut(string(m.Body), "/")
		byGroup[g] = append(byGroup[g], m)
		if m.GetProperty("__SHARDINGKEY") != g {
			t.Errorf("%s: __SHARDINGKEY %q", m.Body, m.GetProperty("__SHARDINGKEY"))
		}
	}
	for _, g := range groups {
		ms := byGroup[g]
		sort.Slice(ms, func(i, j int) bool { return ms[i].QueueOffset < ms[j].QueueOffset })
		for i, m := range ms {
			if m.Queue.QueueId != want[g] {
				t.Errorf("%s in queue %d, want %d", m.Body, m.Queue.QueueId, want[g])
			}
			if string(m.Body) != fmt.Sprintf("%s/%d", g, i) {
				t.Errorf("group %s: queue offset order has %s at %d", g, m.Body, i)
			}
		}
	}
}

// TestV5Delay: a message with a delivery time 3 s ahead reaches the 4.x
// consumer not before that time, and after a normal message sent later
// (MIXED topic); a delivery time beyond timerMaxDelaySec is refused with
// ILLEGAL_DELIVERY_TIME, and a delay message to a NORMAL topic with 40014.
func TestV5Delay(t *testing.T) {
	c := startCluster(t, "timerMaxDelaySec=3600")
	const topic = "GrpcDelay"
	typedTopic(t, c, topic, "MIXED", 2)
	createTopic(t, c, "GrpcPlain", 2)
	p := newV5Producer(t, c, topic, "GrpcPlain")
	col := collect(t, c, topic, "GID_DELAY_CHECK")

	deliverAt := time.Now().Add(3 * time.Second)
	d := &rmq.Message{Topic: topic, Body: []byte("delayed")}
	d.SetDelayTimestamp(deliverAt)
	if _, err := send(t, p, d); err != nil {
		t.Fatalf("delay send: %v", err)
	}
	if _, err := send(t, p, &rmq.Message{Topic: topic, Body: []byte("now")}); err != nil {
		t.Fatalf("normal send: %v", err)
	}
	far := &rmq.Message{Topic: topic, Body: []byte("far")}
	far.SetDelayTimestamp(time.Now().Add(2 * time.Hour))
	if _, err := send(t, p, far); rpcCode(err) != int32(v2.Code_ILLEGAL_DELIVERY_TIME) {
		t.Errorf("delivery 2 h ahead with timerMaxDelaySec=3600: %v, want ILLEGAL_DELIVERY_TIME", err)
	}
	plain := msg("GrpcPlain", "x")
	plain.SystemProperties.MessageType = v2.MessageType_DELAY
	plain.SystemProperties.DeliveryTimestamp = timestamppb.New(time.Now().Add(time.Second))
	if code := rawSend(t, c, plain); code != v2.Code_MESSAGE_PROPERTY_CONFLICT_WITH_TYPE {
		t.Errorf("delay message to a NORMAL topic: %v, want 40014", code)
	}

	waitFor(t, 60*time.Second, "the delayed and the normal message", func() bool { return col.count() == 2 })
	col.mu.Lock()
	defer col.mu.Unlock()
	if got := col.at["delayed"]; got.Before(deliverAt) {
		t.Errorf("delivered at %s, before its delivery time %s", got.Format(time.StampMilli), deliverAt.Format(time.StampMilli))
	}
	if !col.at["now"].Before(col.at["delayed"]) {
		t.Errorf("the normal message sent after the delayed one arrived at %s, the delayed one at %s", col.at["now"], col.at["delayed"])
	}
	if _, ok := col.at["far"]; ok {
		t.Error("the refused message was stored")
	}
}

// TestV5Transaction: a committed transactional message reaches the 4.x
// consumer, a rolled back one never does (a later normal message on a
// MIXED topic marks that the consumer is past it), a transaction to a
// NORMAL topic is refused with 40014. Two transactions left open are
// checked back over the producer's Telemetry stream
// (recover_orphaned_transaction_command) and resolved by the Go v5
// checker: the one it commits is delivered, the one it rolls back not.
func TestV5Transaction(t *testing.T) {
	c := startCluster(t, "transactionTimeOut=1000", "transactionCheckInterval=300")
	const topic = "GrpcTx"
	typedTopic(t, c, topic, "MIXED", 2)
	createTopic(t, c, "GrpcTxPlain", 2)
	checked := make(chan string, 10)
	p, err := rmq.NewProducer(&rmq.Config{Endpoint: c.grpcAddr, Credentials: &credentials.SessionCredentials{}}, rmq.WithTopics(topic, "GrpcTxPlain"),
		rmq.WithTransactionChecker(&rmq.TransactionChecker{Check: func(m *rmq.MessageView) rmq.TransactionResolution {
			select {
			case checked <- string(m.GetBody()):
			default: // a repeated check-back
			}
			if string(m.GetBody()) == "orphan-commit" {
				return rmq.COMMIT
			}
			return rmq.ROLLBACK
		}}))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.GracefulStop()
	col := collect(t, c, topic, "GID_TX_CHECK")

	txSend := func(topic, body string) (rmq.Transaction, error) {
		tx := p.BeginTransaction()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := p.SendWithTransaction(ctx, &rmq.Message{Topic: topic, Body: []byte(body)}, tx)
		return tx, err
	}
	tx, err := txSend(topic, "rolled-back")
	if err != nil {
		t.Fatalf("half message: %v", err)
	}
	if err := tx.RollBack(); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	tx, err = txSend(topic, "committed")
	if err != nil {
		t.Fatalf("half message: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
	for _, b := range []string{"orphan-commit", "orphan-rollback"} {
		if _, err := txSend(topic, b); err != nil {
			t.Fatalf("half message %s: %v", b, err)
		}
	}
	seen := map[string]bool{}
	for len(seen) < 2 {
		select {
		case b := <-checked:
			seen[b] = true
		case <-time.After(60 * time.Second):
			t.Fatalf("check-backs received: %v, want orphan-commit and orphan-rollback", seen)
		}
	}
	if seen["committed"] || seen["rolled-back"] {
		t.Errorf("a transaction the producer ended was checked back: %v", seen)
	}
	waitFor(t, 60*time.Second, "the checked-back commit", func() bool {
		col.mu.Lock()
		defer col.mu.Unlock()
		_, ok := col.at["orphan-commit"]
		return ok
	})
	if _, err := send(t, p, &rmq.Message{Topic: topic, Body: []byte("after")}); err != nil {
		t.Fatalf("normal send: %v", err)
	}
	plain := msg("GrpcTxPlain", "x")
	plain.SystemProperties.MessageType = v2.MessageType_TRANSACTION
	if code := rawSend(t, c, plain); code != v2.Code_MESSAGE_PROPERTY_CONFLICT_WITH_TYPE {
		t.Errorf("transaction on a NORMAL topic: %v, want 40014", code)
	}
	waitFor(t, 60*time.Second, "the committed and the later normal message", func() bool {
		col.mu.Lock()
		defer col.mu.Unlock()
		_, ok := col.at["after"]
		return ok
	})
	col.mu.Lock()
	defer col.mu.Unlock()
	if _, ok := col.at["committed"]; !ok {
		t.Errorf("the committed message was not delivered: %v", col.at)
	}
	for _, b := range []string{"rolled-back", "orphan-rollback"} {
		if _, ok := col.at[b]; ok {
			t.Errorf("the rolled back message %s was delivered", b)
		}
	}
	for _, m := range col.msgs {
		if string(m.Body) == "committed" && m.GetProperty("TRAN_MSG") != "true" {
			t.Errorf("committed message: TRAN_MSG %q", m.GetProperty("TRAN_MSG"))
		}
	}
}

// TestUpdateTopicAttributes: Java 5's mqadmin updateTopic -a and the
// noun-verb topic update -a set message.type, which the route's
// accept_message_types and the send check follow; a bad attribute is
// refused by the broker and changes nothing.
func TestUpdateTopicAttributes(t *testing.T) {
	c := startCluster(t)
	typedTopic(t, c, "AttrTx", "TRANSACTION", 2)
	if out, err := mqadmin(t, c, "updateTopic", "-b", c.broker.addr, "-t", "AttrTx", "-a", "+message.type=ORDERED"); err == nil || !strings.Contains(out, "not one of") {
		t.Errorf("bad value accepted: %v\n%s", err, out)
	}
	cli, _ := dial(t, c.grpcAddr, true)
	route := func(topic string) []v2.MessageType {
		r, err := cli.QueryRoute(withClient("attr-test"), &v2.QueryRouteRequest{Topic: &v2.Resource{Name: topic}})
		if err != nil || r.Status.Code != v2.Code_OK || len(r.MessageQueues) == 0 {
			t.Fatalf("route %s: %v %v", topic, r, err)
		}
		return r.MessageQueues[0].AcceptMessageTypes
	}
	if got := route("AttrTx"); len(got) != 1 || got[0] != v2.MessageType_TRANSACTION {
		t.Errorf("AttrTx accepts %v", got)
	}
	if out, err := mqadmin(t, c, "topic", "update", "-b", c.broker.addr, "-t", "AttrMixed", "-q", "2", "-a", "+message.type=MIXED"); err != nil {
		t.Fatalf("topic update -a: %v\n%s", err, out)
	}
	if got := route("AttrMixed"); len(got) != 4 {
		t.Errorf("AttrMixed accepts %v", got)
	}
	// mqadmin shows it: topic route -o json adds messageTypes per master,
	// the classic topicRoute table a #MessageType column.
	out, err := mqadmin(t, c, "topic", "route", "-t", "AttrMixed", "-o", "json")
	var rj struct {
		QueueDatas   []json.RawMessage `json:"queueDatas"`
		MessageTypes map[string]string `json:"messageTypes"`
	}
	if err != nil || json.Unmarshal([]byte(out), &rj) != nil || len(rj.QueueDatas) != 1 || len(rj.MessageTypes) != 1 {
		t.Fatalf("topic route -o json: %v\n%s", err, out)
	}
	for _, mt := range rj.MessageTypes {
		if mt != "MIXED" {
			t.Errorf("topic route messageTypes %v", rj.MessageTypes)
		}
	}
	if out, err := mqadmin(t, c, "topicRoute", "-t", "AttrTx"); err != nil || !strings.Contains(out, "#MessageType") || !strings.Contains(out, "TRANSACTION") {
		t.Errorf("topicRoute table: %v\n%s", err, out)
	}
	// The send check reads the topic config, not the route cache.
	if code := rawSend(t, c, msg("AttrTx", "x")); code != v2.Code_MESSAGE_PROPERTY_CONFLICT_WITH_TYPE {
		t.Errorf("NORMAL to a TRANSACTION topic: %v", code)
	}
	if out, err := mqadmin(t, c, "updateTopic", "-b", c.broker.addr, "-t", "AttrTx", "-r", "2", "-w", "2", "-a", "-message.type"); err != nil {
		t.Fatalf("remove the attribute: %v\n%s", err, out)
	}
	if code := rawSend(t, c, msg("AttrTx", "y")); code != v2.Code_OK {
		t.Errorf("NORMAL to the topic after -message.type: %v", code)
	}
}

// TestUpdateSubGroupOrderlyAndRetryPolicy: Java 5's updateSubGroup -o and
// -p store consumeMessageOrderly and groupRetryPolicy, group list shows
// them, and a bad policy is refused before anything is sent.
func TestUpdateSubGroupOrderlyAndRetryPolicy(t *testing.T) {
	c := startCluster(t)
	policy := `{"type":"EXPONENTIAL","exponentialRetryPolicy":{"initial":5000,"max":7200000,"multiplier":2}}`
	if out, err := mqadmin(t, c, "updateSubGroup", "-b", c.broker.addr, "-g", "GID_5X", "-o", "true", "-p", policy); err != nil {
		t.Fatalf("updateSubGroup: %v\n%s", err, out)
	}
	if out, err := mqadmin(t, c, "updateSubGroup", "-b", c.broker.addr, "-g", "GID_BAD", "-p", `{"type":"LINEAR"}`); err == nil || !strings.Contains(out, "neither") {
		t.Errorf("bad policy: %v\n%s", err, out)
	}
	out, err := mqadmin(t, c, "group", "list", "-b", c.broker.addr, "-o", "json")
	if err != nil {
		t.Fatalf("group list: %v\n%s", err, out)
	}
	var groups []struct {
		Config struct {
			GroupName             string          `json:"groupName"`
			ConsumeMessageOrderly bool            `json:"consumeMessageOrderly"`
			GroupRetryPolicy      json.RawMessage `json:"groupRetryPolicy"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(out), &groups); err != nil {
		t.Fatalf("group list json: %v\n%s", err, out)
	}
	found := false
	for _, g := range groups {
		switch g.Config.GroupName {
		case "GID_5X":
			found = true
			var compact bytes.Buffer
			_ = json.Compact(&compact, g.Config.GroupRetryPolicy)
			if !g.Config.ConsumeMessageOrderly || compact.String() != policy {
				t.Errorf("GID_5X: orderly %v policy %s", g.Config.ConsumeMessageOrderly, g.Config.GroupRetryPolicy)
			}
		case "GID_BAD":
			t.Error("the group with the bad policy was created")
		}
	}
	if !found {
		t.Errorf("GID_5X not listed:\n%s", out)
	}
}
