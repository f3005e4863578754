package amqpengine

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
)

// Args is an AMQP field table as the codec decodes it: values are bool,
// int8, uint8, int16, uint16, int32, uint32, int64, float32, float64,
// string, []byte, []any, time.Time, map[string]any or nil (void).
type Args = map[string]any

// normalizeArgs copies a, turning Go integer types the AMQP table has no
// slot for (int, uint, uint64 ...) into int64, and refuses other types.
func normalizeArgs(a Args) (Args, error) {
	if len(a) == 0 {
		return nil, nil
	}
	out := make(Args, len(a))
	for k, v := range a {
		n, err := normalizeValue(v)
		if err != nil {
			return nil, fmt.Errorf("argument '%s': %w", k, err)
		}
		out[k] = n
	}
	return out, nil
}

func normalizeValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, int8, uint8, int16, uint16, int32, uint32, int64, float32, float64, string, []byte, time.Time:
		return v, nil
	case int:
		return int64(x), nil
	case uint:
		return uintToInt64(uint64(x))
	case uint64:
		return uintToInt64(x)
	case uintptr:
		return uintToInt64(uint64(x))
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalizeValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case map[string]any:
		return normalizeArgs(x)
	}
	return nil, fmt.Errorf("unsupported value type %T", v)
}

func uintToInt64(u uint64) (any, error) {
	if u > math.MaxInt64 {
		return nil, fmt.Errorf("integer %d does not fit a signed 64-bit field", u)
	}
	return int64(u), nil
}

// asInt reads any Go integer type.
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int8:
		return int64(x), true
	case uint8:
		return int64(x), true
	case int16:
		return int64(x), true
	case uint16:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int64:
		return x, true
	case int:
		return int64(x), true
	case uint:
		return int64(x), x <= math.MaxInt64
	case uint64:
		return int64(x), x <= math.MaxInt64
	}
	return 0, false
}

// typeName is RabbitMQ's name of a field's AMQP type (rabbit_binary_parser),
// used in its reply texts.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "void"
	case bool:
		return "bool"
	case int8:
		return "byte"
	case uint8:
		return "unsignedbyte"
	case int16:
		return "short"
	case uint16:
		return "unsignedshort"
	case int32:
		return "signedint"
	case uint32:
		return "unsignedint"
	case int64, int, uint, uint64:
		return "long"
	case float32:
		return "float"
	case float64:
		return "double"
	case string:
		return "longstr"
	case []byte:
		return "binary"
	case []any:
		return "array"
	case time.Time:
		return "timestamp"
	case map[string]any:
		return "table"
	}
	return fmt.Sprintf("%T", v)
}

// typeClass groups types RabbitMQ compares by value alone
// (rabbit_misc:type_class/1: all integers alike, both floats alike).
func typeClass(v any) string {
	if _, ok := asInt(v); ok {
		return "int"
	}
	switch v.(type) {
	case float32, float64:
		return "float"
	}
	return typeName(v)
}

// looseEqual compares two field values as RabbitMQ's argument and header
// matching does: same type class and equal value.
func looseEqual(a, b any) bool {
	if typeClass(a) != typeClass(b) {
		return false
	}
	if x, ok := asInt(a); ok {
		y, _ := asInt(b)
		return x == y
	}
	switch x := a.(type) {
	case float32:
		return float64(x) == asFloat(b)
	case float64:
		return x == asFloat(b)
	}
	return strictEqual(a, b)
}

func asFloat(v any) float64 {
	if f, ok := v.(float32); ok {
		return float64(f)
	}
	return v.(float64)
}

// strictEqual compares values and their exact types (nested tables and
// arrays, and a persisted table against the one it was saved from).
func strictEqual(a, b any) bool {
	switch x := a.(type) {
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	case float32:
		y, ok := b.(float32)
		return ok && (x == y || x != x && y != y)
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || x != x && y != y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !strictEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		return ok && ArgsEqual(x, y)
	}
	return a == b
}

// ArgsEqual reports whether two tables hold the same keys with values of
// the same types.
func ArgsEqual(a, b Args) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !strictEqual(v, w) {
			return false
		}
	}
	return true
}

// formatValue prints a value as RabbitMQ's reply texts do (~ts for
// binaries, ~tp otherwise).
func formatValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case time.Time:
		return strconv.FormatInt(x.Unix(), 10)
	}
	if n, ok := asInt(v); ok {
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprint(v)
}

// Tagged JSON: each value is a two-element array [tag, value] where tag is
// the AMQP field-type letter (AMQP 0-9-1 errata field table), so that a
// table read back from disk has the same Go types as the one declared.
// Floats are strings (exact, and NaN/Inf survive); timestamps RFC 3339.

// EncodeArgs returns the tagged JSON form of a table; keys are sorted, so
// equal tables encode to equal bytes.
func EncodeArgs(a Args) (json.RawMessage, error) {
	if len(a) == 0 {
		return json.RawMessage("{}"), nil
	}
	var b bytes.Buffer
	if err := encodeTable(&b, a); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func encodeTable(b *bytes.Buffer, a Args) error {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(b, k)
		b.WriteByte(':')
		if err := encodeValue(b, a[k]); err != nil {
			return fmt.Errorf("argument '%s': %w", k, err)
		}
	}
	b.WriteByte('}')
	return nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	j, _ := json.Marshal(s) // a string always marshals
	b.Write(j)
}

func encodeValue(b *bytes.Buffer, v any) error {
	tagged := func(tag, val string) {
		b.WriteString(`["`)
		b.WriteString(tag)
		b.WriteString(`",`)
		b.WriteString(val)
		b.WriteByte(']')
	}
	quoted := func(s string) string {
		j, _ := json.Marshal(s)
		return string(j)
	}
	switch x := v.(type) {
	case nil:
		b.WriteString(`["V"]`)
	case bool:
		tagged("t", strconv.FormatBool(x))
	case int8:
		tagged("b", strconv.FormatInt(int64(x), 10))
	case uint8:
		tagged("B", strconv.FormatUint(uint64(x), 10))
	case int16:
		tagged("s", strconv.FormatInt(int64(x), 10))
	case uint16:
		tagged("u", strconv.FormatUint(uint64(x), 10))
	case int32:
		tagged("I", strconv.FormatInt(int64(x), 10))
	case uint32:
		tagged("i", strconv.FormatUint(uint64(x), 10))
	case int64:
		tagged("l", strconv.FormatInt(x, 10))
	case float32:
		tagged("f", quoted(strconv.FormatFloat(float64(x), 'g', -1, 32)))
	case float64:
		tagged("d", quoted(strconv.FormatFloat(x, 'g', -1, 64)))
	case string:
		tagged("S", quoted(x))
	case []byte:
		tagged("x", quoted(base64.StdEncoding.EncodeToString(x)))
	case time.Time:
		tagged("T", quoted(x.Format(time.RFC3339Nano)))
	case []any:
		b.WriteString(`["A",[`)
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := encodeValue(b, e); err != nil {
				return err
			}
		}
		b.WriteString(`]]`)
	case map[string]any:
		b.WriteString(`["F",`)
		if err := encodeTable(b, x); err != nil {
			return err
		}
		b.WriteByte(']')
	default:
		return fmt.Errorf("unsupported value type %T", v)
	}
	return nil
}

// DecodeArgs parses the tagged JSON form; an empty table decodes to nil.
func DecodeArgs(raw json.RawMessage) (Args, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("arguments: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	out := make(Args, len(m))
	for k, r := range m {
		v, err := decodeValue(r)
		if err != nil {
			return nil, fmt.Errorf("argument '%s': %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

func decodeValue(raw json.RawMessage) (any, error) {
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil || len(parts) == 0 {
		return nil, fmt.Errorf("value %s is not a [type, value] pair", raw)
	}
	var tag string
	if err := json.Unmarshal(parts[0], &tag); err != nil {
		return nil, fmt.Errorf("value %s: type tag: %w", raw, err)
	}
	if tag == "V" {
		if len(parts) != 1 {
			return nil, fmt.Errorf("void value %s carries a value", raw)
		}
		return nil, nil
	}
	if len(parts) != 2 {
		return nil, fmt.Errorf("value %s is not a [type, value] pair", raw)
	}
	p := parts[1]
	str := func() (string, error) {
		var s string
		err := json.Unmarshal(p, &s)
		return s, err
	}
	integer := func(bits int) (int64, error) { return strconv.ParseInt(string(p), 10, bits) }
	unsigned := func(bits int) (uint64, error) { return strconv.ParseUint(string(p), 10, bits) }
	var v any
	var err error
	switch tag {
	case "t":
		var x bool
		err = json.Unmarshal(p, &x)
		v = x
	case "b":
		var n int64
		n, err = integer(8)
		v = int8(n)
	case "B":
		var n uint64
		n, err = unsigned(8)
		v = uint8(n)
	case "s":
		var n int64
		n, err = integer(16)
		v = int16(n)
	case "u":
		var n uint64
		n, err = unsigned(16)
		v = uint16(n)
	case "I":
		var n int64
		n, err = integer(32)
		v = int32(n)
	case "i":
		var n uint64
		n, err = unsigned(32)
		v = uint32(n)
	case "l":
		v, err = integer(64)
	case "f", "d":
		var s string
		if s, err = str(); err == nil {
			bits := 64
			if tag == "f" {
				bits = 32
			}
			var f float64
			if f, err = strconv.ParseFloat(s, bits); err == nil {
				if tag == "f" {
					v = float32(f)
				} else {
					v = f
				}
			}
		}
	case "S":
		v, err = str()
	case "x":
		var s string
		if s, err = str(); err == nil {
			v, err = base64.StdEncoding.DecodeString(s)
		}
	case "T":
		var s string
		if s, err = str(); err == nil {
			v, err = time.Parse(time.RFC3339Nano, s)
		}
	case "A":
		var elems []json.RawMessage
		if err = json.Unmarshal(p, &elems); err == nil {
			arr := make([]any, len(elems))
			for i, e := range elems {
				if arr[i], err = decodeValue(e); err != nil {
					break
				}
			}
			v = arr
		}
	case "F":
		var t Args
		if t, err = DecodeArgs(p); err == nil {
			if t == nil {
				t = Args{}
			}
			v = t
		}
	default:
		return nil, fmt.Errorf("value %s: unknown type tag %q", raw, tag)
	}
	if err != nil {
		return nil, fmt.Errorf("value %s: %w", raw, err)
	}
	return v, nil
}
