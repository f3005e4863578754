package store

import (
	"errors"

	"golang.org/x/sys/unix"
)

// prefaultAhead is how far ahead of the write position pages are mapped.
const prefaultAhead = 8 << 20

// prefaultLoop maps commit-log pages before the appender reaches them, so
// the append path, which runs under the store's lock, copies into mapped
// memory instead of taking a page fault every 4 KiB. It only maps pages
// of segments that already exist and never changes their contents.
func (s *Store) prefaultLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.prefaultWake:
		}
		if !s.prefaultTo(s.maxPhy.Load() + prefaultAhead) {
			return // the kernel cannot do it; appends fault as before
		}
	}
}

// prefaultTo maps pages up to end; it reports false if madvise is not
// supported.
func (s *Store) prefaultTo(end int64) bool {
	// madvise needs a page-aligned start; segments start on page boundaries.
	pos := max(s.prefaulted.Load(), s.maxPhy.Load()) / pageSize * pageSize
	end = (end + pageSize - 1) / pageSize * pageSize
	for pos < end {
		seg := s.clog.acquire(pos)
		if seg == nil {
			return true // the next segment does not exist yet
		}
		stop := min(end, seg.base+s.segSize)
		// MADV_POPULATE_WRITE (Linux 5.14) maps the pages writable in one call.
		err := madvise(seg.data[pos-seg.base:stop-seg.base], unix.MADV_POPULATE_WRITE)
		seg.release()
		if errors.Is(err, unix.EINVAL) {
			return false
		}
		pos = stop
		s.prefaulted.Store(pos)
	}
	return true
}

func madvise(b []byte, advice int) error {
	if len(b) == 0 {
		return nil
	}
	return unix.Madvise(b, advice)
}

// wakePrefault nudges the prefaulter once the writer gets within half the
// window of the mapped end.
func (s *Store) wakePrefault() {
	// A SyncFlush master appends with pwrite (writeSegment): mapped pages
	// would only be dirtied ahead, written as zeros by the next fdatasync
	// and write-protected again. A slave stores through the mapping.
	if s.cfg.FlushMode == SyncFlush && s.role.Load() == int32(RoleMaster) {
		return // the warmer (warm.go) writes ahead instead, when on
	}
	if s.maxPhy.Load()+prefaultAhead/2 < s.prefaulted.Load() {
		return
	}
	select {
	case s.prefaultWake <- struct{}{}:
	default:
	}
}
