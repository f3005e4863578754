package store

import (
	"errors"
	"math"
	"time"

	"github.com/mqops/mqops/wire"
)

// scrubTick is how often the scrub wakes; each wake verifies about
// ScrubRate/10 bytes, so it never holds a CPU for long.
const scrubTick = 100 * time.Millisecond

// scrubLoop verifies, oldest first, the records of the segments below
// recovery's walk [MinPhyOffset, verifiedFrom), which nothing checked
// since they were written by an earlier run: every record's CRC, as
// recovery does, quarantining damage (corrupt.go). It advances scrubbed
// as it goes, and reads below scrubbed skip their per-record CRC check.
//
// It is rate-limited (ScrubRate, default 16 MiB/s: a 1 GiB segment a
// minute) and starts ScrubDelay after Open, so that it competes little
// with sends and pulls for the disk and the CPU; reading from the page
// cache, 16 MiB/s of CRC is about 1 % of a core.
func (s *Store) scrubLoop() {
	defer s.wg.Done()
	if s.cfg.ScrubRate < 0 || s.scrubbed.Load() >= s.verifiedFrom {
		return
	}
	delay := time.NewTimer(s.cfg.ScrubDelay)
	defer delay.Stop()
	select {
	case <-s.stop:
		return
	case <-delay.C:
	}
	from := max(s.scrubbed.Load(), s.MinPhyOffset())
	s.log.Info("[SCRUB] verifying commitlog records written before the last start", "from", from, "to", s.verifiedFrom,
		"bytesPerSecond", s.cfg.ScrubRate)
	t := time.NewTicker(scrubTick)
	defer t.Stop()
	quantum := max(s.cfg.ScrubRate*int64(scrubTick)/int64(time.Second), 1)
	var budget int64
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		// A record larger than the quantum leaves a debt for later ticks.
		budget = min(budget+quantum, quantum)
		var done bool
		if budget, done = s.scrubSome(budget); done {
			ranges, size, _ := s.Corruption()
			s.log.Info("[SCRUB] commitlog verified", "from", from, "to", s.verifiedFrom, "damagedRanges", ranges, "damagedBytes", size)
			return
		}
	}
}

// scrubSome verifies records from scrubbed on until budget bytes are
// checked or verifiedFrom is reached (done). It returns what is left of
// the budget, negative when the last record was larger.
func (s *Store) scrubSome(budget int64) (left int64, done bool) {
	for budget > 0 {
		pos := max(s.scrubbed.Load(), s.MinPhyOffset()) // retention may have passed it
		if pos >= s.verifiedFrom {
			return budget, true
		}
		seg := s.clog.acquire(pos)
		if seg == nil {
			return budget, false // removed between the two reads: next tick
		}
		pos, budget = s.verifySegment(seg, pos, s.verifiedFrom, budget, "[CORRUPT]")
		seg.release()
		s.scrubbed.Store(pos)
	}
	return budget, false
}

// verifySegment checks seg's records from pos until budget bytes are
// checked, the segment ends or end is reached, and returns where it
// stopped and the budget left. Everything it walks is below the
// checkpoint's durable point (end ≤ it), so a bad record is damage, never
// a torn tail: it is quarantined, logged under tag.
func (s *Store) verifySegment(seg *mmapFile, pos, end, budget int64, tag string) (int64, int64) {
	end = min(seg.base+s.segSize, end)
	for budget > 0 && pos < end {
		if seg.base+s.segSize-pos < wire.BlankSize {
			pos = seg.base + s.segSize
		} else if n, err := s.recordAt(seg, pos); err == nil {
			pos += int64(n)
			budget -= int64(n)
		} else if errors.Is(err, wire.ErrBlank) {
			pos = seg.base + s.segSize
		} else {
			next := s.resync(seg, pos, end)
			s.quarantine(tag, seg, pos, next, err)
			budget -= next - pos
			pos = next
		}
	}
	return pos, budget
}

// verifyRange checks every record in [from, to), below the durable point,
// before recovery re-dispatches them (a consume-queue rebuild reaches below
// the segments its walk validated).
func (s *Store) verifyRange(from, to int64) {
	for pos := from; pos < to; {
		seg := s.clog.acquire(pos)
		if seg == nil {
			return
		}
		pos, _ = s.verifySegment(seg, pos, to, math.MaxInt64, "[RECOVERY]")
		seg.release()
	}
}
