package amqpengine

import (
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

// BenchmarkPublishFetchAck: one transient message published to a queue,
// fetched and acked per iteration (allocations and CPU of the engine's
// message path; per-message allocation is not yet cut).
func BenchmarkPublishFetchAck(b *testing.B) {
	r := newRig(b)
	v, _ := r.e.Vhost("/")
	if _, err := v.DeclareQueue(QueueDecl{Name: "q"}); err != nil {
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
