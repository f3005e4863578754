package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"
)

// frame builds a frame body (after the length prefix) by hand.
func frame(st byte, header, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(st)<<24|uint32(len(header)))
	b = append(b, header...)
	return append(b, body...)
}

func TestDecodeGoClientJSONHeader(t *testing.T) {
	// What rocketmq-client-go v2.1.2 writes for a send: struct key order,
	// remark always present, properties with \u0001/\u0002 escapes.
	hdr := `{"code":10,"language":"GO","version":317,"opaque":7,"flag":0,"remark":"","extFields":{"topic":"T","properties":"TAGS\u0001a\u0002KEYS\u0001k1 k2\u0002","queueId":"3"}}`
	var c Command
	if err := DecodeFrame(frame(0, []byte(hdr), []byte("body")), &c); err != nil {
		t.Fatal(err)
	}
	if c.Code != 10 || c.Version != 317 || c.Opaque != 7 || c.Language != LanguageGo || c.Flag != 0 {
		t.Fatalf("header fields: %+v", c)
	}
	if got := string(c.Get("properties")); got != "TAGS\x01a\x02KEYS\x01k1 k2\x02" {
		t.Fatalf("properties = %q", got)
	}
	if q, ok := c.GetInt("queueId"); !ok || q != 3 {
		t.Fatalf("queueId = %d %v", q, ok)
	}
	if string(c.Body) != "body" {
		t.Fatalf("body = %q", c.Body)
	}
}

func TestDecodeJavaJSONHeader(t *testing.T) {
	hdr := `{"code":0,"extFields":{"queueId":"1","msgId":"AB"},"flag":1,"language":"JAVA","opaque":42,"serializeTypeCurrentRPC":"JSON","version":409,"extra":{"nested":[1,2,{"a":null}]},"remark":null}`
	var c Command
	if err := DecodeFrame(frame(0, []byte(hdr), nil), &c); err != nil {
		t.Fatal(err)
	}
	if !c.IsResponse() || c.Opaque != 42 || c.Language != 0 || c.GetString("msgId") != "AB" || c.Body != nil || c.Remark != nil {
		t.Fatalf("decoded %+v", c)
	}
}

func TestDecodeEscapes(t *testing.T) {
	hdr := `{"code":1,"extFields":{"k":"a\"b\\c\/d\n\u00e9\ud83d\ude00\u003c"},"remark":"x"}`
	var c Command
	if err := DecodeFrame(frame(0, []byte(hdr), nil), &c); err != nil {
		t.Fatal(err)
	}
	if got := c.GetString("k"); got != "a\"b\\c/d\né😀<" {
		t.Fatalf("k = %q", got)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	in := Command{Code: 17, Language: LanguageGo, Version: Version, Opaque: 99, Flag: FlagResponse, Remark: []byte("bad \"thing\"\n"), Body: []byte{0, 1, 2}}
	in.Set("properties", "A\x01B\x02C\x01D")
	in.Set("queueId", "4")
	out := AppendFrame(nil, &in)
	if n, err := FrameLength(out); err != nil || n != len(out)-4 {
		t.Fatalf("length prefix %d err %v, frame %d", n, err, len(out))
	}
	// The header must be valid JSON whose extFields values are all strings:
	// the Go client rejects anything else.
	hl := int(binary.BigEndian.Uint32(out[4:]) & 0xFFFFFF)
	var generic struct {
		Code      int               `json:"code"`
		ExtFields map[string]string `json:"extFields"`
	}
	if err := json.Unmarshal(out[8:8+hl], &generic); err != nil {
		t.Fatalf("header is not JSON with string extFields: %v\n%s", err, out[8:8+hl])
	}
	var back Command
	if err := DecodeFrame(out[4:], &back); err != nil {
		t.Fatal(err)
	}
	if back.Code != 17 || back.Opaque != 99 || string(back.Remark) != string(in.Remark) || back.GetString("properties") != "A\x01B\x02C\x01D" || !bytes.Equal(back.Body, in.Body) {
		t.Fatalf("round trip: %+v", back)
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	in := Command{Code: 11, Language: 0, Version: 409, Opaque: -5, Flag: 0, SerializeType: SerializeRocketMQ, Body: []byte("b")}
	in.Set("topic", "T")
	in.Set("empty", "")
	out := AppendFrame(nil, &in)
	var back Command
	if err := DecodeFrame(out[4:], &back); err != nil {
		t.Fatal(err)
	}
	if back.SerializeType != SerializeRocketMQ || back.Code != 11 || back.Opaque != -5 || back.GetString("topic") != "T" || back.Has("empty") || string(back.Body) != "b" {
		t.Fatalf("binary round trip: %+v", back)
	}
}

func TestMalformedFrames(t *testing.T) {
	cases := map[string][]byte{
		"short":             {0, 0},
		"header too long":   frame(0, []byte(`{}`), nil)[:5],
		"unknown serialize": frame(7, []byte(`{}`), nil),
		"not json":          frame(0, []byte(`garbage`), nil),
		"unterminated":      frame(0, []byte(`{"code":1,"extFields":{"a":"b`), nil),
		"bad escape":        frame(0, []byte(`{"code":1,"remark":"\x"}`), nil),
		"bad number":        frame(0, []byte(`{"code":1x}`), nil),
		"trailing":          frame(0, []byte(`{"code":1}}`), nil),
		"binary short":      frame(1, []byte{0, 1, 2}, nil),
		"binary remark":     frame(1, append(make([]byte, 13), 0x7f, 0, 0, 0, 0, 0, 0, 0), nil),
	}
	binary.BigEndian.PutUint32(cases["header too long"], 0x00000100)
	for name, f := range cases {
		var c Command
		err := DecodeFrame(f, &c)
		if err == nil {
			t.Errorf("%s: decoded without error", name)
			continue
		}
		if !errors.Is(err, ErrBadFrame) && !errors.Is(err, ErrBadHeader) {
			t.Errorf("%s: unexpected error kind %v", name, err)
		}
	}
	if _, err := FrameLength([]byte{0x7f, 0xff, 0xff, 0xff}); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("huge frame: %v", err)
	}
	if _, err := FrameLength([]byte{0xff, 0xff, 0xff, 0xff}); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("negative frame: %v", err)
	}
}

func TestParseInt(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "-1": -1, "9223372036854775807": 1<<63 - 1, "-9223372036854775808": -1 << 63} {
		if got, ok := ParseInt([]byte(in)); !ok || got != want {
			t.Errorf("ParseInt(%s) = %d %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "-", "1a", "9223372036854775808", "99999999999999999999"} {
		if _, ok := ParseInt([]byte(in)); ok {
			t.Errorf("ParseInt(%q) accepted", in)
		}
	}
}

func BenchmarkDecodeSendHeader(b *testing.B) {
	hdr := []byte(`{"code":10,"language":"GO","version":317,"opaque":7,"flag":0,"remark":"","extFields":{"producerGroup":"pg","topic":"TopicTest","defaultTopic":"TBW102","defaultTopicQueueNums":"4","queueId":"3","sysFlag":"0","bornTimestamp":"1700000000000","flag":"0","properties":"UNIQ_KEY\u00017F0000010001000000001a2b3c4d0001\u0002WAIT\u0001true\u0002TAGS\u0001TagA\u0002","reconsumeTimes":"0","unitMode":"false","maxReconsumeTimes":"0","batch":"false"}}`)
	f := frame(0, hdr, make([]byte, 1024))
	work := make([]byte, len(f))
	var c Command
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for i := 0; i < b.N; i++ {
		copy(work, f)
		if err := DecodeFrame(work, &c); err != nil {
			b.Fatal(err)
		}
	}
}

// An int field wider than Java's int is a malformed header, never another
// value: 99999999999 used to decode as code 1215752191.
func TestDecodeJSONHeaderRefusesWideInts(t *testing.T) {
	for _, hdr := range []string{
		`{"code":99999999999,"opaque":1}`,
		`{"code":-2147483649,"opaque":1}`,
		`{"code":10,"opaque":4294967297}`,
		`{"code":10,"flag":4294967296}`,
		`{"code":10,"version":2147483648}`,
		`{"code":10,"language":265}`,
	} {
		var c Command
		err := DecodeFrame(frame(0, []byte(hdr), nil), &c)
		if !errors.Is(err, ErrBadHeader) || !bytes.Contains([]byte(err.Error()), []byte("range")) {
			t.Errorf("%s: err %v, decoded code %d opaque %d; want a range error", hdr, err, c.Code, c.Opaque)
		}
	}
	var c Command
	if err := DecodeFrame(frame(0, []byte(`{"code":-2147483648,"opaque":2147483647}`), nil), &c); err != nil || c.Code != -1<<31 || c.Opaque != 1<<31-1 {
		t.Fatalf("int32 limits: %v %+v", err, c)
	}
}

func TestParseInt32(t *testing.T) {
	for in, want := range map[string]bool{"0": true, "-1": true, "2147483647": true, "-2147483648": true,
		"2147483648": false, "4294967297": false, "-2147483649": false, "": false, "x": false} {
		if _, ok := ParseInt32([]byte(in)); ok != want {
			t.Errorf("ParseInt32(%q) ok=%v, want %v", in, ok, want)
		}
	}
}
