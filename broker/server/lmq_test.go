package server

import (
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

// TestLightQueuePullAndSend: with enableLmq a %LMQ% topic has Java's
// simple topic config (one queue, read-write) without being in the topic
// table: a held pull on it is answered by the multi-dispatch of a message
// sent to another topic, and a send straight to it lands in queue 0.
func TestLightQueuePullAndSend(t *testing.T) {
	b := startBroker(t, map[string]string{"enableLmq": "true", "enableMultiDispatch": "true"})
	c := newPeer(t, b, nil)
	c.createTopic("Src", 1)
	c.heartbeat("consumer@1", "CG", "", map[string]string{"%LMQ%x": "*"})

	pull := c.asyncPull(pullFields("CG", "%LMQ%x", 0, 0, 20*time.Second), time.Minute)
	waitFor(t, func() bool { return heldPulls(b) == 1 })
	c.send("Src", 0, "INNER_MULTI_DISPATCH\x01%LMQ%x,%LMQ%y", "fan-out")
	resp := waitPull(t, pull)
	if resp.Code != wire.Success {
		t.Fatalf("held pull of %%LMQ%%x answered %s %q", wire.ResponseName(resp.Code), resp.Remark)
	}
	recs := records(t, resp.Body)
	if len(recs) != 1 || string(recs[0].Topic()) != "Src" ||
		string(wire.PropertyValue(recs[0].Properties(), wire.PropInnerMultiQueueOffset)) != "0,0" {
		t.Fatalf("held pull got %d records: %q", len(recs), recs[0].Properties())
	}

	if off := c.send("%LMQ%x", 0, "", "direct"); off != 1 {
		t.Fatalf("send straight to %%LMQ%%x: queue offset %d, want 1 (after the fan-out)", off)
	}
	c.expect(wire.SystemError, "queueId[1] is illegal", wire.SendMessageV2, sendFields("%LMQ%x", 1, ""), []byte("q1"))
	if b.topics.Get([]byte("%LMQ%x")) != nil {
		t.Fatal("a light queue entered the topic table")
	}
	c.expect(wire.Success, "", wire.UpdateConsumerOffset, map[string]string{"consumerGroup": "CG", "topic": "%LMQ%y", "queueId": "0", "commitOffset": "1"}, nil)
	c.expect(wire.SystemError, "queueId[1] is illegal", wire.UpdateConsumerOffset, map[string]string{"consumerGroup": "CG", "topic": "%LMQ%y", "queueId": "1", "commitOffset": "1"}, nil)
}
