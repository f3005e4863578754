package amqpengine

import (
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestConsumersAndLeases: exclusive consumers refuse others and are
// refused beside others; counts follow consumes and cancels; the last
// consumer's cancel deletes an auto-delete queue; a gateway's expired
// lease ends its consumers (auto-delete) and its exclusive queues, and a
// renewed one does not.
func TestConsumersAndLeases(t *testing.T) {
	e, err := Open(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	must(t, err)
	v, err := e.Vhost("/")
	must(t, err)
	a, b := Owner{Gateway: "gwA", Conn: 1}, Owner{Gateway: "gwB", Conn: 1}
	_, err = v.DeclareQueue(QueueDecl{Name: "q", Durable: true})
	must(t, err)
	_, err = v.DeclareQueue(QueueDecl{Name: "ad", AutoDelete: true})
	must(t, err)
	_, err = v.DeclareQueue(QueueDecl{Name: "mine", Exclusive: true, Conn: a})
	must(t, err)

	_, err = e.Consume("/", "mine", "gwB/1/1", "t", b, false)
	wantErr(t, err, ResourceLocked, "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'mine' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.")
	_, err = e.Consume("/", "none", "gwB/1/1", "t", b, false)
	wantErr(t, err, NotFound, "NOT_FOUND - no queue 'none' in vhost '/'")

	n, err := e.Consume("/", "q", "gwA/1/1", "x", a, true)
	must(t, err)
	if n != 1 {
		t.Fatalf("%d consumers", n)
	}
	_, err = e.Consume("/", "q", "gwB/1/1", "y", b, false)
	wantErr(t, err, AccessRefused, "ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use")
	_, err = e.Cancel("/", "gwA/1/1", "x")
	must(t, err)
	_, err = e.Consume("/", "q", "gwB/1/1", "y", b, false)
	must(t, err)
	_, err = e.Consume("/", "q", "gwA/1/1", "x", a, true)
	wantErr(t, err, AccessRefused, "ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use")
	n, err = e.Consume("/", "q", "gwA/1/2", "z", a, false)
	must(t, err)
	qi, _ := v.Queue("q")
	if n != 2 || e.ConsumerCount("/", qi.ID) != 2 {
		t.Fatalf("consumers %d / %d, want 2", n, e.ConsumerCount("/", qi.ID))
	}

	// The last consumer's cancel deletes an auto-delete queue.
	_, err = e.Consume("/", "ad", "gwB/2/1", "c1", b, false)
	must(t, err)
	_, err = e.Consume("/", "ad", "gwB/2/2", "c2", b, false)
	must(t, err)
	gone, err := e.Cancel("/", "gwB/2/1", "")
	must(t, err)
	if len(gone) != 0 {
		t.Fatalf("deleted %+v with a consumer left", gone)
	}
	_, err = e.Consume("/", "ad", "gwA/1/1", "c3", a, false)
	must(t, err)

	// gwB renews, gwA does not: gwA's consumers and exclusive queue go.
	t0 := time.Now()
	e.Renew("gwA", t0)
	e.Renew("gwB", t0)
	e.Renew("gwB", t0.Add(10*time.Second))
	gws, _, deleted, err := e.ExpireLeases(t0.Add(LeaseTTL + time.Second))
	must(t, err)
	if len(gws) != 1 || gws[0] != "gwA" || len(deleted) != 1 || deleted[0].Name != "mine" {
		t.Fatalf("expired %v, deleted %+v", gws, deleted)
	}
	if e.ConsumerCount("/", qi.ID) != 1 {
		t.Fatalf("consumers of q after gwA's lease: %d, want gwB's 1", e.ConsumerCount("/", qi.ID))
	}
	if _, ok := v.Queue("ad"); !ok {
		t.Fatal("auto-delete queue gone while gwB still consumes it")
	}
	gws, _, deleted, err = e.ExpireLeases(t0.Add(LeaseTTL + 11*time.Second))
	must(t, err)
	if len(gws) != 1 || gws[0] != "gwB" || len(deleted) != 1 || deleted[0].Name != "ad" {
		t.Fatalf("expired %v, deleted %+v", gws, deleted)
	}
}
