package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqops/mqops/wire"
)

type putRec struct {
	qid  int32
	res  PutResult
	body string
}

// fill puts n messages round-robin over queues of topic T.
func fill(t *testing.T, s *Store, n, queues, size int) []putRec {
	t.Helper()
	var out []putRec
	for i := range n {
		qid := int32(i % queues)
		m := msg("T", qid, bodyOf(i, size), wire.PropTags, "tag")
		out = append(out, putRec{qid, mustPut(t, s, m), string(m.Body)})
	}
	return out
}

// checkQueues asserts that the store holds exactly want, queue by queue.
func checkQueues(t *testing.T, s *Store, want []putRec, queues int) {
	t.Helper()
	per := make([][]putRec, queues)
	for _, p := range want {
		per[p.qid] = append(per[p.qid], p)
	}
	for q := range queues {
		got := readAll(t, s, "T", int32(q))
		if len(got) != len(per[q]) {
			t.Fatalf("queue %d: %d messages, want %d", q, len(got), len(per[q]))
		}
		for i, v := range got {
			w := per[q][i]
			if string(v.Body()) != w.body || v.PhysicalOffset() != w.res.PhysicalOffset || v.QueueOffset() != w.res.QueueOffset {
				t.Fatalf("queue %d msg %d: body/offsets differ (phys %d want %d)", q, i, v.PhysicalOffset(), w.res.PhysicalOffset)
			}
		}
		if mo := s.MaxOffset("T", int32(q)); mo != int64(len(per[q])) {
			t.Fatalf("queue %d: MaxOffset %d, want %d", q, mo, len(per[q]))
		}
	}
}

func TestReopenAfterClose(t *testing.T) {
	cfg := testConfig(t, nil)
	s := openStore(t, cfg)
	sent := fill(t, s, 2500, 3, 1000)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.RootDir, "abort")); !os.IsNotExist(err) {
		t.Fatalf("abort marker left after Close: %v", err)
	}
	ck, ok, err := readCheckpoint(cfg.RootDir)
	if !ok || err != nil || ck.flushed != s.MaxPhyOffset() || ck.dispatched != s.MaxPhyOffset() {
		t.Fatalf("checkpoint %+v ok=%v err=%v, want both %d", ck, ok, err, s.MaxPhyOffset())
	}

	logs := &logBuf{}
	cfg.Logger = testConfig(t, logs).Logger
	s2 := openStore(t, cfg)
	checkQueues(t, s2, sent, 3)
	if strings.Contains(logs.String(), "cut commitlog") || strings.Contains(logs.String(), "abort marker found") {
		t.Fatalf("clean reopen logged a cut or crash:\n%s", logs)
	}
	// Appends continue where they left off.
	r := mustPut(t, s2, msg("T", 1, "next"))
	if r.PhysicalOffset != s.MaxPhyOffset() || r.QueueOffset != 833 {
		t.Fatalf("after reopen: phys %d queue offset %d", r.PhysicalOffset, r.QueueOffset)
	}
}

func TestReopenAfterCrash(t *testing.T) {
	cfg := testConfig(t, nil)
	s := openStore(t, cfg)
	sent := fill(t, s, 2500, 4, 900)
	s.crashForTest() // some records may not even be dispatched yet

	logs := &logBuf{}
	cfg.Logger = testConfig(t, logs).Logger
	s2 := openStore(t, cfg)
	checkQueues(t, s2, sent, 4)
	if !strings.Contains(logs.String(), "[RECOVERY] abort marker found") {
		t.Fatalf("crash not detected:\n%s", logs)
	}
	if strings.Contains(logs.String(), "consume queue") {
		t.Fatalf("a crash taken for consume-queue damage:\n%s", logs)
	}
	r := mustPut(t, s2, msg("T", 0, "next"))
	if r.PhysicalOffset != sent[len(sent)-1].res.EndOffset || r.QueueOffset != 625 {
		t.Fatalf("after crash: phys %d queue offset %d", r.PhysicalOffset, r.QueueOffset)
	}
}

func TestReopenWithoutCheckpoint(t *testing.T) {
	cfg := testConfig(t, nil)
	s := openStore(t, cfg)
	sent := fill(t, s, 1500, 2, 1000)
	s.crashForTest()
	if err := os.Remove(filepath.Join(cfg.RootDir, "checkpoint")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	s2 := openStore(t, cfg)
	checkQueues(t, s2, sent, 2)
}

func TestDamagedCheckpointIgnored(t *testing.T) {
	cfg := testConfig(t, nil)
	s := openStore(t, cfg)
	sent := fill(t, s, 300, 2, 100)
	s.Close()
	if err := os.WriteFile(filepath.Join(cfg.RootDir, "checkpoint"), []byte("garbage garbage garbage garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &logBuf{}
	cfg.Logger = testConfig(t, logs).Logger
	s2 := openStore(t, cfg)
	checkQueues(t, s2, sent, 2)
	if !strings.Contains(logs.String(), "ignoring unusable checkpoint") {
		t.Fatalf("damaged checkpoint not reported:\n%s", logs)
	}
}

// lastSegment returns the path of the newest segment file.
func lastSegment(t *testing.T, cfg Config) string {
	t.Helper()
	ents, err := os.ReadDir(commitLogDir(cfg))
	if err != nil || len(ents) == 0 {
		t.Fatalf("read commitlog dir: %v", err)
	}
	return filepath.Join(commitLogDir(cfg), ents[len(ents)-1].Name())
}

// commitLogDir is the default commit-log directory of a test config.
func commitLogDir(cfg Config) string { return filepath.Join(cfg.RootDir, "commitlog") }

// lagCheckpoint stands in for a checkpoint written before the last
// records were flushed: after a crash, the bytes past it are the torn tail
// a crash can leave (an fsynced write is never torn).
func lagCheckpoint(t *testing.T, cfg Config, flushed int64) {
	t.Helper()
	if err := writeCheckpoint(cfg.RootDir, checkpoint{flushed: flushed, dispatched: flushed}); err != nil {
		t.Fatal(err)
	}
}

// TestTornTail cuts the last record of a crashed store short, past the
// checkpoint's durable point: recovery cuts the log there, as for a write
// the crash interrupted, without asking for AcceptDataLoss.
func TestTornTail(t *testing.T) {
	cfg := testConfig(t, nil)
	s := openStore(t, cfg)
	sent := fill(t, s, 1500, 3, 1000)
	waitDispatch(t, s) // the torn record has a consume-queue unit
	s.crashForTest()
	lagCheckpoint(t, cfg, sent[1000].res.PhysicalOffset)

	torn := sent[len(sent)-1]
	seg := lastSegment(t, cfg)
	base := torn.res.PhysicalOffset - torn.res.PhysicalOffset%cfg.SegmentSize
	if err := os.Truncate(seg, torn.res.PhysicalOffset-base+int64(torn.res.WroteBytes)/2); err != nil {
		t.Fatal(err)
	}

	logs := &logBuf{}
	cfg.Logger = testConfig(t, logs).Logger
	s2 := openStore(t, cfg)
	if !strings.Contains(logs.String(), "[RECOVERY] cut commitlog") {
		t.Fatalf("cut not logged:\n%s", logs)
	}
	// Units past the cut are dropped, not taken for damage.
	if strings.Contains(logs.String(), "consume queue") {
		t.Fatalf("cut taken for consume-queue damage:\n%s", logs)
	}
	if st, _ := os.Stat(seg); st.Size() != cfg.SegmentSize {
		t.Fatalf("segment not extended back: %d", st.Size())
	}
	if s2.MaxPhyOffset() != torn.res.PhysicalOffset {
		t.Fatalf("MaxPhyOffset %d, want cut at %d", s2.MaxPhyOffset(), torn.res.PhysicalOffset)
	}
	checkQueues(t, s2, sent[:len(sent)-1], 3)

	// New appends continue at the cut with the torn record's queue offset.
	r := mustPut(t, s2, msg("T", torn.qid, "replacement"))
	if r.PhysicalOffset != torn.res.PhysicalOffset || r.QueueOffset != torn.res.QueueOffset {
		t.Fatalf("new put at phys %d qoff %d, want %d/%d", r.PhysicalOffset, r.QueueOffset,
			torn.res.PhysicalOffset, torn.res.QueueOffset)
	}
	waitDispatch(t, s2)
	s2.crashForTest()

	// And the result survives another recovery.
	s3 := openStore(t, cfg)
	want := append(sent[:len(sent)-1:len(sent)-1], putRec{torn.qid, r, "replacement"})
	checkQueues(t, s3, want, 3)
}

// TestTruncatedEarlierSegment cuts a segment that is not the last in the
// middle of some record, below the checkpoint: data the checkpoint vouches
// for is missing, so Open refuses, naming the file. With AcceptDataLoss the
// missing part is stepped over and every record still on disk is served,
// the later segments' included (before issue 11 the log was cut there and
// every later segment deleted).
func TestTruncatedEarlierSegment(t *testing.T) {
	cfg := testConfig(t, nil)
	s := openStore(t, cfg)
	sent := fill(t, s, 3000, 2, 1000)
	waitDispatch(t, s)
	s.Close()

	// Cut the first segment in the middle of some record.
	var victim int
	for i, p := range sent {
		if p.res.PhysicalOffset > cfg.SegmentSize/2 {
			victim = i
			break
		}
	}
	first := filepath.Join(commitLogDir(cfg), "00000000000000000000")
	if err := os.Truncate(first, sent[victim].res.PhysicalOffset+10); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(cfg); err == nil || !strings.Contains(err.Error(), first) || !strings.Contains(err.Error(), "refusing to start") {
		t.Fatalf("Open with a truncated segment below the checkpoint: %v", err)
	}
	if st, _ := os.Stat(first); st.Size() != sent[victim].res.PhysicalOffset+10 {
		t.Fatalf("a refused Open changed the truncated file: %d bytes", st.Size())
	}

	logs := &logBuf{}
	cfg.Logger = testConfig(t, logs).Logger
	cfg.AcceptDataLoss = true
	s2 := openStore(t, cfg)
	if !strings.Contains(logs.String(), "[RECOVERY] accepting data loss") || !strings.Contains(logs.String(), first) {
		t.Fatalf("accepted loss not logged:\n%s", logs)
	}
	var want []putRec
	for _, p := range sent {
		if p.res.PhysicalOffset < sent[victim].res.PhysicalOffset || p.res.PhysicalOffset >= cfg.SegmentSize {
			want = append(want, p)
		}
	}
	checkServed(t, s2, want, 2)
	if lost := len(sent) - len(want); lost > 600 {
		t.Fatalf("%d records lost", lost)
	}
}

// TestCorruptTornTail flips a body byte of the last record of a crashed
// store, past the checkpoint's durable point: that is a torn tail, cut
// and zeroed.
func TestCorruptTornTail(t *testing.T) {
	cfg := testConfig(t, nil)
	s := openStore(t, cfg)
	sent := fill(t, s, 100, 2, 300)
	waitDispatch(t, s)
	s.crashForTest()
	lagCheckpoint(t, cfg, sent[50].res.PhysicalOffset)

	bad := sent[len(sent)-1]
	flipByte(t, cfg, bad.res.PhysicalOffset+bodyAt+5)

	logs := &logBuf{}
	cfg.Logger = testConfig(t, logs).Logger
	s2 := openStore(t, cfg)
	if !strings.Contains(logs.String(), "[RECOVERY] cut commitlog") || !strings.Contains(logs.String(), "crc") {
		t.Fatalf("crc cut not logged:\n%s", logs)
	}
	checkQueues(t, s2, sent[:len(sent)-1], 2)
	// The tail was zeroed: nothing of the bad record remains.
	seg := s2.clog.segs[0]
	if !bytes.Equal(seg.data[bad.res.PhysicalOffset:bad.res.EndOffset], make([]byte, bad.res.WroteBytes)) {
		t.Fatalf("tail after cut not zeroed")
	}
}

// TestConsumeQueueDamage simulates what a crash can leave in consume-queue
// files: a hole among recent units and a stale unit past the end.
func TestConsumeQueueDamage(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.CQUnitsPerFile = 1000
	s := openStore(t, cfg)
	sent := fill(t, s, 400, 2, 200)
	waitDispatch(t, s)
	s.crashForTest()
	// Force re-dispatch of everything by claiming nothing was dispatched.
	if err := writeCheckpoint(cfg.RootDir, checkpoint{}); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(cfg.RootDir, "consumequeue", "T", "0", "00000000000000000000")
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Hole at unit 150 (of 200).
	if _, err := f.WriteAt(make([]byte, cqUnitSize), 150*cqUnitSize); err != nil {
		t.Fatal(err)
	}
	// Plausible-looking stale units right after the end (200) and further
	// out (260), pointing at a record of queue 1.
	var u [cqUnitSize]byte
	putUnit(u[:], cqUnit{phys: sent[1].res.PhysicalOffset, size: sent[1].res.WroteBytes})
	for _, q := range []int64{200, 260} {
		if _, err := f.WriteAt(u[:], q*cqUnitSize); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()

	s2 := openStore(t, cfg)
	checkQueues(t, s2, sent, 2)
	cq := s2.cqs.get("T", 0)
	if got, _ := cq.unitAt(200); !got.isZero() {
		t.Fatalf("stale unit at the end kept: %+v", got)
	}
	// Units past the end are never served and get overwritten as the
	// queue grows.
	for i := range 100 {
		m := msg("T", 0, bodyOf(i, 50))
		sent = append(sent, putRec{0, mustPut(t, s2, m), string(m.Body)})
	}
	waitDispatch(t, s2)
	checkQueues(t, s2, sent, 2)
	s2.crashForTest()
	checkQueues(t, openStore(t, cfg), sent, 2)
}

// TestShortConsumeQueueFile: a consume-queue file cut short is extended
// and the lost units are rebuilt from the log.
func TestShortConsumeQueueFile(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.CQUnitsPerFile = 1000
	s := openStore(t, cfg)
	sent := fill(t, s, 300, 1, 100)
	waitDispatch(t, s)
	s.crashForTest()
	if err := writeCheckpoint(cfg.RootDir, checkpoint{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.RootDir, "consumequeue", "T", "0", "00000000000000000000")
	if err := os.Truncate(path, 100*cqUnitSize+7); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, cfg)
	checkQueues(t, s2, sent, 1)
}

func TestSegmentSizeMismatchRefused(t *testing.T) {
	cfg := testConfig(t, nil)
	s := openStore(t, cfg)
	fill(t, s, 1500, 1, 1000)
	s.Close()
	cfg.SegmentSize = 2 << 20
	if _, err := Open(cfg); err == nil || !strings.Contains(err.Error(), "SegmentSize") {
		t.Fatalf("Open with another SegmentSize: %v", err)
	}
	cfg.SegmentSize = 1 << 19
	if _, err := Open(cfg); err == nil {
		t.Fatalf("Open with a smaller SegmentSize succeeded")
	}
}

// TestRebuildConsumeQueues: removing the consumequeue dir rebuilds every
// queue from the commit log.
func TestRebuildConsumeQueues(t *testing.T) {
	cfg := testConfig(t, nil)
	s := openStore(t, cfg)
	sent := fill(t, s, 1500, 3, 1000)
	s.Close()
	if err := os.RemoveAll(filepath.Join(cfg.RootDir, "consumequeue")); err != nil {
		t.Fatal(err)
	}
	checkQueues(t, openStore(t, cfg), sent, 3)
}
