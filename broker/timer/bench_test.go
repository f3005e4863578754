package timer

import "testing"

// benchBlock is how many entries the benchmarks add or deliver between
// untimed Due+Flush rounds that let processed segments go, so that the
// log stays small however large b.N gets.
const benchBlock = 1 << 16

func benchWheel(b *testing.B) *Wheel {
	w := openWheel(b, Options{SegmentEntries: benchBlock})
	if err := w.Due(base, func(Entry) error { return nil }); err != nil {
		b.Fatal(err)
	}
	return w
}

// drain delivers everything due by now and flushes, deleting processed
// segments.
func drain(b *testing.B, w *Wheel, now int64) {
	if err := w.Due(now, func(Entry) error { return nil }); err != nil {
		b.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAdd measures one Add with the default span: entries due over
// the next hour, so most land in distinct slots.
func BenchmarkAdd(b *testing.B) {
	w := benchWheel(b)
	b.ReportAllocs()
	now := base
	var i int64
	for b.Loop() {
		e := Entry{DeliverMs: now + i*7919%3_600_000, Phys: i * 1024, Size: 1024}
		if err := w.Add(e, i+1); err != nil {
			b.Fatal(err)
		}
		if i++; i%benchBlock == 0 {
			b.StopTimer()
			now += 3_600_000
			drain(b, w, now)
			b.StartTimer()
		}
	}
}

// BenchmarkDue measures Due per delivered entry, a thousand entries a
// second.
func BenchmarkDue(b *testing.B) {
	w := benchWheel(b)
	b.ReportAllocs()
	now := base
	delivered := 0
	count := func(Entry) error { delivered++; return nil }
	for left := b.N; left > 0; {
		n := min(left, benchBlock)
		b.StopTimer()
		for i := range int64(n) {
			if err := w.Add(Entry{DeliverMs: now + 1 + i, Phys: i * 1024, Size: 1024}, i+1); err != nil {
				b.Fatal(err)
			}
		}
		now += int64(n) + 1000
		b.StartTimer()
		if err := w.Due(now, count); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		left -= n
	}
	if delivered != b.N {
		b.Fatalf("delivered %d of %d", delivered, b.N)
	}
}
