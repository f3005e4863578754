package amqp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzFrameReader feeds arbitrary streams to the frame reader and decodes
// every method and content header it yields. Nothing may panic; anything
// that decodes must re-encode, and re-encoding must be stable.
func FuzzFrameReader(f *testing.F) {
	f.Add(publishStream(f))
	for _, m := range allMethods() {
		fill(m, 1)
		b, err := AppendMethodFrame(nil, 1, m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	full, _ := AppendPropertiesHeaderFrame(nil, 1, 3, &fullProps)
	f.Add(AppendBodyFrames(AppendHeartbeat(full), 1, []byte("abc"), 4096))
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := NewFrameReader(bufio.NewReaderSize(bytes.NewReader(in), 16), 4096)
		for {
			fm, err := fr.ReadFrame()
			if err != nil {
				if _, ok := AsError(err); !ok && err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				return
			}
			switch fm.Type {
			case FrameMethod:
				checkMethod(t, fm.Payload)
			case FrameHeader:
				checkHeader(t, fm.Payload)
			}
		}
	})
}

func checkMethod(t *testing.T, payload []byte) {
	m, err := ReadMethod(payload)
	if err != nil {
		if _, ok := AsError(err); !ok {
			t.Fatalf("ReadMethod error %T: %v", err, err)
		}
		return
	}
	once, err := m.Append(nil)
	if err != nil {
		t.Fatalf("%s decoded but does not encode: %v", m.Name(), err)
	}
	m2, err := ReadMethod(once)
	if err != nil {
		t.Fatalf("%s re-encoding does not decode: %v", m.Name(), err)
	}
	twice, _ := m2.Append(nil)
	if !bytes.Equal(once, twice) {
		t.Fatalf("%s encoding unstable:\n% x\n% x", m.Name(), once, twice)
	}
}

func checkHeader(t *testing.T, payload []byte) {
	var h ContentHeader
	if err := h.Read(payload); err != nil {
		if _, ok := AsError(err); !ok {
			t.Fatalf("ContentHeader.Read error %T: %v", err, err)
		}
		return
	}
	for i := range 16 {
		h.Lookup(1 << i)
	}
	// A header that validates must decode.
	var p Properties
	if err := h.Properties(&p); err != nil {
		t.Fatalf("validated header does not decode: %v", err)
	}
	if _, err := AppendPropertiesHeaderFrame(nil, 1, h.BodySize, &p); err != nil {
		t.Fatalf("decoded properties do not encode: %v", err)
	}
}

// FuzzTable decodes arbitrary tables. The allocation-free validator must
// agree with the decoder, and decode/encode must reach a fixed point.
func FuzzTable(f *testing.F) {
	for _, v := range tagVectors {
		f.Add(oneEntry(v.tag, v.value))
	}
	_, want := allClientTypes()
	all, err := AppendTable(nil, want)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(all)
	f.Fuzz(func(t *testing.T, in []byte) {
		tb, n, err := ReadTable(in)
		vend, verr := validateTable(in, 0, 0)
		if (err == nil) != (verr == nil) {
			t.Fatalf("ReadTable error %v, validateTable error %v", err, verr)
		}
		if err != nil {
			if !isCode(err, SyntaxError) {
				t.Fatalf("error %v, want 502", err)
			}
			return
		}
		if n != vend || n > len(in) {
			t.Fatalf("ReadTable took %d bytes, validateTable %d, input %d", n, vend, len(in))
		}
		once, err := AppendTable(nil, tb)
		if err != nil {
			t.Fatalf("decoded table does not encode: %v", err)
		}
		tb2, _, err := ReadTable(once)
		if err != nil {
			t.Fatalf("re-encoded table does not decode: %v", err)
		}
		twice, _ := AppendTable(nil, tb2)
		if !bytes.Equal(once, twice) {
			t.Fatalf("table encoding unstable:\n% x\n% x", once, twice)
		}
	})
}
