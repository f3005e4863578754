package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mqops/mqops/fileutil"
)

// checkpoint is the recovery starting point, stored in RootDir/checkpoint
// in this store's own format (only recovery reads it, as with Java's
// apache/rocketmq store/src/main/java/org/apache/rocketmq/store/StoreCheckpoint.java):
// one 4096-byte page
//
//	0  uint32 magic "MQCK"
//	4  uint32 version (1)
//	8  int64  flushed: every commit-log byte below it was durable
//	16 int64  dispatched: every consume-queue unit of every record below it was durable
//	24 uint32 CRC32 (IEEE) of bytes [0, 24)
//
// replaced atomically (fileutil.WriteFile), so a reader sees either the old
// or the new checkpoint. Both offsets are record boundaries and only grow,
// except when TruncateTo (replica.go) cuts the log below them. A missing or unreadable checkpoint makes
// recovery start at the first segment.
type checkpoint struct {
	flushed    int64
	dispatched int64
}

const (
	checkpointMagic   = 0x4D51434B // "MQCK"
	checkpointVersion = 1
	checkpointSize    = 4096
)

func checkpointPath(root string) string { return filepath.Join(root, "checkpoint") }

// readCheckpoint returns the stored checkpoint; ok is false when there is
// none or it is damaged (logged by the caller via err).
func readCheckpoint(root string) (ck checkpoint, ok bool, err error) {
	p := checkpointPath(root)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return checkpoint{}, false, nil
	}
	if err != nil {
		return checkpoint{}, false, fmt.Errorf("read checkpoint %s: %w", p, err)
	}
	be := binary.BigEndian
	switch {
	case len(b) < 28:
		return checkpoint{}, false, fmt.Errorf("read checkpoint %s: %d bytes", p, len(b))
	case be.Uint32(b[0:]) != checkpointMagic || be.Uint32(b[4:]) != checkpointVersion:
		return checkpoint{}, false, fmt.Errorf("read checkpoint %s: unknown magic/version %#x/%d", p, be.Uint32(b[0:]), be.Uint32(b[4:]))
	case be.Uint32(b[24:]) != crc32.ChecksumIEEE(b[:24]):
		return checkpoint{}, false, fmt.Errorf("read checkpoint %s: checksum mismatch", p)
	}
	ck = checkpoint{flushed: int64(be.Uint64(b[8:])), dispatched: int64(be.Uint64(b[16:]))}
	if ck.flushed < 0 || ck.dispatched < 0 {
		return checkpoint{}, false, fmt.Errorf("read checkpoint %s: negative offsets %+v", p, ck)
	}
	return ck, true, nil
}

// writeCheckpoint atomically replaces the checkpoint.
func writeCheckpoint(root string, ck checkpoint) error {
	var b [checkpointSize]byte
	be := binary.BigEndian
	be.PutUint32(b[0:], checkpointMagic)
	be.PutUint32(b[4:], checkpointVersion)
	be.PutUint64(b[8:], uint64(ck.flushed))
	be.PutUint64(b[16:], uint64(ck.dispatched))
	be.PutUint32(b[24:], crc32.ChecksumIEEE(b[:24]))

	if err := fileutil.WriteFile(checkpointPath(root), b[:], 0o644); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}
