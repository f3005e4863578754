package timer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// segment is one timer-log file, log/<20-digit index of its first entry>,
// preallocated to segEntries entries and mapped MAP_SHARED. Blocks are
// reserved with fallocate at creation: a store through the mapping into an
// unallocated block of a full disk would raise SIGBUS.
type segment struct {
	base int64 // index of its first entry
	path string
	f    *os.File
	data []byte
	// maxSlot bounds the slot second of every entry in it from above;
	// once the checkpointed cursor passes it the segment is dead.
	maxSlot int64
}

func segmentPath(dir string, base int64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d", base))
}

func createSegment(dir string, base, entries int64) (*segment, error) {
	p := segmentPath(dir, base)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create timer log %s: %w", p, err)
	}
	size := entries * entrySize
	err = syscall.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		err = f.Truncate(size)
	}
	var s *segment
	if err == nil {
		s, err = mapSegment(f, p, base, size)
	}
	if err == nil {
		// The checkpoint will count entries in this file: its name must be durable.
		err = syncDir(dir)
	}
	if err != nil {
		if s != nil {
			s.close()
		} else {
			f.Close()
		}
		os.Remove(p)
		return nil, fmt.Errorf("create timer log %s: %w", p, err)
	}
	return s, nil
}

func mapSegment(f *os.File, path string, base, size int64) (*segment, error) {
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	return &segment{base: base, path: path, f: f, data: data, maxSlot: notStarted}, nil
}

// openSegments maps every segment in dir, oldest first. They must be
// contiguous and segEntries long: anything else is a changed setting or a
// missing file, which recovery must not paper over.
func openSegments(dir string, segEntries int64) ([]*segment, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open timer log %s: %w", dir, err)
	}
	var bases []int64
	for _, de := range des {
		base, err := strconv.ParseInt(de.Name(), 10, 64)
		if len(de.Name()) != 20 || err != nil || base < 0 {
			continue // not a segment: left alone
		}
		bases = append(bases, base)
	}
	slices.Sort(bases)
	var segs []*segment
	fail := func(err error) ([]*segment, error) {
		for _, s := range segs {
			s.close()
		}
		return nil, err
	}
	size := segEntries * entrySize
	for i, base := range bases {
		p := segmentPath(dir, base)
		if base%segEntries != 0 || (i > 0 && base != bases[i-1]+segEntries) {
			return fail(fmt.Errorf("open timer log %s: not contiguous with the previous segment or not aligned to %d entries (missing file or changed setting?)", p, segEntries))
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			return fail(fmt.Errorf("open timer log %s: %w", p, err))
		}
		st, err := f.Stat()
		if err == nil && st.Size() != size {
			err = fmt.Errorf("%d bytes, want %d", st.Size(), size)
		}
		var s *segment
		if err == nil {
			s, err = mapSegment(f, p, base, size)
		}
		if err != nil {
			f.Close()
			return fail(fmt.Errorf("open timer log %s: %w", p, err))
		}
		segs = append(segs, s)
	}
	return segs, nil
}

// entry returns the bytes of entry idx, which must lie in s.
func (s *segment) entry(idx int64) []byte {
	off := (idx - s.base) * entrySize
	return s.data[off : off+entrySize]
}

// sync makes the written pages durable. With MAP_SHARED, Linux keeps
// mapped pages in the page cache, so fdatasync covers them like msync.
func (s *segment) sync() error {
	if err := syscall.Fdatasync(int(s.f.Fd())); err != nil {
		return fmt.Errorf("fdatasync timer log %s: %w", s.path, err)
	}
	return nil
}

// zeroFrom clears entries [idx, end of s), touching only pages that are
// not zero already, and makes that durable.
func (s *segment) zeroFrom(idx int64) error {
	off := (idx - s.base) * entrySize
	changed := false
	for off < int64(len(s.data)) {
		n := min(pageBytes-off%pageBytes, int64(len(s.data))-off)
		if b := s.data[off : off+n]; !allZero(b) {
			clear(b)
			changed = true
		}
		off += n
	}
	if !changed {
		return nil
	}
	return s.sync()
}

func (s *segment) close() {
	// Nothing can reach data any more; errors here leak at worst.
	_ = syscall.Munmap(s.data)
	s.data = nil
	_ = s.f.Close()
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
