package grpc

import (
	"context"
	"crypto/tls"
	"strconv"
	"strings"
	"testing"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// dial opens a raw client on the broker's gRPC port, over TLS (the
// self-signed certificate is not verified, as the official clients do
// not) or plaintext: both work on the same port.
func dial(t *testing.T, addr string, useTLS bool) (v2.MessagingServiceClient, *grpc.ClientConn) {
	t.Helper()
	creds := insecure.NewCredentials()
	if useTLS {
		creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})
	}
	conn, err := grpc.Dial(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return v2.NewMessagingServiceClient(conn), conn
}

func withClient(id string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_ = cancel // ends with the test process; each call is short
	if id == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "x-mq-client-id", id, "x-mq-language", "GO", "x-mq-client-version", "raw-test")
}

var msgSeq int

func msg(topic, body string) *v2.Message {
	msgSeq++
	return &v2.Message{
		Topic: &v2.Resource{Name: topic},
		Body:  []byte(body),
		SystemProperties: &v2.SystemProperties{
			MessageId:     "01RAW" + strings.Repeat("0", 25) + string(rune('A'+msgSeq%26)) + string(rune('A'+msgSeq/26%26)) + "00",
			MessageType:   v2.MessageType_NORMAL,
			BodyEncoding:  v2.Encoding_IDENTITY,
			BornTimestamp: timestamppb.Now(),
		},
	}
}

// TestCodes checks each refusal's code through a raw client built from
// the client module's own protocol, and that refused messages are not
// stored: the good sends around them get consecutive queue offsets.
func TestCodes(t *testing.T) {
	// SYNC_FLUSH: every good send waits for its fsync.
	c := startCluster(t, "maxMessageSize=1024", "grpcMaxInboundMessageSize=65536", "flushDiskType=SYNC_FLUSH")
	const topic = "GrpcCodes"
	createTopic(t, c, topic, 1)
	tlsClient, _ := dial(t, c.grpcAddr, true)
	plainClient, _ := dial(t, c.grpcAddr, false)

	sendCode := func(cl v2.MessagingServiceClient, id string, msgs ...*v2.Message) *v2.SendMessageResponse {
		t.Helper()
		r, err := cl.SendMessage(withClient(id), &v2.SendMessageRequest{Messages: msgs})
		if err != nil {
			t.Fatalf("send: transport error %v (errors belong in the body)", err)
		}
		return r
	}
	wantCode := func(what string, got *v2.Status, want v2.Code) {
		t.Helper()
		if got.GetCode() != want {
			t.Errorf("%s: %v %q, want %v", what, got.GetCode(), got.GetMessage(), want)
		}
	}

	// Headers.
	r, err := plainClient.QueryRoute(withClient(""), &v2.QueryRouteRequest{Topic: &v2.Resource{Name: topic}})
	if err != nil {
		t.Fatalf("plaintext query route: %v", err)
	}
	wantCode("no client id", r.Status, v2.Code_CLIENT_ID_REQUIRED)
	wantCode("send without client id", sendCode(tlsClient, "", msg(topic, "x")).Status, v2.Code_CLIENT_ID_REQUIRED)

	// Route.
	r, err = tlsClient.QueryRoute(withClient("raw-1"), &v2.QueryRouteRequest{Topic: &v2.Resource{Name: "NoSuchTopic"}})
	if err != nil {
		t.Fatal(err)
	}
	wantCode("unknown topic", r.Status, v2.Code_TOPIC_NOT_FOUND)
	r, err = tlsClient.QueryRoute(withClient("raw-1"), &v2.QueryRouteRequest{Topic: &v2.Resource{Name: topic}})
	if err != nil {
		t.Fatal(err)
	}
	wantCode("route", r.Status, v2.Code_OK)
	if len(r.MessageQueues) != 1 {
		t.Fatalf("route: %v", r.MessageQueues)
	}
	q := r.MessageQueues[0]
	if a := q.Broker.Endpoints.Addresses[0]; q.Permission != v2.Permission_READ_WRITE || q.Broker.Name != "broker-a" ||
		c.grpcAddr != a.Host+":"+itoa(a.Port) || q.Broker.Endpoints.Scheme != v2.AddressScheme_IPv4 {
		t.Errorf("route entry %v, want broker-a at %s read-write", q, c.grpcAddr)
	}

	// Sends: refused ones take no offset.
	good := func(body string, wantOffset int64) {
		t.Helper()
		r := sendCode(tlsClient, "raw-1", msg(topic, body))
		wantCode("good send "+body, r.Status, v2.Code_OK)
		if len(r.Entries) != 1 || r.Entries[0].Offset != wantOffset {
			t.Errorf("good send %s: entries %v, want offset %d", body, r.Entries, wantOffset)
		}
	}
	good("first", 0)
	wantCode("no messages", sendCode(tlsClient, "raw-1").Status, v2.Code_MESSAGE_CORRUPTED)
	wantCode("mixed topics", sendCode(tlsClient, "raw-1", msg(topic, "a"), msg("Other", "b")).Status, v2.Code_MESSAGE_CORRUPTED)
	wantCode("empty body", sendCode(tlsClient, "raw-1", msg(topic, "")).Status, codeMessageBodyEmpty)
	wantCode("body over maxMessageSize", sendCode(tlsClient, "raw-1", msg(topic, strings.Repeat("x", 1025))).Status, v2.Code_MESSAGE_BODY_TOO_LARGE)
	m := msg(topic, "reserved")
	m.UserProperties = map[string]string{"UNIQ_KEY": "mine"}
	wantCode("reserved property", sendCode(tlsClient, "raw-1", m).Status, v2.Code_ILLEGAL_MESSAGE_PROPERTY_KEY)
	m = msg(topic, "separator")
	m.UserProperties = map[string]string{"k": "a\x01b"}
	wantCode("property value with a separator", sendCode(tlsClient, "raw-1", m).Status, v2.Code_BAD_REQUEST)
	m = msg(topic, "tag")
	tag := "a|b"
	m.SystemProperties.Tag = &tag
	wantCode("tag with |", sendCode(tlsClient, "raw-1", m).Status, v2.Code_ILLEGAL_MESSAGE_TAG)
	m = msg(topic, "noid")
	m.SystemProperties.MessageId = ""
	wantCode("no message id", sendCode(tlsClient, "raw-1", m).Status, v2.Code_ILLEGAL_MESSAGE_ID)
	m = msg(topic, "fifo")
	m.SystemProperties.MessageType = v2.MessageType_FIFO
	group := "g1"
	m.SystemProperties.MessageGroup = &group
	wantCode("FIFO to a NORMAL topic", sendCode(tlsClient, "raw-1", m).Status, v2.Code_MESSAGE_PROPERTY_CONFLICT_WITH_TYPE)
	m = msg(topic, "nosys")
	m.SystemProperties = nil
	wantCode("no system properties", sendCode(tlsClient, "raw-1", m).Status, v2.Code_BAD_REQUEST)
	wantCode("unknown topic", sendCode(tlsClient, "raw-1", msg("NoSuchTopic", "x")).Status, v2.Code_TOPIC_NOT_FOUND)
	good("second", 1)
	// One good, one bad: MULTIPLE_RESULTS, each entry its own code.
	mr := sendCode(tlsClient, "raw-1", msg(topic, "third"), msg(topic, ""))
	wantCode("mixed results", mr.Status, v2.Code_MULTIPLE_RESULTS)
	if len(mr.Entries) != 2 || mr.Entries[0].Status.Code != v2.Code_OK || mr.Entries[0].Offset != 2 || mr.Entries[1].Status.Code != codeMessageBodyEmpty {
		t.Errorf("mixed results entries %v", mr.Entries)
	}
	good("fourth", 3)

	// Clients: heartbeat needs Settings first.
	hb, err := tlsClient.Heartbeat(withClient("raw-2"), &v2.HeartbeatRequest{ClientType: v2.ClientType_PRODUCER})
	if err != nil {
		t.Fatal(err)
	}
	wantCode("heartbeat before Settings", hb.Status, v2.Code_UNRECOGNIZED_CLIENT_TYPE)
	tel, err := tlsClient.Telemetry(withClient("raw-2"))
	if err != nil {
		t.Fatal(err)
	}
	pt := v2.ClientType_PRODUCER
	if err := tel.Send(&v2.TelemetryCommand{Command: &v2.TelemetryCommand_Settings{Settings: &v2.Settings{
		ClientType: &pt, PubSub: &v2.Settings_Publishing{Publishing: &v2.Publishing{Topics: []*v2.Resource{{Name: topic}}}},
	}}}); err != nil {
		t.Fatal(err)
	}
	reply, err := tel.Recv()
	if err != nil {
		t.Fatalf("telemetry reply: %v", err)
	}
	wantCode("settings reply", reply.Status, v2.Code_OK)
	s := reply.GetSettings()
	if s.GetPublishing().GetMaxBodySize() != 1024 || !s.GetPublishing().GetValidateMessageType() ||
		s.GetBackoffPolicy().GetMaxAttempts() != 3 || s.GetBackoffPolicy().GetExponentialBackoff().GetMultiplier() != 2 ||
		s.GetBackoffPolicy().GetExponentialBackoff().GetInitial().AsDuration() != 10*time.Millisecond ||
		len(s.GetPublishing().GetTopics()) != 1 {
		t.Errorf("settings reply %v", s)
	}
	hb, err = tlsClient.Heartbeat(withClient("raw-2"), &v2.HeartbeatRequest{ClientType: v2.ClientType_PRODUCER})
	if err != nil {
		t.Fatal(err)
	}
	wantCode("heartbeat after Settings", hb.Status, v2.Code_OK)
	nt, err := tlsClient.NotifyClientTermination(withClient("raw-2"), &v2.NotifyClientTerminationRequest{})
	if err != nil {
		t.Fatal(err)
	}
	wantCode("termination", nt.Status, v2.Code_OK)
	hb, _ = tlsClient.Heartbeat(withClient("raw-2"), &v2.HeartbeatRequest{ClientType: v2.ClientType_PRODUCER})
	wantCode("heartbeat after termination", hb.Status, v2.Code_UNRECOGNIZED_CLIENT_TYPE)

	// Settings with neither publishing nor subscription: a real gRPC
	// status on the stream, as in Java.
	tel2, err := tlsClient.Telemetry(withClient("raw-3"))
	if err != nil {
		t.Fatal(err)
	}
	_ = tel2.Send(&v2.TelemetryCommand{Command: &v2.TelemetryCommand_Settings{Settings: &v2.Settings{ClientType: &pt}}})
	if _, err := tel2.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("empty settings: %v, want InvalidArgument", err)
	}

	// Consumer bad input (more in consumer_test.go): a receive without an
	// invisible duration, an ack without entries.
	rs, err := tlsClient.ReceiveMessage(withClient("raw-1"), &v2.ReceiveMessageRequest{Group: &v2.Resource{Name: "G"}, MessageQueue: q})
	if err != nil {
		t.Fatal(err)
	}
	first, err := rs.Recv()
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	wantCode("receive", first.GetStatus(), v2.Code_ILLEGAL_INVISIBLE_TIME)
	ack, err := tlsClient.AckMessage(withClient("raw-1"), &v2.AckMessageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	wantCode("ack", ack.Status, v2.Code_BAD_REQUEST)

	// Malformed protobuf, an unknown method and an oversize request:
	// gRPC errors, and the broker keeps serving.
	_, conn := dial(t, c.grpcAddr, true)
	var out []byte
	err = conn.Invoke(withClient("raw-1"), "/apache.rocketmq.v2.MessagingService/SendMessage", []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, &out, grpc.ForceCodec(rawCodec{}))
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "unmarshal") {
		t.Errorf("malformed protobuf: %v, want Internal (unmarshalling)", err)
	}
	err = conn.Invoke(withClient("raw-1"), "/apache.rocketmq.v2.MessagingService/PullMessage", []byte{}, &out, grpc.ForceCodec(rawCodec{}))
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("PullMessage: %v, want Unimplemented", err)
	}
	err = conn.Invoke(withClient("raw-1"), "/apache.rocketmq.v2.MessagingService/SendMessage", make([]byte, 70000), &out, grpc.ForceCodec(rawCodec{}))
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("request over grpcMaxInboundMessageSize: %v, want ResourceExhausted", err)
	}
	good("fifth", 4)
}

// rawCodec sends bytes as they are.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error)      { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error { *(v.(*[]byte)) = data; return nil }
func (rawCodec) Name() string                       { return "proto" }

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// codeMessageBodyEmpty is MESSAGE_BODY_EMPTY, which v5.1.2's protocol
// snapshot lacks (apache/rocketmq-apis definition.proto has it).
const codeMessageBodyEmpty = v2.Code(41302)
