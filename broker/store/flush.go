package store

import (
	"errors"
	"time"
)

// flushWaiter is a sender waiting for its record to become durable.
type flushWaiter struct {
	end      int64 // record end offset to cover
	deadline time.Time
	done     func(ok bool) // nil once called
}

// WaitFlushed arranges for done to run once the commit log is durable up
// to endOffset: done(true) after an fsync covering it, done(false) if that
// did not happen within SyncFlushTimeout. done runs on a store goroutine
// (or inline, when the data is already durable or the store is in
// AsyncFlush mode) and must not block.
//
// Group commit: the flusher wakes on demand, takes every waiter queued so
// far, syncs once up to the current end of the log, then calls them all.
func (s *Store) WaitFlushed(endOffset int64, done func(ok bool)) {
	if s.cfg.FlushMode != SyncFlush || s.flushed.Load() >= endOffset {
		done(true)
		return
	}
	s.flushMu.Lock()
	if s.flushClosed {
		s.flushMu.Unlock()
		done(s.flushed.Load() >= endOffset)
		return
	}
	s.waiters = append(s.waiters, flushWaiter{end: endOffset, deadline: time.Now().Add(s.cfg.SyncFlushTimeout), done: done})
	s.flushMu.Unlock()
	select {
	case s.flushWake <- struct{}{}:
	default:
	}
}

// flushLoop syncs the commit log every FlushInterval and, in SyncFlush
// mode, whenever a waiter arrives.
func (s *Store) flushLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.flushWake:
		case <-t.C:
		}
		s.groupCommit()
	}
}

// groupCommit syncs everything appended so far and completes the waiters
// queued before the sync started. Every such waiter's record was published
// before it queued, so its end is ≤ the end read after taking the batch.
func (s *Store) groupCommit() {
	s.flushMu.Lock()
	s.inflight, s.waiters = s.waiters, s.inflight[:0]
	s.flushMu.Unlock()

	if err := s.flushCommitLog(); err != nil {
		s.log.Error("[FLUSH] commitlog flush failed", "err", err)
	}
	flushed := s.flushed.Load()

	s.flushMu.Lock()
	ready := s.flushReady[:0]
	for i := range s.inflight {
		if w := s.inflight[i]; w.done != nil { // nil: the reaper timed it out
			ready = append(ready, w)
		}
	}
	clear(s.inflight) // drop callback references
	s.inflight = s.inflight[:0]
	s.flushMu.Unlock()

	for _, w := range ready {
		w.done(w.end <= flushed)
	}
	clear(ready)
	s.flushReady = ready[:0]
}

// flushCommitLog syncs the segments holding [flushed, maxPhy) and advances
// flushed. Only the flusher goroutine, Open and Close call it.
func (s *Store) flushCommitLog() error {
	to := s.maxPhy.Load()
	from := s.flushed.Load()
	if to <= from {
		return nil
	}
	// Segment starts covering [from, to); a segment below the retained
	// range was removed, which only happens to dispatched, flushed data.
	for base := from - from%s.segSize; base < to; base += s.segSize {
		seg := s.clog.acquire(base)
		if seg == nil {
			continue
		}
		err := seg.sync()
		seg.release()
		s.fsyncs.Add(1)
		if err != nil {
			return err
		}
	}
	s.flushed.Store(to)
	return nil
}

// reapLoop fails sync-flush waiters whose deadline passed, even while the
// flusher is stuck in fsync.
func (s *Store) reapLoop() {
	defer s.wg.Done()
	every := min(max(s.cfg.SyncFlushTimeout/10, time.Millisecond), 100*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.reapExpired(now)
		}
	}
}

func (s *Store) reapExpired(now time.Time) {
	s.flushMu.Lock()
	expired := s.reapReady[:0]
	kept := s.waiters[:0]
	for _, w := range s.waiters {
		if now.After(w.deadline) {
			expired = append(expired, w)
		} else {
			kept = append(kept, w)
		}
	}
	clear(s.waiters[len(kept):])
	s.waiters = kept
	for i := range s.inflight {
		if w := &s.inflight[i]; w.done != nil && now.After(w.deadline) {
			expired = append(expired, *w)
			w.done = nil
		}
	}
	s.flushMu.Unlock()

	flushed := s.flushed.Load()
	for _, w := range expired {
		w.done(w.end <= flushed)
	}
	clear(expired)
	s.reapReady = expired[:0]
}

// completeWaiters answers every remaining waiter after the final flush and
// refuses new ones.
func (s *Store) completeWaiters() {
	s.flushMu.Lock()
	s.flushClosed = true
	ws := append(s.waiters, s.inflight...)
	s.waiters, s.inflight = nil, nil
	s.flushMu.Unlock()
	flushed := s.flushed.Load()
	for _, w := range ws {
		if w.done != nil {
			w.done(w.end <= flushed)
		}
	}
}

// flushConsumeQueues syncs every dirty consume-queue file and then writes
// the checkpoint.
//
// Invariant kept: dispatched is read before syncing, and the dispatcher
// marks a file dirty after writing a unit and before advancing dispatched,
// so every unit of a record below the recorded offset is covered by this
// sync or an earlier one.
func (s *Store) flushConsumeQueues() error {
	s.ckMu.Lock()
	defer s.ckMu.Unlock()
	d := s.dispatched.Load()
	// After d: it lists every queue with units below d. Before the sync:
	// every unit below each max is covered by it.
	mf := s.snapshotManifest()
	var errs []error
	var files []*mmapFile
	for _, cq := range s.cqs.all() {
		files = cq.acquireDirty(files[:0])
		for _, f := range files {
			// Clear before syncing: a write racing the sync re-marks it.
			f.dirty.Store(false)
			if err := f.sync(); err != nil {
				f.dirty.Store(true)
				errs = append(errs, err)
			}
			f.release()
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := s.writeManifest(mf); err != nil {
		return err
	}
	ck := checkpoint{flushed: s.flushed.Load(), dispatched: d}
	if ck == s.lastCk {
		return nil
	}
	if err := writeCheckpoint(s.cfg.RootDir, ck); err != nil {
		return err
	}
	s.lastCk = ck
	return nil
}
