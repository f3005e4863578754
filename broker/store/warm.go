package store

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Warming (warmMapedFileEnable, Config.WarmSegments): a SyncFlush master
// keeps the commit log zero-written and synced ahead of the append
// position, so that an ack's fdatasync has only data to write.
//
// Why: segments are preallocated with fallocate, whose blocks stay
// "unwritten" extents until first written. The first fdatasync after
// bytes land in such blocks must convert them, which is a metadata change
// committed through the file system's journal: measured on this project's
// ext4 machines, an fdatasync of 16 KiB written into fallocated blocks took
// p50 ≈ 200–240 µs, the same write over blocks already written ≈ 100–140
// µs, and an append that grows a file (Redis's AOF) ≈ 170–230 µs. RocketMQ
// zero-fills whole files for the same reason (MappedFile.warmMappedFile);
// here only a window ahead of the writer is written, in the background,
// and its conversions are committed by the warmer's own fdatasync, off the
// acks' path.
//
// Invariant: zeros are only ever written at or above the append position
// as it was under s.mu when the range was claimed, and an append whose
// bytes would reach into a claimed range waits (awaitWarm) until the
// warmer's write has returned; so a zero never lands on appended bytes.

const (
	// warmAhead is how far past the append position the log is kept
	// written; warmChunk how much one step writes and syncs (a multiple of
	// the page size: whole pages are converted at once).
	warmAhead = 16 << 20
	warmChunk = 4 << 20
	// warmWrite is the most one write of zeros covers, and its alignment.
	// The page cache sizes a new folio by the write that creates it (up
	// to 2 MiB), and ext4 walks every 4 KiB block of a folio on each
	// buffered write into it (ext4_block_write_begin, block_commit_write)
	// and writes back more than the dirty blocks of a large folio on
	// fdatasync. After one 4 MiB write of zeros, each 1.2 KiB append
	// pwrite cost 4.1–4.3 µs and the broker wrote 66–73 KB to disk per
	// ack; after 64 KiB writes 1.05 µs and 6.0 KB, after 16 KiB writes
	// 1.1–1.2 µs and 3.3 KB. The dispatcher still maps the pages with one
	// fault per 64 KiB (fault-around). README, SYNC_FLUSH group commit.
	warmWrite = 16 << 10
)

type warmer struct {
	// mu is held by the warmer while its zeros are being written outside
	// s.mu; an append that reaches the claimed range takes it to wait.
	mu sync.Mutex
	// fence is the start of the claimed range, MaxInt64 when none.
	fence atomic.Int64
	// to: the log is zero-written below this offset (from the append
	// position up). Guarded by s.mu.
	to int64
	// gen counts truncations (reset): a step that began before one does
	// not record its range, which the truncation may have punched out.
	gen   uint64
	wake  chan struct{}
	zeros []byte
}

func (w *warmer) init() {
	w.fence.Store(math.MaxInt64)
	w.wake = make(chan struct{}, 1)
}

// reset forgets the warmed range after the append position was lowered.
// Caller holds s.mu.
func (w *warmer) reset() {
	w.to = 0
	w.gen++
}

// awaitWarm waits while the warmer writes zeros into a range that bytes
// up to end would reach. Caller holds s.mu (lock order: s.mu, then
// s.warm.mu; the warmer never waits for s.mu while holding s.warm.mu).
func (s *Store) awaitWarm(end int64) {
	if end > s.warm.fence.Load() {
		s.warm.mu.Lock()
		//lint:ignore SA2001 taking the lock is the wait for the warmer
		s.warm.mu.Unlock()
	}
}

// warmWanted reports whether warming applies: it is on and appends go
// through pwrite (a SyncFlush master; a slave stores through the mapping).
func (s *Store) warmWanted() bool {
	return s.cfg.WarmSegments && s.cfg.FlushMode == SyncFlush && s.role.Load() == int32(RoleMaster)
}

// wakeWarmLocked nudges the warmer once the writer is within half the window of
// the warmed end. Caller holds s.mu.
func (s *Store) wakeWarmLocked() {
	if s.writePos+warmAhead/2 < s.warm.to || !s.warmWanted() {
		return
	}
	select {
	case s.warm.wake <- struct{}{}:
	default:
	}
}

func (s *Store) warmLoop() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.warm.wake:
		case <-t.C:
		}
		for s.warmStep() {
		}
	}
}

// warmStep writes and syncs one chunk of zeros ahead of the append
// position; it reports whether there may be more to do.
func (s *Store) warmStep() bool {
	s.mu.Lock()
	seg := s.active
	if s.closed || s.failure.Load() != nil || seg == nil || !s.warmWanted() {
		s.mu.Unlock()
		return false
	}
	start := max(s.warm.to, s.writePos)
	// Whole pages: the tail of the append position's page is written by
	// the appender itself, and a partial page would be read back first.
	start = (start + pageSize - 1) / pageSize * pageSize
	end := min(s.writePos+warmAhead, seg.base+s.segSize)
	if start >= end {
		s.mu.Unlock()
		return false
	}
	end = min(end, start+warmChunk)
	gen := s.warm.gen
	s.warm.mu.Lock()
	s.warm.fence.Store(start)
	seg.acquire()
	s.mu.Unlock()

	if s.warm.zeros == nil {
		s.warm.zeros = make([]byte, warmWrite)
	}
	var err error
	for off := start - seg.base; off < end-seg.base && err == nil; {
		n := min(end-seg.base, (off/warmWrite+1)*warmWrite) - off // file offsets: folios align to them
		_, err = seg.m.File.WriteAt(s.warm.zeros[:n], off)
		off += n
	}
	s.warm.fence.Store(math.MaxInt64)
	s.warm.mu.Unlock()
	if err != nil {
		seg.release()
		// Nothing appended was touched; warming stops until it can write.
		s.log.Warn("[WARM] writing zeros ahead of the commit log failed; appends are unaffected", "file", seg.path, "err", err)
		return false
	}
	// The fdatasync commits the blocks' conversion now, off the acks'
	// path. It shares the file's error state with the flusher: a failure
	// here may be the only report of a lost write of appended bytes, so
	// it fails the store like the flusher's own.
	err = s.syncFile(seg)
	seg.release()
	if err != nil {
		s.fail(seg.path, err)
		return false
	}
	s.mu.Lock()
	if s.warm.gen == gen {
		s.warm.to = max(s.warm.to, end)
	}
	s.mu.Unlock()
	return true
}
