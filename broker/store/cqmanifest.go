package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/mqops/mqops/fileutil"
)

// The consume-queue manifest lists every queue with its range of units as
// of a checkpoint, so that recovery notices a queue whose directory
// vanished, or whose files end earlier than they did, although the
// checkpoint says their records are dispatched. It lives in
// RootDir/cqmanifest, in this store's own format:
//
//	0  uint32 magic "MQCM"
//	4  uint32 version (1)
//	8  uint32 number of entries
//	12 entries: uint8 topic length, topic, int32 queue id, int64 min, int64 max
//	   uint32 CRC32 (IEEE) of every byte before it
//
// Entries are sorted by topic and queue id. flushConsumeQueues writes it
// (fileutil.WriteFile) before the checkpoint whenever it changed; each
// entry's max is read before the queue files are synced, so every unit
// below it is durable once the manifest is. Stores written by older builds
// have none: recovery then falls back to the structural checks.
const (
	manifestMagic   = 0x4D51434D // "MQCM"
	manifestVersion = 1
)

func manifestPath(root string) string { return filepath.Join(root, "cqmanifest") }

// manifestEntry is a queue's unit range [min, max) in the manifest.
type manifestEntry struct{ min, max int64 }

// encodeManifest appends the manifest of qs (queues without units are
// left out) to dst.
func encodeManifest(dst []byte, qs []*consumeQueue) []byte {
	slices.SortFunc(qs, func(a, b *consumeQueue) int {
		return cmp.Or(cmp.Compare(a.topic, b.topic), cmp.Compare(a.qid, b.qid))
	})
	be := binary.BigEndian
	dst = be.AppendUint32(dst, manifestMagic)
	dst = be.AppendUint32(dst, manifestVersion)
	countAt := len(dst)
	dst = be.AppendUint32(dst, 0)
	n := 0
	for _, cq := range qs {
		// max first: min never passes it, and both only grow.
		hi := cq.max.Load()
		lo := cq.min.Load()
		if hi == 0 {
			continue
		}
		dst = append(dst, byte(len(cq.topic)))
		dst = append(dst, cq.topic...)
		dst = be.AppendUint32(dst, uint32(cq.qid))
		dst = be.AppendUint64(dst, uint64(lo))
		dst = be.AppendUint64(dst, uint64(hi))
		n++
	}
	be.PutUint32(dst[countAt:], uint32(n))
	return be.AppendUint32(dst, crc32.ChecksumIEEE(dst))
}

// readManifest returns the stored manifest; ok is false when there is
// none or it is unusable (err says why).
func readManifest(root string) (m map[queueKey]manifestEntry, ok bool, err error) {
	p := manifestPath(root)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read consume-queue manifest %s: %w", p, err)
	}
	bad := func(why string) (map[queueKey]manifestEntry, bool, error) {
		return nil, false, fmt.Errorf("read consume-queue manifest %s: %s", p, why)
	}
	be := binary.BigEndian
	if len(b) < 16 {
		return bad(fmt.Sprintf("%d bytes", len(b)))
	}
	body := b[:len(b)-4]
	if be.Uint32(b[len(b)-4:]) != crc32.ChecksumIEEE(body) {
		return bad("checksum mismatch")
	}
	if be.Uint32(body) != manifestMagic || be.Uint32(body[4:]) != manifestVersion {
		return bad(fmt.Sprintf("unknown magic/version %#x/%d", be.Uint32(body), be.Uint32(body[4:])))
	}
	n := be.Uint32(body[8:])
	rest := body[12:]
	m = make(map[queueKey]manifestEntry, min(n, 1<<16))
	for range n {
		if len(rest) < 1 || len(rest) < 1+int(rest[0])+20 {
			return bad("entries truncated")
		}
		tl := int(rest[0])
		topic := string(rest[1 : 1+tl])
		rest = rest[1+tl:]
		e := manifestEntry{min: int64(be.Uint64(rest[4:])), max: int64(be.Uint64(rest[12:]))}
		if !validTopic(topic) || e.min < 0 || e.min > e.max {
			return bad(fmt.Sprintf("bad entry for %q: %+v", topic, e))
		}
		m[queueKey{topic, int32(be.Uint32(rest))}] = e
		rest = rest[20:]
	}
	if len(rest) != 0 {
		return bad(fmt.Sprintf("%d bytes after the entries", len(rest)))
	}
	return m, true, nil
}

// snapshotManifest encodes the manifest of the current queues into the
// spare buffer. Caller holds ckMu.
func (s *Store) snapshotManifest() []byte {
	s.manifestNext = encodeManifest(s.manifestNext[:0], s.cqs.all())
	return s.manifestNext
}

// writeManifest stores b (from snapshotManifest) unless it is what was
// written last. Caller holds ckMu.
func (s *Store) writeManifest(b []byte) error {
	if bytes.Equal(b, s.manifestLast) {
		return nil
	}
	if err := fileutil.WriteFile(manifestPath(s.cfg.RootDir), b, 0o644); err != nil {
		return fmt.Errorf("write consume-queue manifest: %w", err)
	}
	s.manifestLast, s.manifestNext = b, s.manifestLast
	return nil
}
