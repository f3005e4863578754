package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/mqops/mqops/fileutil"
)

// ErrFailed matches (errors.Is) the store's Failure.
var ErrFailed = errors.New("store failed")

// Failure is the first failed fsync of durable state (a commit-log
// segment, a consume-queue file, the commit-log directory after a segment
// was created). Linux may drop the dirty pages of a failed writeback and
// mark them clean ("fsyncgate"), so a later fsync that succeeds proves
// nothing; like Pebble and etcd, the store treats the failure as sticky:
// from then on flushed and the checkpoint stay where they were, sync-flush
// waiters fail at once and appends are refused. A restart recovers through
// the normal crash-recovery path (the abort marker stays), which validates
// the log from the last checkpoint written before the failure.
type Failure struct {
	Op     string // "fsync", or "write" for a failed SyncFlush append
	Path   string // file or directory whose fsync (or write) failed
	Offset int64  // commit-log offset from which data may not be durable
	Err    error
}

func (f *Failure) Error() string {
	return fmt.Sprintf("store failed: %s of %s failed at commit-log offset %d: %v; restart the broker to recover", f.Op, f.Path, f.Offset, f.Err)
}

// Unwrap exposes both the cause and ErrFailed to errors.Is.
func (f *Failure) Unwrap() []error { return []error{ErrFailed, f.Err} }

// Failure returns the store's sticky failure, nil while it is healthy.
func (s *Store) Failure() *Failure { return s.failure.Load() }

// fail records the first fsync failure (later ones add nothing: the store
// is already failed), logs it once and answers the queued sync-flush
// waiters. It returns the recorded failure.
func (s *Store) fail(path string, err error) *Failure {
	return s.failOp("fsync", path, err)
}

// failWrite is fail for a SyncFlush append whose write failed: bytes past
// the write position may no longer be zero.
func (s *Store) failWrite(path string, err error) *Failure {
	return s.failOp("write", path, err)
}

func (s *Store) failOp(op, path string, err error) *Failure {
	f := &Failure{Op: op, Path: path, Offset: s.flushed.Load(), Err: err}
	if !s.failure.CompareAndSwap(nil, f) {
		return s.failure.Load()
	}
	// Whole literals: the Zabbix helper counts these lines (zabbix/logcount).
	msg := "[FLUSH] fsync failed: the store refuses appends and keeps its checkpoint until restarted"
	if op == "write" {
		msg = "[FLUSH] write failed: the store refuses appends and keeps its checkpoint until restarted"
	}
	s.log.Error(msg, "path", path, "durableBelow", f.Offset, "err", err)
	s.flushMu.Lock()
	ws := s.waiters
	s.waiters = nil
	s.flushMu.Unlock()
	s.answerWaiters(ws)
	return f
}

// syncFile makes a mapped file durable; every fsync of a commit-log
// segment or consume-queue file goes through it (Config.FsyncFault).
func (s *Store) syncFile(f *mmapFile) error {
	if fault := s.cfg.FsyncFault; fault != nil {
		if err := fault(f.path); err != nil {
			return fmt.Errorf("fdatasync %s: %w", f.path, err)
		}
	}
	return f.sync()
}

// syncDir is fileutil.SyncDir behind Config.FsyncFault.
func (s *Store) syncDir(dir string) error {
	if fault := s.cfg.FsyncFault; fault != nil {
		if err := fault(dir); err != nil {
			return fmt.Errorf("fsync dir %s: %w", dir, err)
		}
	}
	return fileutil.SyncDir(dir)
}

// flushWaiter is a sender waiting for its record to become durable.
type flushWaiter struct {
	end      int64 // record end offset to cover
	deadline time.Time
	done     func(ok bool)
}

// WaitFlushed arranges for done to run once the commit log is durable up
// to endOffset: done(true) after an fsync covering it, done(false) if that
// did not happen within SyncFlushTimeout or the store failed (at once,
// then). done runs inline when the data is already durable, the store
// failed, was closed or is in AsyncFlush mode; otherwise on a store
// goroutine, among others answered together, after which the hook set
// with OnWaitersAnswered runs. done must not block.
//
// Group commit (flushLoop): one fsync is in flight while any waiter's
// bytes are not yet durable; the next starts as soon as the previous
// returns and covers everything appended meanwhile, while another
// goroutine (completeLoop) answers the waiters the previous one covered.
//
// Invariant: done(true) runs only for a waiter whose end ≤ flushed, and
// flushed is advanced (flushCommitLog) only after every fsync of the
// segments below it returned success with no store failure recorded, so
// no send is acknowledged before an fsync that covers its bytes has
// returned. Why that is durable: a SyncFlush append writes its record
// with pwrite (writeSegment) into the page cache of the preallocated
// segment, which its MAP_SHARED mapping shares (blank fillers are still
// stored through the mapping); fdatasync writes back every dirty page of
// the file, however it was dirtied, and the metadata needed to read them
// (the conversion of the preallocated blocks' extents, through the
// journal), and returns after the device's cache flush. A waiter's bytes
// were written before Put published complete, and flushCommitLog reads
// complete before it syncs, so the fsync that advances flushed past a
// waiter's end covered its bytes.
func (s *Store) WaitFlushed(endOffset int64, done func(ok bool)) {
	if s.cfg.FlushMode != SyncFlush || s.flushed.Load() >= endOffset {
		done(true)
		return
	}
	if s.failure.Load() != nil {
		done(false)
		return
	}
	s.flushMu.Lock()
	if s.flushClosed {
		s.flushMu.Unlock()
		done(s.flushed.Load() >= endOffset)
		return
	}
	s.waiters = append(s.waiters, flushWaiter{end: endOffset, deadline: time.Now().Add(s.cfg.SyncFlushTimeout), done: done})
	s.waitEnd = max(s.waitEnd, endOffset)
	s.flushMu.Unlock()
	select {
	case s.flushWake <- struct{}{}:
	default:
	}
}

// OnWaitersAnswered sets fn to run after every group of WaitFlushed
// callbacks a store goroutine ran (never after an inline one), so that a
// caller can defer work per callback, such as waking a connection's
// writer, to once per group: the answers of one fsync to one connection
// then leave in one write.
func (s *Store) OnWaitersAnswered(fn func()) { s.answered.Store(&fn) }

// answerWaiters runs the callbacks of ws, taken off the waiter list,
// then the OnWaitersAnswered hook.
func (s *Store) answerWaiters(ws []flushWaiter) {
	if len(ws) == 0 {
		return
	}
	flushed := s.flushed.Load()
	for _, w := range ws {
		w.done(w.end <= flushed)
	}
	if fn := s.answered.Load(); fn != nil {
		(*fn)()
	}
}

// flushLoop syncs the commit log every FlushInterval and, in SyncFlush
// mode, back to back while waiters wait for bytes not yet durable.
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
		for {
			// A failure was logged once by fail.
			if err := s.flushCommitLog(); err != nil && !errors.Is(err, ErrFailed) {
				s.log.Error("[FLUSH] commitlog flush failed", "err", err)
			}
			select {
			case s.completeWake <- struct{}{}:
			default: // the completer has a wake-up pending already
			}
			if !s.flushWanted() {
				break
			}
		}
	}
}

// flushWanted reports whether a waiter waits for bytes that the last
// fsync did not cover and that another can (they were appended).
func (s *Store) flushWanted() bool {
	flushed := s.flushed.Load()
	s.flushMu.Lock()
	end := s.waitEnd
	s.flushMu.Unlock()
	return end > flushed && s.complete.Load() > flushed && s.failure.Load() == nil
}

// completeLoop answers the waiters each fsync covered, while the flusher
// already runs the next one.
func (s *Store) completeLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.completeWake:
		}
		flushed := s.flushed.Load()
		s.flushMu.Lock()
		ready := s.flushReady[:0]
		kept := s.waiters[:0]
		for _, w := range s.waiters {
			if w.end <= flushed {
				ready = append(ready, w)
			} else {
				kept = append(kept, w)
			}
		}
		clear(s.waiters[len(kept):]) // drop callback references
		s.waiters = kept
		s.flushMu.Unlock()

		s.answerWaiters(ready)
		clear(ready)
		s.flushReady = ready[:0]
	}
}

// flushCommitLog syncs the segments holding [flushed, complete) and
// advances flushed. Only the flusher goroutine, Open and Close call it.
// After a failure it still syncs (the pages may yet reach the disk) but
// never advances flushed, and returns the Failure.
//
// flushed stops at the complete-record boundary, not at a slave's maxPhy:
// recovery treats a bad record below the checkpoint's flushed offset as
// damage to quarantine, while a partial record at the tail must be cut.
// The partial record's bytes are synced with their segment all the same.
func (s *Store) flushCommitLog() error {
	s.clFlushMu.Lock() // a truncation (replica.go) lowers flushed meanwhile
	defer s.clFlushMu.Unlock()
	to := s.complete.Load()
	from := s.flushed.Load()
	if to <= from {
		return s.failed()
	}
	// Segment starts covering [from, to); a segment below the retained
	// range was removed, which only happens to dispatched, flushed data.
	for base := from - from%s.segSize; base < to; base += s.segSize {
		seg := s.clog.acquire(base)
		if seg == nil {
			continue
		}
		s.flushSince.Store(s.cfg.Now().UnixMilli())
		err := s.syncFile(seg)
		s.flushSince.Store(0)
		seg.release()
		s.fsyncs.Add(1)
		if err != nil {
			return s.fail(seg.path, err)
		}
	}
	if err := s.failed(); err != nil {
		return err
	}
	s.flushed.Store(to)
	return nil
}

// failed returns the Failure as an error, or nil (not a typed nil).
func (s *Store) failed() error {
	if f := s.failure.Load(); f != nil {
		return f
	}
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
	s.flushMu.Unlock()

	s.answerWaiters(expired)
	clear(expired)
	s.reapReady = expired[:0]
}

// completeWaiters answers every remaining waiter after the final flush and
// refuses new ones.
func (s *Store) completeWaiters() {
	s.flushMu.Lock()
	s.flushClosed = true
	ws := s.waiters
	s.waiters = nil
	s.flushMu.Unlock()
	s.answerWaiters(ws)
}

// flushConsumeQueues syncs every dirty consume-queue file and then writes
// the checkpoint. A failed sync fails the store; after a failure no
// checkpoint is written, so the one on disk keeps the last offsets that
// were truly durable.
//
// Invariant kept: dispatched is read before syncing, and the dispatcher
// marks a file dirty after writing a unit and before advancing dispatched,
// so every unit of a record below the recorded offset is covered by this
// sync or an earlier one.
func (s *Store) flushConsumeQueues() error {
	s.ckMu.Lock()
	defer s.ckMu.Unlock()
	return s.flushConsumeQueuesLocked()
}

// flushConsumeQueuesLocked is flushConsumeQueues for a caller holding ckMu.
func (s *Store) flushConsumeQueuesLocked() error {
	d := s.dispatched.Load()
	// After d: it lists every queue with units below d. Before the sync:
	// every unit below each max is covered by it.
	mf := s.snapshotManifest()
	var files []*mmapFile
	for _, cq := range s.cqs.all() {
		files = cq.acquireDirty(files[:0])
		for _, f := range files {
			// Clear before syncing: a write racing the sync re-marks it.
			f.dirty.Store(false)
			if err := s.syncFile(f); err != nil {
				f.dirty.Store(true)
				s.fail(f.path, err)
			}
			f.release()
		}
	}
	if err := s.failed(); err != nil {
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
