package wire

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
)

// amqpAllTypes holds one value of every type the AMQP codec decodes tables into.
func amqpAllTypes() map[string]any {
	return map[string]any{
		"bool": true, "i8": int8(-8), "u8": uint8(8), "i16": int16(-16), "u16": uint16(16),
		"i32": int32(-32), "u32": uint32(32), "i64": int64(math.MinInt64), "f32": float32(1.5),
		"f64": 0.1, "inf": math.Inf(-1), "str": "ünï\x00code", "bytes": []byte{0, 1, 255},
		"ts": time.Unix(1700000000, 0).UTC(), "void": nil,
		"arr":   []any{int32(1), "two", []any{false}, map[string]any{"k": uint8(3)}},
		"table": map[string]any{"nested": map[string]any{"deep": []byte("x")}, "e": map[string]any{}},
	}
}

func TestAMQPTableRoundTrip(t *testing.T) {
	a := amqpAllTypes()
	raw, err := EncodeAMQPTable(a)
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeAMQPTable(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("round trip differs:\n%v\n%v", a, b)
	}
	for k := range a {
		if reflect.TypeOf(a[k]) != reflect.TypeOf(b[k]) {
			t.Errorf("%s: type %T came back as %T", k, a[k], b[k])
		}
	}
	raw2, _ := EncodeAMQPTable(b)
	if string(raw) != string(raw2) {
		t.Fatal("encoding is not deterministic")
	}
	for _, bad := range []string{`{"a":1}`, `{"a":["Q",1]}`, `{"a":["b",300]}`, `{"a":["u",-1]}`, `{"a":["x","!!"]}`, `{"a":["V",1]}`, `[`} {
		if _, err := DecodeAMQPTable([]byte(bad)); err == nil {
			t.Errorf("%s decoded", bad)
		}
	}
}

// NaN survives the tagged form (floats travel as strings).
func TestAMQPTableNaN(t *testing.T) {
	raw, err := EncodeAMQPTable(map[string]any{"n": math.NaN(), "f": float32(math.NaN())})
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeAMQPTable(raw)
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := m["n"].(float64); !ok || !math.IsNaN(f) {
		t.Fatalf("n = %#v", m["n"])
	}
	if f, ok := m["f"].(float32); !ok || f == f {
		t.Fatalf("f = %#v", m["f"])
	}
}

// A body carries its table with the types intact.
func TestAMQPBodyTable(t *testing.T) {
	in := AMQPQueueDeclare{Vhost: "/", Queue: "q", Durable: true, Arguments: AMQPTable{"x-max-length": int32(5), "x-b": []byte("y")}}
	var out AMQPQueueDeclare
	if err := json.Unmarshal(Marshal(in), &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("%#v\n%#v", in, out)
	}
}

// Whatever a peer sends as a tagged table is refused or decoded, never a
// panic, and what decodes encodes back to something that decodes equal.
func FuzzDecodeAMQPTable(f *testing.F) {
	raw, _ := EncodeAMQPTable(amqpAllTypes())
	f.Add([]byte(raw))
	f.Add([]byte(`{"a":["A",[["F",{"b":["V"]}]]]}`))
	f.Add([]byte(`{"a":["l",9223372036854775808]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeAMQPTable(b)
		if err != nil {
			return
		}
		again, err := EncodeAMQPTable(m)
		if err != nil {
			t.Fatalf("decoded %q but cannot encode it: %v", b, err)
		}
		m2, err := DecodeAMQPTable(again)
		if err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", again, err)
		}
		raw2, _ := EncodeAMQPTable(m2)
		if string(raw2) != string(again) {
			t.Fatalf("not stable: %s vs %s", again, raw2)
		}
	})
}
