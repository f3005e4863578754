package grpc

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	rmq "github.com/apache/rocketmq-clients/golang/v5"
	"github.com/apache/rocketmq-clients/golang/v5/credentials"
)

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

// newV5Producer starts the official Go v5.1.2 producer against the
// broker's gRPC port (it always dials TLS).
func newV5Producer(t *testing.T, c *cluster, topics ...string) rmq.Producer {
	t.Helper()
	p, err := rmq.NewProducer(&rmq.Config{Endpoint: c.grpcAddr, Credentials: &credentials.SessionCredentials{}}, rmq.WithTopics(topics...))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("start the v5 producer: %v", err)
	}
	t.Cleanup(func() { _ = p.GracefulStop() })
	return p
}

// TestV5ProducerToV4PushConsumer sends with the official 5.x Go producer
// over gRPC (TLS) and consumes with the 4.x Go push consumer over
// remoting: body, tag, keys, user properties and the message id arrive
// as sent, every message once. The route must point at the broker's
// own gRPC port, or the producer could not send at all.
func TestV5ProducerToV4PushConsumer(t *testing.T) {
	c := startCluster(t)
	const topic, n = "GrpcNormal", 40
	createTopic(t, c, topic, 4)
	p := newV5Producer(t, c, topic)

	ids := map[string]string{} // body -> message id
	offsets := map[int64]int{}
	for i := range n {
		m := &rmq.Message{Topic: topic, Body: []byte(fmt.Sprintf("v5-%d", i))}
		m.SetTag("TagA")
		m.SetKeys(fmt.Sprintf("key-%d", i), "common")
		m.AddProperty("color", "blue")
		m.AddProperty("seq", fmt.Sprint(i))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := p.Send(ctx, m)
		cancel()
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if len(r) != 1 || r[0].MessageID == "" || r[0].Offset < 0 {
			t.Fatalf("send %d: receipts %+v", i, r)
		}
		ids[string(m.Body)] = r[0].MessageID
		offsets[r[0].Offset]++
	}
	// Round robin over 4 queues: each queue offset 0..9 appears 4 times.
	if len(offsets) != n/4 {
		t.Errorf("queue offsets %v: want %d distinct, each from 4 queues", offsets, n/4)
	}
	// A 3 MiB body passes gRPC's limits; its tag keeps it from the
	// consumer below (broker-side tag filtering of 5.x messages).
	big := &rmq.Message{Topic: topic, Body: make([]byte, 3<<20)}
	big.SetTag("TagB")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if _, err := p.Send(ctx, big); err != nil {
		t.Fatalf("3 MiB send: %v", err)
	}
	cancel()

	var mu sync.Mutex
	got := map[string]*primitive.MessageExt{}
	dups := 0
	pc, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{c.ns.addr}), consumer.WithGroupName("GID_V4_READS_V5"),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset), consumer.WithInstance("v4-reader"))
	if err != nil {
		t.Fatal(err)
	}
	err = pc.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "TagA"}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			if got[string(m.Body)] != nil {
				dups++
			}
			got[string(m.Body)] = m
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	defer pc.Shutdown()
	waitFor(t, 60*time.Second, "the v4 consumer to receive every v5 message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == n
	})
	mu.Lock()
	defer mu.Unlock()
	if dups != 0 {
		t.Errorf("%d messages delivered twice", dups)
	}
	if len(got) != n {
		t.Errorf("%d messages delivered, want %d (the TagB one filtered out)", len(got), n)
	}
	for i := range n {
		body := fmt.Sprintf("v5-%d", i)
		m := got[body]
		if m.GetTags() != "TagA" {
			t.Errorf("%s: tag %q", body, m.GetTags())
		}
		if keys := m.GetKeys(); keys != fmt.Sprintf("key-%d common", i) {
			t.Errorf("%s: keys %q", body, keys)
		}
		if m.GetProperty("color") != "blue" || m.GetProperty("seq") != fmt.Sprint(i) {
			t.Errorf("%s: properties %v", body, m.GetProperties())
		}
		if m.MsgId != ids[body] || m.GetProperty("UNIQ_KEY") != ids[body] {
			t.Errorf("%s: message id %q (UNIQ_KEY %q), the producer got %q", body, m.MsgId, m.GetProperty("UNIQ_KEY"), ids[body])
		}
		if m.GetProperty("PGROUP") != topic {
			t.Errorf("%s: PGROUP %q, want the topic (the proxy's producer group)", body, m.GetProperty("PGROUP"))
		}
		if !strings.HasPrefix(ids[body], "01") || len(ids[body]) != 34 {
			t.Errorf("%s: message id %q is not a 5.x id", body, ids[body])
		}
	}
}
