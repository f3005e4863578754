package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

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
	var slast atomic.Int64
	slave.SetOnAppend(func(end int64) { slast.Store(end) })

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
	// The good continuation still goes in.
	fillMaster(t, master, rng, 20, 20)
	replicate(t, master, slave, rng, 0)
	if slave.MaxPhyOffset() != master.MaxPhyOffset() {
		t.Fatal("slave did not catch up")
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
