package amqpengine

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// allTypes holds one value of every type the codec decodes tables into.
func allTypes() Args {
	return Args{
		"bool": true, "i8": int8(-8), "u8": uint8(8), "i16": int16(-16), "u16": uint16(16),
		"i32": int32(-32), "u32": uint32(32), "i64": int64(math.MinInt64), "f32": float32(1.5),
		"f64": 0.1, "nan": math.NaN(), "inf": math.Inf(-1), "str": "ünï\x00code", "bytes": []byte{0, 1, 255},
		"ts": time.Unix(1700000000, 0).UTC(), "void": nil,
		"arr":   []any{int32(1), "two", []any{false}, map[string]any{"k": uint8(3)}},
		"table": map[string]any{"nested": map[string]any{"deep": []byte("x")}, "e": map[string]any{}},
	}
}

func populate(t *testing.T, e *Engine) *Vhost {
	t.Helper()
	v, err := e.Vhost("/")
	must(t, err)
	must(t, v.DeclareExchange(ExchangeDecl{Name: "orders", Type: Topic, Durable: true, Args: Args{"alternate-exchange": "ae", "x-extra": allTypes()}}))
	must(t, v.DeclareExchange(ExchangeDecl{Name: "ae", Type: Fanout, Durable: true, Internal: true}))
	must(t, v.DeclareExchange(ExchangeDecl{Name: "hdr", Type: Headers, Durable: true, AutoDelete: true}))
	must(t, v.DeclareExchange(ExchangeDecl{Name: "transient", Type: Direct}))
	_, err = v.DeclareQueue(QueueDecl{Name: "work", Durable: true, Args: Args{"x-queue-type": "quorum", "x-max-length": int32(10), "x-dead-letter-exchange": "ae", "x-more": allTypes()}})
	must(t, err)
	_, err = v.DeclareQueue(QueueDecl{Name: "dlq", Durable: true, AutoDelete: true})
	must(t, err)
	_, err = v.DeclareQueue(QueueDecl{Name: "mem"})
	must(t, err)
	_, err = v.DeclareQueue(QueueDecl{Exclusive: true, Durable: true, Conn: Owner{"gw", 1}})
	must(t, err)
	bindQ(t, v, "orders", "work", "eu.#", nil)
	bindQ(t, v, "orders", "work", "us.*", Args{"x-k": []byte("v")})
	bindQ(t, v, "ae", "dlq", "", nil)
	bindQ(t, v, "hdr", "work", "", Args{"x-match": "any", "kind": int16(2), "flag": nil})
	bindQ(t, v, "amq.direct", "work", "w", nil)
	bindQ(t, v, "orders", "mem", "#", nil)     // transient destination
	bindQ(t, v, "transient", "work", "t", nil) // transient source
	must(t, v.Bind(BindingDecl{Source: "orders", Destination: "ae", ToExchange: true, RoutingKey: "all.#"}, Owner{}))
	return v
}

// durableOnly is what a restart must bring back: the listing without the
// transient entities.
func durableOnly(l Listing) Listing {
	out := Listing{Vhost: l.Vhost, Version: l.Version}
	trans := map[string]bool{}
	for _, x := range l.Exchanges {
		if x.Durable {
			out.Exchanges = append(out.Exchanges, x)
		} else {
			trans[x.Name] = true
		}
	}
	for _, q := range l.Queues {
		if q.Durable {
			out.Queues = append(out.Queues, q)
		} else {
			trans[q.Name] = true
		}
	}
	for _, b := range l.Bindings {
		if !trans[b.Source] && !trans[b.Destination] {
			out.Bindings = append(out.Bindings, b)
		}
	}
	return out
}

func listingsEqual(t *testing.T, a, b Listing) {
	t.Helper()
	if a.Vhost != b.Vhost || a.Version != b.Version || len(a.Exchanges) != len(b.Exchanges) || len(a.Queues) != len(b.Queues) || len(a.Bindings) != len(b.Bindings) {
		t.Fatalf("listings differ:\n%+v\n%+v", a, b)
	}
	for i := range a.Exchanges {
		x, y := a.Exchanges[i], b.Exchanges[i]
		if x.Name != y.Name || x.Type != y.Type || x.Durable != y.Durable || x.AutoDelete != y.AutoDelete || x.Internal != y.Internal || !ArgsEqual(x.Args, y.Args) {
			t.Errorf("exchange %d: %+v vs %+v", i, x, y)
		}
	}
	for i := range a.Queues {
		x, y := a.Queues[i], b.Queues[i]
		if x.Name != y.Name || x.ID != y.ID || x.Durable != y.Durable || x.AutoDelete != y.AutoDelete || x.Owner != y.Owner || !x.Created.Equal(y.Created) || !ArgsEqual(x.Args, y.Args) {
			t.Errorf("queue %d: %+v vs %+v", i, x, y)
		}
	}
	for i := range a.Bindings {
		x, y := a.Bindings[i], b.Bindings[i]
		if x.Source != y.Source || x.Destination != y.Destination || x.ToExchange != y.ToExchange || x.RoutingKey != y.RoutingKey || !ArgsEqual(x.Args, y.Args) {
			t.Errorf("binding %d: %+v vs %+v", i, x, y)
		}
	}
}

func TestPersistReopen(t *testing.T) {
	dir := t.TempDir()
	e, err := Open(dir, nil)
	must(t, err)
	v := populate(t, e)
	before := v.List()
	if before.Version == 0 {
		t.Fatal("durable changes did not move the version")
	}
	e2, err := Open(dir, nil)
	must(t, err)
	v2, err := e2.Vhost("/")
	must(t, err)
	after := v2.List()
	listingsEqual(t, durableOnly(before), after)

	// Redeclares with the original arguments are equivalent after the restart.
	_, err = v2.DeclareQueue(QueueDecl{Name: "work", Durable: true, Args: Args{"x-queue-type": "quorum", "x-max-length": int32(10), "x-dead-letter-exchange": "ae"}})
	must(t, err)
	must(t, v2.DeclareExchange(ExchangeDecl{Name: "orders", Type: Topic, Durable: true, Args: Args{"alternate-exchange": "ae"}}))
	// Routing works from the loaded indexes, headers included.
	if got := routed(t, v2, "orders", "eu.x.y", nil); len(got) != 1 || got[0] != "work" {
		t.Fatalf("routing after reload: %v", got)
	}
	if got := routed(t, v2, "hdr", "", map[string]any{"flag": "on"}); len(got) != 1 {
		t.Fatalf("headers routing after reload: %v", got)
	}
	if got := routed(t, v2, "orders", "all.x", nil); len(got) != 1 || got[0] != "dlq" {
		t.Fatalf("e2e after reload: %v", got)
	}
	// Ids are not reused across the restart, even those of transient queues.
	maxID := uint64(0)
	for _, q := range before.Queues {
		maxID = max(maxID, q.ID)
	}
	q, err := v2.DeclareQueue(QueueDecl{Name: "new"})
	must(t, err)
	if q.ID <= maxID {
		t.Fatalf("id %d reused (before the restart ids went up to %d)", q.ID, maxID)
	}
	// The version keeps growing.
	if v2.Version() <= before.Version {
		t.Fatalf("version %d after %d", v2.Version(), before.Version)
	}
}

func TestPersistVhosts(t *testing.T) {
	dir := t.TempDir()
	e, err := Open(dir, nil)
	must(t, err)
	v, err := e.AddVhost("prod/eu")
	must(t, err)
	if v.ID() != VhostID("prod/eu") || !strings.HasPrefix(v.ID(), "prod_eu_") || len(v.ID()) != len("prod_eu_")+6 {
		t.Fatalf("vhost id %q", v.ID())
	}
	if VhostID("prod.eu") == v.ID() || VhostID("plain-name_1") != "plain-name_1" {
		t.Fatal("vhost ids collide or alter a safe name")
	}
	_, err = v.DeclareQueue(QueueDecl{Name: "q", Durable: true})
	must(t, err)
	_, err = e.AddVhost("empty")
	must(t, err)
	e2, err := Open(dir, nil)
	must(t, err)
	if got := e2.Vhosts(); !reflect.DeepEqual(got, []string{"/", "empty", "prod/eu"}) {
		t.Fatalf("vhosts after reopen: %v", got)
	}
	v2, _ := e2.Vhost("prod/eu")
	if _, ok := v2.Queue("q"); !ok {
		t.Fatal("queue of a second vhost lost")
	}
	_, err = e2.Vhost("nope")
	wantErr(t, err, NotAllowed, "NOT_ALLOWED - vhost nope not found")
	stale, _ := e2.Vhost("empty")
	must(t, e2.DeleteVhost("empty"))
	// A gateway still holding the deleted vhost cannot bring its file back.
	_, err = stale.DeclareQueue(QueueDecl{Name: "late", Durable: true})
	wantErr(t, err, NotAllowed, "NOT_ALLOWED - vhost empty not found")
	e3, err := Open(dir, nil)
	must(t, err)
	if got := e3.Vhosts(); !reflect.DeepEqual(got, []string{"/", "prod/eu"}) {
		t.Fatalf("vhosts after delete: %v", got)
	}
}

// A torn file falls back to the .bak atomicfile keeps; a file that cannot
// be used at all stops the start with an error naming it.
func TestPersistDamagedFiles(t *testing.T) {
	dir := t.TempDir()
	e, err := Open(dir, nil)
	must(t, err)
	v, _ := e.Vhost("/")
	_, err = v.DeclareQueue(QueueDecl{Name: "a", Durable: true})
	must(t, err)
	_, err = v.DeclareQueue(QueueDecl{Name: "b", Durable: true})
	must(t, err)
	path := filepath.Join(dir, "amqp", VhostID("/")+".json")
	data, err := os.ReadFile(path)
	must(t, err)
	must(t, os.WriteFile(path, data[:len(data)/2], 0o644))
	e2, err := Open(dir, nil)
	must(t, err)
	v2, _ := e2.Vhost("/")
	if _, ok := v2.Queue("a"); !ok {
		t.Fatal("backup not used")
	}
	for _, bad := range []string{
		`{"vhost":"/","version":1,"queueIdCeiling":5,"exchanges":[],"queues":[{"name":"q","id":9,"arguments":{}}],"bindings":[]}`,
		`{"vhost":"/","version":1,"queueIdCeiling":5,"exchanges":[],"queues":[],"bindings":[{"source":"amq.direct","destination":"gone","routingKey":"","arguments":{}}]}`,
		`{"vhost":"/","version":1,"queueIdCeiling":5,"exchanges":[{"name":"x","type":"weird","arguments":{}}],"queues":[],"bindings":[]}`,
		`{"vhost":"/","version":1,"queueIdCeiling":5,"exchanges":[],"queues":[{"name":"q","id":1,"arguments":{"k":["Z",1]}}],"bindings":[]}`,
		`{"vhost":"other","version":1,"queueIdCeiling":5,"exchanges":[],"queues":[],"bindings":[]}`,
	} {
		must(t, os.WriteFile(path, []byte(bad), 0o644))
		must(t, os.WriteFile(path+".bak", []byte(bad), 0o644))
		_, err := Open(dir, nil)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("damaged file %s: error %v does not name %s", bad, err, path)
		}
	}
}

// A failed metadata write is answered 541 and is sticky: no later durable
// change is acknowledged while memory and disk disagree.
func TestPersistWriteFailureSticky(t *testing.T) {
	dir := t.TempDir()
	e, err := Open(dir, nil)
	must(t, err)
	v, _ := e.Vhost("/")
	// A directory where the file should go makes the rename fail.
	must(t, os.MkdirAll(filepath.Join(dir, "amqp", VhostID("/")+".json", "x"), 0o755))
	_, err = v.DeclareQueue(QueueDecl{Name: "q", Durable: true})
	var ae *Error
	if err == nil || !asError(err, &ae) || ae.Code != InternalError || !ae.Hard() {
		t.Fatalf("want 541, got %v", err)
	}
	if _, ok := v.Queue("q"); ok {
		t.Fatal("a declare answered 541 left its queue behind")
	}
	must(t, os.RemoveAll(filepath.Join(dir, "amqp", VhostID("/")+".json")))
	_, err = v.DeclareQueue(QueueDecl{Name: "q2", Durable: true})
	if err == nil || !strings.Contains(err.Error(), "earlier failure") {
		t.Fatalf("failure not sticky: %v", err)
	}
	// Transient changes need no write and still work.
	_, err = v.DeclareQueue(QueueDecl{Name: "t"})
	must(t, err)
}

// A vhost file of any content loads or is refused with an error, never a
// panic; what loads encodes again.
func FuzzDecodeVhost(f *testing.F) {
	e, _ := Open(f.TempDir(), nil)
	v, _ := e.Vhost("/")
	_ = v.DeclareExchange(ExchangeDecl{Name: "h", Type: Headers, Durable: true})
	_, _ = v.DeclareQueue(QueueDecl{Name: "q", Durable: true, Args: Args{"x-max-length": int32(3)}})
	_ = v.Bind(BindingDecl{Source: "h", Destination: "q", Args: Args{"x-match": "any", "k": "v"}}, Owner{})
	v.mu.Lock()
	seed, _ := v.encode()
	v.mu.Unlock()
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeVhost(b, &persister{})
		if err != nil {
			return
		}
		if _, err := v.encode(); err != nil {
			t.Fatalf("loaded but cannot encode: %v", err)
		}
		var r Targets
		_ = v.Route("h", "", map[string]any{"k": "v"}, &r)
	})
}
