package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
	"golang.org/x/sys/unix"
)

func TestSyncFlushGroupCommit(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.FlushMode = SyncFlush
	cfg.FlushInterval = time.Hour // only waiters trigger syncs
	s := openStore(t, cfg)
	if !s.SyncFlush() {
		t.Fatal("SyncFlush() = false")
	}
	base := s.fsyncs.Load()

	const workers, each = 16, 100
	var okCount, failCount atomic.Int64
	var done sync.WaitGroup
	done.Add(workers * each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r := mustPut(t, s, msg("S", int32(w%4), bodyOf(i, 500)))
				s.WaitFlushed(r.EndOffset, func(ok bool) {
					if ok && s.FlushedOffset() >= r.EndOffset {
						okCount.Add(1)
					} else {
						failCount.Add(1)
					}
					done.Done()
				})
			}
		}()
	}
	wg.Wait()
	waitTimeout(t, &done, 10*time.Second)
	if okCount.Load() != workers*each || failCount.Load() != 0 {
		t.Fatalf("callbacks ok=%d failed=%d", okCount.Load(), failCount.Load())
	}
	syncs := s.fsyncs.Load() - base
	if syncs >= workers*each || syncs == 0 {
		t.Fatalf("%d fsyncs for %d messages: no group commit", syncs, workers*each)
	}
	t.Logf("%d messages, %d fsyncs", workers*each, syncs)

	// Already durable: answered inline.
	called := false
	s.WaitFlushed(s.FlushedOffset(), func(ok bool) { called = ok })
	if !called {
		t.Fatal("WaitFlushed on durable data did not answer inline")
	}
}

func TestSyncFlushTimeout(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.FlushMode = SyncFlush
	cfg.SyncFlushTimeout = 50 * time.Millisecond
	s := openStore(t, cfg)
	r := mustPut(t, s, msg("T", 0, "x"))
	// Hold the segment list so the flusher blocks as in a stuck fsync; the
	// reaper must fail the waiter once its deadline passes.
	s.clog.mu.Lock()
	got := make(chan bool, 1)
	start := time.Now()
	s.WaitFlushed(r.EndOffset, func(ok bool) { got <- ok })
	select {
	case ok := <-got:
		if ok {
			t.Fatal("impossible flush reported ok")
		}
		if time.Since(start) < cfg.SyncFlushTimeout {
			t.Fatalf("failed after %v, before the timeout", time.Since(start))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter never answered")
	}
	s.clog.mu.Unlock()

	// Waiters still queued at Close are answered.
	s.flushMu.Lock()
	s.waiters = append(s.waiters, flushWaiter{end: 1 << 40, deadline: time.Now().Add(time.Hour), done: func(ok bool) { got <- ok }})
	s.flushMu.Unlock()
	s.Close()
	if ok := <-got; ok {
		t.Fatal("waiter answered ok at Close for unwritten data")
	}
	called := false
	s.WaitFlushed(1<<40, func(ok bool) { called = !ok })
	if !called {
		t.Fatal("WaitFlushed after Close did not answer false")
	}
}

func TestAsyncFlush(t *testing.T) {
	s := openStore(t, testConfig(t, nil))
	r := mustPut(t, s, msg("A", 0, "x"))
	called := false
	s.WaitFlushed(r.EndOffset, func(ok bool) { called = ok })
	if !called {
		t.Fatal("AsyncFlush WaitFlushed did not answer true inline")
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.FlushedOffset() < r.EndOffset {
		if time.Now().After(deadline) {
			t.Fatalf("flushed offset stuck at %d", s.FlushedOffset())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitTimeout(t *testing.T, wg *sync.WaitGroup, d time.Duration) {
	t.Helper()
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatal("timed out waiting for callbacks")
	}
}

// fsyncFault fails the next n fsyncs whose path satisfies match
// (Config.FsyncFault), with EIO as a failing disk reports it.
type fsyncFault struct {
	mu       sync.Mutex
	match    func(path string) bool
	n        int
	injected []string
}

func (f *fsyncFault) hook(path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n > 0 && f.match(path) {
		f.n--
		f.injected = append(f.injected, path)
		return unix.EIO
	}
	return nil
}

func (f *fsyncFault) arm(n int, match func(path string) bool) {
	f.mu.Lock()
	f.n, f.match = n, match
	f.mu.Unlock()
}

func (f *fsyncFault) paths() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.injected)
}

func under(dir string) func(string) bool {
	return func(p string) bool { return strings.HasPrefix(p, dir+string(filepath.Separator)) }
}

// flushResult waits for WaitFlushed's answer.
func flushResult(t *testing.T, s *Store, end int64) bool {
	t.Helper()
	got := make(chan bool, 1)
	s.WaitFlushed(end, func(ok bool) { got <- ok })
	select {
	case ok := <-got:
		return ok
	case <-time.After(10 * time.Second):
		t.Fatal("WaitFlushed never answered")
		return false
	}
}

func diskCheckpoint(t *testing.T, cfg Config) checkpoint {
	t.Helper()
	ck, ok, err := readCheckpoint(cfg.RootDir)
	if err != nil || !ok {
		t.Fatalf("checkpoint: ok=%v err=%v", ok, err)
	}
	return ck
}

// TestFsyncFailureIsSticky: after one failed commit-log fsync, later
// fsyncs that succeed must not advance the flushed offset or the
// checkpoint (the kernel may have dropped the failed pages), sync-flush
// waiters fail at once, appends are refused with the reason, and a
// restart recovers everything still in the page cache.
func TestFsyncFailureIsSticky(t *testing.T) {
	logs := &logBuf{}
	cfg := testConfig(t, logs)
	cfg.FlushMode = SyncFlush
	cfg.SyncFlushTimeout = time.Hour // a failure answers at once, not at the timeout
	fault := &fsyncFault{}
	cfg.FsyncFault = fault.hook
	s := openStore(t, cfg)

	a := mustPut(t, s, msg("F", 0, "durable"))
	if !flushResult(t, s, a.EndOffset) {
		t.Fatal("first flush failed")
	}
	if err := s.flushConsumeQueues(); err != nil {
		t.Fatal(err)
	}
	ck := diskCheckpoint(t, cfg)

	fault.arm(1, under(commitLogDir(cfg)))
	b := mustPut(t, s, msg("F", 0, "not known durable"))
	if flushResult(t, s, b.EndOffset) {
		t.Fatal("waiter acknowledged although its fsync failed")
	}
	if got := fault.paths(); len(got) != 1 {
		t.Fatalf("injected %v", got)
	}

	// The flusher's next fsync succeeds; it proves nothing.
	base := s.fsyncs.Load()
	waitFor(t, "a later fsync", func() bool { return s.fsyncs.Load() > base })
	if got := s.FlushedOffset(); got != a.EndOffset {
		t.Errorf("FlushedOffset %d after the failure, want %d (the last truly durable end)", got, a.EndOffset)
	}
	if flushResult(t, s, b.EndOffset) {
		t.Error("WaitFlushed after the failure answered ok")
	}
	if err := s.flushConsumeQueues(); !errors.Is(err, ErrFailed) {
		t.Errorf("flushConsumeQueues after the failure: %v", err)
	}
	if got := diskCheckpoint(t, cfg); got != ck {
		t.Errorf("checkpoint moved past the failure: %+v, was %+v", got, ck)
	}

	if r := s.Put(msg("F", 0, "after")); r.Status != ServiceNotAvailable {
		t.Fatalf("Put after the failure: %v", r.Status)
	}
	if r, _ := s.PutBatch([]Message{*msg("F", 0, "after")}); r.Status != ServiceNotAvailable {
		t.Fatalf("PutBatch after the failure: %v", r.Status)
	}
	f := s.Failure()
	if f == nil || f.Offset != a.EndOffset || !strings.HasPrefix(f.Path, commitLogDir(cfg)) || !errors.Is(f, unix.EIO) {
		t.Fatalf("Failure = %+v", f)
	}
	want := fmt.Sprintf("store failed: fsync of %s failed at commit-log offset %d: ", f.Path, a.EndOffset)
	if err := s.NotWritable(); err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "restart the broker to recover") {
		t.Fatalf("NotWritable = %v, want %q...", err, want)
	}
	if n := strings.Count(logs.String(), "[FLUSH] fsync failed"); n != 1 || !strings.Contains(logs.String(), "level=ERROR msg=\"[FLUSH] fsync failed") {
		t.Fatalf("failure logged %d times:\n%s", n, logs.String())
	}

	// Close reports it and keeps the abort marker; the restart recovers
	// through the crash path and both records are there.
	if err := s.Close(); !errors.Is(err, ErrFailed) {
		t.Fatalf("Close after the failure: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.RootDir, "abort")); err != nil {
		t.Fatalf("abort marker: %v", err)
	}
	cfg.FsyncFault = nil
	s2 := openStore(t, cfg)
	if !strings.Contains(logs.String(), "[RECOVERY] abort marker found") {
		t.Fatal("restart did not take the recovery path")
	}
	got := readAll(t, s2, "F", 0)
	if len(got) != 2 || string(got[0].Body()) != "durable" || string(got[1].Body()) != "not known durable" {
		t.Fatalf("after restart: %d records", len(got))
	}
	c := mustPut(t, s2, msg("F", 0, "after restart"))
	if !flushResult(t, s2, c.EndOffset) || s2.Failure() != nil {
		t.Fatal("store not healthy after restart")
	}
}

// TestConsumeQueueFsyncFailureFreezesCheckpoint: a failed consume-queue
// fsync fails the store too; a later successful sync must not let the
// checkpoint claim the units it covered.
func TestConsumeQueueFsyncFailureFreezesCheckpoint(t *testing.T) {
	cfg := testConfig(t, nil)
	fault := &fsyncFault{}
	cfg.FsyncFault = fault.hook
	s := openStore(t, cfg)
	fill(t, s, 50, 2, 100)
	waitDispatch(t, s)
	waitFlushed(t, s)
	if err := s.flushConsumeQueues(); err != nil {
		t.Fatal(err)
	}

	fault.arm(1, under(filepath.Join(cfg.RootDir, "consumequeue")))
	fill(t, s, 50, 2, 100)
	waitDispatch(t, s)
	waitFlushed(t, s)
	// The background flusher may hit the fault first; either way the
	// store is failed once the fault fired.
	err := s.flushConsumeQueues()
	if len(fault.paths()) != 1 {
		t.Fatalf("fault not hit: %v", err)
	}
	if !errors.Is(err, ErrFailed) {
		t.Errorf("flushConsumeQueues: %v", err)
	}
	ck := diskCheckpoint(t, cfg)
	if err := s.flushConsumeQueues(); !errors.Is(err, ErrFailed) {
		t.Errorf("second flushConsumeQueues: %v", err)
	}
	if got := diskCheckpoint(t, cfg); got != ck || got.dispatched >= s.MaxPhyOffset() {
		t.Errorf("checkpoint %+v after the failure (was %+v, log ends at %d)", got, ck, s.MaxPhyOffset())
	}
	if r := s.Put(msg("T", 0, "after")); r.Status != ServiceNotAvailable {
		t.Fatalf("Put after the failure: %v", r.Status)
	}
	if f := s.Failure(); f == nil || !strings.Contains(f.Path, "consumequeue") {
		t.Fatalf("Failure = %+v", f)
	}
}

// TestFsyncFailureCrashRecovers: a failed store killed without Close
// restarts from the frozen checkpoint and recovers every record written
// before the failure (the page cache kept them), then appends again.
func TestFsyncFailureCrashRecovers(t *testing.T) {
	cfg := testConfig(t, nil)
	fault := &fsyncFault{}
	cfg.FsyncFault = fault.hook
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sent := fill(t, s, 1500, 3, 900) // crosses segments
	waitDispatch(t, s)
	waitFlushed(t, s)
	fault.arm(1, under(commitLogDir(cfg)))
	// Append until the flusher hits the fault and appends are refused.
	for i := 0; ; i++ {
		if i == 20000 {
			t.Fatalf("appends never refused: %d accepted after the fsync failure", i)
		}
		m := msg("T", int32(i%3), bodyOf(i, 900), wire.PropTags, "tag")
		r := s.Put(m)
		if r.Status != PutOK {
			if r.Status != ServiceNotAvailable || s.Failure() == nil {
				t.Fatalf("Put: %v, failure %v", r.Status, s.Failure())
			}
			break
		}
		sent = append(sent, putRec{int32(i % 3), r, string(m.Body)})
	}
	if s.FlushedOffset() >= s.MaxPhyOffset() {
		t.Fatal("flushed reached the end despite the failure")
	}
	waitDispatch(t, s)
	s.crashForTest()

	cfg.FsyncFault = nil
	s2 := openStore(t, cfg)
	checkQueues(t, s2, sent, 3)
	mustPut(t, s2, msg("T", 0, "again"))
	waitFlushed(t, s2)
}

// TestSegmentDirSyncFailureIsSticky: the directory fsync that makes a new
// segment's name durable fails the store like a data fsync.
func TestSegmentDirSyncFailureIsSticky(t *testing.T) {
	cfg := testConfig(t, nil)
	fault := &fsyncFault{}
	cfg.FsyncFault = fault.hook
	s := openStore(t, cfg)
	fill(t, s, 10, 1, 100)
	fault.arm(1, func(p string) bool { return p == commitLogDir(cfg) })
	var r PutResult
	for i := 0; i < 5000 && r.Status == PutOK; i++ {
		r = s.Put(msg("T", 0, bodyOf(i, 900)))
	}
	if r.Status != ServiceNotAvailable {
		t.Fatalf("Put at the roll: %v", r.Status)
	}
	if f := s.Failure(); f == nil || f.Path != commitLogDir(cfg) {
		t.Fatalf("Failure = %+v", f)
	}
	if r := s.Put(msg("T", 0, "x")); r.Status != ServiceNotAvailable {
		t.Fatalf("Put after the failure: %v", r.Status)
	}
}

// TestSyncFlushWritesLikeMapping: a SyncFlush store appends with pwrite
// (writeSegment) what an AsyncFlush store stores through the mapping:
// the same appends (single records, a batch, across a segment roll)
// leave byte-identical commit-log segments, readable back at once and
// after a reopen.
func TestSyncFlushWritesLikeMapping(t *testing.T) {
	segs := map[FlushMode]map[string][]byte{}
	for _, mode := range []FlushMode{AsyncFlush, SyncFlush} {
		cfg := testConfig(t, nil)
		cfg.FlushMode = mode
		clock := newFakeClock()
		cfg.Now = clock.Now
		s := openStore(t, cfg)
		var ends []int64
		for i := range 300 { // 300 × ~3.6 KiB rolls the 1 MiB segment
			ends = append(ends, mustPut(t, s, msg("W", int32(i%2), bodyOf(i, 3500), "k", strconv.Itoa(i))).EndOffset)
			if i == 150 {
				r, _ := s.PutBatch([]Message{*msg("W", 3, "b0"), *msg("W", 3, bodyOf(1, 2000)), *msg("W", 3, "b2")})
				if r.Status != PutOK {
					t.Fatalf("%v batch: %v", mode, r.Status)
				}
				ends = append(ends, r.EndOffset)
			}
		}
		for _, end := range ends {
			if !flushResult(t, s, end) {
				t.Fatalf("%v: not flushed to %d", mode, end)
			}
		}
		waitDispatch(t, s)
		if got := readAll(t, s, "W", 3); len(got) != 3 || string(got[0].Body()) != "b0" || string(got[2].Body()) != "b2" {
			t.Fatalf("%v: batch read back as %d records", mode, len(got))
		}
		if got := readAll(t, s, "W", 1); len(got) != 150 || string(got[149].Body()) != bodyOf(299, 3500) {
			t.Fatalf("%v: queue 1 read back as %d records", mode, len(got))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(cfg.RootDir, "commitlog")
		files, err := os.ReadDir(dir)
		if err != nil || len(files) < 2 {
			t.Fatalf("%v: %d segments, %v", mode, len(files), err)
		}
		segs[mode] = map[string][]byte{}
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(dir, f.Name()))
			if err != nil {
				t.Fatal(err)
			}
			segs[mode][f.Name()] = b
		}
		s = openStore(t, cfg)
		if got := readAll(t, s, "W", 0); len(got) != 150 || string(got[0].Body()) != bodyOf(0, 3500) {
			t.Fatalf("%v: after reopen queue 0 holds %d records", mode, len(got))
		}
	}
	for name, want := range segs[AsyncFlush] {
		if got, ok := segs[SyncFlush][name]; !ok || !slices.Equal(got, want) {
			t.Fatalf("segment %s differs between the modes (present: %v)", name, ok)
		}
	}
	if len(segs[SyncFlush]) != len(segs[AsyncFlush]) {
		t.Fatalf("%d segments with SyncFlush, %d with AsyncFlush", len(segs[SyncFlush]), len(segs[AsyncFlush]))
	}
}

// TestGroupCommitBackToBack: while an fsync is in flight, appends and
// their waiters queue and none is answered; the next fsync starts when
// it returns (no flush interval, no new wake-up needed) and covers every
// byte written meanwhile: two fsyncs in all, every waiter answered after
// the flushed offset covers it.
func TestGroupCommitBackToBack(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.FlushMode = SyncFlush
	cfg.FlushInterval = time.Hour
	cfg.SyncFlushTimeout = time.Hour
	clog := filepath.Join(cfg.RootDir, "commitlog") + string(filepath.Separator)
	var stall atomic.Bool
	entered, release := make(chan struct{}, 1), make(chan struct{})
	cfg.FsyncFault = func(path string) error {
		if strings.HasPrefix(path, clog) && stall.CompareAndSwap(true, false) {
			entered <- struct{}{}
			<-release
		}
		return nil
	}
	s := openStore(t, cfg)
	var answered, early atomic.Int64
	wait := func(end int64) {
		s.WaitFlushed(end, func(ok bool) {
			if !ok || s.FlushedOffset() < end {
				early.Add(1)
			}
			answered.Add(1)
		})
	}
	stall.Store(true)
	wait(mustPut(t, s, msg("B", 0, "first")).EndOffset)
	<-entered // the first fsync is in flight
	before := s.fsyncs.Load()
	const n = 50
	for i := range n {
		wait(mustPut(t, s, msg("B", int32(i%4), bodyOf(i, 300))).EndOffset)
	}
	if a := answered.Load(); a != 0 {
		t.Fatalf("%d waiters answered while the fsync is stalled", a)
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for answered.Load() < n+1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d waiters answered", answered.Load(), n+1)
		}
		time.Sleep(time.Millisecond)
	}
	if e := early.Load(); e != 0 {
		t.Fatalf("%d waiters answered before the flushed offset covered them", e)
	}
	if got := s.fsyncs.Load() - before; got != 2 {
		t.Fatalf("%d fsyncs for the stalled one and those appended meanwhile, want 2", got)
	}
}
