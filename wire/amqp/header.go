package amqp

import (
	"encoding/binary"
	"fmt"
)

// ContentHeader is a content header frame's payload. Props is the property
// list exactly as sent (after the flags word), aliasing the frame payload:
// the broker stores it byte-exact, and Properties or Lookup decode it on
// demand.
type ContentHeader struct {
	ClassID  uint16
	BodySize uint64
	Flags    uint16
	Props    []byte
}

// Read decodes and validates a header payload without allocating: class 60
// (basic, the only class with content) else 505 UNEXPECTED_FRAME; flag bit 0
// (a continuation flags word nobody sends), bit 1 (no such property), a
// truncated or malformed property list, or a malformed headers table, 502
// SYNTAX_ERROR.
func (h *ContentHeader) Read(payload []byte) error {
	if len(payload) < 14 {
		return Errorf(SyntaxError, "content header of %d bytes, want at least 14", len(payload))
	}
	h.ClassID = binary.BigEndian.Uint16(payload)
	if h.ClassID != ClassBasic {
		return Errorf(UnexpectedFrame, "content header for class %d, want %d", h.ClassID, ClassBasic)
	}
	h.BodySize = binary.BigEndian.Uint64(payload[4:])
	h.Flags = binary.BigEndian.Uint16(payload[12:])
	h.Props = payload[14:]
	if h.Flags&1 != 0 {
		return Errorf(SyntaxError, "content header property flags 0x%04x continue into a second word", h.Flags)
	}
	if h.Flags&2 != 0 {
		// basic has 14 properties (bits 15..2); bit 1 names none.
		return Errorf(SyntaxError, "content header property flags 0x%04x set an undefined property", h.Flags)
	}
	if end, err := walkProperties(h.Flags, h.Props, -1); err != nil {
		return Errorf(SyntaxError, "content header properties: %v", err)
	} else if end != len(h.Props) {
		return Errorf(SyntaxError, "content header properties: %v", errTrailing)
	}
	return nil
}

// walkProperties steps over the properties flags announces. With stop set to
// a property index it returns that property's start offset instead.
func walkProperties(flags uint16, b []byte, stop int) (int, error) {
	off := 0
	var err error
	for i, kind := range propertyKinds {
		if flags&(0x8000>>i) == 0 {
			continue
		}
		if i == stop {
			return off, nil
		}
		switch kind {
		case 's':
			_, off, err = shortstrBytes(b, off)
		case 'o':
			_, off, err = readOctet(b, off)
		case 'T':
			_, off, err = readLonglong(b, off)
		case 'F':
			off, err = validateTable(b, off, 0)
		}
		if err != nil {
			return off, fmt.Errorf("property %d: %w", i, err)
		}
	}
	return off, nil
}

// Lookup returns the raw value of one property (flag is one of the Flag
// constants) without allocating: a shortstr's bytes, the octet, the 8-byte
// timestamp, or the headers table with its length prefix. Only valid after a
// successful Read.
func (h *ContentHeader) Lookup(flag uint16) ([]byte, bool) {
	if h.Flags&flag == 0 || flag&(flag-1) != 0 {
		return nil, false
	}
	i := 0
	for 0x8000>>i != int(flag) {
		i++
	}
	if i >= len(propertyKinds) {
		return nil, false
	}
	off, err := walkProperties(h.Flags, h.Props, i)
	if err != nil {
		return nil, false
	}
	var v []byte
	switch propertyKinds[i] {
	case 's':
		v, _, err = shortstrBytes(h.Props, off)
	case 'o':
		v, err = h.Props[off:off+1], nil
	case 'T':
		v, err = h.Props[off:off+8], nil
	case 'F':
		var end int
		end, err = validateTable(h.Props, off, 0)
		v = h.Props[off:end]
	}
	return v, err == nil
}

// AppendReplacingShortstr appends the property flags word and list of h
// with the shortstr property flag (present in h) set to v; every other
// property keeps its bytes (the broker rewrites reply-to for direct
// reply-to without re-encoding headers). Only valid after a successful
// Read.
func (h *ContentHeader) AppendReplacingShortstr(dst []byte, flag uint16, v string) ([]byte, error) {
	i := 0
	for i < len(propertyKinds) && 0x8000>>i != int(flag) {
		i++
	}
	if i == len(propertyKinds) || propertyKinds[i] != 's' || h.Flags&flag == 0 {
		return dst, fmt.Errorf("property flag 0x%04x is not a shortstr present in flags 0x%04x", flag, h.Flags)
	}
	off, err := walkProperties(h.Flags, h.Props, i)
	if err != nil {
		return dst, err
	}
	_, end, err := shortstrBytes(h.Props, off)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	dst = appendShort(dst, h.Flags)
	dst = append(dst, h.Props[:off]...)
	if dst, err = appendShortstr(dst, v); err != nil {
		return dst[:start], err
	}
	return append(dst, h.Props[end:]...), nil
}

// Properties decodes the property list into p.
func (h *ContentHeader) Properties(p *Properties) error {
	if err := readProperties(h.Flags, h.Props, p); err != nil {
		return Errorf(SyntaxError, "content header properties: %v", err)
	}
	return nil
}

// AppendHeaderFrame appends a content header frame carrying a raw property
// list, e.g. one stored from a publish: deliveries forward it unchanged.
func AppendHeaderFrame(dst []byte, channel, classID uint16, bodySize uint64, flags uint16, props []byte) []byte {
	dst, start := BeginFrame(dst, FrameHeader, channel)
	dst = appendShort(dst, classID)
	dst = appendShort(dst, 0) // weight, unused
	dst = appendLonglong(dst, bodySize)
	dst = appendShort(dst, flags)
	dst = append(dst, props...)
	return EndFrame(dst, start)
}

// AppendProperties appends p's property list and returns the flags that
// announce it, for AppendHeaderFrame.
func AppendProperties(dst []byte, p *Properties) (flags uint16, out []byte, err error) {
	start := len(dst)
	flags, out, err = appendProperties(dst, p)
	if err != nil {
		return 0, dst[:start], err
	}
	return flags, out, nil
}

// AppendPropertiesHeaderFrame appends a content header frame for p.
func AppendPropertiesHeaderFrame(dst []byte, channel uint16, bodySize uint64, p *Properties) ([]byte, error) {
	dst, start := BeginFrame(dst, FrameHeader, channel)
	dst = appendShort(dst, ClassBasic)
	dst = appendShort(dst, 0)
	dst = appendLonglong(dst, bodySize)
	flagsAt := len(dst)
	dst = appendShort(dst, 0)
	flags, out, err := appendProperties(dst, p)
	if err != nil {
		return dst[:start], err
	}
	binary.BigEndian.PutUint16(out[flagsAt:], flags)
	return EndFrame(out, start), nil
}
