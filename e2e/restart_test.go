package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/mqops/mqops/wire"
)

// TestRestartKeepsTopicsGroupsOffsets: topics, groups and committed offsets
// survive a consumer restart and a clean broker restart, so a restarted
// consumer continues where it stopped.
func TestRestartKeepsTopicsGroupsOffsets(t *testing.T) {
	c := startCluster(t)
	const topic, group = "Durable", "CG_durable"
	createTopic(t, c, topic, 2)
	p := newProducer(t, c.ns.addr)
	sendN(t, p, topic, "first", 20)

	col := newCollector()
	pc := newPushConsumer(t, c.ns.addr, group, topic, consumer.MessageSelector{}, col, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	waitFor(t, 30*time.Second, "20 messages", func() bool { return col.count() == 20 })
	if err := pc.Shutdown(); err != nil { // persists offsets
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "offsets committed", func() bool {
		a, _ := committedOffset(t, c.broker.addr, group, topic, 0)
		b, _ := committedOffset(t, c.broker.addr, group, topic, 1)
		return a+b == 20
	})

	c.broker.stop()
	if _, err := os.Stat(filepath.Join(string(c.dir), "store", "abort")); !os.IsNotExist(err) {
		t.Fatalf("abort marker left after clean shutdown: %v", err)
	}
	c.broker = restartBroker(t, c)

	resp := invoke(t, c.broker.addr, wire.GetAllTopicConfig, nil, nil)
	var w wire.TopicConfigSerializeWrapper
	if err := json.Unmarshal(resp.Body, &w); err != nil || w.TopicConfigTable[topic] == nil || w.TopicConfigTable[topic].WriteQueueNums != 2 {
		t.Fatalf("topic lost across restart: %v %s", err, resp.Body)
	}
	if w.TopicConfigTable["%RETRY%"+group] == nil {
		t.Fatal("retry topic lost across restart")
	}
	resp = invoke(t, c.broker.addr, wire.GetAllSubGroupConfig, nil, nil)
	if !bytes.Contains(resp.Body, []byte(`"`+group+`"`)) {
		t.Fatalf("subscription group lost across restart: %s", resp.Body)
	}
	a, _ := committedOffset(t, c.broker.addr, group, topic, 0)
	b, _ := committedOffset(t, c.broker.addr, group, topic, 1)
	if a+b != 20 {
		t.Fatalf("committed offsets after restart %d+%d, want 20", a, b)
	}

	// The restarted broker listens on the same address, so the producer's
	// cached route still works.
	sendN(t, p, topic, "second", 10)
	col2 := newCollector()
	newPushConsumer(t, c.ns.addr, group, topic, consumer.MessageSelector{}, col2, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	waitFor(t, 40*time.Second, "the 10 new messages", func() bool { return col2.count() == 10 })
	time.Sleep(2 * time.Second)
	for body := range col2.msgs {
		if body[:6] != "second" {
			t.Fatalf("restarted consumer re-received %q", body)
		}
	}
}

// TestKill9 proves that every acknowledged message survives SIGKILL
// mid-stream, with the same body and offsets: with SYNC_FLUSH because it
// was fsynced before the answer, with ASYNC_FLUSH because records live in
// shared file mappings that outlive the process.
func TestKill9(t *testing.T) {
	for _, mode := range []string{"SYNC_FLUSH", "ASYNC_FLUSH"} {
		t.Run(mode, func(t *testing.T) { testKill9(t, mode) })
	}
}

func testKill9(t *testing.T, mode string) {
	ns := startNamesrv(t)
	dir := newBrokerDir(t)
	br := startBroker(t, dir, ns.addr, "flushDiskType="+mode)
	c := &cluster{ns: ns, broker: br, dir: dir}
	const topic = "Kill9"
	createTopic(t, c, topic, 4)

	p := newProducer(t, ns.addr, producer.WithRetry(0))
	type acked struct {
		queue  int
		offset int64
		id     string
	}
	var mu sync.Mutex
	ackedMsgs := map[string]acked{}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !stop.Load() && i < 100000; i++ {
				body := fmt.Sprintf("w%d-%d", w, i)
				r, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(body)))
				if err != nil {
					return // the broker is gone
				}
				mu.Lock()
				ackedMsgs[body] = acked{r.MessageQueue.QueueId, r.QueueOffset, r.OffsetMsgID}
				mu.Unlock()
			}
		}(w)
	}
	waitFor(t, 30*time.Second, "some acknowledged sends", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ackedMsgs) > 2000
	})
	br.kill()
	stop.Store(true)
	wg.Wait()
	mu.Lock()
	want := make(map[string]acked, len(ackedMsgs))
	for k, v := range ackedMsgs {
		want[k] = v
	}
	mu.Unlock()
	t.Logf("%d sends acknowledged before SIGKILL", len(want))

	c.broker = restartBroker(t, c, "flushDiskType="+mode)
	got := map[string]acked{}
	for q := 0; q < 4; q++ {
		for _, m := range pullAll(t, c, "CG_kill9", topic, q) {
			got[string(m.Body)] = acked{q, m.QueueOffset, m.OffsetMsgId}
		}
	}
	for body, a := range want {
		g, ok := got[body]
		if !ok {
			t.Fatalf("acknowledged message %s lost after SIGKILL", body)
		}
		if g != a {
			t.Fatalf("message %s moved: acked at %+v, found at %+v", body, a, g)
		}
	}
	// A crash is not damage: the consume queues need no rebuild.
	if log := readLog(t, c, "storeerror.log"); strings.Contains(log, "rebuilt consume queue") {
		t.Fatalf("consume queues rebuilt after SIGKILL:\n%s", log)
	}
}
