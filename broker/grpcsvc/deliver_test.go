package grpcsvc

import (
	"crypto/md5"
	"encoding/hex"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

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

// toProto is the reference for the deliveries encode.go writes by hand:
// the stored record converted to the generated v2.Message (Java
// GrpcConverter.buildMessage / buildSystemProperties), which the
// generated code then encodes. The broker served this until 2026-12-07.

// delivered is one converted message in a single allocation.
type delivered struct {
	msg               v2.Message
	sp                v2.SystemProperties
	digest            v2.Digest
	born, stored      timestamppb.Timestamp
	queueOffset       int64
	attempt           int32
	tag, group, trace string
}

// toProto converts a stored record to a delivered message (Java
// GrpcConverter.buildMessage / buildSystemProperties) whose topic is
// topic (not copied). It runs once per delivered message, so it reads the
// properties in one pass without an intermediate map and allocates the
// fixed parts of the message at once.
func toProto(topic *v2.Resource, d Delivery) *v2.Message {
	v := wire.RecordView(d.Record)
	body := v.Body()
	x := &delivered{queueOffset: v.QueueOffset(), attempt: d.DeliveryCount}
	x.digest = v2.Digest{Type: v2.DigestType_MD5, Checksum: md5Hex(body)}
	born, stored := time.UnixMilli(v.BornTimestamp()), time.UnixMilli(v.StoreTimestamp())
	x.born = timestamppb.Timestamp{Seconds: born.Unix(), Nanos: int32(born.Nanosecond())}
	x.stored = timestamppb.Timestamp{Seconds: stored.Unix(), Nanos: int32(stored.Nanosecond())}
	sp := &x.sp
	sp.BodyDigest = &x.digest
	sp.BodyEncoding = v2.Encoding_IDENTITY
	sp.MessageType = v2.MessageType_NORMAL
	sp.BornTimestamp, sp.StoreTimestamp = &x.born, &x.stored
	sp.StoreHost = storeHost(v.StoreHost())
	sp.ReceiptHandle = &d.Handle
	sp.QueueId = v.QueueID()
	sp.QueueOffset, sp.DeliveryAttempt = &x.queueOffset, &x.attempt
	var tag, keys, bornHost, tranMsg, delay, deliverMs, group, trace, dlqTopic, dlqID []byte
	var user map[string]string
	for props := v.Properties(); len(props) > 0; {
		k, val, rest, ok := wire.NextProperty(props)
		props = rest
		if !ok {
			continue
		}
		// A repeated key keeps its last value, as Java's map does.
		switch string(k) {
		case wire.PropUniqKey:
			sp.MessageId = string(val)
		case wire.PropTags:
			tag = val
		case wire.PropKeys:
			keys = val
		case propBornHost:
			bornHost = val
		case wire.PropTranMsg:
			tranMsg = val
		case wire.PropTimerDeliverMs:
			delay, deliverMs = val, val
		case wire.PropDelay, wire.PropTimerDelaySec:
			delay = val
		case "__SHARDINGKEY":
			group = val
		case propTraceContext:
			trace = val
		case "DLQ_ORIGIN_TOPIC":
			dlqTopic = val
		case "DLQ_ORIGIN_MESSAGE_ID":
			dlqID = val
		default:
			if !reserved[string(k)] {
				if user == nil {
					user = map[string]string{}
				}
				user[string(k)] = string(val)
			}
		}
	}
	if sp.MessageId == "" {
		sp.MessageId = wire.OffsetMsgID(v.StoreHost(), v.PhysicalOffset())
	}
	if len(bornHost) > 0 {
		sp.BornHost = string(bornHost)
	} else {
		sp.BornHost = wire.HostString(v.BornHost())
	}
	if v.SysFlag()&sysFlagCompressed != 0 {
		sp.BodyEncoding = v2.Encoding_GZIP
	}
	if tag != nil {
		x.tag = string(tag)
		sp.Tag = &x.tag
	}
	if len(keys) > 0 {
		sp.Keys = strings.Fields(string(keys))
	}
	switch {
	case string(tranMsg) == "true":
		sp.MessageType = v2.MessageType_TRANSACTION
	case len(delay) > 0:
		sp.MessageType = v2.MessageType_DELAY
	case len(group) > 0:
		sp.MessageType = v2.MessageType_FIFO
		x.group = string(group)
		sp.MessageGroup = &x.group
	}
	if ms, err := strconv.ParseInt(string(deliverMs), 10, 64); err == nil && ms > 0 {
		sp.DeliveryTimestamp = timestamppb.New(time.UnixMilli(ms))
	}
	if len(trace) > 0 {
		x.trace = string(trace)
		sp.TraceContext = &x.trace
	}
	if len(dlqTopic) > 0 && len(dlqID) > 0 {
		sp.DeadLetterQueue = &v2.DeadLetterQueue{Topic: string(dlqTopic), MessageId: string(dlqID)}
	}
	x.msg.Topic, x.msg.UserProperties, x.msg.SystemProperties, x.msg.Body = topic, user, sp, body
	return &x.msg
}

// md5Hex is the body digest as Java's proxy writes it: upper-case hex MD5.
func md5Hex(body []byte) string {
	const digits = "0123456789ABCDEF"
	sum := md5.Sum(body)
	var out [2 * md5.Size]byte
	for i, b := range sum {
		out[2*i], out[2*i+1] = digits[b>>4], digits[b&0xf]
	}
	return string(out[:])
}

// BenchmarkToProtoMarshal is what a delivery cost before encode.go:
// the conversion and the generated encoder's Marshal.
func BenchmarkToProtoMarshal(b *testing.B) {
	props := wire.AppendProperty(nil, wire.PropUniqKey, "01AABBCCDDEEFF00112233445566778899")
	props = wire.AppendProperty(props, wire.PropTags, "bench")
	props = wire.AppendProperty(props, propBornHost, "127.0.0.1")
	props = wire.AppendProperty(props, wire.PropProducerGroup, "BenchGrpc")
	d := Delivery{Record: record(b, props, strings.Repeat("x", 1024)), Handle: "v1 1 2 0 broker-a 0 1 2", DeliveryCount: 1}
	topic := &v2.Resource{Name: "BenchGrpc"}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = proto.Marshal(&v2.ReceiveMessageResponse{Content: &v2.ReceiveMessageResponse_Message{Message: toProto(topic, d)}})
	}
}
