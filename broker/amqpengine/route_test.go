package amqpengine

import (
	"fmt"
	"slices"
	"testing"
)

func newTestVhost(t testing.TB) *Vhost {
	t.Helper()
	e, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.Vhost("/")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func declareQ(t testing.TB, v *Vhost, name string) QueueInfo {
	t.Helper()
	q, err := v.DeclareQueue(QueueDecl{Name: name})
	must(t, err)
	return q
}

// routed returns the names of the queues a publish reaches, sorted.
func routed(t testing.TB, v *Vhost, x, key string, headers map[string]any) []string {
	t.Helper()
	var r Targets
	must(t, v.Route(x, key, headers, &r))
	byID := map[uint64]string{}
	for _, q := range v.List().Queues {
		byID[q.ID] = q.Name
	}
	var names []string
	for _, id := range r.IDs {
		names = append(names, byID[id])
	}
	if len(names) != len(slices.Compact(slices.Sorted(slices.Values(names)))) {
		t.Fatalf("route %s/%q returned a queue twice: %v", x, key, names)
	}
	slices.Sort(names)
	return names
}

func bindQ(t testing.TB, v *Vhost, x, q, key string, args Args) {
	t.Helper()
	must(t, v.Bind(BindingDecl{Source: x, Destination: q, RoutingKey: key, Args: args}, Owner{}))
}

// The topic cases of RabbitMQ's tutorial 5 (receive_logs_topic and the
// Q1/Q2 example of its text).
func TestRouteTopicTutorial5(t *testing.T) {
	v := newTestVhost(t)
	must(t, v.DeclareExchange(ExchangeDecl{Name: "logs_topic", Type: Topic}))
	for _, q := range []string{"all", "kern", "critical", "kc", "Q1", "Q2"} {
		declareQ(t, v, q)
	}
	bindQ(t, v, "logs_topic", "all", "#", nil)
	bindQ(t, v, "logs_topic", "kern", "kern.*", nil)
	bindQ(t, v, "logs_topic", "critical", "*.critical", nil)
	bindQ(t, v, "logs_topic", "kc", "kern.*", nil)
	bindQ(t, v, "logs_topic", "kc", "*.critical", nil)
	bindQ(t, v, "logs_topic", "Q1", "*.orange.*", nil)
	bindQ(t, v, "logs_topic", "Q2", "*.*.rabbit", nil)
	bindQ(t, v, "logs_topic", "Q2", "lazy.#", nil)
	cases := []struct {
		key  string
		want []string
	}{
		{"kern.critical", []string{"all", "critical", "kc", "kern"}},
		{"", []string{"all"}},
		{"kern.a.b", []string{"all"}},
		{"kern.info", []string{"all", "kc", "kern"}},
		{"quick.orange.rabbit", []string{"Q1", "Q2", "all"}},
		{"lazy.orange.elephant", []string{"Q1", "Q2", "all"}},
		{"quick.orange.fox", []string{"Q1", "all"}},
		{"lazy.brown.fox", []string{"Q2", "all"}},
		{"lazy.pink.rabbit", []string{"Q2", "all"}},
		{"lazy.orange.new.rabbit", []string{"Q2", "all"}},
		{"quick.brown.fox", []string{"all"}},
		{"orange", []string{"all"}},
		{"quick.orange.new.rabbit", []string{"all"}},
	}
	for _, c := range cases {
		if got := routed(t, v, "logs_topic", c.key, nil); !slices.Equal(got, c.want) {
			t.Errorf("routing key %q: got %v, want %v", c.key, got, c.want)
		}
	}
}

func TestRouteTopicEdges(t *testing.T) {
	v := newTestVhost(t)
	must(t, v.DeclareExchange(ExchangeDecl{Name: "t", Type: Topic}))
	keys := map[string]string{"hash": "#", "empty": "", "star": "*", "ab": "a.#.b", "a": "a", "adot": "a.", "hh": "#.#", "mid": "a.*.#"}
	for q, k := range keys {
		declareQ(t, v, q)
		bindQ(t, v, "t", q, k, nil)
	}
	cases := []struct {
		key  string
		want []string
	}{
		{"", []string{"empty", "hash", "hh"}},
		{"a", []string{"a", "hash", "hh", "star"}},
		{"a.b", []string{"ab", "hash", "hh", "mid"}},
		{"a.x.y.b", []string{"ab", "hash", "hh", "mid"}},
		{"a.b.c", []string{"hash", "hh", "mid"}},
		{"a.", []string{"adot", "hash", "hh", "mid"}},
		{"b", []string{"hash", "hh", "star"}},
		{".", []string{"hash", "hh"}},
	}
	for _, c := range cases {
		if got := routed(t, v, "t", c.key, nil); !slices.Equal(got, c.want) {
			t.Errorf("routing key %q: got %v, want %v", c.key, got, c.want)
		}
	}
	// Unbinding prunes the trie: "a.#.b" no longer matches.
	must(t, v.Unbind(BindingDecl{Source: "t", Destination: "ab", RoutingKey: "a.#.b"}, Owner{}))
	if got := routed(t, v, "t", "a.x.b", nil); slices.Contains(got, "ab") {
		t.Fatalf("unbound key still routes: %v", got)
	}
}

func TestRouteDirectFanoutDefault(t *testing.T) {
	v := newTestVhost(t)
	must(t, v.DeclareExchange(ExchangeDecl{Name: "logs_direct", Type: Direct}))
	must(t, v.DeclareExchange(ExchangeDecl{Name: "logs", Type: Fanout}))
	declareQ(t, v, "A")
	declareQ(t, v, "B")
	for _, k := range []string{"info", "warning", "error"} {
		bindQ(t, v, "logs_direct", "A", k, nil)
	}
	bindQ(t, v, "logs_direct", "B", "error", nil)
	bindQ(t, v, "logs", "A", "", nil)
	bindQ(t, v, "logs", "B", "ignored", nil)
	check := func(x, key string, want ...string) {
		t.Helper()
		if got := routed(t, v, x, key, nil); !slices.Equal(got, want) {
			t.Errorf("%s/%q: got %v, want %v", x, key, got, want)
		}
	}
	check("logs_direct", "info", "A")
	check("logs_direct", "error", "A", "B")
	check("logs_direct", "debug")
	check("logs", "anything", "A", "B")
	check("", "B", "B")
	check("", "nope")
	check("amq.direct", "A")
	if got := routed(t, v, "logs_direct", "debug", map[string]any{"CC": []any{"info"}, "BCC": []any{"error"}}); !slices.Equal(got, []string{"A", "B"}) {
		t.Errorf("CC/BCC: got %v", got)
	}
	if got := routed(t, v, "", "A", map[string]any{"CC": []any{"B", 7}}); !slices.Equal(got, []string{"A", "B"}) {
		t.Errorf("CC on default exchange: got %v", got)
	}
}

func TestRouteHeaders(t *testing.T) {
	v := newTestVhost(t)
	for _, q := range []string{"all", "any", "allx", "anyx", "void", "empty", "emptyany"} {
		declareQ(t, v, q)
	}
	x := "amq.match"
	bindQ(t, v, x, "all", "", Args{"format": "pdf", "type": "report"})
	bindQ(t, v, x, "any", "", Args{"x-match": "any", "format": "pdf", "type": "log"})
	bindQ(t, v, x, "allx", "", Args{"x-match": "all-with-x", "x-tenant": "a", "format": "pdf"})
	bindQ(t, v, x, "anyx", "", Args{"x-match": "any-with-x", "x-tenant": "a"})
	bindQ(t, v, x, "void", "", Args{"format": nil})
	bindQ(t, v, x, "empty", "", nil)
	bindQ(t, v, x, "emptyany", "", Args{"x-match": "any"})
	cases := []struct {
		h    map[string]any
		want []string
	}{
		{map[string]any{"format": "pdf", "type": "report"}, []string{"all", "any", "empty", "void"}},
		{map[string]any{"format": "pdf", "type": "report", "x-tenant": "a"}, []string{"all", "allx", "any", "anyx", "empty", "void"}},
		{map[string]any{"type": "log"}, []string{"any", "empty"}},
		{map[string]any{"format": int32(3)}, []string{"empty", "void"}},
		{nil, []string{"empty"}},
		{map[string]any{"x-tenant": "b", "format": "pdf"}, []string{"any", "empty", "void"}},
	}
	for _, c := range cases {
		if got := routed(t, v, x, "", c.h); !slices.Equal(got, c.want) {
			t.Errorf("headers %v: got %v, want %v", c.h, got, c.want)
		}
	}
	// Integers match across integer types, as RabbitMQ's type classes do.
	declareQ(t, v, "num")
	bindQ(t, v, "amq.headers", "num", "", Args{"n": int8(5)})
	if got := routed(t, v, "amq.headers", "", map[string]any{"n": int64(5)}); !slices.Equal(got, []string{"num"}) {
		t.Errorf("int8 5 vs int64 5: got %v", got)
	}
	if got := routed(t, v, "amq.headers", "", map[string]any{"n": "5"}); len(got) != 0 {
		t.Errorf("int8 5 vs string 5: got %v", got)
	}
	err := v.Bind(BindingDecl{Source: x, Destination: "all", Args: Args{"x-match": "most"}}, Owner{})
	wantErr(t, err, PreconditionFailed, `PRECONDITION_FAILED - Invalid x-match field value <<"most">>; expected all, any, all-with-x, or any-with-x`)
}

func TestRouteE2EAlternateInternal(t *testing.T) {
	v := newTestVhost(t)
	must(t, v.DeclareExchange(ExchangeDecl{Name: "front", Type: Direct, Args: Args{"alternate-exchange": "ae"}}))
	must(t, v.DeclareExchange(ExchangeDecl{Name: "ae", Type: Fanout}))
	must(t, v.DeclareExchange(ExchangeDecl{Name: "mid", Type: Topic, Internal: true}))
	must(t, v.DeclareExchange(ExchangeDecl{Name: "loop", Type: Fanout}))
	for _, q := range []string{"q1", "q2", "unrouted"} {
		declareQ(t, v, q)
	}
	bind := func(src, dst, key string) {
		must(t, v.Bind(BindingDecl{Source: src, Destination: dst, ToExchange: true, RoutingKey: key}, Owner{}))
	}
	bind("front", "mid", "k")
	bindQ(t, v, "mid", "q1", "#", nil)
	bindQ(t, v, "mid", "q2", "k", nil)
	// A cycle front → mid → loop → front, and loop → mid again.
	bind("mid", "loop", "#")
	bind("loop", "front", "")
	bind("loop", "mid", "")
	bindQ(t, v, "ae", "unrouted", "", nil)
	if got := routed(t, v, "front", "k", nil); !slices.Equal(got, []string{"q1", "q2"}) {
		t.Errorf("e2e: got %v", got)
	}
	if got := routed(t, v, "front", "other", nil); !slices.Equal(got, []string{"unrouted"}) {
		t.Errorf("alternate exchange: got %v", got)
	}
	var r Targets
	wantErr(t, v.Route("mid", "k", nil, &r), AccessRefused, "ACCESS_REFUSED - cannot publish to internal exchange 'mid' in vhost '/'")
	wantErr(t, v.Route("nope", "k", nil, &r), NotFound, "NOT_FOUND - no exchange 'nope' in vhost '/'")
	// An alternate exchange that routes nowhere, pointing back: no loop.
	must(t, v.DeclareExchange(ExchangeDecl{Name: "a1", Type: Direct, Args: Args{"alternate-exchange": "a2"}}))
	must(t, v.DeclareExchange(ExchangeDecl{Name: "a2", Type: Direct, Args: Args{"alternate-exchange": "a1"}}))
	if got := routed(t, v, "a1", "x", nil); len(got) != 0 {
		t.Errorf("alternate loop: got %v", got)
	}
}

// Routing allocates nothing once the caller's Targets has grown.
func TestRouteDoesNotAllocate(t *testing.T) {
	v := newTestVhost(t)
	must(t, v.DeclareExchange(ExchangeDecl{Name: "t", Type: Topic}))
	must(t, v.DeclareExchange(ExchangeDecl{Name: "f", Type: Fanout}))
	for i := range 50 {
		q := fmt.Sprintf("q%d", i)
		declareQ(t, v, q)
		bindQ(t, v, "t", q, fmt.Sprintf("a.%d.#", i%5), nil)
		bindQ(t, v, "f", q, "", nil)
		bindQ(t, v, "amq.match", q, "", Args{"x-match": "any", "k": int32(i % 3)})
	}
	must(t, v.Bind(BindingDecl{Source: "t", Destination: "f", ToExchange: true, RoutingKey: "#"}, Owner{}))
	h := map[string]any{"k": int32(1), "CC": []any{"a.1.x"}}
	var r Targets
	for _, c := range []struct{ x, key string }{{"t", "a.3.b.c"}, {"f", ""}, {"amq.match", ""}, {"", "q7"}} {
		if n := testing.AllocsPerRun(100, func() { _ = v.Route(c.x, c.key, h, &r) }); n != 0 {
			t.Errorf("route %s: %v allocs per message", c.x, n)
		}
	}
}

func BenchmarkRouteDirect(b *testing.B) {
	v := newTestVhost(b)
	must(b, v.DeclareExchange(ExchangeDecl{Name: "d", Type: Direct}))
	for i := range 1000 {
		q := fmt.Sprintf("q%d", i)
		declareQ(b, v, q)
		bindQ(b, v, "d", q, q, nil)
	}
	var r Targets
	b.ReportAllocs()
	for b.Loop() {
		_ = v.Route("d", "q500", nil, &r)
	}
}

func BenchmarkRouteTopic1000(b *testing.B) {
	v := newTestVhost(b)
	must(b, v.DeclareExchange(ExchangeDecl{Name: "t", Type: Topic}))
	for i := range 1000 {
		q := fmt.Sprintf("q%d", i)
		declareQ(b, v, q)
		var key string
		switch i % 4 {
		case 0:
			key = fmt.Sprintf("region%d.*.orders", i%50)
		case 1:
			key = fmt.Sprintf("region%d.#", i%50)
		case 2:
			key = fmt.Sprintf("*.svc%d.orders", i)
		case 3:
			key = fmt.Sprintf("region%d.svc%d.payments", i%50, i)
		}
		bindQ(b, v, "t", q, key, nil)
	}
	var r Targets
	b.ReportAllocs()
	for b.Loop() {
		_ = v.Route("t", "region7.svc10.orders", nil, &r)
	}
	b.ReportMetric(float64(len(r.IDs)), "targets")
}

func BenchmarkRouteFanout100(b *testing.B) {
	v := newTestVhost(b)
	must(b, v.DeclareExchange(ExchangeDecl{Name: "f", Type: Fanout}))
	for i := range 100 {
		q := fmt.Sprintf("q%d", i)
		declareQ(b, v, q)
		bindQ(b, v, "f", q, "", nil)
	}
	var r Targets
	b.ReportAllocs()
	for b.Loop() {
		_ = v.Route("f", "", nil, &r)
	}
}
