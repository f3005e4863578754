package amqpengine

import (
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

// BenchmarkPublishFetchAck: one transient message published to a queue,
// fetched and acked per iteration (allocations and CPU of the engine's
// message path; per-message allocation is not yet cut), on a plain queue
// and on queues with a length limit (the limit's bookkeeping: the ready
// count, the ready body bytes).
func BenchmarkPublishFetchAck(b *testing.B) {
	for _, c := range []struct {
		name string
		args Args
	}{
		{"plain", nil},
		{"max-length", Args{"x-max-length": int64(1000)}},
		{"max-length-bytes", Args{"x-max-length-bytes": int64(1 << 20)}},
		{"max-length-bytes-reject", Args{"x-max-length-bytes": int64(1 << 20), "x-overflow": "reject-publish"}},
	} {
		b.Run(c.name, func(b *testing.B) { benchPublishFetchAck(b, c.args) })
	}
}

func benchPublishFetchAck(b *testing.B, args Args) {
	r := newRig(b)
	v, _ := r.e.Vhost("/")
	if _, err := v.DeclareQueue(QueueDecl{Name: "q", Args: args}); err != nil {
		b.Fatal(err)
	}
	msg := []PublishMsg{{RoutingKey: "q", Properties: props("id"), Body: make([]byte, 128)}}
	items := []SettleItem{{Op: wire.AMQPAck}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.e.Publish("/", "", msg); err != nil {
			b.Fatal(err)
		}
		ds, _, _, err := r.e.Fetch("/", "q", "s", 1, time.Second, false, 0)
		if err != nil || len(ds) != 1 {
			b.Fatal(err, len(ds))
		}
		items[0].Handle = ds[0].Handle
		if _, err := r.e.Settle("/", items); err != nil {
			b.Fatal(err)
		}
	}
}
