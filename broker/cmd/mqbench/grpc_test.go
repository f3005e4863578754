package main

import (
	"bytes"
	"encoding/binary"
	"testing"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/protobuf/proto"

	"github.com/mqops/mqops/broker/grpcsvc"
)

// The request h2load repeats is one gRPC message (5-byte prefix, not
// compressed) holding a SendMessageRequest the broker accepts: one
// message to the topic with a well-formed 34-digit message id.
func TestWriteGrpcRequest(t *testing.T) {
	var out bytes.Buffer
	if err := writeGrpcRequest(options{topic: "BenchGrpc", size: 1024}, &out); err != nil {
		t.Fatal(err)
	}
	b := out.Bytes()
	if len(b) < 5 || b[0] != 0 || int(binary.BigEndian.Uint32(b[1:5])) != len(b)-5 {
		t.Fatalf("bad gRPC message prefix % x for %d bytes", b[:min(len(b), 5)], len(b))
	}
	var req v2.SendMessageRequest
	if err := proto.Unmarshal(b[5:], &req); err != nil {
		t.Fatal(err)
	}
	if len(req.Messages) != 1 {
		t.Fatalf("%d messages", len(req.Messages))
	}
	m := req.Messages[0]
	id := m.GetSystemProperties().GetMessageId()
	if m.GetTopic().GetName() != "BenchGrpc" || len(m.Body) != 1024 || len(id) != idWidth {
		t.Fatalf("topic %q, body %d bytes, id %q", m.GetTopic().GetName(), len(m.Body), id)
	}
	if bad := grpcsvc.CheckMessageID(id); bad != nil {
		t.Fatalf("message id %q refused: %v", id, bad)
	}
}

// The receiver turns each received message into the AckMessageRequest
// entry of its id and receipt handle; the status and the delivery
// timestamp add none, and an error status is an error.
func TestReceiveReplyAckEntries(t *testing.T) {
	var r receiveReply
	resps := []*v2.ReceiveMessageResponse{
		{Content: &v2.ReceiveMessageResponse_Status{Status: &v2.Status{Code: v2.Code_OK}}},
		{Content: &v2.ReceiveMessageResponse_Message{Message: &v2.Message{Body: []byte("x"),
			SystemProperties: &v2.SystemProperties{MessageId: "ID1", ReceiptHandle: proto.String("H1"), BornHost: "h"}}}},
		{Content: &v2.ReceiveMessageResponse_Message{Message: &v2.Message{Body: []byte("y"),
			SystemProperties: &v2.SystemProperties{MessageId: "ID2", ReceiptHandle: proto.String("handle-2")}}}},
		{Content: &v2.ReceiveMessageResponse_DeliveryTimestamp{}},
	}
	for _, m := range resps {
		b, _ := proto.Marshal(m)
		if err := r.read(b); err != nil {
			t.Fatal(err)
		}
	}
	head, _ := proto.Marshal(&v2.AckMessageRequest{Group: &v2.Resource{Name: "G"}, Topic: &v2.Resource{Name: "T"}})
	var ack v2.AckMessageRequest
	if err := proto.Unmarshal(append(head, r.entries...), &ack); err != nil {
		t.Fatal(err)
	}
	want := &v2.AckMessageRequest{Group: &v2.Resource{Name: "G"}, Topic: &v2.Resource{Name: "T"}, Entries: []*v2.AckMessageEntry{
		{MessageId: "ID1", ReceiptHandle: "H1"}, {MessageId: "ID2", ReceiptHandle: "handle-2"}}}
	if !proto.Equal(&ack, want) || len(r.ends) != 2 || r.ends[1] != len(r.entries) {
		t.Fatalf("ack %v, ends %v of %d bytes", &ack, r.ends, len(r.entries))
	}
	bad, _ := proto.Marshal(&v2.ReceiveMessageResponse{Content: &v2.ReceiveMessageResponse_Status{Status: &v2.Status{Code: v2.Code_BAD_REQUEST, Message: "no"}}})
	if err := r.read(bad); err == nil {
		t.Fatal("an error status read without an error")
	}
}
