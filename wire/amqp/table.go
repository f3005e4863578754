package amqp

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"
)

// Table is an AMQP field table. It is an alias so that nested tables, which
// decode as map[string]any, need no conversion.
//
// Decoded values have these Go types, by tag (the RabbitMQ errata tags, which
// every real client sends): t bool, b int8, B uint8, s int16, u uint16,
// I int32, i uint32, l int64, f float32, d float64, D Decimal, S string,
// x []byte, A []any, T time.Time (UTC, whole seconds), F map[string]any,
// V nil.
type Table = map[string]any

// Decimal is a field-table decimal: Value × 10^-Scale (signed per the
// errata).
type Decimal struct {
	Scale uint8
	Value int32
}

// maxDepth bounds nesting of tables and arrays so hostile input cannot
// drive the decoder's recursion arbitrarily deep.
const maxDepth = 64

// ReadTable decodes the u32-length-prefixed table at the start of b and
// returns it with the number of bytes it took. An empty table decodes as
// nil (no allocation); nested empty tables decode as empty maps. Malformed
// input gives a 502 SYNTAX_ERROR *Error.
func ReadTable(b []byte) (Table, int, error) {
	t, n, err := readTable(b, 0)
	if err != nil {
		return nil, 0, Errorf(SyntaxError, "field table: %v", err)
	}
	return t, n, nil
}

func readTable(b []byte, off int) (Table, int, error) {
	body, off, err := longstrBytes(b, off)
	if err != nil || len(body) == 0 {
		return nil, off, err
	}
	t, err := decodeEntries(body, 0)
	if err != nil {
		return nil, off, err
	}
	return t, off, nil
}

// decodeEntries decodes a table's entries without the length prefix (the
// AMQPLAIN response is encoded this way too).
func decodeEntries(body []byte, depth int) (Table, error) {
	if depth > maxDepth {
		return nil, errDepth
	}
	t := Table{}
	for p := 0; p < len(body); {
		key, next, err := shortstrBytes(body, p)
		if err != nil {
			return nil, fmt.Errorf("field name: %w", err)
		}
		v, next, err := readValue(body, next, depth)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", string(key), err)
		}
		t[string(key)] = v
		p = next
	}
	return t, nil
}

// DecodeTableEntries decodes field-table entries that are not preceded by a
// length (the AMQPLAIN login response).
func DecodeTableEntries(b []byte) (Table, error) {
	t, err := decodeEntries(b, 0)
	if err != nil {
		return nil, Errorf(SyntaxError, "field table: %v", err)
	}
	return t, nil
}

func readValue(b []byte, off, depth int) (any, int, error) {
	tag, off, err := readOctet(b, off)
	if err != nil {
		return nil, off, err
	}
	fixed := func(n int) ([]byte, int, error) {
		if len(b)-off < n {
			return nil, off, errTruncated
		}
		return b[off : off+n], off + n, nil
	}
	var v []byte
	switch tag {
	case 't':
		if v, off, err = fixed(1); err != nil {
			return nil, off, err
		}
		return v[0] != 0, off, nil
	case 'b':
		if v, off, err = fixed(1); err != nil {
			return nil, off, err
		}
		return int8(v[0]), off, nil
	case 'B':
		if v, off, err = fixed(1); err != nil {
			return nil, off, err
		}
		return v[0], off, nil
	case 's':
		if v, off, err = fixed(2); err != nil {
			return nil, off, err
		}
		return int16(binary.BigEndian.Uint16(v)), off, nil
	case 'u':
		if v, off, err = fixed(2); err != nil {
			return nil, off, err
		}
		return binary.BigEndian.Uint16(v), off, nil
	case 'I':
		if v, off, err = fixed(4); err != nil {
			return nil, off, err
		}
		return int32(binary.BigEndian.Uint32(v)), off, nil
	case 'i':
		if v, off, err = fixed(4); err != nil {
			return nil, off, err
		}
		return binary.BigEndian.Uint32(v), off, nil
	case 'l':
		if v, off, err = fixed(8); err != nil {
			return nil, off, err
		}
		return int64(binary.BigEndian.Uint64(v)), off, nil
	case 'f':
		if v, off, err = fixed(4); err != nil {
			return nil, off, err
		}
		return math.Float32frombits(binary.BigEndian.Uint32(v)), off, nil
	case 'd':
		if v, off, err = fixed(8); err != nil {
			return nil, off, err
		}
		return math.Float64frombits(binary.BigEndian.Uint64(v)), off, nil
	case 'D':
		if v, off, err = fixed(5); err != nil {
			return nil, off, err
		}
		return Decimal{Scale: v[0], Value: int32(binary.BigEndian.Uint32(v[1:]))}, off, nil
	case 'T':
		if v, off, err = fixed(8); err != nil {
			return nil, off, err
		}
		return time.Unix(int64(binary.BigEndian.Uint64(v)), 0).UTC(), off, nil
	case 'S':
		if v, off, err = longstrBytes(b, off); err != nil {
			return nil, off, err
		}
		return string(v), off, nil
	case 'x':
		if v, off, err = longstrBytes(b, off); err != nil {
			return nil, off, err
		}
		return slices.Clone(v), off, nil
	case 'V':
		return nil, off, nil
	case 'F':
		if depth >= maxDepth {
			return nil, off, errDepth
		}
		if v, off, err = longstrBytes(b, off); err != nil {
			return nil, off, err
		}
		t, err := decodeEntries(v, depth+1)
		return t, off, err
	case 'A':
		if depth >= maxDepth {
			return nil, off, errDepth
		}
		if v, off, err = longstrBytes(b, off); err != nil {
			return nil, off, err
		}
		a := []any{}
		for p := 0; p < len(v); {
			var e any
			if e, p, err = readValue(v, p, depth+1); err != nil {
				return nil, off, fmt.Errorf("array element %d: %w", len(a), err)
			}
			a = append(a, e)
		}
		return a, off, nil
	}
	return nil, off, fmt.Errorf("unknown field type %q", tag)
}

// validateTable walks the table at off without allocating, so a content
// header can be checked once and then kept as raw bytes.
func validateTable(b []byte, off, depth int) (int, error) {
	body, off, err := longstrBytes(b, off)
	if err != nil {
		return off, err
	}
	return off, validateEntries(body, depth)
}

func validateEntries(body []byte, depth int) error {
	for p := 0; p < len(body); {
		_, next, err := shortstrBytes(body, p)
		if err != nil {
			return fmt.Errorf("field name: %w", err)
		}
		if p, err = skipValue(body, next, depth); err != nil {
			return err
		}
	}
	return nil
}

func skipValue(b []byte, off, depth int) (int, error) {
	tag, off, err := readOctet(b, off)
	if err != nil {
		return off, err
	}
	n := 0
	switch tag {
	case 'V':
	case 't', 'b', 'B':
		n = 1
	case 's', 'u':
		n = 2
	case 'I', 'i', 'f':
		n = 4
	case 'D':
		n = 5
	case 'l', 'd', 'T':
		n = 8
	case 'S', 'x':
		_, off, err = longstrBytes(b, off)
		return off, err
	case 'F', 'A':
		if depth >= maxDepth {
			return off, errDepth
		}
		var v []byte
		if v, off, err = longstrBytes(b, off); err != nil {
			return off, err
		}
		if tag == 'F' {
			return off, validateEntries(v, depth+1)
		}
		for p := 0; p < len(v); {
			if p, err = skipValue(v, p, depth+1); err != nil {
				return off, err
			}
		}
		return off, nil
	default:
		return off, fmt.Errorf("unknown field type %q", tag)
	}
	if len(b)-off < n {
		return off, errTruncated
	}
	return off + n, nil
}

// AppendTable appends t with its u32 length prefix. Keys are written in
// sorted order so equal tables encode to equal bytes. Besides the decoded
// types it accepts int (I when it fits 32 bits, else l) and Table values.
func AppendTable(dst []byte, t Table) ([]byte, error) {
	return appendTable(dst, t, 0)
}

func appendTable(dst []byte, t Table, depth int) ([]byte, error) {
	if depth > maxDepth {
		return dst, errDepth
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	if len(t) > 0 {
		// Tables of up to 16 keys (message headers, declare arguments)
		// sort on the stack, so encoding them does not allocate.
		var small [16]string
		keys := small[:0]
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var err error
		for _, k := range keys {
			if dst, err = appendShortstr(dst, k); err != nil {
				return dst[:start], fmt.Errorf("field name: %w", err)
			}
			if dst, err = appendValue(dst, t[k], depth); err != nil {
				return dst[:start], fmt.Errorf("field %q: %w", k, err)
			}
		}
	}
	return patchLen(dst, start)
}

// patchLen writes the length of what follows dst[start:start+4] there.
func patchLen(dst []byte, start int) ([]byte, error) {
	n := len(dst) - start - 4
	if uint64(n) > math.MaxUint32 {
		return dst[:start], fmt.Errorf("field value of %d bytes exceeds 4 GiB", n)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(n))
	return dst, nil
}

func appendValue(dst []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, 'V'), nil
	case bool:
		return append(dst, 't', boolBit(v, 1)), nil
	case int8:
		return append(dst, 'b', byte(v)), nil
	case uint8:
		return append(dst, 'B', v), nil
	case int16:
		return appendShort(append(dst, 's'), uint16(v)), nil
	case uint16:
		return appendShort(append(dst, 'u'), v), nil
	case int32:
		return appendLong(append(dst, 'I'), uint32(v)), nil
	case uint32:
		return appendLong(append(dst, 'i'), v), nil
	case int64:
		return appendLonglong(append(dst, 'l'), uint64(v)), nil
	case int:
		if v >= math.MinInt32 && v <= math.MaxInt32 {
			return appendLong(append(dst, 'I'), uint32(v)), nil
		}
		return appendLonglong(append(dst, 'l'), uint64(v)), nil
	case float32:
		return appendLong(append(dst, 'f'), math.Float32bits(v)), nil
	case float64:
		return appendLonglong(append(dst, 'd'), math.Float64bits(v)), nil
	case Decimal:
		return appendLong(append(dst, 'D', v.Scale), uint32(v.Value)), nil
	case string:
		if uint64(len(v)) > math.MaxUint32 {
			return dst, fmt.Errorf("string of %d bytes exceeds 4 GiB", len(v))
		}
		return appendLongstr(append(dst, 'S'), v), nil
	case []byte:
		if uint64(len(v)) > math.MaxUint32 {
			return dst, fmt.Errorf("byte array of %d bytes exceeds 4 GiB", len(v))
		}
		dst = appendLong(append(dst, 'x'), uint32(len(v)))
		return append(dst, v...), nil
	case time.Time:
		return appendLonglong(append(dst, 'T'), uint64(v.Unix())), nil
	case Table:
		return appendTable(append(dst, 'F'), v, depth+1)
	case []any:
		if depth >= maxDepth {
			return dst, errDepth
		}
		dst = append(dst, 'A')
		start := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		var err error
		for i, e := range v {
			if dst, err = appendValue(dst, e, depth+1); err != nil {
				return dst[:start-1], fmt.Errorf("array element %d: %w", i, err)
			}
		}
		return patchLen(dst, start)
	}
	return dst, fmt.Errorf("unsupported field value type %T", v)
}
