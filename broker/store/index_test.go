package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/mqops/mqops/wire"
)

// javaStringHash is Java's String.hashCode, computed independently of
// javaHash: over the UTF-16 encoding of the string.
func javaStringHash(s string) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(u)
	}
	return h
}

// javaKeyHash is Java IndexFile.indexKeyHashMethod of "topic#key".
func javaKeyHash(topic, key string) int32 {
	h := javaStringHash(topic + "#" + key)
	if h == math.MinInt32 {
		return 0
	}
	if h < 0 {
		return -h
	}
	return h
}

func indexTestConfig(t testing.TB, slots, entries int) (Config, *fakeClock) {
	cfg := testConfig(t, nil)
	cfg.IndexSlots = slots
	cfg.IndexEntries = entries
	clk := newFakeClock()
	cfg.Now = clk.Now
	return cfg, clk
}

// keyed is a message of topic with the KEYS and UNIQ_KEY properties when
// non-empty.
func keyed(topic, keys, uniq string) *Message {
	var props []string
	if keys != "" {
		props = append(props, wire.PropKeys, keys)
	}
	if uniq != "" {
		props = append(props, wire.PropUniqKey, uniq)
	}
	return msg(topic, 0, "body of "+keys+uniq, props...)
}

// queryAll returns every offset indexed under topic#key, any time.
func queryAll(s *Store, topic, key string) []int64 {
	offs, _, _ := s.QueryIndex(topic, key, 64, 0, math.MaxInt64)
	return offs
}

func wantOffsets(t *testing.T, s *Store, topic, key string, want ...int64) {
	t.Helper()
	if got := queryAll(s, topic, key); !slices.Equal(got, want) {
		t.Fatalf("QueryIndex(%q, %q) = %v, want %v", topic, key, got, want)
	}
}

func indexFilesOf(s *Store) []*indexFile {
	s.idx.mu.RLock()
	defer s.idx.mu.RUnlock()
	return slices.Clone(s.idx.files)
}

func indexDirNames(t *testing.T, cfg Config) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(cfg.RootDir, "index"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestIndexKeyHash(t *testing.T) {
	for _, tc := range []struct{ topic, key string }{
		{"T", "k"},
		{"TopicTest", "OrderID188"},
		{"%RETRY%group", "7F000001000000000000000000000001"},
		{"主题", "键-ü"},
		{"T", "emoji 😀 pair"},
		{"T", "bad \xff\xfe utf8 \xe4\xb8"},
		{"", ""},
	} {
		want := javaKeyHash(tc.topic, tc.key)
		got := indexKeyHash(javaHash(topicHashPrefix([]byte(tc.topic)), []byte(tc.key)))
		if got != want {
			t.Errorf("hash(%q#%q) = %d, want %d", tc.topic, tc.key, got, want)
		}
		// The same as the tags code of the whole string.
		if h := int32(wire.TagsHashCode([]byte(tc.topic + "#" + tc.key))); indexKeyHash(h) != want {
			t.Errorf("TagsHashCode(%q#%q) disagrees", tc.topic, tc.key)
		}
	}
	if h := javaStringHash("hello"); h != 99162322 {
		t.Fatalf("javaStringHash(hello) = %d", h)
	}
	// Java's Math.abs(Integer.MIN_VALUE) stays negative; the index uses 0.
	if h := javaHash(0, []byte("polygenelubricants")); h != math.MinInt32 || indexKeyHash(h) != 0 {
		t.Fatalf("MIN_VALUE hash: %d → %d", h, indexKeyHash(h))
	}
}

func TestIndexFileNames(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 34, 56, 789*int(time.Millisecond), time.Local)
	if got := indexFileName(now); got != "20240501123456789" {
		t.Fatalf("indexFileName = %s", got)
	}
	if got := nextIndexFileName(now, "20240501123456788"); got != "20240501123456789" {
		t.Fatalf("next after an older name: %s", got)
	}
	// Same millisecond or a clock that went back: the successor.
	for _, last := range []string{"20240501123456789", "20250101000000000", "20240501123459999"} {
		got := nextIndexFileName(now, last)
		if got <= last || len(got) != indexNameLen || !validIndexFileName(got) {
			t.Fatalf("next after %s = %s", last, got)
		}
	}
}

func TestIndexQuery(t *testing.T) {
	cfg, clk := indexTestConfig(t, 101, 1000)
	s := openStore(t, cfg)
	t0 := clk.Now().UnixMilli()

	r1 := mustPut(t, s, keyed("T", "order-1 customer-9", "7F00000100002A9F0000000000000001"))
	clk.Advance(10 * time.Second)
	// Go trace messages start KEYS with empty keys; double spaces too.
	r2 := mustPut(t, s, keyed("T", "  order-2  customer-9 ", "7F0000010000000000000000a1b2c3d4e5f6"))
	clk.Advance(10 * time.Second)
	r3 := mustPut(t, s, keyed("Other", "order-1", ""))
	// Prepared and rollback transaction records are not indexed; commits are.
	for _, flag := range []int32{wire.SysFlagTransactionPrepared, wire.SysFlagTransactionRollback, wire.SysFlagTransactionCommit} {
		m := keyed("T", fmt.Sprintf("tx-%d", flag), "")
		m.SysFlag = flag
		mustPut(t, s, m)
	}
	// Batch items carry KEYS but no UNIQ_KEY.
	res, phys := s.PutBatch([]Message{*keyed("T", "batch-a", ""), *keyed("T", "batch-b", "")})
	if res.Status != PutOK {
		t.Fatal(res.Status)
	}
	waitDispatch(t, s)

	wantOffsets(t, s, "T", "order-1", r1.PhysicalOffset)
	wantOffsets(t, s, "T", "order-2", r2.PhysicalOffset)
	wantOffsets(t, s, "T", "customer-9", r1.PhysicalOffset, r2.PhysicalOffset)
	wantOffsets(t, s, "Other", "order-1", r3.PhysicalOffset)
	wantOffsets(t, s, "T", "7F00000100002A9F0000000000000001", r1.PhysicalOffset)
	wantOffsets(t, s, "T", "7F0000010000000000000000a1b2c3d4e5f6", r2.PhysicalOffset)
	wantOffsets(t, s, "T", "7F0000010000000000000000A1B2C3D4E5F6") // case matters
	wantOffsets(t, s, "T", "")
	wantOffsets(t, s, "T", "nope")
	wantOffsets(t, s, "T", fmt.Sprintf("tx-%d", wire.SysFlagTransactionPrepared))
	wantOffsets(t, s, "T", fmt.Sprintf("tx-%d", wire.SysFlagTransactionRollback))
	if got := queryAll(s, "T", fmt.Sprintf("tx-%d", wire.SysFlagTransactionCommit)); len(got) != 1 {
		t.Fatalf("committed transaction record not indexed: %v", got)
	}
	wantOffsets(t, s, "T", "batch-a", phys[0])
	wantOffsets(t, s, "T", "batch-b", phys[1])
	// uniq + 2 keys, uniq + 2 keys, 1 key, commit, 2 batch keys.
	if n := indexFilesOf(s)[0].count.Load() - 1; n != 10 {
		t.Fatalf("%d entries, want 10", n)
	}

	// Time ranges (store times t0, t0+10s, ...).
	for _, tc := range []struct {
		begin, end int64
		want       []int64
	}{
		{t0, t0, []int64{r1.PhysicalOffset}},
		{t0 + 1000, t0 + 10000, []int64{r2.PhysicalOffset}},
		{t0 + 10000, math.MaxInt64, []int64{r2.PhysicalOffset}},
		{0, t0 + 9000, []int64{r1.PhysicalOffset}},
		{t0 + 11000, t0 + 19000, nil},
		{t0 + 5000, t0 + 1000, nil}, // begin > end
	} {
		got, _, _ := s.QueryIndex("T", "customer-9", 64, tc.begin, tc.end)
		if !slices.Equal(got, tc.want) {
			t.Errorf("customer-9 in [%d, %d]: %v, want %v", tc.begin-t0, tc.end-t0, got, tc.want)
		}
	}
	got, ts, phy := s.QueryIndex("T", "customer-9", 1, 0, math.MaxInt64)
	if len(got) != 1 || got[0] != r2.PhysicalOffset {
		t.Fatalf("maxNum 1: %v (the newest first)", got)
	}
	if ts != t0+20000 || phy != phys[1] {
		t.Fatalf("lastUpdate = %d, %d; want %d, %d", ts, phy, t0+20000, phys[1])
	}
	if got, _, _ := s.QueryIndex("T", "customer-9", 0, 0, math.MaxInt64); got != nil {
		t.Fatalf("maxNum 0: %v", got)
	}
}

// TestIndexSubSecond: entry times have whole seconds, so a record stored
// 1.5 s after the file began reads as 1 s; a range starting at its real
// store time still finds it.
func TestIndexSubSecond(t *testing.T) {
	cfg, clk := indexTestConfig(t, 11, 100)
	s := openStore(t, cfg)
	mustPut(t, s, keyed("T", "first", ""))
	clk.Advance(1500 * time.Millisecond)
	r := mustPut(t, s, keyed("T", "k", ""))
	waitDispatch(t, s)
	ts := r.StoreTimestamp
	for _, rg := range [][2]int64{{ts, ts}, {ts - 400, ts + 400}, {ts, math.MaxInt64}} {
		if got, _, _ := s.QueryIndex("T", "k", 64, rg[0], rg[1]); !slices.Equal(got, []int64{r.PhysicalOffset}) {
			t.Fatalf("[%d, %d]: %v", rg[0]-ts, rg[1]-ts, got)
		}
	}
	if got, _, _ := s.QueryIndex("T", "k", 64, ts+1000, math.MaxInt64); got != nil {
		t.Fatalf("a second after: %v", got)
	}
}

func TestIndexQueryCap(t *testing.T) {
	cfg, _ := indexTestConfig(t, 11, 1000)
	s := openStore(t, cfg)
	var want []int64
	for i := range 100 {
		r := mustPut(t, s, keyed("T", "same", ""))
		if i >= 100-maxIndexQuery {
			want = append(want, r.PhysicalOffset)
		}
	}
	// Same key twice in one record: one offset.
	dup := mustPut(t, s, keyed("T", "twice twice", ""))
	waitDispatch(t, s)
	got, _, _ := s.QueryIndex("T", "same", 1000, 0, math.MaxInt64)
	if !slices.Equal(got, want) {
		t.Fatalf("capped query: %d offsets %v..., want the newest %d", len(got), got[:min(3, len(got))], maxIndexQuery)
	}
	wantOffsets(t, s, "T", "twice", dup.PhysicalOffset)
}

// TestIndexCollisions: keys sharing a slot, and keys with the same Java
// hash, are both found; a query returns hash matches only.
func TestIndexCollisions(t *testing.T) {
	cfg, _ := indexTestConfig(t, 1, 100) // one slot: every key collides
	s := openStore(t, cfg)
	// "Aa" and "BB" have the same String.hashCode, so T#Aa and T#BB too.
	if javaKeyHash("T", "Aa") != javaKeyHash("T", "BB") {
		t.Fatal("test premise: Aa and BB collide")
	}
	ra := mustPut(t, s, keyed("T", "Aa", ""))
	rx := mustPut(t, s, keyed("T", "x", ""))
	rb := mustPut(t, s, keyed("T", "BB", ""))
	ry := mustPut(t, s, keyed("T", "y", ""))
	waitDispatch(t, s)
	wantOffsets(t, s, "T", "Aa", ra.PhysicalOffset, rb.PhysicalOffset)
	wantOffsets(t, s, "T", "BB", ra.PhysicalOffset, rb.PhysicalOffset)
	wantOffsets(t, s, "T", "x", rx.PhysicalOffset)
	wantOffsets(t, s, "T", "y", ry.PhysicalOffset)
}

// TestIndexRollOver: tiny files roll over; queries span files and time
// ranges pick files.
func TestIndexRollOver(t *testing.T) {
	cfg, clk := indexTestConfig(t, 3, 4) // 3 entries per file
	s := openStore(t, cfg)
	t0 := clk.Now().UnixMilli()
	var all []int64
	for i := range 20 {
		// Two keys each: records straddle files.
		r := mustPut(t, s, keyed("T", fmt.Sprintf("k%d common", i), ""))
		all = append(all, r.PhysicalOffset)
		if i%5 == 4 {
			clk.Advance(time.Minute)
		}
	}
	waitDispatch(t, s)

	files := indexFilesOf(s)
	if len(files) != 14 { // 40 keys, 3 per file
		t.Fatalf("%d index files, want 14", len(files))
	}
	names := indexDirNames(t, cfg)
	if len(names) != len(files) || !slices.IsSorted(names) {
		t.Fatalf("index dir: %v", names)
	}
	for i, f := range files {
		if f.name != names[i] {
			t.Fatalf("file %d is %s, dir has %s", i, f.name, names[i])
		}
		if i > 0 && f.beginPhy.Load() < files[i-1].endPhy.Load() {
			t.Fatalf("file %d begins at %d before the previous end %d", i, f.beginPhy.Load(), files[i-1].endPhy.Load())
		}
	}
	for i, off := range all {
		wantOffsets(t, s, "T", fmt.Sprintf("k%d", i), off)
	}
	wantOffsets(t, s, "T", "common", all...)
	// Each minute holds five records.
	for m := range 4 {
		b := t0 + int64(m)*60000
		got, _, _ := s.QueryIndex("T", "common", 64, b, b+59000)
		if !slices.Equal(got, all[m*5:m*5+5]) {
			t.Fatalf("minute %d: %v, want %v", m, got, all[m*5:m*5+5])
		}
	}

	// Survives a restart.
	s.Close()
	s2 := openStore(t, cfg)
	for i, off := range all {
		wantOffsets(t, s2, "T", fmt.Sprintf("k%d", i), off)
	}
	wantOffsets(t, s2, "T", "common", all...)
	if got := len(indexFilesOf(s2)); got != 14 {
		t.Fatalf("%d files after reopen", got)
	}
}

// TestIndexLayout checks the file byte for byte against Java's IndexHeader
// and IndexFile layout (apache/rocketmq store/src/main/java/org/apache/rocketmq/store/index/).
func TestIndexLayout(t *testing.T) {
	const slots, entries = 7, 6
	cfg, clk := indexTestConfig(t, slots, entries)
	created := clk.Now()
	s := openStore(t, cfg)
	t0 := clk.Now().UnixMilli()
	r1 := mustPut(t, s, keyed("T", "a", "U1"))
	waitDispatch(t, s) // the file is named when the first key arrives
	clk.Advance(2500 * time.Millisecond)
	r2 := mustPut(t, s, keyed("T", "a", ""))
	waitDispatch(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	lt := created.In(time.Local)
	name := fmt.Sprintf("%04d%02d%02d%02d%02d%02d%03d", lt.Year(), lt.Month(), lt.Day(),
		lt.Hour(), lt.Minute(), lt.Second(), lt.Nanosecond()/1e6)
	if names := indexDirNames(t, cfg); !slices.Equal(names, []string{name}) {
		t.Fatalf("index files %v, want [%s]", names, name)
	}
	got, err := os.ReadFile(filepath.Join(cfg.RootDir, "index", name))
	if err != nil {
		t.Fatal(err)
	}

	want := make([]byte, 40+slots*4+entries*20)
	be := binary.BigEndian
	be.PutUint64(want[0:], uint64(t0))                 // beginTimestamp
	be.PutUint64(want[8:], uint64(t0+2500))            // endTimestamp
	be.PutUint64(want[16:], uint64(r1.PhysicalOffset)) // beginPhyOffset
	be.PutUint64(want[24:], uint64(r2.PhysicalOffset)) // endPhyOffset
	be.PutUint32(want[32:], 3)                         // hashSlotCount (puts)
	be.PutUint32(want[36:], 4)                         // indexCount: entries 1..3
	slotOf := func(h int32) int { return 40 + int(h%slots)*4 }
	entryAt := func(k int) []byte { return want[40+slots*4+k*20:][:20] }
	hu, ha := javaKeyHash("T", "U1"), javaKeyHash("T", "a")
	put := func(k int, h int32, phy int64, diff int32) {
		e := entryAt(k)
		prev := int32(be.Uint32(want[slotOf(h):]))
		be.PutUint32(e[0:], uint32(h))
		be.PutUint64(e[4:], uint64(phy))
		be.PutUint32(e[12:], uint32(diff))
		be.PutUint32(e[16:], uint32(prev))
		be.PutUint32(want[slotOf(h):], uint32(k))
	}
	put(1, hu, r1.PhysicalOffset, 0) // UNIQ_KEY first
	put(2, ha, r1.PhysicalOffset, 0)
	put(3, ha, r2.PhysicalOffset, 2) // 2.5 s later: 2 whole seconds
	if !bytes.Equal(got, want) {
		t.Fatalf("index file bytes differ\n got %x\nwant %x", got, want)
	}
	if be.Uint32(entryAt(3)[16:]) != 2 {
		t.Fatalf("entry 3 does not chain to entry 2")
	}
}

// TestIndexReindexOnOpen: records the index missed (index disabled, or
// the index dir removed) are indexed when the store opens.
func TestIndexReindexOnOpen(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			cfg, _ := indexTestConfig(t, 5, 8)
			s := openStore(t, cfg)
			var offs []int64
			put := func(s *Store, from, to int) {
				for i := from; i < to; i++ {
					offs = append(offs, mustPut(t, s, keyed("T", fmt.Sprintf("k%d both", i), fmt.Sprintf("U%d", i))).PhysicalOffset)
				}
				waitDispatch(t, s)
			}
			check := func(s *Store) {
				t.Helper()
				for i, off := range offs {
					wantOffsets(t, s, "T", fmt.Sprintf("k%d", i), off)
					wantOffsets(t, s, "T", fmt.Sprintf("U%d", i), off)
				}
				wantOffsets(t, s, "T", "both", offs[len(offs)-min(len(offs), maxIndexQuery):]...)
			}
			stop := func(s *Store) {
				if crash {
					s.crashForTest()
				} else if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			put(s, 0, 10)
			stop(s)

			off := false
			cfg.MessageIndexEnable = &off
			s = openStore(t, cfg)
			if offs, _, _ := s.QueryIndex("T", "k0", 64, 0, math.MaxInt64); s.idx != nil || offs != nil {
				t.Fatal("index used while disabled")
			}
			put(s, 10, 20)
			stop(s)

			cfg.MessageIndexEnable = nil
			s = openStore(t, cfg)
			check(s)
			put(s, 20, 25)
			check(s)
			stop(s)

			// Without index files, everything retained is indexed again.
			if err := os.RemoveAll(filepath.Join(cfg.RootDir, "index")); err != nil {
				t.Fatal(err)
			}
			s = openStore(t, cfg)
			check(s)
		})
	}
}

// TestIndexTornTail: entries of a record cut off by recovery are dropped,
// slot chains shared with earlier records stay intact, and a new record
// written where the torn one was is indexed under its own keys only.
func TestIndexTornTail(t *testing.T) {
	cfg, _ := indexTestConfig(t, 2, 1000) // two slots: chains interleave
	s := openStore(t, cfg)
	var offs []int64
	for i := range 30 {
		offs = append(offs, mustPut(t, s, keyed("T", fmt.Sprintf("k%d all", i), fmt.Sprintf("U%d", i))).PhysicalOffset)
	}
	waitDispatch(t, s)
	torn := offs[len(offs)-1]
	wantOffsets(t, s, "T", "k29", torn)
	s.crashForTest()
	if err := os.Truncate(lastSegment(t, cfg), torn+30); err != nil {
		t.Fatal(err)
	}

	logs := &logBuf{}
	cfg.Logger = testConfig(t, logs).Logger
	s2 := openStore(t, cfg)
	if s2.MaxPhyOffset() != torn {
		t.Fatalf("log cut at %d, want %d", s2.MaxPhyOffset(), torn)
	}
	if !strings.Contains(logs.String(), "dropping index entries past the end of the commitlog") {
		t.Fatalf("index cut not logged:\n%s", logs)
	}
	offs = offs[:len(offs)-1]
	for i, off := range offs {
		wantOffsets(t, s2, "T", fmt.Sprintf("k%d", i), off)
		wantOffsets(t, s2, "T", fmt.Sprintf("U%d", i), off)
	}
	wantOffsets(t, s2, "T", "all", offs...)
	wantOffsets(t, s2, "T", "k29")
	f := indexFilesOf(s2)[0]
	if f.endPhy.Load() != offs[len(offs)-1] || f.count.Load() != 1+3*29 {
		t.Fatalf("header after cut: endPhy %d count %d", f.endPhy.Load(), f.count.Load())
	}

	// The replacement takes the torn record's offset; its old keys must
	// not lead there.
	r := mustPut(t, s2, keyed("T", "new", ""))
	if r.PhysicalOffset != torn {
		t.Fatalf("replacement at %d, want %d", r.PhysicalOffset, torn)
	}
	waitDispatch(t, s2)
	wantOffsets(t, s2, "T", "new", torn)
	wantOffsets(t, s2, "T", "k29")
	wantOffsets(t, s2, "T", "U29")
	wantOffsets(t, s2, "T", "all", offs...)
}

// TestIndexPartialRecord: a crash between two keys of one record leaves
// the first key's entry; recovery re-indexes the record without
// duplicating it.
func TestIndexPartialRecord(t *testing.T) {
	const slots, entries = 3, 100
	cfg, _ := indexTestConfig(t, slots, entries)
	s := openStore(t, cfg)
	r1 := mustPut(t, s, keyed("T", "a b", ""))
	r2 := mustPut(t, s, keyed("T", "a b", ""))
	waitDispatch(t, s)
	s.crashForTest()

	// Undo the last put (r2's key b) the way a crash before its header
	// write leaves it: entry beyond the count, slot not yet pointing at it.
	path := filepath.Join(cfg.RootDir, "index", indexDirNames(t, cfg)[0])
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	n := be.Uint32(b[36:])
	if n != 5 {
		t.Fatalf("indexCount %d, want 5", n)
	}
	last := b[40+slots*4+(n-1)*20:]
	slot := 40 + (be.Uint32(last[0:])%slots)*4
	be.PutUint32(b[slot:], be.Uint32(last[16:]))
	be.PutUint32(b[36:], n-1)
	be.PutUint32(b[32:], be.Uint32(b[32:])-1)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}

	s2 := openStore(t, cfg)
	wantOffsets(t, s2, "T", "a", r1.PhysicalOffset, r2.PhysicalOffset)
	wantOffsets(t, s2, "T", "b", r1.PhysicalOffset, r2.PhysicalOffset)
	if c := indexFilesOf(s2)[0].count.Load(); c != 5 {
		t.Fatalf("indexCount %d after recovery, want 5 (no duplicates)", c)
	}
}

func TestIndexRetention(t *testing.T) {
	cfg, _ := indexTestConfig(t, 17, 200)
	cfg.DeleteWhen = []int{}
	s := openStore(t, cfg)
	setDiskUsage(s, func() (float64, error) { return 10, nil })
	var offs []int64
	for i := range 3000 {
		offs = append(offs, mustPut(t, s, msg("T", 0, bodyOf(i, 900), wire.PropKeys, fmt.Sprintf("k%d", i))).PhysicalOffset)
	}
	waitDispatch(t, s)
	waitFlushed(t, s)
	before := len(indexFilesOf(s))

	// Consumed and above diskMaxUsedSpaceRatio: all but the last segment.
	s.SetConsumedOffsets(func(string, int32) (int64, bool) { return 1 << 40, true })
	setDiskUsage(s, func() (float64, error) { return 80, nil })
	s.RunRetention()
	minPhy := s.MinPhyOffset()
	if minPhy == 0 {
		t.Fatal("no segment deleted")
	}
	files := indexFilesOf(s)
	if len(files) >= before || files[0].endPhy.Load() < minPhy {
		t.Fatalf("%d of %d index files left, first ends at %d, min %d", len(files), before, files[0].endPhy.Load(), minPhy)
	}
	if names := indexDirNames(t, cfg); len(names) != len(files) || names[0] != files[0].name {
		t.Fatalf("index dir %v, list starts at %s", names, files[0].name)
	}
	for i, off := range offs {
		if off >= minPhy {
			wantOffsets(t, s, "T", fmt.Sprintf("k%d", i), off)
		}
	}

	// Later records without keys leave every file pointing below the
	// retained log; the newest stays.
	for i := range 2000 {
		mustPut(t, s, msg("T", 0, bodyOf(i, 900)))
	}
	waitDispatch(t, s)
	waitFlushed(t, s)
	s.RunRetention()
	newest := indexFilesOf(s)
	if len(newest) != 1 || newest[0] != files[len(files)-1] || newest[0].endPhy.Load() >= s.MinPhyOffset() {
		t.Fatalf("after second retention: %d files", len(newest))
	}

	// And after a restart: an old newest file is kept, and indexing goes on.
	s.Close()
	s2 := openStore(t, cfg)
	if got := indexDirNames(t, cfg); len(got) != 1 {
		t.Fatalf("index files after reopen: %v", got)
	}
	r := mustPut(t, s2, keyed("T", "fresh", ""))
	waitDispatch(t, s2)
	wantOffsets(t, s2, "T", "fresh", r.PhysicalOffset)
}

// TestIndexWriteFailure: when no index file can be created, messages are
// still dispatched and consumable; indexing resumes once it works again.
func TestIndexWriteFailure(t *testing.T) {
	logs := &logBuf{}
	cfg, clk := indexTestConfig(t, 11, 100)
	cfg.Logger = testConfig(t, logs).Logger
	s := openStore(t, cfg)
	dir := filepath.Join(cfg.RootDir, "index")
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o644); err != nil { // creating files in it fails
		t.Fatal(err)
	}
	for i := range 5 {
		mustPut(t, s, keyed("T", fmt.Sprintf("lost-%d", i), ""))
	}
	waitDispatch(t, s)
	if got := readAll(t, s, "T", 0); len(got) != 5 {
		t.Fatalf("%d messages consumable, want 5", len(got))
	}
	if n := strings.Count(logs.String(), "cannot index message"); n != 1 {
		t.Fatalf("failure logged %d times, want once:\n%s", n, logs)
	}
	wantOffsets(t, s, "T", "lost-0")

	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	clk.Advance(indexRollRetry)
	mustPut(t, s, msg("T", 0, "no keys"))
	waitDispatch(t, s)
	if strings.Contains(logs.String(), "indexing works again") {
		t.Fatalf("a message without keys proves nothing:\n%s", logs)
	}
	r := mustPut(t, s, keyed("T", "back", ""))
	waitDispatch(t, s)
	wantOffsets(t, s, "T", "back", r.PhysicalOffset)
	if !strings.Contains(logs.String(), "indexing works again") {
		t.Fatalf("recovery not logged:\n%s", logs)
	}
}

// TestIndexRecordAllocs: indexing a record allocates nothing.
func TestIndexRecordAllocs(t *testing.T) {
	cfg, _ := indexTestConfig(t, 1009, 10000)
	s := openStore(t, cfg)
	r := mustPut(t, s, keyed("T", "  key-1 key-2", "7F0000010000000000000000a1b2c3d4e5f6"))
	waitDispatch(t, s)
	v, err := s.ReadRecord(r.PhysicalOffset, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The dispatcher is idle: no appends while this runs.
	pos := s.MaxPhyOffset()
	count := indexFilesOf(s)[0].count.Load()
	a := testing.AllocsPerRun(500, func() {
		s.indexRecord(wire.RecordView(v), pos)
		pos += int64(len(v))
	})
	if a != 0 {
		t.Fatalf("indexRecord allocs = %v", a)
	}
	if got := indexFilesOf(s)[0].count.Load() - count; got != 3*501 {
		t.Fatalf("%d entries added, want %d", got, 3*501)
	}
}

func BenchmarkIndexRecord(b *testing.B) {
	cfg, _ := indexTestConfig(b, 0, 0) // default geometry
	s := openStore(b, cfg)
	r := mustPut(b, s, benchMessage(0))
	waitDispatch(b, s)
	v, err := s.ReadRecord(r.PhysicalOffset, nil)
	if err != nil {
		b.Fatal(err)
	}
	pos := s.MaxPhyOffset()
	b.ReportAllocs()
	for b.Loop() {
		s.indexRecord(wire.RecordView(v), pos)
		pos += int64(len(v))
	}
}

// TestIndexDamagedFiles: recovery removes index files it cannot trust and
// refuses files of another geometry; scrambled slots and entries behind a
// plausible header never break a query.
func TestIndexDamagedFiles(t *testing.T) {
	const slots, entries = 5, 10
	cfg, _ := indexTestConfig(t, slots, entries)
	s := openStore(t, cfg)
	for i := range 30 {
		mustPut(t, s, keyed("T", fmt.Sprintf("k%d k", i), ""))
	}
	waitDispatch(t, s)
	s.Close()
	dir := filepath.Join(cfg.RootDir, "index")
	names := indexDirNames(t, cfg)
	size := indexFileSize(slots, entries)

	rng := rand.New(rand.NewPCG(1, 2))
	for i, name := range names {
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		switch i % 3 {
		case 0: // garbage header
			for j := range indexHeaderSize {
				b[j] = byte(rng.Uint32())
			}
		case 1: // garbage slots and middle entries, header and ends intact
			n := int(binary.BigEndian.Uint32(b[36:]))
			for j := indexHeaderSize; j < indexHeaderSize+slots*4; j++ {
				b[j] = byte(rng.Uint32())
			}
			for j := indexHeaderSize + slots*4 + 2*20; j < indexHeaderSize+slots*4+(n-1)*20; j++ {
				b[j] = byte(rng.Uint32())
			}
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// An interrupted creation, and a stray file.
	if err := os.WriteFile(filepath.Join(dir, "29991231235959999"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &logBuf{}
	cfg.Logger = testConfig(t, logs).Logger
	s2 := openStore(t, cfg)
	if strings.Count(logs.String(), "with a damaged header") < 2 || !strings.Contains(logs.String(), "creation was interrupted") {
		t.Fatalf("damaged files not reported:\n%s", logs)
	}
	for i := range 30 {
		queryAll(s2, "T", fmt.Sprintf("k%d", i))
	}
	queryAll(s2, "T", "k")
	r := mustPut(t, s2, keyed("T", "after", ""))
	waitDispatch(t, s2)
	wantOffsets(t, s2, "T", "after", r.PhysicalOffset)
	if _, err := os.Stat(filepath.Join(dir, "29991231235959999")); !os.IsNotExist(err) {
		t.Fatalf("empty index file kept: %v", err)
	}
	s2.Close()

	// A file of another geometry is refused.
	if err := os.WriteFile(filepath.Join(dir, "20000101000000000"), make([]byte, size+20), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(cfg); err == nil || !strings.Contains(err.Error(), "IndexSlots") {
		t.Fatalf("Open with a foreign-size index file: %v", err)
	}
}

// FuzzIndexFile: whatever an index file holds, loading, querying,
// truncating and repairing it never panic, and queries terminate.
func FuzzIndexFile(f *testing.F) {
	const slots, entries = 5, 8
	size := int(indexFileSize(slots, entries))
	valid := make([]byte, size)
	{
		x := &indexFile{m: &mmapFile{data: valid}, slots: slots, entries: entries}
		x.count.Store(1)
		for i := range entries - 1 {
			x.put(indexKeyHash(int32(i*7919)), int64(100*i), 1700000000000+int64(i)*1500)
		}
	}
	f.Add(valid, int32(0), int64(0), int64(math.MaxInt64))
	f.Add(bytes.Repeat([]byte{0xff}, size), int32(3), int64(-1), int64(1))
	f.Add(bytes.Repeat([]byte{0x01}, 64), int32(7919), int64(1700000000000), int64(1700000009999))
	f.Fuzz(func(t *testing.T, data []byte, hash int32, begin, end int64) {
		buf := make([]byte, size)
		copy(buf, data)
		x := &indexFile{m: &mmapFile{data: buf}, slots: slots, entries: entries}
		ok := x.readHeader() == nil
		for _, h := range []int32{indexKeyHash(hash), 0, 1, math.MaxInt32} {
			if got := x.lookup(nil, h, maxIndexQuery, begin, end); len(got) > entries {
				t.Fatalf("%d offsets from %d entries", len(got), entries)
			}
		}
		if !ok {
			return // recovery removes such files
		}
		x.repairSlots()
		(&Store{}).truncateIndexFile(x, int64(uint64(hash)%1000))
		x.lookup(nil, indexKeyHash(hash), maxIndexQuery, math.MinInt64, math.MaxInt64)
	})
}
