package logging

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLineFormat(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs") // created by Open
	log, c, err := Open(dir, "broker.log", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("hello", "topic", "TopicTest", "n", 3, "q", "a b", "empty", "", "err", errors.New("disk full"))
	log.With(TagKey, "HAService").Warn("slave fell behind", "bytes", int64(1<<20))
	log.WithGroup("req").Error("bad request", "code", 25, TagKey, "not a tag inside a group")
	log.With("broker", "broker-a").Info("registered", slog.Group("ns", "addr", "127.0.0.1:9876"))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(read(t, filepath.Join(dir, "broker.log")), "\n"), "\n")
	stamp := `\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d{4} `
	want := []string{
		`INFO  \[broker\] hello topic=TopicTest n=3 q="a b" empty="" err="disk full"`,
		`WARN  \[HAService\] slave fell behind bytes=1048576`,
		`ERROR \[broker\] bad request req.code=25 req.tag="not a tag inside a group"`,
		`INFO  \[broker\] registered broker=broker-a ns.addr=127.0.0.1:9876`,
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for i, w := range want {
		if !regexp.MustCompile("^" + stamp + w + "$").MatchString(lines[i]) {
			t.Errorf("line %d:\n got %s\nwant %s", i, lines[i], w)
		}
	}
	// The stamp is local time with its offset.
	if _, err := time.ParseInLocation("2006-01-02 15:04:05.000 -0700", lines[0][:29], time.Local); err != nil {
		t.Errorf("stamp: %v", err)
	}
	log.Info("after close") // must not panic
}

func TestOpenRejects(t *testing.T) {
	for _, c := range []struct{ dir, name string }{{"", "broker.log"}, {t.TempDir(), ""}, {t.TempDir(), "../broker.log"}} {
		if _, _, err := Open(c.dir, c.name, slog.LevelInfo); err == nil {
			t.Errorf("Open(%q, %q): no error", c.dir, c.name)
		}
	}
}

func TestWithStderr(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = f
	opt := WithStderr()
	os.Stderr = saved

	dir := t.TempDir()
	log, c, err := Open(dir, "namesrv.log", slog.LevelInfo, opt)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("boot success")
	c.Close()
	f.Close()
	if got, file := read(t, f.Name()), read(t, filepath.Join(dir, "namesrv.log")); got != file || !strings.Contains(got, "[namesrv] boot success") {
		t.Errorf("stderr %q, file %q", got, file)
	}
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestRotateBySize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "store.log")
	clk := &clock{t: time.Date(2026, 11, 21, 10, 0, 0, 0, time.Local)}
	r, err := newRotator(path, 100, 3, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for i := range 20 {
		line := fmt.Sprintf("line %02d %s\n", i, strings.Repeat("x", 21)) // 30 bytes: 3 per file
		all = append(all, line)
		if _, err := r.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	want := []string{"store.log", "store.log.2026-11-21.4", "store.log.2026-11-21.5", "store.log.2026-11-21.6"}
	if got := files(t, dir); !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	// The kept files hold the newest lines, in order, none over the limit.
	var kept strings.Builder
	for _, name := range want[1:] {
		text := read(t, filepath.Join(dir, name))
		if len(text) > 100 {
			t.Errorf("%s has %d bytes", name, len(text))
		}
		kept.WriteString(text)
	}
	kept.WriteString(read(t, path))
	if got, want := kept.String(), strings.Join(all[9:], ""); got != want {
		t.Errorf("kept lines:\n%s\nwant:\n%s", got, want)
	}
	if _, err := r.Write([]byte("late\n")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
}

func TestRotateByDay(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "broker.log")
	clk := &clock{t: time.Date(2026, 11, 21, 23, 59, 59, 0, time.Local)}
	r, err := newRotator(path, 1<<20, 10, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	r.Write([]byte("saturday\n"))
	clk.set(time.Date(2026, 11, 22, 0, 0, 1, 0, time.Local))
	r.Write([]byte("sunday\n"))
	clk.set(time.Date(2026, 11, 24, 8, 0, 0, 0, time.Local)) // a quiet day in between
	r.Write([]byte("tuesday\n"))
	r.Close()
	if got, want := files(t, dir), []string{"broker.log", "broker.log.2026-11-21.1", "broker.log.2026-11-22.1"}; !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	for name, want := range map[string]string{"broker.log.2026-11-21.1": "saturday\n", "broker.log.2026-11-22.1": "sunday\n", "broker.log": "tuesday\n"} {
		if got := read(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}

	// A restart on a later day moves the old file aside under its own day,
	// after the numbers already used for that day.
	if err := os.WriteFile(path+".2026-11-24.1", []byte("earlier\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tuesday := time.Date(2026, 11, 24, 8, 0, 0, 0, time.Local)
	if err := os.Chtimes(path, tuesday, tuesday); err != nil {
		t.Fatal(err)
	}
	clk.set(time.Date(2026, 11, 25, 9, 0, 0, 0, time.Local))
	r, err = newRotator(path, 1<<20, 10, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	r.Write([]byte("wednesday\n"))
	r.Close()
	if got := read(t, path+".2026-11-24.2"); got != "tuesday\n" {
		t.Errorf("restart rotation: %q", got)
	}
	if got := read(t, path); got != "wednesday\n" {
		t.Errorf("current: %q", got)
	}
}

func TestBackupsIgnoresOtherFiles(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"store.log.2026-11-21.1", "store.log.2026-11-21.10", "store.log.2026-11-21.2",
		"store.log.bak", "store.log.2026-13-01.1", "store.log.2026-11-21.x", "storeerror.log.2026-11-21.1"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, p := range Rotated(filepath.Join(dir, "store.log")) {
		got = append(got, filepath.Base(p))
	}
	if want := []string{"store.log.2026-11-21.1", "store.log.2026-11-21.2", "store.log.2026-11-21.10"}; !slices.Equal(got, want) {
		t.Errorf("backups %v, want %v", got, want)
	}
}

func TestConcurrentLinesStayWhole(t *testing.T) {
	dir := t.TempDir()
	log, c, err := Open(dir, "broker.log", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				log.Info("msg", "g", g, "i", i, "pad", strings.Repeat("p", 100))
			}
		})
	}
	wg.Wait()
	c.Close()
	lines := strings.Split(strings.TrimSuffix(read(t, filepath.Join(dir, "broker.log")), "\n"), "\n")
	if len(lines) != 1600 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, strings.Repeat("p", 100)) || !strings.Contains(l, "INFO  [broker] msg g=") {
			t.Fatalf("torn line %q", l)
		}
	}
}

func TestWithCopy(t *testing.T) {
	dir := t.TempDir()
	log, closer, err := Open(dir, "store.log", slog.LevelInfo, WithCopy("storeerror.log", slog.LevelWarn))
	if err != nil {
		t.Fatal(err)
	}
	log.Info("routine")
	log.With("k", "v").Warn("[DISK_FULL] disk full")
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}
	all, _ := os.ReadFile(filepath.Join(dir, "store.log"))
	errs, _ := os.ReadFile(filepath.Join(dir, "storeerror.log"))
	if !strings.Contains(string(all), "routine") || !strings.Contains(string(all), "[DISK_FULL]") {
		t.Fatalf("store.log:\n%s", all)
	}
	if strings.Contains(string(errs), "routine") || !strings.Contains(string(errs), "[store] [DISK_FULL] disk full k=v") {
		t.Fatalf("storeerror.log:\n%s", errs)
	}
}
