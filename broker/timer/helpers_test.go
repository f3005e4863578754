package timer

import (
	"bytes"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// base is the fake clock's start, Unix ms on a second boundary.
const base = int64(1_700_000_000_000)

// logBuf collects log output for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openWheel opens o (Dir defaults to a fresh temp dir) and closes the
// wheel when the test ends unless the test closed it.
func openWheel(t testing.TB, o Options) *Wheel {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	w, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func mustAdd(t testing.TB, w *Wheel, e Entry, source int64) {
	t.Helper()
	if err := w.Add(e, source); err != nil {
		t.Fatal(err)
	}
}

// delivery is an entry handed to fn and the fake time it was handed at.
type delivery struct {
	e   Entry
	now int64
}

// recorder collects deliveries and checks that no entry comes early and
// that seconds come in order.
type recorder struct {
	t         testing.TB
	got       []delivery
	unordered bool // entries are added late, after their second was processed
	last      int64
}

func (r *recorder) due(w *Wheel, now int64) {
	r.t.Helper()
	err := w.Due(now, func(e Entry) error {
		if e.DeliverMs > now {
			r.t.Errorf("entry %+v delivered early at %d", e, now)
		}
		if d := dueSecond(e.DeliverMs); d < r.last && !r.unordered {
			r.t.Errorf("entry %+v (second %d) delivered after second %d", e, d, r.last)
		} else {
			r.last = d
		}
		r.got = append(r.got, delivery{e, now})
		return nil
	})
	if err != nil {
		r.t.Fatal(err)
	}
}

// byPhys counts deliveries per Phys (the tests' entry identity).
func (r *recorder) byPhys() map[int64]int {
	m := make(map[int64]int)
	for _, d := range r.got {
		m[d.e.Phys]++
	}
	return m
}

// ceilMs is the earliest fake time at which Due may deliver an entry due
// at ms: the start of its due second.
func ceilMs(ms int64) int64 { return dueSecond(ms) * 1000 }

// copyDir copies a wheel directory as a killed process would leave it:
// whatever reached the files (mapped log pages included), no lock.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if d.Name() == "lock" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "log", "[0-9]*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}
