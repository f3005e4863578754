package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func TestReadCommand(t *testing.T) {
	req := NewRequest(SendMessage, map[string]string{"topic": "T", "queueId": "3"}, []byte("body"))
	req.Opaque = 9
	var stream []byte
	stream = AppendFrame(stream, req)
	req.SerializeType = SerializeRocketMQ
	stream = AppendFrame(stream, req)
	r := bytes.NewReader(stream)
	for i := range 2 {
		c, err := ReadCommand(r)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if c.Code != SendMessage || c.Opaque != 9 || string(c.Get("topic")) != "T" || string(c.Body) != "body" {
			t.Fatalf("frame %d: %+v", i, c)
		}
	}
	if _, err := ReadCommand(r); !errors.Is(err, io.EOF) {
		t.Fatalf("at the end of the stream: %v, want io.EOF", err)
	}
}

func TestReadCommandMalformed(t *testing.T) {
	good := AppendFrame(nil, NewRequest(SendMessage, map[string]string{"topic": "T"}, []byte("body")))
	prefix := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	badHeader := append(prefix(4+5), 0, 0, 0, 5)
	badHeader = append(badHeader, "{oops"...)
	for _, tc := range []struct {
		name  string
		input []byte
		want  error
	}{
		{"short prefix", good[:3], io.ErrUnexpectedEOF},
		{"oversize length", append(prefix(MaxFrameSize+1), good[4:]...), ErrFrameTooLarge},
		{"negative length", prefix(0xffffffff), ErrBadFrame},
		{"length below the header word", prefix(3), ErrBadFrame},
		{"truncated body", good[:len(good)-1], io.ErrUnexpectedEOF},
		{"prefix only", good[:4], io.ErrUnexpectedEOF},
		{"header longer than frame", append(prefix(4), 0, 0, 0, 9), ErrBadFrame},
		{"bad header", badHeader, ErrBadHeader},
		{"unknown serialize type", append(prefix(4), 7, 0, 0, 0), ErrBadHeader},
	} {
		c, err := ReadCommand(bytes.NewReader(tc.input))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %+v, %v; want %v", tc.name, c, err, tc.want)
		}
		if c != nil {
			t.Errorf("%s: a command came with the error", tc.name)
		}
	}
}

// An oversize length is refused before its bytes are read or allocated:
// the reader is left at the first byte after the prefix.
func TestReadCommandOversizeReadsNoBody(t *testing.T) {
	r := bytes.NewReader(append(binary.BigEndian.AppendUint32(nil, 1<<30), "rest"...))
	if _, err := ReadCommand(r); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatal(err)
	}
	if r.Len() != len("rest") {
		t.Fatalf("%d bytes left unread, want %d", r.Len(), len("rest"))
	}
}
