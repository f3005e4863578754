package logtail

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/logging"
)

// run is one run of the helper: open the Tailer from its state file, read
// until nothing is left, commit. It returns the lines and the merged
// result.
func run(t *testing.T, path string, o Options) ([]string, Result) {
	t.Helper()
	tl, err := Open(path, filepath.Join(filepath.Dir(path), "state", filepath.Base(path)+".json"), o)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	var all Result
	for {
		res, err := tl.Next(func(l []byte) { lines = append(lines, string(l)) })
		if err != nil {
			t.Fatal(err)
		}
		all.Lines += res.Lines
		all.Rotated = all.Rotated || res.Rotated
		all.Lost = all.Lost || res.Lost
		all.Skipped += res.Skipped
		if err := tl.Commit(); err != nil {
			t.Fatal(err)
		}
		if !res.More {
			return lines, all
		}
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func expect(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("lines %q, want %q", got, want)
	}
}

func TestWholeLinesAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.log")
	lines, _ := run(t, path, Options{}) // no file yet: nothing, no error
	expect(t, lines)

	appendFile(t, path, "one\ntwo\nthr")
	lines, _ = run(t, path, Options{})
	expect(t, lines, "one", "two")
	lines, _ = run(t, path, Options{}) // the partial line waits
	expect(t, lines)
	appendFile(t, path, "ee\n\nfour\n")
	lines, res := run(t, path, Options{})
	expect(t, lines, "three", "", "four")
	if res.Rotated || res.Lost || res.Skipped != 0 {
		t.Errorf("result %+v", res)
	}
	lines, _ = run(t, path, Options{})
	expect(t, lines)
}

func TestNextWithoutCommitRereads(t *testing.T) {
	dir := t.TempDir()
	path, state := filepath.Join(dir, "stats.log"), filepath.Join(dir, "stats.state")
	appendFile(t, path, "a\nb\n")
	for range 2 {
		tl, err := Open(path, state, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		if _, err := tl.Next(func(l []byte) { got = append(got, string(l)) }); err != nil {
			t.Fatal(err)
		}
		expect(t, got, "a", "b")
	}
}

func TestStateOfAnotherLogRefused(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	appendFile(t, filepath.Join(dir, "a.log"), "x\n")
	tl, err := Open(filepath.Join(dir, "a.log"), state, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tl.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(dir, "b.log"), state, Options{}); err == nil {
		t.Error("state of a.log accepted for b.log")
	}
}

func TestRenameRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "broker.log")
	appendFile(t, path, "1\n2\n")
	lines, _ := run(t, path, Options{})
	expect(t, lines, "1", "2")

	// Written after the last read, then rotated twice before the next.
	appendFile(t, path, "3\n")
	if err := os.Rename(path, path+".2026-11-21.1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "4\n")
	if err := os.Rename(path, path+".2026-11-21.2"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "5\n6")
	// Older and unrelated files are not read.
	appendFile(t, path+".2026-11-20.1", "old\n")
	appendFile(t, filepath.Join(dir, "broker.log.bak"), "bak\n")

	lines, res := run(t, path, Options{})
	expect(t, lines, "3", "4", "5")
	if !res.Rotated || res.Lost {
		t.Errorf("result %+v", res)
	}
	appendFile(t, path, "\n")
	lines, _ = run(t, path, Options{})
	expect(t, lines, "6")
}

func TestRotatedFileTornEndSkipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.log")
	appendFile(t, path, "a\n")
	run(t, path, Options{})
	appendFile(t, path, "b\ntorn by a crash")
	if err := os.Rename(path, path+".2026-11-21.1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "c\n")
	lines, res := run(t, path, Options{})
	expect(t, lines, "b", "c")
	if res.Skipped != int64(len("torn by a crash")) {
		t.Errorf("skipped %d", res.Skipped)
	}
}

func TestTruncation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.log")
	appendFile(t, path, "2026-11-21 10:00:00.000 +0800 INFO  [broker] first\n")
	run(t, path, Options{})

	// copy-truncate: shorter than the offset.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "short\n")
	lines, _ := run(t, path, Options{})
	expect(t, lines, "short")

	// Truncated and refilled past the old offset before the next read:
	// the first bytes differ.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "refilled\nwith more than before\n")
	lines, _ = run(t, path, Options{})
	expect(t, lines, "refilled", "with more than before")
}

func TestReplacedWithOldFileGone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.log")
	appendFile(t, path, "a\n")
	run(t, path, Options{})
	appendFile(t, path, "unread\n")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	lines, res := run(t, path, Options{}) // missing: nothing, no error
	expect(t, lines)
	if res.Lost || res.Rotated {
		t.Errorf("missing file: %+v", res)
	}
	appendFile(t, path, "new\n")
	lines, res = run(t, path, Options{})
	expect(t, lines, "new")
	if !res.Lost || !res.Rotated {
		t.Errorf("replaced file: %+v", res)
	}
}

func TestBoundedReads(t *testing.T) {
	dir := t.TempDir()
	path, state := filepath.Join(dir, "stats.log"), filepath.Join(dir, "state.json")
	var want []string
	var text strings.Builder
	for i := range 100 {
		want = append(want, fmt.Sprintf("line %03d", i)) // 9 bytes with '\n'
		text.WriteString(want[i] + "\n")
	}
	appendFile(t, path, text.String())
	tl, err := Open(path, state, Options{MaxBytes: 40})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	calls := 0
	for more := true; more; calls++ {
		res, err := tl.Next(func(l []byte) { got = append(got, string(l)) })
		if err != nil {
			t.Fatal(err)
		}
		if res.Lines > 4 {
			t.Fatalf("%d lines from 40 bytes", res.Lines)
		}
		more = res.More
	}
	expect(t, got, want...)
	if calls < 900/40 {
		t.Errorf("%d calls", calls)
	}

	// A line longer than MaxBytes is dropped, whatever its length.
	appendFile(t, path, strings.Repeat("x", 100)+"\nafter\n"+strings.Repeat("y", 40)+"\nlast\n")
	got = nil
	var skipped int64
	for more := true; more; {
		res, err := tl.Next(func(l []byte) { got = append(got, string(l)) })
		if err != nil {
			t.Fatal(err)
		}
		skipped += res.Skipped
		more = res.More
	}
	expect(t, got, "after", "last")
	if skipped != 100+1+40+1 {
		t.Errorf("skipped %d", skipped)
	}
}

// TestRestartRotationOfLoggingPackage drives the broker's own rotation: a
// log last written on an earlier day is moved aside by the first write
// after the logger is opened again.
func TestRestartRotationOfLoggingPackage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "broker.log")
	log, closer, err := logging.Open(dir, "broker.log", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("[TOPIC_CREATE] first")
	lines, _ := run(t, path, Options{})
	if len(lines) != 1 || !strings.HasSuffix(lines[0], "[broker] [TOPIC_CREATE] first") {
		t.Fatalf("lines %q", lines)
	}
	log.Warn("[REGISTER_FAILED] unread at rotation")
	closer.Close()
	yesterday := time.Now().AddDate(0, 0, -1)
	if err := os.Chtimes(path, yesterday, yesterday); err != nil {
		t.Fatal(err)
	}

	log, closer, err = logging.Open(dir, "broker.log", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	log.Info("after restart")
	if _, err := os.Stat(path + "." + yesterday.Format("2006-01-02") + ".1"); err != nil {
		t.Fatalf("the logging package did not rotate as expected: %v", err)
	}
	lines, res := run(t, path, Options{})
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "[REGISTER_FAILED] unread at rotation") || !strings.HasSuffix(lines[1], "after restart") {
		t.Fatalf("lines %q", lines)
	}
	if !res.Rotated || res.Lost {
		t.Errorf("result %+v", res)
	}
}

// TestSizeRotationOfLoggingPackage writes stats.log past the 128 MiB the
// logging package rotates at, reading while it writes: every line comes
// out once, in order.
func TestSizeRotationOfLoggingPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 130 MiB")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "stats.log")
	w, err := logging.OpenWriter(dir, "stats.log")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const lineLen, perWrite = 1024, 256 // a write is 256 whole lines, as a stats minute is
	next, seen := 0, 0
	check := func(l []byte) {
		if want := fmt.Sprintf("%09d", seen); len(l) != lineLen-1 || string(l[:9]) != want {
			t.Fatalf("line %q…, want %s", l[:min(len(l), 9)], want)
		}
		seen++
	}
	tl, err := Open(path, filepath.Join(dir, "state.json"), Options{MaxBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, lineLen*perWrite)
	rotated := false
	for written := 0; written < 130<<20; written += len(buf) {
		buf = buf[:0]
		for range perWrite {
			buf = fmt.Appendf(buf, "%09d", next)
			buf = append(buf, strings.Repeat("s", lineLen-10)...)
			buf = append(buf, '\n')
			next++
		}
		if _, err := w.Write(buf); err != nil {
			t.Fatal(err)
		}
		if next%(perWrite*40) == 0 { // read every 10 MiB, as a helper would every minute
			for more := true; more; {
				res, err := tl.Next(check)
				if err != nil {
					t.Fatal(err)
				}
				rotated = rotated || res.Rotated
				more = res.More
			}
		}
	}
	for more := true; more; {
		res, err := tl.Next(check)
		if err != nil {
			t.Fatal(err)
		}
		rotated = rotated || res.Rotated
		more = res.More
	}
	if seen != next || !rotated {
		t.Errorf("read %d of %d lines, rotated %v", seen, next, rotated)
	}
	if _, err := os.Stat(path + "." + time.Now().Format("2006-01-02") + ".1"); err != nil {
		t.Errorf("the logging package did not rotate as expected: %v", err)
	}
}
