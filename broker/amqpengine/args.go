package amqpengine

import (
	"bytes"
	"fmt"
	"math"
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
