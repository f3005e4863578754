package grpcsvc

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mqops/mqops/wire"
)

// recorder is the broker side of these tests: it keeps what reaches it,
// so a test sees that refused input never does. The real broker behind
// the service is tested in e2e/grpc.
type recorder struct {
	mu     sync.Mutex
	sent   []*Message
	ended  []ended
	endErr error // EndTransaction's answer
	panic  bool
}

type ended struct {
	group            string
	halfOffset, phys int64
	commit           bool
}

func (r *recorder) Send(m *Message) SendResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.panic {
		panic("backend bug")
	}
	r.sent = append(r.sent, m)
	return SendResult{Code: wire.Success, QueueOffset: int64(len(r.sent) - 1)}
}

func (r *recorder) Route(topic string) (*wire.TopicRouteData, error) {
	if topic != "T" {
		return nil, nil
	}
	return &wire.TopicRouteData{
		BrokerDatas: []wire.BrokerData{{BrokerName: "b", BrokerAddrs: map[int64]string{0: "127.0.0.1:10911"}}},
		QueueDatas:  []wire.QueueData{{BrokerName: "b", Perm: 6, ReadQueueNums: 2, WriteQueueNums: 2}},
	}, nil
}

func (r *recorder) GrpcAddrs([]string) map[string]string { return nil }

// TopicMessageType: topics named after a type have it (FIFO, DELAY, ...).
func (r *recorder) TopicMessageType(topic string) string {
	switch topic {
	case wire.MessageTypeFIFO, wire.MessageTypeDelay, wire.MessageTypeTransaction, wire.MessageTypeMixed:
		return topic
	}
	return wire.MessageTypeNormal
}

func (r *recorder) EndTransaction(group string, halfOffset, phys int64, commit bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended = append(r.ended, ended{group, halfOffset, phys, commit})
	return r.endErr
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sent)
}

func startService(t *testing.T, mode string) (*Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	s, err := Listen(Config{Addr: "127.0.0.1:0", MaxRecvMsgSize: 1 << 20, TLSMode: mode, SelfSigned: true,
		CertHosts: []string{"127.0.0.1"}, MaxMessageSize: 1024, MaxDelay: time.Hour, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, rec)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve() }()
	t.Cleanup(s.Stop)
	return s, rec
}

func dialService(t *testing.T, s *Server, useTLS bool) v2.MessagingServiceClient {
	t.Helper()
	creds := insecure.NewCredentials()
	if useTLS {
		creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})
	}
	conn, err := grpc.NewClient(s.Addr().String(), grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return v2.NewMessagingServiceClient(conn)
}

func ctxFor(t *testing.T, id string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	if id != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, hdrClientID, id)
	}
	return ctx
}

func normal(topic, body string) *v2.Message {
	return &v2.Message{Topic: &v2.Resource{Name: topic}, Body: []byte(body), SystemProperties: &v2.SystemProperties{
		MessageId: "01AABBCCDDEEFF00000000000000000001", MessageType: v2.MessageType_NORMAL, BornTimestamp: timestamppb.Now(),
	}}
}

// TestTLSAndPlaintextOnOnePort: in permissive mode both dial the same
// port; enforcing refuses plaintext and disabled refuses TLS.
func TestTLSAndPlaintextOnOnePort(t *testing.T) {
	for _, tc := range []struct {
		mode           string
		tlsOK, plainOK bool
	}{{TLSPermissive, true, true}, {TLSEnforcing, true, false}, {TLSDisabled, false, true}} {
		t.Run(tc.mode, func(t *testing.T) {
			s, _ := startService(t, tc.mode)
			for _, useTLS := range []bool{true, false} {
				ctx, cancel := context.WithTimeout(ctxFor(t, "c1"), 2*time.Second)
				r, err := dialService(t, s, useTLS).QueryRoute(ctx, &v2.QueryRouteRequest{Topic: &v2.Resource{Name: "T"}})
				cancel()
				want := tc.plainOK
				if useTLS {
					want = tc.tlsOK
				}
				if ok := err == nil && r.Status.Code == v2.Code_OK; ok != want {
					t.Errorf("tls=%v: err %v, response %v; want success %v", useTLS, err, r, want)
				}
			}
		})
	}
}

func TestQueryRoute(t *testing.T) {
	s, _ := startService(t, TLSPermissive)
	c := dialService(t, s, true)
	r, err := c.QueryRoute(ctxFor(t, "c1"), &v2.QueryRouteRequest{Topic: &v2.Resource{Name: "T"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.MessageQueues) != 2 {
		t.Fatalf("queues %v", r.MessageQueues)
	}
	for i, q := range r.MessageQueues {
		a := q.Broker.Endpoints.Addresses[0]
		// No published address: the broker's host with this port.
		if q.Id != int32(i) || q.Permission != v2.Permission_READ_WRITE || a.Host != "127.0.0.1" || int(a.Port) != s.ownPort() {
			t.Errorf("queue %d: %v", i, q)
		}
	}
	r, _ = c.QueryRoute(ctxFor(t, "c1"), &v2.QueryRouteRequest{Topic: &v2.Resource{Name: "Unknown"}})
	if r.Status.Code != v2.Code_TOPIC_NOT_FOUND {
		t.Errorf("unknown topic: %v", r.Status)
	}
	r, _ = c.QueryRoute(ctxFor(t, ""), &v2.QueryRouteRequest{Topic: &v2.Resource{Name: "T"}})
	if r.Status.Code != v2.Code_CLIENT_ID_REQUIRED {
		t.Errorf("no client id: %v", r.Status)
	}
}

func TestBuildQueuesSplitsPermissionsAndUsesPublishedAddrs(t *testing.T) {
	rd := &wire.TopicRouteData{
		BrokerDatas: []wire.BrokerData{
			{BrokerName: "z", BrokerAddrs: map[int64]string{0: "10.0.0.2:10911", 1: "10.0.0.3:10911"}},
			{BrokerName: "a", BrokerAddrs: map[int64]string{0: "10.0.0.1:10911"}},
			{BrokerName: "slaveonly", BrokerAddrs: map[int64]string{1: "10.0.0.4:10911"}},
		},
		QueueDatas: []wire.QueueData{
			{BrokerName: "z", Perm: 6, ReadQueueNums: 3, WriteQueueNums: 1},
			{BrokerName: "a", Perm: 2, ReadQueueNums: 1, WriteQueueNums: 2},
			{BrokerName: "slaveonly", Perm: 6, ReadQueueNums: 1, WriteQueueNums: 1},
		},
	}
	q, guessed := buildQueues(&v2.Resource{Name: "T"}, rd, map[string]string{"10.0.0.2:10911": "10.0.0.2:9001"}, 8081, acceptTypes(wire.MessageTypeNormal))
	if !guessed {
		t.Error("broker a published no address: its entry is a guess")
	}
	type row struct {
		broker string
		id     int32
		perm   v2.Permission
		addr   string
	}
	want := []row{
		{"a", 0, v2.Permission_WRITE, "10.0.0.1:8081"}, {"a", 1, v2.Permission_WRITE, "10.0.0.1:8081"},
		{"z", 0, v2.Permission_READ, "10.0.0.2:9001"}, {"z", 1, v2.Permission_READ, "10.0.0.2:9001"},
		{"z", 2, v2.Permission_READ_WRITE, "10.0.0.2:9001"},
	}
	if len(q) != len(want) {
		t.Fatalf("queues %v", q)
	}
	for i, w := range want {
		a := q[i].Broker.Endpoints.Addresses[0]
		got := row{q[i].Broker.Name, q[i].Id, q[i].Permission, a.Host + ":" + itoa(a.Port)}
		if got != w {
			t.Errorf("queue %d: %+v, want %+v", i, got, w)
		}
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// TestSendBadInput: each refusal has its code, in the body with gRPC OK,
// and nothing refused reaches the store.
func TestSendBadInput(t *testing.T) {
	s, rec := startService(t, TLSPermissive)
	c := dialService(t, s, false)
	send := func(id string, msgs ...*v2.Message) *v2.SendMessageResponse {
		t.Helper()
		r, err := c.SendMessage(ctxFor(t, id), &v2.SendMessageRequest{Messages: msgs})
		if err != nil {
			t.Fatalf("transport error %v", err)
		}
		return r
	}
	with := func(f func(m *v2.Message)) *v2.Message {
		m := normal("T", "body")
		f(m)
		return m
	}
	tag := func(s string) *string { return &s }
	cases := []struct {
		name string
		id   string
		msgs []*v2.Message
		want v2.Code
	}{
		{"no client id", "", []*v2.Message{normal("T", "x")}, v2.Code_CLIENT_ID_REQUIRED},
		{"no messages", "c", nil, v2.Code_MESSAGE_CORRUPTED},
		{"mixed topics", "c", []*v2.Message{normal("T", "x"), normal("U", "y")}, v2.Code_MESSAGE_CORRUPTED},
		{"bad topic name", "c", []*v2.Message{normal("a b", "x")}, v2.Code_ILLEGAL_TOPIC},
		{"empty body", "c", []*v2.Message{normal("T", "")}, v2.Code_MESSAGE_BODY_EMPTY},
		{"oversize body", "c", []*v2.Message{normal("T", strings.Repeat("x", 1025))}, v2.Code_MESSAGE_BODY_TOO_LARGE},
		{"no system properties", "c", []*v2.Message{with(func(m *v2.Message) { m.SystemProperties = nil })}, v2.Code_BAD_REQUEST},
		{"blank message id", "c", []*v2.Message{with(func(m *v2.Message) { m.SystemProperties.MessageId = " " })}, v2.Code_ILLEGAL_MESSAGE_ID},
		{"tag with |", "c", []*v2.Message{with(func(m *v2.Message) { m.SystemProperties.Tag = tag("a|b") })}, v2.Code_ILLEGAL_MESSAGE_TAG},
		{"blank tag", "c", []*v2.Message{with(func(m *v2.Message) { m.SystemProperties.Tag = tag(" ") })}, v2.Code_ILLEGAL_MESSAGE_TAG},
		{"key with control", "c", []*v2.Message{with(func(m *v2.Message) { m.SystemProperties.Keys = []string{"a\x02"} })}, v2.Code_ILLEGAL_MESSAGE_KEY},
		{"reserved property", "c", []*v2.Message{with(func(m *v2.Message) { m.UserProperties = map[string]string{"TAGS": "x"} })}, v2.Code_ILLEGAL_MESSAGE_PROPERTY_KEY},
		{"separator in value", "c", []*v2.Message{with(func(m *v2.Message) { m.UserProperties = map[string]string{"k": "a\x01b"} })}, v2.Code_BAD_REQUEST},
		{"too many properties", "c", []*v2.Message{with(func(m *v2.Message) {
			m.UserProperties = map[string]string{}
			for i := range 129 {
				m.UserProperties["k"+strconv.Itoa(i)] = "v"
			}
		})}, v2.Code_MESSAGE_PROPERTIES_TOO_LARGE},
		{"properties too large", "c", []*v2.Message{with(func(m *v2.Message) { m.UserProperties = map[string]string{"k": strings.Repeat("v", 16<<10)} })}, v2.Code_MESSAGE_PROPERTIES_TOO_LARGE},
		{"FIFO to a NORMAL topic", "c", []*v2.Message{with(func(m *v2.Message) {
			m.SystemProperties.MessageType = v2.MessageType_FIFO
			m.SystemProperties.MessageGroup = tag("g")
		})}, v2.Code_MESSAGE_PROPERTY_CONFLICT_WITH_TYPE},
		{"DELAY without a time", "c", []*v2.Message{with(func(m *v2.Message) {
			m.Topic.Name = "DELAY"
			m.SystemProperties.MessageType = v2.MessageType_DELAY
		})}, v2.Code_MESSAGE_PROPERTY_CONFLICT_WITH_TYPE},
		{"TRANSACTION to a NORMAL topic", "c", []*v2.Message{with(func(m *v2.Message) { m.SystemProperties.MessageType = v2.MessageType_TRANSACTION })}, v2.Code_MESSAGE_PROPERTY_CONFLICT_WITH_TYPE},
		{"NORMAL to a FIFO topic", "c", []*v2.Message{with(func(m *v2.Message) { m.Topic.Name = "FIFO" })}, v2.Code_MESSAGE_PROPERTY_CONFLICT_WITH_TYPE},
		{"blank message group", "c", []*v2.Message{with(func(m *v2.Message) {
			m.Topic.Name = "FIFO"
			m.SystemProperties.MessageType = v2.MessageType_FIFO
			m.SystemProperties.MessageGroup = tag(" ")
		})}, v2.Code_ILLEGAL_MESSAGE_GROUP},
		{"long message group", "c", []*v2.Message{with(func(m *v2.Message) {
			m.Topic.Name = "MIXED"
			m.SystemProperties.MessageType = v2.MessageType_FIFO
			m.SystemProperties.MessageGroup = tag(strings.Repeat("g", 65))
		})}, v2.Code_ILLEGAL_MESSAGE_GROUP},
		{"delivery beyond the max delay", "c", []*v2.Message{with(func(m *v2.Message) {
			m.Topic.Name = "DELAY"
			m.SystemProperties.MessageType = v2.MessageType_DELAY
			m.SystemProperties.DeliveryTimestamp = timestamppb.New(time.Now().Add(61 * time.Minute))
		})}, v2.Code_ILLEGAL_DELIVERY_TIME},
		{"unspecified type", "c", []*v2.Message{with(func(m *v2.Message) { m.SystemProperties.MessageType = v2.MessageType_MESSAGE_TYPE_UNSPECIFIED })}, v2.Code_MESSAGE_PROPERTY_CONFLICT_WITH_TYPE},
		{"NORMAL with a group", "c", []*v2.Message{with(func(m *v2.Message) { m.SystemProperties.MessageGroup = tag("g") })}, v2.Code_MESSAGE_PROPERTY_CONFLICT_WITH_TYPE},
		{"unknown encoding", "c", []*v2.Message{with(func(m *v2.Message) { m.SystemProperties.BodyEncoding = 7 })}, v2.Code_BAD_REQUEST},
	}
	for _, tc := range cases {
		if got := send(tc.id, tc.msgs...).Status; got.Code != tc.want {
			t.Errorf("%s: %v %q, want %v", tc.name, got.Code, got.Message, tc.want)
		}
	}
	if n := rec.count(); n != 0 {
		t.Fatalf("%d refused messages reached the store", n)
	}
	// One good and one bad: MULTIPLE_RESULTS; only the good one is stored.
	r := send("c", normal("T", "good"), normal("T", ""))
	if r.Status.Code != v2.Code_MULTIPLE_RESULTS || r.Entries[0].Status.Code != v2.Code_OK || r.Entries[1].Status.Code != v2.Code_MESSAGE_BODY_EMPTY {
		t.Errorf("mixed: %v", r)
	}
	if rec.count() != 1 {
		t.Errorf("%d stored, want 1", rec.count())
	}
}

// TestSendMapsProperties: the stored form carries tag, keys, user
// properties, the message id and the topic as producer group.
func TestSendMapsProperties(t *testing.T) {
	s, rec := startService(t, TLSPermissive)
	m := normal("T", "hello")
	tag := "TagA"
	m.SystemProperties.Tag = &tag
	m.SystemProperties.Keys = []string{"k1", "k2"}
	m.SystemProperties.BodyEncoding = v2.Encoding_GZIP
	m.UserProperties = map[string]string{"color": "blue"}
	r, err := dialService(t, s, true).SendMessage(ctxFor(t, "c"), &v2.SendMessageRequest{Messages: []*v2.Message{m}})
	if err != nil || r.Status.Code != v2.Code_OK || r.Entries[0].MessageId != m.SystemProperties.MessageId {
		t.Fatalf("send: %v %v", r, err)
	}
	got := rec.sent[0]
	props := wire.ParseProperties(got.Properties)
	want := map[string]string{"TAGS": "TagA", "KEYS": "k1 k2", "color": "blue", "UNIQ_KEY": m.SystemProperties.MessageId, "PGROUP": "T", "__BORNHOST": "127.0.0.1"}
	for k, v := range want {
		if props[k] != v {
			t.Errorf("property %s = %q, want %q (all: %v)", k, props[k], v, props)
		}
	}
	if got.Topic != "T" || string(got.Body) != "hello" || got.SysFlag&sysFlagCompressed == 0 || got.BornTimestamp != m.SystemProperties.BornTimestamp.AsTime().UnixMilli() {
		t.Errorf("stored %+v", got)
	}
}

// TestPanicIsAnError: a bug behind a handler answers INTERNAL; the
// service keeps serving.
func TestPanicIsAnError(t *testing.T) {
	s, rec := startService(t, TLSPermissive)
	c := dialService(t, s, false)
	rec.mu.Lock()
	rec.panic = true
	rec.mu.Unlock()
	_, err := c.SendMessage(ctxFor(t, "c"), &v2.SendMessageRequest{Messages: []*v2.Message{normal("T", "x")}})
	if status.Code(err) != codes.Internal {
		t.Fatalf("panic: %v, want Internal", err)
	}
	rec.mu.Lock()
	rec.panic = false
	rec.mu.Unlock()
	r, err := c.SendMessage(ctxFor(t, "c"), &v2.SendMessageRequest{Messages: []*v2.Message{normal("T", "x")}})
	if err != nil || r.Status.Code != v2.Code_OK {
		t.Fatalf("after the panic: %v %v", r, err)
	}
}

// TestTelemetrySettingsAndHeartbeat: Settings get a complete reply (the
// Node.js client needs the exponential backoff, Go a non-zero body
// size); heartbeats need Settings first; termination forgets them.
func TestTelemetrySettingsAndHeartbeat(t *testing.T) {
	s, _ := startService(t, TLSPermissive)
	c := dialService(t, s, true)
	hb, err := c.Heartbeat(ctxFor(t, "c1"), &v2.HeartbeatRequest{ClientType: v2.ClientType_PRODUCER})
	if err != nil || hb.Status.Code != v2.Code_UNRECOGNIZED_CLIENT_TYPE {
		t.Fatalf("heartbeat before Settings: %v %v", hb, err)
	}
	stream, err := c.Telemetry(ctxFor(t, "c1"))
	if err != nil {
		t.Fatal(err)
	}
	pt := v2.ClientType_PRODUCER
	in := &v2.Settings{ClientType: &pt, PubSub: &v2.Settings_Publishing{Publishing: &v2.Publishing{Topics: []*v2.Resource{{Name: "T"}}}}}
	if err := stream.Send(&v2.TelemetryCommand{Command: &v2.TelemetryCommand_Settings{Settings: in}}); err != nil {
		t.Fatal(err)
	}
	reply, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	out := reply.GetSettings()
	exp := out.GetBackoffPolicy().GetExponentialBackoff()
	if reply.Status.Code != v2.Code_OK || out.GetPublishing().GetMaxBodySize() != 1024 || exp == nil || exp.Multiplier != 2 ||
		exp.Max.AsDuration() != time.Second || out.GetBackoffPolicy().MaxAttempts != 3 || !proto.Equal(out.GetPublishing().Topics[0], in.GetPublishing().Topics[0]) {
		t.Errorf("settings reply %v", reply)
	}
	hb, _ = c.Heartbeat(ctxFor(t, "c1"), &v2.HeartbeatRequest{ClientType: v2.ClientType_PRODUCER})
	if hb.Status.Code != v2.Code_OK {
		t.Errorf("heartbeat after Settings: %v", hb.Status)
	}
	// A consumer's Settings get the subscription defaults.
	st2, _ := c.Telemetry(ctxFor(t, "c2"))
	ct := v2.ClientType_SIMPLE_CONSUMER
	_ = st2.Send(&v2.TelemetryCommand{Command: &v2.TelemetryCommand_Settings{Settings: &v2.Settings{ClientType: &ct,
		PubSub: &v2.Settings_Subscription{Subscription: &v2.Subscription{Group: &v2.Resource{Name: "G"}}}}}})
	r2, err := st2.Recv()
	if err != nil || r2.GetSettings().GetSubscription().GetReceiveBatchSize() != 32 || r2.GetSettings().GetSubscription().GetLongPollingTimeout().AsDuration() != 20*time.Second ||
		r2.GetSettings().GetBackoffPolicy().GetExponentialBackoff() == nil {
		t.Errorf("consumer settings reply %v %v", r2, err)
	}
	// Neither publishing nor subscription: INVALID_ARGUMENT on the stream.
	st3, _ := c.Telemetry(ctxFor(t, "c3"))
	_ = st3.Send(&v2.TelemetryCommand{Command: &v2.TelemetryCommand_Settings{Settings: &v2.Settings{ClientType: &pt}}})
	if _, err := st3.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("empty settings: %v", err)
	}
	// No client id on the stream.
	st4, _ := c.Telemetry(ctxFor(t, ""))
	if _, err := st4.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("stream without client id: %v", err)
	}
	nt, _ := c.NotifyClientTermination(ctxFor(t, "c1"), &v2.NotifyClientTerminationRequest{})
	if nt.Status.Code != v2.Code_OK {
		t.Errorf("termination: %v", nt.Status)
	}
	nt, _ = c.NotifyClientTermination(ctxFor(t, "c1"), &v2.NotifyClientTerminationRequest{})
	if nt.Status.Code != v2.Code_UNRECOGNIZED_CLIENT_TYPE {
		t.Errorf("second termination: %v", nt.Status)
	}
}

// TestConsumerRPCsSayNotImplemented: a Backend without POP (PopBackend)
// answers NOT_IMPLEMENTED, no silent stubs.
func TestConsumerRPCsSayNotImplemented(t *testing.T) {
	s, _ := startService(t, TLSPermissive)
	c := dialService(t, s, false)
	rs, err := c.ReceiveMessage(ctxFor(t, "c"), &v2.ReceiveMessageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := rs.Recv()
	if err != nil || first.GetStatus().GetCode() != v2.Code_NOT_IMPLEMENTED {
		t.Errorf("receive: %v %v", first, err)
	}
	// Java's layout: the status, then a delivery timestamp, then the end.
	if ts, err := rs.Recv(); err != nil || ts.GetDeliveryTimestamp() == nil {
		t.Errorf("receive: %v %v, want the delivery timestamp", ts, err)
	}
	if _, err := rs.Recv(); err != io.EOF {
		t.Errorf("receive stream not ended: %v", err)
	}
	ack, _ := c.AckMessage(ctxFor(t, "c"), &v2.AckMessageRequest{})
	ch, _ := c.ChangeInvisibleDuration(ctxFor(t, "c"), &v2.ChangeInvisibleDurationRequest{})
	fw, _ := c.ForwardMessageToDeadLetterQueue(ctxFor(t, "c"), &v2.ForwardMessageToDeadLetterQueueRequest{})
	for name, st := range map[string]*v2.Status{"Ack": ack.GetStatus(), "ChangeInvisibleDuration": ch.GetStatus(),
		"ForwardMessageToDeadLetterQueue": fw.GetStatus()} {
		if st.GetCode() != v2.Code_NOT_IMPLEMENTED {
			t.Errorf("%s: %v", name, st)
		}
	}
	// As Java's proxy: gRPC UNIMPLEMENTED.
	ps, err := c.PullMessage(ctxFor(t, "c"), &v2.PullMessageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ps.Recv(); status.Code(err) != codes.Unimplemented {
		t.Errorf("pull: %v, want Unimplemented", err)
	}
}

func TestClientExpiry(t *testing.T) {
	ct := newClientTable()
	pt := v2.ClientType_PRODUCER
	ct.put("idle", &v2.Settings{ClientType: &pt}, "", "", "")
	ct.put("streaming", &v2.Settings{ClientType: &pt}, "", "", "")
	ct.streamOpened("streaming")
	if gone := ct.expire(time.Now().Add(-time.Minute)); len(gone) != 0 {
		t.Fatalf("expired too early: %v", gone)
	}
	// Go v5.1.2 never says goodbye: a client without a stream or a
	// heartbeat goes; one with an open stream stays.
	if gone := ct.expire(time.Now().Add(time.Minute)); len(gone) != 1 || gone[0] != "idle" {
		t.Fatalf("expired %v, want [idle]", gone)
	}
	if ct.touch("idle") || !ct.touch("streaming") {
		t.Fatal("heartbeat after expiry")
	}
}

// TestClientListing: a group's consumers are the clients whose Settings
// subscribe it, with the stream's address, language and version; the
// counts tell producers, consumers and open streams apart.
func TestClientListing(t *testing.T) {
	ct := newClientTable()
	pt, st := v2.ClientType_PRODUCER, v2.ClientType_SIMPLE_CONSUMER
	sub := func(g string) *v2.Settings {
		return &v2.Settings{ClientType: &st, PubSub: &v2.Settings_Subscription{Subscription: &v2.Subscription{
			Group: &v2.Resource{Name: g}, Subscriptions: []*v2.SubscriptionEntry{{Topic: &v2.Resource{Name: "T"}}}}}}
	}
	ct.put("p", &v2.Settings{ClientType: &pt, PubSub: &v2.Settings_Publishing{Publishing: &v2.Publishing{}}}, "10.0.0.1:1", "GO", "5.0.1-rc1")
	ct.put("c2", sub("G"), "10.0.0.3:3", "NODE_JS", "1.0.8")
	ct.put("c1", sub("G"), "10.0.0.2:2", "GO", "5.0.1-rc1")
	ct.put("other", sub("H"), "10.0.0.4:4", "JAVA", "5.0.7")
	ct.streamOpened("c1")
	ct.streamOpened("c2")
	ct.streamOpened("nosettings")
	got := ct.consumers("G")
	if len(got) != 2 || got[0].ClientID != "c1" || got[0].Addr != "10.0.0.2:2" || got[0].Language != "GO" || got[0].Version != "5.0.1-rc1" ||
		got[0].Type != st || got[0].Subscriptions[0].GetTopic().GetName() != "T" || got[1].ClientID != "c2" || got[1].Language != "NODE_JS" {
		t.Fatalf("consumers of G: %+v", got)
	}
	if got := ct.consumers("P"); len(got) != 0 {
		t.Fatalf("consumers of a group nobody subscribes: %+v", got)
	}
	if n := ct.counts(); n != (ClientCounts{Clients: 4, Producers: 1, Consumers: 3, Streams: 3}) {
		t.Fatalf("counts %+v", n)
	}
}

func TestNamespace(t *testing.T) {
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(hdrNamespace, "prod"))
	if got := withNamespace(ctx, &v2.Resource{Name: "T"}); got != "prod%T" {
		t.Errorf("header namespace: %q", got)
	}
	if got := withNamespace(ctx, &v2.Resource{Name: "T", ResourceNamespace: "dev"}); got != "dev%T" {
		t.Errorf("resource namespace: %q", got)
	}
	if got := withNamespace(context.Background(), &v2.Resource{Name: "T"}); got != "T" {
		t.Errorf("no namespace: %q", got)
	}
}
