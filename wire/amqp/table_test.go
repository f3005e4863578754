package amqp

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// tagVectors are single-entry tables, hand-encoded per the errata table
// (spec section 1.2), with the Go value each decodes to.
var tagVectors = []struct {
	tag   byte
	value []byte
	want  any
}{
	{'t', []byte{1}, true},
	{'t', []byte{0}, false},
	{'b', []byte{0x80}, int8(-128)},
	{'B', []byte{0xff}, uint8(255)},
	{'s', []byte{0x80, 0}, int16(math.MinInt16)},
	{'u', []byte{0xff, 0xfe}, uint16(65534)},
	{'I', []byte{0xff, 0xff, 0xff, 0xfe}, int32(-2)},
	{'i', []byte{0xff, 0xff, 0xff, 0xfe}, uint32(math.MaxUint32 - 1)},
	{'l', []byte{0x80, 0, 0, 0, 0, 0, 0, 1}, int64(math.MinInt64 + 1)},
	{'f', []byte{0x3f, 0xc0, 0, 0}, float32(1.5)},
	{'d', []byte{0xc0, 0x04, 0, 0, 0, 0, 0, 0}, -2.5},
	{'D', []byte{3, 0xff, 0xff, 0xff, 0xff}, Decimal{Scale: 3, Value: -1}},
	{'S', []byte{0, 0, 0, 3, 'a', 0, 'b'}, "a\x00b"},
	{'S', []byte{0, 0, 0, 0}, ""},
	{'x', []byte{0, 0, 0, 2, 0xde, 0xad}, []byte{0xde, 0xad}},
	{'A', []byte{0, 0, 0, 7, 'b', 1, 'S', 0, 0, 0, 0}, []any{int8(1), ""}},
	{'A', []byte{0, 0, 0, 0}, []any{}},
	{'T', []byte{0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00}, time.Unix(0x6553f100, 0).UTC()},
	{'F', []byte{0, 0, 0, 3, 1, 'k', 'V'}, map[string]any{"k": nil}},
	{'F', []byte{0, 0, 0, 0}, map[string]any{}},
	{'V', nil, nil},
}

func oneEntry(tag byte, value []byte) []byte {
	entry := append([]byte{3, 'k', 'e', 'y', tag}, value...)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(entry))), entry...)
}

// TestTableEveryTag decodes each tag, checks the Go type and value, and
// encodes it back to the same bytes.
func TestTableEveryTag(t *testing.T) {
	for _, v := range tagVectors {
		in := oneEntry(v.tag, v.value)
		got, n, err := ReadTable(append(in, 0xaa)) // a following byte is not part of it
		if err != nil || n != len(in) {
			t.Fatalf("%c % x: n=%d err=%v", v.tag, v.value, n, err)
		}
		if val, ok := got["key"]; !ok || !reflect.DeepEqual(val, v.want) || reflect.TypeOf(val) != reflect.TypeOf(v.want) {
			t.Errorf("%c % x decoded to %#v (%T), want %#v (%T)", v.tag, v.value, val, val, v.want, v.want)
		}
		out, err := AppendTable(nil, got)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, in) {
			t.Errorf("%c re-encoded as % x, want % x", v.tag, out, in)
		}
	}
}

// TestTableEncodeGoTypes covers the conversions only the encoder makes and
// the sorted key order.
func TestTableEncodeGoTypes(t *testing.T) {
	got, err := AppendTable(nil, Table{"b": 7, "a": math.MaxInt32 + 1, "c": Table{"z": nil}})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0, 0, 0, 29,
		1, 'a', 'l', 0, 0, 0, 0, 0x80, 0, 0, 0,
		1, 'b', 'I', 0, 0, 0, 7,
		1, 'c', 'F', 0, 0, 0, 3, 1, 'z', 'V'}
	want[3] = byte(len(want) - 4)
	if !bytes.Equal(got, want) {
		t.Errorf("% x\nwant\n% x", got, want)
	}
	for _, bad := range []Table{{"u": uint64(1)}, {"f": func() {}}, {strings.Repeat("k", 256): 1}, {"a": []any{struct{}{}}}} {
		if out, err := AppendTable([]byte{1}, bad); err == nil || !bytes.Equal(out, []byte{1}) {
			t.Errorf("AppendTable(%v) = % x, %v; want an error and the buffer unchanged", bad, out, err)
		}
	}
}

func TestTableDecodeErrors(t *testing.T) {
	nest := func(levels int) []byte {
		v := []byte{'V'}
		for range levels {
			n := len(v)
			v = append([]byte{'A', byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, v...)
		}
		return v
	}
	for name, in := range map[string][]byte{
		"empty input":            {},
		"short length":           {0, 0, 0},
		"length beyond input":    {0, 0, 0, 9, 1, 'k', 'V'},
		"forged 4 GiB length":    {0xff, 0xff, 0xff, 0xff, 1, 'k', 'V'},
		"unknown tag":            oneEntry('Z', nil),
		"PDF-only tag U":         oneEntry('U', []byte{0, 1}),
		"truncated int32":        oneEntry('I', []byte{0, 0}),
		"truncated name":         {0, 0, 0, 2, 5, 'k'},
		"longstr beyond table":   oneEntry('S', []byte{0, 0, 1, 0, 'a'}),
		"array element bad":      oneEntry('A', []byte{0, 0, 0, 1, 'Z'}),
		"nested table truncated": oneEntry('F', []byte{0, 0, 0, 2, 1, 'k'}),
		"nesting too deep":       oneEntry('A', nest(maxDepth + 1)[1:]),
	} {
		if _, _, err := ReadTable(in); !isCode(err, SyntaxError) {
			t.Errorf("%s: error %v, want 502", name, err)
		}
		if _, err := validateTable(in, 0, 0); err == nil && len(in) >= 4 {
			t.Errorf("%s: validateTable accepted it", name)
		}
	}
	// Nesting up to the limit is fine.
	in := oneEntry('A', nest(maxDepth)[1:])
	if _, _, err := ReadTable(in); err != nil {
		t.Errorf("nesting %d levels: %v", maxDepth, err)
	}
	if _, err := validateTable(in, 0, 0); err != nil {
		t.Errorf("validateTable, nesting %d levels: %v", maxDepth, err)
	}
}

// TestTableEmptyIsNil: an empty top-level table decodes without allocating.
func TestTableEmptyIsNil(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() {
		tb, _, err := ReadTable([]byte{0, 0, 0, 0})
		if err != nil || tb != nil {
			t.Fatal(tb, err)
		}
	}); n != 0 {
		t.Errorf("empty table decode allocates %v times", n)
	}
}
