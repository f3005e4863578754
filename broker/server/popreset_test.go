package server

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/grpcsvc"
	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/pop"
	"github.com/mqops/mqops/wire"
)

// TestPopOffsetReset: a POP consumer acked messages 0..9; an admin offset
// reset to the start (INVOKE_BROKER_TO_RESET_OFFSET, or mqadmin's offline
// UPDATE_CONSUMER_OFFSET) moves the committed offset back and the next
// receive returns message 0 again (apache/rocketmq PR #9087). The reset
// is on disk before it is answered: a crash right after it does not
// bring the old offset back.
func TestPopOffsetReset(t *testing.T) {
	b := startBroker(t, map[string]string{"enableProxy": "true", "grpcServerPort": "0", "mappedFileSizeCommitLog": strconv.Itoa(4 << 20)})
	const topic, group = "PopReset", "GPopReset"
	if _, err := b.topics.Put(wire.TopicConfig{TopicName: topic, ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}); err != nil {
		t.Fatal(err)
	}
	be := grpcBackend{b}
	for i := range 10 {
		m := &grpcsvc.Message{Topic: topic, Body: []byte("m" + strconv.Itoa(i)), BornHost: make([]byte, 8),
			Properties: wire.AppendProperty(nil, wire.PropUniqKey, "ID"+strconv.Itoa(i))}
		if r := be.Send(m); r.Code != wire.Success {
			t.Fatalf("send %d: %d %s", i, r.Code, r.Remark)
		}
	}
	waitFor(t, func() bool { return b.store.MaxOffset(topic, 0) == 10 })
	req := &grpcsvc.PopRequest{ClientID: "c1", Group: group, Topic: topic, Batch: 32, Invisible: time.Minute, Wait: waitTimeout}
	// receiveAll receives and acks until offsets 0..9 were all delivered;
	// it returns the offsets in delivery order.
	receiveAll := func(what string) []int64 {
		t.Helper()
		var got []int64
		for deadline := time.Now().Add(waitTimeout); len(got) < 10 && time.Now().Before(deadline); {
			ds, perr := be.Receive(context.Background(), req)
			if perr != nil {
				t.Fatalf("%s: receive: %v", what, perr.Msg)
			}
			for _, d := range ds {
				got = append(got, wire.RecordView(d.Record).QueueOffset())
				if perr := be.Ack(group, topic, d.Handle); perr != nil {
					t.Fatalf("%s: ack: %v", what, perr.Msg)
				}
			}
		}
		if len(got) != 10 || got[0] != 0 {
			t.Fatalf("%s: delivered offsets %v, want 0..9 starting at 0", what, got)
		}
		if c, _ := b.offsets.Query(group, topic, 0); c != 10 {
			t.Fatalf("%s: committed %d after acking 0..9, want 10", what, c)
		}
		return got
	}
	receiveAll("first pass")
	// What a start after kill -9 would load now: the offset table and
	// popState.json as they are on disk, nothing saved at Close. Before
	// each reset the periodic save has run (popState.json holds committed
	// 10); a load raises the table's offsets to the saved state's.
	cdir := b.cfg.StorePathRootDir + "/config"
	committedOnDisk := func() int64 {
		t.Helper()
		o, err := meta.LoadOffsets(cdir+"/consumerOffset.json", slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if err := pop.New(o).Load(cdir + "/" + popStateFile); err != nil {
			t.Fatal(err)
		}
		c, _ := o.Query(group, topic, 0)
		return c
	}
	saveNow := func() {
		t.Helper()
		b.savePopState()
		if err := b.offsets.Flush(); err != nil {
			t.Fatal(err)
		}
		if c := committedOnDisk(); c != 10 {
			t.Fatalf("committed %d on disk after acking 0..9 and saving, want 10", c)
		}
	}
	saveNow()
	req.Wait = 0
	if ds, _ := be.Receive(context.Background(), req); len(ds) != 0 {
		t.Fatalf("%d deliveries after acking everything, want none", len(ds))
	}

	// No remoting consumer is online: the broker resets the POP consumer itself.
	p := newPeer(t, b, nil)
	resp := p.expect(wire.Success, "", wire.InvokeBrokerToResetOffset,
		map[string]string{"topic": topic, "group": group, "timestamp": "0", "isForce": "true"}, nil)
	body, err := wire.DecodeResetOffsetBody(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for mq, off := range body.OffsetTable {
		if mq.QueueID == 0 && off != 0 {
			t.Fatalf("reset answered offset %d for queue 0, want 0", off)
		}
	}
	if c, _ := b.offsets.Query(group, topic, 0); c != 0 {
		t.Fatalf("committed %d after the reset, want 0", c)
	}
	if c := committedOnDisk(); c != 0 {
		t.Fatalf("a start after a crash now would load committed %d, want the reset's 0", c)
	}
	req.Wait = waitTimeout
	receiveAll("after INVOKE_BROKER_TO_RESET_OFFSET")
	saveNow()

	// mqadmin's offline reset commits through UPDATE_CONSUMER_OFFSET.
	p.expect(wire.Success, "", wire.UpdateConsumerOffset,
		map[string]string{"consumerGroup": group, "topic": topic, "queueId": "0", "commitOffset": "0"}, nil)
	if c := committedOnDisk(); c != 0 {
		t.Fatalf("a start after a crash now would load committed %d, want the UPDATE_CONSUMER_OFFSET reset's 0", c)
	}
	receiveAll("after UPDATE_CONSUMER_OFFSET to 0")
}
