package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tmpfsDir mounts a tmpfs of size (mount -t tmpfs -o size=...) so disk
// pressure is real: statfs, fallocate and ENOSPC come from the kernel.
func tmpfsDir(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("disk-pressure tests mount a tmpfs and need root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs on %s: %v", dir, err)
	}
	// Registered before the store's Close, so it runs after it.
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// pressureConfig is a store on a 64 MiB tmpfs with 4 MiB segments.
func pressureConfig(t *testing.T, logs *logBuf) Config {
	cfg := testConfig(t, logs)
	cfg.RootDir = filepath.Join(tmpfsDir(t, "64m"), "store")
	cfg.SegmentSize = 4 << 20
	cfg.CQUnitsPerFile = 1000
	cfg.IndexSlots = 1000
	cfg.IndexEntries = 20000
	cfg.DiskMaxUsedSpaceRatio = 95
	return cfg
}

// produceUntilRefused appends messages over queues until refusals appends
// were refused, returning the acknowledged ones.
func produceUntilRefused(t *testing.T, s *Store, queues, refusals int) []putRec {
	t.Helper()
	var acked []putRec
	refused := 0
	for i := 0; refused < refusals; i++ {
		if i > 1e6 {
			t.Fatal("appends never refused")
		}
		m := msg("T", int32(i%queues), bodyOf(i, 1000))
		if r := s.Put(m); r.Status == PutOK {
			acked = append(acked, putRec{m.QueueID, r, string(m.Body)})
		} else {
			refused++
		}
	}
	return acked
}

func usedPercent(t *testing.T, dir string) float64 {
	used, total, err := diskSpace(dir)
	if err != nil {
		t.Fatal(err)
	}
	return percent(used, total)
}

// TestDiskPressureKeepsUnconsumedMessages fills a real tmpfs with
// acknowledged messages nobody consumes, at diskMaxUsedSpaceRatio=95:
// appends must be refused before retention has to delete any of them, and
// the refusals must not log a line each.
func TestDiskPressureKeepsUnconsumedMessages(t *testing.T) {
	logs := &logBuf{}
	cfg := pressureConfig(t, logs)
	s := openStore(t, cfg)
	s.SetConsumedOffsets(func(string, int32) (int64, bool) { return 0, true }) // nobody read anything
	const queues = 4
	acked := produceUntilRefused(t, s, queues, 1000)
	usage := usedPercent(t, cfg.RootDir)
	// What the 10 s retention loop would do next, twice.
	s.RunRetention()
	s.RunRetention()
	acked = append(acked, produceUntilRefused(t, s, queues, 1000)...)
	waitDispatch(t, s)

	lost := 0
	for q := range int32(queues) {
		var want []putRec
		for _, p := range acked {
			if p.qid == q {
				want = append(want, p)
			}
		}
		got := readAll(t, s, "T", q)
		if min := s.MinOffset("T", q); min != 0 || len(got) != len(want) {
			t.Errorf("queue %d: min offset %d, %d of %d acked messages readable", q, min, len(got), len(want))
			lost += len(want) - len(got)
			continue
		}
		for i, v := range got {
			if string(v.Body()) != want[i].body || v.QueueOffset() != want[i].res.QueueOffset {
				t.Fatalf("queue %d offset %d: wrong message", q, i)
			}
		}
	}
	lines := 0
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=ERROR") || strings.Contains(l, "level=WARN") {
			lines++
			t.Log(l)
		}
	}
	t.Logf("%d messages acknowledged, refused at %.1f%% disk usage, %d segments, %d ERROR/WARN lines for 2000 refusals",
		len(acked), usage, len(s.clog.segs), lines)
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged, unconsumed messages deleted", lost, len(acked))
	}
	if lines > 5 {
		t.Fatalf("%d ERROR/WARN lines for 2000 refused appends:\n%s", lines, logs.String())
	}
	if !strings.Contains(logs.String(), "so mark disk full") {
		t.Fatalf("refusal not logged:\n%s", logs.String())
	}
}

// TestDiskPressureReclaimsConsumed: once consumers have read everything,
// the same pressure deletes old segments (regardless of age) and appends
// resume by themselves.
func TestDiskPressureReclaimsConsumed(t *testing.T) {
	logs := &logBuf{}
	cfg := pressureConfig(t, logs)
	s := openStore(t, cfg)
	s.SetConsumedOffsets(func(string, int32) (int64, bool) { return 1 << 40, true }) // all read
	produceUntilRefused(t, s, 4, 1)
	waitFor(t, "appends to resume", func() bool { return s.Put(msg("T", 0, bodyOf(0, 1000))).Status == PutOK })
	if s.MinPhyOffset() == 0 {
		t.Fatal("no segment reclaimed")
	}
	if !strings.Contains(logs.String(), "reason=reclaimed") || strings.Contains(logs.String(), "holding unconsumed") {
		t.Fatalf("reclaim not logged as routine:\n%s", logs.String())
	}
	// It keeps going: a producer far beyond the disk size is never
	// refused for long.
	produceUntilRefused(t, s, 4, 1)
	waitFor(t, "appends to resume again", func() bool { return s.Put(msg("T", 0, bodyOf(0, 1000))).Status == PutOK })
}

// TestDiskPressureFromOtherFiles: when something else fills the disk past
// max(diskMaxUsedSpaceRatio, 90) %, retention deletes the oldest segments
// even though nobody read them, and says so at WARN with the counts.
func TestDiskPressureFromOtherFiles(t *testing.T) {
	logs := &logBuf{}
	cfg := pressureConfig(t, logs)
	s := openStore(t, cfg)
	s.SetConsumedOffsets(func(string, int32) (int64, bool) { return 0, true })
	var acked []putRec
	for i := 0; usedPercent(t, cfg.RootDir) < 40; i++ {
		m := msg("T", int32(i%4), bodyOf(i, 1000))
		acked = append(acked, putRec{m.QueueID, mustPut(t, s, m), string(m.Body)})
	}
	waitDispatch(t, s)
	waitFlushed(t, s)

	used, total, err := diskSpace(cfg.RootDir)
	if err != nil {
		t.Fatal(err)
	}
	filler := int(total*97/100 - used)
	if err := os.WriteFile(filepath.Join(filepath.Dir(cfg.RootDir), "filler"), make([]byte, filler), 0o644); err != nil {
		t.Fatal(err)
	}
	s.RunRetention()
	if s.MinPhyOffset() == 0 {
		t.Fatalf("nothing deleted at %.1f%%", usedPercent(t, cfg.RootDir))
	}
	per := map[int32]int{}
	n := 0
	for _, p := range acked {
		if p.res.PhysicalOffset < cfg.SegmentSize {
			per[p.qid]++
			n++
		}
	}
	want := fmt.Sprintf("unconsumed=%d queues=\"T/0=%d T/1=%d T/2=%d T/3=%d\"", n, per[0], per[1], per[2], per[3])
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "commitlog/00000000000000000000 ") {
			line = l
		}
	}
	if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "deleted a segment holding unconsumed messages") || !strings.Contains(line, want) {
		t.Fatalf("deletion of segment 0 logged as\n%s\nwant WARN with %s\n%s", line, want, logs.String())
	}
	if r := s.Put(msg("T", 0, "x")); r.Status != ServiceNotAvailable {
		t.Fatalf("Put at %.1f%%: %v", usedPercent(t, cfg.RootDir), r.Status)
	}
}

// hideFull makes the usage probe report 10 % until the store is marked
// full, as if the disk filled between a check and the next roll: the
// roll meets the kernel's ENOSPC, later checks see the real usage.
func hideFull(s *Store) {
	s.mu.Lock()
	real := s.diskUsage
	s.diskUsage = func(dir string) (uint64, uint64, error) {
		if s.diskFull.Load() {
			return real(dir)
		}
		return 10 << 30, 100 << 30, nil
	}
	s.mu.Unlock()
}

// TestENOSPCAtRoll: the disk fills between two checks (the usage probe
// reports 10 % while the tmpfs is really full), so the kernel itself
// refuses the next segment with ENOSPC. The append must be refused
// (SERVICE_NOT_AVAILABLE, ErrDiskFull), the store marked full, no segment
// file left behind; after a crash every acknowledged message is intact
// and nothing torn is visible; and appends resume once space returns.
// CleanFileForcibly is off: with it, a disk something else keeps full
// loses its oldest unread segments (TestDiskPressureFromOtherFiles).
func TestENOSPCAtRoll(t *testing.T) {
	logs := &logBuf{}
	cfg := pressureConfig(t, logs)
	cfg.SegmentSize = 1 << 20
	keep := false
	cfg.CleanFileForcibly = &keep
	s := openStore(t, cfg)
	hideFull(s)
	var acked []putRec
	put := func(i int) PutResult {
		m := msg("T", int32(i%4), bodyOf(i, 1000))
		r := s.Put(m)
		if r.Status == PutOK {
			acked = append(acked, putRec{m.QueueID, r, string(m.Body)})
		}
		return r
	}
	i := 0
	for ; s.MaxPhyOffset() < 2*cfg.SegmentSize+cfg.SegmentSize/2; i++ {
		if r := put(i); r.Status != PutOK {
			t.Fatalf("put %d: %v", i, r.Status)
		}
	}
	waitDispatch(t, s)
	ballast := fillDisk(t, filepath.Dir(cfg.RootDir), 16<<10)
	var r PutResult
	for ; ; i++ {
		if i > 1e6 {
			t.Fatal("appends never refused")
		}
		if r = put(i); r.Status != PutOK {
			break
		}
	}
	if r.Status != ServiceNotAvailable || !errors.Is(s.NotWritable(), ErrDiskFull) {
		t.Fatalf("append meeting ENOSPC: %v, NotWritable %v", r.Status, s.NotWritable())
	}
	if !strings.Contains(logs.String(), "no space left for a new commitlog segment, so mark disk full") ||
		!strings.Contains(logs.String(), "no space left on device") {
		t.Fatalf("ENOSPC not logged:\n%s", logs.String())
	}
	if _, err := os.Stat(fileName(s.cfg.CommitLogDir, s.MaxPhyOffset()/cfg.SegmentSize*cfg.SegmentSize+cfg.SegmentSize)); !os.IsNotExist(err) {
		t.Fatalf("failed segment left behind: %v", err)
	}
	// Still refused: no second ENOSPC attempt per send.
	if r := put(i); r.Status != ServiceNotAvailable {
		t.Fatalf("put after ENOSPC: %v", r.Status)
	}
	waitFlushed(t, s)
	s.crashForTest()

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, cfg)
	checkQueues(t, s2, acked, 4)
	for q := range int32(4) {
		if got := len(readAll(t, s2, "T", q)); int64(got) != s2.MaxOffset("T", q) {
			t.Fatalf("queue %d: %d readable of %d", q, got, s2.MaxOffset("T", q))
		}
	}
	mustPut(t, s2, msg("T", 0, bodyOf(i, 1000)))
}

// TestENOSPCResumesWithoutRestart: after ENOSPC at a roll, freeing space
// lets the periodic check mark the disk OK and the roll succeed.
func TestENOSPCResumesWithoutRestart(t *testing.T) {
	logs := &logBuf{}
	cfg := pressureConfig(t, logs)
	cfg.SegmentSize = 1 << 20
	s := openStore(t, cfg)
	mustPut(t, s, msg("T", 0, "first"))
	waitDispatch(t, s)
	ballast := fillDisk(t, filepath.Dir(cfg.RootDir), 16<<10)
	hideFull(s)
	for i := 0; ; i++ {
		if i > 1e5 {
			t.Fatal("appends never refused")
		}
		if s.Put(msg("T", 0, bodyOf(i, 1000))).Status != PutOK {
			break
		}
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	s.RunRetention()
	mustPut(t, s, msg("T", 0, bodyOf(0, 1000)))
	if !strings.Contains(logs.String(), "so mark disk ok") {
		t.Fatalf("recovery not logged:\n%s", logs.String())
	}
}

// TestOpenOnFullDisk: a store opened on a disk already above the warning
// level refuses appends at once, before any retention pass.
func TestOpenOnFullDisk(t *testing.T) {
	logs := &logBuf{}
	cfg := pressureConfig(t, logs)
	cfg.RetentionInterval = time.Hour
	mnt := filepath.Dir(cfg.RootDir)
	used, total, err := diskSpace(mnt)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "filler"), make([]byte, total*93/100-used), 0o644); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, cfg)
	if r := s.Put(msg("T", 0, "x")); r.Status != ServiceNotAvailable || !errors.Is(s.NotWritable(), ErrDiskFull) {
		t.Fatalf("put on a store opened at %.1f%%: %v", usedPercent(t, mnt), r.Status)
	}
	if !strings.Contains(logs.String(), "so mark disk full") {
		t.Fatalf("not logged:\n%s", logs.String())
	}
}
