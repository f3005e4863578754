package namesrv

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/mqops/mqops/wire"
)

// javaCompressedBody encodes like Java's RegisterBrokerBody.encode(true).
func javaCompressedBody(t *testing.T, w wire.TopicConfigSerializeWrapper, filterServers []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	part := func(b []byte) {
		_ = binary.Write(zw, binary.BigEndian, int32(len(b)))
		_, _ = zw.Write(b)
	}
	part(wire.Marshal(w.DataVersion))
	_ = binary.Write(zw, binary.BigEndian, int32(len(w.TopicConfigTable)))
	for _, tc := range w.TopicConfigTable {
		part(fmt.Appendf(nil, "%s %d %d %d %s", tc.TopicName, tc.ReadQueueNums, tc.WriteQueueNums, tc.Perm, tc.TopicFilterType))
	}
	if filterServers == nil {
		filterServers = []string{}
	}
	part(wire.Marshal(filterServers))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeCompressedBody(t *testing.T) {
	a0, _, _ := threeBrokers()
	w, fs, err := decodeRegisterBody(javaCompressedBody(t, a0.wrapper(), []string{"10.0.0.1:30000"}), wire.Version, true)
	if err != nil {
		t.Fatal(err)
	}
	if w.DataVersion != a0.wrapper().DataVersion || len(w.TopicConfigTable) != 3 || len(fs) != 1 || fs[0] != "10.0.0.1:30000" {
		t.Fatalf("decoded %+v %v", w, fs)
	}
	tc := w.TopicConfigTable["TBW102"]
	if tc == nil || !tc.Equal(&wire.TopicConfig{TopicName: "TBW102", ReadQueueNums: 8, WriteQueueNums: 8, Perm: 7, TopicFilterType: "SINGLE_TAG"}) {
		t.Fatalf("TBW102: %+v", tc)
	}
}

func TestDecodeCompressedBodyErrors(t *testing.T) {
	compress := func(raw []byte) []byte {
		var buf bytes.Buffer
		zw := zlib.NewWriter(&buf)
		_, _ = zw.Write(raw)
		_ = zw.Close()
		return buf.Bytes()
	}
	be := func(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
	dv := []byte(`{"counter":1,"timestamp":2}`)
	cases := map[string][]byte{
		"not zlib":          []byte("plain"),
		"empty":             compress(nil),
		"length past end":   compress(append(be(100), dv...)),
		"negative length":   compress(be(-1)),
		"bad data version":  compress(append(be(3), "{x}"...)),
		"huge topic count":  compress(append(append(be(int32(len(dv))), dv...), be(1<<30)...)),
		"short topic":       compress(append(append(append(be(int32(len(dv))), dv...), be(1)...), append(be(5), "T 1 1"...)...)),
		"bad queue number":  compress(append(append(append(be(int32(len(dv))), dv...), be(1)...), append(be(14), "T x 1 6 SINGLE"...)...)),
		"no filter servers": compress(append(append(be(int32(len(dv))), dv...), be(0)...)),
	}
	for name, body := range cases {
		if _, _, err := decodeRegisterBody(body, wire.Version, true); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.Contains(err.Error(), "RegisterBrokerBody") && !strings.Contains(err.Error(), "topic config") {
			t.Errorf("%s: error lacks context: %v", name, err)
		}
	}
}

func TestParseTopicConfigText5x(t *testing.T) {
	tc, err := parseTopicConfigText(`T 4 2 6 MULTI_TAG {"+message.type":"NORMAL"}`)
	if err != nil {
		t.Fatal(err)
	}
	if tc.TopicName != "T" || tc.ReadQueueNums != 4 || tc.WriteQueueNums != 2 || tc.Perm != 6 || tc.TopicFilterType != "MULTI_TAG" {
		t.Fatalf("%+v", tc)
	}
}

func TestBodyCRC32MatchesJava(t *testing.T) {
	// Java UtilAll.crc32("123456789") = 0xCBF43926 & 0x7FFFFFFF.
	if got := bodyCRC32([]byte("123456789")); got != 0x4BF43926 {
		t.Fatalf("crc %#x", got)
	}
}
