package server

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/grpcsvc"
	"github.com/mqops/mqops/broker/pop"
	"github.com/mqops/mqops/wire"
)

// TestPopFIFOWakesWaiters: receives of an orderly group wait while its
// queue is blocked by a batch in flight; the broker wakes them when the
// batch stops blocking: the last ack of the batch (not an earlier one), a
// change to visible-now, the reviver seeing the lease end, an admin
// offset reset.
func TestPopFIFOWakesWaiters(t *testing.T) {
	b := startBroker(t, map[string]string{"enableProxy": "true", "grpcServerPort": "0", "mappedFileSizeCommitLog": strconv.Itoa(4 << 20)})
	const topic, group = "PopFifoWake", "GPopFifoWake"
	if _, err := b.topics.Put(wire.TopicConfig{TopicName: topic, ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}); err != nil {
		t.Fatal(err)
	}
	gc := wire.NewSubscriptionGroupConfig(group)
	gc.ConsumeMessageOrderly = true
	if err := b.groups.Put(*gc); err != nil {
		t.Fatal(err)
	}
	be := grpcBackend{b}
	if !be.Orderly(group) || be.Orderly("GOther") {
		t.Fatal("Orderly does not follow consumeMessageOrderly")
	}
	for i := range 8 {
		m := &grpcsvc.Message{Topic: topic, Body: []byte("m" + strconv.Itoa(i)), BornHost: make([]byte, 8),
			Properties: wire.AppendProperty(nil, wire.PropUniqKey, "ID"+strconv.Itoa(i))}
		if r := be.Send(m); r.Code != wire.Success {
			t.Fatalf("send %d: %d %s", i, r.Code, r.Remark)
		}
	}
	waitFor(t, func() bool { return b.store.MaxOffset(topic, 0) == 8 })
	req := &grpcsvc.PopRequest{ClientID: "c1", Group: group, Topic: topic, Batch: 2, Invisible: time.Minute}
	receive := func(what string, want ...int64) []grpcsvc.Delivery {
		t.Helper()
		ds, perr := be.Receive(context.Background(), req)
		if perr != nil {
			t.Fatalf("%s: %v", what, perr.Msg)
		}
		var got []int64
		for _, d := range ds {
			got = append(got, wire.RecordView(d.Record).QueueOffset())
		}
		if len(got) != len(want) || (len(want) > 0 && got[0] != want[0]) || (len(want) > 1 && got[1] != want[1]) {
			t.Fatalf("%s: offsets %v, want %v", what, got, want)
		}
		return ds
	}
	// waiter is a receive waiting for the topic, as Receive registers it.
	waiter := func() (<-chan struct{}, func()) { return b.pop.wait(topic, pop.RetryTopic(group, topic)) }
	woken := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}

	ds := receive("first batch", 0, 1)
	receive("while the batch is in flight")
	ch, done := waiter()
	if perr := be.Ack(group, topic, ds[0].Handle); perr != nil {
		t.Fatal(perr.Msg)
	}
	if woken(ch) {
		t.Fatal("woken with half the batch un-acked")
	}
	if perr := be.Ack(group, topic, ds[1].Handle); perr != nil {
		t.Fatal(perr.Msg)
	}
	if !woken(ch) {
		t.Fatal("the last ack of the batch woke nobody")
	}
	done()

	// A waiting receive gets the next batch once the batch is acked.
	ds = receive("second batch", 2, 3)
	got := make(chan []grpcsvc.Delivery)
	go func() {
		wr := *req
		wr.Wait = waitTimeout
		out, _ := be.Receive(context.Background(), &wr)
		got <- out
	}()
	for _, d := range ds {
		if perr := be.Ack(group, topic, d.Handle); perr != nil {
			t.Fatal(perr.Msg)
		}
	}
	out := <-got
	if len(out) != 2 || wire.RecordView(out[0].Record).QueueOffset() != 4 {
		t.Fatalf("the waiting receive got %d messages, want offsets 4 and 5", len(out))
	}

	// Visible now (ChangeInvisibleDuration 0) of the whole batch wakes.
	ch, done = waiter()
	if _, perr := be.ChangeInvisible(group, topic, out[0].Handle, 0); perr != nil {
		t.Fatal(perr.Msg)
	}
	if woken(ch) {
		t.Fatal("woken with half the batch still invisible")
	}
	if _, perr := be.ChangeInvisible(group, topic, out[1].Handle, 0); perr != nil {
		t.Fatal(perr.Msg)
	}
	if !woken(ch) {
		t.Fatal("making the whole batch visible woke nobody")
	}
	done()
	ds = receive("in-place redelivery", 4, 5)
	if ds[0].DeliveryCount != 2 {
		t.Fatalf("redelivered with delivery attempt %d, want 2", ds[0].DeliveryCount)
	}

	// A lease ending by itself: the reviver wakes the waiters.
	ch, done = waiter()
	for _, d := range ds {
		if _, perr := be.ChangeInvisible(group, topic, d.Handle, 300*time.Millisecond); perr != nil {
			t.Fatal(perr.Msg)
		}
	}
	waitFor(t, func() bool { return woken(ch) })
	done()
	ds = receive("second in-place redelivery", 4, 5)
	if ds[0].DeliveryCount != 3 {
		t.Fatalf("redelivered with delivery attempt %d, want 3", ds[0].DeliveryCount)
	}

	// An admin offset reset drops the batch and wakes the waiters; the
	// queue starts over at the reset offset.
	ch, done = waiter()
	p := newPeer(t, b, nil)
	p.expect(wire.Success, "", wire.InvokeBrokerToResetOffset,
		map[string]string{"topic": topic, "group": group, "timestamp": "0", "isForce": "true"}, nil)
	if !woken(ch) {
		t.Fatal("the offset reset woke nobody")
	}
	done()
	if ds = receive("after the reset", 0, 1); ds[0].DeliveryCount != 1 {
		t.Fatalf("after the reset: delivery attempt %d, want 1", ds[0].DeliveryCount)
	}
}
