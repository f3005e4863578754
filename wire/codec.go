package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"
)

// Errors returned by DecodeFrame. A connection that sees one is closed: the
// stream can no longer be trusted to be aligned on frame boundaries.
var (
	ErrFrameTooLarge = errors.New("frame exceeds 16 MiB")
	ErrBadFrame      = errors.New("malformed frame")
	ErrBadHeader     = errors.New("malformed header")
)

// FrameLength validates the 4-byte length prefix and returns the number of
// bytes that follow it.
func FrameLength(prefix []byte) (int, error) {
	n := int(int32(binary.BigEndian.Uint32(prefix)))
	if n < 4 {
		return 0, fmt.Errorf("%w: length %d", ErrBadFrame, n)
	}
	if n > MaxFrameSize {
		return 0, fmt.Errorf("%w: length %d", ErrFrameTooLarge, n)
	}
	return n, nil
}

// ReadCommand reads one length-prefixed frame from r and decodes it. The
// command aliases a buffer allocated for it alone, so it may be kept. A
// stream that ends before the prefix returns an error wrapping io.EOF; one
// cut inside a frame, io.ErrUnexpectedEOF. Connection read loops, which
// reuse their buffers and bound what an unread frame may pin, do not use it.
func ReadCommand(r io.Reader) (*Command, error) {
	var prefix [4]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return nil, fmt.Errorf("read frame length: %w", err)
	}
	n, err := FrameLength(prefix[:])
	if err != nil {
		return nil, err
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(r, frame); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read frame of %d bytes: %w", n, err)
	}
	c := new(Command)
	if err := DecodeFrame(frame, c); err != nil {
		return nil, err
	}
	return c, nil
}

// DecodeFrame decodes one frame (the bytes after the length prefix) into c.
// JSON string escapes are undone in place, so c aliases and modifies frame.
func DecodeFrame(frame []byte, c *Command) error {
	if len(frame) < 4 {
		return fmt.Errorf("%w: %d bytes", ErrBadFrame, len(frame))
	}
	word := binary.BigEndian.Uint32(frame)
	hl := int(word & 0xFFFFFF)
	st := byte(word >> 24)
	if hl > len(frame)-4 {
		return fmt.Errorf("%w: header length %d beyond frame of %d", ErrBadFrame, hl, len(frame))
	}
	hdr := frame[4 : 4+hl]
	ext := c.Ext[:0]
	*c = Command{Ext: ext, SerializeType: st}
	var err error
	switch st {
	case SerializeJSON:
		err = decodeJSONHeader(hdr, c)
	case SerializeRocketMQ:
		err = decodeBinaryHeader(hdr, c)
	default:
		err = fmt.Errorf("%w: unknown serialize type %d", ErrBadHeader, st)
	}
	if err != nil {
		return err
	}
	if body := frame[4+hl:]; len(body) > 0 {
		c.Body = body
	}
	return nil
}

// AppendFrame appends c, encoded in c.SerializeType, to dst.
func AppendFrame(dst []byte, c *Command) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	if c.SerializeType == SerializeRocketMQ {
		dst = appendBinaryHeader(dst, c)
	} else {
		dst = appendJSONHeader(dst, c)
	}
	hl := len(dst) - start - 8
	dst = append(dst, c.Body...)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	binary.BigEndian.PutUint32(dst[start+4:], uint32(c.SerializeType)<<24|uint32(hl)&0xFFFFFF)
	return dst
}

// ---- ROCKETMQ binary header ----
// (apache/rocketmq remoting/src/main/java/org/apache/rocketmq/remoting/protocol/RocketMQSerializable.java)

func decodeBinaryHeader(h []byte, c *Command) error {
	if len(h) < 21 {
		return fmt.Errorf("%w: binary header of %d bytes", ErrBadHeader, len(h))
	}
	c.Code = int32(int16(binary.BigEndian.Uint16(h)))
	c.Language = h[2]
	c.Version = int32(int16(binary.BigEndian.Uint16(h[3:])))
	c.Opaque = int32(binary.BigEndian.Uint32(h[5:]))
	c.Flag = int32(binary.BigEndian.Uint32(h[9:]))
	rl := int(int32(binary.BigEndian.Uint32(h[13:])))
	p := 17
	if rl < 0 || rl > len(h)-p-4 {
		return fmt.Errorf("%w: remark length %d", ErrBadHeader, rl)
	}
	if rl > 0 {
		c.Remark = h[p : p+rl]
	}
	p += rl
	el := int(int32(binary.BigEndian.Uint32(h[p:])))
	p += 4
	if el < 0 || el > len(h)-p {
		return fmt.Errorf("%w: ext length %d", ErrBadHeader, el)
	}
	ext := h[p : p+el]
	for q := 0; q < len(ext); {
		if len(ext)-q < 2 {
			return fmt.Errorf("%w: truncated ext key length", ErrBadHeader)
		}
		kl := int(binary.BigEndian.Uint16(ext[q:]))
		q += 2
		if kl > len(ext)-q-4 {
			return fmt.Errorf("%w: ext key length %d", ErrBadHeader, kl)
		}
		k := ext[q : q+kl]
		q += kl
		vl := int(int32(binary.BigEndian.Uint32(ext[q:])))
		q += 4
		if vl < 0 || vl > len(ext)-q {
			return fmt.Errorf("%w: ext value length %d", ErrBadHeader, vl)
		}
		v := ext[q : q+vl]
		q += vl
		if kl > 0 && vl > 0 { // Java reads empty strings as null
			c.Ext = append(c.Ext, KV{Key: k, Value: v})
		}
	}
	return nil
}

func appendBinaryHeader(dst []byte, c *Command) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(c.Code))
	dst = append(dst, c.Language)
	dst = binary.BigEndian.AppendUint16(dst, uint16(c.Version))
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.Opaque))
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.Flag))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(c.Remark)))
	dst = append(dst, c.Remark...)
	lp := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	for _, kv := range c.Ext {
		if len(kv.Key) == 0 || len(kv.Value) == 0 {
			continue
		}
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(kv.Key)))
		dst = append(dst, kv.Key...)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(kv.Value)))
		dst = append(dst, kv.Value...)
	}
	binary.BigEndian.PutUint32(dst[lp:], uint32(len(dst)-lp-4))
	return dst
}

// ---- JSON header ----
// (apache/rocketmq remoting/src/main/java/org/apache/rocketmq/remoting/protocol/RemotingCommand.java)

func appendJSONHeader(dst []byte, c *Command) []byte {
	dst = append(dst, `{"code":`...)
	dst = strconv.AppendInt(dst, int64(c.Code), 10)
	dst = append(dst, `,"extFields":{`...)
	for i, kv := range c.Ext {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSONString(dst, kv.Key)
		dst = append(dst, ':')
		dst = AppendJSONString(dst, kv.Value)
	}
	dst = append(dst, `},"flag":`...)
	dst = strconv.AppendInt(dst, int64(c.Flag), 10)
	dst = append(dst, `,"language":"`...)
	dst = append(dst, LanguageName(c.Language)...)
	dst = append(dst, `","opaque":`...)
	dst = strconv.AppendInt(dst, int64(c.Opaque), 10)
	if len(c.Remark) > 0 {
		dst = append(dst, `,"remark":`...)
		dst = AppendJSONString(dst, c.Remark)
	}
	dst = append(dst, `,"serializeTypeCurrentRPC":"JSON","version":`...)
	dst = strconv.AppendInt(dst, int64(c.Version), 10)
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string literal. Control characters
// (the \x01/\x02 separators of message properties among them) are escaped as
// \u00XX like Java and Go peers do; other bytes pass through unchanged.
func AppendJSONString[T ~string | ~[]byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b >= 0x20 && b != '"' && b != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch b {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// jsonScanner parses a header object in place. It accepts any key order,
// unknown keys, null values and every escape fastjson or json-iterator emits.
type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) expect(ch byte) error {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != ch {
		return fmt.Errorf("%w: expected %q at %d", ErrBadHeader, ch, s.i)
	}
	s.i++
	return nil
}

func (s *jsonScanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// str parses a string literal, unescaping into the same buffer (escapes never
// grow when decoded, so the write cursor stays behind the read cursor).
func (s *jsonScanner) str() ([]byte, error) {
	if err := s.expect('"'); err != nil {
		return nil, err
	}
	start, w := s.i, s.i
	for s.i < len(s.b) {
		ch := s.b[s.i]
		switch {
		case ch == '"':
			s.i++
			return s.b[start:w:w], nil
		case ch == '\\':
			if s.i+1 >= len(s.b) {
				return nil, fmt.Errorf("%w: truncated escape", ErrBadHeader)
			}
			e := s.b[s.i+1]
			s.i += 2
			var out byte
			switch e {
			case '"', '\\', '/':
				out = e
			case 'b':
				out = '\b'
			case 'f':
				out = '\f'
			case 'n':
				out = '\n'
			case 'r':
				out = '\r'
			case 't':
				out = '\t'
			case 'u':
				r, ok := s.hex4()
				if !ok {
					return nil, fmt.Errorf("%w: bad \\u escape", ErrBadHeader)
				}
				if r >= 0xD800 && r < 0xDC00 && s.i+6 <= len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					save := s.i
					s.i += 2
					if lo, ok := s.hex4(); ok && lo >= 0xDC00 && lo < 0xE000 {
						r = (r-0xD800)<<10 + (lo - 0xDC00) + 0x10000
					} else {
						s.i = save
					}
				}
				w += utf8.EncodeRune(s.b[w:], r)
				continue
			default:
				return nil, fmt.Errorf("%w: bad escape \\%c", ErrBadHeader, e)
			}
			s.b[w] = out
			w++
		default:
			s.b[w] = ch
			w++
			s.i++
		}
	}
	return nil, fmt.Errorf("%w: unterminated string", ErrBadHeader)
}

func (s *jsonScanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, ch := range s.b[s.i : s.i+4] {
		switch {
		case ch >= '0' && ch <= '9':
			r = r<<4 | rune(ch-'0')
		case ch >= 'a' && ch <= 'f':
			r = r<<4 | rune(ch-'a'+10)
		case ch >= 'A' && ch <= 'F':
			r = r<<4 | rune(ch-'A'+10)
		default:
			return 0, false
		}
	}
	s.i += 4
	return r, true
}

// scalar returns the raw text of a number, true, false or null.
func (s *jsonScanner) scalar() ([]byte, error) {
	s.ws()
	start := s.i
	for s.i < len(s.b) {
		ch := s.b[s.i]
		if ch == ',' || ch == '}' || ch == ']' || ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' {
			break
		}
		s.i++
	}
	if s.i == start {
		return nil, fmt.Errorf("%w: expected a value at %d", ErrBadHeader, start)
	}
	return s.b[start:s.i], nil
}

// int32 parses a number that must fit Java's int: a wider value is a
// malformed header, not another value.
func (s *jsonScanner) int32(field string) (int32, error) {
	n, err := s.int()
	if err == nil && (n < math.MinInt32 || n > math.MaxInt32) {
		err = fmt.Errorf("%w: %s %d out of int32 range", ErrBadHeader, field, n)
	}
	return int32(n), err
}

func (s *jsonScanner) int() (int64, error) {
	v, err := s.scalar()
	if err != nil {
		return 0, err
	}
	if string(v) == "null" {
		return 0, nil
	}
	n, ok := ParseInt(v)
	if !ok {
		return 0, fmt.Errorf("%w: bad number %q", ErrBadHeader, v)
	}
	return n, nil
}

// skip skips any JSON value; depth bounds recursion on hostile input.
func (s *jsonScanner) skip(depth int) error {
	if depth > 32 {
		return fmt.Errorf("%w: nesting too deep", ErrBadHeader)
	}
	switch s.peek() {
	case '"':
		_, err := s.str()
		return err
	case '{', '[':
		closeCh := byte('}')
		if s.b[s.i] == '[' {
			closeCh = ']'
		}
		s.i++
		if s.peek() == closeCh {
			s.i++
			return nil
		}
		for {
			if closeCh == '}' {
				if _, err := s.str(); err != nil {
					return err
				}
				if err := s.expect(':'); err != nil {
					return err
				}
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			switch s.peek() {
			case ',':
				s.i++
			case closeCh:
				s.i++
				return nil
			default:
				return fmt.Errorf("%w: unterminated container", ErrBadHeader)
			}
		}
	default:
		_, err := s.scalar()
		return err
	}
}

func (s *jsonScanner) object(field func(key []byte) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		k, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := field(k); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return fmt.Errorf("%w: expected ',' or '}' at %d", ErrBadHeader, s.i)
		}
	}
}

func decodeJSONHeader(h []byte, c *Command) error {
	s := jsonScanner{b: h}
	err := s.object(func(k []byte) error {
		var err error
		var n int64
		switch string(k) {
		case "code":
			c.Code, err = s.int32("code")
		case "version":
			c.Version, err = s.int32("version")
		case "opaque":
			c.Opaque, err = s.int32("opaque")
		case "flag":
			c.Flag, err = s.int32("flag")
		case "language":
			if s.peek() == '"' {
				var v []byte
				v, err = s.str()
				c.Language = LanguageCode(v)
			} else if n, err = s.int(); err == nil && (n < 0 || n > 255) {
				err = fmt.Errorf("%w: language %d out of range", ErrBadHeader, n)
			} else {
				c.Language = byte(n)
			}
		case "remark":
			if s.peek() == '"' {
				c.Remark, err = s.str()
			} else {
				err = s.skip(0)
			}
		case "extFields":
			if s.peek() != '{' {
				return s.skip(0)
			}
			err = s.object(func(key []byte) error {
				switch s.peek() {
				case '"':
					v, err := s.str()
					if err == nil {
						c.Ext = append(c.Ext, KV{Key: key, Value: v})
					}
					return err
				case '{', '[':
					return s.skip(1)
				default:
					v, err := s.scalar()
					if err == nil && string(v) != "null" {
						c.Ext = append(c.Ext, KV{Key: key, Value: v})
					}
					return err
				}
			})
		default:
			err = s.skip(0)
		}
		return err
	})
	if err != nil {
		return err
	}
	s.ws()
	if s.i != len(s.b) {
		return fmt.Errorf("%w: trailing bytes after header", ErrBadHeader)
	}
	return nil
}
