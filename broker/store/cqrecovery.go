package store

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"

	"github.com/mqops/mqops/wire"
	"golang.org/x/sys/unix"
)

// recoverConsumeQueues loads the consume queues of the valid log
// [minPhy, end), checks every one and rebuilds from the log what does not
// match, and returns where re-dispatch starts (the checkpoint's dispatched
// offset, or minPhy when there is no checkpoint or no queue on disk).
//
// Re-dispatch rewrites every unit of the records from there on, so the
// checks are about the units of older records, which the checkpoint says
// are durable. They cost a few record reads per queue file, never a walk:
//   - structure: every file but the last is full size (files are created
//     full size, so a short one was cut), files are contiguous, and the
//     first and last unit of every file match the record they point at;
//   - against the manifest (cqmanifest.go) of the last checkpoint: a queue
//     it lists exists, does not start later (leading files missing) and
//     does not end earlier (last files missing or cut, zeroed tail) than
//     it did, unless the commit log itself was cut there.
//
// Each damaged range is rebuilt by one walk over the commit-log range
// between its nearest intact units (a whole queue: the retained log), and
// logged with [RECOVERY]. Damage inside a file that leaves its first and
// last unit intact (a flipped unit) is found by the read path instead.
func (s *Store) recoverConsumeQueues(ck checkpoint, haveCk bool, end, minPhy int64) (int64, error) {
	mf, haveMf, err := readManifest(s.cfg.RootDir)
	if err != nil {
		s.log.Warn("[RECOVERY] ignoring unusable consume-queue manifest; a missing queue cannot be noticed this time", "err", err)
	}
	damage, err := s.loadConsumeQueues(end, minPhy, mf, haveMf)
	if err != nil {
		return 0, err
	}
	onDisk := slices.ContainsFunc(s.cqs.all(), func(cq *consumeQueue) bool { return len(cq.files) > 0 })
	from := minPhy
	if haveCk && onDisk {
		from = min(max(ck.dispatched, minPhy), end)
	} else if haveCk && from < end {
		// An empty consumequeue dir is how operators ask for a rebuild.
		s.log.Warn("[RECOVERY] no consume queues on disk: rebuilding them from the first segment", "from", from)
	}
	if haveMf && from > minPhy { // else re-dispatch rewrites every queue
		keys := make([]queueKey, 0, len(mf))
		for k := range mf {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b queueKey) int { return cmp.Or(cmp.Compare(a.topic, b.topic), cmp.Compare(a.qid, b.qid)) })
		for _, k := range keys {
			if s.cqs.get(k.topic, k.qid) != nil {
				continue
			}
			// Its records below from are nowhere else; re-dispatch writes
			// the rest.
			damage = append(damage, &cqDamage{cq: s.getOrCreateCQ([]byte(k.topic), k.qid), reason: "queue directory missing",
				lo: mf[k].min, hi: -1, head: true, from: minPhy, to: from})
		}
	}
	if err := s.rebuild(damage, nil); err != nil {
		s.log.Error("[RECOVERY] rebuilding consume queues from the commitlog failed; damaged units stay unreadable",
			"queues", len(damage), "err", err)
	} else {
		for _, d := range damage {
			s.logRebuild("[RECOVERY]", d)
		}
	}
	for _, cq := range s.cqs.all() {
		if len(cq.files) == 0 {
			if err := s.removeEmptyCQ(cq); err != nil {
				return 0, err
			}
			continue
		}
		if _, err := cq.trim(minPhy); err != nil {
			return 0, fmt.Errorf("open consume queue %s: %w", cq.dir, err)
		}
	}
	return from, nil
}

// removeEmptyCQ forgets a queue left without files and removes its
// directory, and its topic's directory if that is empty then.
func (s *Store) removeEmptyCQ(cq *consumeQueue) error {
	s.cqs.mu.Lock()
	if tq := s.cqs.topics[cq.topic]; tq != nil {
		delete(tq.queues, cq.qid)
		if len(tq.queues) == 0 {
			delete(s.cqs.topics, cq.topic)
		}
	}
	s.cqs.mu.Unlock()
	cq.drop()
	if err := os.RemoveAll(cq.dir); err != nil {
		return fmt.Errorf("remove empty consume queue %s: %w", cq.dir, err)
	}
	tdir := filepath.Dir(cq.dir)
	if err := os.Remove(tdir); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTEMPTY) {
		return fmt.Errorf("remove empty consume queue dir %s: %w", tdir, err)
	}
	return nil
}

// loadConsumeQueues opens every consume queue on disk, cut to the valid
// log [minPhy, end), and returns the damage found in them.
func (s *Store) loadConsumeQueues(end, minPhy int64, mf map[queueKey]manifestEntry, haveMf bool) ([]*cqDamage, error) {
	topics, err := os.ReadDir(s.cqDir)
	if err != nil {
		return nil, fmt.Errorf("open consume queues %s: %w", s.cqDir, err)
	}
	var damage []*cqDamage
	for _, te := range topics {
		topic := te.Name()
		tdir := filepath.Join(s.cqDir, topic)
		if !te.IsDir() || !validTopic(topic) {
			s.log.Warn("[RECOVERY] ignoring unexpected entry in consumequeue dir", "path", tdir)
			continue
		}
		qents, err := os.ReadDir(tdir)
		if err != nil {
			return nil, fmt.Errorf("open consume queues %s: %w", tdir, err)
		}
		for _, qe := range qents {
			qid, err := strconv.ParseInt(qe.Name(), 10, 32)
			if err != nil || !qe.IsDir() {
				s.log.Warn("[RECOVERY] ignoring unexpected entry in consumequeue dir", "path", filepath.Join(tdir, qe.Name()))
				continue
			}
			cq := s.newCQ(topic, int32(qid))
			want, listed := mf[queueKey{topic, int32(qid)}]
			ds, err := s.loadCQ(cq, end, minPhy, want, listed, haveMf)
			if err != nil {
				return nil, err
			}
			damage = append(damage, ds...)
			s.cqs.mu.Lock()
			tq := s.cqs.topics[topic]
			if tq == nil {
				tq = &topicQueues{name: topic, queues: make(map[int32]*consumeQueue)}
				s.cqs.topics[topic] = tq
			}
			tq.queues[cq.qid] = cq
			s.cqs.mu.Unlock()
		}
		if len(qents) == 0 {
			if err := os.Remove(tdir); err != nil {
				return nil, fmt.Errorf("remove empty consume queue dir %s: %w", tdir, err)
			}
		}
	}
	return damage, nil
}

// loadCQ maps a queue's files, finds its end and returns its damaged
// ranges (see recoverConsumeQueues). The end is the binary-searched end of
// written units in the last file, walked back past units that point at or
// beyond end or do not match their record (torn or stale writes from
// before a crash); those are zeroed and files wholly past the end removed.
// want is the queue's manifest entry when listed; haveMf says whether
// there is a manifest at all. A queue left without units has no files on
// return.
func (s *Store) loadCQ(cq *consumeQueue, end, minPhy int64, want manifestEntry, listed, haveMf bool) ([]*cqDamage, error) {
	entries, err := os.ReadDir(cq.dir)
	if err != nil {
		return nil, fmt.Errorf("open consume queue %s: %w", cq.dir, err)
	}
	fileBytes := cq.upf * cqUnitSize
	var offs []int64
	for _, e := range entries {
		off, ok := parseFileName(e.Name())
		if !ok || !e.Type().IsRegular() {
			s.log.Warn("[RECOVERY] ignoring unexpected file in consume queue dir", "path", filepath.Join(cq.dir, e.Name()))
			continue
		}
		if off%fileBytes != 0 {
			return nil, fmt.Errorf("open consume queue %s: file %020d not aligned to %d bytes (CQUnitsPerFile changed?)", cq.dir, off, fileBytes)
		}
		offs = append(offs, off)
	}
	slices.Sort(offs)
	for _, off := range offs {
		f, err := openMmapFile(fileName(cq.dir, off), off/cqUnitSize, fileBytes, false)
		if err != nil {
			cq.drop()
			return nil, fmt.Errorf("open consume queue %s: %w", cq.dir, err)
		}
		cq.files = append(cq.files, f)
	}
	if len(cq.files) == 0 {
		if listed && want.max > want.min {
			return []*cqDamage{{cq: cq, reason: "queue directory empty", lo: want.min, hi: -1, head: true, from: minPhy, to: end}}, nil
		}
		return nil, nil
	}

	// Structure of every file but the last.
	var ds []*cqDamage
	add := func(reason string, lo, hi int64) {
		ds = append(ds, &cqDamage{cq: cq, reason: reason, lo: lo, hi: hi})
	}
	for i, f := range cq.files[:len(cq.files)-1] {
		name := filepath.Base(f.path)
		switch {
		case f.origSize < fileBytes:
			add(fmt.Sprintf("file %s cut to %d bytes", name, f.origSize), f.base+f.origSize/cqUnitSize, f.base+cq.upf)
		case !s.unitIntact(cq, f.base, end, minPhy) || !s.unitIntact(cq, f.base+cq.upf-1, end, minPhy):
			add(fmt.Sprintf("first or last unit of file %s does not match its record", name), f.base, f.base+cq.upf)
		}
		if next := cq.files[i+1].base; next != f.base+cq.upf {
			add(fmt.Sprintf("files missing after %s", name), f.base+cq.upf, next)
		}
	}

	last := cq.files[len(cq.files)-1]
	// Written units form a prefix of each file (fillers included), except
	// for holes left by a crash among units of records ≥ the checkpoint's
	// dispatched offset; those are rewritten by re-dispatch.
	e := last.base + int64(sort.Search(int(cq.upf), func(i int) bool {
		return readUnit(last.data[int64(i)*cqUnitSize:]).isZero()
	}))
	searched := e
	cutOnly := true // every unit walked back over points past the log's end
	for e > cq.files[0].base {
		q := e - 1
		i := cq.find(q)
		if i < 0 {
			break // missing file in the middle: keep what precedes the hole
		}
		f := cq.files[i]
		b := f.data[(q-f.base)*cqUnitSize:]
		u := readUnit(b)
		if s.unitOK(cq, q, u, end, minPhy) {
			break
		}
		if !u.real() || u.phys+int64(u.size) <= end {
			cutOnly = false
		}
		if !u.isZero() {
			putUnit(b, cqUnit{})
			f.dirty.Store(true)
		}
		e = q
	}
	// Files past the end go. A queue starting at 0 with no unit left goes
	// entirely; one whose earlier files were retired keeps its (now empty)
	// first file so that its offsets continue from e.
	keep := len(cq.files)
	for i, f := range cq.files {
		if f.base > e || e == 0 {
			keep = i
			break
		}
	}
	removed := cq.files[keep:]
	cq.files = cq.files[:keep]
	for _, f := range removed {
		if err := os.Remove(f.path); err != nil {
			return nil, fmt.Errorf("open consume queue %s: %w", cq.dir, err)
		}
		f.release()
	}
	// Damage past the end is covered by the tail's.
	ds = slices.DeleteFunc(ds, func(d *cqDamage) bool { return d.lo >= e })
	for _, d := range ds {
		d.hi = min(d.hi, e)
	}
	first := int64(0)
	if len(cq.files) > 0 {
		first = cq.files[0].base
		cq.max.Store(e)
		cq.min.Store(first)
	}

	// A lost tail: up to the queue's last record in the log. Without
	// units left it is rebuilt like a missing queue.
	switch {
	case listed && e < want.max && !(cutOnly && searched >= want.max):
		ds = append(ds, &cqDamage{cq: cq, reason: fmt.Sprintf("queue ends at %d, the manifest at %d", e, want.max),
			lo: e, hi: -1, head: e == 0})
	case !haveMf && last.origSize < fileBytes && e <= last.base+last.origSize/cqUnitSize:
		ds = append(ds, &cqDamage{cq: cq, reason: fmt.Sprintf("last file %s cut to %d bytes", filepath.Base(last.path), last.origSize),
			lo: e, hi: -1, head: e == 0})
	}
	for _, d := range ds {
		s.boundDamage(d, end, minPhy)
	}
	if listed && len(cq.files) > 0 && first > want.min {
		// Leading files missing, unless retention removed them after the
		// manifest was written: then the first unit left points below
		// minPhy or right after the removed ones.
		d := &cqDamage{cq: cq, reason: fmt.Sprintf("queue starts at %d, the manifest at %d", first, want.min),
			lo: want.min, hi: first, head: true, from: minPhy, to: end}
		if u, ok := cq.unitAt(first); ok && s.unitValid(cq, first, u, end, minPhy) {
			d.to = u.phys
		}
		if d.to > d.from {
			ds = append(ds, d)
		}
	}
	return ds, nil
}

// boundDamage sets the commit-log range holding the records of d's units:
// between the records of the intact units around it, or the whole valid
// log [minPhy, end) where there is none.
func (s *Store) boundDamage(d *cqDamage, end, minPhy int64) {
	d.from, d.to = minPhy, end
	if d.lo > 0 {
		if u, ok := d.cq.unitAt(d.lo - 1); ok && s.unitValid(d.cq, d.lo-1, u, end, minPhy) {
			d.from = max(u.phys+int64(u.size), minPhy)
		}
	}
	if d.hi < 0 {
		return
	}
	if u, ok := d.cq.unitAt(d.hi); ok && s.unitValid(d.cq, d.hi, u, end, minPhy) {
		d.to = max(u.phys, d.from)
	}
}

// unitIntact reports whether unit q of cq is intact (unitOK).
func (s *Store) unitIntact(cq *consumeQueue, q, end, minPhy int64) bool {
	u, ok := cq.unitAt(q)
	return ok && s.unitOK(cq, q, u, end, minPhy)
}

// unitOK reports whether u, unit q of cq, is a filler or matches its
// record (unitValid).
func (s *Store) unitOK(cq *consumeQueue, q int64, u cqUnit, end, minPhy int64) bool {
	return u.size == fillerSize || s.unitValid(cq, q, u, end, minPhy)
}

// unitValid reports whether unit q of cq is a real unit of a record in the
// valid log. Units below minPhy cannot be checked (their segment is gone);
// retention removed data only after it was dispatched and flushed.
func (s *Store) unitValid(cq *consumeQueue, q int64, u cqUnit, end, minPhy int64) bool {
	if !u.real() || u.phys+int64(u.size) > end {
		return false
	}
	if u.phys < minPhy {
		return true
	}
	if s.damagedEnd(u.phys) != u.phys {
		return true // its record was there and is quarantined: keep its queue offset taken
	}
	seg := s.clog.acquire(u.phys)
	if seg == nil {
		return false
	}
	defer seg.release()
	off := u.phys - seg.base
	if off+int64(u.size) > s.segSize {
		return false
	}
	return unitMatches(seg.data[off:off+int64(u.size)], cq, q, u)
}

// unitMatches reports whether rec, the bytes unit u (unit q of cq) points
// at, is that unit's record: the fields compared are in the record's
// header and its topic, next to what a reader copies anyway. A light
// queue's unit is found in the record's multi-dispatch lists instead
// (lmq.go).
func unitMatches(rec []byte, cq *consumeQueue, q int64, u cqUnit) bool {
	v := wire.RecordView(rec)
	if v.Magic() != wire.MagicMessage || v.TotalSize() != u.size || v.PhysicalOffset() != u.phys {
		return false
	}
	if v.QueueOffset() == q && v.QueueID() == cq.qid && string(v.Topic()) == cq.topic {
		return true
	}
	return cq.qid == wire.LMQQueueID && wire.IsLMQ(cq.topic) && recordLMQUnit(v, cq.topic, q)
}
