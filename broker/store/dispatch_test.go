package store

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/fileutil"
	"github.com/mqops/mqops/wire"
	"golang.org/x/sys/unix"
)

// sentMsg is one acknowledged message of a multi-topic fill.
type sentMsg struct {
	topic string
	qid   int32
	res   PutResult
	body  string
}

// fillTopics puts n messages round-robin over topic A (3 queues) and
// topic B (2 queues): A/q gets messages i%5 == q, B/q those with i%5 == 3+q.
func fillTopics(t testing.TB, s *Store, n int) []sentMsg {
	t.Helper()
	out := make([]sentMsg, 0, n)
	for i := range n {
		topic, qid := "A", int32(i%5)
		if qid >= 3 {
			topic, qid = "B", qid-3
		}
		m := msg(topic, qid, bodyOf(i, 60), wire.PropTags, "tag")
		out = append(out, sentMsg{topic, qid, mustPut(t, s, m), string(m.Body)})
	}
	return out
}

// readAt reads the message at m's queue offset: ok when it is m's record,
// wrong when another record is served there.
func readAt(s *Store, m sentMsg) (ok, wrong bool) {
	r := s.GetMessages(m.topic, m.qid, m.res.QueueOffset, 1, 0, nil, nil, nil)
	if r.Status != Found {
		return false, false
	}
	v := wire.RecordView(r.Body)
	if v.PhysicalOffset() == m.res.PhysicalOffset && string(v.Body()) == m.body && string(v.Topic()) == m.topic {
		return true, false
	}
	return false, true
}

// unreadable polls until every message is readable at its queue offset or
// the timeout passes, and returns how many are not (missing) and how many
// have another record served in their place (wrong).
func unreadable(s *Store, sent []sentMsg, timeout time.Duration) (missing, wrong int) {
	deadline := time.Now().Add(timeout)
	left := sent
	for {
		var bad []sentMsg
		missing, wrong = 0, 0
		for _, m := range left {
			ok, w := readAt(s, m)
			if ok {
				continue
			}
			bad = append(bad, m)
			if w {
				wrong++
			} else {
				missing++
			}
		}
		if len(bad) == 0 || time.Now().After(deadline) {
			return missing, wrong
		}
		left = bad
		time.Sleep(20 * time.Millisecond)
	}
}

func ofQueue(sent []sentMsg, topic string, qid int32) []sentMsg {
	var out []sentMsg
	for _, m := range sent {
		if m.topic == topic && m.qid == qid {
			out = append(out, m)
		}
	}
	return out
}

// mountTmpfs mounts a tmpfs of size bytes on a fresh temp dir (root only).
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (mount -t tmpfs)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fillDisk reserves all but leave bytes of dir's file system in a ballast
// file and returns its path.
func fillDisk(t *testing.T, dir string, leave int64) string {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	path := filepath.Join(dir, "ballast")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if free > leave {
		if err := fileutil.Preallocate(f, fi.Size(), free-leave); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// TestDispatchNotBlockedByOneQueue: on a full disk whose active segment is
// still open, topic B's first consume-queue file cannot be created. Topic
// A's messages must keep being dispatched; B resumes once space is freed;
// and a crash while B is blocked recovers B's units.
func TestDispatchNotBlockedByOneQueue(t *testing.T) {
	dir := mountTmpfs(t, 4<<20)
	logs := &logBuf{}
	cfg := testConfig(t, logs)
	cfg.RootDir = dir
	cfg.CQUnitsPerFile = 1000 // 20 000-byte files: more than the space left
	off := false
	cfg.MessageIndexEnable = &off
	open := func() *Store {
		s := openStore(t, cfg)
		// Appends are refused under disk pressure; this test is about the
		// dispatcher with the segment still open, so report a usage below it.
		s.mu.Lock()
		s.diskUsage = func(string) (uint64, uint64, error) { return 50 << 30, 100 << 30, nil }
		s.checkDiskLocked(0) // Open's check saw the real, full disk
		s.mu.Unlock()
		return s
	}
	s := open()
	var sent []sentMsg
	put := func(s *Store, topic string, qid int32, i int) {
		m := msg(topic, qid, bodyOf(i, 60), wire.PropTags, "tag")
		sent = append(sent, sentMsg{topic, qid, mustPut(t, s, m), string(m.Body)})
	}
	put(s, "A", 0, 0)
	waitDispatch(t, s)
	// 12 KiB left: room for the checkpoint and manifest, not for a queue file.
	ballast := fillDisk(t, dir, 12<<10)

	for i := 1; i <= 200; i++ {
		put(s, "B", 0, i)
		put(s, "A", 0, i)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.MaxOffset("A", 0) < 201 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.MaxOffset("A", 0); got != 201 {
		t.Fatalf("with B's queue file uncreatable, A/0 has %d of 201 messages dispatched (all topics stalled)", got)
	}
	if got := s.MaxOffset("B", 0); got != 0 {
		t.Fatalf("B/0 dispatched %d units on a full disk", got)
	}
	if missing, wrong := unreadable(s, ofQueue(sent, "A", 0), 0); missing+wrong != 0 {
		t.Fatalf("A/0: %d unreadable", missing+wrong)
	}
	if c := strings.Count(logs.String(), "consume queue blocked"); c != 1 {
		t.Fatalf("blocked queue logged %d times, want once:\n%s", c, logs)
	}
	if s.DispatchBehind() == 0 {
		t.Fatal("DispatchBehind is 0 while B's units are missing")
	}

	// Space comes back: B catches up.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	waitDispatch(t, s)
	if missing, wrong := unreadable(s, sent, 0); missing+wrong != 0 {
		t.Fatalf("after space was freed %d unreadable", missing+wrong)
	}
	if !strings.Contains(logs.String(), "consume queue resumed") {
		t.Fatalf("resume not logged:\n%s", logs)
	}

	// Full again; B/1 is blocked, and the broker is killed.
	ballast = fillDisk(t, dir, 12<<10)
	for i := 201; i <= 300; i++ {
		put(s, "B", 1, i)
		put(s, "A", 0, i)
	}
	deadline = time.Now().Add(5 * time.Second)
	for s.MaxOffset("A", 0) < 301 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.MaxOffset("A", 0); got != 301 {
		t.Fatalf("A/0 has %d of 301 messages dispatched while B/1 is blocked", got)
	}
	if err := s.flushConsumeQueues(); err != nil {
		t.Fatal(err)
	}
	s.crashForTest()

	// Restart on the still-full disk: it opens, A is served, B/1 waits.
	s2 := open()
	if got := s2.MaxOffset("A", 0); got != 301 {
		t.Fatalf("after the crash A/0 has %d of 301", got)
	}
	if got := s2.MaxOffset("B", 1); got != 0 {
		t.Fatalf("after the crash B/1 has %d units on a full disk", got)
	}
	// Appends to the blocked queue take the next offset, not a used one.
	m := msg("B", 1, "after-crash")
	r := mustPut(t, s2, m)
	if r.QueueOffset != 100 {
		t.Fatalf("put to blocked B/1 after the crash at queue offset %d, want 100", r.QueueOffset)
	}
	sent = append(sent, sentMsg{"B", 1, r, string(m.Body)})
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	waitDispatch(t, s2)
	if missing, wrong := unreadable(s2, sent, 0); missing+wrong != 0 {
		t.Fatalf("after the crash and freeing space: %d unreadable", missing+wrong)
	}
}

// PutDispatch writes the consume-queue unit before it returns, on the
// caller's goroutine, so no dispatcher wake-up is needed per send; while a
// pass holds the dispatcher's lock it leaves the record to the dispatcher.
func TestPutDispatchInline(t *testing.T) {
	s := openStore(t, testConfig(t, nil))
	for i := range 50 {
		r := s.PutDispatch(msg("T", int32(i%2), bodyOf(i, 100)))
		if r.Status != PutOK {
			t.Fatalf("PutDispatch %d: %v", i, r.Status)
		}
		if behind := s.DispatchBehind(); behind != 0 {
			t.Fatalf("message %d: %d bytes undispatched when PutDispatch returned", i, behind)
		}
		got := s.GetMessages("T", int32(i%2), r.QueueOffset, 1, 0, nil, nil, nil)
		if got.Status != Found {
			t.Fatalf("message %d not readable at queue offset %d: %v", i, r.QueueOffset, got.Status)
		}
	}

	s.dispMu.Lock() // a pass in progress
	r := s.PutDispatch(msg("T", 0, "during a pass"))
	s.dispMu.Unlock()
	if r.Status != PutOK {
		t.Fatalf("PutDispatch: %v", r.Status)
	}
	waitDispatch(t, s)
	if got := s.GetMessages("T", 0, r.QueueOffset, 1, 0, nil, nil, nil); got.Status != Found {
		t.Fatalf("message put during a pass not dispatched: %v", got.Status)
	}
}
