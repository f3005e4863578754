package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

func cqFile(cfg Config, topic string, qid int32, base int64) string {
	return fileName(filepath.Join(cfg.RootDir, "consumequeue", topic, fmt.Sprint(qid)), base*cqUnitSize)
}

// flipUnits points units [from, to) of topic/qid's file at base at the
// records of other, as a bad write or a bit flip in the middle of a file
// would. The store's mapping sees the change if it is running.
func flipUnits(t *testing.T, path string, base, from, to int64, other []sentMsg) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [cqUnitSize]byte
	for q := from; q < to; q++ {
		o := other[int(q)%len(other)]
		putUnit(b[:], cqUnit{phys: o.res.PhysicalOffset, size: o.res.WroteBytes, tagsCode: wire.TagsHashCode([]byte("tag"))})
		if _, err := f.WriteAt(b[:], (q-base)*cqUnitSize); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConsumeQueueDamageRebuilt damages the consume queues of a stopped
// store in the ways the issue lists, after a clean Close and after a crash
// (with the checkpoint past the damage, so re-dispatch does not hide it):
// on reopen every acknowledged message must be readable at its queue
// offset again and the rebuild logged.
func TestConsumeQueueDamageRebuilt(t *testing.T) {
	const n = 7500 // A/0..2 and B/0..1: 1500 messages each, 15 files of 100 units
	damages := []struct {
		name   string
		damage func(t *testing.T, cfg Config, sent []sentMsg)
		log    string
	}{
		{"truncated file", func(t *testing.T, cfg Config, sent []sentMsg) {
			// A/0's third file keeps 37 units and 7 bytes of the 38th.
			if err := os.Truncate(cqFile(cfg, "A", 0, 200), 37*cqUnitSize+7); err != nil {
				t.Fatal(err)
			}
		}, "[RECOVERY] rebuilt consume queue"},
		{"truncated last file", func(t *testing.T, cfg Config, sent []sentMsg) {
			if err := os.Truncate(cqFile(cfg, "A", 1, 1400), 10*cqUnitSize); err != nil {
				t.Fatal(err)
			}
		}, "[RECOVERY] rebuilt consume queue"},
		{"topic directory deleted", func(t *testing.T, cfg Config, sent []sentMsg) {
			if err := os.RemoveAll(filepath.Join(cfg.RootDir, "consumequeue", "B")); err != nil {
				t.Fatal(err)
			}
		}, "[RECOVERY] rebuilt consume queue"},
		{"middle file deleted", func(t *testing.T, cfg Config, sent []sentMsg) {
			if err := os.Remove(cqFile(cfg, "A", 1, 700)); err != nil {
				t.Fatal(err)
			}
		}, "[RECOVERY] rebuilt consume queue"},
		{"last file deleted", func(t *testing.T, cfg Config, sent []sentMsg) {
			if err := os.Remove(cqFile(cfg, "B", 1, 1400)); err != nil {
				t.Fatal(err)
			}
		}, "[RECOVERY] rebuilt consume queue"},
		{"units flipped to another topic", func(t *testing.T, cfg Config, sent []sentMsg) {
			flipUnits(t, cqFile(cfg, "A", 2, 500), 500, 540, 560, ofQueue(sent, "B", 0))
		}, "[CONSUME_QUEUE] consume queue unit does not match its record"},
	}
	for _, d := range damages {
		for _, crash := range []bool{false, true} {
			name := d.name + "/after close"
			if crash {
				name = d.name + "/after crash"
			}
			t.Run(name, func(t *testing.T) {
				cfg := testConfig(t, nil)
				s := openStore(t, cfg)
				sent := fillTopics(t, s, n)
				waitDispatch(t, s)
				if crash {
					// A checkpoint after the fill, then kill -9: the damaged
					// units are below it, so re-dispatch does not rewrite them.
					if err := s.flushCommitLog(); err != nil {
						t.Fatal(err)
					}
					if err := s.flushConsumeQueues(); err != nil {
						t.Fatal(err)
					}
					s.crashForTest()
				} else if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				d.damage(t, cfg, sent)

				logs := &logBuf{}
				cfg.Logger = testConfig(t, logs).Logger
				s2 := openStore(t, cfg)
				missing, wrong := unreadable(s2, sent, 5*time.Second)
				t.Logf("%s: %d of %d messages unreadable, %d served another message", name, missing, n, wrong)
				if missing+wrong != 0 {
					t.Fatalf("%d of %d acknowledged messages unreadable at their queue offset, %d with another record served in their place",
						missing, n, wrong)
				}
				if !strings.Contains(logs.String(), d.log) {
					t.Fatalf("damage not logged (%q):\n%s", d.log, logs)
				}
				if !strings.Contains(logs.String(), "rebuilt consume queue") {
					t.Fatalf("rebuild not logged:\n%s", logs)
				}
				// Appends continue at the right queue offsets.
				for _, q := range []struct {
					topic string
					qid   int32
				}{{"A", 0}, {"A", 1}, {"A", 2}, {"B", 0}, {"B", 1}} {
					if r := mustPut(t, s2, msg(q.topic, q.qid, "next")); r.QueueOffset != n/5 {
						t.Fatalf("next put to %s/%d at queue offset %d, want %d", q.topic, q.qid, r.QueueOffset, n/5)
					}
				}
				waitDispatch(t, s2)
				// And the repaired store survives another restart as it is.
				s2.crashForTest()
				logs3 := &logBuf{}
				cfg.Logger = testConfig(t, logs3).Logger
				s3 := openStore(t, cfg)
				if missing, wrong := unreadable(s3, sent, 0); missing+wrong != 0 {
					t.Fatalf("after another restart %d unreadable, %d wrong", missing, wrong)
				}
				if strings.Contains(logs3.String(), "rebuilt consume queue") {
					t.Fatalf("repaired store rebuilt again:\n%s", logs3)
				}
			})
		}
	}
}

// TestFlippedUnitAtReadTime: a unit of a running store pointing at another
// topic's record is not served; the damage is logged once and the queue
// is rebuilt from the log, after which the right message is served.
func TestFlippedUnitAtReadTime(t *testing.T) {
	logs := &logBuf{}
	cfg := testConfig(t, logs)
	s := openStore(t, cfg)
	sent := fillTopics(t, s, 1000)
	waitDispatch(t, s)
	a0, b0 := ofQueue(sent, "A", 0), ofQueue(sent, "B", 0)
	flipUnits(t, cqFile(cfg, "A", 0, 100), 100, 150, 153, b0)

	// A batch reaching the damage stops before it: the consumer comes
	// back for offset 150 instead of skipping it.
	r := s.GetMessages("A", 0, 140, 32, 0, nil, nil, nil)
	if r.Status != Found || r.MsgCount != 10 || r.NextBeginOffset != 150 {
		t.Fatalf("batch from 140 over the damage at 150: %v, %d messages, next %d; want FOUND, 10, next 150",
			r.Status, r.MsgCount, r.NextBeginOffset)
	}
	// At the damaged offset itself: nothing (retry there) while the
	// rebuild runs, then the right message; never the flipped target.
	r = s.GetMessages("A", 0, 150, 1, 0, nil, nil, nil)
	if r.Status == Found {
		if v := wire.RecordView(r.Body); string(v.Topic()) != "A" || v.PhysicalOffset() != a0[150].res.PhysicalOffset {
			t.Fatalf("queue A/0 offset 150 served a record of %s/%d at %d (the flipped unit's target)",
				v.Topic(), v.QueueID(), v.PhysicalOffset())
		}
	} else if r.Status != OffsetFoundNull || r.NextBeginOffset != 150 {
		t.Fatalf("damaged unit: %v next %d, want OFFSET_FOUND_NULL at 150", r.Status, r.NextBeginOffset)
	}
	if missing, wrong := unreadable(s, sent, 5*time.Second); missing+wrong != 0 {
		t.Fatalf("%d unreadable, %d wrong after the rebuild", missing, wrong)
	}
	out := logs.String()
	if c := strings.Count(out, "[CONSUME_QUEUE] consume queue unit does not match its record"); c != 1 {
		t.Fatalf("damage logged %d times, want once:\n%s", c, out)
	}
	if !strings.Contains(out, "rebuilt consume queue") || !strings.Contains(out, "rewritten=3") {
		t.Fatalf("rebuild not logged with 3 units:\n%s", out)
	}
}

// TestZeroedUnitsRebuilt: units zeroed in the middle of a running queue's
// file (as a file system repair leaves a damaged block) are not skipped
// as if empty: the read finds them, and the queue is rebuilt.
func TestZeroedUnitsRebuilt(t *testing.T) {
	logs := &logBuf{}
	cfg := testConfig(t, logs)
	s := openStore(t, cfg)
	sent := fillTopics(t, s, 1000)
	waitDispatch(t, s)
	f, err := os.OpenFile(cqFile(cfg, "B", 1, 100), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 30*cqUnitSize), 40*cqUnitSize); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if missing, wrong := unreadable(s, sent, 5*time.Second); missing+wrong != 0 {
		t.Fatalf("zeroed units: %d unreadable, %d wrong", missing, wrong)
	}
	if !strings.Contains(logs.String(), "rewritten=30") {
		t.Fatalf("rebuild of 30 units not logged:\n%s", logs)
	}
}

// TestUnitAtRebuildsDamagedUnit: UnitAt (delay levels, timers,
// transactions) never returns a unit pointing at another queue's record;
// it waits for the rebuild and returns the right one.
func TestUnitAtRebuildsDamagedUnit(t *testing.T) {
	cfg := testConfig(t, nil)
	s := openStore(t, cfg)
	sent := fillTopics(t, s, 1000)
	waitDispatch(t, s)
	a1 := ofQueue(sent, "A", 1)
	flipUnits(t, cqFile(cfg, "A", 1, 100), 100, 120, 121, ofQueue(sent, "B", 1))
	u, ok := s.UnitAt("A", 1, 120)
	if !ok || u.Phys != a1[120].res.PhysicalOffset || u.Size != a1[120].res.WroteBytes {
		t.Fatalf("UnitAt(A/1, 120) = %+v %v, want the unit of phys %d", u, ok, a1[120].res.PhysicalOffset)
	}
}

// corruptMagic overwrites the magic code of the record at phys in the
// commit log, as a bad sector would.
func corruptMagic(t *testing.T, cfg Config, phys int64) {
	t.Helper()
	seg := fileName(commitLogDir(cfg), phys-phys%cfg.SegmentSize)
	f, err := os.OpenFile(seg, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{0xDE, 0xAD, 0xBE, 0xEF}, phys%cfg.SegmentSize+4); err != nil {
		t.Fatal(err)
	}
}

// TestRepairOverUnreadableLog: when the log range holding a damaged unit's
// record cannot be read, the unit becomes a filler (logged) instead of
// making readers wait at it forever, and the damage is reported once.
func TestRepairOverUnreadableLog(t *testing.T) {
	logs := &logBuf{}
	cfg := testConfig(t, logs)
	s := openStore(t, cfg)
	sent := fillTopics(t, s, 1000)
	waitDispatch(t, s)
	// A/0's unit 150 is message 750; B/0's message 748 lies between it and
	// A/0's unit 149 (message 745).
	flipUnits(t, cqFile(cfg, "A", 0, 100), 100, 150, 151, ofQueue(sent, "B", 1))
	corruptMagic(t, cfg, sent[748].res.PhysicalOffset)

	deadline := time.Now().Add(5 * time.Second)
	var r GetResult
	for {
		r = s.GetMessages("A", 0, 150, 1, 0, nil, nil, nil)
		if r.NextBeginOffset != 150 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The reader steps over the filler to unit 151.
	a0 := ofQueue(sent, "A", 0)
	if r.Status != Found || r.NextBeginOffset != 152 || wire.RecordView(r.Body).PhysicalOffset() != a0[151].res.PhysicalOffset {
		t.Fatalf("read at the unrepairable unit: %v next %d, want A/0's message 151 (next 152)", r.Status, r.NextBeginOffset)
	}
	out := logs.String()
	if c := strings.Count(out, "consume queue unit does not match its record"); c != 1 {
		t.Fatalf("damage reported %d times:\n%s", c, out)
	}
	if !strings.Contains(out, "units without a readable record replaced by fillers") || !strings.Contains(out, "fillers=1") {
		t.Fatalf("filler not logged:\n%s", out)
	}
}

// TestManifest: the manifest round-trips, a damaged one is reported and
// ignored, and a store without one (older build) opens without rebuilding
// anything; its queues' structure is still checked.
func TestManifest(t *testing.T) {
	a := &consumeQueue{topic: "A", qid: 1}
	a.min.Store(5)
	a.max.Store(300)
	b := &consumeQueue{topic: "Bb", qid: 0}
	b.max.Store(7)
	empty := &consumeQueue{topic: "C", qid: 0}
	root := t.TempDir()
	if err := os.WriteFile(manifestPath(root), encodeManifest(nil, []*consumeQueue{b, empty, a}), 0o644); err != nil {
		t.Fatal(err)
	}
	m, ok, err := readManifest(root)
	if !ok || err != nil || len(m) != 2 || m[queueKey{"A", 1}] != (manifestEntry{5, 300}) || m[queueKey{"Bb", 0}] != (manifestEntry{0, 7}) {
		t.Fatalf("readManifest = %v %v %v", m, ok, err)
	}
	raw, _ := os.ReadFile(manifestPath(root))
	raw[14] ^= 1
	os.WriteFile(manifestPath(root), raw, 0o644)
	if _, ok, err := readManifest(root); ok || err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("damaged manifest: ok=%v err=%v", ok, err)
	}

	for _, damaged := range []bool{false, true} {
		cfg := testConfig(t, nil)
		s := openStore(t, cfg)
		sent := fillTopics(t, s, 2500)
		waitDispatch(t, s)
		s.Close()
		if damaged {
			os.WriteFile(manifestPath(cfg.RootDir), []byte("MQCM garbage"), 0o644)
		} else if err := os.Remove(manifestPath(cfg.RootDir)); err != nil {
			t.Fatal(err)
		}
		logs := &logBuf{}
		cfg.Logger = testConfig(t, logs).Logger
		s2 := openStore(t, cfg)
		if missing, wrong := unreadable(s2, sent, 0); missing+wrong != 0 {
			t.Fatalf("without a usable manifest: %d unreadable", missing+wrong)
		}
		if strings.Contains(logs.String(), "rebuilt consume queue") {
			t.Fatalf("intact store rebuilt:\n%s", logs)
		}
		if damaged != strings.Contains(logs.String(), "ignoring unusable consume-queue manifest") {
			t.Fatalf("damaged manifest %v, log:\n%s", damaged, logs)
		}
		if _, ok, _ := readManifest(cfg.RootDir); !ok {
			t.Fatal("manifest not rewritten by recovery")
		}
		// Without a manifest a cut last file is still noticed.
		s2.Close()
		os.Remove(manifestPath(cfg.RootDir))
		if err := os.Truncate(cqFile(cfg, "B", 0, 400), 30*cqUnitSize); err != nil {
			t.Fatal(err)
		}
		logs = &logBuf{}
		cfg.Logger = testConfig(t, logs).Logger
		s3 := openStore(t, cfg)
		if missing, wrong := unreadable(s3, sent, 0); missing+wrong != 0 {
			t.Fatalf("cut last file without a manifest: %d unreadable", missing+wrong)
		}
		if !strings.Contains(logs.String(), "rebuilt consume queue") || !strings.Contains(logs.String(), "rewritten=70") {
			t.Fatalf("rebuild not logged:\n%s", logs)
		}
	}
}

// TestDeletedTopicNotRebuilt: a topic deleted before a crash is not
// brought back as a "missing queue" although its records are in the log.
func TestDeletedTopicNotRebuilt(t *testing.T) {
	cfg := testConfig(t, nil)
	s := openStore(t, cfg)
	fillTopics(t, s, 500)
	waitDispatch(t, s)
	if err := s.flushConsumeQueues(); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTopic("B"); err != nil {
		t.Fatal(err)
	}
	s.crashForTest()
	s2 := openStore(t, cfg)
	if ids := s2.QueueIDs("B"); ids != nil {
		t.Fatalf("deleted topic B came back with queues %v", ids)
	}
	if got := s2.MaxOffset("A", 0); got != 100 {
		t.Fatalf("A/0 max %d", got)
	}
}
