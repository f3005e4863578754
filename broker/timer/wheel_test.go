package timer

import (
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

func TestDueNeverEarlyAtMostOneSecondLate(t *testing.T) {
	w := openWheel(t, Options{Slots: 60})
	r := &recorder{t: t}
	r.due(w, base) // starts the cursor
	offsets := []int64{0, 1, 500, 999, 1000, 1001, 1999, 2000, 2001, 5500, 59_999, 60_000, 60_001}
	for i, d := range offsets {
		mustAdd(t, w, Entry{DeliverMs: base + d, Phys: int64(i), Size: 100}, int64(i+1))
	}
	if p := w.Pending(); p != int64(len(offsets)) {
		t.Fatalf("Pending %d, want %d", p, len(offsets))
	}
	for now := base; now <= base+62_000; now++ {
		r.due(w, now)
	}
	if len(r.got) != len(offsets) {
		t.Fatalf("%d deliveries, want %d: %+v", len(r.got), len(offsets), r.got)
	}
	for _, d := range r.got {
		if want := ceilMs(d.e.DeliverMs); d.now != want {
			t.Errorf("entry due at +%d delivered at +%d, want +%d", d.e.DeliverMs-base, d.now-base, want-base)
		}
	}
	if p := w.Pending(); p != 0 {
		t.Fatalf("Pending %d after delivering everything", p)
	}
}

func TestDueOrdersSecondsAndHandsEachEntryOnce(t *testing.T) {
	w := openWheel(t, Options{Slots: 3600})
	r := &recorder{t: t}
	r.due(w, base)
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 5000
	for i := range n {
		mustAdd(t, w, Entry{DeliverMs: base + rng.Int64N(600_000), Phys: int64(i)}, int64(i+1))
	}
	// Coarse steps: Due walks every second in between, in order.
	for now := base; now <= base+610_000; now += 7_777 {
		r.due(w, now)
	}
	for phys, c := range r.byPhys() {
		if c != 1 {
			t.Errorf("entry %d delivered %d times", phys, c)
		}
	}
	if len(r.got) != n {
		t.Fatalf("%d deliveries, want %d", len(r.got), n)
	}
}

func TestLateEntriesDeliveredOnNextDue(t *testing.T) {
	w := openWheel(t, Options{Slots: 60})
	r := &recorder{t: t, unordered: true} // late entries come after later seconds
	now := base + 10_500
	r.due(w, now)
	mustAdd(t, w, Entry{DeliverMs: base, Phys: 1}, 1)              // 10 s ago
	mustAdd(t, w, Entry{DeliverMs: base + 10_000, Phys: 2}, 2)     // this second's start
	mustAdd(t, w, Entry{DeliverMs: base - 86_400_000, Phys: 3}, 3) // a day ago
	mustAdd(t, w, Entry{DeliverMs: now + 1, Phys: 4}, 4)           // in this second, but later: not yet
	r.due(w, now)                                                  // same now: the cursor's second is rescanned
	if got := r.byPhys(); len(got) != 3 || got[4] != 0 {
		t.Fatalf("after the second Due at the same time: %v, want entries 1-3", got)
	}
	r.due(w, now+499)
	if len(r.got) != 3 {
		t.Fatalf("entry 4 delivered before its due second: %v", r.byPhys())
	}
	r.due(w, now+500)
	if len(r.got) != 4 {
		t.Fatalf("entry 4 not delivered at its due second: %v", r.byPhys())
	}

	// Past the cursor's second while Due is not called for a while.
	r.due(w, base+20_000)
	mustAdd(t, w, Entry{DeliverMs: base + 15_000, Phys: 5}, 5)
	r.due(w, base+20_000)
	if got := r.byPhys(); got[5] != 1 {
		t.Fatalf("entry added for a passed second not delivered by the next Due: %v", got)
	}
}

func TestRollsEntriesBeyondTheSpan(t *testing.T) {
	w := openWheel(t, Options{Slots: 60, SegmentEntries: 16})
	r := &recorder{t: t}
	r.due(w, base)
	offsets := []int64{200_000, 59_000, 60_000, 61_000, 119_500, 120_000, 3_600_000, 3_600_001}
	for i, d := range offsets {
		mustAdd(t, w, Entry{DeliverMs: base + d, Phys: int64(i)}, int64(i+1))
	}
	for now := base; now <= base+3_700_000; now += 250 {
		r.due(w, now)
	}
	if len(r.got) != len(offsets) {
		t.Fatalf("%d deliveries, want %d: %+v", len(r.got), len(offsets), r.got)
	}
	for _, d := range r.got {
		if want := ceilMs(d.e.DeliverMs); d.now != want {
			t.Errorf("entry due at +%d delivered at +%d, want +%d", d.e.DeliverMs-base, d.now-base, want-base)
		}
	}
	if p := w.Pending(); p != 0 {
		t.Fatalf("Pending %d", p)
	}
	// The hour-out entries were rolled about 60 times each.
	if w.end < 100 {
		t.Fatalf("log has %d entries: entries beyond the span were not rolled", w.end)
	}
}

func TestSevenDayDelayWithDefaultSpan(t *testing.T) {
	w := openWheel(t, Options{})
	r := &recorder{t: t}
	r.due(w, base)
	const day = 86_400_000
	offsets := []int64{7*day - 1000, 7*day - 1, 7 * day, 7*day + 1500, 8 * day, 30 * day}
	checks := []int64{}
	for i, d := range offsets {
		mustAdd(t, w, Entry{DeliverMs: base + d, Phys: int64(i)}, int64(i+1))
		checks = append(checks, base+ceilMs(d)-1, base+ceilMs(d))
	}
	for now := base; now <= base+31*day; now += 3_600_000 {
		checks = append(checks, now)
	}
	slices.Sort(checks)
	for _, now := range checks {
		r.due(w, now)
	}
	if len(r.got) != len(offsets) {
		t.Fatalf("%d deliveries, want %d: %+v", len(r.got), len(offsets), r.got)
	}
	for _, d := range r.got {
		if want := ceilMs(d.e.DeliverMs); d.now != want {
			t.Errorf("entry due at +%d delivered at +%d, want +%d", d.e.DeliverMs-base, d.now-base, want-base)
		}
	}
}

func TestFnErrorStopsAndSameEntriesComeAgain(t *testing.T) {
	w := openWheel(t, Options{Slots: 60})
	r := &recorder{t: t}
	r.due(w, base)
	for i, d := range []int64{1000, 1000, 1000, 2000, 2000, 3000} {
		mustAdd(t, w, Entry{DeliverMs: base + d, Phys: int64(i)}, int64(i+1))
	}
	boom := errors.New("store full")
	var got []int64
	calls := 0
	err := w.Due(base+3000, func(e Entry) error {
		calls++
		if calls == 5 { // the second entry of second 2
			return boom
		}
		got = append(got, e.Phys)
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Due returned %v, want %v", err, boom)
	}
	slices.Sort(got)
	if !slices.Equal(got, []int64{0, 1, 2, 4}) { // newest first within a second
		t.Fatalf("handed over before the error: %v", got)
	}
	if p := w.Pending(); p != 3 {
		t.Fatalf("Pending %d, want 3: second 1 is done, second 2 is not", p)
	}
	got = got[:0]
	if err := w.Due(base+3000, func(e Entry) error { got = append(got, e.Phys); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int64{4, 3, 5}) {
		t.Fatalf("next Due handed over %v, want all of second 2 again, then second 3", got)
	}
	if p := w.Pending(); p != 0 {
		t.Fatalf("Pending %d", p)
	}
}

func TestRestartAfterCloseLosesAndRepeatsNothing(t *testing.T) {
	dir := t.TempDir()
	w := openWheel(t, Options{Dir: dir, Slots: 60, SegmentEntries: 64})
	r := &recorder{t: t}
	r.due(w, base)
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 2000
	for i := range n {
		mustAdd(t, w, Entry{DeliverMs: base + rng.Int64N(300_000), Phys: int64(i)}, int64(i+1))
	}
	for now := base; now <= base+100_000; now += 1000 {
		r.due(w, now)
		if now%10_000 == 0 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := len(r.got)
	pending := w.Pending()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(Entry{}, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: %v", err)
	}

	w = openWheel(t, Options{Dir: dir}) // Slots and SegmentEntries from the checkpoint
	if s := w.Source(); s != n {
		t.Fatalf("Source %d after Close, want %d", s, n)
	}
	if p := w.Pending(); p != pending || p != int64(n-before) {
		t.Fatalf("Pending %d after reopen, want %d (= %d - %d)", p, pending, n, before)
	}
	for now := base + 101_000; now <= base+310_000; now += 1000 {
		r.due(w, now)
		if now%50_000 == 0 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	counts := r.byPhys()
	if len(counts) != n {
		t.Fatalf("%d distinct entries delivered, want %d", len(counts), n)
	}
	for phys, c := range counts {
		if c != 1 {
			t.Errorf("entry %d delivered %d times", phys, c)
		}
	}
	for _, d := range r.got {
		if want := ceilMs(d.e.DeliverMs); d.now != want {
			t.Errorf("entry due at +%d delivered at +%d, want +%d", d.e.DeliverMs-base, d.now-base, want-base)
		}
	}
	// Processed segments were deleted: about a span of Adds is kept.
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if segs := segmentFiles(t, dir); len(segs) > 3 {
		t.Fatalf("%d segment files left after everything was delivered: %v", len(segs), segs)
	}
}

func TestAddsBeforeTheFirstDueSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	w := openWheel(t, Options{Dir: dir, Slots: 60, SegmentEntries: 4})
	for i, d := range []int64{-5000, 0, 1500, 30_000, 90_000} {
		mustAdd(t, w, Entry{DeliverMs: base + d, Phys: int64(i)}, int64(i+1))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = openWheel(t, Options{Dir: dir})
	r := &recorder{t: t, unordered: true}
	for now := base; now <= base+100_000; now += 500 {
		r.due(w, now)
	}
	if len(r.got) != 5 {
		t.Fatalf("%d deliveries, want 5: %+v", len(r.got), r.got)
	}
	for _, d := range r.got {
		if want := max(ceilMs(d.e.DeliverMs), base); d.now != want {
			t.Errorf("entry due at +%d delivered at +%d, want +%d", d.e.DeliverMs-base, d.now-base, want-base)
		}
	}
}

func TestConcurrentAddAndDue(t *testing.T) {
	w := openWheel(t, Options{Slots: 120, SegmentEntries: 1024})
	var clock atomic.Int64
	clock.Store(base)
	const n = 20000
	var wg sync.WaitGroup
	added := make(chan struct{})
	go func() {
		defer close(added)
		rng := rand.New(rand.NewPCG(5, 6))
		for i := range n {
			e := Entry{DeliverMs: clock.Load() + rng.Int64N(200_000) - 2000, Phys: int64(i)}
			if err := w.Add(e, int64(i+1)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var mu sync.Mutex
	seen := make(map[int64]int)
	due := func(now int64) {
		err := w.Due(now, func(e Entry) error {
			if e.DeliverMs > now {
				t.Errorf("entry %+v delivered early at %d", e, now)
			}
			mu.Lock()
			seen[e.Phys]++
			mu.Unlock()
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			due(clock.Add(37))
			if i%100 == 0 {
				if err := w.Flush(); err != nil {
					t.Error(err)
				}
			}
		}
	}()
	<-added
	close(stop)
	wg.Wait()
	due(clock.Load() + 400_000)
	if len(seen) != n {
		t.Fatalf("%d distinct entries delivered, want %d", len(seen), n)
	}
	for phys, c := range seen {
		if c != 1 {
			t.Errorf("entry %d delivered %d times", phys, c)
		}
	}
	if p := w.Pending(); p != 0 {
		t.Fatalf("Pending %d", p)
	}
}

// TestProgress: Progress reports the last Add's marker, the cursor once
// Due started it, and the log's size.
func TestProgress(t *testing.T) {
	w := openWheel(t, Options{Slots: 60})
	mustAdd(t, w, Entry{DeliverMs: base + 5000, Phys: 1, Size: 10}, 7)
	if p := w.Progress(); p.Started || p.Source != 7 || p.LogBytes != entrySize {
		t.Fatalf("before the first Due: %+v", p)
	}
	r := &recorder{t: t}
	r.due(w, base+1500)
	if p := w.Progress(); !p.Started || p.Cursor != (base+1500)/1000 || p.Source != 7 || p.LogBytes != 2*entrySize {
		t.Fatalf("after Due at %d: %+v (the first Due links the entry added before it again)", base+1500, p)
	}
}
