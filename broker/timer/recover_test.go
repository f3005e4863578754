package timer

import (
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// scheduled returns n entries due within spanMs of base; Phys is the index.
func scheduled(seed uint64, n int, spanMs int64) []Entry {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	es := make([]Entry, n)
	for i := range es {
		es[i] = Entry{DeliverMs: base + rng.Int64N(spanMs), Phys: int64(i), Size: int32(100 + i%50)}
	}
	return es
}

func addRange(t testing.TB, w *Wheel, es []Entry, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		mustAdd(t, w, es[i], int64(i+1))
	}
}

// checkRecovered checks the deliveries of a crashed wheel (before: those
// the checkpoint had recorded as processed) against those of the
// recovered one: each entry exactly once overall, and each of after at its
// due second (or at from, if that was already past).
func checkRecovered(t *testing.T, n int, before []delivery, after []delivery, from int64) {
	t.Helper()
	seen := make(map[int64]int)
	for _, d := range before {
		seen[d.e.Phys]++
	}
	for _, d := range after {
		if seen[d.e.Phys] > 0 {
			t.Errorf("entry %d delivered again after recovery", d.e.Phys)
		}
		seen[d.e.Phys]++
		if want := max(ceilMs(d.e.DeliverMs), from); d.now != want {
			t.Errorf("entry %d due at +%d delivered at +%d after recovery, want +%d",
				d.e.Phys, d.e.DeliverMs-base, d.now-base, want-base)
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct entries delivered, want %d", len(seen), n)
	}
}

// The process dies without Close: the copy holds whatever reached the
// files, including Adds and deliveries after the last Flush.
func TestCrashRecoveryReAddsFromSource(t *testing.T) {
	dir := t.TempDir()
	es := scheduled(7, 600, 240_000)
	w := openWheel(t, Options{Dir: dir, Slots: 60, SegmentEntries: 32})
	r := &recorder{t: t, unordered: true} // later Adds include passed seconds
	r.due(w, base)
	addRange(t, w, es, 0, 400)
	for now := base; now <= base+60_000; now += 1000 {
		r.due(w, now)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	flushed, pending := len(r.got), w.Pending()
	addRange(t, w, es, 400, 600)
	for now := base + 61_000; now <= base+120_000; now += 1000 {
		r.due(w, now)
	}
	if len(r.got) == flushed {
		t.Fatal("nothing delivered after the Flush: the test does not cover redelivery")
	}
	crashed := t.TempDir()
	copyDir(t, dir, crashed)

	logs := &logBuf{}
	w2 := openWheel(t, Options{Dir: crashed, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if !strings.Contains(logs.String(), "crashed=true") {
		t.Errorf("recovery did not notice the crash: %s", logs)
	}
	if s := w2.Source(); s != 400 {
		t.Fatalf("Source %d after crash, want 400 (the last Flush)", s)
	}
	if p := w2.Pending(); p != pending {
		t.Fatalf("Pending %d after crash, want %d", p, pending)
	}
	addRange(t, w2, es, int(w2.Source()), len(es))
	r2 := &recorder{t: t, unordered: true}
	for now := base + 60_000; now <= base+250_000; now += 1000 {
		r2.due(w2, now)
	}
	checkRecovered(t, len(es), r.got[:flushed], r2.got, base+60_000)
	// What was delivered after the Flush came again: at-least-once.
	again := r2.byPhys()
	for _, d := range r.got[flushed:] {
		if again[d.e.Phys] != 1 {
			t.Errorf("entry %d delivered after the Flush was not delivered again", d.e.Phys)
		}
	}
}

// The process dies inside a Flush, after the wheel pages were written but
// before the checkpoint was replaced, with a torn entry at the log's end:
// slots then link entries the checkpoint does not count.
func TestCrashBetweenWheelWriteAndCheckpoint(t *testing.T) {
	dir := t.TempDir()
	es := scheduled(9, 450, 200_000)
	// A span long enough that the second Flush deletes no segment: the real
	// crash comes before its checkpoint, and so before any deletion.
	w := openWheel(t, Options{Dir: dir, Slots: 600, SegmentEntries: 32})
	r := &recorder{t: t, unordered: true}
	r.due(w, base)
	addRange(t, w, es, 0, 200)
	for now := base; now <= base+30_000; now += 1000 {
		r.due(w, now)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	flushed, pending := len(r.got), w.Pending()
	oldCk, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	addRange(t, w, es, 200, 400)
	for now := base + 31_000; now <= base+60_000; now += 1000 {
		r.due(w, now)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	addRange(t, w, es, 400, 450)
	last := w.end - 1

	crashed := t.TempDir()
	copyDir(t, dir, crashed)
	if err := os.WriteFile(filepath.Join(crashed, "checkpoint"), oldCk, 0o644); err != nil {
		t.Fatal(err)
	}
	tearEntry(t, crashed, 32, last)

	logs := &logBuf{}
	w2 := openWheel(t, Options{Dir: crashed, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if strings.Contains(logs.String(), "repairedSlots=0") {
		t.Errorf("no slot repaired, yet the wheel file is ahead of the checkpoint: %s", logs)
	}
	if s := w2.Source(); s != 200 {
		t.Fatalf("Source %d, want 200 (the checkpoint's)", s)
	}
	if p := w2.Pending(); p != pending {
		t.Fatalf("Pending %d, want %d", p, pending)
	}
	addRange(t, w2, es, int(w2.Source()), len(es))
	r2 := &recorder{t: t, unordered: true}
	for now := base + 30_000; now <= base+210_000; now += 1000 {
		r2.due(w2, now)
	}
	checkRecovered(t, len(es), r.got[:flushed], r2.got, base+30_000)

	// Crash again, without a Flush since recovery: the repaired slots
	// were written at Open, so the wheel file links nothing of the first
	// run past the checkpoint, whose entries the second run overwrote.
	again := t.TempDir()
	copyDir(t, crashed, again)
	w3 := openWheel(t, Options{Dir: again})
	if s, p := w3.Source(), w3.Pending(); s != 200 || p != pending {
		t.Fatalf("Source %d, Pending %d after the second crash, want 200, %d", s, p, pending)
	}
	addRange(t, w3, es, 200, len(es))
	r3 := &recorder{t: t, unordered: true}
	for now := base + 30_000; now <= base+210_000; now += 1000 {
		r3.due(w3, now)
	}
	checkRecovered(t, len(es), r.got[:flushed], r3.got, base+30_000)
}

func TestTornLastEntryAfterCheckpoint(t *testing.T) {
	dir := t.TempDir()
	w := openWheel(t, Options{Dir: dir, Slots: 60, SegmentEntries: 8})
	r := &recorder{t: t}
	r.due(w, base)
	es := scheduled(11, 20, 50_000)
	addRange(t, w, es, 0, 19)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	addRange(t, w, es, 19, 20)
	crashed := t.TempDir()
	copyDir(t, dir, crashed)
	tearEntry(t, crashed, 8, 19)

	w2 := openWheel(t, Options{Dir: crashed})
	if s := w2.Source(); s != 19 {
		t.Fatalf("Source %d, want 19", s)
	}
	addRange(t, w2, es, 19, 20)
	r2 := &recorder{t: t, unordered: true}
	for now := base; now <= base+60_000; now += 1000 {
		r2.due(w2, now)
	}
	checkRecovered(t, len(es), nil, r2.got, base)
}

// tearEntry overwrites the second half of entry idx, as a write cut short
// would leave it.
func tearEntry(t *testing.T, dir string, segEntries, idx int64) {
	t.Helper()
	p := segmentPath(filepath.Join(dir, "log"), idx/segEntries*segEntries)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(strings.Repeat("\xa5", entrySize/2)), idx%segEntries*entrySize+entrySize/2); err != nil {
		t.Fatal(err)
	}
}

func TestBadFilesAreErrorsNamingThem(t *testing.T) {
	// newWheel returns the directory of a closed wheel with a few entries.
	newWheel := func(t *testing.T) string {
		dir := t.TempDir()
		w := openWheel(t, Options{Dir: dir, Slots: 60, SegmentEntries: 8})
		if err := w.Due(base, func(Entry) error { return nil }); err != nil {
			t.Fatal(err)
		}
		for i := range 12 {
			mustAdd(t, w, Entry{DeliverMs: base + int64(i)*1000, Phys: int64(i)}, int64(i+1))
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	flip := func(t *testing.T, p string, off int64) {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[off] ^= 0xff
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name  string
		spoil func(t *testing.T, dir string) (o Options, inErr string)
	}{
		{"corrupt checkpoint", func(t *testing.T, dir string) (Options, string) {
			p := filepath.Join(dir, "checkpoint")
			flip(t, p, 30)
			return Options{}, p
		}},
		{"short checkpoint", func(t *testing.T, dir string) (Options, string) {
			p := filepath.Join(dir, "checkpoint")
			if err := os.Truncate(p, 20); err != nil {
				t.Fatal(err)
			}
			return Options{}, p
		}},
		{"missing wheel file", func(t *testing.T, dir string) (Options, string) {
			p := filepath.Join(dir, "wheel")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			return Options{}, p
		}},
		{"corrupt slot", func(t *testing.T, dir string) (Options, string) {
			p := filepath.Join(dir, "wheel")
			flip(t, p, wheelHeaderSize+slotSize*(base/1000%60+1)+3)
			return Options{}, "slot"
		}},
		{"corrupt entry below the checkpoint", func(t *testing.T, dir string) (Options, string) {
			p := segmentPath(filepath.Join(dir, "log"), 8)
			flip(t, p, entrySize*3+5) // entry 11, the last the checkpoint counts
			return Options{}, p
		}},
		{"missing segment", func(t *testing.T, dir string) (Options, string) {
			p := segmentPath(filepath.Join(dir, "log"), 8)
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			return Options{}, "entry 11"
		}},
		{"segments without checkpoint", func(t *testing.T, dir string) (Options, string) {
			if err := os.Remove(filepath.Join(dir, "checkpoint")); err != nil {
				t.Fatal(err)
			}
			return Options{}, "no checkpoint"
		}},
		{"other span", func(t *testing.T, dir string) (Options, string) {
			return Options{Slots: 120}, "Slots"
		}},
		{"dir is a file", func(t *testing.T, dir string) (Options, string) {
			p := filepath.Join(dir, "checkpoint")
			return Options{Dir: p}, p
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := newWheel(t)
			o, inErr := c.spoil(t, dir)
			if o.Dir == "" {
				o.Dir = dir
			}
			o.Logger = quietLogger()
			w, err := Open(o)
			if err == nil {
				w.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), inErr) {
				t.Fatalf("error %q does not mention %q", err, inErr)
			}
		})
	}
}

func TestSecondOpenOfTheSameDirFails(t *testing.T) {
	dir := t.TempDir()
	openWheel(t, Options{Dir: dir, Slots: 60})
	w, err := Open(Options{Dir: dir, Logger: quietLogger()})
	if err == nil {
		w.Close()
		t.Fatal("two wheels opened the same directory")
	}
	if !strings.Contains(err.Error(), filepath.Join(dir, "lock")) {
		t.Fatalf("error %q does not name the lock file", err)
	}
}

// Random Adds (many beyond the span, some already due), Due and Flush,
// with the power cut at a random point: after recovery and re-adding
// from Source, every entry is delivered, none early, none twice after
// recovery, and none that the last checkpoint recorded as delivered.
func TestRandomCrashes(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 42))
		dir := t.TempDir()
		w := openWheel(t, Options{Dir: dir, Slots: 30, SegmentEntries: 16})
		r := &recorder{t: t, unordered: true}
		now := base
		if seed%3 != 0 { // else the first Adds come before the first Due
			r.due(w, now)
		}
		var es []Entry
		flushed := 0
		crashAt := 50 + rng.IntN(300)
		for step := 0; step < crashAt; step++ {
			switch k := rng.IntN(10); {
			case k < 6:
				e := Entry{DeliverMs: now + rng.Int64N(120_000) - 5_000, Phys: int64(len(es))}
				es = append(es, e)
				mustAdd(t, w, e, int64(len(es)))
			case k < 9:
				now += rng.Int64N(3_000)
				r.due(w, now)
			default:
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
				flushed = len(r.got)
			}
		}
		crashed := t.TempDir()
		copyDir(t, dir, crashed)
		// A power cut also loses some of what was never fsynced.
		for i := w.synced; i < w.end; i++ {
			if rng.IntN(2) == 0 {
				tearEntry(t, crashed, 16, i)
			}
		}
		w.Close()

		w2 := openWheel(t, Options{Dir: crashed})
		for i := int(w2.Source()); i < len(es); i++ {
			mustAdd(t, w2, es[i], int64(i+1))
		}
		r2 := &recorder{t: t, unordered: true}
		for end := now + 130_000; now < end; now += 700 {
			r2.due(w2, now)
		}
		before := make(map[int64]bool)
		for _, d := range r.got[:flushed] {
			before[d.e.Phys] = true
		}
		after := r2.byPhys()
		for i := range int64(len(es)) {
			if before[i] && after[i] > 0 {
				t.Errorf("seed %d: entry %d delivered before the checkpoint and again after recovery", seed, i)
			}
			if !before[i] && after[i] != 1 {
				t.Errorf("seed %d: entry %d (+%d) delivered %d times after recovery, want 1", seed, i, es[i].DeliverMs-base, after[i])
			}
		}
		if p := w2.Pending(); p != 0 {
			t.Errorf("seed %d: Pending %d at the end", seed, p)
		}
		w2.Close()
	}
}
