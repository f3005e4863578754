package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// TestConsumeFromSlaveWhileMasterDown: a SYNC_MASTER is killed (-9) while a
// Go push consumer is running; every message the producer had SendOK for
// reaches the consumer from the slave (the master is gone), and after the
// master returns nothing is missing and consumption goes on (ha.md §5.7
// invariant 6; the classic SYNC_MASTER scenario).
func TestConsumeFromSlaveWhileMasterDown(t *testing.T) {
	ns := startNamesrv(t)
	mdir := newBrokerDir(t)
	master := startBroker(t, mdir, ns.addr, "brokerRole=SYNC_MASTER")
	slave := startSlave(t, newBrokerDir(t), ns.addr)
	c := &cluster{ns: ns, broker: master, dir: mdir}
	createTopic(t, c, "FailT", 1)
	// Pulls on the slave need the topic there: the metadata sync brings it.
	waitFor(t, slaveSyncWait, "topic synced to the slave", func() bool { return slaveHasTopic(t, slave.addr, "FailT") })

	p := newProducer(t, ns.addr)
	send := func(prefix string, n int) []string {
		var bodies []string
		for i := 0; i < n; i++ {
			body := fmt.Sprintf("%s-%d", prefix, i)
			r, err := p.SendSync(context.Background(), primitive.NewMessage("FailT", []byte(body)))
			if err != nil || r.Status != primitive.SendOK {
				t.Fatalf("send %s: %v %v", body, r, err)
			}
			bodies = append(bodies, body)
		}
		return bodies
	}
	sent := send("before", 10)

	// One message per pull and at most two cached: while the callback is
	// held, the consumer cannot fetch the rest of a batch from the master.
	gate := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	col := newCollector()
	handler := func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			if strings.HasPrefix(string(m.Body), "during") {
				<-gate
			}
		}
		return col.consume(ctx, msgs...)
	}
	pc, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{ns.addr}), consumer.WithGroupName("FailG"),
		consumer.WithInstance(instance("c")), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
		consumer.WithPullBatchSize(1), consumer.WithPullThresholdForQueue(1), consumer.WithConsumeMessageBatchMaxSize(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Subscribe("FailT", consumer.MessageSelector{}, handler); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Shutdown() })
	t.Cleanup(open) // runs first: a held callback would stop Shutdown
	waitFor(t, 60*time.Second, "the first 10 messages consumed from the master", func() bool { return col.count() == 10 })

	sent = append(sent, send("during", 20)...)
	master.kill()
	open()
	// Routes refresh every 30 s; then the consumer falls back to the slave.
	waitFor(t, 120*time.Second, "every SendOK message consumed while the master is down", func() bool { return col.count() == len(sent) })

	// The master returns on its address and data; consumption goes on.
	startBroker(t, mdir, ns.addr, append([]string{"brokerRole=SYNC_MASTER"}, master.samePorts()...)...)
	waitFor(t, 60*time.Second, "a send accepted by the returned master", func() bool {
		r, err := p.SendSync(context.Background(), primitive.NewMessage("FailT", []byte("after-probe")))
		return err == nil && r.Status == primitive.SendOK
	})
	sent = append(sent, "after-probe")
	sent = append(sent, send("after", 10)...)
	waitFor(t, 120*time.Second, "every message consumed after the master returned", func() bool {
		for _, b := range sent {
			if col.get(b) == nil {
				return false
			}
		}
		return true
	})
}
