package server

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/grpcsvc"
	"github.com/mqops/mqops/wire"
)

// TestPopReceiveCountsEachDeliveryOnce: a receive that gathers messages
// from several queues adds each delivery to the group's get statistics
// once, not the running total of the batch once per queue.
func TestPopReceiveCountsEachDeliveryOnce(t *testing.T) {
	b := startBroker(t, map[string]string{"enableProxy": "true", "grpcServerPort": "0"})
	const topic, group, queues, msgs = "PopStats", "GPopStats", 4, 12
	if _, err := b.topics.Put(wire.TopicConfig{TopicName: topic, ReadQueueNums: queues, WriteQueueNums: queues, Perm: 6}); err != nil {
		t.Fatal(err)
	}
	be := grpcBackend{b}
	for i := range msgs {
		m := &grpcsvc.Message{Topic: topic, Body: []byte("m" + strconv.Itoa(i)), BornHost: make([]byte, 8),
			Properties: wire.AppendProperty(nil, wire.PropUniqKey, "ID"+strconv.Itoa(i))}
		if r := be.Send(m); r.Code != wire.Success {
			t.Fatalf("send %d: %d %s", i, r.Code, r.Remark)
		}
	}
	waitFor(t, func() bool {
		var n int64
		for q := range int32(queues) {
			n += b.store.MaxOffset(topic, q)
		}
		return n == msgs
	})
	for q := range int32(queues) {
		if b.store.MaxOffset(topic, q) == 0 {
			t.Fatalf("queue %d is empty: the test needs a receive that spans queues", q)
		}
	}
	before := b.stats.Runtime().GetTotalTodayNow
	req := &grpcsvc.PopRequest{ClientID: "c1", Group: group, Topic: topic, Batch: 32, Invisible: time.Minute}
	got := 0
	for deadline := time.Now().Add(10 * time.Second); got < msgs && time.Now().Before(deadline); {
		ds, perr := be.Receive(context.Background(), req)
		if perr != nil {
			t.Fatalf("receive: %v", perr.Msg)
		}
		got += len(ds)
	}
	if got != msgs {
		t.Fatalf("received %d messages, want %d", got, msgs)
	}
	if n := b.stats.Runtime().GetTotalTodayNow - before; n != msgs {
		t.Errorf("get statistics grew by %d for %d deliveries", n, msgs)
	}
}
