package amqpengine

import (
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

// TestQueueStats: the operators' figures follow publishes, fetches,
// acks and consumers, and a channel that stops fetching stops counting
// as a consumer once it holds nothing.
func TestQueueStats(t *testing.T) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	declareQ(t, v, "q")
	qi, _ := v.Queue("q")
	r.publish(t, "", "q", "a", "b", "c")
	now := time.Now()
	st := r.e.QueueStats("/", qi.ID, now)
	if st.Ready != 3 || st.Unacked != 0 || st.Consumers != 0 || st.Published != 3 || st.Delivered != 0 ||
		st.LMQ != QueueLMQ("/", qi.ID) || st.Group != QueueGroup("/", qi.ID) {
		t.Fatalf("after publish: %+v", st)
	}

	ref, err := r.e.Ref("/", "q")
	must(t, err)
	if ref.Group() != st.Group || ref.Ready() != 3 {
		t.Fatalf("ref group %s ready %d", ref.Group(), ref.Ready())
	}
	ref.StartPoll("s1")
	ds := r.fetch(t, "q", "s1", 2, 0)
	ref.Delivered(ds)
	if st := r.e.QueueStats("/", qi.ID, now); st.Consumers != 1 || st.Unacked != 2 || st.Ready != 1 || st.Delivered != 2 {
		t.Fatalf("while s1 polls: %+v", st)
	}
	ref.EndPoll("s1")
	must2(r.e.Settle("/", []SettleItem{{Handle: ds[0].Handle, Op: wire.AMQPAck}, {Handle: ds[1].Handle, Op: wire.AMQPReject}}))
	st = r.e.QueueStats("/", qi.ID, time.Now())
	if st.Acked != 1 || st.Unacked != 0 || st.Consumers != 1 {
		t.Fatalf("after ack and reject, s1 fetched recently: %+v", st)
	}
	if st := r.e.QueueStats("/", qi.ID, time.Now().Add(consumerWindow+time.Second)); st.Consumers != 0 {
		t.Fatalf("s1 quiet for longer than the window: %+v", st)
	}
	if _, err := r.e.Ref("/", "nope"); err == nil {
		t.Fatal("ref of a missing queue")
	}
}
