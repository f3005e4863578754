package amqpengine

import (
	"fmt"
	"sync"
	"testing"
)

// Gateways declare, bind, unbind, delete and route on one vhost at once;
// run with -race. Afterwards the metadata is consistent: every binding's
// ends exist and routing finds exactly the bound queues.
func TestConcurrentGateways(t *testing.T) {
	dir := t.TempDir()
	e, err := Open(dir, nil)
	must(t, err)
	v, _ := e.Vhost("/")
	must(t, v.DeclareExchange(ExchangeDecl{Name: "t", Type: Topic, Durable: true}))
	const workers, rounds = 4, 60
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(2)
		go func() { // a gateway's sessions
			defer wg.Done()
			conn := Owner{Gateway: "gw", Conn: uint64(w)}
			for i := range rounds {
				q := fmt.Sprintf("q%d", i%10)
				if _, err := v.DeclareQueue(QueueDecl{Name: q, Durable: i%2 == 0}); err != nil {
					// Another worker declared it with the other durability.
					if e, ok := err.(*Error); !ok || e.Code != PreconditionFailed {
						t.Error(err)
						return
					}
				}
				_ = v.Bind(BindingDecl{Source: "t", Destination: q, RoutingKey: fmt.Sprintf("k.%d.#", w)}, conn)
				if _, err := v.DeclareQueue(QueueDecl{Exclusive: true, Conn: conn}); err != nil {
					t.Error(err)
					return
				}
				if i%7 == 0 {
					_ = v.Unbind(BindingDecl{Source: "t", Destination: q, RoutingKey: fmt.Sprintf("k.%d.#", w)}, conn)
				}
				if i%11 == 0 {
					_, _, _, _ = v.DeleteQueue(q, conn, false, false, nil)
				}
				if i%13 == 0 {
					if _, err := e.ReleaseOwner("gw", uint64(w)); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
		go func() { // a gateway's publishers
			defer wg.Done()
			var r Targets
			for i := range rounds * 5 {
				if err := v.Route("t", fmt.Sprintf("k.%d.x", i%workers), nil, &r); err != nil {
					t.Error(err)
					return
				}
				_ = v.List()
			}
		}()
	}
	wg.Wait()
	l := v.List()
	queues := map[string]uint64{}
	for _, q := range l.Queues {
		queues[q.Name] = q.ID
	}
	want := map[string]map[uint64]bool{}
	for _, b := range l.Bindings {
		id, ok := queues[b.Destination]
		if !ok {
			t.Fatalf("binding to missing queue %s", b.Destination)
		}
		key := b.RoutingKey[:len(b.RoutingKey)-2] + ".x"
		if want[key] == nil {
			want[key] = map[uint64]bool{}
		}
		want[key][id] = true
	}
	for key, ids := range want {
		var r Targets
		must(t, v.Route("t", key, nil, &r))
		if len(r.IDs) != len(ids) {
			t.Fatalf("%s routes to %v, bindings say %v", key, r.IDs, ids)
		}
	}
	// What is on disk matches what is in memory.
	e2, err := Open(dir, nil)
	must(t, err)
	v2, _ := e2.Vhost("/")
	listingsEqual(t, durableOnly(l), v2.List())
}
