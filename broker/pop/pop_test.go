package pop

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
)

type offsets struct {
	mu sync.Mutex
	m  map[Key]int64
}

func newOffsets() *offsets { return &offsets{m: map[Key]int64{}} }

func (o *offsets) Query(g, t string, q int32) (int64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	v, ok := o.m[Key{g, t, q}]
	return v, ok
}

func (o *offsets) Commit(g, t string, q int32, off int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.m[Key{g, t, q}] = off
}

var k0 = Key{"G", "T", 0}

// take hands out n offsets from next with popTime now and invisibility inv.
func take(s *State, k Key, n int, now, inv int64) []Lease {
	t := s.Take(k, func() int64 { return 0 })
	defer t.Close()
	var out []Lease
	for i := 0; i < n; i++ {
		l := Lease{Offset: t.Next(), PopTime: now, VisibleAt: now + inv}
		t.Lease(l)
		out = append(out, l)
	}
	return out
}

func committed(t *testing.T, o *offsets, k Key) int64 {
	t.Helper()
	v, ok := o.Query(k.Group, k.Topic, k.Queue)
	if !ok {
		t.Fatalf("no committed offset for %v", k)
	}
	return v
}

func TestAckAdvancesCommittedInOrder(t *testing.T) {
	o := newOffsets()
	s := New(o)
	ls := take(s, k0, 3, 1000, 100)
	if got := committed(t, o, k0); got != 0 {
		t.Fatalf("committed %d before any ack, want 0", got)
	}
	if err := s.Ack(k0, ls[1].Offset, ls[1].PopTime, 1050); err != nil {
		t.Fatal(err)
	}
	if got := committed(t, o, k0); got != 0 {
		t.Fatalf("committed %d with offset 0 unacked, want 0", got)
	}
	if err := s.Ack(k0, ls[0].Offset, ls[0].PopTime, 1050); err != nil {
		t.Fatal(err)
	}
	if got := committed(t, o, k0); got != 2 {
		t.Fatalf("committed %d after acking 0 and 1, want 2", got)
	}
	if err := s.Ack(k0, ls[0].Offset, ls[0].PopTime, 1050); !errors.Is(err, ErrExpired) {
		t.Fatalf("second ack of one handle: %v, want ErrExpired", err)
	}
	if got := take(s, k0, 1, 1060, 100)[0].Offset; got != 3 {
		t.Fatalf("next offset %d, want 3 (offset 2 is leased)", got)
	}
}

func TestLeaseExpiryAndReviver(t *testing.T) {
	o := newOffsets()
	s := New(o)
	ls := take(s, k0, 2, 1000, 100)
	if ex := s.Expired(1099); len(ex) != 0 {
		t.Fatalf("expired before visibleAt: %v", ex)
	}
	if _, err := s.Change(k0, ls[1].Offset, ls[1].PopTime, 1050, 5000); err != nil {
		t.Fatal(err)
	}
	ex := s.Expired(1100)
	if len(ex) != 1 || ex[0].Lease.Offset != 0 {
		t.Fatalf("expired at 1100: %v, want offset 0 only", ex)
	}
	// The expired delivery's handle is dead from the moment it is taken out.
	if err := s.Ack(k0, 0, 1000, 1100); !errors.Is(err, ErrExpired) {
		t.Fatalf("ack of an expired handle: %v, want ErrExpired", err)
	}
	if ex2 := s.Expired(1200); len(ex2) != 0 {
		t.Fatalf("an expired lease was handed to the reviver twice: %v", ex2)
	}
	if got := committed(t, o, k0); got != 0 {
		t.Fatalf("committed %d before the retry copy is stored, want 0", got)
	}
	s.Finish(ex[0])
	if got := committed(t, o, k0); got != 1 {
		t.Fatalf("committed %d after the reviver finished offset 0, want 1", got)
	}
	// The changed lease is still alive and acks.
	if err := s.Ack(k0, 1, 1000, 4000); err != nil {
		t.Fatalf("ack after change: %v", err)
	}
	if got := committed(t, o, k0); got != 2 {
		t.Fatalf("committed %d, want 2", got)
	}
}

func TestRestoreRetriesLater(t *testing.T) {
	o := newOffsets()
	s := New(o)
	take(s, k0, 1, 1000, 100)
	if n := s.Inflight("G"); n != 1 {
		t.Fatalf("in-flight %d, want 1", n)
	}
	ex := s.Expired(2000)
	if n := s.Inflight("G"); n != 0 {
		t.Fatalf("in-flight %d while the reviver holds the lease, want 0", n)
	}
	s.Restore(ex[0], 3000)
	if n := s.Inflight("G"); n != 1 {
		t.Fatalf("in-flight %d after the restore, want 1", n)
	}
	if again := s.Expired(2999); len(again) != 0 {
		t.Fatalf("restored lease expired early: %v", again)
	}
	if again := s.Expired(3000); len(again) != 1 {
		t.Fatalf("restored lease not revived at its new time: %v", again)
	}
}

func TestSkipAndRemotingCommitAhead(t *testing.T) {
	o := newOffsets()
	s := New(o)
	tk := s.Take(k0, func() int64 { return 5 })
	if tk.Next() != 5 {
		t.Fatalf("initial next %d, want 5", tk.Next())
	}
	tk.Skip(8) // filtered out
	tk.Close()
	if got := committed(t, o, k0); got != 8 {
		t.Fatalf("committed %d after skipping to 8, want 8", got)
	}
	o.Commit("G", "T", 0, 20) // a remoting consumer of the group went ahead
	tk = s.Take(k0, nil)
	if tk.Next() != 20 {
		t.Fatalf("next %d after a remoting commit to 20, want 20", tk.Next())
	}
	tk.Close()
}

func TestMaxAttemptsFlowSkipsToDLQ(t *testing.T) {
	// A delivery over max attempts is skipped (its DLQ copy stored by the
	// broker); the queue moves on and nothing is leased for it.
	o := newOffsets()
	s := New(o)
	tk := s.Take(k0, nil)
	tk.Skip(tk.Next() + 1)
	tk.Close()
	if got := committed(t, o, k0); got != 1 {
		t.Fatalf("committed %d after dead-lettering offset 0, want 1", got)
	}
	if n := s.Inflight("G"); n != 0 {
		t.Fatalf("%d leases for a dead-lettered message", n)
	}
}

func TestPersistenceRestart(t *testing.T) {
	o := newOffsets()
	s := New(o)
	ls := take(s, k0, 3, 1000, 100)
	if err := s.Ack(k0, 1, ls[1].PopTime, 1010); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config", "popState.json")
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	s2 := New(o) // the restarted broker: same committed offsets
	if err := s2.Load(path); err != nil {
		t.Fatal(err)
	}
	if n := s2.Inflight("G"); n != 2 {
		t.Fatalf("%d leases after restart, want 2", n)
	}
	if err := s2.Ack(k0, 0, ls[0].PopTime, 1020); err != nil {
		t.Fatalf("ack of a lease from before the restart: %v", err)
	}
	if got := committed(t, o, k0); got != 2 {
		t.Fatalf("committed %d, want 2 (offset 1's ack survived the restart)", got)
	}
	if ex := s2.Expired(1100); len(ex) != 1 || ex[0].Lease.Offset != 2 {
		t.Fatalf("expired after restart: %v, want offset 2", ex)
	}
	if got := take(s2, k0, 1, 1200, 100)[0].Offset; got != 3 {
		t.Fatalf("next after restart %d, want 3", got)
	}
	// A damaged file falls back to the backup Save keeps.
	if err := s2.Save(path); err != nil {
		t.Fatal(err)
	}
	s3 := New(o)
	if err := s3.Decode([]byte("{")); err == nil {
		t.Fatal("decoding a torn file succeeded")
	}
	if err := s3.Decode([]byte(`{"version":9}`)); err == nil {
		t.Fatal("decoding an unknown version succeeded")
	}
}

func TestHandleRoundTrip(t *testing.T) {
	h := Handle{PopTime: 1, VisibleAt: 2, Kind: KindRetry, Broker: "broker-a", Queue: 3, Offset: 4, PhyOffset: 5}
	got, err := ParseHandle(h.String())
	if err != nil || got != h {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "v1", "v2 1 2 0 b 0 0 0", "v1 1 2 7 b 0 0 0", "v1 x 2 0 b 0 0 0", "v1 1 2 0 b -1 0 0", "v1 1 2 0 b 0 0 0 9"} {
		if _, err := ParseHandle(bad); !errors.Is(err, ErrBadHandle) {
			t.Errorf("ParseHandle(%q) = %v, want ErrBadHandle", bad, err)
		}
	}
	if OriginalTopic("G", RetryTopic("G", "T")) != "T" || OriginalTopic("G", "%RETRY%G") != "" {
		t.Fatal("retry topic naming does not round-trip")
	}
}

// TestConcurrentTakersNeverShareAnOffset: receives, acks and the reviver
// running together hand each offset to one delivery at a time and commit
// everything in the end.
func TestConcurrentTakersNeverShareAnOffset(t *testing.T) {
	o := newOffsets()
	s := New(o)
	const total = 2000
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				tk := s.Take(k0, nil)
				if tk.Next() >= total {
					tk.Close()
					return
				}
				l := Lease{Offset: tk.Next(), PopTime: 1, VisibleAt: 1 << 40}
				tk.Lease(l)
				tk.Close()
				mu.Lock()
				seen[l.Offset]++
				mu.Unlock()
				if l.Offset%3 == 0 {
					// left to expire: the reviver finishes it
					if _, err := s.Change(k0, l.Offset, 1, 2, 0); err != nil {
						t.Error(err)
					}
					continue
				}
				if err := s.Ack(k0, l.Offset, 1, 2); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Add(1)
	stop := make(chan struct{})
	go func() {
		defer wg.Done()
		for {
			for _, e := range s.Expired(3) {
				s.Finish(e)
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	for {
		if c, _ := o.Query("G", "T", 0); c == total {
			break
		}
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == total {
			for _, e := range s.Expired(3) {
				s.Finish(e)
			}
		}
	}
	close(stop)
	wg.Wait()
	for off, n := range seen {
		if n != 1 {
			t.Fatalf("offset %d handed out %d times", off, n)
		}
	}
	if len(seen) != total {
		t.Fatalf("%d offsets handed out, want %d", len(seen), total)
	}
	if n := s.Inflight("G"); n != 0 {
		t.Fatalf("in-flight count %d after everything finished, want 0", n)
	}
}

// TestForgedHandlesMakeNoState: acks and changes of handles for queues
// without state answer ErrExpired and leave the table as it was.
func TestForgedHandlesMakeNoState(t *testing.T) {
	s := New(newOffsets())
	for i := int32(0); i < 100; i++ {
		k := Key{"G", "T", i}
		if err := s.Ack(k, 1, 1, 0); !errors.Is(err, ErrExpired) {
			t.Fatalf("ack: %v", err)
		}
		if _, err := s.Change(k, 1, 1, 0, 5); !errors.Is(err, ErrExpired) {
			t.Fatalf("change: %v", err)
		}
		if _, err := s.Get(k, 1, 1, 0); !errors.Is(err, ErrExpired) {
			t.Fatalf("get: %v", err)
		}
		s.Finish(Expiry{Key: k})
		s.Restore(Expiry{Key: k}, 5)
	}
	if n := len(s.qs); n != 0 {
		t.Fatalf("%d queue states made by forged handles", n)
	}
}

// TestRenew: auto-renewed leases of live clients are extended (their
// handles keep working), until the maximum age; a gone client's lease
// becomes visible soon; other leases are left alone.
func TestRenew(t *testing.T) {
	o := newOffsets()
	s := New(o)
	tk := s.Take(k0, nil)
	tk.Lease(Lease{Offset: 0, PopTime: 0, VisibleAt: 60_000, AutoRenew: true, ClientID: "live"})
	tk.Lease(Lease{Offset: 1, PopTime: 0, VisibleAt: 60_000, AutoRenew: true, ClientID: "gone"})
	tk.Lease(Lease{Offset: 2, PopTime: 0, VisibleAt: 60_000, ClientID: "live"})
	tk.Close()
	alive := func(id string) bool { return id == "live" }
	if n := s.Renew(40_000, 60_000, alive); n != 0 {
		t.Fatalf("renewed %d leases 20 s before they were due", n)
	}
	// offset 1's client is gone: visible 1 s after the renewal pass
	ex := s.Expired(41_000)
	if len(ex) != 1 || ex[0].Lease.Offset != 1 {
		t.Fatalf("expired at 41 s: %v, want the gone client's offset 1", ex)
	}
	if n := s.Renew(55_000, 60_000, alive); n != 1 {
		t.Fatalf("renewed %d leases, want 1", n)
	}
	if ex = s.Expired(60_000); len(ex) != 1 || ex[0].Lease.Offset != 2 {
		t.Fatalf("expired at 60 s: %v, want offset 2 (not auto-renewed)", ex)
	}
	if err := s.Ack(k0, 0, 0, 100_000); err != nil {
		t.Fatalf("ack of a renewed lease after its first visibleAt: %v", err)
	}
	tk = s.Take(k0, nil)
	tk.Lease(Lease{Offset: 3, PopTime: 0, VisibleAt: RenewMaxAge + 5_000, AutoRenew: true, ClientID: "live"})
	tk.Close()
	if n := s.Renew(RenewMaxAge, 60_000, alive); n != 0 {
		t.Fatalf("renewed a lease %d ms after its popTime", RenewMaxAge)
	}
}

// TestChangeEndsRenewal: a push consumer nacks an auto-renewed delivery
// by changing its invisibility; the renewal must not extend it again, or
// the message never comes back while the client stays connected.
func TestChangeEndsRenewal(t *testing.T) {
	s := New(newOffsets())
	tk := s.Take(k0, nil)
	tk.Lease(Lease{Offset: 0, PopTime: 0, VisibleAt: 60_000, AutoRenew: true, ClientID: "live"})
	tk.Close()
	l, err := s.Change(k0, 0, 0, 1_000, 1_001)
	if err != nil {
		t.Fatal(err)
	}
	if l.AutoRenew {
		t.Error("the changed lease is still auto-renewed")
	}
	if n := s.Renew(1_000, 60_000, func(string) bool { return true }); n != 0 {
		t.Fatalf("renewed %d leases after the client changed their invisibility", n)
	}
	if ex := s.Expired(1_001); len(ex) != 1 || ex[0].Lease.Offset != 0 {
		t.Fatalf("expired at the changed time: %v, want offset 0", ex)
	}
}

func TestResetMovesBackwardsAndRedelivers(t *testing.T) {
	o := newOffsets()
	s := New(o)
	for _, l := range take(s, k0, 10, 1000, 100) {
		if err := s.Ack(k0, l.Offset, l.PopTime, 1050); err != nil {
			t.Fatal(err)
		}
	}
	inflight := take(s, k0, 2, 1060, 100) // offsets 10 and 11 leased
	if got := committed(t, o, k0); got != 10 {
		t.Fatalf("committed %d after acking 0..9, want 10", got)
	}
	s.Reset(k0, 0)
	if got := committed(t, o, k0); got != 0 {
		t.Fatalf("committed %d after reset to 0, want 0", got)
	}
	if n := s.Inflight(k0.Group); n != 0 {
		t.Fatalf("%d leases in flight after reset, want 0", n)
	}
	if err := s.Ack(k0, inflight[0].Offset, inflight[0].PopTime, 1070); !errors.Is(err, ErrExpired) {
		t.Fatalf("ack of a delivery from before the reset: %v, want ErrExpired", err)
	}
	ls := take(s, k0, 12, 2000, 100)
	for i, l := range ls {
		if l.Offset != int64(i) {
			t.Fatalf("delivery %d after reset is offset %d, want %d", i, l.Offset, i)
		}
	}
	// Committed advances again from the reset point as the redeliveries are acked.
	for _, l := range ls[:5] {
		if err := s.Ack(k0, l.Offset, l.PopTime, 2050); err != nil {
			t.Fatal(err)
		}
	}
	if got := committed(t, o, k0); got != 5 {
		t.Fatalf("committed %d after acking 0..4 again, want 5", got)
	}
}

func TestCommitBackwardsResetsForwardsSkips(t *testing.T) {
	o := newOffsets()
	s := New(o)
	for _, l := range take(s, k0, 10, 1000, 100) {
		if err := s.Ack(k0, l.Offset, l.PopTime, 1050); err != nil {
			t.Fatal(err)
		}
	}
	s.Commit(k0, 3) // backwards: POP redelivers from 3
	if got := take(s, k0, 1, 1100, 100)[0].Offset; got != 3 {
		t.Fatalf("first delivery after committing 3 is offset %d, want 3", got)
	}
	s.Commit(k0, 20) // forwards: skip ahead
	if got := take(s, k0, 1, 1200, 100)[0].Offset; got != 20 {
		t.Fatalf("first delivery after committing 20 is offset %d, want 20", got)
	}
	// A queue without POP state is a plain commit.
	k1 := Key{"G", "T", 1}
	o.Commit(k1.Group, k1.Topic, k1.Queue, 7)
	s.Commit(k1, 2)
	if got := committed(t, o, k1); got != 2 || s.lookup(k1) != nil {
		t.Fatalf("commit on a queue without POP state: committed %d, state %v; want 2 and none", got, s.lookup(k1) != nil)
	}
}

func TestActive(t *testing.T) {
	s := New(newOffsets())
	if s.Active("G", "T") {
		t.Fatal("active before any receive")
	}
	take(s, Key{"G", "T", 3}, 1, 1000, 100)
	if !s.Active("G", "T") || s.Active("G", "U") || s.Active("H", "T") {
		t.Fatal("Active must name exactly the (group, topic) received from")
	}
}
