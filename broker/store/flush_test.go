package store

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
