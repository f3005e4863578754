package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// bodyAt is where the body of a record with IPv4 hosts starts (store.md §1).
const bodyAt = 88

// segmentPath returns the file of the segment holding phys.
func segmentPath(cfg Config, phys int64) string {
	return fileName(commitLogDir(cfg), phys-phys%cfg.SegmentSize)
}

// writeAt overwrites the segment bytes at phys through the file, as a
// failing disk or another process would; the page cache the store's
// mapping shares sees it at once.
func writeAt(t *testing.T, cfg Config, phys int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(segmentPath(cfg, phys), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, phys%cfg.SegmentSize); err != nil {
		t.Fatal(err)
	}
}

// flipByte inverts some bits of the segment byte at phys.
func flipByte(t *testing.T, cfg Config, phys int64) {
	t.Helper()
	b, err := os.ReadFile(segmentPath(cfg, phys))
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, cfg, phys, []byte{b[phys%cfg.SegmentSize] ^ 0x40})
}

// without returns sent minus the records for which drop is true.
func without(sent []putRec, drop func(p putRec) bool) []putRec {
	var out []putRec
	for _, p := range sent {
		if !drop(p) {
			out = append(out, p)
		}
	}
	return out
}

// checkServed asserts that reading every queue of topic T from its start
// returns exactly want, in order: damaged records are skipped, so unlike
// checkQueues the queues' max offsets still count them.
func checkServed(t *testing.T, s *Store, want []putRec, queues int) {
	t.Helper()
	per := make([][]putRec, queues)
	for _, p := range want {
		per[p.qid] = append(per[p.qid], p)
	}
	for q := range queues {
		got := readAll(t, s, "T", int32(q))
		if len(got) != len(per[q]) {
			t.Fatalf("queue %d: %d messages served, want %d", q, len(got), len(per[q]))
		}
		for i, v := range got {
			w := per[q][i]
			if string(v.Body()) != w.body || v.PhysicalOffset() != w.res.PhysicalOffset || v.QueueOffset() != w.res.QueueOffset {
				t.Fatalf("queue %d msg %d: served phys %d qoff %d (body intact %v), want phys %d qoff %d",
					q, i, v.PhysicalOffset(), v.QueueOffset(), string(v.Body()) == w.body, w.res.PhysicalOffset, w.res.QueueOffset)
			}
		}
	}
}

// checkQuarantined asserts that the log names the damaged range
// [off, off+size) and that its copy holds the file's bytes of it.
func checkQuarantined(t *testing.T, cfg Config, logs *logBuf, tag string, off, size int64) {
	t.Helper()
	line := fmt.Sprintf("%s corrupt commitlog range: its records are not served\" offset=%d size=%d", tag, off, size)
	if !strings.Contains(logs.String(), line) {
		t.Fatalf("log does not name the damaged range (%s):\n%s", line, logs)
	}
	copyPath := filepath.Join(cfg.RootDir, "corrupt", fmt.Sprintf("commitlog-%020d-%d", off, size))
	got, err := os.ReadFile(copyPath)
	if err != nil {
		t.Fatalf("no copy of the damaged range: %v", err)
	}
	seg, err := os.ReadFile(segmentPath(cfg, off))
	if err != nil {
		t.Fatal(err)
	}
	if rel := off % cfg.SegmentSize; !bytes.Equal(got, seg[rel:rel+size]) {
		t.Fatalf("copy %s differs from the damaged bytes", copyPath)
	}
}

// fillSegments fills a store with 1 KiB messages over 2 queues of T across
// about 3.4 segments and closes it, so the checkpoint is in the last one.
func fillSegments(t *testing.T, cfg Config) []putRec {
	t.Helper()
	s := openStore(t, cfg)
	sent := fill(t, s, 3000, 2, 1000)
	waitDispatch(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return sent
}

// middleOf returns the index of the record in the middle of segment seg.
func middleOf(t *testing.T, cfg Config, sent []putRec, seg int64) int {
	t.Helper()
	var in []int
	for i, p := range sent {
		if p.res.PhysicalOffset/cfg.SegmentSize == seg {
			in = append(in, i)
		}
	}
	if len(in) < 10 {
		t.Fatalf("segment %d holds %d records", seg, len(in))
	}
	return in[len(in)/2]
}

// TestCorruptBodyInCheckpointSegment flips a body byte in the middle of the
// segment recovery validates (the checkpoint's), below the durable point,
// after a clean close and after a crash. Recovery quarantines that record
// and keeps every later one; before issue 11 it cut the log there, losing
// the 1 299 intact records after it.
func TestCorruptBodyInCheckpointSegment(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(map[bool]string{false: "after close", true: "after crash"}[crash], func(t *testing.T) {
			cfg := testConfig(t, nil)
			cfg.SegmentSize = 4 << 20 // all in one segment: the checkpoint's
			s := openStore(t, cfg)
			sent := fill(t, s, 3000, 2, 1000)
			waitDispatch(t, s)
			if crash {
				s.crashForTest()
				// A checkpoint written after the last flush, before the kill.
				lagCheckpoint(t, cfg, s.MaxPhyOffset())
			} else if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			v := 1700
			bad := sent[v].res
			flipByte(t, cfg, bad.PhysicalOffset+bodyAt+100)

			logs := &logBuf{}
			cfg.Logger = testConfig(t, logs).Logger
			s2 := openStore(t, cfg)
			want := without(sent, func(p putRec) bool { return p.res.PhysicalOffset == bad.PhysicalOffset })
			checkServed(t, s2, want, 2)
			checkQuarantined(t, cfg, logs, "[RECOVERY]", bad.PhysicalOffset, int64(bad.WroteBytes))
			if strings.Contains(logs.String(), "cut commitlog") {
				t.Fatalf("damage below the durable point cut the log:\n%s", logs)
			}
			if n, size, _ := s2.Corruption(); n != 1 || size != int64(bad.WroteBytes) {
				t.Fatalf("Corruption() = %d ranges, %d bytes", n, size)
			}
			// Appends go on after the last record; the damaged record's queue
			// offset is not handed out again.
			r := mustPut(t, s2, msg("T", sent[v].qid, "next"))
			if r.PhysicalOffset != sent[len(sent)-1].res.EndOffset || r.QueueOffset != 1500 {
				t.Fatalf("put after recovery at phys %d qoff %d", r.PhysicalOffset, r.QueueOffset)
			}
			waitDispatch(t, s2)
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}

			// The next recovery finds the same range again and keeps the copy.
			logs3 := &logBuf{}
			cfg.Logger = testConfig(t, logs3).Logger
			s3 := openStore(t, cfg)
			checkServed(t, s3, append(want, putRec{sent[v].qid, r, "next"}), 2)
			checkQuarantined(t, cfg, logs3, "[RECOVERY]", bad.PhysicalOffset, int64(bad.WroteBytes))
		})
	}
}

// TestCorruptHeaderResyncs damages record headers in the checkpoint's
// segment: a size field (the walk can no longer step over the record) and a
// zeroed 4 KiB page across several records. Recovery resynchronises on the
// next valid record; only the records the damage touched are lost.
func TestCorruptHeaderResyncs(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.SegmentSize = 4 << 20
	s := openStore(t, cfg)
	sent := fill(t, s, 3000, 2, 1000)
	waitDispatch(t, s)
	s.Close()

	sized := sent[1000].res
	var size [4]byte
	binary.BigEndian.PutUint32(size[:], uint32(sized.WroteBytes)+1500)
	writeAt(t, cfg, sized.PhysicalOffset, size[:])
	zeroFrom := sent[2000].res.PhysicalOffset + 500
	zeroTo := zeroFrom + 4096
	writeAt(t, cfg, zeroFrom, make([]byte, zeroTo-zeroFrom))

	logs := &logBuf{}
	cfg.Logger = testConfig(t, logs).Logger
	s2 := openStore(t, cfg)
	var zeroed []putRec
	want := without(sent, func(p putRec) bool {
		if p.res.PhysicalOffset < zeroTo && p.res.EndOffset > zeroFrom {
			zeroed = append(zeroed, p)
			return true
		}
		return p.res.PhysicalOffset == sized.PhysicalOffset
	})
	checkServed(t, s2, want, 2)
	checkQuarantined(t, cfg, logs, "[RECOVERY]", sized.PhysicalOffset, int64(sized.WroteBytes))
	first, last := zeroed[0].res, zeroed[len(zeroed)-1].res
	checkQuarantined(t, cfg, logs, "[RECOVERY]", first.PhysicalOffset, last.EndOffset-first.PhysicalOffset)
	if len(zeroed) > 6 {
		t.Fatalf("a 4 KiB zeroed page cost %d records", len(zeroed))
	}
}

// TestCorruptBodyInOlderSegment flips a body byte in the middle of an
// older segment, which recovery does not walk (it starts at the
// checkpoint's segment). Reads check the CRC of records nothing verified
// yet and skip the damaged one (before issue 11 it was served with the
// damaged body, nothing logged); the scrub then finds and quarantines it.
func TestCorruptBodyInOlderSegment(t *testing.T) {
	cfg := testConfig(t, nil)
	sent := fillSegments(t, cfg)
	v := middleOf(t, cfg, sent, 0)
	bad := sent[v].res
	flipByte(t, cfg, bad.PhysicalOffset+bodyAt+3)
	want := without(sent, func(p putRec) bool { return p.res.PhysicalOffset == bad.PhysicalOffset })

	logs := &logBuf{}
	cfg.Logger = testConfig(t, logs).Logger
	cfg.ScrubRate = -1
	s := openStore(t, cfg)
	if strings.Contains(logs.String(), "corrupt commitlog range") {
		t.Fatalf("recovery walked the older segment:\n%s", logs)
	}
	checkServed(t, s, want, 2)
	readLine := fmt.Sprintf("[CORRUPT] commitlog record failed its check on read: not served\" offset=%d size=%d topic=T queueId=%d queueOffset=%d",
		bad.PhysicalOffset, bad.WroteBytes, sent[v].qid, bad.QueueOffset)
	if !strings.Contains(logs.String(), readLine) {
		t.Fatalf("skipped record not logged (%s):\n%s", readLine, logs)
	}
	checkServed(t, s, want, 2)
	if n := strings.Count(logs.String(), "failed its check on read"); n != 1 {
		t.Fatalf("damaged record logged %d times", n)
	}
	if n, _, skipped := s.Corruption(); n != 1 || skipped != 2 {
		t.Fatalf("Corruption() = %d ranges, %d skipped reads; want 1, 2", n, skipped)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The scrub verifies the older segments in the background.
	logs = &logBuf{}
	cfg.Logger = testConfig(t, logs).Logger
	cfg.ScrubRate, cfg.ScrubDelay = 64<<20, time.Millisecond
	s = openStore(t, cfg)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "[SCRUB] commitlog verified") {
		if time.Now().After(deadline) {
			t.Fatalf("scrub did not finish:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkQuarantined(t, cfg, logs, "[CORRUPT]", bad.PhysicalOffset, int64(bad.WroteBytes))
	if s.scrubbed.Load() != s.verifiedFrom || s.verifiedFrom != 3*cfg.SegmentSize {
		t.Fatalf("scrubbed to %d, verified from %d", s.scrubbed.Load(), s.verifiedFrom)
	}
	checkServed(t, s, want, 2)
	if strings.Contains(logs.String(), "failed its check on read") {
		t.Fatalf("read checked a record the scrub had quarantined:\n%s", logs)
	}
}

// TestCorruptWhileRunning flips a body byte of a record in an older segment
// while the store runs: GetMessages does not deliver it (before issue 11 it
// did, with the damaged body) and the store logs it once.
func TestCorruptWhileRunning(t *testing.T) {
	cfg := testConfig(t, nil)
	sent := fillSegments(t, cfg)
	logs := &logBuf{}
	cfg.Logger = testConfig(t, logs).Logger
	cfg.ScrubRate = -1
	s := openStore(t, cfg)
	checkServed(t, s, sent, 2)

	v := middleOf(t, cfg, sent, 1)
	bad := sent[v]
	flipByte(t, cfg, bad.res.PhysicalOffset+bodyAt+7)
	r := s.GetMessages("T", bad.qid, bad.res.QueueOffset, 4, 0, nil, nil, nil)
	recs := records(t, r.Body)
	if r.Status != Found || len(recs) != 4 || recs[0].QueueOffset() != bad.res.QueueOffset+1 {
		t.Fatalf("GetMessages at the damaged record: %v, %d records, first at queue offset %d",
			r.Status, len(recs), recs[0].QueueOffset())
	}
	if !strings.Contains(logs.String(), fmt.Sprintf("failed its check on read: not served\" offset=%d", bad.res.PhysicalOffset)) {
		t.Fatalf("damaged record not logged:\n%s", logs)
	}
	checkServed(t, s, without(sent, func(p putRec) bool { return p.res.PhysicalOffset == bad.res.PhysicalOffset }), 2)
	if _, err := s.ReadRecord(bad.res.PhysicalOffset, nil); err == nil {
		t.Fatal("ReadRecord served the damaged record")
	}
	if n := strings.Count(logs.String(), "failed its check on read"); n != 1 {
		t.Fatalf("damaged record logged %d times", n)
	}
}

// TestMissingLastSegment deletes the last segment: the checkpoint vouches
// for data that is gone, so Open refuses naming the directory (before
// issue 11 it started and silently dropped the queues' units there); with
// AcceptDataLoss it starts, logs what is discarded and serves the rest.
func TestMissingLastSegment(t *testing.T) {
	cfg := testConfig(t, nil)
	sent := fillSegments(t, cfg)
	last := lastSegment(t, cfg)
	if err := os.Remove(last); err != nil {
		t.Fatal(err)
	}
	_, err := Open(cfg)
	if err == nil || !strings.Contains(err.Error(), commitLogDir(cfg)) ||
		!strings.Contains(err.Error(), fmt.Sprintf("the checkpoint says data up to offset %d is durable but the commit log ends at %d",
			sent[len(sent)-1].res.EndOffset, 3*cfg.SegmentSize)) {
		t.Fatalf("Open without the last segment: %v", err)
	}

	logs := &logBuf{}
	cfg.Logger = testConfig(t, logs).Logger
	cfg.AcceptDataLoss = true
	s := openStore(t, cfg)
	if !strings.Contains(logs.String(), "level=WARN msg=\"[RECOVERY] accepting data loss") {
		t.Fatalf("discarded data not logged:\n%s", logs)
	}
	checkQueues(t, s, without(sent, func(p putRec) bool { return p.res.PhysicalOffset >= 3*cfg.SegmentSize }), 2)
}

// TestEmptyCommitLogDir points CommitLogDir at an empty directory, with
// and without a checkpoint: Open refuses naming it (before issue 11 it
// started and dropped every consume queue), and starts with
// AcceptDataLoss.
func TestEmptyCommitLogDir(t *testing.T) {
	for _, haveCk := range []bool{true, false} {
		t.Run(map[bool]string{true: "checkpoint", false: "consume queues only"}[haveCk], func(t *testing.T) {
			cfg := testConfig(t, nil)
			fillSegments(t, cfg)
			if !haveCk {
				if err := os.Remove(checkpointPath(cfg.RootDir)); err != nil {
					t.Fatal(err)
				}
			}
			cfg.CommitLogDir = t.TempDir()
			_, err := Open(cfg)
			if err == nil || !strings.Contains(err.Error(), cfg.CommitLogDir) || !strings.Contains(err.Error(), "refusing to start") {
				t.Fatalf("Open with an empty commit-log dir: %v", err)
			}
			if haveCk && !strings.Contains(err.Error(), "but the commit log ends at 0") ||
				!haveCk && !strings.Contains(err.Error(), "but the commit log is empty") {
				t.Fatalf("error does not say what is missing: %v", err)
			}

			logs := &logBuf{}
			cfg.Logger = testConfig(t, logs).Logger
			cfg.AcceptDataLoss = true
			s := openStore(t, cfg)
			if !strings.Contains(logs.String(), "accepting data loss") {
				t.Fatalf("discarded data not logged:\n%s", logs)
			}
			if ids := s.QueueIDs("T"); len(ids) != 0 {
				t.Fatalf("queues %v kept without their data", ids)
			}
		})
	}
}

// TestFreshStoreOpens: a new directory and one without messages vouch
// for nothing.
func TestFreshStoreOpens(t *testing.T) {
	cfg := testConfig(t, nil)
	s := openStore(t, cfg)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.CommitLogDir = t.TempDir()
	s = openStore(t, cfg)
	mustPut(t, s, msg("T", 0, "first"))
}

// TestRebuildPastDamage removes the consume queues (how operators ask for a
// rebuild from the log) of a store with a damaged record header in an
// older segment, which recovery's walk does not reach: the rebuild checks
// what it re-dispatches, quarantines the record and serves the others
// (before, Open failed: "re-dispatch stopped").
func TestRebuildPastDamage(t *testing.T) {
	cfg := testConfig(t, nil)
	sent := fillSegments(t, cfg)
	v := middleOf(t, cfg, sent, 1)
	bad := sent[v].res
	writeAt(t, cfg, bad.PhysicalOffset+4, []byte{0, 0, 0, 0}) // the magic
	if err := os.RemoveAll(filepath.Join(cfg.RootDir, "consumequeue")); err != nil {
		t.Fatal(err)
	}
	logs := &logBuf{}
	cfg.Logger = testConfig(t, logs).Logger
	s := openStore(t, cfg)
	checkQuarantined(t, cfg, logs, "[RECOVERY]", bad.PhysicalOffset, int64(bad.WroteBytes))
	// The damaged record has no unit now: its queue skips that offset.
	want := without(sent, func(p putRec) bool { return p.res.PhysicalOffset == bad.PhysicalOffset })
	checkServed(t, s, want, 2)
}

// TestCorruptLastRecordKeepsQueueOffset damages the header of the last
// record, below the durable point: its consume-queue unit stays, so the
// next message of that queue does not take the damaged one's queue offset
// (consumers may have read it before the damage).
func TestCorruptLastRecordKeepsQueueOffset(t *testing.T) {
	cfg := testConfig(t, nil)
	sent := fillSegments(t, cfg)
	last := sent[len(sent)-1]
	writeAt(t, cfg, last.res.PhysicalOffset+4, []byte{0, 0, 0, 0}) // the magic

	logs := &logBuf{}
	cfg.Logger = testConfig(t, logs).Logger
	s := openStore(t, cfg)
	checkQuarantined(t, cfg, logs, "[RECOVERY]", last.res.PhysicalOffset, int64(last.res.WroteBytes))
	checkServed(t, s, sent[:len(sent)-1], 2)
	r := mustPut(t, s, msg("T", last.qid, "next"))
	if r.QueueOffset != last.res.QueueOffset+1 || r.PhysicalOffset != last.res.EndOffset {
		t.Fatalf("next put at queue offset %d phys %d; want %d at %d", r.QueueOffset, r.PhysicalOffset,
			last.res.QueueOffset+1, last.res.EndOffset)
	}
}
