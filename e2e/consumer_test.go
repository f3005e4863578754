package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

func sendN(t *testing.T, p rocketmq.Producer, topic, prefix string, n int) []*primitive.SendResult {
	t.Helper()
	var out []*primitive.SendResult
	for i := 0; i < n; i++ {
		r, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(fmt.Sprintf("%s-%d", prefix, i))))
		if err != nil {
			t.Fatalf("send %s-%d: %v", prefix, i, err)
		}
		out = append(out, r)
	}
	return out
}

// ownedQueues tracks which consumer instance received which queues.
type ownedQueues struct {
	mu    sync.Mutex
	owner map[int]map[string]bool // queue → instance names
	total int
}

func (o *ownedQueues) handler(name string) func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	return func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, m := range msgs {
			if o.owner[m.Queue.QueueId] == nil {
				o.owner[m.Queue.QueueId] = map[string]bool{}
			}
			o.owner[m.Queue.QueueId][name] = true
			o.total++
		}
		return consumer.ConsumeSuccess, nil
	}
}

func TestClusteringRebalance(t *testing.T) {
	c := startCluster(t)
	const topic, group = "Rebalance", "CG_rebalance"
	createTopic(t, c, topic, 4)
	p := newProducer(t, c.ns.addr)
	owned := &ownedQueues{owner: map[int]map[string]bool{}}
	var consumers []rocketmq.PushConsumer
	for i := 0; i < 2; i++ {
		name := fmt.Sprintf("member-%d", i)
		pc, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{c.ns.addr}), consumer.WithGroupName(group),
			consumer.WithInstance(instance(name)), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
		if err != nil {
			t.Fatal(err)
		}
		if err := pc.Subscribe(topic, consumer.MessageSelector{}, owned.handler(name)); err != nil {
			t.Fatal(err)
		}
		if err := pc.Start(); err != nil {
			t.Fatal(err)
		}
		consumers = append(consumers, pc)
	}
	defer func() {
		for _, pc := range consumers {
			_ = pc.Shutdown()
		}
	}()
	// Both members see each other through GET_CONSUMER_LIST_BY_GROUP and the
	// broker's NOTIFY_CONSUMER_IDS_CHANGED; each then owns two queues.
	time.Sleep(3 * time.Second)
	sendN(t, p, topic, "r", 80)
	waitFor(t, 40*time.Second, "80 messages across both members", func() bool {
		owned.mu.Lock()
		defer owned.mu.Unlock()
		return owned.total >= 80
	})
	owned.mu.Lock()
	members := map[string]int{}
	for q, names := range owned.owner {
		if len(names) != 1 {
			t.Errorf("queue %d consumed by %v: clustering must give each queue one owner", q, names)
		}
		for n := range names {
			members[n]++
		}
	}
	owned.mu.Unlock()
	if len(members) != 2 {
		t.Fatalf("queues owned per member %v, want both members to own queues", members)
	}

	// One member leaves: the other takes over all four queues.
	_ = consumers[1].Shutdown()
	consumers = consumers[:1]
	owned.mu.Lock()
	owned.owner = map[int]map[string]bool{}
	owned.total = 0
	owned.mu.Unlock()
	time.Sleep(3 * time.Second)
	sendN(t, p, topic, "after", 40)
	waitFor(t, 60*time.Second, "40 messages after rebalance", func() bool {
		owned.mu.Lock()
		defer owned.mu.Unlock()
		return len(owned.owner) == 4 && owned.total >= 40
	})
	owned.mu.Lock()
	defer owned.mu.Unlock()
	for q, names := range owned.owner {
		if !names["member-0"] {
			t.Fatalf("queue %d not taken over by the remaining member: %v", q, names)
		}
	}
}

func TestBroadcasting(t *testing.T) {
	c := startCluster(t)
	const topic = "Broadcast"
	createTopic(t, c, topic, 2)
	var cols []*collector
	for i := 0; i < 2; i++ {
		col := newCollector()
		newPushConsumer(t, c.ns.addr, "CG_broadcast", topic, consumer.MessageSelector{}, col,
			consumer.WithConsumerModel(consumer.BroadCasting), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
		cols = append(cols, col)
	}
	p := newProducer(t, c.ns.addr)
	sendN(t, p, topic, "b", 20)
	for i, col := range cols {
		waitFor(t, 30*time.Second, fmt.Sprintf("consumer %d to see all 20", i), func() bool { return col.count() == 20 })
	}
}

func TestPullConsumer(t *testing.T) {
	c := startCluster(t)
	const topic = "PullTopic"
	createTopic(t, c, topic, 2)
	p := newProducer(t, c.ns.addr)
	sent := sendN(t, p, topic, "pull", 30)
	waitDispatched(t, c.broker.addr, topic, 2, len(sent))
	got := map[string]bool{}
	for q := 0; q < 2; q++ {
		for _, m := range pullAll(t, c, "CG_pull", topic, q) {
			got[string(m.Body)] = true
		}
	}
	if len(got) != len(sent) {
		t.Fatalf("pulled %d distinct messages, sent %d", len(got), len(sent))
	}
}

func TestConsumeFromWhere(t *testing.T) {
	c := startCluster(t)
	const topic = "FromWhere"
	createTopic(t, c, topic, 1)
	p := newProducer(t, c.ns.addr)
	sendN(t, p, topic, "old", 10)

	// A new group with CONSUME_FROM_LAST_OFFSET on a young queue still reads
	// from 0, as Java brokers answer QUERY_CONSUMER_OFFSET (Java's
	// ConsumerManageProcessor.queryConsumerOffset).
	last := newCollector()
	newPushConsumer(t, c.ns.addr, "CG_last", topic, consumer.MessageSelector{}, last, consumer.WithConsumeFromWhere(consumer.ConsumeFromLastOffset))
	first := newCollector()
	newPushConsumer(t, c.ns.addr, "CG_first", topic, consumer.MessageSelector{}, first, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	waitFor(t, 30*time.Second, "first-offset group reads the 10 old messages", func() bool { return first.count() == 10 })
	waitFor(t, 30*time.Second, "last-offset group on a young queue reads from 0", func() bool { return last.count() == 10 })

	// CONSUME_FROM_TIMESTAMP: the client sends SEARCH_OFFSET_BY_TIMESTAMP
	// only when the broker has no offset, which for a young queue it has (0),
	// so check the broker's answer to that request directly.
	time.Sleep(1100 * time.Millisecond)
	mark := time.Now()
	time.Sleep(1100 * time.Millisecond)
	sendN(t, p, topic, "new", 5)
	off := searchOffset(t, c.broker.addr, topic, 0, mark.UnixMilli())
	if off != 10 {
		t.Fatalf("offset by timestamp = %d, want 10 (first message after the mark)", off)
	}
}
