package grpcsvc

import (
	"crypto/md5"
	"encoding/hex"
	"net"
	"strings"
	"testing"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/protobuf/proto"

	"github.com/mqops/mqops/wire"
)

func record(t testing.TB, props []byte, body string) []byte {
	t.Helper()
	r := wire.Record{
		Topic: "T", QueueID: 3, QueueOffset: 42, PhysicalOffset: 4096, BornTimestamp: 1_700_000_000_123,
		BornHost: wire.HostBytes(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5000}), StoreTimestamp: 1_700_000_000_456,
		StoreHost: wire.HostBytes(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 10911}), ReconsumeTimes: 2,
		Body: []byte(body), Properties: props,
	}
	b := make([]byte, r.Size())
	r.EncodeTo(b)
	return b
}

// TestToProto: every system property a 5.x client reads comes from the
// record, user properties keep everything not reserved, and a repeated
// property keeps its last value (Java's map).
func TestToProto(t *testing.T) {
	props := wire.AppendProperty(nil, wire.PropUniqKey, "ID1")
	props = wire.AppendProperty(props, wire.PropTags, "TagA")
	props = wire.AppendProperty(props, wire.PropKeys, "k1 k2")
	props = wire.AppendProperty(props, propBornHost, "client-host")
	props = wire.AppendProperty(props, "__SHARDINGKEY", "g1")
	props = wire.AppendProperty(props, propTraceContext, "trace")
	props = wire.AppendProperty(props, "DLQ_ORIGIN_TOPIC", "Orig")
	props = wire.AppendProperty(props, "DLQ_ORIGIN_MESSAGE_ID", "OID")
	props = wire.AppendProperty(props, "color", "red")
	props = wire.AppendProperty(props, "color", "blue")
	props = wire.AppendProperty(props, wire.PropWait, "true")
	const body = "hello"
	d := Delivery{Record: record(t, props, body), Handle: "h1", DeliveryCount: 3}
	m := toProto(&v2.Resource{ResourceNamespace: "ns", Name: "T"}, d)
	sum := md5.Sum([]byte(body))
	tag, group, trace := "TagA", "g1", "trace"
	want := &v2.Message{
		Topic:          &v2.Resource{ResourceNamespace: "ns", Name: "T"},
		UserProperties: map[string]string{"color": "blue"},
		Body:           []byte(body),
		SystemProperties: &v2.SystemProperties{
			MessageId: "ID1", Tag: &tag, Keys: []string{"k1", "k2"}, BornHost: "client-host", StoreHost: "10.0.0.2:10911",
			BodyDigest:   &v2.Digest{Type: v2.DigestType_MD5, Checksum: strings.ToUpper(hex.EncodeToString(sum[:]))},
			BodyEncoding: v2.Encoding_IDENTITY, MessageType: v2.MessageType_FIFO, MessageGroup: &group, TraceContext: &trace,
			DeadLetterQueue: &v2.DeadLetterQueue{Topic: "Orig", MessageId: "OID"},
			ReceiptHandle:   &d.Handle, QueueId: 3, QueueOffset: ptr(int64(42)), DeliveryAttempt: ptr(int32(3)),
		},
	}
	want.SystemProperties.BornTimestamp, want.SystemProperties.StoreTimestamp = m.SystemProperties.BornTimestamp, m.SystemProperties.StoreTimestamp
	if !proto.Equal(m, want) {
		t.Errorf("toProto:\n got %v\nwant %v", m, want)
	}
	if m.SystemProperties.BornTimestamp.AsTime().UnixMilli() != 1_700_000_000_123 || m.SystemProperties.StoreTimestamp.AsTime().UnixMilli() != 1_700_000_000_456 {
		t.Errorf("timestamps %v %v", m.SystemProperties.BornTimestamp, m.SystemProperties.StoreTimestamp)
	}

	// No UNIQ_KEY, no __BORNHOST: the offset message id and the record's
	// born host; a delay property makes it DELAY, a transaction flag wins.
	props = wire.AppendProperty(nil, wire.PropTimerDeliverMs, "1700000000999")
	m = toProto(&v2.Resource{Name: "T"}, Delivery{Record: record(t, props, body), Handle: "h2", DeliveryCount: 1})
	if sp := m.SystemProperties; sp.MessageId != wire.OffsetMsgID(wire.HostBytes(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 10911}), 4096) ||
		sp.BornHost != "10.0.0.1:5000" || sp.MessageType != v2.MessageType_DELAY || sp.Tag != nil || len(m.UserProperties) != 0 {
		t.Errorf("record without UNIQ_KEY: %v", m)
	}
	props = wire.AppendProperty(props, wire.PropTranMsg, "true")
	if m = toProto(&v2.Resource{Name: "T"}, Delivery{Record: record(t, props, body)}); m.SystemProperties.MessageType != v2.MessageType_TRANSACTION {
		t.Errorf("transaction message typed %v", m.SystemProperties.MessageType)
	}
}

// BenchmarkToProto is the per-message conversion of a receive: 1 KiB
// body, the properties a 5.x producer's message carries.
func BenchmarkToProto(b *testing.B) {
	props := wire.AppendProperty(nil, wire.PropUniqKey, "01AABBCCDDEEFF00112233445566778899")
	props = wire.AppendProperty(props, wire.PropTags, "bench")
	props = wire.AppendProperty(props, propBornHost, "127.0.0.1")
	props = wire.AppendProperty(props, wire.PropProducerGroup, "BenchGrpc")
	d := Delivery{Record: record(b, props, strings.Repeat("x", 1024)), Handle: "v1 1 2 0 broker-a 0 1 2", DeliveryCount: 1}
	topic := &v2.Resource{Name: "BenchGrpc"}
	b.ReportAllocs()
	for b.Loop() {
		toProto(topic, d)
	}
}
