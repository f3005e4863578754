package timer

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/mqops/mqops/fileutil"
)

// segment is one timer-log file, log/<20-digit index of its first entry>,
// preallocated to segEntries entries and mapped MAP_SHARED
// (fileutil.OpenMapped reserves the blocks, so a full disk fails creation
// instead of raising SIGBUS on a later store).
type segment struct {
	base int64 // index of its first entry
	path string
	m    *fileutil.Mapped
	data []byte // m.Data
	// maxSlot bounds the slot second of every entry in it from above;
	// once the checkpointed cursor passes it the segment is dead.
	maxSlot int64
}

func segmentPath(dir string, base int64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d", base))
}

func createSegment(dir string, base, entries int64) (*segment, error) {
	p := segmentPath(dir, base)
	m, err := fileutil.OpenMapped(p, entries*entrySize, true)
	if err != nil {
		return nil, fmt.Errorf("create timer log %s: %w", p, err)
	}
	// The checkpoint will count entries in this file: its name must be durable.
	if err := fileutil.SyncDir(dir); err != nil {
		m.Close()
		os.Remove(p)
		return nil, fmt.Errorf("create timer log %s: %w", p, err)
	}
	return &segment{base: base, path: p, m: m, data: m.Data, maxSlot: notStarted}, nil
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
		// Checked before mapping: opening would extend a short file.
		st, err := os.Stat(p)
		if err == nil && st.Size() != size {
			err = fmt.Errorf("%d bytes, want %d", st.Size(), size)
		}
		var m *fileutil.Mapped
		if err == nil {
			m, err = fileutil.OpenMapped(p, size, false)
		}
		if err != nil {
			return fail(fmt.Errorf("open timer log %s: %w", p, err))
		}
		segs = append(segs, &segment{base: base, path: p, m: m, data: m.Data, maxSlot: notStarted})
	}
	return segs, nil
}

// entry returns the bytes of entry idx, which must lie in s.
func (s *segment) entry(idx int64) []byte {
	off := (idx - s.base) * entrySize
	return s.data[off : off+entrySize]
}

// sync makes the written pages durable.
func (s *segment) sync() error {
	if err := s.m.Sync(); err != nil {
		return fmt.Errorf("timer log: %w", err)
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
	_ = s.m.Close()
	s.data = nil
}
