package timer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/mqops/mqops/atomicfile"
)

var (
	be         = binary.BigEndian
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// notStarted is the cursor of a wheel that never ran Due, and the slot
// second of the entries added before that: they are not linked into any
// slot yet (see Wheel.startLocked).
const notStarted = math.MinInt64

// record is a timer-log entry: 48 bytes at index*48 of the log,
//
//	0  int64  Entry.DeliverMs
//	8  int64  Entry.Phys
//	16 int64  slot second: the absolute second whose slot it is linked into
//	24 int64  prev: the index of the previous head of the same slot index
//	          (whatever second that was), -1 for none
//	32 int32  Entry.Size
//	36 int32  seq: its rank among the entries of its slot second, from 1
//	40 uint32 the low 32 bits of its own index
//	44 uint32 CRC32-C of bytes [0, 44)
//
// The index makes an entry found at the wrong place invalid, the checksum
// a torn or zero-filled one.
type record struct {
	Entry
	slotSec int64
	prev    int64
	seq     int32
}

const entrySize = 48

func encodeRecord(b []byte, idx int64, r record) {
	be.PutUint64(b[0:], uint64(r.DeliverMs))
	be.PutUint64(b[8:], uint64(r.Phys))
	be.PutUint64(b[16:], uint64(r.slotSec))
	be.PutUint64(b[24:], uint64(r.prev))
	be.PutUint32(b[32:], uint32(r.Size))
	be.PutUint32(b[36:], uint32(r.seq))
	be.PutUint32(b[40:], uint32(idx))
	be.PutUint32(b[44:], crc32.Checksum(b[:44], castagnoli))
}

// decodeRecord returns the entry at idx; ok is false when its checksum
// does not match (torn, never written, or not entry idx).
func decodeRecord(b []byte, idx int64) (r record, ok bool) {
	if be.Uint32(b[44:]) != crc32.Checksum(b[:44], castagnoli) || be.Uint32(b[40:]) != uint32(idx) {
		return record{}, false
	}
	return record{
		Entry: Entry{
			DeliverMs: int64(be.Uint64(b[0:])),
			Phys:      int64(be.Uint64(b[8:])),
			Size:      int32(be.Uint32(b[32:])),
		},
		slotSec: int64(be.Uint64(b[16:])),
		prev:    int64(be.Uint64(b[24:])),
		seq:     int32(be.Uint32(b[36:])),
	}, true
}

// The wheel file is a 4096-byte header
//
//	0  uint32 magic "MQTW"
//	4  uint32 version (1)
//	8  int64  slots
//	16 uint32 CRC32 (IEEE) of bytes [0, 16)
//
// followed by one 32-byte slot per second of the span:
//
//	0  int64  second: the absolute second of the list at head
//	8  int64  head: index of the newest entry linked into this slot index
//	16 int32  count: seq of head, the number of entries of second
//	20 uint32 the slot's index
//	24 uint32 CRC32-C of bytes [0, 24)
//	28 4 zero bytes
//
// An all-zero slot is empty (head -1): the file is created sparse. Slots
// are 32 bytes so that none straddles a 512-byte sector; like most storage
// code we rely on a sector being written whole, so a slot is never torn
// (the checksum catches it if it is).
const (
	wheelMagic      = 0x4D515457 // "MQTW"
	wheelVersion    = 1
	wheelHeaderSize = 4096
	slotSize        = 32
	pageBytes       = 4096
	slotsPerPage    = pageBytes / slotSize
)

// slot is one second of the wheel. head -1: nothing linked yet.
type slot struct {
	second int64
	head   int64
	count  int32
}

func encodeSlot(b []byte, i int64, s slot) {
	if s.head < 0 {
		clear(b[:slotSize])
		return
	}
	be.PutUint64(b[0:], uint64(s.second))
	be.PutUint64(b[8:], uint64(s.head))
	be.PutUint32(b[16:], uint32(s.count))
	be.PutUint32(b[20:], uint32(i))
	be.PutUint32(b[24:], crc32.Checksum(b[:24], castagnoli))
	clear(b[28:slotSize])
}

func decodeSlot(b []byte, i int64) (slot, bool) {
	if allZero(b[:slotSize]) {
		return slot{head: -1}, true
	}
	if be.Uint32(b[24:]) != crc32.Checksum(b[:24], castagnoli) || be.Uint32(b[20:]) != uint32(i) {
		return slot{}, false
	}
	return slot{second: int64(be.Uint64(b[0:])), head: int64(be.Uint64(b[8:])), count: int32(be.Uint32(b[16:]))}, true
}

var zeroPage [pageBytes]byte

func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), pageBytes)
		if !bytes.Equal(b[:n], zeroPage[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

func encodeWheelHeader(slots int64) []byte {
	b := make([]byte, wheelHeaderSize)
	be.PutUint32(b[0:], wheelMagic)
	be.PutUint32(b[4:], wheelVersion)
	be.PutUint64(b[8:], uint64(slots))
	be.PutUint32(b[16:], crc32.ChecksumIEEE(b[:16]))
	return b
}

// checkWheelHeader verifies the header of the wheel file at path against
// the checkpoint's slot count.
func checkWheelHeader(b []byte, path string, slots int64) error {
	switch {
	case be.Uint32(b[0:]) != wheelMagic || be.Uint32(b[4:]) != wheelVersion:
		return fmt.Errorf("open timer wheel %s: unknown magic/version %#x/%d", path, be.Uint32(b[0:]), be.Uint32(b[4:]))
	case be.Uint32(b[16:]) != crc32.ChecksumIEEE(b[:16]):
		return fmt.Errorf("open timer wheel %s: header checksum mismatch", path)
	case int64(be.Uint64(b[8:])) != slots:
		return fmt.Errorf("open timer wheel %s: %d slots, checkpoint says %d", path, be.Uint64(b[8:]), slots)
	}
	return nil
}

// checkpoint is the recovery point, Dir/checkpoint:
//
//	0  uint32 magic "MQTC"
//	4  uint32 version (1)
//	8  int64  slots
//	16 int64  segment entries
//	24 int64  source: the caller's marker given with the last Add below end
//	32 int64  cursor (notStarted before the first Due)
//	40 int64  done: newest entry of second cursor already processed, or -1
//	48 int64  end: number of log entries it covers
//	56 int64  pending
//	64 uint32 CRC32 (IEEE) of bytes [0, 64)
//
// replaced atomically (atomicfile). All fields are one snapshot taken under
// the wheel's lock; Flush writes it only after the log below end and the
// wheel pages of the same snapshot are durable.
type checkpoint struct {
	slots, segEntries         int64
	source, cursor, done, end int64
	pending                   int64
}

const (
	checkpointMagic   = 0x4D515443 // "MQTC"
	checkpointVersion = 1
	checkpointSize    = 68
)

func checkpointPath(dir string) string { return filepath.Join(dir, "checkpoint") }

// readCheckpoint returns the stored checkpoint; ok is false when there is
// none. A damaged one is an error: guessing would lose or repeat messages.
func readCheckpoint(dir string) (ck checkpoint, ok bool, err error) {
	p := checkpointPath(dir)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return checkpoint{}, false, nil
	}
	if err != nil {
		return checkpoint{}, false, fmt.Errorf("read timer checkpoint %s: %w", p, err)
	}
	switch {
	case len(b) != checkpointSize:
		return checkpoint{}, false, fmt.Errorf("read timer checkpoint %s: %d bytes, want %d", p, len(b), checkpointSize)
	case be.Uint32(b[0:]) != checkpointMagic || be.Uint32(b[4:]) != checkpointVersion:
		return checkpoint{}, false, fmt.Errorf("read timer checkpoint %s: unknown magic/version %#x/%d", p, be.Uint32(b[0:]), be.Uint32(b[4:]))
	case be.Uint32(b[64:]) != crc32.ChecksumIEEE(b[:64]):
		return checkpoint{}, false, fmt.Errorf("read timer checkpoint %s: checksum mismatch", p)
	}
	ck = checkpoint{
		slots:      int64(be.Uint64(b[8:])),
		segEntries: int64(be.Uint64(b[16:])),
		source:     int64(be.Uint64(b[24:])),
		cursor:     int64(be.Uint64(b[32:])),
		done:       int64(be.Uint64(b[40:])),
		end:        int64(be.Uint64(b[48:])),
		pending:    int64(be.Uint64(b[56:])),
	}
	if ck.slots < 2 || ck.segEntries < 1 || ck.end < 0 || ck.pending < 0 || ck.done < -1 || ck.done >= ck.end ||
		(ck.cursor == notStarted && ck.done != -1) {
		return checkpoint{}, false, fmt.Errorf("read timer checkpoint %s: inconsistent fields %+v", p, ck)
	}
	return ck, true, nil
}

func writeCheckpoint(dir string, ck checkpoint) error {
	var b [checkpointSize]byte
	be.PutUint32(b[0:], checkpointMagic)
	be.PutUint32(b[4:], checkpointVersion)
	be.PutUint64(b[8:], uint64(ck.slots))
	be.PutUint64(b[16:], uint64(ck.segEntries))
	be.PutUint64(b[24:], uint64(ck.source))
	be.PutUint64(b[32:], uint64(ck.cursor))
	be.PutUint64(b[40:], uint64(ck.done))
	be.PutUint64(b[48:], uint64(ck.end))
	be.PutUint64(b[56:], uint64(ck.pending))
	be.PutUint32(b[64:], crc32.ChecksumIEEE(b[:64]))
	if err := atomicfile.Write(checkpointPath(dir), b[:], atomicfile.Options{}); err != nil {
		return fmt.Errorf("write timer checkpoint: %w", err)
	}
	return nil
}
