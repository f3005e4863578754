package amqp

import (
	"encoding/binary"
	"fmt"
)

// Primitive decoders take the buffer and an offset and return the value and
// the offset after it. Shortstr and longstr decoders take the previous value
// of the field and return it unchanged when the bytes are equal: a struct
// reused per channel then decodes repeated names (exchange, routing key)
// without allocating.

func readOctet(b []byte, off int) (uint8, int, error) {
	if len(b)-off < 1 {
		return 0, off, errTruncated
	}
	return b[off], off + 1, nil
}

func readShort(b []byte, off int) (uint16, int, error) {
	if len(b)-off < 2 {
		return 0, off, errTruncated
	}
	return binary.BigEndian.Uint16(b[off:]), off + 2, nil
}

func readLong(b []byte, off int) (uint32, int, error) {
	if len(b)-off < 4 {
		return 0, off, errTruncated
	}
	return binary.BigEndian.Uint32(b[off:]), off + 4, nil
}

func readLonglong(b []byte, off int) (uint64, int, error) {
	if len(b)-off < 8 {
		return 0, off, errTruncated
	}
	return binary.BigEndian.Uint64(b[off:]), off + 8, nil
}

// shortstrBytes returns the bytes of the shortstr at off, aliasing b.
func shortstrBytes(b []byte, off int) ([]byte, int, error) {
	if len(b)-off < 1 {
		return nil, off, errTruncated
	}
	n := int(b[off])
	off++
	if len(b)-off < n {
		return nil, off, errTruncated
	}
	return b[off : off+n], off + n, nil
}

// longstrBytes returns the bytes of the longstr at off, aliasing b. The
// length is checked against what is left before any use, so a forged length
// never allocates.
func longstrBytes(b []byte, off int) ([]byte, int, error) {
	if len(b)-off < 4 {
		return nil, off, errTruncated
	}
	n := uint64(binary.BigEndian.Uint32(b[off:]))
	off += 4
	if uint64(len(b)-off) < n {
		return nil, off, errTruncated
	}
	return b[off : off+int(n)], off + int(n), nil
}

func readShortstr(b []byte, off int, prev string) (string, int, error) {
	s, off, err := shortstrBytes(b, off)
	if err != nil || string(s) == prev {
		return prev, off, err
	}
	return string(s), off, nil
}

func readLongstr(b []byte, off int, prev string) (string, int, error) {
	s, off, err := longstrBytes(b, off)
	if err != nil || string(s) == prev {
		return prev, off, err
	}
	return string(s), off, nil
}

func appendShort(dst []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(dst, v) }

func appendLong(dst []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(dst, v) }

func appendLonglong(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }

func appendShortstr(dst []byte, s string) ([]byte, error) {
	if len(s) > 255 {
		return dst, fmt.Errorf("short string of %d bytes exceeds 255", len(s))
	}
	dst = append(dst, byte(len(s)))
	return append(dst, s...), nil
}

func appendLongstr(dst []byte, s string) []byte {
	dst = appendLong(dst, uint32(len(s)))
	return append(dst, s...)
}

func boolBit(v bool, bit uint8) uint8 {
	if v {
		return bit
	}
	return 0
}
