// Package meta holds the broker's persisted metadata: topic configs,
// subscription groups and committed consumer offsets. Each table is written as
// one JSON file with RocketMQ's name and shape under <store>/config/.
package meta

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// persister writes one table's file. Writes are serialised and each one
// encodes the table's state at the time it runs, so a slow writer can
// never rename an older snapshot over a newer one.
type persister struct {
	mu   sync.Mutex
	path string
}

func (p *persister) persist(encode func() []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return writeFileAtomic(p.path, encode())
}

// writeFileAtomic replaces path with data so that a crash leaves either the
// old or the new content, never a torn file: write a temp file, fsync it,
// keep the previous version as .bak, rename, fsync the directory. Callers
// serialise writes to one path.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", tmp, werr)
	}
	// The previous version becomes the .bak by a hard link swap, so the
	// .bak is never a torn copy either.
	if _, err := os.Stat(path); err == nil {
		_ = os.Remove(path + ".bak.tmp")
		if err := os.Link(path, path+".bak.tmp"); err == nil {
			_ = os.Rename(path+".bak.tmp", path+".bak")
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// readFileOrBak reads path, falling back to its .bak copy when path is
// missing or empty. It returns nil, nil when neither exists.
func readFileOrBak(path string) ([]byte, error) {
	for _, p := range []string{path, path + ".bak"} {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		if len(b) > 0 {
			return b, nil
		}
	}
	return nil, nil
}
