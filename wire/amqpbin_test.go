package wire

import (
	"encoding/json"
	"reflect"
	"testing"
)

// The binary publish request and fetch answer round-trip, and every
// truncation, trailing byte or impossible count is an error, never a panic
// or a large allocation.
func TestAMQPBinaryBodies(t *testing.T) {
	pub := AMQPPublishRequest{Vhost: "/", Exchange: "logs", Messages: []AMQPPublishMessage{
		{RoutingKey: "a.b", Mandatory: true, Properties: []byte{0x80, 0, 4, 't', 'e', 'x', 't'}, Body: []byte("hello"), Persistent: true},
		{RoutingKey: "", Properties: []byte{}, Body: []byte{}},
	}}
	fetch := AMQPFetchResponse{Ready: 7, TimeoutMillis: 900000, Deliveries: []AMQPDelivery{
		{Handle: 1 << 40, Redelivered: true, Exchange: "amq.topic", RoutingKey: "k", Properties: []byte{0, 0}, Body: make([]byte, 3000)},
		{Handle: 0, Exchange: "", RoutingKey: "q", Properties: []byte{}, Body: []byte{}},
	}}
	pubAnswer := AMQPPublishResponse{Results: []AMQPPublishResult{
		{Status: AMQPStored}, {Status: AMQPUnroutable}, {Status: AMQPFailed, Code: 406, Text: "PRECONDITION_FAILED - too large"},
	}}
	for _, c := range []struct {
		in  interface{ MarshalBinary() ([]byte, error) }
		out interface{ UnmarshalBinary([]byte) error }
	}{{pub, &AMQPPublishRequest{}}, {fetch, &AMQPFetchResponse{}}, {pubAnswer, &AMQPPublishResponse{}}} {
		b, err := c.in.MarshalBinary()
		if err != nil || !IsAMQPBinary(b) {
			t.Fatalf("%T: %v", c.in, err)
		}
		if err := c.out.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if got := reflect.ValueOf(c.out).Elem().Interface(); !reflect.DeepEqual(got, c.in) {
			t.Fatalf("round trip of %T:\n got %+v\nwant %+v", c.in, got, c.in)
		}
		for n := range len(b) {
			if err := c.out.UnmarshalBinary(b[:n]); err == nil {
				t.Fatalf("%T truncated to %d bytes decoded", c.in, n)
			}
		}
		if err := c.out.UnmarshalBinary(append(b[:len(b):len(b)], 0)); err == nil {
			t.Fatalf("%T with a trailing byte decoded", c.in)
		}
	}
	// A count far beyond the bytes left.
	if err := new(AMQPPublishRequest).UnmarshalBinary([]byte{AMQPBinaryMark, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF}); err == nil {
		t.Fatal("a huge message count decoded")
	}
	// A status number past the known ones.
	if err := new(AMQPPublishResponse).UnmarshalBinary([]byte{AMQPBinaryMark, 0, 0, 0, 1, 3, 0, 0, 0, 0}); err == nil {
		t.Fatal("an unknown publish status decoded")
	}
	j, _ := json.Marshal(pub)
	if IsAMQPBinary(j) || new(AMQPPublishRequest).UnmarshalBinary(j) == nil {
		t.Fatal("JSON taken for the binary form")
	}
}

func FuzzAMQPBinaryBodies(f *testing.F) {
	b, _ := AMQPPublishRequest{Vhost: "/", Exchange: "x", Messages: []AMQPPublishMessage{{RoutingKey: "k", Body: []byte("b")}}}.MarshalBinary()
	f.Add(b)
	b, _ = AMQPFetchResponse{Ready: 1, Deliveries: []AMQPDelivery{{Handle: 9, Body: []byte("b")}}}.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var p AMQPPublishRequest
		if p.UnmarshalBinary(b) == nil {
			again, err := p.MarshalBinary()
			if err != nil || string(again) != string(b) {
				t.Fatalf("publish request does not re-encode to its input: %v", err)
			}
		}
		var pa AMQPPublishResponse
		if pa.UnmarshalBinary(b) == nil {
			if again, err := pa.MarshalBinary(); err != nil || string(again) != string(b) {
				t.Fatalf("publish answer does not re-encode to its input: %v", err)
			}
		}
		var fr AMQPFetchResponse
		if fr.UnmarshalBinary(b) == nil {
			if again, err := fr.MarshalBinary(); err != nil || string(again) != string(b) {
				t.Fatalf("fetch answer does not re-encode to its input: %v", err)
			}
		}
	})
}
