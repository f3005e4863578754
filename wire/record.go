package wire

// Stored-record layout (apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/CommitLog.java and
// common/src/main/java/org/apache/rocketmq/common/message/MessageDecoder.java).
// The same bytes live in the commit log
// and travel in PULL/QUERY/VIEW responses, so this file is the single place
// that knows field positions. All integers are big-endian.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Record magic codes (Java's CommitLog.MESSAGE_MAGIC_CODE and BLANK_MAGIC_CODE).
const (
	MagicMessage int32 = -626843481 // 0xDAA320A7: a message record
	MagicBlank   int32 = -875286124 // 0xCBD43194: end-of-file filler

	magicMessageBits uint32 = 0xDAA320A7
	magicBlankBits   uint32 = 0xCBD43194
)

// Message sysFlag bits (apache/rocketmq
// common/src/main/java/org/apache/rocketmq/common/sysflag/MessageSysFlag.java).
const (
	SysFlagCompressed          int32 = 0x1
	SysFlagMultiTags           int32 = 0x2
	SysFlagTransactionPrepared int32 = 0x4
	SysFlagTransactionCommit   int32 = 0x8
	SysFlagTransactionRollback int32 = 0xC
	SysFlagTransactionMask     int32 = 0xC
	SysFlagBornHostV6          int32 = 0x10
	SysFlagStoreHostV6         int32 = 0x20
)

// Field offsets that do not depend on host address lengths.
const (
	offTotalSize      = 0
	offMagic          = 4
	offBodyCRC        = 8
	offQueueID        = 12
	offFlag           = 16
	offQueueOffset    = 20
	offPhysicalOffset = 28
	offSysFlag        = 36
	offBornTimestamp  = 40
	offBornHost       = 48

	// fixedBase is the size of every fixed-width field except the two host
	// addresses: every field of the layout but BORNHOST, STOREHOSTADDRESS, BODY,
	// TOPIC and PROPERTIES.
	fixedBase = 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + 8 + 4 + 8 + 4 + 1 + 2

	hostV4Len = 8  // 4-byte address + int32 port
	hostV6Len = 20 // 16-byte address + int32 port

	// MinRecordSize is the size of a record with IPv4 hosts and empty body,
	// topic and properties.
	MinRecordSize = fixedBase + 2*hostV4Len

	// MaxTopicLen is the largest topic a V1 record can hold (1 signed byte).
	MaxTopicLen = 127
	// MaxPropertiesLen is the largest properties string (int16 length).
	MaxPropertiesLen = 32767

	// BlankSize is the size of the end-of-file filler header.
	BlankSize = 8
)

// Errors returned by CheckRecord. Use errors.Is; ErrCorrupt is wrapped with
// the detail of what was inconsistent.
var (
	// ErrEmpty means the header is all zeros: nothing was ever written here.
	ErrEmpty = errors.New("wire: empty record header")
	// ErrBlank means a blank end-of-file filler; the returned size is the
	// filler's length (the rest of the file).
	ErrBlank = errors.New("wire: blank filler")
	// ErrTruncated means the record claims more bytes than are available.
	ErrTruncated = errors.New("wire: truncated record")
	// ErrCorrupt means the bytes are not a consistent record.
	ErrCorrupt = errors.New("wire: corrupt record")
)

func hostLen(v6 bool) int {
	if v6 {
		return hostV6Len
	}
	return hostV4Len
}

// RecordSize returns the encoded size of a record (Java's
// CommitLog.calMsgLength: 91+n+t+p
// with IPv4 hosts, each IPv6 host adding 12).
func RecordSize(bodyLen, topicLen, propsLen int, bornV6, storeV6 bool) int {
	return fixedBase + hostLen(bornV6) + hostLen(storeV6) + bodyLen + topicLen + propsLen
}

// BodyCRC returns the BODYCRC field for body. Java stores
// UtilAll.crc32(body) = CRC32 & 0x7FFFFFFF, so the sign bit is always clear;
// we write the same value so Java tools and replicas checking CRCs accept our
// records. CheckRecord accepts both the masked and the plain CRC32.
func BodyCRC(body []byte) int32 {
	return int32(crc32.ChecksumIEEE(body) & 0x7FFFFFFF)
}

// Record is a message to encode in the stored-record layout. Hosts are in
// raw wire form (see HostBytes): 8 bytes for IPv4, 20 for IPv6. The IPv6
// sysFlag bits are derived from the host lengths when encoding.
type Record struct {
	Topic                     string
	QueueID                   int32
	Flag                      int32
	QueueOffset               int64
	PhysicalOffset            int64
	SysFlag                   int32
	BornTimestamp             int64
	BornHost                  []byte
	StoreTimestamp            int64
	StoreHost                 []byte
	ReconsumeTimes            int32
	PreparedTransactionOffset int64
	Body                      []byte
	Properties                []byte // serialised properties string (see props.go)
}

// Size returns the encoded size of r.
func (r *Record) Size() int {
	return RecordSize(len(r.Body), len(r.Topic), len(r.Properties),
		len(r.BornHost) == hostV6Len, len(r.StoreHost) == hostV6Len)
}

// EncodeTo writes r into dst in the stored-record layout with a freshly
// computed BODYCRC and returns the number of bytes written (r.Size()).
// dst must be at least r.Size() bytes long. Callers validate limits
// (topic ≤ MaxTopicLen, properties ≤ MaxPropertiesLen) beforehand.
func (r *Record) EncodeTo(dst []byte) int {
	return r.EncodeToCRC(dst, BodyCRC(r.Body))
}

// EncodeToCRC is EncodeTo with a precomputed BODYCRC, so a caller can hash
// the body before taking a lock.
func (r *Record) EncodeToCRC(dst []byte, bodyCRC int32) int {
	size := r.Size()
	dst = dst[:size] // single bounds check for everything below
	be := binary.BigEndian

	sysFlag := r.SysFlag &^ (SysFlagBornHostV6 | SysFlagStoreHostV6)
	if len(r.BornHost) == hostV6Len {
		sysFlag |= SysFlagBornHostV6
	}
	if len(r.StoreHost) == hostV6Len {
		sysFlag |= SysFlagStoreHostV6
	}

	be.PutUint32(dst[offTotalSize:], uint32(size))
	be.PutUint32(dst[offMagic:], magicMessageBits)
	be.PutUint32(dst[offBodyCRC:], uint32(bodyCRC))
	be.PutUint32(dst[offQueueID:], uint32(r.QueueID))
	be.PutUint32(dst[offFlag:], uint32(r.Flag))
	be.PutUint64(dst[offQueueOffset:], uint64(r.QueueOffset))
	be.PutUint64(dst[offPhysicalOffset:], uint64(r.PhysicalOffset))
	be.PutUint32(dst[offSysFlag:], uint32(sysFlag))
	be.PutUint64(dst[offBornTimestamp:], uint64(r.BornTimestamp))
	p := offBornHost
	p += putHost(dst[p:], r.BornHost)
	be.PutUint64(dst[p:], uint64(r.StoreTimestamp))
	p += 8
	p += putHost(dst[p:], r.StoreHost)
	be.PutUint32(dst[p:], uint32(r.ReconsumeTimes))
	p += 4
	be.PutUint64(dst[p:], uint64(r.PreparedTransactionOffset))
	p += 8
	be.PutUint32(dst[p:], uint32(len(r.Body)))
	p += 4
	p += copy(dst[p:], r.Body)
	dst[p] = byte(len(r.Topic))
	p++
	p += copy(dst[p:], r.Topic)
	be.PutUint16(dst[p:], uint16(len(r.Properties)))
	p += 2
	copy(dst[p:], r.Properties)
	return size
}

// EncodeBlank writes the end-of-file filler header [size][MagicBlank]
// (as Java's CommitLog writes at a file's end) into dst[:BlankSize]; size
// is the rest of the file,
// header included.
func EncodeBlank(dst []byte, size int) {
	binary.BigEndian.PutUint32(dst[0:], uint32(size))
	binary.BigEndian.PutUint32(dst[4:], magicBlankBits)
}

// putHost writes a host in raw form: 20 bytes when h is an IPv6 host,
// otherwise exactly 8 bytes (h zero-padded or cut; callers validate).
func putHost(dst, h []byte) int {
	if len(h) == hostV6Len {
		return copy(dst[:hostV6Len], h)
	}
	n := copy(dst[:hostV4Len], h)
	clear(dst[n:hostV4Len])
	return hostV4Len
}

// RecordView reads fields of an encoded record in place. Accessors never
// panic: on bytes too short for a field they return zero/nil, so a view is
// safe on any input but only meaningful after CheckRecord accepted it.
type RecordView []byte

func (v RecordView) u16(off int) uint16 {
	if off < 0 || off+2 > len(v) {
		return 0
	}
	return binary.BigEndian.Uint16(v[off:])
}

func (v RecordView) u32(off int) uint32 {
	if off < 0 || off+4 > len(v) {
		return 0
	}
	return binary.BigEndian.Uint32(v[off:])
}

func (v RecordView) u64(off int) uint64 {
	if off < 0 || off+8 > len(v) {
		return 0
	}
	return binary.BigEndian.Uint64(v[off:])
}

func (v RecordView) slice(off, n int) []byte {
	if off < 0 || n < 0 || off+n > len(v) {
		return nil
	}
	return v[off : off+n : off+n]
}

func (v RecordView) TotalSize() int32      { return int32(v.u32(offTotalSize)) }
func (v RecordView) Magic() int32          { return int32(v.u32(offMagic)) }
func (v RecordView) BodyCRC() int32        { return int32(v.u32(offBodyCRC)) }
func (v RecordView) QueueID() int32        { return int32(v.u32(offQueueID)) }
func (v RecordView) Flag() int32           { return int32(v.u32(offFlag)) }
func (v RecordView) QueueOffset() int64    { return int64(v.u64(offQueueOffset)) }
func (v RecordView) PhysicalOffset() int64 { return int64(v.u64(offPhysicalOffset)) }
func (v RecordView) SysFlag() int32        { return int32(v.u32(offSysFlag)) }
func (v RecordView) BornTimestamp() int64  { return int64(v.u64(offBornTimestamp)) }

func (v RecordView) bornHostLen() int  { return hostLen(v.SysFlag()&SysFlagBornHostV6 != 0) }
func (v RecordView) storeHostLen() int { return hostLen(v.SysFlag()&SysFlagStoreHostV6 != 0) }

// offStoreTimestamp .. offBodyLen locate the fields after the born host.
func (v RecordView) offStoreTimestamp() int { return offBornHost + v.bornHostLen() }
func (v RecordView) offStoreHost() int      { return v.offStoreTimestamp() + 8 }
func (v RecordView) offReconsume() int      { return v.offStoreHost() + v.storeHostLen() }
func (v RecordView) offPrepared() int       { return v.offReconsume() + 4 }

// offBodyLen reads the sysFlag once: the read path finds every record's
// topic through it (the consume-queue check), so it stays a few loads.
func (v RecordView) offBodyLen() int {
	sf := v.SysFlag()
	return offBornHost + hostLen(sf&SysFlagBornHostV6 != 0) + 8 + hostLen(sf&SysFlagStoreHostV6 != 0) + 4 + 8
}

// BornHost returns the raw born host (8 or 20 bytes).
func (v RecordView) BornHost() []byte { return v.slice(offBornHost, v.bornHostLen()) }

func (v RecordView) StoreTimestamp() int64 { return int64(v.u64(v.offStoreTimestamp())) }

// StoreHost returns the raw store host (8 or 20 bytes).
func (v RecordView) StoreHost() []byte { return v.slice(v.offStoreHost(), v.storeHostLen()) }

func (v RecordView) ReconsumeTimes() int32 { return int32(v.u32(v.offReconsume())) }

func (v RecordView) PreparedTransactionOffset() int64 { return int64(v.u64(v.offPrepared())) }

// bodyPos returns the start and length of the body, or -1 if unreadable.
func (v RecordView) bodyPos() (int, int) {
	off := v.offBodyLen()
	n := int(int32(v.u32(off)))
	start := off + 4
	if n < 0 || start+n > len(v) {
		return -1, 0
	}
	return start, n
}

// Body returns the body as stored (still compressed if SysFlagCompressed).
func (v RecordView) Body() []byte {
	start, n := v.bodyPos()
	if start < 0 {
		return nil
	}
	return v.slice(start, n)
}

// topicPos returns the start and length of the topic, or -1.
func (v RecordView) topicPos() (int, int) {
	start, n := v.bodyPos()
	if start < 0 || start+n >= len(v) {
		return -1, 0
	}
	tl := int(v[start+n])
	ts := start + n + 1
	if ts+tl > len(v) {
		return -1, 0
	}
	return ts, tl
}

// Topic returns the topic bytes.
func (v RecordView) Topic() []byte {
	ts, tl := v.topicPos()
	if ts < 0 {
		return nil
	}
	return v.slice(ts, tl)
}

// Properties returns the serialised properties string.
func (v RecordView) Properties() []byte {
	ts, tl := v.topicPos()
	if ts < 0 {
		return nil
	}
	off := ts + tl
	if off+2 > len(v) {
		return nil
	}
	return v.slice(off+2, int(int16(v.u16(off))))
}

// CheckRecord validates the record at the start of b and returns its size.
//
// It checks the magic code, that TOTALSIZE fits in b, that the body, topic
// and properties lengths add up to exactly TOTALSIZE, and the body CRC.
// Errors: ErrEmpty (zero header: end of written data), ErrBlank (filler;
// size is its declared length, which is ≤ len(b)), ErrTruncated (needs more
// bytes than b holds), ErrCorrupt (wrapped with detail). It never panics,
// whatever b holds.
func CheckRecord(b []byte) (size int, err error) {
	if len(b) < 8 {
		return 0, ErrTruncated
	}
	v := RecordView(b)
	total := int(v.TotalSize())
	magic := v.Magic()
	switch {
	case total == 0 && magic == 0:
		return 0, ErrEmpty
	case magic == MagicBlank:
		if total < BlankSize || total > len(b) {
			return 0, fmt.Errorf("%w: blank filler of size %d with %d bytes left", ErrCorrupt, total, len(b))
		}
		return total, ErrBlank
	case magic != MagicMessage:
		return 0, fmt.Errorf("%w: bad magic %#08x", ErrCorrupt, uint32(magic))
	case total < MinRecordSize:
		return 0, fmt.Errorf("%w: total size %d below minimum %d", ErrCorrupt, total, MinRecordSize)
	case total > len(b):
		return 0, fmt.Errorf("%w: total size %d, %d bytes available", ErrTruncated, total, len(b))
	}
	v = v[:total]
	sysFlag := v.SysFlag()
	fixed := fixedBase + hostLen(sysFlag&SysFlagBornHostV6 != 0) + hostLen(sysFlag&SysFlagStoreHostV6 != 0)
	if total < fixed {
		return 0, fmt.Errorf("%w: total size %d below fixed part %d", ErrCorrupt, total, fixed)
	}
	bodyLen := int(int32(v.u32(v.offBodyLen())))
	if bodyLen < 0 || fixed+bodyLen > total {
		return 0, fmt.Errorf("%w: body length %d does not fit total size %d", ErrCorrupt, bodyLen, total)
	}
	bodyStart := v.offBodyLen() + 4
	topicLen := int(v[bodyStart+bodyLen])
	if topicLen > MaxTopicLen || fixed+bodyLen+topicLen > total {
		return 0, fmt.Errorf("%w: topic length %d does not fit total size %d", ErrCorrupt, topicLen, total)
	}
	propsLen := int(int16(v.u16(bodyStart + bodyLen + 1 + topicLen)))
	if propsLen < 0 || fixed+bodyLen+topicLen+propsLen != total {
		return 0, fmt.Errorf("%w: lengths body=%d topic=%d properties=%d do not add up to total size %d",
			ErrCorrupt, bodyLen, topicLen, propsLen, total)
	}
	crc := crc32.ChecksumIEEE(v[bodyStart : bodyStart+bodyLen])
	if stored := uint32(v.BodyCRC()); stored != crc && stored != crc&0x7FFFFFFF {
		return 0, fmt.Errorf("%w: body crc %#08x, computed %#08x", ErrCorrupt, stored, crc)
	}
	return total, nil
}

// Record returns v's fields as a Record whose slices alias v, e.g. to
// encode the message again under another topic.
func (v RecordView) Record() Record {
	return Record{
		Topic: string(v.Topic()), QueueID: v.QueueID(), Flag: v.Flag(), QueueOffset: v.QueueOffset(),
		PhysicalOffset: v.PhysicalOffset(), SysFlag: v.SysFlag(), BornTimestamp: v.BornTimestamp(),
		BornHost: v.BornHost(), StoreTimestamp: v.StoreTimestamp(), StoreHost: v.StoreHost(),
		ReconsumeTimes: v.ReconsumeTimes(), PreparedTransactionOffset: v.PreparedTransactionOffset(),
		Body: v.Body(), Properties: v.Properties(),
	}
}
