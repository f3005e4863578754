package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/mqops/mqops/fileutil"
	"github.com/mqops/mqops/wire"
)

// Damaged commit-log data (issue 11). Bytes below the durable point were
// fsync-confirmed whole, so a record there that fails its checks is damage
// (a bad sector, a flipped bit, a lost write), not a torn write: it costs
// that record only. The damaged range stays in the log, is recorded in
// s.damaged so that readers and walkers step over it, and a copy of its
// bytes goes to RootDir/corrupt for inspection.

// byteRange is the commit-log range [from, to).
type byteRange struct{ from, to int64 }

// Record magic codes as they appear in the log, for the resync scan.
var (
	magicMessageBytes = magicBytes(wire.MagicMessage)
	magicBlankBytes   = magicBytes(wire.MagicBlank)
)

func magicBytes(m int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(m)) }

// damagedEnd returns the end of the known damaged range holding pos, or
// pos itself when pos is not damaged. It does not allocate.
func (s *Store) damagedEnd(pos int64) int64 {
	p := s.damaged.Load()
	if p == nil {
		return pos
	}
	rs := *p
	lo, hi := 0, len(rs)
	for lo < hi { // first range ending after pos
		m := int(uint(lo+hi) >> 1)
		if rs[m].to <= pos {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(rs) && rs[lo].from <= pos {
		return rs[lo].to
	}
	return pos
}

// addDamaged records [from, to) as damaged and reports whether any of it
// was not known before. The list is replaced, never changed in place, so
// readers use it without locks.
func (s *Store) addDamaged(from, to int64) bool {
	s.damagedMu.Lock()
	defer s.damagedMu.Unlock()
	var old []byteRange
	if p := s.damaged.Load(); p != nil {
		old = *p
	}
	for _, r := range old {
		if r.from <= from && to <= r.to {
			return false
		}
	}
	rs := append(slices.Clone(old), byteRange{from, to})
	slices.SortFunc(rs, func(a, b byteRange) int { return cmp.Compare(a.from, b.from) })
	merged := rs[:1]
	for _, r := range rs[1:] {
		if last := &merged[len(merged)-1]; r.from <= last.to {
			last.to = max(last.to, r.to)
		} else {
			merged = append(merged, r)
		}
	}
	s.damaged.Store(&merged)
	return true
}

// Corruption returns what the store knows of damaged commit-log data: the
// number of damaged ranges and their bytes, and how many reads were
// refused because they hit one (runtime info).
func (s *Store) Corruption() (ranges int, size int64, skippedReads int64) {
	if p := s.damaged.Load(); p != nil {
		for _, r := range *p {
			ranges++
			size += r.to - r.from
		}
	}
	return ranges, size, s.skippedReads.Load()
}

// recordAt checks what starts at pos in seg: a record whose PHYSICALOFFSET
// is pos (its size, nil), a blank filler that ends the segment (its size,
// wire.ErrBlank), never-written space (wire.ErrEmpty), or anything else
// (an error saying what is wrong). Bytes past the file's original size
// were never written and count as missing.
func (s *Store) recordAt(seg *mmapFile, pos int64) (int, error) {
	off := pos - seg.base
	limit := min(seg.origSize, s.segSize)
	if off > limit {
		return 0, fmt.Errorf("segment %s ends at %d: %w", seg.path, limit, wire.ErrTruncated)
	}
	n, err := wire.CheckRecord(seg.data[off:limit])
	switch {
	case err == nil:
		if got := wire.RecordView(seg.data[off:]).PhysicalOffset(); got != pos {
			return 0, fmt.Errorf("%w: record at %d claims physical offset %d", wire.ErrCorrupt, pos, got)
		}
	case errors.Is(err, wire.ErrBlank):
		if off+int64(n) != s.segSize {
			return 0, fmt.Errorf("%w: blank filler of %d bytes at %d does not end its segment", wire.ErrCorrupt, n, pos)
		}
	}
	return n, err
}

// resyncPoint reports whether a walk can trust pos in seg as the start of
// the next entry: a record that passes every check including its CRC and
// names pos as its own offset, or a filler ending the segment. Random or
// shifted bytes pass that with negligible probability.
func (s *Store) resyncPoint(seg *mmapFile, pos int64) bool {
	if seg.base+s.segSize-pos < wire.BlankSize {
		return false
	}
	_, err := s.recordAt(seg, pos)
	return err == nil || errors.Is(err, wire.ErrBlank)
}

// resync returns where the damage starting at pos in seg ends: the next
// trustworthy entry (resyncPoint) after pos in the segment, else
// min(segment end, durable), the point up to which the bytes were
// confirmed written. When the header at pos is intact (only the body or
// an inner length is bad) its size is tried first, so the damage is
// exactly that record.
func (s *Store) resync(seg *mmapFile, pos, durable int64) int64 {
	segEnd := seg.base + s.segSize
	v := wire.RecordView(seg.data[pos-seg.base:])
	if v.Magic() == wire.MagicMessage && v.PhysicalOffset() == pos {
		if n := int64(v.TotalSize()); n >= wire.MinRecordSize && pos+n < segEnd && s.resyncPoint(seg, pos+n) {
			return pos + n
		}
	}
	data := seg.data[:min(seg.origSize, s.segSize)]
	blank := int64(-2) // position of the next filler candidate; -2: not searched yet
	for c := pos - seg.base + 1; c+wire.BlankSize <= int64(len(data)); {
		m := indexMagic(data, c, magicMessageBytes)
		if blank == -2 || (blank >= 0 && blank < c) {
			blank = indexMagic(data, c, magicBlankBytes)
		}
		switch {
		case m < 0 && blank < 0:
			return min(segEnd, durable)
		case m < 0 || (blank >= 0 && blank < m):
			m = blank
		}
		if s.resyncPoint(seg, seg.base+m) {
			return seg.base + m
		}
		c = m + 1
	}
	return min(segEnd, durable)
}

// indexMagic returns the first entry start e ≥ from whose magic field
// (bytes e+4..e+8) is magic, or -1.
func indexMagic(data []byte, from int64, magic []byte) int64 {
	if from+8 > int64(len(data)) {
		return -1
	}
	i := bytes.Index(data[from+4:], magic)
	if i < 0 {
		return -1
	}
	return from + int64(i)
}

// quarantine records [from, to) of seg as damaged, so that no reader or
// walker uses it, copies the bytes the file holds of it to
// RootDir/corrupt/commitlog-<offset>-<size> (fsynced; kept as is when a
// previous run made it) and logs it at ERROR under tag.
func (s *Store) quarantine(tag string, seg *mmapFile, from, to int64, reason error) {
	s.addDamaged(from, to)
	args := []any{"offset", from, "size", to - from, "segment", seg.path, "reason", reason}
	if path, err := s.copyAside(seg, from, to); err != nil {
		args = append(args, "copyError", err)
	} else {
		args = append(args, "copy", path)
	}
	s.log.Error(tag+" corrupt commitlog range: its records are not served", args...)
}

// copyAside writes the bytes of [from, to) that seg's file holds to the
// corrupt directory and returns the copy's path.
func (s *Store) copyAside(seg *mmapFile, from, to int64) (string, error) {
	dir := filepath.Join(s.cfg.RootDir, "corrupt")
	path := filepath.Join(dir, fmt.Sprintf("commitlog-%020d-%d", from, to-from))
	b := seg.data[from-seg.base : max(min(to, seg.base+seg.origSize), from)-seg.base]
	if st, err := os.Stat(path); err == nil && st.Size() == int64(len(b)) {
		return path, nil
	}
	if err := os.Mkdir(dir, 0o755); err == nil {
		if err := fileutil.SyncDir(s.cfg.RootDir); err != nil {
			return "", fmt.Errorf("copy damaged range aside: %w", err)
		}
	} else if !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("copy damaged range aside: %w", err)
	}
	if err := fileutil.WriteFile(path, b, 0o644); err != nil {
		return "", fmt.Errorf("copy damaged range aside: %w", err)
	}
	return path, nil
}

// readable reports whether the record rec at phys may be served: it is
// not in a damaged range, and its CRC passed, checked by recovery or the
// scrub, or written by this process from a CRC of its body; any other
// record is checked now. Checking on every read instead of remembering
// each record keeps this free of memory and locks; the scrub soon makes it
// rare. A record failing the check is recorded as damaged, logged once.
func (s *Store) readable(phys int64, rec []byte) bool {
	if s.damaged.Load() != nil && s.damagedEnd(phys) != phys {
		s.skippedReads.Add(1)
		return false
	}
	if phys >= s.verifiedFrom || phys < s.scrubbed.Load() {
		return true
	}
	if _, err := wire.CheckRecord(rec); err != nil {
		s.readCorrupt(phys, rec, err)
		return false
	}
	return true
}

// readCorrupt handles a record that failed its check on read: it is
// recorded as damaged and, the first time, logged with what its header
// says of it. The scrub or the next recovery copies it aside.
func (s *Store) readCorrupt(phys int64, rec []byte, err error) {
	s.skippedReads.Add(1)
	if !s.addDamaged(phys, phys+int64(len(rec))) {
		return
	}
	v := wire.RecordView(rec)
	s.log.Error("[CORRUPT] commitlog record failed its check on read: not served", "offset", phys, "size", len(rec),
		"topic", string(bytes.ToValidUTF8(v.Topic(), nil)), "queueId", v.QueueID(), "queueOffset", v.QueueOffset(), "err", err)
}
