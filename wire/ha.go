package wire

// Master–slave replication frames on haListenPort. This is raw TCP, not
// remoting frames: no length prefix, no magic, big-endian integers.
//
// Classic (RocketMQ 4.x HAService, 5.x DefaultHAService; apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/ha/HAConnection.java and
// HAService.java, 5.x store/.../ha/DefaultHAClient.java and
// DefaultHAConnection.java):
//
//	slave → master report:   int64 slave max commit-log offset
//	master → slave transfer: int64 offset of the first body byte, int32 body
//	                         length n (0 = heartbeat), n raw commit-log bytes
//
// AutoSwitch (RocketMQ 5 controller mode; apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/ha/autoswitch/AutoSwitchHAClient.java
// and AutoSwitchHAConnection.java): every frame starts with the int32
// HAConnectionState ordinal.
//
// Encoders append into the caller's buffer and decoders read fixed-size
// headers without allocating: the streaming path runs once per chunk.

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Classic frame sizes (DefaultHAClient.REPORT_HEADER_SIZE,
// DefaultHAConnection.TRANSFER_HEADER_SIZE).
const (
	HAReportSize         = 8
	HATransferHeaderSize = 12
)

// ErrHAFrame marks a malformed HA frame; the connection carrying it is closed.
var ErrHAFrame = errors.New("wire: malformed HA frame")

// AppendHAReport appends a classic slave report: the slave's max offset,
// which is both its request ("send from here") and its ack.
func AppendHAReport(dst []byte, maxOffset int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(maxOffset))
}

// HAReport decodes a classic slave report from the first 8 bytes of b.
// A negative offset is malformed.
func HAReport(b []byte) (int64, error) {
	if len(b) < HAReportSize {
		return 0, fmt.Errorf("%w: report of %d bytes, want 8", ErrHAFrame, len(b))
	}
	off := int64(binary.BigEndian.Uint64(b))
	if off < 0 {
		return 0, fmt.Errorf("%w: negative slave offset %d", ErrHAFrame, off)
	}
	return off, nil
}

// AppendHATransferHeader appends a classic master frame header for n body
// bytes starting at commit-log offset off (n = 0: heartbeat).
func AppendHATransferHeader(dst []byte, off int64, n int) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(off))
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// HATransferHeader decodes a classic master frame header from the first 12
// bytes of b: the offset of the body's first byte and the body length.
// A negative offset or length is malformed.
func HATransferHeader(b []byte) (off int64, n int, err error) {
	if len(b) < HATransferHeaderSize {
		return 0, 0, fmt.Errorf("%w: transfer header of %d bytes, want 12", ErrHAFrame, len(b))
	}
	off = int64(binary.BigEndian.Uint64(b))
	n32 := int32(binary.BigEndian.Uint32(b[8:]))
	if off < 0 || n32 < 0 {
		return 0, 0, fmt.Errorf("%w: transfer header offset %d length %d", ErrHAFrame, off, n32)
	}
	return off, int(n32), nil
}

// HAState is an AutoSwitch connection state (5.x HAConnectionState ordinal),
// the first int32 of every AutoSwitch frame.
type HAState int32

// AutoSwitch connection states.
const (
	HAStateReady HAState = iota
	HAStateHandshake
	HAStateTransfer
	HAStateSuspend
	HAStateShutdown
)

// AutoSwitch frame sizes.
const (
	HASlaveHandshakeSize        = 16 // state, int16 syncFromLastFile, int16 asyncLearner, int64 broker id
	HAMasterHandshakeHeaderSize = 20 // state, int32 body size, int64 max offset, int32 last epoch
	HAEpochEntrySize            = 12 // int32 epoch, int64 start offset
	HAMasterTransferHeaderSize  = 36 // state, int32 body size, int64 offset, int32 epoch, int64 epoch start, int64 confirm
	HASlaveTransferSize         = 12 // state, int64 slave max offset
)

// HASlaveHandshake is the slave's first AutoSwitch frame.
type HASlaveHandshake struct {
	SyncFromLastFile bool // an empty slave wants only the master's last file
	AsyncLearner     bool // never joins the SyncStateSet
	BrokerID         int64
}

// AppendHASlaveHandshake appends h as a 16-byte HANDSHAKE frame.
func AppendHASlaveHandshake(dst []byte, h HASlaveHandshake) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(HAStateHandshake))
	dst = binary.BigEndian.AppendUint16(dst, boolBit(h.SyncFromLastFile))
	dst = binary.BigEndian.AppendUint16(dst, boolBit(h.AsyncLearner))
	return binary.BigEndian.AppendUint64(dst, uint64(h.BrokerID))
}

// DecodeHASlaveHandshake reads a slave HANDSHAKE frame from the first 16 bytes of b.
func DecodeHASlaveHandshake(b []byte) (HASlaveHandshake, error) {
	if err := haStateAt(b, HASlaveHandshakeSize, HAStateHandshake); err != nil {
		return HASlaveHandshake{}, err
	}
	sync, err1 := bitBool(binary.BigEndian.Uint16(b[4:]))
	learner, err2 := bitBool(binary.BigEndian.Uint16(b[6:]))
	if err := errors.Join(err1, err2); err != nil {
		return HASlaveHandshake{}, err
	}
	return HASlaveHandshake{SyncFromLastFile: sync, AsyncLearner: learner, BrokerID: int64(binary.BigEndian.Uint64(b[8:]))}, nil
}

// HAEpochEntry is one master epoch and the commit-log offset it starts at
// (5.x EpochEntry).
type HAEpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// HAMasterHandshake is the header of the master's HANDSHAKE answer; the
// body that follows holds Entries epoch entries.
type HAMasterHandshake struct {
	Entries   int // body size / 12
	MaxOffset int64
	LastEpoch int32
}

// AppendHAMasterHandshake appends the master's HANDSHAKE frame: header and
// one 12-byte entry per epoch, oldest first.
func AppendHAMasterHandshake(dst []byte, maxOffset int64, lastEpoch int32, epochs []HAEpochEntry) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(HAStateHandshake))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(epochs)*HAEpochEntrySize))
	dst = binary.BigEndian.AppendUint64(dst, uint64(maxOffset))
	dst = binary.BigEndian.AppendUint32(dst, uint32(lastEpoch))
	for _, e := range epochs {
		dst = binary.BigEndian.AppendUint32(dst, uint32(e.Epoch))
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.StartOffset))
	}
	return dst
}

// DecodeHAMasterHandshake reads the 20-byte header of a master HANDSHAKE
// frame. The body size must be a non-negative multiple of 12.
func DecodeHAMasterHandshake(b []byte) (HAMasterHandshake, error) {
	if err := haStateAt(b, HAMasterHandshakeHeaderSize, HAStateHandshake); err != nil {
		return HAMasterHandshake{}, err
	}
	size := int32(binary.BigEndian.Uint32(b[4:]))
	if size < 0 || size%HAEpochEntrySize != 0 {
		return HAMasterHandshake{}, fmt.Errorf("%w: handshake body size %d is not a multiple of 12", ErrHAFrame, size)
	}
	return HAMasterHandshake{
		Entries:   int(size / HAEpochEntrySize),
		MaxOffset: int64(binary.BigEndian.Uint64(b[8:])),
		LastEpoch: int32(binary.BigEndian.Uint32(b[16:])),
	}, nil
}

// AppendHAEpochEntries decodes the epoch entries of a HANDSHAKE body and
// appends them to dst.
func AppendHAEpochEntries(dst []HAEpochEntry, body []byte) ([]HAEpochEntry, error) {
	if len(body)%HAEpochEntrySize != 0 {
		return dst, fmt.Errorf("%w: epoch body of %d bytes is not a multiple of 12", ErrHAFrame, len(body))
	}
	for p := 0; p < len(body); p += HAEpochEntrySize {
		dst = append(dst, HAEpochEntry{
			Epoch:       int32(binary.BigEndian.Uint32(body[p:])),
			StartOffset: int64(binary.BigEndian.Uint64(body[p+4:])),
		})
	}
	return dst, nil
}

// HAMasterTransfer is the 36-byte header of a master TRANSFER frame.
type HAMasterTransfer struct {
	BodyLen          int // 0 = heartbeat
	Offset           int64
	Epoch            int32
	EpochStartOffset int64
	ConfirmOffset    int64
}

// AppendHAMasterTransfer appends the header of a master TRANSFER frame.
func AppendHAMasterTransfer(dst []byte, h HAMasterTransfer) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(HAStateTransfer))
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.BodyLen))
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.Offset))
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.Epoch))
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.EpochStartOffset))
	return binary.BigEndian.AppendUint64(dst, uint64(h.ConfirmOffset))
}

// DecodeHAMasterTransfer reads the 36-byte header of a master TRANSFER frame.
func DecodeHAMasterTransfer(b []byte) (HAMasterTransfer, error) {
	if err := haStateAt(b, HAMasterTransferHeaderSize, HAStateTransfer); err != nil {
		return HAMasterTransfer{}, err
	}
	h := HAMasterTransfer{
		BodyLen:          int(int32(binary.BigEndian.Uint32(b[4:]))),
		Offset:           int64(binary.BigEndian.Uint64(b[8:])),
		Epoch:            int32(binary.BigEndian.Uint32(b[16:])),
		EpochStartOffset: int64(binary.BigEndian.Uint64(b[20:])),
		ConfirmOffset:    int64(binary.BigEndian.Uint64(b[28:])),
	}
	if h.BodyLen < 0 || h.Offset < 0 {
		return HAMasterTransfer{}, fmt.Errorf("%w: transfer offset %d length %d", ErrHAFrame, h.Offset, h.BodyLen)
	}
	return h, nil
}

// AppendHASlaveTransfer appends a slave TRANSFER report (request and ack).
func AppendHASlaveTransfer(dst []byte, maxOffset int64) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(HAStateTransfer))
	return binary.BigEndian.AppendUint64(dst, uint64(maxOffset))
}

// DecodeHASlaveTransfer reads a slave TRANSFER report.
func DecodeHASlaveTransfer(b []byte) (int64, error) {
	if err := haStateAt(b, HASlaveTransferSize, HAStateTransfer); err != nil {
		return 0, err
	}
	off := int64(binary.BigEndian.Uint64(b[4:]))
	if off < 0 {
		return 0, fmt.Errorf("%w: negative slave offset %d", ErrHAFrame, off)
	}
	return off, nil
}

// HAFrameState returns the state ordinal an AutoSwitch frame starts with.
func HAFrameState(b []byte) (HAState, error) {
	if len(b) < 4 {
		return 0, fmt.Errorf("%w: %d bytes, want a state", ErrHAFrame, len(b))
	}
	s := HAState(binary.BigEndian.Uint32(b))
	if s < HAStateReady || s > HAStateShutdown {
		return 0, fmt.Errorf("%w: unknown connection state %d", ErrHAFrame, s)
	}
	return s, nil
}

func haStateAt(b []byte, size int, want HAState) error {
	if len(b) < size {
		return fmt.Errorf("%w: %d bytes, want %d", ErrHAFrame, len(b), size)
	}
	s, err := HAFrameState(b)
	if err != nil {
		return err
	}
	if s != want {
		return fmt.Errorf("%w: state %d, want %d", ErrHAFrame, s, want)
	}
	return nil
}

func boolBit(v bool) uint16 {
	if v {
		return 1
	}
	return 0
}

func bitBool(v uint16) (bool, error) {
	switch v {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	return false, fmt.Errorf("%w: flag %d, want 0 or 1", ErrHAFrame, v)
}
