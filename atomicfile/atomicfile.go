// Package atomicfile replaces small files so that a crash leaves either the
// old content or the new one, never a torn file. Broker metadata, the name
// server's KV config and saved daemon configs all go through it.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mqops/mqops/fileutil"
)

// Options adjust a Write.
type Options struct {
	// Backup keeps the replaced version as <path>.bak, itself replaced
	// atomically, as RocketMQ keeps its config/*.json.bak copies.
	Backup bool
	// Mode of a new file; an existing file keeps its permissions.
	Mode os.FileMode
}

// Write replaces path with data (fileutil.WriteFile), creating its
// directory if needed. Concurrent writers of one path must be serialised by
// the caller; the last rename wins.
func Write(path string, data []byte, o Options) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	mode := o.Mode
	if mode == 0 {
		mode = 0o644
	}
	if o.Backup {
		// A hard link renamed into place: the .bak is never a torn copy.
		if _, err := os.Stat(path); err == nil {
			_ = os.Remove(path + ".bak.tmp")
			if err := os.Link(path, path+".bak.tmp"); err == nil {
				_ = os.Rename(path+".bak.tmp", path+".bak")
			}
		}
	}
	return fileutil.WriteFile(path, data, mode)
}

// Read reads path, falling back to the .bak copy Write keeps when path is
// missing or empty. It returns nil, nil when neither exists.
func Read(path string) ([]byte, error) {
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

// Load reads path and hands it to parse, falling back to the .bak copy
// Write keeps when path is missing, empty, or refused by parse (a torn or
// damaged file), as RocketMQ's ConfigManager.load falls back to loadBak.
// When the backup was used, fellBack says why path was not (for the
// caller to log); err is set when neither file is usable, naming both.
// Neither file existing is not an error: parse is not called.
func Load(path string, parse func([]byte) error) (fellBack, err error) {
	b, err := os.ReadFile(path)
	absent := false // nothing saved at path: not worth an error on its own
	switch {
	case errors.Is(err, fs.ErrNotExist), err == nil && len(b) == 0:
		absent = true
		fellBack = fmt.Errorf("%s is missing or empty", path)
	case err != nil:
		fellBack = fmt.Errorf("read %s: %w", path, err)
	default:
		if fellBack = parse(b); fellBack == nil {
			return nil, nil
		}
		fellBack = fmt.Errorf("%s: %w", path, fellBack)
	}
	bak := path + ".bak"
	b, err = os.ReadFile(bak)
	switch {
	case errors.Is(err, fs.ErrNotExist), err == nil && len(b) == 0:
		if absent {
			return nil, nil
		}
		return nil, fmt.Errorf("%w, and there is no usable backup %s", fellBack, bak)
	case err != nil:
		return nil, fmt.Errorf("%w, and reading the backup failed: %v", fellBack, err)
	}
	if err := parse(b); err != nil {
		return nil, fmt.Errorf("%w, and the backup is unusable too: %s: %v", fellBack, bak, err)
	}
	return fellBack, nil
}
