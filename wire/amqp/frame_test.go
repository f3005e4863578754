package amqp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

func rawFrame(typ uint8, channel uint16, payload []byte) []byte {
	b, start := BeginFrame(nil, typ, channel)
	return EndFrame(append(b, payload...), start)
}

func reader(b []byte, frameMax uint32) *FrameReader {
	return NewFrameReader(bufio.NewReader(bytes.NewReader(b)), frameMax)
}

func TestFrameReadWrite(t *testing.T) {
	var stream []byte
	stream, _ = AppendMethodFrame(stream, 3, &BasicQos{PrefetchCount: 500})
	stream = AppendHeartbeat(stream)
	stream = AppendHeaderFrame(stream, 3, ClassBasic, 5, 0, nil)
	stream = AppendBodyFrames(stream, 3, []byte("hello"), 4096)
	if want := []byte{8, 0, 0, 0, 0, 0, 0, 0xce}; !bytes.Contains(stream, want) {
		t.Fatalf("heartbeat frame missing: % x", stream)
	}
	fr := reader(stream, 4096)
	want := []Frame{
		{FrameMethod, 3, []byte{0, 60, 0, 10, 0, 0, 0, 0, 0x01, 0xf4, 0}},
		{FrameHeartbeat, 0, []byte{}},
		{FrameHeader, 3, []byte{0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0}},
		{FrameBody, 3, []byte("hello")},
	}
	for i, w := range want {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !reflect.DeepEqual(f, w) {
			t.Errorf("frame %d = %+v, want %+v", i, f, w)
		}
	}
	if _, err := fr.ReadFrame(); err != io.EOF {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
}

func TestFrameReaderErrors(t *testing.T) {
	big := make([]byte, 4096-8+1)
	for name, c := range map[string]struct {
		in       []byte
		frameMax uint32
		code     uint16
		eof      bool
	}{
		"wrong end octet":        {in: append(rawFrame(FrameMethod, 0, []byte{0, 10, 0, 41, 0})[:12], 0xcd), code: FrameError},
		"body over frame_max":    {in: rawFrame(FrameBody, 1, big), frameMax: 4096, code: FrameError},
		"method over 1 MiB":      {in: rawFrame(FrameMethod, 1, make([]byte, MaxControlFrameSize-7)), code: FrameError},
		"forged 4 GiB size":      {in: []byte{FrameBody, 0, 1, 0xff, 0xff, 0xff, 0xff}, frameMax: 1 << 31, code: FrameError},
		"unknown type 4":         {in: rawFrame(4, 0, nil), code: FrameError},
		"unknown type 0":         {in: rawFrame(0, 0, nil), code: FrameError},
		"heartbeat on channel 1": {in: rawFrame(FrameHeartbeat, 1, nil), code: UnexpectedFrame},
		"cut in header":          {in: []byte{FrameMethod, 0}, eof: true},
		"cut in payload":         {in: rawFrame(FrameMethod, 0, []byte{1, 2, 3})[:9], eof: true},
		"cut before end octet":   {in: rawFrame(FrameMethod, 0, []byte{1, 2, 3})[:10], eof: true},
	} {
		_, err := reader(c.in, c.frameMax).ReadFrame()
		if c.eof {
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("%s: %v, want io.ErrUnexpectedEOF", name, err)
			}
			continue
		}
		e, ok := AsError(err)
		if !ok || e.Code != c.code || !e.Hard || !strings.HasPrefix(e.Text, ReplyName(c.code)+" - ") {
			t.Errorf("%s: %v, want a hard %d", name, err, c.code)
		}
	}
}

// TestFrameReaderLimits: method and header frames may exceed frame_max up
// to the 1 MiB cap (RabbitMQ does not apply frame_max to them); body frames
// may fill frame_max exactly.
func TestFrameReaderLimits(t *testing.T) {
	for _, f := range [][]byte{
		rawFrame(FrameMethod, 1, make([]byte, MaxControlFrameSize-8)),
		rawFrame(FrameHeader, 1, make([]byte, 64<<10)),
		rawFrame(FrameBody, 1, make([]byte, 4096-8)),
	} {
		if _, err := reader(f, 4096).ReadFrame(); err != nil {
			t.Errorf("frame of %d bytes: %v", len(f), err)
		}
	}
	fr := reader(rawFrame(FrameBody, 1, make([]byte, 131072-8)), 4096)
	fr.SetFrameMax(131072)
	if _, err := fr.ReadFrame(); err != nil {
		t.Errorf("after SetFrameMax(131072): %v", err)
	}
}

// TestFrameReaderBoundsBeforeAllocating: a forged size is refused before
// the reader allocates a buffer for it.
func TestFrameReaderBoundsBeforeAllocating(t *testing.T) {
	in := []byte{FrameMethod, 0, 1, 0x7f, 0xff, 0xff, 0xff}
	fr := reader(in, 131072)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := fr.ReadFrame()
	runtime.ReadMemStats(&after)
	if !isCode(err, FrameError) {
		t.Fatalf("forged 2 GiB method frame: %v", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Errorf("refusing a forged frame allocated %d bytes", n)
	}
	if cap(fr.buf) != 0 {
		t.Errorf("reader buffer grew to %d bytes for a refused frame", cap(fr.buf))
	}
	// A method frame announcing almost 1 MiB that stops after 10 bytes pins
	// a buffer sized by what arrived, not by the announcement.
	fr = reader(append([]byte{FrameMethod, 0, 1, 0, 0x0f, 0xff, 0xf0}, make([]byte, 10)...), 0)
	if _, err := fr.ReadFrame(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut 1 MiB frame: %v", err)
	}
	if cap(fr.buf) > 64<<10 {
		t.Errorf("reader buffer grew to %d bytes for 10 bytes of payload", cap(fr.buf))
	}
}

func TestAppendBodyFrames(t *testing.T) {
	body := bytes.Repeat([]byte{7}, 3*(4096-8)+1)
	out := AppendBodyFrames(nil, 9, body, 4096)
	fr := reader(out, 4096)
	var got []byte
	var sizes []int
	for {
		f, err := fr.ReadFrame()
		if err == io.EOF {
			break
		}
		if err != nil || f.Type != FrameBody || f.Channel != 9 {
			t.Fatal(f, err)
		}
		got = append(got, f.Payload...)
		sizes = append(sizes, len(f.Payload))
	}
	if !bytes.Equal(got, body) || !reflect.DeepEqual(sizes, []int{4088, 4088, 4088, 1}) {
		t.Errorf("sizes %v", sizes)
	}
	if out := AppendBodyFrames([]byte{1}, 1, nil, 4096); !bytes.Equal(out, []byte{1}) {
		t.Errorf("empty body wrote % x", out)
	}
}

func TestProtocolHeader(t *testing.T) {
	if err := ReadProtocolHeader(bytes.NewReader([]byte("AMQP\x00\x00\x09\x01"))); err != nil {
		t.Fatal(err)
	}
	var pe *ProtocolHeaderError
	if err := ReadProtocolHeader(bytes.NewReader([]byte("AMQP\x03\x01\x00\x00"))); !errors.As(err, &pe) || pe.Got[4] != 3 {
		t.Errorf("AMQP 1.0 header: %v", err)
	}
	if err := ReadProtocolHeader(strings.NewReader("GET /")); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short header: %v", err)
	}
}

var fullProps = Properties{ContentType: "text/plain", ContentEncoding: "gzip",
	Headers: Table{"x-death": []any{map[string]any{"count": int64(1)}}, "n": int32(1)}, DeliveryMode: 2, Priority: 9,
	CorrelationID: "c", ReplyTo: "r", Expiration: "100", MessageID: "m", Timestamp: time.Unix(1, 0).UTC(),
	Type: "t", UserID: "u", AppID: "a", ClusterID: "cl"}

func TestContentHeader(t *testing.T) {
	for _, p := range []Properties{{}, {ContentType: "x"}, {Headers: Table{"a": "b"}}, {Priority: 1, AppID: "z"}, fullProps} {
		frame, err := AppendPropertiesHeaderFrame(nil, 1, 77, &p)
		if err != nil {
			t.Fatal(err)
		}
		f, err := reader(frame, 0).ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		var h ContentHeader
		if err := h.Read(f.Payload); err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
		var got Properties
		if err := h.Properties(&got); err != nil || !reflect.DeepEqual(got, p) || h.BodySize != 77 {
			t.Errorf("round trip %+v: got %+v, %v", p, got, err)
		}
		flags, props, err := AppendProperties(nil, &p)
		if err != nil || flags != h.Flags || !bytes.Equal(props, h.Props) {
			t.Errorf("AppendProperties(%+v) = %#04x % x, %v; header has %#04x % x", p, flags, props, err, h.Flags, h.Props)
		}
		// The raw form re-emits the same frame byte for byte.
		if again := AppendHeaderFrame(nil, 1, h.ClassID, h.BodySize, h.Flags, h.Props); !bytes.Equal(again, frame) {
			t.Errorf("raw header re-encoded differently")
		}
	}
	frame, _ := AppendPropertiesHeaderFrame(nil, 1, 0, &fullProps)
	var h ContentHeader
	if err := h.Read(frame[7 : len(frame)-1]); err != nil {
		t.Fatal(err)
	}
	hdrs, _ := AppendTable(nil, fullProps.Headers)
	for flag, want := range map[uint16]string{FlagContentType: "text/plain", FlagDeliveryMode: "\x02", FlagAppID: "a",
		FlagTimestamp: "\x00\x00\x00\x00\x00\x00\x00\x01", FlagHeaders: string(hdrs), FlagClusterID: "cl"} {
		if v, ok := h.Lookup(flag); !ok || string(v) != want {
			t.Errorf("Lookup(%#04x) = %q %v, want %q", flag, v, ok, want)
		}
	}
	h.Flags |= 3 // not properties: Lookup must say so, not index past the table
	if _, ok := h.Lookup(1); ok {
		t.Error("Lookup(1) succeeded")
	}
	if _, ok := h.Lookup(2); ok {
		t.Error("Lookup(2) succeeded")
	}
	if _, ok := h.Lookup(FlagContentType | FlagAppID); ok {
		t.Error("Lookup of two flags succeeded")
	}
	var empty ContentHeader
	if err := empty.Read([]byte{0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if _, ok := empty.Lookup(FlagContentType); ok {
		t.Error("Lookup of an absent property succeeded")
	}
}

func TestContentHeaderErrors(t *testing.T) {
	base := []byte{0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	for name, c := range map[string]struct {
		payload []byte
		code    uint16
	}{
		"short":                {base, SyntaxError},
		"class 50":             {append([]byte{0, 50}, make([]byte, 12)...), UnexpectedFrame},
		"flag bit 0":           {append(base, 0, 1), SyntaxError},
		"flag bit 1":           {append(base, 0, 2), SyntaxError},
		"missing content-type": {append(base, 0x80, 0), SyntaxError},
		"trailing byte":        {append(base, 0, 0, 9), SyntaxError},
		"bad headers table":    {append(base, 0x20, 0, 0, 0, 0, 5, 1, 'k', 'Z', 0, 0), SyntaxError},
		"truncated timestamp":  {append(base, 0, 0x40, 0, 0, 0), SyntaxError},
	} {
		var h ContentHeader
		if err := h.Read(c.payload); !isCode(err, c.code) {
			t.Errorf("%s: %v, want %d", name, err, c.code)
		}
	}
}

// AppendReplacingShortstr swaps one shortstr and keeps every other
// property's bytes.
func TestAppendReplacingShortstr(t *testing.T) {
	frame, _ := AppendPropertiesHeaderFrame(nil, 1, 0, &fullProps)
	var h ContentHeader
	if err := h.Read(frame[7 : len(frame)-1]); err != nil {
		t.Fatal(err)
	}
	want := fullProps
	want.ReplyTo = "amq.rabbitmq.reply-to.longer-than-before"
	out, err := h.AppendReplacingShortstr([]byte("x"), FlagReplyTo, want.ReplyTo)
	if err != nil || out[0] != 'x' {
		t.Fatalf("%q, %v", out, err)
	}
	flags, props, _ := AppendProperties(nil, &want)
	if got := out[1:]; uint16(got[0])<<8|uint16(got[1]) != flags || !bytes.Equal(got[2:], props) {
		t.Fatalf("replaced: % x, want flags %#04x and % x", got, flags, props)
	}
	for _, flag := range []uint16{FlagHeaders, FlagTimestamp, 2} {
		if _, err := h.AppendReplacingShortstr(nil, flag, "v"); err == nil {
			t.Errorf("flag %#04x: replaced a non-shortstr", flag)
		}
	}
	h.Flags &^= FlagReplyTo
	if _, err := h.AppendReplacingShortstr(nil, FlagReplyTo, "v"); err == nil {
		t.Error("replaced an absent property")
	}
}
