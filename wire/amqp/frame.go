package amqp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ProtocolHeader opens every AMQP 0-9-1 connection (client to server). A
// server that gets anything else writes it back and closes the socket.
var ProtocolHeader = [8]byte{'A', 'M', 'Q', 'P', 0, 0, 9, 1}

// ProtocolHeaderError reports a connection that did not start with
// ProtocolHeader; Got holds the eight bytes it sent.
type ProtocolHeaderError struct {
	Got [8]byte
}

func (e *ProtocolHeaderError) Error() string {
	return fmt.Sprintf("amqp: bad protocol header % x", e.Got[:])
}

// ReadProtocolHeader reads the client's 8-byte protocol header. A mismatch
// gives *ProtocolHeaderError; a short stream, the read error.
func ReadProtocolHeader(r io.Reader) error {
	var got [8]byte
	if _, err := io.ReadFull(r, got[:]); err != nil {
		return fmt.Errorf("read protocol header: %w", err)
	}
	if got != ProtocolHeader {
		return &ProtocolHeaderError{Got: got}
	}
	return nil
}

// MaxControlFrameSize caps method and header frames (payload + 8 bytes of
// framing). RabbitMQ does not apply frame_max to them and amqplib's header
// tables may reach 64 KiB, so they get a fixed cap instead.
const MaxControlFrameSize = 1 << 20

// frameOverhead is the type, channel and size before the payload plus the
// end octet after it.
const frameOverhead = 8

// Frame is one frame as read. Payload aliases the reader's buffer and is
// valid until the next ReadFrame.
type Frame struct {
	Type    uint8
	Channel uint16
	Payload []byte
}

// FrameReader reads frames from a bufio.Reader, checking each frame's
// declared size before it allocates anything: body frames against the
// negotiated frame_max, method and header frames against
// MaxControlFrameSize. Its buffer is reused, so steady-state reads do not
// allocate.
type FrameReader struct {
	r        *bufio.Reader
	frameMax uint32
	buf      []byte
	hdr      [7]byte // here, not on the stack: io.ReadFull would move it to the heap
}

// NewFrameReader returns a reader enforcing frameMax (whole frame size) on
// body frames; values below FrameMinSize, including 0, mean FrameMinSize,
// the limit that holds before tune-ok.
func NewFrameReader(r *bufio.Reader, frameMax uint32) *FrameReader {
	fr := &FrameReader{r: r}
	fr.SetFrameMax(frameMax)
	return fr
}

// SetFrameMax changes the body frame limit, after tune-ok.
func (fr *FrameReader) SetFrameMax(frameMax uint32) {
	fr.frameMax = max(frameMax, FrameMinSize)
}

// ReadFrame reads the next frame. A stream that ends cleanly between frames
// returns io.EOF; one cut inside a frame, an error wrapping
// io.ErrUnexpectedEOF. Protocol violations return a 501 FRAME_ERROR *Error
// (connection exception): the stream is no longer aligned and must be closed.
func (fr *FrameReader) ReadFrame() (Frame, error) {
	hdr := fr.hdr[:]
	if n, err := io.ReadFull(fr.r, hdr); err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return Frame{}, io.EOF
		}
		return Frame{}, fmt.Errorf("read frame header: %w", err)
	}
	f := Frame{Type: hdr[0], Channel: binary.BigEndian.Uint16(hdr[1:])}
	size := binary.BigEndian.Uint32(hdr[3:])
	limit := uint32(MaxControlFrameSize)
	switch f.Type {
	case FrameMethod, FrameHeader:
	case FrameBody:
		limit = fr.frameMax
	case FrameHeartbeat:
		if f.Channel != 0 {
			// RabbitMQ answers 505 here, where the spec text says 501
			// (rabbitmq-server deps/rabbit/src/rabbit_reader.erl
			// handle_frame: unexpected_frame for a heartbeat on a channel).
			return Frame{}, Errorf(UnexpectedFrame, "heartbeat frame on channel %d", f.Channel)
		}
	default:
		return Frame{}, Errorf(FrameError, "unknown frame type %d", f.Type)
	}
	if total := uint64(size) + frameOverhead; total > uint64(limit) {
		if f.Type == FrameBody {
			return Frame{}, Errorf(FrameError, "body frame of %d bytes exceeds frame_max %d", total, limit)
		}
		return Frame{}, Errorf(FrameError, "frame of type %d and %d bytes exceeds the %d-byte cap", f.Type, total, limit)
	}
	b, err := fr.readPayload(int(size) + 1)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, fmt.Errorf("read frame payload of %d bytes: %w", size, err)
	}
	if end := b[size]; end != FrameEnd {
		return Frame{}, Errorf(FrameError, "frame end octet 0x%02x, want 0xce", end)
	}
	f.Payload = b[:size]
	return f, nil
}

// readPayload reads n bytes into the reused buffer. A buffer too small
// grows at most twice as fast as bytes arrive, so a peer that announces a
// large frame and stalls pins little memory.
func (fr *FrameReader) readPayload(n int) ([]byte, error) {
	if cap(fr.buf) >= n {
		b := fr.buf[:n]
		_, err := io.ReadFull(fr.r, b)
		return b, err
	}
	got := 0
	for got < n {
		if got == cap(fr.buf) {
			grown := make([]byte, min(n, max(2*cap(fr.buf), 64<<10)))
			copy(grown, fr.buf[:got])
			fr.buf = grown
		}
		m, err := io.ReadFull(fr.r, fr.buf[got:min(n, cap(fr.buf))])
		got += m
		if err != nil {
			return nil, err
		}
	}
	return fr.buf[:n], nil
}

// BeginFrame appends the type and channel of a frame and room for its size;
// EndFrame with the returned start completes it. Writing a method between
// them with its concrete Append avoids any allocation.
func BeginFrame(dst []byte, typ uint8, channel uint16) ([]byte, int) {
	start := len(dst)
	dst = append(dst, typ)
	dst = appendShort(dst, channel)
	return append(dst, 0, 0, 0, 0), start
}

// EndFrame fills in the size of the frame begun at start and appends the
// end octet.
func EndFrame(dst []byte, start int) []byte {
	binary.BigEndian.PutUint32(dst[start+3:], uint32(len(dst)-start-7))
	return append(dst, FrameEnd)
}

// AppendMethodFrame appends m as a method frame on channel.
func AppendMethodFrame(dst []byte, channel uint16, m Method) ([]byte, error) {
	dst, start := BeginFrame(dst, FrameMethod, channel)
	out, err := m.Append(dst)
	if err != nil {
		return dst[:start], err
	}
	return EndFrame(out, start), nil
}

// AppendHeartbeat appends a heartbeat frame (channel 0, empty payload).
func AppendHeartbeat(dst []byte) []byte {
	return append(dst, FrameHeartbeat, 0, 0, 0, 0, 0, 0, FrameEnd)
}

// AppendBodyFrames appends body as content body frames of at most frameMax
// bytes each (payload frameMax-8); frameMax below FrameMinSize means
// FrameMinSize. An empty body appends nothing, as the protocol requires.
func AppendBodyFrames(dst []byte, channel uint16, body []byte, frameMax uint32) []byte {
	chunk := int(max(frameMax, FrameMinSize)) - frameOverhead
	for len(body) > 0 {
		n := min(len(body), chunk)
		var start int
		dst, start = BeginFrame(dst, FrameBody, channel)
		dst = append(dst, body[:n]...)
		dst = EndFrame(dst, start)
		body = body[n:]
	}
	return dst
}
