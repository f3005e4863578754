package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/mqops/mqops/fileutil"
	"github.com/mqops/mqops/wire"
)

// indexStore is the list of index files under RootDir/index and the
// dispatcher's indexing state.
//
// Invariants: files is ascending by name, which is creation order, so
// also by phyOffset and store time; only the dispatcher appends (rolling
// to a new file) and only retention and recovery remove, never the last
// file outside recovery. Files are reference counted like segments: a
// query holding one keeps it mapped after retention removed it.
type indexStore struct {
	dir     string
	slots   int64
	entries int64

	mu    sync.RWMutex // guards files
	files []*indexFile

	// Owned by the dispatcher (recovery, Open and Close while it is not
	// running).
	next      int64      // every record below is indexed, or needs no entries
	cur       *indexFile // newest file (last of files), nil before the first
	failing   bool       // an index write failed; logged once until one works
	rollRetry time.Time  // after a failed roll, none is tried before this
}

// indexRollRetry spaces attempts to create an index file after one failed
// (a full disk), so that every record does not pay for a failing create.
const indexRollRetry = time.Second

var errIndexRollWait = errors.New("index file creation failed recently; waiting to retry")

func newIndexStore(cfg *Config) *indexStore {
	return &indexStore{
		dir:     filepath.Join(cfg.RootDir, "index"),
		slots:   int64(cfg.IndexSlots),
		entries: int64(cfg.IndexEntries),
	}
}

// acquireAll returns the files, oldest first, each with a reference held.
func (x *indexStore) acquireAll() []*indexFile {
	x.mu.RLock()
	defer x.mu.RUnlock()
	fs := slices.Clone(x.files)
	for _, f := range fs {
		f.m.acquire()
	}
	return fs
}

func releaseIndexFiles(fs []*indexFile) {
	for _, f := range fs {
		f.m.release()
	}
}

// indexRecord adds the keys of the record v at pos to the index: topic#key
// for the UNIQ_KEY property if present and for every non-empty key of KEYS
// split on single spaces (Java's IndexService.buildIndex; Go trace messages
// start KEYS with empty keys, batch items have no UNIQ_KEY). Both are
// hashed as raw bytes, case preserved. The dispatcher calls it after the record's consume-queue
// unit, so prepared and rollback transaction records, which get none, are
// not indexed. Records below next are indexed already (recovery
// re-dispatches consume-queue units of some).
//
// It does not allocate except when rolling to a new file. A failure skips
// the record's remaining keys and is logged: the index serves queries only
// and must not hold up consumption.
func (s *Store) indexRecord(v wire.RecordView, pos int64) {
	x := s.idx
	if x == nil || pos < x.next {
		return
	}
	x.next = pos + int64(len(v))
	props := v.Properties()
	prefix := topicHashPrefix(v.Topic())
	ts := v.StoreTimestamp()
	var err error
	put := false // a key was written: only that shows indexing works
	if uk := wire.PropertyValue(props, wire.PropUniqKey); len(uk) > 0 {
		err = s.indexKey(javaHash(prefix, uk), pos, ts)
		put = err == nil
	}
	keys := wire.PropertyValue(props, wire.PropKeys)
	for err == nil && len(keys) > 0 {
		k := keys
		if i := bytes.IndexByte(keys, ' '); i >= 0 {
			k, keys = keys[:i], keys[i+1:]
		} else {
			keys = nil
		}
		if len(k) > 0 {
			err = s.indexKey(javaHash(prefix, k), pos, ts)
			put = put || err == nil
		}
	}
	switch {
	case err != nil && !x.failing:
		x.failing = true
		s.log.Error("[INDEX] cannot index message; indexing continues with later messages", "offset", pos, "err", err)
	case err == nil && put && x.failing:
		x.failing = false
		s.log.Info("[INDEX] indexing works again", "offset", pos)
	}
}

// indexKey adds one key, given its Java hash, rolling to a new file when
// the current one is full.
func (s *Store) indexKey(h int32, pos, ts int64) error {
	x := s.idx
	if x.cur == nil || x.cur.full() {
		if err := s.rollIndexFile(); err != nil {
			return err
		}
	}
	x.cur.put(indexKeyHash(h), pos, ts)
	return nil
}

// rollIndexFile creates the next index file. Its begin offset and time
// start where the previous file ended (the first entry then sets them).
func (s *Store) rollIndexFile() error {
	x := s.idx
	now := s.cfg.Now()
	if now.Before(x.rollRetry) {
		return errIndexRollWait
	}
	last := ""
	if x.cur != nil {
		last = x.cur.name
	}
	name := nextIndexFileName(now, last)
	path := filepath.Join(x.dir, name)
	m, err := openMmapFile(path, 0, indexFileSize(x.slots, x.entries), true)
	if err == nil {
		if err = fileutil.SyncDir(x.dir); err != nil {
			m.release()
			os.Remove(path)
		}
	}
	if err != nil {
		x.rollRetry = now.Add(indexRollRetry)
		return fmt.Errorf("create index file %s: %w", path, err)
	}
	f := &indexFile{m: m, name: name, slots: x.slots, entries: x.entries}
	if p := x.cur; p != nil {
		if e := p.endPhy.Load(); e > 0 {
			f.beginPhy.Store(e)
			f.endPhy.Store(e)
		}
		if e := p.endTS.Load(); e > 0 {
			f.beginTS.Store(e)
			f.endTS.Store(e)
		}
	}
	f.count.Store(1)
	f.writeHeader()
	f.m.dirty.Store(true)

	x.mu.Lock()
	x.files = append(x.files, f)
	x.mu.Unlock()
	x.cur = f
	s.log.Info("[INDEX] created index file", "path", path, "beginPhyOffset", f.beginPhy.Load())
	return nil
}

// QueryIndex returns the commit-log offsets of messages of topic indexed
// under key (a KEYS entry or UNIQ_KEY) whose store time may lie in
// [begin, end] (ms), at most min(maxNum, 64), ascending, for QUERY_MESSAGE
// (Java's IndexService.queryOffset). Files are searched newest first,
// stopping at the first one that begins before begin.
//
// Hits are hash matches only: a different key with the same Java hash, or
// a record removed by retention, can be returned. Callers read each record
// and compare topic and key. lastUpdateTimestamp and lastUpdatePhyOffset
// are the newest file's endTimestamp and endPhyOffset (0 without files).
func (s *Store) QueryIndex(topic, key string, maxNum int, begin, end int64) (phyOffsets []int64, lastUpdateTimestamp, lastUpdatePhyOffset int64) {
	x := s.idx
	if x == nil {
		return nil, 0, 0
	}
	files := x.acquireAll()
	defer releaseIndexFiles(files)
	if len(files) == 0 {
		return nil, 0, 0
	}
	newest := files[len(files)-1]
	lastUpdateTimestamp, lastUpdatePhyOffset = newest.endTS.Load(), newest.endPhy.Load()
	maxNum = min(maxNum, maxIndexQuery)
	if maxNum <= 0 || begin > end {
		return nil, lastUpdateTimestamp, lastUpdatePhyOffset
	}
	h := indexKeyHash(javaHash(topicHashPrefix([]byte(topic)), []byte(key)))
	for i := len(files) - 1; i >= 0 && len(phyOffsets) < maxNum; i-- {
		f := files[i]
		if f.overlaps(begin, end) {
			phyOffsets = f.lookup(phyOffsets, h, maxNum, begin, end)
		}
		if f.beginTS.Load() < begin {
			break // older files end before this one begins
		}
	}
	slices.Sort(phyOffsets)
	return phyOffsets, lastUpdateTimestamp, lastUpdatePhyOffset
}

// flushIndex syncs every index file written since its last sync.
// Recovery does not depend on it (index_recovery.go); it bounds what a
// power loss can take.
func (s *Store) flushIndex() error {
	x := s.idx
	if x == nil {
		return nil
	}
	files := x.acquireAll()
	defer releaseIndexFiles(files)
	var errs []error
	for _, f := range files {
		if !f.m.dirty.Load() {
			continue
		}
		// Clear before syncing: a write racing the sync re-marks it.
		f.m.dirty.Store(false)
		if err := f.m.sync(); err != nil {
			f.m.dirty.Store(true)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// trimIndex removes the oldest index files whose entries all point below
// minPhy, never the newest, and returns how many went.
func (s *Store) trimIndex(minPhy int64) int {
	x := s.idx
	if x == nil {
		return 0
	}
	x.mu.Lock()
	var gone []*indexFile
	for len(x.files) > 1 && x.files[0].endPhy.Load() < minPhy {
		gone = append(gone, x.files[0])
		x.files = x.files[1:]
	}
	x.mu.Unlock()
	for _, f := range gone {
		if err := os.Remove(f.m.path); err != nil {
			s.log.Error("[RETENTION] removing index file failed", "path", f.m.path, "err", err)
		}
		f.m.release()
	}
	return len(gone)
}

// releaseIndex drops the list's references to the index files.
func (s *Store) releaseIndex() {
	x := s.idx
	if x == nil {
		return
	}
	x.mu.Lock()
	files := x.files
	x.files = nil
	x.mu.Unlock()
	x.cur = nil
	releaseIndexFiles(files)
}
