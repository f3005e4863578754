package store

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"
)

// An index file (apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/index/IndexFile.java) maps
// "topic#key" to commit-log offsets for QUERY_MESSAGE. The layout is
// RocketMQ's, byte for byte, all big-endian:
//
//	header   40 bytes at 0:
//	           0 int64 beginTimestamp  store time of the first entry
//	           8 int64 endTimestamp    store time of the last entry
//	          16 int64 beginPhyOffset  commit-log offset of the first entry
//	          24 int64 endPhyOffset    commit-log offset of the last entry
//	          32 int32 hashSlotCount   keys put (Java counts every put, not distinct slots)
//	          36 int32 indexCount      next entry number; starts at 1
//	slots    slots × int32 at 40: number of the newest entry whose
//	         keyHash % slots is that slot, 0 for none
//	entries  entries × 20 bytes at 40 + slots×4, entry k at + k×20:
//	           0 int32 keyHash    abs(Java String.hashCode("topic#key"))
//	           4 int64 phyOffset
//	          12 int32 timeDiff   (storeTimestamp − beginTimestamp) / 1000
//	          16 int32 prevIndex  previous entry of the same slot, 0 ends the chain
//
// Entry 0 is never used, so a file holds entries−1 keys and is full when
// indexCount reaches entries.
//
// Invariants (one writer, the dispatcher; queries read concurrently):
//   - entries [1, count) are written and never change until recovery; their
//     phyOffsets and store times do not decrease (the dispatcher follows the
//     log and store timestamps never go backwards).
//   - every prevIndex is below its own entry number, so chains strictly
//     descend and a walk ends within count steps whatever the file holds.
//   - put writes the entry, publishes count, copies the header to the
//     mapping, then points the slot at the entry with an atomic 32-bit
//     store. A query that loads a slot and then count sees slot < count,
//     and every entry its chain reaches is complete.
//   - queries use the header mirrored in atomics; the mapped header is kept
//     in step by every put so that what a crashed process leaves in the page
//     cache is consistent (index_recovery.go relies on it).
const (
	indexHeaderSize = 40
	indexSlotSize   = 4
	indexEntrySize  = 20

	defaultIndexSlots   = 5000000  // Java maxHashSlotNum
	defaultIndexEntries = 20000000 // Java maxIndexNum

	// maxIndexQuery caps the offsets one query returns (Java maxMsgsNumBatch).
	maxIndexQuery = 64

	// indexNameLen is the length of an index file name, yyyyMMddHHmmssSSS.
	indexNameLen = 17
)

// Header field offsets.
const (
	ihBeginTS   = 0
	ihEndTS     = 8
	ihBeginPhy  = 16
	ihEndPhy    = 24
	ihSlotCount = 32
	ihCount     = 36
)

func indexFileSize(slots, entries int64) int64 {
	return indexHeaderSize + slots*indexSlotSize + entries*indexEntrySize
}

// indexFile is one mapped index file.
type indexFile struct {
	m       *mmapFile
	name    string // yyyyMMddHHmmssSSS: files sort by name in creation order
	slots   int64
	entries int64 // capacity including the unused entry 0

	beginTS, endTS   atomic.Int64
	beginPhy, endPhy atomic.Int64
	count            atomic.Int32 // indexCount: entries [1, count) are readable
	slotCount        int32        // writer-owned
}

// indexEntry is one decoded entry.
type indexEntry struct {
	hash     int32
	phy      int64
	timeDiff int32
	prev     int32
}

func (f *indexFile) entryOff(k int32) int64 {
	return indexHeaderSize + f.slots*indexSlotSize + int64(k)*indexEntrySize
}

// entry reads entry k; callers keep k within [0, entries).
func (f *indexFile) entry(k int32) indexEntry {
	b := f.m.data[f.entryOff(k):][:indexEntrySize]
	be := binary.BigEndian
	return indexEntry{
		hash:     int32(be.Uint32(b[0:])),
		phy:      int64(be.Uint64(b[4:])),
		timeDiff: int32(be.Uint32(b[12:])),
		prev:     int32(be.Uint32(b[16:])),
	}
}

func (f *indexFile) putEntry(k int32, e indexEntry) {
	b := f.m.data[f.entryOff(k):][:indexEntrySize]
	be := binary.BigEndian
	be.PutUint32(b[0:], uint32(e.hash))
	be.PutUint64(b[4:], uint64(e.phy))
	be.PutUint32(b[12:], uint32(e.timeDiff))
	be.PutUint32(b[16:], uint32(e.prev))
}

// slotWord returns slot i as a word for atomic access: slots are the only
// mapped words rewritten while queries read them. They are 4-byte aligned
// (the mapping is page-aligned and slots start at byte 40).
func (f *indexFile) slotWord(i int64) *uint32 {
	return (*uint32)(unsafe.Pointer(&f.m.data[indexHeaderSize+i*indexSlotSize]))
}

// loadSlot and storeSlot access slot i atomically in its on-disk
// big-endian form.
func (f *indexFile) loadSlot(i int64) int32 {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], atomic.LoadUint32(f.slotWord(i)))
	return int32(binary.BigEndian.Uint32(b[:]))
}

func (f *indexFile) storeSlot(i int64, v int32) {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(v))
	atomic.StoreUint32(f.slotWord(i), binary.NativeEndian.Uint32(b[:]))
}

// writeHeader copies the header fields to the mapping.
func (f *indexFile) writeHeader() {
	h := f.m.data[:indexHeaderSize]
	be := binary.BigEndian
	be.PutUint64(h[ihBeginTS:], uint64(f.beginTS.Load()))
	be.PutUint64(h[ihEndTS:], uint64(f.endTS.Load()))
	be.PutUint64(h[ihBeginPhy:], uint64(f.beginPhy.Load()))
	be.PutUint64(h[ihEndPhy:], uint64(f.endPhy.Load()))
	be.PutUint32(h[ihSlotCount:], uint32(f.slotCount))
	be.PutUint32(h[ihCount:], uint32(f.count.Load()))
}

// readHeader loads the mapped header and checks it against the entries it
// claims. It only looks at the header and the first and last entries, so
// it catches a file that is not an index file of this geometry or whose
// header was lost, not every damaged entry (queries tolerate those).
func (f *indexFile) readHeader() error {
	h := f.m.data[:indexHeaderSize]
	be := binary.BigEndian
	f.beginTS.Store(int64(be.Uint64(h[ihBeginTS:])))
	f.endTS.Store(int64(be.Uint64(h[ihEndTS:])))
	f.beginPhy.Store(int64(be.Uint64(h[ihBeginPhy:])))
	f.endPhy.Store(int64(be.Uint64(h[ihEndPhy:])))
	f.slotCount = int32(be.Uint32(h[ihSlotCount:]))
	n := int32(be.Uint32(h[ihCount:]))
	if n == 0 {
		n = 1 // created, header never written: empty
	}
	f.count.Store(n)
	bp, ep := f.beginPhy.Load(), f.endPhy.Load()
	switch {
	case n < 1 || int64(n) > f.entries:
		return fmt.Errorf("indexCount %d out of range [1, %d]", n, f.entries)
	case bp < 0 || ep < bp:
		return fmt.Errorf("phy offsets [%d, %d] out of order", bp, ep)
	case f.endTS.Load() < f.beginTS.Load():
		return fmt.Errorf("timestamps [%d, %d] out of order", f.beginTS.Load(), f.endTS.Load())
	case n > 1 && (f.entry(1).phy != bp || f.entry(n-1).phy != ep):
		return fmt.Errorf("entries 1 and %d (phy %d, %d) do not match the header's [%d, %d]",
			n-1, f.entry(1).phy, f.entry(n-1).phy, bp, ep)
	}
	return nil
}

// full reports whether the file has no free entry.
func (f *indexFile) full() bool { return int64(f.count.Load()) >= f.entries }

// put adds keyHash → phy, stored at ts. Writer only; the file is not full.
func (f *indexFile) put(keyHash int32, phy, ts int64) {
	n := f.count.Load()
	slot := int64(keyHash) % f.slots
	prev := f.loadSlot(slot)
	if prev <= 0 || prev >= n {
		prev = 0
	}
	if n <= 1 {
		// The first entry fixes the file's begin. Java computes this
		// entry's timeDiff before moving beginTimestamp, which misdates it
		// by the gap since the previous file ended; here it is 0.
		f.beginTS.Store(ts)
		f.beginPhy.Store(phy)
	}
	var diff int64
	if begin := f.beginTS.Load(); begin > 0 {
		diff = min(max((ts-begin)/1000, 0), 1<<31-1)
	}
	f.putEntry(n, indexEntry{hash: keyHash, phy: phy, timeDiff: int32(diff), prev: prev})
	f.endTS.Store(ts)
	f.endPhy.Store(phy)
	f.slotCount++
	f.count.Store(n + 1) // before writeHeader, which copies it
	f.writeHeader()
	f.storeSlot(slot, n)
	f.m.dirty.Store(true)
}

// overlaps reports whether the file's time range meets [begin, end].
func (f *indexFile) overlaps(begin, end int64) bool {
	return begin <= f.endTS.Load() && end >= f.beginTS.Load()
}

// lookup appends to dst, until it holds maxNum offsets, the distinct
// offsets of entries with keyHash whose store time can lie in [begin, end],
// walking the slot's chain from the newest entry. timeDiff has whole
// seconds, rounded down, so an entry's store time is in [t, t+999] for
// t = beginTimestamp + timeDiff×1000; Java compares t alone and misses
// entries in the first second of the range. Safe on any file contents.
func (f *indexFile) lookup(dst []int64, keyHash int32, maxNum int, begin, end int64) []int64 {
	k := f.loadSlot(int64(keyHash) % f.slots)
	n := f.count.Load() // after the slot: see the invariants above
	if int64(n) > f.entries {
		n = int32(f.entries) // never for a file that passed readHeader
	}
	base := f.beginTS.Load()
	for k > 0 && k < n && len(dst) < maxNum {
		e := f.entry(k)
		if e.timeDiff < 0 {
			break
		}
		t := base + int64(e.timeDiff)*1000
		if e.hash == keyHash && t <= end && t+999 >= begin && e.phy >= 0 && !slices.Contains(dst, e.phy) {
			dst = append(dst, e.phy)
		}
		if t+999 < begin || e.prev >= k {
			break // older entries only get older; prev ≥ k is damage
		}
		k = e.prev
	}
	return dst
}

// javaHash continues Java's String.hashCode h (h = 31h + c over UTF-16
// code units, int32 overflow) over the UTF-8 text b, like
// wire.TagsHashCode: invalid bytes count as U+FFFD, supplementary runes as
// surrogate pairs. Continuing lets "topic#key" be hashed in pieces.
func javaHash(h int32, b []byte) int32 {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			h = 31*h + int32(c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		i += n
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}

// topicHashPrefix is the Java hash of topic + "#", to be continued with a
// key by javaHash.
func topicHashPrefix(topic []byte) int32 { return 31*javaHash(0, topic) + '#' }

// indexKeyHash turns a Java hash into an entry's keyHash: Math.abs, with
// Integer.MIN_VALUE (its own negation) mapped to 0 as Java does.
func indexKeyHash(h int32) int32 {
	if h < 0 {
		h = -h
	}
	if h < 0 {
		return 0
	}
	return h
}

// indexFileName names a file created at t: yyyyMMddHHmmssSSS in the local
// time zone (Java UtilAll.timeMillisToHumanString).
func indexFileName(t time.Time) string {
	t = t.In(time.Local)
	return fmt.Sprintf("%s%03d", t.Format("20060102150405"), t.Nanosecond()/int(time.Millisecond))
}

// validIndexFileName reports whether name has the form of an index file
// name (17 digits; the digits are not checked to be a valid date).
func validIndexFileName(name string) bool {
	if len(name) != indexNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' {
			return false
		}
	}
	return true
}

// nextIndexFileName returns the name for a file created at now, after the
// newest existing name last: names must sort in creation order, so when the
// clock stands still or went back the name is last's numeric successor.
func nextIndexFileName(now time.Time, last string) string {
	name := indexFileName(now)
	if last == "" || name > last {
		return name
	}
	v, err := strconv.ParseInt(last, 10, 64)
	if err != nil { // cannot happen for a valid name: 17 digits fit
		return name
	}
	return fmt.Sprintf("%0*d", indexNameLen, v+1)
}
