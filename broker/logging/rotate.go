package logging

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const dayLayout = "2006-01-02"

// rotator is an append-only file that moves itself aside to
// path.yyyy-MM-dd.N when its day ends or it would pass maxSize, and keeps
// only the maxFiles newest of those.
type rotator struct {
	path     string
	maxSize  int64
	maxFiles int
	now      func() time.Time // injectable for tests

	mu   sync.Mutex
	f    *os.File // nil once closed
	size int64
	day  string // the day the current file's lines were written
}

func newRotator(path string, maxSize int64, maxFiles int, now func() time.Time) (*rotator, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open log: %w", err)
	}
	r := &rotator{path: path, maxSize: maxSize, maxFiles: maxFiles, now: now, f: f, size: fi.Size()}
	// A file left by an earlier run belongs to the day it was last written.
	r.day = now().Format(dayLayout)
	if r.size > 0 {
		r.day = fi.ModTime().In(now().Location()).Format(dayLayout)
	}
	return r, nil
}

func (r *rotator) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, os.ErrClosed
	}
	today := r.now().Format(dayLayout)
	if r.size > 0 && (today != r.day || r.size+int64(len(p)) > r.maxSize) {
		// On failure keep appending to the current file: losing lines is
		// worse than an oversized file. The next write tries again.
		_ = r.rotate()
	}
	r.day = today
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

// Close closes the file; later writes fail with os.ErrClosed.
func (r *rotator) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

func (r *rotator) rotate() error {
	n := 1
	for _, b := range backups(r.path) {
		if b.day == r.day {
			n = max(n, b.n+1)
		}
	}
	if err := os.Rename(r.path, fmt.Sprintf("%s.%s.%d", r.path, r.day, n)); err != nil {
		return err
	}
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err // still writing to the renamed file; better than nothing
	}
	r.f.Close()
	r.f, r.size = f, 0
	r.prune()
	return nil
}

// prune removes all but the maxFiles newest rotated files.
func (r *rotator) prune() {
	bs := backups(r.path)
	for len(bs) > r.maxFiles {
		os.Remove(filepath.Join(filepath.Dir(r.path), bs[0].name))
		bs = bs[1:]
	}
}

type backup struct {
	name string
	day  string
	n    int
}

// Rotated lists the paths of the rotated files of the log at path
// (<path>.<yyyy-MM-dd>.<N>), oldest first: the order they were rotated in.
// Readers that follow a log across rotation (the Zabbix helper) use it.
func Rotated(path string) []string {
	bs := backups(path)
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = filepath.Join(filepath.Dir(path), b.name)
	}
	return out
}

// backups lists the rotated files of the log at path, oldest first.
func backups(path string) []backup {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return nil
	}
	prefix := filepath.Base(path) + "."
	var bs []backup
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		day, num, ok := strings.Cut(rest, ".")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(num)
		if _, derr := time.Parse(dayLayout, day); err != nil || derr != nil || n < 1 {
			continue
		}
		bs = append(bs, backup{name: e.Name(), day: day, n: n})
	}
	slices.SortFunc(bs, func(a, b backup) int {
		return cmp.Or(strings.Compare(a.day, b.day), cmp.Compare(a.n, b.n))
	})
	return bs
}
