package grpcsvc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/protobuf/proto"

	"github.com/mqops/mqops/wire"
)

// deliveryCase is one stored record and how it is delivered.
type deliveryCase struct {
	name      string
	ns, topic string
	d         Delivery
}

// deliveryCases vary every field the hand-written encoder writes: user
// properties (none, one, many, repeated, empty values, Unicode),
// keys (ASCII and Unicode white space), tags (set, empty), message ids
// (UNIQ_KEY or the offset id), born host (property or record), message
// types (NORMAL, FIFO with its group, DELAY with a delivery timestamp,
// TRANSACTION), trace context, dead-letter origin, GZIP, bodies below
// and above grpc-go's pooling threshold, large offsets and attempts.
func deliveryCases(t testing.TB) []deliveryCase {
	rec := func(mod func(r *wire.Record), props ...string) []byte {
		var p []byte
		for i := 0; i+1 < len(props); i += 2 {
			p = wire.AppendProperty(p, props[i], props[i+1])
		}
		r := wire.Record{
			Topic: "T", QueueID: 3, QueueOffset: 42, PhysicalOffset: 4096, BornTimestamp: 1_700_000_000_123,
			BornHost: wire.HostBytes(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5000}), StoreTimestamp: 1_700_000_000_456,
			StoreHost: wire.HostBytes(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 10911}), ReconsumeTimes: 2,
			Body: []byte("hello"), Properties: p,
		}
		if mod != nil {
			mod(&r)
		}
		b := make([]byte, r.Size())
		r.EncodeTo(b)
		return b
	}
	big := func(r *wire.Record) { r.Body = bytes.Repeat([]byte("0123456789abcdef"), 1024) }
	many := []string{wire.PropUniqKey, "01AABB"}
	for i := range 40 {
		many = append(many, "k"+strings.Repeat("x", i), strings.Repeat("v", i))
	}
	return []deliveryCase{
		{"everything", "ns", "T", Delivery{Handle: "v1 1 2 0 b 3 42 4096", DeliveryCount: 3, Record: rec(nil,
			wire.PropUniqKey, "ID1", wire.PropTags, "TagA", wire.PropKeys, "k1 k2", propBornHost, "client-host",
			"__SHARDINGKEY", "g1", propTraceContext, "trace", "DLQ_ORIGIN_TOPIC", "Orig", "DLQ_ORIGIN_MESSAGE_ID", "OID",
			"color", "red", "color", "blue", wire.PropWait, "true", "size", "", "名前", "値")}},
		{"bare record", "", "T", Delivery{Handle: "h", DeliveryCount: 1, Record: rec(func(r *wire.Record) { r.Body = nil })}},
		{"delay", "", "T", Delivery{Handle: "h2", DeliveryCount: 1, Record: rec(nil, wire.PropTimerDeliverMs, "1700000000999", "a", "b")}},
		{"delay level", "", "T", Delivery{Handle: "h2", DeliveryCount: 1, Record: rec(nil, wire.PropDelay, "3")}},
		{"bad deliver ms", "", "T", Delivery{Handle: "h2", DeliveryCount: 1, Record: rec(nil, wire.PropTimerDeliverMs, "soon")}},
		{"transaction", "", "T", Delivery{Handle: "h3", DeliveryCount: 2, Record: rec(nil, wire.PropTranMsg, "true", "__SHARDINGKEY", "g", wire.PropTimerDeliverMs, "5")}},
		{"fifo", "x", "Orders", Delivery{Handle: "h4", DeliveryCount: 17, Record: rec(nil, wire.PropUniqKey, "ID", "__SHARDINGKEY", "order-1")}},
		{"keys and tags", "", "T", Delivery{Handle: "h5", DeliveryCount: 1, Record: rec(nil,
			wire.PropTags, "", wire.PropKeys, "  a\tb  c\u00a0d\u2003e ", wire.PropUniqKey, "U")}},
		{"only spaces in keys", "", "T", Delivery{Handle: "h5", DeliveryCount: 1, Record: rec(nil, wire.PropKeys, "   ")}},
		{"gzip, big body", "", "T", Delivery{Handle: strings.Repeat("h", 300), DeliveryCount: 1 << 20, Record: rec(func(r *wire.Record) {
			big(r)
			r.SysFlag |= sysFlagCompressed
			r.QueueOffset, r.PhysicalOffset, r.QueueID = 1<<40, 1<<50, 1000
		}, wire.PropUniqKey, "ID", propTraceContext, "00-abc-def-01")}},
		{"many properties", "", "T", Delivery{Handle: "h6", DeliveryCount: 1, Record: rec(big, many...)}},
		{"DLQ topic without id", "", "T", Delivery{Handle: "h7", DeliveryCount: 1, Record: rec(nil, "DLQ_ORIGIN_TOPIC", "Orig")}},
		{"zero timestamps", "", "T", Delivery{Handle: "h8", DeliveryCount: 1, Record: rec(func(r *wire.Record) {
			r.BornTimestamp, r.StoreTimestamp, r.QueueOffset, r.QueueID = 0, 1000, 0, 0
		})}},
	}
}

// TestEncodeDeliveryMatchesGenerated: the bytes the broker writes for a
// delivery decode, with the generated v5.1.4 types, to exactly the
// message the generated encoder makes from toProto's conversion
// (proto.Equal after a round trip through the generated encoder), and
// grpc-go's buffer holds exactly the computed size.
func TestEncodeDeliveryMatchesGenerated(t *testing.T) {
	enc := new(deliveryEncoder) // reused across cases, as a receive does
	for _, c := range deliveryCases(t) {
		t.Run(c.name, func(t *testing.T) {
			m := &deliveryMsg{ns: c.ns, topic: c.topic, d: c.d, enc: enc}
			data := m.marshal()
			got := data.Materialize()
			s := enc.sizes(m)
			data.Free()
			if len(got) != s.total {
				t.Errorf("wrote %d bytes, computed %d", len(got), s.total)
			}
			var dec v2.ReceiveMessageResponse
			if err := proto.Unmarshal(got, &dec); err != nil {
				t.Fatalf("generated types cannot decode the bytes: %v", err)
			}
			ref := &v2.ReceiveMessageResponse{Content: &v2.ReceiveMessageResponse_Message{
				Message: toProto(&v2.Resource{ResourceNamespace: c.ns, Name: c.topic}, c.d)}}
			refBytes, err := proto.Marshal(ref)
			if err != nil {
				t.Fatal(err)
			}
			var want v2.ReceiveMessageResponse
			if err := proto.Unmarshal(refBytes, &want); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(&dec, &want) {
				t.Errorf("decoded:\n%v\nwant (generated):\n%v", &dec, &want)
			}
			if len(want.GetMessage().GetUserProperties()) <= 1 {
				// No map order to differ in: the very bytes match.
				det, _ := proto.MarshalOptions{Deterministic: true}.Marshal(ref)
				if !bytes.Equal(got, det) {
					t.Errorf("bytes differ from the generated encoder's:\n got %x\nwant %x", got, det)
				}
			}
		})
	}
}

// TestEncodeDeliveryInvalidUTF8: a property a remoting producer stored
// as bytes that are not UTF-8 (which the generated encoder refuses to
// write as a proto3 string) arrives with U+FFFD in their place instead
// of breaking the client's stream.
func TestEncodeDeliveryInvalidUTF8(t *testing.T) {
	props := wire.AppendProperty(nil, "bin\xff", "v\xfe\xfd")
	props = wire.AppendProperty(props, wire.PropTags, "t\xc3")
	props = wire.AppendProperty(props, wire.PropKeys, "ok k\xff")
	d := Delivery{Record: record(t, props, "body\xff"), Handle: "h", DeliveryCount: 1}
	if _, err := proto.Marshal(toProto(&v2.Resource{Name: "T"}, d)); err == nil {
		t.Fatal("the generated encoder accepted invalid UTF-8; this test expects it to refuse")
	}
	data := (&deliveryMsg{topic: "T", d: d, enc: new(deliveryEncoder)}).marshal()
	defer data.Free()
	var dec v2.ReceiveMessageResponse
	if err := proto.Unmarshal(data.Materialize(), &dec); err != nil {
		t.Fatalf("decode: %v", err)
	}
	m := dec.GetMessage()
	if v, ok := m.GetUserProperties()["bin\uFFFD"]; !ok || v != "v\uFFFD" {
		t.Errorf("user properties %q", m.GetUserProperties())
	}
	if sp := m.GetSystemProperties(); sp.GetTag() != "t\uFFFD" || len(sp.GetKeys()) != 2 || sp.GetKeys()[1] != "k\uFFFD" {
		t.Errorf("tag %q keys %q", sp.GetTag(), sp.GetKeys())
	}
	if string(m.GetBody()) != "body\xff" {
		t.Errorf("body %q: bytes are not strings, they stay as stored", m.GetBody())
	}
}

// popBackend serves fixed deliveries to the service (the broker's POP
// engine is tested in broker/server and e2e/grpc).
type popBackend struct {
	*recorder
	ds    []Delivery
	acked chan string
}

func (p *popBackend) Receive(context.Context, *PopRequest) ([]Delivery, *PopError) {
	ds := p.ds
	p.ds = nil
	return ds, nil
}
func (p *popBackend) Ack(group, topic, handle string) *PopError { p.acked <- handle; return nil }
func (p *popBackend) ChangeInvisible(string, string, string, time.Duration) (string, *PopError) {
	return "", &PopError{Code: PopInternal, Msg: "not in this test"}
}
func (p *popBackend) ForwardToDLQ(string, string, string) *PopError { return nil }
func (p *popBackend) MaxAttempts(string) int32                      { return 17 }
func (p *popBackend) Orderly(string) bool                           { return false }

// TestReceiveStreamsHandEncodedMessages: a generated gRPC client (over
// TLS and plaintext) receives the status, every delivery equal to the
// generated encoder's message, and the delivery timestamp; other RPCs
// on the same server still use the generated codec (the ack).
func TestReceiveStreamsHandEncodedMessages(t *testing.T) {
	cases := deliveryCases(t)
	be := &popBackend{recorder: &recorder{}, acked: make(chan string, 1)}
	s, err := Listen(Config{Addr: "127.0.0.1:0", MaxRecvMsgSize: 1 << 20, TLSMode: TLSPermissive, SelfSigned: true,
		CertHosts: []string{"127.0.0.1"}, MaxMessageSize: 1024, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, be)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve() }()
	t.Cleanup(s.Stop)
	for _, useTLS := range []bool{false, true} {
		be.ds = nil
		for _, c := range cases {
			be.ds = append(be.ds, c.d)
		}
		c := dialService(t, s, useTLS)
		ctx := ctxFor(t, "consumer-1")
		rs, err := c.ReceiveMessage(ctx, &v2.ReceiveMessageRequest{
			Group: &v2.Resource{Name: "G"}, MessageQueue: &v2.MessageQueue{Topic: &v2.Resource{ResourceNamespace: "ns", Name: "T"}},
			BatchSize: 32, AutoRenew: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		var got []*v2.Message
		var status, stamp bool
		for {
			r, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case r.GetStatus() != nil:
				status = r.GetStatus().GetCode() == v2.Code_OK
			case r.GetMessage() != nil:
				got = append(got, r.GetMessage())
			case r.GetDeliveryTimestamp() != nil:
				stamp = true
			}
		}
		if !status || !stamp || len(got) != len(cases) {
			t.Fatalf("tls=%v: status OK %v, %d messages of %d, delivery timestamp %v", useTLS, status, len(got), len(cases), stamp)
		}
		for i, c := range cases {
			want := toProto(&v2.Resource{ResourceNamespace: "ns", Name: "T"}, c.d)
			if !proto.Equal(got[i], want) {
				t.Errorf("tls=%v %s:\n got %v\nwant %v", useTLS, c.name, got[i], want)
			}
		}
		ar, err := c.AckMessage(ctx, &v2.AckMessageRequest{Group: &v2.Resource{Name: "G"}, Topic: &v2.Resource{Name: "T"},
			Entries: []*v2.AckMessageEntry{{MessageId: "ID1", ReceiptHandle: "v1 1 2 0 b 3 42 4096"}}})
		if err != nil || ar.GetStatus().GetCode() != v2.Code_OK || <-be.acked != "v1 1 2 0 b 3 42 4096" {
			t.Fatalf("ack: %v %v", ar, err)
		}
	}
}

// BenchmarkEncodeDelivery is the per-message encoding of a receive: 1
// KiB body, the properties a 5.x producer's message carries (compare
// BenchmarkToProto, which the generated encoder's Marshal follows).
func BenchmarkEncodeDelivery(b *testing.B) {
	props := wire.AppendProperty(nil, wire.PropUniqKey, "01AABBCCDDEEFF00112233445566778899")
	props = wire.AppendProperty(props, wire.PropTags, "bench")
	props = wire.AppendProperty(props, propBornHost, "127.0.0.1")
	props = wire.AppendProperty(props, wire.PropProducerGroup, "BenchGrpc")
	m := &deliveryMsg{topic: "BenchGrpc", enc: new(deliveryEncoder),
		d: Delivery{Record: record(b, props, strings.Repeat("x", 1024)), Handle: "v1 1 2 0 broker-a 0 1 2", DeliveryCount: 1}}
	b.ReportAllocs()
	for b.Loop() {
		m.marshal().Free()
	}
}
