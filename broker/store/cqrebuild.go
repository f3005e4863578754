package store

import (
	"context"
	"errors"
	"log/slog"
	"math"

	"github.com/mqops/mqops/wire"
)

// cqDamage is a damaged part of one consume queue and the commit-log range
// holding its records. Recovery finds damage by structure and against the
// manifest (cqrecovery.go); the read path finds units that do not match
// their record (get.go).
type cqDamage struct {
	cq     *consumeQueue
	reason string
	// lo, hi: the damaged units [lo, hi); hi < 0 means up to the queue's
	// last record in [from, to).
	lo, hi int64
	// head: units below the first record found are not expected (a
	// missing queue or missing leading files): no fillers before it, and
	// the queue's min moves down to it.
	head     bool
	from, to int64 // commit-log range holding the records of [lo, hi)

	// Walk state and outcome.
	next      int64 // unit after the last one rebuilt
	first     int64 // first unit rebuilt, when seen
	seen      bool
	rewritten int // units that differed from their record's
	filled    int // units without a record in the log, made fillers
}

// rebuild rewrites the units of damaged queue ranges from their records,
// walking the union of their commit-log ranges once. A unit's position is
// its record's QUEUEOFFSET, so rewriting is idempotent; only units that
// differ are written. Units of a bounded range whose record is not in the
// log become fillers, which readers step over. Returns an error when the
// walk could not finish or a unit could not be written.
func (s *Store) rebuild(ds []*cqDamage, stop <-chan struct{}) error {
	if len(ds) == 0 {
		return nil
	}
	byQ := make(map[*consumeQueue][]*cqDamage, len(ds))
	from, to := int64(math.MaxInt64), int64(0)
	for _, d := range ds {
		d.next = d.lo
		byQ[d.cq] = append(byQ[d.cq], d)
		from, to = min(from, d.from), max(to, d.to)
	}
	var werr error
	_, err := s.eachRecord(from, to, stop, func(v wire.RecordView, pos int64) bool {
		// A record has units in its own queue and its light queues (lmq.go).
		s.eachQueueOf(v, func(topic []byte, qid int32, q int64) bool {
			for _, d := range byQ[s.cqs.getBytes(topic, qid)] {
				if pos < d.from || pos >= d.to || (!d.head && q < d.lo) || (d.hi >= 0 && q >= d.hi) {
					continue
				}
				werr = s.rebuildUnit(d, q, s.unitOf(v, pos))
				return werr == nil
			}
			return true
		})
		return werr == nil
	})
	if werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	for _, d := range ds {
		if d.hi >= 0 && (d.seen || !d.head) {
			if err := s.fillUnits(d, d.hi); err != nil {
				return err
			}
		}
		if d.head && d.seen && d.first < d.cq.min.Load() {
			d.cq.min.Store(d.first)
		}
	}
	return nil
}

// rebuildUnit makes unit q of d's queue u.
func (s *Store) rebuildUnit(d *cqDamage, q int64, u cqUnit) error {
	switch {
	case d.head && !d.seen:
		// The first unit found of a queue rebuilt from its head. put fills
		// what precedes it in its file for a queue without units; in a
		// file recreated before an existing queue's units, the
		// never-written units before it become fillers the same way.
		if d.cq.max.Load() > 0 {
			if err := fillZeros(d.cq, q-q%d.cq.upf, q); err != nil {
				return err
			}
		}
	case q > d.next:
		if err := s.fillUnits(d, q); err != nil {
			return err
		}
	}
	if !d.seen {
		d.seen, d.first = true, q
	}
	// A later record wins: a topic deleted and created again restarts
	// its queue offsets.
	d.next = q + 1
	if cur, ok := d.cq.unitAt(q); ok && cur == u {
		return nil
	}
	if err := s.writeUnit(d.cq, q, u); err != nil {
		return err
	}
	d.rewritten++
	return nil
}

// fillUnits makes units [d.next, to) fillers: their records are not in the
// log range that must hold them.
func (s *Store) fillUnits(d *cqDamage, to int64) error {
	for q := d.next; q < to; q++ {
		if u, ok := d.cq.unitAt(q); ok && u.size == fillerSize {
			continue
		}
		if _, err := d.cq.put(q, cqUnit{size: fillerSize}); err != nil {
			return err
		}
		d.filled++
	}
	d.next = max(d.next, to)
	return nil
}

// fillZeros makes the never-written (zero) units of cq in [from, to)
// fillers, leaving every other unit alone.
func fillZeros(cq *consumeQueue, from, to int64) error {
	for q := from; q < to; q++ {
		if u, ok := cq.unitAt(q); ok && !u.isZero() {
			continue
		}
		if _, err := cq.put(q, cqUnit{size: fillerSize}); err != nil {
			return err
		}
	}
	return nil
}

// logRebuild reports a rebuilt range: WARN, or ERROR when units had no
// record left (their messages are lost).
func (s *Store) logRebuild(tag string, d *cqDamage) {
	hi := d.hi
	if hi < 0 {
		hi = d.next
	}
	level, msg := slog.LevelWarn, tag+" rebuilt consume queue from the commitlog"
	switch {
	case d.filled > 0:
		level = slog.LevelError
	case d.rewritten == 0:
		// E.g. leading files retention removed after the last manifest.
		level, msg = slog.LevelInfo, tag+" checked consume queue against the commitlog: nothing to rebuild"
	}
	s.log.Log(context.Background(), level, msg, "topic", d.cq.topic, "queueId", d.cq.qid,
		"reason", d.reason, "fromQueueOffset", d.lo, "toQueueOffset", hi, "rewritten", d.rewritten,
		"fillers", d.filled, "logFrom", d.from, "logTo", d.to)
}

// unitDamaged reports that unit q of cq does not match the record it
// points at and schedules a rebuild of the queue around it, once per queue
// at a time. The returned request is done when the rebuild finished.
func (s *Store) unitDamaged(cq *consumeQueue, q int64, u cqUnit) *repairReq {
	var r *repairReq
	for r == nil || !cq.repair.CompareAndSwap(nil, r) {
		if p := cq.repair.Load(); p != nil {
			return p
		}
		r = &repairReq{q: q, done: make(chan struct{})}
	}
	s.log.Error("[CONSUME_QUEUE] consume queue unit does not match its record; not served, rebuilding the queue from the commitlog",
		"topic", cq.topic, "queueId", cq.qid, "queueOffset", q, "phyOffset", u.phys, "size", u.size)
	s.repairMu.Lock()
	s.repairs = append(s.repairs, cq)
	s.repairMu.Unlock()
	select {
	case s.repairWake <- struct{}{}:
	default:
	}
	return r
}

// repairReq is a pending rebuild around unit q of a queue.
type repairReq struct {
	q    int64
	done chan struct{}
}

// repairLoop rebuilds queues the read path found damaged. It runs on its
// own goroutine so that a long walk does not hold up dispatching; it only
// rewrites units below the queue's max, which the dispatcher never
// touches again.
func (s *Store) repairLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.repairWake:
		}
		s.repairMu.Lock()
		qs := s.repairs
		s.repairs = nil
		s.repairMu.Unlock()
		for _, cq := range qs {
			r := cq.repair.Load()
			s.repairQueue(cq, r.q)
			cq.repair.Store(nil)
			close(r.done)
		}
	}
}

// repairQueue rebuilds the run of damaged units around unit q: from the
// nearest intact unit before it to the nearest intact one after it, the
// records lie between those two units' records.
func (s *Store) repairQueue(cq *consumeQueue, q int64) {
	end, minPhy := s.complete.Load(), s.MinPhyOffset() // a slave's partial tail holds no record yet
	lo, hi := cq.min.Load(), cq.max.Load()
	if q < lo || q >= hi {
		return // trimmed meanwhile
	}
	intact := func(i int64) (cqUnit, bool) {
		u, ok := cq.unitAt(i)
		return u, ok && s.unitValid(cq, i, u, end, minPhy)
	}
	d := &cqDamage{cq: cq, reason: "unit does not match its record", lo: q, hi: q + 1, from: minPhy, to: end}
	for ; d.lo > lo; d.lo-- {
		if u, ok := intact(d.lo - 1); ok {
			d.from = max(u.phys+int64(u.size), minPhy)
			break
		}
	}
	for ; d.hi < hi; d.hi++ {
		if u, ok := intact(d.hi); ok {
			d.to = max(u.phys, d.from)
			break
		}
	}
	if err := s.rebuild([]*cqDamage{d}, s.stop); err != nil {
		if errors.Is(err, ErrClosed) {
			return
		}
		// The log range cannot be read to the end: units still without
		// their record become fillers, or readers would wait there forever.
		n := 0
		for i := d.lo; i < d.hi; i++ {
			if s.unitIntact(cq, i, end, minPhy) {
				continue
			}
			if _, err := cq.put(i, cqUnit{size: fillerSize}); err != nil {
				break
			}
			n++
		}
		s.log.Error("[CONSUME_QUEUE] rebuilding consume queue failed; units without a readable record replaced by fillers",
			"topic", cq.topic, "queueId", cq.qid, "fromQueueOffset", d.lo, "toQueueOffset", d.hi, "fillers", n, "err", err)
		return
	}
	s.logRebuild("[CONSUME_QUEUE]", d)
}
