package logcount

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyLogs copies the named logs of a testdata directory into a new
// directory and returns it.
func copyLogs(t *testing.T, from string, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range names {
		data, err := os.ReadFile(filepath.Join(from, f+".log"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f+".log"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// capturedLines returns the records of a captured log that contain all
// of the given fragments.
func capturedLines(t *testing.T, path string, fragments ...string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
lines:
	for sc.Scan() {
		for _, fr := range fragments {
			if !strings.Contains(sc.Text(), fr) {
				continue lines
			}
		}
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s has no line with %q", path, fragments)
	}
	return out
}

// TestCapturedLogs counts the logs captured from a real broker and name
// server run; the expected numbers were taken with grep from the files.
func TestCapturedLogs(t *testing.T) {
	dir := copyLogs(t, filepath.Join("..", "logparse", "testdata"), Files...)
	state := filepath.Join(t.TempDir(), "logs.json")
	c, err := Update(dir, state)
	if err != nil {
		t.Fatal(err)
	}
	b := c.Files["broker"]
	if !b.Present || b.Lines != 12 || b.Warn != 5 || b.Error != 0 {
		t.Errorf("broker.log: %+v", b)
	}
	if b.Tags["PERMISSION_CHANGED"] != 2 || b.Tags["CONFIG_UPDATE"] != 3 || b.Tags["TOPIC_CREATE"] != 2 {
		t.Errorf("broker.log tags: %v", b.Tags)
	}
	if c.RegisterFailed != 1 || c.DiskFull != 0 || c.Panics != 0 || c.StoreErrors != 1 {
		t.Errorf("totals: %+v", c)
	}

	// A second call reads nothing new: totals stay.
	again, err := Update(dir, state)
	if err != nil {
		t.Fatal(err)
	}
	if again.RegisterFailed != 1 || again.Files["broker"].Lines != 12 {
		t.Errorf("second call changed the totals: %+v", again)
	}

	// A disk-full episode as the real broker logs it (e2e
	// TestDiskPressureKeepsUnreadMessages, in testdata/faults): the
	// refusal, one reminder for the sends refused since, the consume queue
	// that could not get its file, and the INFO record saying the disk is
	// fine again. diskFull counts the refusal and the reminder; the blocked
	// queue is an event of its own, and the INFO record is no problem.
	faults := filepath.Join("..", "logparse", "testdata", "faults", "store.log")
	var add []string
	add = append(add, capturedLines(t, faults, "ERROR [store] [DISK_FULL] refusing appends")[0])
	add = append(add, capturedLines(t, faults, "ERROR [store] [DISK_FULL] appends refused refusedSinceLastLog=")[0])
	add = append(add, capturedLines(t, faults, "ERROR [store] [DISK_FULL] consume queue blocked")[0])
	add = append(add, capturedLines(t, faults, "INFO  [store] [DISK_FULL] disk usage back below the limit")[0])
	f, err := os.OpenFile(filepath.Join(dir, "store.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(strings.Join(add, "\n") + "\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	c, err = Update(dir, state)
	if err != nil {
		t.Fatal(err)
	}
	if c.DiskFull != 2 || c.QueueBlocked != 1 || c.Files["store"].Tags["DISK_FULL"] != 4 || c.Errors != 3 {
		t.Errorf("after a disk-full episode: diskFull=%d cqBlocked=%d tags=%v errors=%d, want 2, 1, DISK_FULL:4, 3",
			c.DiskFull, c.QueueBlocked, c.Files["store"].Tags, c.Errors)
	}
}

// TestStoreFaults counts the store's fault records captured from real runs
// (testdata/faults: a full disk, a failed fsync, corrupt records,
// damaged consume queues); the expected numbers were taken with grep.
func TestStoreFaults(t *testing.T) {
	dir := copyLogs(t, filepath.Join("..", "logparse", "testdata", "faults"), "store", "storeerror")
	c, err := Update(dir, filepath.Join(t.TempDir(), "logs.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Files["store"]
	if !s.Present || s.Lines != 59 || s.Error != 14 || s.Warn != 15 {
		t.Errorf("store.log: lines=%d error=%d warn=%d, want 59, 14, 15", s.Lines, s.Error, s.Warn)
	}
	got := map[string]int64{
		"diskFull": c.DiskFull, "cqBlocked": c.QueueBlocked, "fsyncFailed": c.FsyncFailed, "corruption": c.Corruption,
		"cqRebuilt": c.QueueRebuilt, "unreadDeleted": c.UnreadDeleted, "unreadMessagesDeleted": c.UnreadMessagesDeleted,
		"retentionBlocked": c.RetentionBlocked, "storeErrors": c.StoreErrors, "errors": c.Errors, "warnings": c.Warnings,
	}
	want := map[string]int64{
		// grep -c 'refusing appends\|appends refused' store.log
		"diskFull": 6,
		// grep -c 'consume queue blocked'
		"cqBlocked": 3,
		// grep -c '\[FLUSH\] fsync failed'
		"fsyncFailed": 1,
		// grep -c '\[CORRUPT\]\|\[RECOVERY\] corrupt commitlog range'
		"corruption": 3,
		// grep -c 'rebuilt consume queue'
		"cqRebuilt": 6,
		// grep -c 'holding unconsumed'; its unconsumed=3840
		"unreadDeleted": 1, "unreadMessagesDeleted": 3840,
		// grep -c 'oldest segment holds unconsumed'
		"retentionBlocked": 3,
		// WARN and ERROR records: once in store.log, again in storeerror.log.
		"storeErrors": 29, "errors": 28, "warnings": 30,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %d, want %d", k, got[k], w)
		}
	}
}

// TestEventWordingsInSource fails when broker/store or broker/server no
// longer words an event the way storeEvents expects, so that a reworded
// message cannot silently stop an alert.
func TestEventWordingsInSource(t *testing.T) {
	var src strings.Builder
	for _, dir := range []string{"store", "server"} {
		files, err := filepath.Glob(filepath.Join("..", "..", "broker", dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("broker/%s sources: %v", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			src.Write(b)
		}
	}
	code := src.String()
	for _, e := range storeEvents {
		if e.legacy {
			continue
		}
		// "[TAG] prefix…" in one literal, or the tag passed apart and
		// tag+" prefix…" (quarantine, logRebuild).
		whole := `"[` + e.tag + `] ` + e.prefix
		apart := strings.Contains(code, `"[`+e.tag+`]"`) && strings.Contains(code, `" `+e.prefix)
		if e.prefix == "" {
			whole = `"[` + e.tag + `]`
		}
		if !strings.Contains(code, whole) && !apart {
			t.Errorf("broker/store and broker/server no longer log [%s] %q (event %s)", e.tag, e.prefix, e.event)
		}
	}
}
