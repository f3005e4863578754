// Package fileutil holds the file-system primitives the broker's durable
// state is built on: directory fsync, exclusive locks, preallocated shared
// mappings and atomic replacement of small files. The commit log, consume
// queues, key index, timer wheel, checkpoints and atomicfile all use these,
// so the rules below are stated once:
//
//   - A created, renamed or removed file is durable only after its
//     directory is fsynced (SyncDir).
//   - Blocks behind a shared mapping are reserved before the mapping is
//     written (Preallocate): a store into an unallocated block of a full
//     disk raises SIGBUS instead of returning an error.
//   - With MAP_SHARED, Linux keeps mapped pages in the page cache, so
//     fdatasync on the file makes them durable like msync does.
package fileutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// SyncDir makes entries created, renamed or removed in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// Fdatasync flushes f's data (and the metadata needed to read it back).
func Fdatasync(f *os.File) error {
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return fmt.Errorf("fdatasync %s: %w", f.Name(), err)
	}
	return nil
}

// Lock is an exclusive flock held on a file until Unlock.
type Lock struct{ f *os.File }

// ErrLocked is returned (wrapped) by TryLock when another holder has the lock.
var ErrLocked = errors.New("locked by another process")

// TryLock takes an exclusive lock on path (created if missing) without
// waiting: a second daemon on the same data directory fails at once.
func TryLock(path string) (*Lock, error) {
	return lock(path, unix.LOCK_EX|unix.LOCK_NB)
}

// LockWait takes an exclusive lock on path (created if missing), waiting for
// the current holder to release it.
func LockWait(path string) (*Lock, error) {
	return lock(path, unix.LOCK_EX)
}

func lock(path string, how int) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			err = ErrLocked
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock (closing the descriptor drops the flock).
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Preallocate reserves blocks for [off, off+n) of f and extends it to cover
// them. File systems without fallocate get the zeros written instead (as
// glibc's posix_fallocate does): a sparse extension would let a store
// through a mapping fault with SIGBUS on a full disk instead of failing
// here with ENOSPC.
func Preallocate(f *os.File, off, n int64) error {
	err := unix.Fallocate(int(f.Fd()), 0, off, n)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		err = writeZeros(f, off, n)
	}
	if err != nil {
		return fmt.Errorf("allocate %s to %d bytes: %w", f.Name(), off+n, err)
	}
	return nil
}

// writeZeros writes n zero bytes at off.
func writeZeros(f *os.File, off, n int64) error {
	zeros := make([]byte, min(n, 1<<20))
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := f.WriteAt(zeros[:k], off); err != nil {
			return err
		}
		off += k
		n -= k
	}
	return nil
}

// PunchHole deallocates [off, off+n) of f (reading back as zeros) and then
// reserves the blocks again, so later stores through a mapping cannot fault
// on a full disk. It returns an error when the file system cannot punch;
// callers then zero the bytes themselves.
func PunchHole(f *os.File, off, n int64) error {
	fd := int(f.Fd())
	if err := unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err != nil {
		return fmt.Errorf("punch hole in %s: %w", f.Name(), err)
	}
	if err := unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, off, n); err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("re-allocate %s after punching: %w", f.Name(), err)
	}
	return nil
}

// Mapped is a file of a fixed size, preallocated and mapped MAP_SHARED
// read-write.
type Mapped struct {
	File *os.File
	Data []byte
	// OrigSize is the size found on disk before OpenMapped extended the file;
	// bytes past it were never written.
	OrigSize int64
}

// OpenMapped opens path (create: creates it, failing if it exists), extends
// it to size with reserved blocks if shorter and maps it. A file longer than
// size is an error: it was written with another size setting.
func OpenMapped(path string, size int64, create bool) (*Mapped, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, err
	}
	m, err := mapFile(f, size)
	if err != nil {
		f.Close()
		if create {
			os.Remove(path)
		}
		return nil, err
	}
	return m, nil
}

func mapFile(f *os.File, size int64) (*Mapped, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	orig := st.Size()
	if orig > size {
		return nil, fmt.Errorf("file %s is %d bytes, expected at most %d (was it written with another file size setting?)", f.Name(), orig, size)
	}
	if orig < size {
		if err := Preallocate(f, orig, size-orig); err != nil {
			return nil, err
		}
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", f.Name(), err)
	}
	return &Mapped{File: f, Data: data, OrigSize: orig}, nil
}

// Sync makes the mapping's written pages durable.
func (m *Mapped) Sync() error { return Fdatasync(m.File) }

// Close unmaps and closes the file. Nothing may touch Data afterwards.
func (m *Mapped) Close() error {
	err := unix.Munmap(m.Data)
	m.Data = nil
	if cerr := m.File.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteFile replaces path with data so that a crash leaves either the old
// content or the new one: a temp file in the same directory is written,
// fsynced and renamed over path, then the directory is fsynced. mode
// applies to a new file; an existing one keeps its permissions. Concurrent
// writers of one path must be serialised by the caller.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Chmod(mode)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", tmp.Name(), werr)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("rename %s to %s: %w", tmp.Name(), path, err)
	}
	return SyncDir(dir)
}
