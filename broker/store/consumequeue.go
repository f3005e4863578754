package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/mqops/mqops/fileutil"
)

// cqTable maps topic → queue id → consume queue.
type cqTable struct {
	mu     sync.RWMutex
	topics map[string]*topicQueues
}

type topicQueues struct {
	name   string
	queues map[int32]*consumeQueue
}

func (t *cqTable) get(topic string, qid int32) *consumeQueue {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if tq := t.topics[topic]; tq != nil {
		return tq.queues[qid]
	}
	return nil
}

// getBytes is get for a topic read from a record; the map index with a
// string conversion does not allocate.
func (t *cqTable) getBytes(topic []byte, qid int32) *consumeQueue {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if tq := t.topics[string(topic)]; tq != nil {
		return tq.queues[qid]
	}
	return nil
}

// all returns every queue (a snapshot).
func (t *cqTable) all() []*consumeQueue {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var qs []*consumeQueue
	for _, tq := range t.topics {
		for _, cq := range tq.queues {
			qs = append(qs, cq)
		}
	}
	return qs
}

// getOrCreate returns the queue, creating an empty one in memory; files
// are created on the first unit.
func (s *Store) getOrCreateCQ(topic []byte, qid int32) *consumeQueue {
	if cq := s.cqs.getBytes(topic, qid); cq != nil {
		return cq
	}
	s.cqs.mu.Lock()
	defer s.cqs.mu.Unlock()
	tq := s.cqs.topics[string(topic)]
	if tq == nil {
		name := string(topic)
		tq = &topicQueues{name: name, queues: make(map[int32]*consumeQueue)}
		s.cqs.topics[name] = tq
	}
	cq := tq.queues[qid]
	if cq == nil {
		cq = s.newCQ(tq.name, qid)
		tq.queues[qid] = cq
	}
	return cq
}

func (s *Store) newCQ(topic string, qid int32) *consumeQueue {
	return &consumeQueue{
		topic: topic,
		qid:   qid,
		dir:   filepath.Join(s.cqDir, topic, strconv.Itoa(int(qid))),
		upf:   int64(s.cfg.CQUnitsPerFile),
	}
}

// cqUnit is one consume-queue entry (apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/ConsumeQueue.java).
type cqUnit struct {
	phys     int64
	size     int32
	tagsCode int64
}

// fillerSize marks Java's pre-fill units (0, Integer.MAX_VALUE, 0) written
// before the first real unit of a queue that starts mid-file.
const fillerSize = math.MaxInt32

func readUnit(b []byte) cqUnit {
	return cqUnit{
		phys:     int64(binary.BigEndian.Uint64(b[0:])),
		size:     int32(binary.BigEndian.Uint32(b[8:])),
		tagsCode: int64(binary.BigEndian.Uint64(b[12:])),
	}
}

func putUnit(b []byte, u cqUnit) {
	binary.BigEndian.PutUint64(b[0:], uint64(u.phys))
	binary.BigEndian.PutUint32(b[8:], uint32(u.size))
	binary.BigEndian.PutUint64(b[12:], uint64(u.tagsCode))
}

// real reports whether u points at a record (not empty, not a filler).
func (u cqUnit) real() bool { return u.size > 0 && u.size != fillerSize && u.phys >= 0 }

func (u cqUnit) isZero() bool { return u == cqUnit{} }

// consumeQueue is one (topic, queueId) queue.
//
// Invariants: files is ascending by base (a unit index, multiple of upf);
// units below max are final and readable without locks once max has been
// loaded (the dispatcher writes a unit before publishing max past it);
// min ≤ max; every unit in [min, max) is real or a filler unless its
// commit-log data was removed concurrently or it is damaged (readers check
// every unit against its record, get.go); units at and past max are
// written by the dispatcher only; a rebuild (cqrebuild.go) rewrites
// damaged units below max with what the dispatcher wrote or a filler.
type consumeQueue struct {
	topic string
	qid   int32
	dir   string
	upf   int64 // units per file

	mu      sync.RWMutex // guards files and dropped
	files   []*mmapFile
	dropped bool // topic deleted or store closed: no new files

	min atomic.Int64
	max atomic.Int64

	repair atomic.Pointer[repairReq] // pending rebuild after a damaged unit was read
}

// find returns the index in files of the file holding unit q, or -1.
// Caller holds cq.mu.
func (cq *consumeQueue) find(q int64) int {
	i := sort.Search(len(cq.files), func(i int) bool { return cq.files[i].base+cq.upf > q })
	if i < len(cq.files) && cq.files[i].base <= q {
		return i
	}
	return -1
}

// acquireFile returns the file holding unit q with a reference, or nil.
func (cq *consumeQueue) acquireFile(q int64) *mmapFile {
	cq.mu.RLock()
	defer cq.mu.RUnlock()
	if i := cq.find(q); i >= 0 {
		f := cq.files[i]
		f.acquire()
		return f
	}
	return nil
}

// unitAt reads unit q; ok is false when no file holds it.
func (cq *consumeQueue) unitAt(q int64) (cqUnit, bool) {
	f := cq.acquireFile(q)
	if f == nil {
		return cqUnit{}, false
	}
	defer f.release()
	return readUnit(f.data[(q-f.base)*cqUnitSize:]), true
}

// fileForWrite returns the file holding unit q with a reference, creating
// it if needed. It returns nil, nil when the queue was dropped.
func (cq *consumeQueue) fileForWrite(q int64) (*mmapFile, error) {
	if f := cq.acquireFile(q); f != nil {
		return f, nil
	}
	cq.mu.Lock()
	defer cq.mu.Unlock()
	if cq.dropped {
		return nil, nil
	}
	if i := cq.find(q); i >= 0 {
		f := cq.files[i]
		f.acquire()
		return f, nil
	}
	if err := os.MkdirAll(cq.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create consume queue dir %s: %w", cq.dir, err)
	}
	base := q - q%cq.upf
	path := fileName(cq.dir, base*cqUnitSize)
	f, err := openMmapFile(path, base, cq.upf*cqUnitSize, true)
	if err != nil {
		return nil, fmt.Errorf("create consume queue file %s: %w", path, err)
	}
	if err := fileutil.SyncDir(cq.dir); err != nil {
		f.release()
		return nil, fmt.Errorf("create consume queue file %s: %w", path, err)
	}
	i := sort.Search(len(cq.files), func(i int) bool { return cq.files[i].base > base })
	cq.files = append(cq.files, nil)
	copy(cq.files[i+1:], cq.files[i:])
	cq.files[i] = f
	f.acquire()
	return f, nil
}

// put writes unit q (dispatcher only). Rewriting an existing unit is
// allowed and idempotent (recovery re-dispatch). A unit beyond max leaves a
// gap: in a queue with no units yet it is the queue's start (min), as for a
// queue created mid-stream; the skipped units of its file are filled with
// Java's filler units so that written units form a prefix of each file.
func (cq *consumeQueue) put(q int64, u cqUnit) (gap bool, err error) {
	f, err := cq.fileForWrite(q)
	if f == nil {
		return false, err
	}
	defer f.release()
	cur := cq.max.Load()
	if q > cur {
		gap = cur != 0
		for i := max(f.base, cur); i < q; i++ {
			putUnit(f.data[(i-f.base)*cqUnitSize:], cqUnit{size: fillerSize})
		}
		if cur == 0 {
			cq.min.Store(q)
		}
	}
	putUnit(f.data[(q-f.base)*cqUnitSize:], u)
	f.dirty.Store(true)
	if q >= cur {
		cq.max.Store(q + 1) // publish after the unit is written
	}
	return gap, nil
}

// trim removes leading files whose units all point below minPhy (never the
// last file) and moves min to the first unit at or above minPhy. Returns
// the number of files removed.
func (cq *consumeQueue) trim(minPhy int64) (int, error) {
	cq.mu.Lock()
	var gone []*mmapFile
	for len(cq.files) > 1 {
		f := cq.files[0]
		// Not the last file, so it is full: its last unit is its newest.
		if last := readUnit(f.data[(cq.upf-1)*cqUnitSize:]); last.real() && last.phys >= minPhy {
			break
		}
		cq.files = cq.files[1:]
		gone = append(gone, f)
	}
	if len(cq.files) > 0 {
		f := cq.files[0]
		end := cq.max.Load()
		lo := max(f.base, cq.min.Load())
		hi := min(f.base+cq.upf, end)
		// Units are ascending by phys after the leading fillers, so the
		// predicate is monotonic.
		idx := lo + int64(sort.Search(int(max(hi-lo, 0)), func(i int) bool {
			u := readUnit(f.data[(lo+int64(i)-f.base)*cqUnitSize:])
			return u.real() && u.phys >= minPhy
		}))
		if idx >= hi && len(cq.files) == 1 {
			idx = end // every unit expired
		}
		if idx > cq.min.Load() {
			cq.min.Store(idx)
		}
	}
	cq.mu.Unlock()

	var err error
	for _, f := range gone {
		if e := os.Remove(f.path); e != nil && err == nil {
			err = fmt.Errorf("remove consume queue file: %w", e)
		}
		f.release()
	}
	return len(gone), err
}

// truncate removes the units of records at or after off (cut from the
// commit log): max moves back to the first such unit, the units are
// zeroed, and the files past it are returned for the caller to delete.
// Units ascend by phys after the leading fillers. The dispatcher must not
// run meanwhile.
func (cq *consumeQueue) truncate(off int64) []*mmapFile {
	cq.mu.Lock()
	defer cq.mu.Unlock()
	lo, hi := cq.min.Load(), cq.max.Load()
	unit := func(q int64) cqUnit {
		if i := cq.find(q); i >= 0 {
			f := cq.files[i]
			return readUnit(f.data[(q-f.base)*cqUnitSize:])
		}
		return cqUnit{}
	}
	q := lo + int64(sort.Search(int(max(hi-lo, 0)), func(i int) bool {
		u := unit(lo + int64(i))
		return u.real() && u.phys >= off
	}))
	if q >= hi {
		return nil
	}
	cq.max.Store(q) // readers stop before the units go
	var gone []*mmapFile
	kept := cq.files[:0]
	for _, f := range cq.files {
		if f.base > q {
			gone = append(gone, f)
			continue
		}
		kept = append(kept, f)
		if from, to := max(q, f.base), min(hi, f.base+cq.upf); from < to {
			clear(f.data[(from-f.base)*cqUnitSize : (to-f.base)*cqUnitSize])
			f.dirty.Store(true)
		}
	}
	clear(cq.files[len(kept):])
	cq.files = kept
	return gone
}

// drop marks the queue dead and releases its files (they stay on disk).
func (cq *consumeQueue) drop() {
	cq.mu.Lock()
	files := cq.files
	cq.files = nil
	cq.dropped = true
	cq.mu.Unlock()
	for _, f := range files {
		f.release()
	}
}

// acquireDirty returns the files written since their last sync, with
// references held.
func (cq *consumeQueue) acquireDirty(dst []*mmapFile) []*mmapFile {
	cq.mu.RLock()
	defer cq.mu.RUnlock()
	for _, f := range cq.files {
		if f.dirty.Load() {
			f.acquire()
			dst = append(dst, f)
		}
	}
	return dst
}

// MaxOffset returns the queue's max offset: the next offset the dispatcher
// will write (0 if the queue does not exist).
func (s *Store) MaxOffset(topic string, queueID int32) int64 {
	if cq := s.cqs.get(topic, queueID); cq != nil {
		return cq.max.Load()
	}
	return 0
}

// MinOffset returns the first retained queue offset, or -1 if the queue
// does not exist (GET_MIN_OFFSET, 31; as Java's
// DefaultMessageStore.getMinOffsetInQueue).
func (s *Store) MinOffset(topic string, queueID int32) int64 {
	if cq := s.cqs.get(topic, queueID); cq != nil {
		return cq.min.Load()
	}
	return -1
}
