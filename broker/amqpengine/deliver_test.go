package amqpengine

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/schedule"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/wire"
)

// rig is an engine on a real store, offset table and delay service in
// a temp dir; reopen simulates a broker restart on the same files.
type rig struct {
	dir    string
	e      *Engine
	st     *store.Store
	offs   *meta.Offsets
	levels *schedule.Levels
	delays []time.Duration
}

func newRig(t testing.TB, delays ...time.Duration) *rig {
	t.Helper()
	if len(delays) == 0 {
		delays = []time.Duration{time.Second, time.Second, 100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond}
	}
	r := &rig{dir: t.TempDir(), delays: delays}
	r.open(t)
	t.Cleanup(func() { r.close(t) })
	return r
}

func (r *rig) open(t testing.TB) {
	t.Helper()
	var err error
	if r.st, err = store.Open(store.Config{RootDir: filepath.Join(r.dir, "store"), FlushMode: store.SyncFlush, LightQueues: true}); err != nil {
		t.Fatal(err)
	}
	if r.offs, err = meta.LoadOffsets(filepath.Join(r.dir, "consumerOffset.json"), nil); err != nil {
		t.Fatal(err)
	}
	if r.levels, err = schedule.OpenLevels(r.st, r.delays, filepath.Join(r.dir, "delayOffset.json"), nil); err != nil {
		t.Fatal(err)
	}
	r.levels.Start()
	if r.e, err = Open(r.dir, nil); err != nil {
		t.Fatal(err)
	}
	r.st.OnDispatch(func(topic string, _ int32, _, _ int64) { r.e.Notify(topic) })
	r.e.Attach(Backend{Store: r.st, Offsets: r.offs, LightQueues: true, MaxDelayLevel: len(r.delays),
		EnsureTopic: func(string) error { return nil },
		Durable: func(end int64) error {
			done := make(chan bool, 1)
			r.st.WaitFlushed(end, func(ok bool) { done <- ok })
			if !<-done {
				return errors.New("flush failed")
			}
			return nil
		}})
}

// close persists the offsets (as the broker does every 5 s and on
// shutdown) and closes the store.
func (r *rig) close(t testing.TB) {
	t.Helper()
	if r.st == nil {
		return
	}
	must(t, r.levels.Stop())
	must(t, r.offs.Flush())
	must(t, r.st.Close())
	r.st = nil
}

func (r *rig) reopen(t *testing.T) {
	r.close(t)
	r.open(t)
}

// props is a content header property list with delivery-mode 2 and a
// message-id.
func props(id string) []byte {
	p := []byte{0x10, 0x80, 2} // flags: delivery-mode, message-id
	p = append(p, byte(len(id)))
	return append(p, id...)
}

func (r *rig) publish(t *testing.T, x, key string, bodies ...string) []PublishResult {
	t.Helper()
	var ms []PublishMsg
	for _, b := range bodies {
		ms = append(ms, PublishMsg{RoutingKey: key, Properties: props("id-" + b), Body: []byte(b), Persistent: true})
	}
	res, err := r.e.Publish("/", x, ms)
	must(t, err)
	return res
}

func (r *rig) fetch(t *testing.T, q, session string, n int, wait time.Duration) []Delivery {
	t.Helper()
	ds, _, _, err := r.e.Fetch("/", q, session, n, wait, false, 0)
	must(t, err)
	return ds
}

func bodies(ds []Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, string(d.Body))
	}
	return out
}

func wantBodies(t *testing.T, ds []Delivery, want ...string) {
	t.Helper()
	got := bodies(ds)
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func (r *rig) committed(t *testing.T, q string) int64 {
	t.Helper()
	v, _ := r.e.Vhost("/")
	qi, _ := v.Queue(q)
	off, _ := r.offs.Query(QueueGroup("/", qi.ID), QueueLMQ("/", qi.ID), wire.LMQQueueID)
	return off
}

func TestPublishFetchAck(t *testing.T) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	declareQ(t, v, "q")
	res := r.publish(t, "", "q", "a", "b")
	for _, x := range res {
		if x.Status != wire.AMQPStored {
			t.Fatalf("results %+v", res)
		}
	}
	if res := r.publish(t, "", "nobody", "c"); res[0].Status != wire.AMQPUnroutable {
		t.Fatalf("unroutable: %+v", res)
	}
	if _, err := r.e.Publish("/", "nox", []PublishMsg{{RoutingKey: "q"}}); err == nil {
		t.Fatal("publish to a missing exchange accepted")
	} else {
		wantErr(t, err, NotFound, "NOT_FOUND - no exchange 'nox' in vhost '/'")
	}
	if n := r.e.Ready("/", 1); n != 2 {
		t.Fatalf("ready %d, want 2", n)
	}
	ds, ready, _, err := r.e.Fetch("/", "q", "s1", 10, 0, false, 0)
	must(t, err)
	wantBodies(t, ds, "a", "b")
	if ready != 0 || ds[0].Redelivered || ds[0].Exchange != "" || ds[0].RoutingKey != "q" || string(ds[0].Properties) != string(props("id-a")) {
		t.Fatalf("ready %d, delivery %+v", ready, ds[0])
	}
	// Acking the second leaves the first unsettled: committed stays at 0.
	n, err := r.e.Settle("/", []SettleItem{{Handle: ds[1].Handle, Op: wire.AMQPAck}})
	must(t, err)
	if n != 1 || r.committed(t, "q") != 0 {
		t.Fatalf("settled %d, committed %d", n, r.committed(t, "q"))
	}
	must2(r.e.Settle("/", []SettleItem{{Handle: ds[0].Handle, Op: wire.AMQPAck}}))
	if c := r.committed(t, "q"); c != 2 {
		t.Fatalf("committed %d after both acks, want 2", c)
	}
	// A late ack of a settled handle is ignored.
	if n, err := r.e.Settle("/", []SettleItem{{Handle: ds[0].Handle, Op: wire.AMQPAck}}); err != nil || n != 0 {
		t.Fatalf("late ack: %d %v", n, err)
	}
}

func must2(_ int, err error) {
	if err != nil {
		panic(err)
	}
}

func TestFanoutStoresOnceDispatchesToEach(t *testing.T) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	must(t, v.DeclareExchange(ExchangeDecl{Name: "fx", Type: Fanout}))
	for _, q := range []string{"q1", "q2", "q3"} {
		declareQ(t, v, q)
		must(t, v.Bind(BindingDecl{Source: "fx", Destination: q}, Owner{}))
	}
	before := r.st.MaxOffset(StoreTopic("/"), 0)
	r.publish(t, "fx", "k%\x01", "m")
	if n := r.st.MaxOffset(StoreTopic("/"), 0) - before; n != 1 {
		t.Fatalf("%d records stored, want 1", n)
	}
	for _, q := range []string{"q1", "q2", "q3"} {
		ds := r.fetch(t, q, "s", 5, 5*time.Second)
		wantBodies(t, ds, "m")
		if ds[0].Exchange != "fx" || ds[0].RoutingKey != "k%\x01" {
			t.Fatalf("%s: %+v", q, ds[0])
		}
	}
}

func TestLongPollWakesOnPublish(t *testing.T) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	declareQ(t, v, "q")
	got := make(chan []Delivery)
	go func() {
		ds, _, _, _ := r.e.Fetch("/", "q", "s", 1, 20*time.Second, false, 0)
		got <- ds
	}()
	for !r.e.d.notify.Load() { // the fetch is about to be held
		time.Sleep(time.Millisecond)
	}
	r.publish(t, "", "q", "late")
	select {
	case ds := <-got:
		wantBodies(t, ds, "late")
	case <-time.After(15 * time.Second):
		t.Fatal("the held fetch was not woken by the publish")
	}
}

func TestReleaseRedeliversAtOnce(t *testing.T) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	declareQ(t, v, "q")
	r.publish(t, "", "q", "a", "b", "c")
	ds := r.fetch(t, "q", "s1", 2, 0)
	wantBodies(t, ds, "a", "b")
	n, err := r.e.Release("/", "s1", nil)
	must(t, err)
	if n != 2 {
		t.Fatalf("released %d", n)
	}
	ds = r.fetch(t, "q", "s2", 3, 0)
	wantBodies(t, ds, "a", "b", "c")
	if !ds[0].Redelivered || !ds[1].Redelivered || ds[2].Redelivered {
		t.Fatalf("redelivered flags %v %v %v", ds[0].Redelivered, ds[1].Redelivered, ds[2].Redelivered)
	}
	// Releasing one handle leaves the others in flight.
	if n, _ := r.e.Release("/", "", []uint64{ds[2].Handle}); n != 1 {
		t.Fatalf("released %d by handle", n)
	}
	if c := r.committed(t, "q"); c != 0 {
		t.Fatalf("committed %d with everything unsettled", c)
	}
}

func TestRequeueComesBackAfterDelay(t *testing.T) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	declareQ(t, v, "q")
	declareQ(t, v, "other")
	must(t, v.DeclareExchange(ExchangeDecl{Name: "fx", Type: Fanout}))
	must(t, v.Bind(BindingDecl{Source: "fx", Destination: "q"}, Owner{}))
	must(t, v.Bind(BindingDecl{Source: "fx", Destination: "other"}, Owner{}))
	r.publish(t, "fx", "", "a")
	ds := r.fetch(t, "q", "s", 1, 0)
	wantBodies(t, ds, "a")
	must2(r.e.Settle("/", []SettleItem{{Handle: ds[0].Handle, Op: wire.AMQPRequeue}}))
	if c := r.committed(t, "q"); c != 1 {
		t.Fatalf("original not settled: committed %d", c)
	}
	ds = r.fetch(t, "q", "s", 1, 15*time.Second)
	wantBodies(t, ds, "a")
	if !ds[0].Redelivered || ds[0].Exchange != "fx" || string(ds[0].Properties) != string(props("id-a")) {
		t.Fatalf("retry copy %+v", ds[0])
	}
	// Requeued again: level 4 this time, still the same queue.
	must2(r.e.Settle("/", []SettleItem{{Handle: ds[0].Handle, Op: wire.AMQPRequeue}}))
	ds = r.fetch(t, "q", "s", 1, 15*time.Second)
	wantBodies(t, ds, "a")
	must2(r.e.Settle("/", []SettleItem{{Handle: ds[0].Handle, Op: wire.AMQPAck}}))
	// The other queue got the message once; the retry copies are only q's.
	wantBodies(t, r.fetch(t, "other", "s", 5, 0), "a")
	if ds := r.fetch(t, "other", "s", 5, 0); len(ds) != 0 {
		t.Fatalf("other got retry copies: %q", bodies(ds))
	}
}

func TestRejectDrops(t *testing.T) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	declareQ(t, v, "q")
	r.publish(t, "", "q", "a")
	ds := r.fetch(t, "q", "s", 1, 0)
	must2(r.e.Settle("/", []SettleItem{{Handle: ds[0].Handle, Op: wire.AMQPReject}}))
	if c := r.committed(t, "q"); c != 1 {
		t.Fatalf("committed %d", c)
	}
	if _, err := r.e.Settle("/", []SettleItem{{Handle: 1, Op: "bogus"}}); err == nil {
		t.Fatal("unknown op accepted")
	}
}

func TestNoAckSettlesAtFetch(t *testing.T) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	declareQ(t, v, "q")
	r.publish(t, "", "q", "a", "b")
	ds, ready, _, err := r.e.Fetch("/", "q", "s", 1, 0, true, 0)
	must(t, err)
	wantBodies(t, ds, "a")
	if ds[0].Handle != 0 || ready != 1 || r.committed(t, "q") != 1 {
		t.Fatalf("handle %d ready %d committed %d", ds[0].Handle, ready, r.committed(t, "q"))
	}
}

func TestPurge(t *testing.T) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	declareQ(t, v, "q")
	r.publish(t, "", "q", "a", "b", "c")
	ds := r.fetch(t, "q", "s", 1, 0)
	n, err := r.e.PurgeQueue("/", "q", Owner{})
	must(t, err)
	if n != 2 || r.e.Ready("/", 1) != 0 {
		t.Fatalf("purged %d, ready %d", n, r.e.Ready("/", 1))
	}
	// The in-flight one stays unsettled until acked.
	if c := r.committed(t, "q"); c != 0 {
		t.Fatalf("committed %d", c)
	}
	must2(r.e.Settle("/", []SettleItem{{Handle: ds[0].Handle, Op: wire.AMQPAck}}))
	if c := r.committed(t, "q"); c != 3 {
		t.Fatalf("committed %d", c)
	}
}

// TestRestartRedeliversUnsettled: after a restart every unsettled message
// comes back, the acked ones below the lowest unsettled do not, the acked
// ones above it do (at-least-once), and all handed out before carry
// redelivered.
func TestRestartRedeliversUnsettled(t *testing.T) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	_, err := v.DeclareQueue(QueueDecl{Name: "q", Durable: true})
	must(t, err)
	r.publish(t, "", "q", "a", "b", "c", "d", "e")
	ds := r.fetch(t, "q", "s", 4, 0)
	wantBodies(t, ds, "a", "b", "c", "d")
	must2(r.e.Settle("/", []SettleItem{{Handle: ds[0].Handle, Op: wire.AMQPAck}, {Handle: ds[2].Handle, Op: wire.AMQPAck}}))
	r.reopen(t) // no Checkpoint: as after a crash
	ds = r.fetch(t, "q", "s", 10, 0)
	wantBodies(t, ds, "b", "c", "d", "e")
	// "e" was never handed out but lies below the reserved mark: its
	// flag may be either (hwmReserve); the others must say redelivered.
	for _, d := range ds[:3] {
		if !d.Redelivered {
			t.Fatalf("%s redelivered=false after a crash", d.Body)
		}
	}
}

// TestCleanRestartExactRedelivered: after a clean shutdown (Checkpoint)
// only messages handed out before are flagged redelivered.
func TestCleanRestartExactRedelivered(t *testing.T) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	_, err := v.DeclareQueue(QueueDecl{Name: "q", Durable: true})
	must(t, err)
	r.publish(t, "", "q", "a", "b")
	wantBodies(t, r.fetch(t, "q", "s", 1, 0), "a")
	r.e.Checkpoint()
	r.reopen(t)
	ds := r.fetch(t, "q", "s", 10, 0)
	wantBodies(t, ds, "a", "b")
	if !ds[0].Redelivered || ds[1].Redelivered {
		t.Fatalf("redelivered flags %v %v", ds[0].Redelivered, ds[1].Redelivered)
	}
}

// TestConsumeTimeoutReleases: an in-flight message past the consume
// timeout goes back to the head, redelivered; its late ack is ignored.
func TestConsumeTimeoutReleases(t *testing.T) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	declareQ(t, v, "q")
	r.publish(t, "", "q", "a")
	ds := r.fetch(t, "q", "s", 1, 0)
	if n := r.e.ExpireDeliveries(time.Now()); n != 0 {
		t.Fatalf("%d expired before the 15 min default", n)
	}
	if n := r.e.ExpireDeliveries(time.Now().Add(16 * time.Minute)); n != 1 {
		t.Fatalf("%d expired after 16 min", n)
	}
	if n, err := r.e.Settle("/", []SettleItem{{Handle: ds[0].Handle, Op: wire.AMQPAck}}); err != nil || n != 0 {
		t.Fatalf("late ack settled %d %v", n, err)
	}
	again := r.fetch(t, "q", "s2", 1, 0)
	wantBodies(t, again, "a")
	if !again[0].Redelivered {
		t.Fatal("expired delivery not flagged redelivered")
	}
}

// TestStoredRecordProperties: one record in the store topic carrying the
// spec's properties: escaped exchange and routing key, base64 of the raw
// properties, KEYS = message-id, TAGS, the light queues, and WAIT by
// delivery mode.
func TestStoredRecordProperties(t *testing.T) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	must(t, v.DeclareExchange(ExchangeDecl{Name: "x%1", Type: Direct}))
	a, b := declareQ(t, v, "a"), declareQ(t, v, "b")
	must(t, v.Bind(BindingDecl{Source: "x%1", Destination: "a", RoutingKey: "k\x02"}, Owner{}))
	must(t, v.Bind(BindingDecl{Source: "x%1", Destination: "b", RoutingKey: "k\x02"}, Owner{}))
	res, err := r.e.Publish("/", "x%1", []PublishMsg{
		{RoutingKey: "k\x02", Properties: props("mid"), Body: []byte("p"), Persistent: true},
		{RoutingKey: "k\x02", Body: []byte("t")},
	})
	must(t, err)
	if res[0].Status != wire.AMQPStored || res[1].Status != wire.AMQPStored {
		t.Fatalf("results %+v", res)
	}
	g := r.st.GetMessages(StoreTopic("/"), 0, 0, 10, 0, nil, nil, nil)
	if g.MsgCount != 2 {
		t.Fatalf("%d records in %s", g.MsgCount, StoreTopic("/"))
	}
	rec := wire.RecordView(g.Body)
	p := rec.Properties()
	want := map[string]string{
		PropExchange: "x%251", PropRoutingKey: "k%02", PropAMQP: "EIACA21pZA==", wire.PropKeys: "mid", wire.PropTags: "k%02",
		wire.PropInnerMultiDispatch: QueueLMQ("/", a.ID) + "," + QueueLMQ("/", b.ID), wire.PropWait: "true",
	}
	for k, w := range want {
		if got := string(wire.PropertyValue(p, k)); got != w {
			t.Errorf("%s = %q, want %q", k, got, w)
		}
	}
	second := wire.RecordView(g.Body[rec.TotalSize():])
	if w := string(wire.PropertyValue(second.Properties(), wire.PropWait)); w != "false" {
		t.Errorf("transient message WAIT = %q, want false", w)
	}
}

// TestPublishTooLarge: properties past the broker's 32 767-byte limit fail
// that message with 406 and store nothing; the next one is stored.
func TestPublishTooLarge(t *testing.T) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	declareQ(t, v, "q")
	big := props(string(make([]byte, 200)))
	hdr := []byte{0x20, 0x00} // headers only
	tbl := []byte{}
	for i := 0; i < 100; i++ {
		k := fmt.Sprintf("k%03d", i)
		tbl = append(tbl, byte(len(k)))
		tbl = append(tbl, k...)
		tbl = append(tbl, 'S', 0, 0, 1, 0)
		tbl = append(tbl, make([]byte, 256)...)
	}
	n := len(tbl)
	hdr = append(hdr, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	hdr = append(hdr, tbl...)
	res, err := r.e.Publish("/", "", []PublishMsg{{RoutingKey: "q", Properties: hdr, Body: []byte("x")}, {RoutingKey: "q", Properties: big, Body: []byte("y")}})
	must(t, err)
	if res[0].Status != wire.AMQPFailed || res[0].Code != PreconditionFailed || res[1].Status != wire.AMQPStored {
		t.Fatalf("results %+v", res)
	}
	wantBodies(t, r.fetch(t, "q", "s", 10, 0), "y")
}

// TestPublishHeadersExchange: the headers table inside the raw properties
// routes the message.
func TestPublishHeadersExchange(t *testing.T) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	must(t, v.DeclareExchange(ExchangeDecl{Name: "hx", Type: Headers}))
	declareQ(t, v, "pdf")
	declareQ(t, v, "zip")
	must(t, v.Bind(BindingDecl{Source: "hx", Destination: "pdf", Args: Args{"format": "pdf"}}, Owner{}))
	must(t, v.Bind(BindingDecl{Source: "hx", Destination: "zip", Args: Args{"format": "zip"}}, Owner{}))
	entry := []byte{6}
	entry = append(entry, "format"...)
	entry = append(entry, 'S', 0, 0, 0, 3)
	entry = append(entry, "pdf"...)
	p := append([]byte{0x20, 0x00, 0, 0, 0, byte(len(entry))}, entry...)
	res, err := r.e.Publish("/", "hx", []PublishMsg{{Properties: p, Body: []byte("doc")}})
	must(t, err)
	if res[0].Status != wire.AMQPStored {
		t.Fatalf("results %+v", res)
	}
	wantBodies(t, r.fetch(t, "pdf", "s", 5, 0), "doc")
	wantBodies(t, r.fetch(t, "zip", "s", 5, 0))
}

// TestForgetQueue: a deleted queue's light queue and offsets go.
func TestForgetQueue(t *testing.T) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	q := declareQ(t, v, "q")
	r.publish(t, "", "q", "a")
	r.fetch(t, "q", "s", 1, 0)
	lmq := QueueLMQ("/", q.ID)
	if r.st.MaxOffset(lmq, 0) != 1 {
		t.Fatal("no light queue")
	}
	must(t, r.e.ForgetQueue("/", q.ID))
	if r.st.MaxOffset(lmq, 0) != 0 {
		t.Fatal("light queue kept")
	}
	if _, ok := r.offs.Query(QueueGroup("/", q.ID), lmq, 0); ok {
		t.Fatal("offsets kept")
	}
}

// WaitReady is a long poll that takes nothing: it returns when a publish
// makes the queue ready, the message stays for a fetch, and an empty
// queue answers 0 at once without a wait.
func TestWaitReadyTakesNothing(t *testing.T) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	declareQ(t, v, "q")
	if n, err := r.e.WaitReady("/", "q", "s", 0); err != nil || n != 0 {
		t.Fatalf("empty queue: %d %v", n, err)
	}
	got := make(chan uint32)
	go func() {
		n, _ := r.e.WaitReady("/", "q", "s", 20*time.Second)
		got <- n
	}()
	for !r.e.d.notify.Load() {
		time.Sleep(time.Millisecond)
	}
	r.publish(t, "", "q", "m")
	select {
	case n := <-got:
		if n != 1 {
			t.Fatalf("ready %d after a publish, want 1", n)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the waiting peek was not woken by the publish")
	}
	wantBodies(t, r.fetch(t, "q", "s", 10, 0), "m")
	if _, err := r.e.WaitReady("/", "nope", "s", 0); err == nil {
		t.Fatal("peek of a missing queue answered")
	}
}

// Cancelling a session's last consumer of a queue ends that session's
// fetch waiting on it (with nothing taken; a peek, WaitReady, likewise),
// and a later publish
// is there for another session, not redelivered; the same session's
// fetches started after the cancel (a new consumer) wait as before, and
// another session's are untouched.
func TestCancelEndsTheSessionsWaits(t *testing.T) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	qi := declareQ(t, v, "q")
	owner := Owner{Gateway: "gw", Conn: 1}
	if _, err := r.e.Consume("/", "q", "s", "c", owner, false); err != nil {
		t.Fatal(err)
	}
	fetched := make(chan []Delivery, 1)
	go func() {
		ds, _, _, _ := r.e.Fetch("/", "q", "s", 10, 20*time.Second, false, 0)
		fetched <- ds
	}()
	other := make(chan []Delivery, 1)
	go func() {
		ds, _, _, _ := r.e.Fetch("/", "q", "other", 10, 20*time.Second, false, 0)
		other <- ds
	}()
	for r.e.d.queue("/", qi.ID, nil).fetching.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	if _, err := r.e.Cancel("/", "s", "c"); err != nil {
		t.Fatal(err)
	}
	select {
	case ds := <-fetched:
		if len(ds) != 0 {
			t.Fatalf("the cancelled session's fetch took %q", bodies(ds))
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the cancelled session's fetch still waits")
	}
	r.publish(t, "", "q", "m")
	select {
	case ds := <-other:
		wantBodies(t, ds, "m")
		if ds[0].Redelivered {
			t.Fatal("redelivered")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("another session's waiting fetch was not woken by the publish")
	}
	r.publish(t, "", "q", "m2")
	wantBodies(t, r.fetch(t, "q", "s", 10, time.Second), "m2") // after the cancel: served
}
