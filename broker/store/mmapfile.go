package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
)

const (
	fallocPunchHole = 0x02 // FALLOC_FL_PUNCH_HOLE
	fallocKeepSize  = 0x01 // FALLOC_FL_KEEP_SIZE
)

var pageSize = int64(os.Getpagesize())

// mmapFile is a pre-sized file mapped MAP_SHARED read/write. Commit-log
// segments and consume-queue files are both mmapFiles.
//
// Blocks are reserved with fallocate when the file is created or extended:
// a store through a mapping into an unallocated block of a full disk raises
// SIGBUS, so running out of space must surface as an error at creation.
type mmapFile struct {
	path string
	// base is the file's start in its log: a commit-log offset for
	// segments, a queue offset (unit index) for consume-queue files.
	base int64
	fd   *os.File
	data []byte
	// origSize is the file size found on disk before open extended it;
	// recovery treats bytes past it as never written.
	origSize int64

	// refs counts the list that owns the file plus every reader holding it.
	// The mapping is released when it drops to zero. A file is only
	// acquired while it is in its owner's list (under the list's lock), so
	// once removed from the list its count can only fall.
	refs  atomic.Int32
	dirty atomic.Bool // consume-queue files: written since the last sync
}

// openMmapFile opens (create: creates, failing if it exists) the file at
// path, extends it to size if shorter and maps it. A file longer than size
// is an error: the configured size differs from the one it was written with.
func openMmapFile(path string, base, size int64, create bool) (*mmapFile, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE | os.O_EXCL
	}
	fd, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, err
	}
	m, err := mapFile(fd, path, base, size)
	if err != nil {
		fd.Close()
		if create {
			os.Remove(path)
		}
		return nil, err
	}
	return m, nil
}

func mapFile(fd *os.File, path string, base, size int64) (*mmapFile, error) {
	st, err := fd.Stat()
	if err != nil {
		return nil, err
	}
	orig := st.Size()
	if orig > size {
		return nil, fmt.Errorf("file %s is %d bytes, expected at most %d (was it written with another file size setting?)", path, orig, size)
	}
	if orig < size {
		if err := allocate(fd, orig, size-orig); err != nil {
			return nil, fmt.Errorf("allocate %s to %d bytes: %w", path, size, err)
		}
	}
	data, err := syscall.Mmap(int(fd.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	m := &mmapFile{path: path, base: base, fd: fd, data: data, origSize: orig}
	m.refs.Store(1)
	return m, nil
}

// allocate reserves [off, off+n) and extends the file to cover it. On file
// systems without fallocate it falls back to a sparse ftruncate.
func allocate(fd *os.File, off, n int64) error {
	err := syscall.Fallocate(int(fd.Fd()), 0, off, n)
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		return fd.Truncate(off + n)
	}
	return err
}

// acquire adds a reader reference. Callers hold the owning list's lock.
func (m *mmapFile) acquire() { m.refs.Add(1) }

// release drops a reference and unmaps the file when it was the last one.
func (m *mmapFile) release() {
	if m.refs.Add(-1) == 0 {
		// Nothing can reach data any more; errors here leak at worst.
		_ = syscall.Munmap(m.data)
		m.data = nil
		_ = m.fd.Close()
	}
}

// sync makes the file's written pages durable. With MAP_SHARED, Linux keeps
// mapped pages in the page cache, so fdatasync covers them like msync.
func (m *mmapFile) sync() error {
	if err := syscall.Fdatasync(int(m.fd.Fd())); err != nil {
		return fmt.Errorf("fdatasync %s: %w", m.path, err)
	}
	return nil
}

// zeroRange clears data[from:to] and makes sure the blocks stay allocated.
// Large page-aligned spans are punched out instead of written so that
// zeroing the tail of a 1 GiB segment does not dirty every page.
func (m *mmapFile) zeroRange(from, to int64) error {
	if from >= to {
		return nil
	}
	ps := (from + pageSize - 1) / pageSize * pageSize
	pe := to / pageSize * pageSize
	if pe-ps >= 16*pageSize {
		fd := int(m.fd.Fd())
		if err := syscall.Fallocate(fd, fallocPunchHole|fallocKeepSize, ps, pe-ps); err == nil {
			clear(m.data[from:ps])
			clear(m.data[pe:to])
			// Re-reserve the punched blocks: later stores through the
			// mapping must not fault on a full disk.
			if err := syscall.Fallocate(fd, fallocKeepSize, ps, pe-ps); err != nil &&
				!errors.Is(err, syscall.EOPNOTSUPP) {
				return fmt.Errorf("re-allocate %s after zeroing: %w", m.path, err)
			}
			return nil
		}
	}
	clear(m.data[from:to])
	return nil
}

// syncDir makes entries created or removed in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// fileName is the 20-digit zero-padded start offset used for segment and
// consume-queue file names (store.md §4, §6).
func fileName(dir string, off int64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d", off))
}

// parseFileName returns the offset encoded in a 20-digit file name.
func parseFileName(name string) (int64, bool) {
	if len(name) != 20 {
		return 0, false
	}
	var v int64
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c < '0' || c > '9' || v > (1<<63-1-9)/10 {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}
