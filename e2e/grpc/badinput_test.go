package grpc

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TestBadInput sends what no client should, through a raw client: calls
// without x-mq-client-id, malformed and truncated protobuf on unary and
// streaming RPCs, unknown methods and services, absurd batch sizes,
// invisible durations and long-polling timeouts, thousands of forged
// receipt handles, and bytes that are not HTTP/2 at all. Each gets a
// clear status (in the body, as Java's proxy answers, or a gRPC code),
// the broker never panics, and afterwards it still serves: the messages
// sent before are all received.
func TestBadInput(t *testing.T) {
	c := startCluster(t, append([]string{"grpcMaxInboundMessageSize=4194304"}, popKV...)...)
	const topic, empty, n = "GrpcBadInput", "GrpcBadEmpty", 40
	createTopic(t, c, topic, 2)
	createTopic(t, c, empty, 2)
	cl, conn := dial(t, c.grpcAddr, true)
	for i := range n {
		r, err := cl.SendMessage(withClient("raw-bad"), &v2.SendMessageRequest{Messages: []*v2.Message{msg(topic, "m"+itoa(int32(i)))}})
		if err != nil || r.GetStatus().GetCode() != v2.Code_OK {
			t.Fatalf("send %d: %v %v", i, err, r.GetStatus())
		}
	}
	res := func(name string) *v2.Resource { return &v2.Resource{Name: name} }
	mq := &v2.MessageQueue{Topic: res(topic), Id: -1}
	minute := durationpb.New(time.Minute)
	wantCode := func(what string, got *v2.Status, err error, want v2.Code) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: transport error %v, want %v in the body", what, err, want)
		} else if got.GetCode() != want {
			t.Errorf("%s: %v %q, want %v", what, got.GetCode(), got.GetMessage(), want)
		}
	}

	// No x-mq-client-id: CLIENT_ID_REQUIRED from every RPC (Java's
	// GrpcMessagingApplication.validateContext), the Telemetry stream
	// ends with InvalidArgument.
	noID := withClient("")
	{
		r1, err := cl.Heartbeat(noID, &v2.HeartbeatRequest{ClientType: v2.ClientType_PRODUCER})
		wantCode("heartbeat without client id", r1.GetStatus(), err, v2.Code_CLIENT_ID_REQUIRED)
		r2, err := cl.QueryAssignment(noID, &v2.QueryAssignmentRequest{Topic: res(topic), Group: res("G")})
		wantCode("query assignment without client id", r2.GetStatus(), err, v2.Code_CLIENT_ID_REQUIRED)
		r3, err := cl.AckMessage(noID, &v2.AckMessageRequest{Group: res("G"), Topic: res(topic), Entries: []*v2.AckMessageEntry{{ReceiptHandle: "h"}}})
		wantCode("ack without client id", r3.GetStatus(), err, v2.Code_CLIENT_ID_REQUIRED)
		r4, err := cl.ChangeInvisibleDuration(noID, &v2.ChangeInvisibleDurationRequest{Group: res("G"), Topic: res(topic), ReceiptHandle: "h", InvisibleDuration: minute})
		wantCode("change invisible duration without client id", r4.GetStatus(), err, v2.Code_CLIENT_ID_REQUIRED)
		r5, err := cl.ForwardMessageToDeadLetterQueue(noID, &v2.ForwardMessageToDeadLetterQueueRequest{Group: res("G"), Topic: res(topic), ReceiptHandle: "h"})
		wantCode("forward to DLQ without client id", r5.GetStatus(), err, v2.Code_CLIENT_ID_REQUIRED)
		r6, err := cl.EndTransaction(noID, &v2.EndTransactionRequest{Topic: res(topic), MessageId: "x", TransactionId: "y", Resolution: v2.TransactionResolution_COMMIT})
		wantCode("end transaction without client id", r6.GetStatus(), err, v2.Code_CLIENT_ID_REQUIRED)
		r7, err := cl.NotifyClientTermination(noID, &v2.NotifyClientTerminationRequest{})
		wantCode("termination without client id", r7.GetStatus(), err, v2.Code_CLIENT_ID_REQUIRED)
		// RecallMessage is newer than v5.1.2's protocol: an empty request
		// as raw bytes; its response starts with the status as field 1, as
		// HeartbeatResponse does.
		var raw []byte
		err = conn.Invoke(noID, "/apache.rocketmq.v2.MessagingService/RecallMessage", []byte{}, &raw, grpc.ForceCodec(rawCodec{}))
		var r8 v2.HeartbeatResponse
		if err == nil {
			err = proto.Unmarshal(raw, &r8)
		}
		wantCode("recall without client id", r8.GetStatus(), err, v2.Code_CLIENT_ID_REQUIRED)
		stat, msgs, err := receiveWith(noID, cl, &v2.ReceiveMessageRequest{Group: res("G"), MessageQueue: mq, InvisibleDuration: minute})
		wantCode("receive without client id", stat, err, v2.Code_CLIENT_ID_REQUIRED)
		if len(msgs) != 0 {
			t.Errorf("receive without client id delivered %d messages", len(msgs))
		}
		tel, err := cl.Telemetry(noID)
		if err == nil {
			_, err = tel.Recv()
		}
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "x-mq-client-id") {
			t.Errorf("telemetry without client id: %v, want InvalidArgument naming x-mq-client-id", err)
		}
	}

	// Unknown methods and services: Unimplemented.
	var out []byte
	for _, m := range []string{"/apache.rocketmq.v2.MessagingService/NoSuchRPC", "/apache.rocketmq.v3.MessagingService/SendMessage", "/no.Such/Service"} {
		if err := conn.Invoke(withClient("raw-bad"), m, []byte{}, &out, grpc.ForceCodec(rawCodec{})); status.Code(err) != codes.Unimplemented {
			t.Errorf("%s: %v, want Unimplemented", m, err)
		}
	}

	// Malformed protobuf: a bad length, a truncated request, field number
	// 0, a string that is not UTF-8; on unary and streaming RPCs alike
	// the call fails with Internal (grpc-go's "error unmarshalling").
	good, _ := proto.Marshal(&v2.AckMessageRequest{Group: res("G"), Topic: res(topic), Entries: []*v2.AckMessageEntry{{MessageId: "x", ReceiptHandle: "h"}}})
	for name, b := range map[string][]byte{
		"bad length":   {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"truncated":    good[:len(good)-3],
		"field 0":      {0x00, 0x01},
		"invalid utf8": {0x0a, 0x03, 0x12, 0x01, 0xff}, // field 1 {field 2 (a string): 0xff}
	} {
		for _, m := range []string{"AckMessage", "SendMessage", "QueryRoute", "ChangeInvisibleDuration"} {
			err := conn.Invoke(withClient("raw-bad"), "/apache.rocketmq.v2.MessagingService/"+m, b, &out, grpc.ForceCodec(rawCodec{}))
			if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "unmarshal") {
				t.Errorf("%s %s: %v, want Internal (unmarshalling)", m, name, err)
			}
		}
		for _, m := range []string{"ReceiveMessage", "Telemetry"} {
			if err := rawStream(conn, m, b); status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "unmarshal") {
				t.Errorf("%s %s: %v, want Internal (unmarshalling)", m, name, err)
			}
		}
	}

	// Absurd batch sizes are capped at 32 (Java's
	// MAX_MSG_NUMS_FOR_POP_REQUEST); each group gets its first batch.
	for i, bs := range []int32{-1, 0, math.MaxInt32, math.MinInt32} {
		stat, msgs, err := receiveWith(withClient("raw-bad"), cl, &v2.ReceiveMessageRequest{Group: res("GrpcBadBatch" + itoa(int32(i))), MessageQueue: mq, BatchSize: bs, InvisibleDuration: minute})
		wantCode("receive with batch size "+itoa(bs), stat, err, v2.Code_OK)
		if len(msgs) == 0 || len(msgs) > 32 {
			t.Errorf("receive with batch size %d: %d messages, want 1…32", bs, len(msgs))
		}
	}

	// Absurd durations: negative, beyond what a Duration may hold, nanos
	// of the wrong sign or over a second.
	absurd := map[string]*durationpb.Duration{
		"negative":     {Seconds: -5},
		"huge":         {Seconds: math.MaxInt64},
		"10 000 years": {Seconds: 315576000001},
		"mixed signs":  {Seconds: 60, Nanos: -1},
		"nanos > 1 s":  {Seconds: 60, Nanos: 2_000_000_000},
	}
	for name, d := range absurd {
		stat, msgs, err := receiveWith(withClient("raw-bad"), cl, &v2.ReceiveMessageRequest{Group: res("GrpcBadInvisible"), MessageQueue: mq, InvisibleDuration: d})
		wantCode("receive with invisible duration "+name, stat, err, v2.Code_ILLEGAL_INVISIBLE_TIME)
		if len(msgs) != 0 {
			t.Errorf("receive with invisible duration %s delivered %d messages", name, len(msgs))
		}
		r, err := cl.ChangeInvisibleDuration(withClient("raw-bad"), &v2.ChangeInvisibleDurationRequest{Group: res("G"), Topic: res(topic), ReceiptHandle: "v1 1 2 0 broker-a 0 1 2", InvisibleDuration: d, MessageId: "x"})
		wantCode("change invisible duration "+name, r.GetStatus(), err, v2.Code_ILLEGAL_INVISIBLE_TIME)
	}
	// A long-polling timeout out of range polls as short or as long as
	// allowed (at most 20 s, ending 200 ms before the call's deadline:
	// withClient's 10 s), never forever and never an error.
	errs := make(chan error, len(absurd))
	for name, d := range absurd {
		go func() {
			stat, _, err := receiveWith(withClient("raw-bad"), cl, withLongPolling(&v2.ReceiveMessageRequest{Group: res("GrpcBadPoll"), MessageQueue: &v2.MessageQueue{Topic: res(empty)}, InvisibleDuration: minute}, d))
			if err == nil && stat.GetCode() != v2.Code_MESSAGE_NOT_FOUND {
				err = errors.New(stat.String())
			}
			if err != nil {
				err = errors.New("receive with long-polling timeout " + name + ": " + err.Error())
			}
			errs <- err
		}()
	}
	for range absurd {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}

	// Thousands of forged receipt handles in one ack: each entry refused,
	// nothing acked.
	var entries []*v2.AckMessageEntry
	forged := []string{"", "v1", "v1 x y z", "v1 1 2 0 broker-a 0 1 2", "v1 1 2 9 broker-a 0 1 2", "v1 -1 2 0 broker-a 0 1 2",
		"v1 1 2 0 broker-a 1073741824 1 2", "v1 1 2 0 broker-a 2147483647 1 2", "v1 99999999999999999999 2 0 broker-a 0 1 2",
		"v1 1 2 0 other-broker 0 1 2", "v2 1 2 0 broker-a 0 1 2", strings.Repeat("v1 ", 1000), "v1 1 2 0  0 1 2"}
	for i := range 5000 {
		entries = append(entries, &v2.AckMessageEntry{MessageId: "x", ReceiptHandle: forged[i%len(forged)]})
	}
	ar, err := cl.AckMessage(withClient("raw-bad"), &v2.AckMessageRequest{Group: res("GrpcBadBatch0"), Topic: res(topic), Entries: entries})
	wantCode("ack of 5000 forged handles", ar.GetStatus(), err, v2.Code_INVALID_RECEIPT_HANDLE)
	for i, e := range ar.GetEntries() {
		if e.GetStatus().GetCode() != v2.Code_INVALID_RECEIPT_HANDLE {
			t.Errorf("forged handle %q: %v", entries[i].ReceiptHandle, e.GetStatus())
			break
		}
	}
	if len(ar.GetEntries()) != len(entries) {
		t.Errorf("ack of %d entries answered %d", len(entries), len(ar.GetEntries()))
	}

	// Bytes that are not HTTP/2 (plaintext or TLS): the broker closes the
	// connection.
	for name, b := range map[string][]byte{
		"HTTP/1.1":       []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"bad preface":    []byte("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + strings.Repeat("\x00", 64)),
		"garbage":        []byte("\x00\x01\x02\x03not a protocol at all\xff\xfe"),
		"TLS then junk":  append([]byte{0x16, 0x03, 0x01, 0x00, 0x05}, []byte("junkjunk")...),
		"remoting frame": remotingFrame(),
	} {
		if err := closedAfter(c.grpcAddr, b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Inside TLS, bytes that are not HTTP/2.
	tc, err := tls.Dial("tcp", c.grpcAddr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	_, _ = tc.Write([]byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"))
	_ = tc.SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.Copy(io.Discard, tc); isTimeout(err) {
		t.Errorf("HTTP/1.1 inside TLS: the connection stayed open")
	}
	tc.Close()

	// Still serving, nothing panicked, nothing lost: one consumer group
	// receives all n messages.
	seen := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < n && time.Now().Before(deadline) {
		stat, msgs, err := receiveWith(withClient("raw-bad"), cl, &v2.ReceiveMessageRequest{Group: res("GrpcBadFinal"), MessageQueue: mq, BatchSize: 32, InvisibleDuration: minute})
		if err != nil || (stat.GetCode() != v2.Code_OK && stat.GetCode() != v2.Code_MESSAGE_NOT_FOUND) {
			t.Fatalf("final receive: %v %v", stat, err)
		}
		for _, m := range msgs {
			seen[string(m.GetBody())] = true
		}
	}
	if len(seen) != n {
		t.Errorf("after the bad input %d of %d messages received", len(seen), n)
	}
	if out := c.broker.out.String(); strings.Contains(out, "[PANIC]") || strings.Contains(out, "goroutine ") {
		t.Errorf("the broker panicked:\n%s", out)
	}
}

// receiveWith is one ReceiveMessage under ctx: its status and messages,
// or the stream's error.
func receiveWith(ctx context.Context, cl v2.MessagingServiceClient, req *v2.ReceiveMessageRequest) (*v2.Status, []*v2.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rs, err := cl.ReceiveMessage(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	var stat *v2.Status
	var msgs []*v2.Message
	for {
		r, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return stat, msgs, nil
		}
		if err != nil {
			return stat, msgs, err
		}
		if s := r.GetStatus(); s != nil {
			stat = s
		}
		if m := r.GetMessage(); m != nil {
			msgs = append(msgs, m)
		}
	}
}

// withLongPolling sets long_polling_timeout (field 7), which v5.1.2's
// protocol snapshot lacks, as an unknown field the broker's newer
// protocol reads.
func withLongPolling(req *v2.ReceiveMessageRequest, d *durationpb.Duration) *v2.ReceiveMessageRequest {
	b, _ := proto.Marshal(d)
	f := protowire.AppendTag(nil, 7, protowire.BytesType)
	req.ProtoReflect().SetUnknown(protowire.AppendBytes(f, b))
	return req
}

// rawStream sends b as the first message of a streaming RPC and returns
// the stream's end.
func rawStream(conn *grpc.ClientConn, method string, b []byte) error {
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "x-mq-client-id", "raw-bad"), 10*time.Second)
	defer cancel()
	cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/apache.rocketmq.v2.MessagingService/"+method, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return err
	}
	if err := cs.SendMsg(b); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	_ = cs.CloseSend()
	for {
		var out []byte
		if err := cs.RecvMsg(&out); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// closedAfter writes b on a fresh connection and expects the broker to
// close it (whatever it answers first).
func closedAfter(addr string, b []byte) error {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	if _, err := nc.Write(b); err != nil {
		return nil // already closed
	}
	_ = nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.Copy(io.Discard, nc); isTimeout(err) {
		return errors.New("the connection stayed open")
	}
	return nil
}

// remotingFrame is a RocketMQ remoting request (GET_ROUTEINFO_BY_TOPIC),
// what a 4.x client pointed at the gRPC port by mistake sends.
func remotingFrame() []byte {
	hdr := []byte(`{"code":105,"language":"GO","version":317,"opaque":1,"flag":0,"extFields":{"topic":"T"}}`)
	f := binary.BigEndian.AppendUint32(nil, uint32(4+len(hdr)))
	f = binary.BigEndian.AppendUint32(f, uint32(len(hdr)))
	return append(f, hdr...)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
