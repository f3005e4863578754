package store

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/mqops/mqops/fileutil"
)

var pageSize = int64(os.Getpagesize())

// mmapFile is a pre-sized file mapped MAP_SHARED read/write, with
// reference counting so readers can keep using it after its owner drops
// it. Commit-log segments, consume-queue files and index files are all
// mmapFiles. Blocks are reserved at creation (fileutil.OpenMapped), so
// running out of space surfaces as an error there, never as SIGBUS.
type mmapFile struct {
	path string
	// base is the file's start in its log: a commit-log offset for
	// segments, a queue offset (unit index) for consume-queue files.
	base int64
	m    *fileutil.Mapped
	data []byte // m.Data
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
	m, err := fileutil.OpenMapped(path, size, create)
	if err != nil {
		return nil, err
	}
	f := &mmapFile{path: path, base: base, m: m, data: m.Data, origSize: m.OrigSize}
	f.refs.Store(1)
	return f, nil
}

// acquire adds a reader reference. Callers hold the owning list's lock.
func (m *mmapFile) acquire() { m.refs.Add(1) }

// release drops a reference and unmaps the file when it was the last one.
func (m *mmapFile) release() {
	if m.refs.Add(-1) == 0 {
		// Nothing can reach data any more; errors here leak at worst.
		_ = m.m.Close()
		m.data = nil
	}
}

// sync makes the file's written pages durable.
func (m *mmapFile) sync() error { return m.m.Sync() }

// zeroRange clears data[from:to] and makes sure the blocks stay allocated.
// Large page-aligned spans are punched out instead of written so that
// zeroing the tail of a 1 GiB segment does not dirty every page.
func (m *mmapFile) zeroRange(from, to int64) error {
	if from >= to {
		return nil
	}
	ps := (from + pageSize - 1) / pageSize * pageSize
	pe := to / pageSize * pageSize
	if pe-ps >= 16*pageSize && fileutil.PunchHole(m.m.File, ps, pe-ps) == nil {
		clear(m.data[from:ps])
		clear(m.data[pe:to])
		return nil
	}
	clear(m.data[from:to])
	return nil
}

// fileName is the 20-digit zero-padded start offset used for segment and
// consume-queue file names (Java's UtilAll.offset2FileName, apache/rocketmq
// common/src/main/java/org/apache/rocketmq/common/UtilAll.java).
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
