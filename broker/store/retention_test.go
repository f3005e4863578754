package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// setDiskUsage replaces the disk usage probe with one reporting a percent
// of a 100 GiB disk.
func setDiskUsage(s *Store, f func() (float64, error)) {
	const total = 100 << 30
	s.mu.Lock()
	s.diskUsage = func(string) (uint64, uint64, error) {
		p, err := f()
		return uint64(p / 100 * total), total, err
	}
	s.mu.Unlock()
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

// TestRetentionByDiskUsage walks the disk-pressure rules (retention.go)
// with a simulated usage: consumed segments go above
// DiskMaxUsedSpaceRatio, unconsumed ones only above max(it, 90), appends
// stop above 88 and resume at 86.
func TestRetentionByDiskUsage(t *testing.T) {
	logs := &logBuf{}
	cfg := testConfig(t, logs)
	cfg.DeleteWhen = []int{} // never by time
	s := openStore(t, cfg)
	usage := 80.0
	var mu sync.Mutex
	setUsage := func(p float64) {
		mu.Lock()
		usage = p
		mu.Unlock()
	}
	setDiskUsage(s, func() (float64, error) {
		mu.Lock()
		defer mu.Unlock()
		return usage, nil
	})
	sent := fill(t, s, 4000, 2, 900)
	waitDispatch(t, s)
	waitFlushed(t, s)
	nseg := len(s.clog.segs)

	// Above DiskMaxUsedSpaceRatio (75) but nothing consumed: kept, and
	// the stuck reclaim is reported once.
	s.RunRetention()
	s.RunRetention()
	if s.MinPhyOffset() != 0 {
		t.Fatalf("deleted unconsumed data at 80%%: min %d", s.MinPhyOffset())
	}
	if n := strings.Count(logs.String(), "the oldest segment holds unconsumed messages"); n != 1 {
		t.Fatalf("stuck reclaim logged %d times, want 1:\n%s", n, logs.String())
	}

	// Queue 0 consumed up to the start of segment 2, queue 1 not at all:
	// segments 0 and 1 still hold queue 1's messages.
	consumed := map[int32]int64{0: 0, 1: 0}
	var cmu sync.Mutex
	s.SetConsumedOffsets(func(topic string, q int32) (int64, bool) {
		cmu.Lock()
		defer cmu.Unlock()
		return consumed[q], topic == "T"
	})
	firstAt := func(q int32, phy int64) int64 {
		for _, p := range sent {
			if p.qid == q && p.res.PhysicalOffset >= phy {
				return p.res.QueueOffset
			}
		}
		t.Fatalf("no message of queue %d at or after %d", q, phy)
		return 0
	}
	cmu.Lock()
	consumed[0] = firstAt(0, 2*cfg.SegmentSize)
	cmu.Unlock()
	s.RunRetention()
	if s.MinPhyOffset() != 0 {
		t.Fatalf("deleted a segment holding queue 1's unconsumed messages")
	}

	// Everything consumed: all but the active segment go, whatever their
	// age, and appends continue.
	cmu.Lock()
	consumed[0], consumed[1] = 1<<40, 1<<40
	cmu.Unlock()
	s.RunRetention()
	if len(s.clog.segs) != 1 || s.MinPhyOffset() != int64(nseg-1)*cfg.SegmentSize {
		t.Fatalf("reclaim left %d segments, min %d", len(s.clog.segs), s.MinPhyOffset())
	}
	if s.MinOffset("T", 0) <= 0 {
		t.Fatalf("queue min not advanced")
	}
	if strings.Contains(logs.String(), "deleted a segment holding unconsumed") {
		t.Fatalf("consumed segments reported as unconsumed:\n%s", logs.String())
	}
	mustPut(t, s, msg("T", 0, "x"))

	// Above the warning level (90): the periodic check (the retention
	// loop, every RetentionInterval) marks the disk full; appends are
	// refused until usage is back at or below the clean level (85),
	// counting the next segment.
	setUsage(91)
	s.RunRetention()
	if r := s.Put(msg("T", 0, "x")); r.Status != ServiceNotAvailable {
		t.Fatalf("put at 91%%: %v", r.Status)
	}
	if r, _ := s.PutBatch([]Message{*msg("T", 0, "x")}); r.Status != ServiceNotAvailable {
		t.Fatalf("batch on full disk: %v", r.Status)
	}
	if err := s.NotWritable(); !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "90% (diskSpaceWarningLevelRatio)") {
		t.Fatalf("NotWritable = %v, want ErrDiskFull naming the level", err)
	}
	for _, p := range []float64{89, 87, 85} { // below the warning level, above the clean level counting a segment
		setUsage(p)
		s.RunRetention()
		if r := s.Put(msg("T", 0, "x")); r.Status != ServiceNotAvailable {
			t.Fatalf("put at %v%% after a refusal: %v", p, r.Status)
		}
	}
	setUsage(84.9)
	s.RunRetention()
	mustPut(t, s, msg("T", 0, "x"))
	if s.NotWritable() != nil {
		t.Fatalf("NotWritable = %v after usage dropped", s.NotWritable())
	}
	// Between the levels a writable store stays writable.
	setUsage(89)
	s.RunRetention()
	mustPut(t, s, msg("T", 0, "x"))
	// Each transition is logged once, in Java's words.
	for want, n := range map[string]int{
		"level=ERROR msg=\"[DISK_FULL] physic disk maybe full soon 0.91, so mark disk full": 1,
		"level=INFO msg=\"[DISK_FULL] physic disk space OK 0.85, so mark disk ok":           1,
		"the message store is not writable":                                                 1,
	} {
		if got := strings.Count(logs.String(), want); got != n {
			t.Errorf("%d lines with %q, want %d:\n%s", got, want, n, logs.String())
		}
	}
}

// TestDiskFullConsumeQueuePath: the consume-queue file system counts too
// (Java's "logics disk"), without the commit log's segment allowance.
func TestDiskFullConsumeQueuePath(t *testing.T) {
	logs := &logBuf{}
	s := openStore(t, testConfig(t, logs))
	cq := 95.0
	var mu sync.Mutex
	s.mu.Lock()
	s.diskUsage = func(dir string) (uint64, uint64, error) {
		mu.Lock()
		defer mu.Unlock()
		p := 50.0
		if dir == s.cqDir {
			p = cq
		}
		return uint64(p * (1 << 30)), 100 << 30, nil
	}
	s.mu.Unlock()
	s.RunRetention()
	if r := s.Put(msg("T", 0, "x")); r.Status != ServiceNotAvailable {
		t.Fatalf("put with the consume-queue disk at 95%%: %v", r.Status)
	}
	if !strings.Contains(logs.String(), "logics disk maybe full soon 0.95, so mark disk full, storePathLogics="+s.cqDir) {
		t.Fatalf("not logged:\n%s", logs.String())
	}
	mu.Lock()
	cq = 85
	mu.Unlock()
	s.RunRetention()
	mustPut(t, s, msg("T", 0, "x"))
}

// TestNotWritableLoggedPerRefusals: refusals log Java's "not writable"
// line on the first and every notWritableLogEvery-th, not per send.
func TestNotWritableLoggedPerRefusals(t *testing.T) {
	logs := &logBuf{}
	s := openStore(t, testConfig(t, logs))
	setDiskUsage(s, func() (float64, error) { return 95, nil })
	s.RunRetention()
	m := msg("T", 0, "x")
	for range notWritableLogEvery + 1 {
		if r := s.Put(m); r.Status != ServiceNotAvailable {
			t.Fatalf("put on a full disk: %v", r.Status)
		}
	}
	if n := strings.Count(logs.String(), "the message store is not writable"); n != 2 ||
		!strings.Contains(logs.String(), fmt.Sprintf("refusedSinceDiskFull=%d", notWritableLogEvery+1)) {
		t.Fatalf("%d lines for %d refusals:\n%s", n, notWritableLogEvery+1, logs.String())
	}
}

// TestRetentionForcedCountsUnconsumed: above max(DiskMaxUsedSpaceRatio,
// DiskSpaceWarningLevelRatio + 2) % the oldest segment goes even though
// nobody read it, and the WARN line counts its messages per queue.
func TestRetentionForcedCountsUnconsumed(t *testing.T) {
	logs := &logBuf{}
	cfg := testConfig(t, logs)
	cfg.DeleteWhen = []int{}
	s := openStore(t, cfg)
	sent := fill(t, s, 2500, 2, 900)
	waitDispatch(t, s)
	waitFlushed(t, s)
	s.SetConsumedOffsets(func(string, int32) (int64, bool) { return 0, true })
	// Sticks at 92 %: nothing unread goes yet.
	setDiskUsage(s, func() (float64, error) { return 92, nil })
	s.RunRetention()
	if s.MinPhyOffset() != 0 {
		t.Fatal("unread segment deleted at 92%")
	}
	// Sticks at 93 %: all but the active segment go.
	setDiskUsage(s, func() (float64, error) { return 93, nil })
	s.RunRetention()
	if len(s.clog.segs) != 1 {
		t.Fatalf("forced deletion left %d segments", len(s.clog.segs))
	}
	want := map[int32]int{} // the messages of segment 0
	for _, p := range sent {
		if p.res.PhysicalOffset < cfg.SegmentSize {
			want[p.qid]++
		}
	}
	line := ""
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "deleted a segment holding unconsumed messages") && strings.Contains(l, "00000000000000000000") {
			line = l
		}
	}
	exp := fmt.Sprintf("unconsumed=%d queues=\"T/0=%d T/1=%d\"", want[0]+want[1], want[0], want[1])
	if want[1] > want[0] {
		exp = fmt.Sprintf("unconsumed=%d queues=\"T/1=%d T/0=%d\"", want[0]+want[1], want[1], want[0])
	}
	if !strings.Contains(line, "level=WARN") || !strings.Contains(line, exp) {
		t.Fatalf("forced deletion of segment 0 logged as\n%s\nwant WARN with %s", line, exp)
	}
}

// TestRetentionNotForcedWithoutCleanFileForcibly: with
// CleanFileForcibly false nothing unread goes, however full the disk.
func TestRetentionNotForcedWithoutCleanFileForcibly(t *testing.T) {
	logs := &logBuf{}
	cfg := testConfig(t, logs)
	cfg.DeleteWhen = []int{}
	off := false
	cfg.CleanFileForcibly = &off
	s := openStore(t, cfg)
	fill(t, s, 2500, 2, 900)
	waitDispatch(t, s)
	waitFlushed(t, s)
	s.SetConsumedOffsets(func(string, int32) (int64, bool) { return 0, true })
	setDiskUsage(s, func() (float64, error) { return 99, nil })
	s.RunRetention()
	if s.MinPhyOffset() != 0 {
		t.Fatal("unread segment deleted with CleanFileForcibly off")
	}
	if !strings.Contains(logs.String(), "segments holding unread messages are deleted never (cleanFileForciblyEnable=false)") {
		t.Fatalf("start-up line does not state the policy:\n%s", logs.String())
	}
	// Consumed ones still go.
	s.SetConsumedOffsets(func(string, int32) (int64, bool) { return 1 << 40, true })
	s.RunRetention()
	if s.MinPhyOffset() == 0 {
		t.Fatal("consumed segments kept")
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
	s.SetConsumedOffsets(func(string, int32) (int64, bool) { return 1 << 40, true })
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

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAppendErrorsRateLimited: a store that cannot create segments sees
// every append fail the same way; one line per interval carries the count.
func TestAppendErrorsRateLimited(t *testing.T) {
	logs := &logBuf{}
	s := openStore(t, testConfig(t, logs))
	err := fmt.Errorf("create commitlog segment x: %w", unix.ENOSPC)
	for range 1000 {
		s.logAppendError(err)
	}
	if n := strings.Count(logs.String(), "cannot create commitlog segment"); n != 1 {
		t.Fatalf("%d lines for 1000 failures", n)
	}
	s.appendErrLast.Add(-int64(appendErrorLogInterval)) // as if the interval passed
	s.logAppendError(err)
	if !strings.Contains(logs.String(), "level=ERROR msg=\"[DISK_FULL] cannot create commitlog segment\"") ||
		!strings.Contains(logs.String(), "suppressedSinceLastLog=999") {
		t.Fatalf("second line:\n%s", logs.String())
	}
}
