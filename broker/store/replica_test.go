package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqops/mqops/fileutil"
	"github.com/mqops/mqops/wire"
)

const replSegSize = 64 << 10

var replTopics = []string{"ReplA", "ReplB"}

// replConfig is a small-segment store config for replication tests.
func replConfig(t testing.TB, logs *logBuf) Config {
	cfg := testConfig(t, logs)
	cfg.SegmentSize = replSegSize
	cfg.CQUnitsPerFile = 50
	cfg.IndexSlots = 1000
	cfg.IndexEntries = 5000
	return cfg
}

// replMsg is message i of the replication tests: random body size, a key
// and a tag, spread over two topics and four queues.
func replMsg(rng *rand.Rand, i int) *Message {
	m := msg(replTopics[i%2], int32(i/2%4), bodyOf(i, 10+rng.Intn(3000)),
		wire.PropKeys, fmt.Sprintf("key-%d", i), wire.PropTags, fmt.Sprintf("tag%d", i%3))
	return m
}

// fillMaster puts n messages (and a few batches) into s.
func fillMaster(t testing.TB, s *Store, rng *rand.Rand, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if i%50 == 49 {
			ms := []Message{*replMsg(rng, i), *replMsg(rng, i)}
			ms[1].Body = []byte("second of batch " + fmt.Sprint(i))
			if r, _ := s.PutBatch(ms); r.Status != PutOK {
				t.Fatalf("PutBatch: %v", r.Status)
			}
			continue
		}
		mustPut(t, s, replMsg(rng, i))
	}
}

// replicate copies master's log from the slave's end to the master's end
// in random chunks of 1 B .. 64 KiB, some of them spanning a segment
// boundary (AppendAt takes any range; ReadCommitLog stops at segment ends).
// stop, if > 0, ends the copy at that offset.
func replicate(t testing.TB, master, slave *Store, rng *rand.Rand, stop int64) {
	t.Helper()
	buf := make([]byte, 64<<10)
	end := master.MaxPhyOffset()
	if stop > 0 {
		end = stop
	}
	for off := slave.MaxPhyOffset(); off < end; {
		want := min(1+rng.Intn(len(buf)), int(end-off))
		n := 0
		for n < want {
			k, err := master.ReadCommitLog(buf[n:want], off+int64(n))
			if err != nil {
				t.Fatalf("ReadCommitLog(%d): %v", off+int64(n), err)
			}
			if k == 0 {
				t.Fatalf("ReadCommitLog(%d) returned nothing below %d", off+int64(n), end)
			}
			n += k
			if rng.Intn(2) == 0 {
				break // as a master's HA writer does: one segment per frame
			}
		}
		if err := slave.AppendAt(off, buf[:n]); err != nil {
			t.Fatalf("AppendAt(%d, %d bytes): %v", off, n, err)
		}
		off += int64(n)
		if got := slave.MaxPhyOffset(); got != off {
			t.Fatalf("slave MaxPhyOffset %d after appending up to %d", got, off)
		}
	}
}

func openSlave(t testing.TB, cfg Config) *Store {
	t.Helper()
	s := openStore(t, cfg)
	if err := s.SetRole(RoleSlave); err != nil {
		t.Fatal(err)
	}
	return s
}

// sameCommitLog compares the two stores' commit-log files byte by byte.
func sameCommitLog(t testing.TB, a, b Config) {
	t.Helper()
	ents, err := os.ReadDir(commitLogDir(a))
	if err != nil {
		t.Fatal(err)
	}
	entsB, err := os.ReadDir(commitLogDir(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(entsB) || len(ents) < 3 {
		t.Fatalf("master has %d segments, slave %d (want the same, ≥ 3)", len(ents), len(entsB))
	}
	for i, e := range ents {
		if entsB[i].Name() != e.Name() {
			t.Fatalf("segment %d: master %s, slave %s", i, e.Name(), entsB[i].Name())
		}
		x, err := os.ReadFile(filepath.Join(commitLogDir(a), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(commitLogDir(b), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Fatalf("segment %s differs", e.Name())
		}
	}
}

// sameQueues checks that every queue of the master reads the same on the
// slave, and that keys are found in the slave's index at the same offsets.
func sameQueues(t testing.TB, master, slave *Store, keys int) {
	t.Helper()
	waitDispatch(t, master)
	if !slave.waitDispatched(slave.complete.Load(), 5e9) {
		t.Fatalf("slave dispatch stuck at %d of %d", slave.dispatched.Load(), slave.complete.Load())
	}
	total := 0
	for _, topic := range replTopics {
		for q := int32(0); q < 4; q++ {
			if mo, so := master.MaxOffset(topic, q), slave.MaxOffset(topic, q); mo != so {
				t.Fatalf("%s/%d: max offset master %d slave %d", topic, q, mo, so)
			}
			mr, sr := readAll(t, master, topic, q), readAll(t, slave, topic, q)
			if len(mr) != len(sr) || len(mr) == 0 {
				t.Fatalf("%s/%d: master %d messages, slave %d", topic, q, len(mr), len(sr))
			}
			for i := range mr {
				if !bytes.Equal(mr[i], sr[i]) {
					t.Fatalf("%s/%d: message %d differs", topic, q, i)
				}
			}
			total += len(mr)
		}
	}
	for i := 0; i < keys; i += 37 {
		topic, key := replTopics[i%2], fmt.Sprintf("key-%d", i)
		mo, _, _ := master.QueryIndex(topic, key, 64, 0, 1<<62)
		so, _, _ := slave.QueryIndex(topic, key, 64, 0, 1<<62)
		if len(mo) == 0 || fmt.Sprint(mo) != fmt.Sprint(so) {
			t.Fatalf("QueryIndex(%s, %s): master %v, slave %v", topic, key, mo, so)
		}
	}
	if total == 0 {
		t.Fatal("no messages compared")
	}
}

func TestReplicaByteIdentical(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	mcfg := replConfig(t, nil)
	master := openStore(t, mcfg)
	var mlast atomic.Int64
	master.SetOnAppend(func(end int64) { mlast.Store(end) })
	slogs := &logBuf{}
	scfg := replConfig(t, slogs)
	slave := openSlave(t, scfg)
	var slast, units atomic.Int64
	slave.SetOnAppend(func(end int64) { slast.Store(end) })
	// Long-poll wake-ups come from the slave's own dispatcher.
	slave.OnDispatch(func(string, int32, int64, int64) { units.Add(1) })

	fillMaster(t, master, rng, 0, 300)
	if got := mlast.Load(); got != master.MaxPhyOffset() {
		t.Fatalf("master OnAppend saw %d, MaxPhyOffset %d", got, master.MaxPhyOffset())
	}
	// Replicate in two rounds with a pause in the middle of a record, where
	// the dispatcher must wait instead of reporting damage.
	mid := master.MaxPhyOffset() / 2
	replicate(t, master, slave, rng, mid)
	if !slave.waitDispatched(slave.complete.Load(), 5e9) {
		t.Fatal("slave dispatch stuck")
	}
	if c := slave.complete.Load(); c >= mid || slave.MaxPhyOffset() != mid {
		t.Fatalf("complete %d, max %d: want a partial record at %d", c, slave.MaxPhyOffset(), mid)
	}
	fillMaster(t, master, rng, 300, 300)
	replicate(t, master, slave, rng, 0)
	if got := slast.Load(); got != master.MaxPhyOffset() {
		t.Fatalf("slave OnAppend saw %d, master max %d", got, master.MaxPhyOffset())
	}
	sameQueues(t, master, slave, 600)
	sameCommitLog(t, mcfg, scfg)
	if strings.Contains(slogs.String(), "dispatch stopped") {
		t.Fatalf("slave dispatcher reported a stop:\n%s", slogs)
	}
	var want int64
	for _, topic := range replTopics {
		for q := int32(0); q < 4; q++ {
			want += master.MaxOffset(topic, q)
		}
	}
	if units.Load() != want {
		t.Fatalf("OnDispatch ran %d times on the slave, want %d", units.Load(), want)
	}

	// A clean shutdown with a partial record at the tail: the reopened
	// store ends at the last complete record.
	fillMaster(t, master, rng, 600, 10)
	rec := recordStart(t, master, master.MaxPhyOffset()-10)
	replicate(t, master, slave, rng, rec+7)
	if err := slave.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openSlave(t, scfg)
	if s2.MaxPhyOffset() != rec {
		t.Fatalf("reopened at %d, want %d", s2.MaxPhyOffset(), rec)
	}
	replicate(t, master, s2, rng, 0)
	sameQueues(t, master, s2, 610)
}

func TestReplicaRoles(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	master := openStore(t, replConfig(t, nil))
	slave := openSlave(t, replConfig(t, nil))
	if r := slave.Put(msg("ReplA", 0, "x")); r.Status != ServiceNotAvailable {
		t.Fatalf("Put on a slave: %v", r.Status)
	}
	if r, _ := slave.PutBatch([]Message{*msg("ReplA", 0, "x")}); r.Status != ServiceNotAvailable {
		t.Fatalf("PutBatch on a slave: %v", r.Status)
	}
	if err := slave.NotWritable(); !errors.Is(err, ErrSlave) {
		t.Fatalf("NotWritable on a slave: %v", err)
	}
	if err := master.AppendAt(master.MaxPhyOffset(), []byte{1}); !errors.Is(err, ErrNotSlave) {
		t.Fatalf("AppendAt on a master: %v", err)
	}
	if slave.Role() != RoleSlave || master.Role() != RoleMaster {
		t.Fatal("roles")
	}

	fillMaster(t, master, rng, 0, 100)
	// Stop inside a record, then promote: the partial record goes, Put
	// continues every queue after the replicated offsets.
	var stop int64
	for stop = master.MaxPhyOffset() - 100; ; stop-- {
		if b := make([]byte, 8); true {
			n, _ := master.ReadCommitLog(b, stop)
			if n == 8 && wire.RecordView(b).Magic() == wire.MagicMessage {
				break
			}
		}
	}
	replicate(t, master, slave, rng, stop+50)
	if err := slave.SetRole(RoleMaster); err != nil {
		t.Fatal(err)
	}
	if got := slave.MaxPhyOffset(); got != stop {
		t.Fatalf("after promotion MaxPhyOffset = %d, want %d (partial record cut)", got, stop)
	}
	var b [1]byte
	rec := mustRead(t, master, stop)
	v := wire.RecordView(rec)
	topic, qid := string(v.Topic()), v.QueueID()
	r := mustPut(t, slave, msg(topic, qid, "after promotion"))
	if r.PhysicalOffset != stop || r.QueueOffset != v.QueueOffset() {
		t.Fatalf("first Put after promotion at %d queue offset %d, want %d / %d", r.PhysicalOffset, r.QueueOffset, stop, v.QueueOffset())
	}
	if n, err := slave.ReadCommitLog(b[:], r.EndOffset); n != 0 || err != nil {
		t.Fatalf("ReadCommitLog at the end: %d, %v", n, err)
	}
	if _, err := slave.ReadCommitLog(b[:], r.EndOffset+1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("ReadCommitLog past the end: %v", err)
	}
	if err := slave.AppendAt(r.EndOffset, []byte{1}); !errors.Is(err, ErrNotSlave) {
		t.Fatalf("AppendAt after promotion: %v", err)
	}
}

func TestReadCommitLogBounds(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	master := openStore(t, replConfig(t, nil))
	fillMaster(t, master, rng, 0, 100)
	buf := make([]byte, 3*replSegSize)
	n, err := master.ReadCommitLog(buf, 10)
	if err != nil || n != replSegSize-10 {
		t.Fatalf("ReadCommitLog(10) = %d, %v; want the rest of the first segment", n, err)
	}
	end := master.MaxPhyOffset()
	n, err = master.ReadCommitLog(buf, end-5)
	if err != nil || n != 5 {
		t.Fatalf("ReadCommitLog(end-5) = %d, %v", n, err)
	}
	if n, _ := master.ReadCommitLog(buf[:7], 0); n != 7 {
		t.Fatalf("ReadCommitLog into 7 bytes = %d", n)
	}
	if _, err := master.ReadCommitLog(buf, -1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("ReadCommitLog(-1): %v", err)
	}
	if master.SegmentSize() != replSegSize {
		t.Fatalf("SegmentSize %d", master.SegmentSize())
	}
}

func TestAppendAtRefusesBadInput(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	master := openStore(t, replConfig(t, nil))
	slave := openSlave(t, replConfig(t, nil))
	fillMaster(t, master, rng, 0, 20)
	replicate(t, master, slave, rng, 0)
	end := slave.MaxPhyOffset()

	if err := slave.AppendAt(end+1, []byte{1, 2}); !errors.Is(err, ErrOffsetMismatch) {
		t.Fatalf("AppendAt at a wrong offset: %v", err)
	}
	if err := slave.AppendAt(end-1, []byte{1, 2}); !errors.Is(err, ErrOffsetMismatch) {
		t.Fatalf("AppendAt at a wrong offset: %v", err)
	}
	// A record of the right shape at the wrong offset, and garbage.
	rec := append([]byte(nil), mustRead(t, master, 0)...)
	garbage := bytes.Repeat([]byte{0xAB}, 300)
	for _, bad := range [][]byte{rec, garbage} {
		if err := slave.AppendAt(end, bad); !errors.Is(err, wire.ErrCorrupt) {
			t.Fatalf("AppendAt of foreign bytes: %v", err)
		}
		if slave.MaxPhyOffset() != end {
			t.Fatalf("MaxPhyOffset moved to %d", slave.MaxPhyOffset())
		}
		seg := slave.clog.acquire(end)
		tail := seg.data[end-seg.base : end-seg.base+int64(len(bad))]
		if !bytes.Equal(tail, make([]byte, len(tail))) {
			seg.release()
			t.Fatal("refused bytes left in the segment")
		}
		seg.release()
	}
	// Valid bytes to the end of the segment, garbage in the next one: the
	// whole append is refused and the new segment goes again.
	fillMaster(t, master, rng, 20, 200)
	segEnd := end - end%replSegSize + replSegSize
	chunk := make([]byte, segEnd-end, segEnd-end+300)
	if n, err := master.ReadCommitLog(chunk, end); err != nil || n != len(chunk) {
		t.Fatalf("ReadCommitLog: %d, %v", n, err)
	}
	chunk = append(chunk, garbage...)
	if err := slave.AppendAt(end, chunk); !errors.Is(err, wire.ErrCorrupt) {
		t.Fatalf("AppendAt with garbage in the next segment: %v", err)
	}
	if _, err := os.Stat(fileName(commitLogDir(slave.cfg), segEnd)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("segment of the refused append left: %v", err)
	}
	// The good continuation still goes in, and after a promotion Put
	// rolls over segments.
	replicate(t, master, slave, rng, 0)
	if slave.MaxPhyOffset() != master.MaxPhyOffset() {
		t.Fatal("slave did not catch up")
	}
	if err := slave.SetRole(RoleMaster); err != nil {
		t.Fatal(err)
	}
	fillMaster(t, slave, rng, 1000, 200)
	if slave.MaxPhyOffset() < master.MaxPhyOffset()+2*replSegSize {
		t.Fatal("Put did not roll over segments")
	}
}

// TestAppendAtEmptySlaveStartsAtLastSegment: an empty classic slave gets
// only the master's last segment (its report of 0 makes the master start
// there); the store adopts that start.
func TestAppendAtEmptySlaveStartsAtLastSegment(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	master := openStore(t, replConfig(t, nil))
	fillMaster(t, master, rng, 0, 200)
	scfg := replConfig(t, nil)
	slave := openSlave(t, scfg)
	start := master.MaxPhyOffset() - master.MaxPhyOffset()%replSegSize
	if start == 0 {
		t.Fatal("want several segments")
	}
	if err := slave.AppendAt(start+1, []byte{1}); !errors.Is(err, ErrOffsetMismatch) {
		t.Fatalf("AppendAt inside a segment on an empty store: %v", err)
	}
	if err := slave.AppendAt(start, nil); err != nil {
		t.Fatal(err)
	}
	if slave.MinPhyOffset() != start || slave.MaxPhyOffset() != start {
		t.Fatalf("empty slave rebased to %d..%d, want %d", slave.MinPhyOffset(), slave.MaxPhyOffset(), start)
	}
	fillMaster(t, master, rng, 200, 100)
	replicate(t, master, slave, rng, 0)
	if !slave.waitDispatched(slave.MaxPhyOffset(), 5e9) {
		t.Fatal("slave dispatch stuck")
	}
	// The master's own dispatcher may still be behind its appends.
	waitDispatch(t, master)
	// The slave's queues start at the first replicated record of each.
	for _, topic := range replTopics {
		for q := int32(0); q < 4; q++ {
			sr := readAll(t, slave, topic, q)
			if len(sr) == 0 || slave.MaxOffset(topic, q) != master.MaxOffset(topic, q) {
				t.Fatalf("%s/%d: slave has %d messages, max %d vs %d", topic, q, len(sr), slave.MaxOffset(topic, q), master.MaxOffset(topic, q))
			}
		}
	}
	slave.Close()
	// It reopens from that start.
	s2 := openStore(t, scfg)
	if s2.MinPhyOffset() != start || s2.MaxPhyOffset() != master.MaxPhyOffset() {
		t.Fatalf("reopened slave %d..%d", s2.MinPhyOffset(), s2.MaxPhyOffset())
	}
}

// waitCheckpoint waits until the checkpoint on disk vouches for the store's
// complete records (flushed and dispatched at the complete boundary).
func waitCheckpoint(t testing.TB, s *Store) checkpoint {
	t.Helper()
	for i := 0; i < 5000; i++ {
		ck, ok, _ := readCheckpoint(s.cfg.RootDir)
		if c := s.complete.Load(); ok && ck.flushed == c && ck.dispatched == c {
			return ck
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("checkpoint never reached %d", s.complete.Load())
	return checkpoint{}
}

// recordStart returns the start of a message record near off in master.
func recordStart(t testing.TB, master *Store, off int64) int64 {
	t.Helper()
	for ; off > 0; off-- {
		if _, err := master.ReadRecord(off, nil); err == nil {
			return off
		}
	}
	t.Fatal("no record found")
	return 0
}

// TestReplicaCrashMidRecord: a slave killed while its log ends inside a
// record restarts at the last complete record, with no damage reported,
// and continues from there.
func TestReplicaCrashMidRecord(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	mcfg := replConfig(t, nil)
	master := openStore(t, mcfg)
	fillMaster(t, master, rng, 0, 300)
	slogs := &logBuf{}
	scfg := replConfig(t, slogs)
	scfg.CQFlushInterval = 5 * time.Millisecond
	slave := openSlave(t, scfg)
	rec := recordStart(t, master, master.MaxPhyOffset()/2)
	replicate(t, master, slave, rng, rec+100)
	// The flusher and the checkpoint run while the tail is partial: they
	// must stop at the record boundary.
	if ck := waitCheckpoint(t, slave); ck.flushed != rec {
		t.Fatalf("checkpoint flushed %d, want %d", ck.flushed, rec)
	}
	slave.crashForTest()

	s2, err := Open(scfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	if got := s2.MaxPhyOffset(); got != rec {
		t.Fatalf("reopened slave MaxPhyOffset %d, want %d (the partial record cut)", got, rec)
	}
	if l := slogs.String(); strings.Contains(l, "damaged") || strings.Contains(l, "quarantin") {
		t.Fatalf("recovery reported damage:\n%s", l)
	}
	if err := s2.SetRole(RoleSlave); err != nil {
		t.Fatal(err)
	}
	replicate(t, master, s2, rng, 0)
	sameQueues(t, master, s2, 300)
	sameCommitLog(t, mcfg, scfg)
}

// truncatedQueues checks that slave holds exactly master's records below
// cut in every queue and finds no key of a record at or past cut.
func truncatedQueues(t testing.TB, master, slave *Store, cut int64, keys int) {
	t.Helper()
	waitDispatch(t, master)
	for _, topic := range replTopics {
		for q := int32(0); q < 4; q++ {
			var want []wire.RecordView
			for _, r := range readAll(t, master, topic, q) {
				if r.PhysicalOffset() < cut {
					want = append(want, r)
				}
			}
			got := readAll(t, slave, topic, q)
			if len(got) != len(want) || slave.MaxOffset(topic, q) != int64(len(want)) {
				t.Fatalf("%s/%d: slave has %d messages (max offset %d), want %d", topic, q, len(got), slave.MaxOffset(topic, q), len(want))
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("%s/%d: message %d differs", topic, q, i)
				}
			}
		}
	}
	for i := 0; i < keys; i++ {
		so, _, _ := slave.QueryIndex(replTopics[i%2], fmt.Sprintf("key-%d", i), 64, 0, 1<<62)
		for _, o := range so {
			if o >= cut {
				t.Fatalf("key-%d: index entry at %d, past the cut %d", i, o, cut)
			}
		}
	}
}

func TestTruncateTo(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	mcfg := replConfig(t, nil)
	master := openStore(t, mcfg)
	fillMaster(t, master, rng, 0, 400)
	scfg := replConfig(t, nil)
	slave := openSlave(t, scfg)
	replicate(t, master, slave, rng, 0)
	sameQueues(t, master, slave, 400)

	cut := recordStart(t, master, master.MaxPhyOffset()*2/3)
	if err := slave.TruncateTo(cut + 1); err == nil {
		t.Fatal("TruncateTo inside a record accepted")
	}
	if err := slave.TruncateTo(master.MaxPhyOffset() + 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("TruncateTo past the end: %v", err)
	}
	if err := slave.TruncateTo(slave.MaxPhyOffset()); err != nil || slave.MaxPhyOffset() != master.MaxPhyOffset() {
		t.Fatalf("TruncateTo(MaxPhyOffset): %v, now at %d", err, slave.MaxPhyOffset())
	}
	if err := slave.TruncateTo(cut); err != nil {
		t.Fatal(err)
	}
	if slave.MaxPhyOffset() != cut {
		t.Fatalf("MaxPhyOffset %d after TruncateTo(%d)", slave.MaxPhyOffset(), cut)
	}
	if ck, ok, _ := readCheckpoint(scfg.RootDir); !ok || ck.flushed > cut || ck.dispatched > cut {
		t.Fatalf("checkpoint %+v after TruncateTo(%d)", ck, cut)
	}
	truncatedQueues(t, master, slave, cut, 400)

	// A restart keeps the cut.
	slave.crashForTest()
	slave = openStore(t, scfg)
	if slave.MaxPhyOffset() != cut {
		t.Fatalf("reopened: MaxPhyOffset %d, want %d", slave.MaxPhyOffset(), cut)
	}
	truncatedQueues(t, master, slave, cut, 400)

	// The master diverges the same way (as after a failover), then writes
	// new messages; the slave follows from the cut.
	if err := master.TruncateTo(cut); err != nil {
		t.Fatal(err)
	}
	truncatedQueues(t, master, master, cut, 400)
	fillMaster(t, master, rng, 1000, 300)
	if err := slave.SetRole(RoleSlave); err != nil {
		t.Fatal(err)
	}
	replicate(t, master, slave, rng, 0)
	sameQueues(t, master, slave, 0)
	sameCommitLog(t, mcfg, scfg)
	for i := 1000; i < 1300; i += 29 {
		topic, key := replTopics[i%2], fmt.Sprintf("key-%d", i)
		mo, _, _ := master.QueryIndex(topic, key, 64, 0, 1<<62)
		so, _, _ := slave.QueryIndex(topic, key, 64, 0, 1<<62)
		if len(mo) != 1 || fmt.Sprint(mo) != fmt.Sprint(so) {
			t.Fatalf("QueryIndex(%s): master %v, slave %v", key, mo, so)
		}
	}
}

// TestTruncateInterrupted: a store killed during TruncateTo (its marker
// written, nothing else done) finishes the truncation when it reopens:
// the truncated records are never served again.
func TestTruncateInterrupted(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	cfg := replConfig(t, nil)
	cfg.CQFlushInterval = 5 * time.Millisecond
	s := openStore(t, cfg)
	fillMaster(t, s, rng, 0, 400)
	waitDispatch(t, s)
	waitCheckpoint(t, s)
	cut := recordStart(t, s, s.MaxPhyOffset()/2)
	ref := openStore(t, replConfig(t, nil))
	ref.SetRole(RoleSlave)
	replicate(t, s, ref, rng, 0) // the untruncated log, to compare with

	if err := fileutil.WriteFile(truncateMarkerPath(cfg.RootDir), []byte(fmt.Sprintln(cut)), 0o644); err != nil {
		t.Fatal(err)
	}
	s.crashForTest()
	s2 := openStore(t, cfg)
	if s2.MaxPhyOffset() != cut {
		t.Fatalf("reopened: MaxPhyOffset %d, want %d", s2.MaxPhyOffset(), cut)
	}
	if _, err := os.Stat(truncateMarkerPath(cfg.RootDir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("truncation marker left: %v", err)
	}
	truncatedQueues(t, ref, s2, cut, 400)
	// Put continues each queue after the cut.
	next := s2.MaxOffset("ReplA", 0)
	if r := mustPut(t, s2, msg("ReplA", 0, "after")); r.PhysicalOffset != cut || r.QueueOffset != next {
		t.Fatalf("Put after the cut at %d queue offset %d, want %d / %d", r.PhysicalOffset, r.QueueOffset, cut, next)
	}
}

func TestConfirmGate(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	master := openStore(t, replConfig(t, nil))
	fillMaster(t, master, rng, 0, 200)
	slave := openSlave(t, replConfig(t, nil))
	slave.EnableConfirmGate(true)
	confirm := recordStart(t, master, master.MaxPhyOffset()/2) + 10 // inside a record
	slave.SetConfirmOffset(confirm)
	if slave.ConfirmOffset() != confirm {
		t.Fatal("ConfirmOffset")
	}
	replicate(t, master, slave, rng, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := slave.WaitDispatched(ctx, confirm-10); err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := slave.WaitDispatched(short, slave.MaxPhyOffset()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitDispatched past the confirm offset: %v", err)
	}
	// Only records ending at or below the confirm offset are visible.
	truncatedQueues(t, master, slave, confirm-10, 0)

	slave.SetConfirmOffset(slave.MaxPhyOffset())
	if err := slave.WaitDispatched(ctx, slave.MaxPhyOffset()); err != nil {
		t.Fatal(err)
	}
	sameQueues(t, master, slave, 200)
}

// TestReplicaConcurrent runs AppendAt against readers of every kind and a
// retention loop removing old segments (run it with -race): reads of
// removed segments fail cleanly, nothing crashes, and the slave ends with
// the master's log over the retained range.
func TestReplicaConcurrent(t *testing.T) {
	rng := rand.New(rand.NewSource(10))
	mcfg := replConfig(t, nil)
	master := openStore(t, mcfg)
	fillMaster(t, master, rng, 0, 800)

	scfg := replConfig(t, nil)
	clk := newFakeClock()
	scfg.Now = clk.Now
	scfg.DeleteWhen = []int{clk.Now().Hour()}
	scfg.FileReservedTime = time.Hour
	scfg.RetentionInterval = time.Hour // only the test's loop removes segments
	slave := openSlave(t, scfg)
	setDiskUsage(slave, func() (float64, error) { return 10, nil })

	done := make(chan struct{})
	var wg sync.WaitGroup
	var reads, removed atomic.Int64
	wg.Add(3)
	go func() { // consumers and the HA writer of a cascaded slave
		defer wg.Done()
		buf := make([]byte, 4096)
		for {
			select {
			case <-done:
				return
			default:
			}
			for _, topic := range replTopics {
				for q := int32(0); q < 4; q++ {
					r := slave.GetMessages(topic, q, slave.MinOffset(topic, q), 8, 1<<20, nil, nil, nil)
					if r.Status == Found {
						for b := r.Body; len(b) > 0; {
							n, err := wire.CheckRecord(b)
							if err != nil {
								t.Errorf("GetMessages(%s/%d) returned a bad record: %v", topic, q, err)
								return
							}
							b = b[n:]
						}
						reads.Add(1)
					}
				}
			}
			if n, err := slave.ReadCommitLog(buf, slave.MinPhyOffset()); err == nil && n > 0 {
				reads.Add(1)
			}
			slave.QueryIndex("ReplA", "key-10", 8, 0, 1<<62)
			time.Sleep(100 * time.Microsecond)
		}
	}()
	go func() { // retention: age everything but the last two segments
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			slave.clog.mu.RLock()
			segs := slices.Clone(slave.clog.segs)
			slave.clog.mu.RUnlock()
			old := clk.Now().Add(-2 * time.Hour)
			for i := 0; i+2 < len(segs); i++ {
				_ = os.Chtimes(segs[i].path, old, old) // may be gone already
			}
			before := slave.MinPhyOffset()
			slave.RunRetention()
			if slave.MinPhyOffset() > before {
				removed.Add(1)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	go func() { // ReadCommitLog against segment removal
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			select {
			case <-done:
				return
			default:
			}
			off := slave.MinPhyOffset()
			if _, err := slave.ReadCommitLog(buf, off); err != nil && !errors.Is(err, ErrOffsetOutOfRange) {
				t.Errorf("ReadCommitLog(%d): %v", off, err)
				return
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	replicate(t, master, slave, rng, 0)
	for i := 0; removed.Load() == 0 && i < 5000; i++ {
		time.Sleep(2 * time.Millisecond)
	}
	close(done)
	wg.Wait()
	if removed.Load() == 0 || reads.Load() == 0 {
		t.Fatalf("retention removed %d times, %d reads: the test did not exercise the race", removed.Load(), reads.Load())
	}
	// The retained range is the master's.
	buf, mbuf := make([]byte, 64<<10), make([]byte, 64<<10)
	for off := slave.MinPhyOffset(); off < slave.MaxPhyOffset(); {
		n, err := slave.ReadCommitLog(buf, off)
		if err != nil {
			t.Fatal(err)
		}
		if m, _ := master.ReadCommitLog(mbuf[:n], off); m != n || !bytes.Equal(buf[:n], mbuf[:n]) {
			t.Fatalf("logs differ at %d", off)
		}
		off += int64(n)
	}
}

// TestConfirmGateAcrossRestart: with Config.ConfirmGate a restarted store
// shows no record past what was confirmed (dispatched) before the crash,
// although its log keeps them, until the confirm offset moves again; and
// Put-side queue offsets still cover the hidden records.
func TestConfirmGateAcrossRestart(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	master := openStore(t, replConfig(t, nil))
	fillMaster(t, master, rng, 0, 300)
	scfg := replConfig(t, nil)
	scfg.ConfirmGate = true
	scfg.CQFlushInterval = 5 * time.Millisecond
	slave := openSlave(t, scfg)
	confirm := recordStart(t, master, master.MaxPhyOffset()/3)
	slave.SetConfirmOffset(confirm)
	replicate(t, master, slave, rng, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := slave.WaitDispatched(ctx, confirm); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if ck, ok, _ := readCheckpoint(scfg.RootDir); ok && ck.dispatched == confirm {
			break
		}
		if i > 5000 {
			t.Fatal("checkpoint never reached the confirm offset")
		}
		time.Sleep(2 * time.Millisecond)
	}
	slave.crashForTest()

	s2 := openStore(t, scfg)
	if s2.MaxPhyOffset() != master.MaxPhyOffset() {
		t.Fatalf("reopened at %d, want %d", s2.MaxPhyOffset(), master.MaxPhyOffset())
	}
	truncatedQueues(t, master, s2, confirm, 300)
	// Promotion makes everything visible and Put continues after the
	// hidden records.
	if err := s2.SetRole(RoleMaster); err != nil {
		t.Fatal(err)
	}
	sameQueues(t, master, s2, 300)
	next := master.MaxOffset("ReplB", 3)
	if r := mustPut(t, s2, msg("ReplB", 3, "after")); r.QueueOffset != next {
		t.Fatalf("Put after promotion: queue offset %d, want %d", r.QueueOffset, next)
	}
}

// TestAppendAtRefusals: disk pressure and a failed fsync refuse AppendAt
// as they refuse Put, and nothing is appended.
func TestAppendAtRefusals(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	master := openStore(t, replConfig(t, nil))
	fillMaster(t, master, rng, 0, 100)
	buf := make([]byte, 16<<10) // whole records: the flusher syncs complete ones

	scfg := replConfig(t, nil)
	scfg.FlushMode = SyncFlush
	fault := &fsyncFault{}
	scfg.FsyncFault = fault.hook
	slave := openSlave(t, scfg)
	n, _ := master.ReadCommitLog(buf, 0)
	if err := slave.AppendAt(0, buf[:n]); err != nil {
		t.Fatal(err)
	}
	setDiskUsage(slave, func() (float64, error) { return 99, nil })
	slave.mu.Lock()
	slave.checkDiskLocked(0) // what the retention loop does every RetentionInterval
	slave.mu.Unlock()
	m, _ := master.ReadCommitLog(buf, int64(n))
	if err := slave.AppendAt(int64(n), buf[:m]); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("AppendAt under disk pressure: %v", err)
	}
	setDiskUsage(slave, func() (float64, error) { return 10, nil })
	slave.mu.Lock()
	slave.checkDiskLocked(0) // what the retention loop does every RetentionInterval
	slave.mu.Unlock()

	// SyncFlush: the append wakes the flusher, whose fsync fails.
	fault.arm(1, func(p string) bool { return strings.Contains(p, "commitlog") })
	if err := slave.AppendAt(int64(n), buf[:m]); err != nil {
		t.Fatal(err)
	}
	for i := 0; slave.Failure() == nil; i++ {
		if i > 5000 {
			t.Fatal("the flusher never ran")
		}
		time.Sleep(2 * time.Millisecond)
	}
	end := slave.MaxPhyOffset()
	k, _ := master.ReadCommitLog(buf, end)
	if err := slave.AppendAt(end, buf[:k]); !errors.Is(err, ErrFailed) {
		t.Fatalf("AppendAt after a failed fsync: %v", err)
	}
	if slave.MaxPhyOffset() != end {
		t.Fatal("a refused append moved MaxPhyOffset")
	}
}

// TestTruncateToSegmentEdges cuts at a segment start and at a blank
// filler (the end of a segment's records); the log then continues
// byte-identical with its master's.
func TestTruncateToSegmentEdges(t *testing.T) {
	rng := rand.New(rand.NewSource(13))
	mcfg := replConfig(t, nil)
	master := openStore(t, mcfg)
	fillMaster(t, master, rng, 0, 400)
	scfg := replConfig(t, nil)
	slave := openSlave(t, scfg)
	replicate(t, master, slave, rng, 0)

	// The blank filler ending the third segment.
	var filler int64
	for off := int64(3*replSegSize) - wire.BlankSize; off > 2*replSegSize; off-- {
		b := make([]byte, 8)
		if n, _ := master.ReadCommitLog(b, off); n == 8 && wire.RecordView(b).Magic() == wire.MagicBlank {
			filler = off
			break
		}
	}
	if filler == 0 {
		t.Fatal("no filler found")
	}
	for _, cut := range []int64{5 * replSegSize, filler} {
		if err := slave.TruncateTo(cut); err != nil {
			t.Fatalf("TruncateTo(%d): %v", cut, err)
		}
		if err := master.TruncateTo(cut); err != nil {
			t.Fatalf("master TruncateTo(%d): %v", cut, err)
		}
		truncatedQueues(t, master, slave, cut, 0)
		fillMaster(t, master, rng, 2000, 150)
		replicate(t, master, slave, rng, 0)
		sameQueues(t, master, slave, 0)
		sameCommitLog(t, mcfg, scfg)
	}
}

func TestViewCommitLog(t *testing.T) {
	rng := rand.New(rand.NewSource(14))
	master := openStore(t, replConfig(t, nil))
	fillMaster(t, master, rng, 0, 100)
	buf := make([]byte, 5000)
	n, err := master.ReadCommitLog(buf, replSegSize-1000)
	if err != nil || n != 1000 {
		t.Fatalf("ReadCommitLog = %d, %v", n, err)
	}
	v, err := master.ViewCommitLog(replSegSize-1000, 5000)
	if err != nil || !bytes.Equal(v.Bytes, buf[:n]) {
		t.Fatalf("ViewCommitLog = %d bytes, %v", len(v.Bytes), err)
	}
	v.Release()
	v.Release() // idempotent
	if v, err := master.ViewCommitLog(master.MaxPhyOffset()+1, 10); !errors.Is(err, ErrOffsetOutOfRange) || v.Bytes != nil {
		t.Fatalf("ViewCommitLog past the end: %v", err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		v, err := master.ViewCommitLog(100, 4096)
		if err != nil || len(v.Bytes) != 4096 {
			t.Fatal(err)
		}
		v.Release()
	})
	if allocs != 0 {
		t.Fatalf("ViewCommitLog allocates %v times", allocs)
	}
}

// TestSetRoleMasterUnderLoad: confirming the master role of a store that
// already is master does not fail because Put moves the log meanwhile.
func TestSetRoleMasterUnderLoad(t *testing.T) {
	s := openStore(t, replConfig(t, nil))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			s.Put(msg("ReplA", int32(i%4), "load"))
		}
	}()
	for range 20 {
		if err := s.SetRole(RoleMaster); err != nil {
			t.Error(err)
			break
		}
	}
	close(done)
	wg.Wait()
}
