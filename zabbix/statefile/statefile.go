// Package statefile keeps the helper's small JSON state files. The Zabbix
// agent may run several checks of the helper at once, so each state file
// is read, updated and replaced under an exclusive lock on a companion
// .lock file, and replaced atomically: a crash leaves the old state or the
// new one, never a mix.
package statefile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mqops/mqops/atomicfile"
	"github.com/mqops/mqops/fileutil"
)

// File is one state file, locked while open.
type File struct {
	path string
	lock *fileutil.Lock
}

// Open creates dir if needed and locks path (waiting for another holder).
func Open(path string) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	l, err := fileutil.LockWait(path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	return &File{path: path, lock: l}, nil
}

// Load decodes the state into v; a missing file leaves v as it is.
func (f *File) Load(v any) error {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read state %s: %w", f.path, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("read state %s: %w (delete it to start over)", f.path, err)
	}
	return nil
}

// Save replaces the state with v.
func (f *File) Save(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode state %s: %w", f.path, err)
	}
	if err := atomicfile.Write(f.path, data, atomicfile.Options{}); err != nil {
		return fmt.Errorf("save state %s: %w", f.path, err)
	}
	return nil
}

// Close releases the lock.
func (f *File) Close() error { return f.lock.Unlock() }
