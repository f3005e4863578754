package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

var instanceSeq atomic.Int64

// instance gives every client its own rmqClient inside this test process;
// the Go client otherwise shares one per ip@pid.
func instance(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), instanceSeq.Add(1))
}

func createTopic(t *testing.T, c *cluster, topic string, queues int) {
	t.Helper()
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{c.ns.addr})))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	err = adm.CreateTopic(context.Background(), admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(c.broker.addr),
		admin.WithReadQueueNums(queues), admin.WithWriteQueueNums(queues))
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

func newProducer(t *testing.T, ns string, opts ...producer.Option) rocketmq.Producer {
	t.Helper()
	opts = append([]producer.Option{
		producer.WithNameServer([]string{ns}),
		producer.WithGroupName(instance("PG")),
		producer.WithInstanceName(instance("p")),
		producer.WithRetry(2),
		producer.WithSendMsgTimeout(5 * time.Second),
	}, opts...)
	p, err := rocketmq.NewProducer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// collector records what a push consumer received, by message body.
type collector struct {
	mu   sync.Mutex
	msgs map[string]*primitive.MessageExt
	n    atomic.Int64
}

func newCollector() *collector { return &collector{msgs: map[string]*primitive.MessageExt{}} }

func (c *collector) consume(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	c.mu.Lock()
	for _, m := range msgs {
		c.msgs[string(m.Body)] = m
	}
	c.mu.Unlock()
	c.n.Add(int64(len(msgs)))
	return consumer.ConsumeSuccess, nil
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

func (c *collector) get(body string) *primitive.MessageExt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.msgs[body]
}

func newPushConsumer(t *testing.T, ns, group, topic string, sel consumer.MessageSelector, col *collector, opts ...consumer.Option) rocketmq.PushConsumer {
	t.Helper()
	opts = append([]consumer.Option{
		consumer.WithNameServer([]string{ns}),
		consumer.WithGroupName(group),
		consumer.WithInstance(instance("c")),
	}, opts...)
	pc, err := rocketmq.NewPushConsumer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Subscribe(topic, sel, col.consume); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatalf("start consumer: %v", err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = pc.Shutdown()
		}
	})
	return pc
}

func TestSendModesAndConsume(t *testing.T) {
	c := startCluster(t)
	const topic = "SendModes"
	createTopic(t, c, topic, 4)
	p := newProducer(t, c.ns.addr)
	ctx := context.Background()

	// Sync sends with tags, keys and user properties.
	sent := map[string]*primitive.SendResult{}
	for i := 0; i < 20; i++ {
		m := primitive.NewMessage(topic, []byte(fmt.Sprintf("sync-%d", i)))
		m.WithTag("TagA").WithKeys([]string{fmt.Sprintf("key-%d", i), "common"})
		m.WithProperty("color", "blue")
		r, err := p.SendSync(ctx, m)
		if err != nil {
			t.Fatalf("sync send %d: %v", i, err)
		}
		if r.Status != primitive.SendOK || len(r.OffsetMsgID) != 32 || r.MsgID == "" {
			t.Fatalf("send result %+v", r)
		}
		sent[string(m.Body)] = r
	}
	// Async sends.
	var wg sync.WaitGroup
	var asyncErr atomic.Value
	for i := 0; i < 20; i++ {
		wg.Add(1)
		err := p.SendAsync(ctx, func(_ context.Context, r *primitive.SendResult, err error) {
			defer wg.Done()
			if err != nil {
				asyncErr.Store(err)
			}
		}, primitive.NewMessage(topic, []byte(fmt.Sprintf("async-%d", i))).WithTag("TagB"))
		if err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if err := asyncErr.Load(); err != nil {
		t.Fatalf("async send: %v", err)
	}
	// Oneway sends.
	for i := 0; i < 10; i++ {
		if err := p.SendOneWay(ctx, primitive.NewMessage(topic, []byte(fmt.Sprintf("oneway-%d", i)))); err != nil {
			t.Fatal(err)
		}
	}
	// A batch.
	var batch []*primitive.Message
	for i := 0; i < 10; i++ {
		batch = append(batch, primitive.NewMessage(topic, []byte(fmt.Sprintf("batch-%d", i))).WithTag("TagA"))
	}
	br, err := p.SendSync(ctx, batch...)
	if err != nil || br.Status != primitive.SendOK {
		t.Fatalf("batch send: %v %+v", err, br)
	}
	// A large, compressed body (the client zips bodies >= 4 KiB).
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	if _, err := p.SendSync(ctx, primitive.NewMessage(topic, big)); err != nil {
		t.Fatalf("1 MiB send: %v", err)
	}

	all := newCollector()
	newPushConsumer(t, c.ns.addr, "CG_all", topic, consumer.MessageSelector{}, all, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	tagA := newCollector()
	newPushConsumer(t, c.ns.addr, "CG_tagA", topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "TagA"}, tagA, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))

	waitFor(t, 60*time.Second, "all 61 messages", func() bool { return all.count() == 61 })
	waitFor(t, 30*time.Second, "30 TagA messages", func() bool { return tagA.count() == 30 })
	time.Sleep(time.Second)
	if n := tagA.count(); n != 30 {
		t.Fatalf("tag filter delivered %d messages, want 30", n)
	}
	for body, r := range sent {
		m := all.get(body)
		if m == nil {
			t.Fatalf("%s not consumed", body)
		}
		if m.GetTags() != "TagA" || m.GetProperty("color") != "blue" || m.MsgId != r.MsgID || m.OffsetMsgId != r.OffsetMsgID || m.QueueOffset != r.QueueOffset || int(m.Queue.QueueId) != r.MessageQueue.QueueId {
			t.Fatalf("consumed %s does not match its send: %+v vs %+v", body, m, r)
		}
		if m.GetProperty("CLUSTER") != "DefaultCluster" || m.GetProperty("WAIT") != "" {
			t.Fatalf("stored properties: %v", m.GetProperties())
		}
	}
	if m := all.get(string(big)); m == nil || len(m.Body) != len(big) {
		t.Fatal("1 MiB message not consumed intact")
	}
}

func TestExplicitQueueSelection(t *testing.T) {
	c := startCluster(t)
	const topic = "Manual"
	createTopic(t, c, topic, 4)
	p := newProducer(t, c.ns.addr, producer.WithQueueSelector(producer.NewManualQueueSelector()))
	for i := 0; i < 12; i++ {
		m := primitive.NewMessage(topic, []byte(fmt.Sprintf("m-%d", i)))
		m.Queue = &primitive.MessageQueue{Topic: topic, BrokerName: "broker-a", QueueId: 2}
		r, err := p.SendSync(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		if r.MessageQueue.QueueId != 2 || r.QueueOffset != int64(i) {
			t.Fatalf("send %d landed on queue %d offset %d", i, r.MessageQueue.QueueId, r.QueueOffset)
		}
	}
	col := newCollector()
	newPushConsumer(t, c.ns.addr, "CG_manual", topic, consumer.MessageSelector{}, col, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	waitFor(t, 30*time.Second, "12 messages", func() bool { return col.count() == 12 })
	for i := 0; i < 12; i++ {
		m := col.get(fmt.Sprintf("m-%d", i))
		if m.Queue.QueueId != 2 || m.QueueOffset != int64(i) {
			t.Fatalf("message %d on queue %d offset %d", i, m.Queue.QueueId, m.QueueOffset)
		}
	}
}

func newPullConsumer(t *testing.T, ns, group, topic string) rocketmq.PullConsumer {
	t.Helper()
	pc, err := rocketmq.NewPullConsumer(consumer.WithNameServer([]string{ns}), consumer.WithGroupName(group), consumer.WithInstance(instance("pull")))
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Subscribe(topic, consumer.MessageSelector{}); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Shutdown() })
	return pc
}
