package store

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// setDiskUsage replaces the disk usage probe (read by the retention loop).
func setDiskUsage(s *Store, f func() (float64, error)) {
	s.retentionMu.Lock()
	s.diskUsage = f
	s.retentionMu.Unlock()
}

// ageSegments sets the mtime of all but the last keep segment files.
func ageSegments(t *testing.T, s *Store, keep int, mtime time.Time) {
	t.Helper()
	s.clog.mu.RLock()
	segs := s.clog.segs
	s.clog.mu.RUnlock()
	for _, seg := range segs[:len(segs)-keep] {
		if err := os.Chtimes(seg.path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRetentionByTime(t *testing.T) {
	cfg := testConfig(t, nil)
	clk := newFakeClock()
	cfg.Now = clk.Now
	cfg.DeleteWhen = []int{clk.Now().Hour()}
	cfg.FileReservedTime = time.Hour
	s := openStore(t, cfg)
	setDiskUsage(s, func() (float64, error) { return 10, nil })
	sent := fill(t, s, 5000, 2, 900) // ~4.5 segments
	waitDispatch(t, s)
	waitFlushed(t, s)
	if len(s.clog.segs) < 5 {
		t.Fatalf("only %d segments", len(s.clog.segs))
	}

	// Nothing is old enough yet.
	s.RunRetention()
	if s.MinPhyOffset() != 0 {
		t.Fatalf("deleted fresh segments: min %d", s.MinPhyOffset())
	}

	// Two segments are old; outside the DeleteWhen hour nothing happens.
	ageSegments(t, s, len(s.clog.segs)-2, clk.Now().Add(-2*time.Hour))
	clk.Advance(time.Hour)
	s.RunRetention()
	if s.MinPhyOffset() != 0 {
		t.Fatalf("deleted outside DeleteWhen")
	}
	clk.Advance(23 * time.Hour) // same hour, next day
	s.RunRetention()
	if got := s.MinPhyOffset(); got != 2*cfg.SegmentSize {
		t.Fatalf("MinPhyOffset %d, want %d", got, 2*cfg.SegmentSize)
	}
	if _, err := os.Stat(filepath.Join(commitLogDir(cfg), "00000000000000000000")); !os.IsNotExist(err) {
		t.Fatalf("segment file not removed: %v", err)
	}

	for q := range int32(2) {
		// The first retained message of each queue.
		var first int64 = -1
		for _, p := range sent {
			if p.qid == q && p.res.PhysicalOffset >= 2*cfg.SegmentSize {
				first = p.res.QueueOffset
				break
			}
		}
		if got := s.MinOffset("T", q); got != first {
			t.Fatalf("queue %d: MinOffset %d, want %d", q, got, first)
		}
		r := s.GetMessages("T", q, 0, 8, 0, nil, nil, nil)
		if r.Status != OffsetTooSmall || r.NextBeginOffset != first {
			t.Fatalf("queue %d: read of removed offset: %v next %d", q, r.Status, r.NextBeginOffset)
		}
		r = s.GetMessages("T", q, first, 8, 0, nil, nil, nil)
		if r.Status != Found || records(t, r.Body)[0].PhysicalOffset() < 2*cfg.SegmentSize {
			t.Fatalf("queue %d: read at min: %v", q, r.Status)
		}
		// Consume-queue files wholly below the new minimum are gone.
		cq := s.cqs.get("T", q)
		cq.mu.RLock()
		firstFile := cq.files[0].base
		cq.mu.RUnlock()
		if firstFile != first-first%int64(cfg.CQUnitsPerFile) {
			t.Fatalf("queue %d: first cq file starts at %d, min %d", q, firstFile, first)
		}
		if _, err := os.Stat(fileName(cq.dir, 0)); !os.IsNotExist(err) {
			t.Fatalf("queue %d: cq file 0 not removed", q)
		}
	}

	// State survives a restart.
	mins := []int64{s.MinOffset("T", 0), s.MinOffset("T", 1)}
	s.Close()
	s2 := openStore(t, cfg)
	if s2.MinPhyOffset() != 2*cfg.SegmentSize || s2.MinOffset("T", 0) != mins[0] || s2.MinOffset("T", 1) != mins[1] {
		t.Fatalf("after reopen: minPhy %d, mins %d %d, want %v", s2.MinPhyOffset(), s2.MinOffset("T", 0), s2.MinOffset("T", 1), mins)
	}
	var kept []putRec
	for _, p := range sent {
		if p.res.PhysicalOffset >= 2*cfg.SegmentSize {
			kept = append(kept, p)
		}
	}
	got := readAll(t, s2, "T", 0)
	n := 0
	for _, p := range kept {
		if p.qid == 0 {
			n++
		}
	}
	if len(got) != n {
		t.Fatalf("after reopen: %d messages in queue 0, want %d", len(got), n)
	}
}

func TestRetentionByDiskUsage(t *testing.T) {
	logs := &logBuf{}
	cfg := testConfig(t, logs)
	cfg.DeleteWhen = []int{} // never by time
	s := openStore(t, cfg)
	usage := 80.0
	var mu sync.Mutex
	setDiskUsage(s, func() (float64, error) {
		mu.Lock()
		defer mu.Unlock()
		return usage, nil
	})
	fill(t, s, 4000, 1, 900)
	waitDispatch(t, s)
	waitFlushed(t, s)
	nseg := len(s.clog.segs)

	// Above DiskMaxUsedSpaceRatio (75): oldest segments go regardless of
	// age, but never the active one.
	s.RunRetention()
	if len(s.clog.segs) != 1 || s.MinPhyOffset() != int64(nseg-1)*cfg.SegmentSize {
		t.Fatalf("forced retention left %d segments, min %d", len(s.clog.segs), s.MinPhyOffset())
	}
	if s.MinOffset("T", 0) <= 0 {
		t.Fatalf("queue min not advanced")
	}

	// Above 90 %: appends are refused until usage drops.
	mu.Lock()
	usage = 95
	mu.Unlock()
	s.RunRetention()
	if r := s.Put(msg("T", 0, "x")); r.Status != ServiceNotAvailable {
		t.Fatalf("put on full disk: %v", r.Status)
	}
	if r, _ := s.PutBatch([]Message{*msg("T", 0, "x")}); r.Status != ServiceNotAvailable {
		t.Fatalf("batch on full disk: %v", r.Status)
	}
	mu.Lock()
	usage = 50
	mu.Unlock()
	s.RunRetention()
	mustPut(t, s, msg("T", 0, "x"))
	if !strings.Contains(logs.String(), "[DISK_FULL]") {
		t.Fatalf("disk full not logged")
	}
}

// TestRetentionWhileReading deletes segments under concurrent readers;
// segments are reference counted, so a reader never touches an unmapped
// page, it just sees the data go away.
func TestRetentionWhileReading(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.DeleteWhen = []int{}
	s := openStore(t, cfg)
	setDiskUsage(s, func() (float64, error) { return 80, nil })
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for q := range int32(2) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := int64(0)
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := s.GetMessages("T", q, off, 32, 0, nil, nil, nil)
				for _, v := range records(t, r.Body) {
					if v.QueueID() != q {
						t.Errorf("wrong queue")
					}
				}
				off = r.NextBeginOffset
				s.OffsetByTime("T", q, time.Now().UnixMilli())
			}
		}()
	}
	for range 6 {
		fill(t, s, 800, 2, 1000)
		s.RunRetention()
	}
	close(stop)
	wg.Wait()
}

func waitFlushed(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.FlushedOffset() < s.MaxPhyOffset() {
		if time.Now().After(deadline) {
			t.Fatal("flush stuck")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
