package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mqops/mqops/mqadmin/admin"
)

// popClient is a RocketMQ 5 SimpleConsumer speaking the gRPC protocol as
// the Go v5 client does (TLS, its headers, Settings on a Telemetry
// stream, ReceiveMessage, AckMessage). The official client is a module of
// its own (e2e/grpc); this package links the protocol types only.
type popClient struct {
	cl     v2.MessagingServiceClient
	ctx    context.Context
	group  *v2.Resource
	topic  *v2.Resource
	stream v2.MessagingService_TelemetryClient
}

func newPopClient(t *testing.T, grpcAddr, clientID, group, topic string) *popClient {
	t.Helper()
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ctx = metadata.AppendToOutgoingContext(ctx, "x-mq-client-id", clientID, "x-mq-language", "GO", "x-mq-client-version", "5.0.1-rc1", "x-mq-protocol", "v2")
	c := &popClient{cl: v2.NewMessagingServiceClient(conn), ctx: ctx, group: &v2.Resource{Name: group}, topic: &v2.Resource{Name: topic}}
	if c.stream, err = c.cl.Telemetry(ctx); err != nil {
		t.Fatal(err)
	}
	ct := v2.ClientType_SIMPLE_CONSUMER
	err = c.stream.Send(&v2.TelemetryCommand{Command: &v2.TelemetryCommand_Settings{Settings: &v2.Settings{
		ClientType: &ct, RequestTimeout: durationpb.New(3 * time.Second),
		PubSub: &v2.Settings_Subscription{Subscription: &v2.Subscription{Group: c.group, Subscriptions: []*v2.SubscriptionEntry{
			{Topic: c.topic, Expression: &v2.FilterExpression{Type: v2.FilterType_TAG, Expression: "*"}},
		}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	reply, err := c.stream.Recv()
	if err != nil || reply.GetStatus().GetCode() != v2.Code_OK || reply.GetSettings() == nil {
		t.Fatalf("settings reply %v: %v", reply, err)
	}
	return c
}

// receive takes up to batch messages with the given invisible duration.
func (c *popClient) receive(t *testing.T, batch int32, invisible time.Duration) []*v2.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	rs, err := c.cl.ReceiveMessage(ctx, &v2.ReceiveMessageRequest{
		Group: c.group, MessageQueue: &v2.MessageQueue{Topic: c.topic, Id: -1},
		FilterExpression: &v2.FilterExpression{Type: v2.FilterType_TAG, Expression: "*"},
		BatchSize:        batch, InvisibleDuration: durationpb.New(invisible), LongPollingTimeout: durationpb.New(time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []*v2.Message
	for {
		r, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if s := r.GetStatus(); s != nil && s.GetCode() != v2.Code_OK && s.GetCode() != v2.Code_MESSAGE_NOT_FOUND {
			t.Fatalf("receive: %v", s)
		}
		if m := r.GetMessage(); m != nil {
			out = append(out, m)
		}
	}
}

// receiveN receives until it holds n messages.
func (c *popClient) receiveN(t *testing.T, n int, invisible time.Duration) []*v2.Message {
	t.Helper()
	var got []*v2.Message
	waitFor(t, 30*time.Second, "messages to receive", func() bool {
		got = append(got, c.receive(t, int32(n-len(got)), invisible)...)
		return len(got) >= n
	})
	if len(got) != n {
		t.Fatalf("received %d messages, want %d", len(got), n)
	}
	return got
}

func (c *popClient) ack(t *testing.T, ms []*v2.Message) {
	t.Helper()
	var entries []*v2.AckMessageEntry
	for _, m := range ms {
		entries = append(entries, &v2.AckMessageEntry{MessageId: m.GetSystemProperties().GetMessageId(), ReceiptHandle: m.GetSystemProperties().GetReceiptHandle()})
	}
	r, err := c.cl.AckMessage(c.ctx, &v2.AckMessageRequest{Group: c.group, Topic: c.topic, Entries: entries})
	if err != nil || r.GetStatus().GetCode() != v2.Code_OK {
		t.Fatalf("ack %d: %v %v", len(ms), r.GetStatus(), err)
	}
}

// TestZabbixPop: a RocketMQ 5 consumer holds leases, acknowledges some
// and lets others expire; a real zabbix_agentd reports the broker's gRPC
// service (port, clients, Telemetry streams) and the group's POP leases in
// flight and expired, with the values the consumer caused.
func TestZabbixPop(t *testing.T) {
	agentd := agentBinary(t, "zabbix_agentd")
	// Leases of 1 s: the expiring ones need not make the test wait long.
	c := startCluster(t, "enableProxy=true", "minInvisibleTimeMillsForRecv=1000")
	ns, broker := c.ns.addr, c.broker.addr
	const topic, group = "ZbxPopOrders", "ZbxPopConsumer"
	createTopic(t, c, topic, 2)
	adm, err := admin.New(ns, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	rt, err := adm.RuntimeInfo(broker)
	if err != nil {
		t.Fatal(err)
	}
	grpcAddr := rt["grpcAddr"]
	if grpcAddr == "" {
		t.Fatalf("no grpcAddr in the runtime info of a broker with enableProxy: %v", rt)
	}
	a := startAgent(t, agentd)
	q := func(key string, args ...string) string { return key + "[" + strings.Join(args, ",") + "]" }
	type brokerDoc struct {
		GrpcEnabled, GrpcUp                                    int
		GrpcClients, GrpcConsumers, GrpcProducers, GrpcStreams int64
		PopInflight, PopExpired                                int64
		GrpcAddr                                               string
	}
	type groupDoc struct {
		Clients                                 int
		PopInflight, PopInflightMax, PopExpired int64
	}
	brokerGet := func() brokerDoc {
		var d brokerDoc
		a.get(t, q("rocketmq.broker.get", broker, ns), &d)
		return d
	}
	backlogGet := func() groupDoc {
		var bl struct{ Groups map[string]groupDoc }
		a.get(t, q("rocketmq.backlog.get", ns, "DefaultCluster"), &bl)
		return bl.Groups[group]
	}

	// Before any 5.x client: the service is on, its port answers, nothing
	// is leased.
	if d := brokerGet(); d.GrpcEnabled != 1 || d.GrpcUp != 1 || d.GrpcAddr != grpcAddr || d.GrpcClients != 0 || d.GrpcStreams != 0 || d.PopInflight != 0 {
		t.Fatalf("broker before any 5.x client: %+v", d)
	}

	p := newProducer(t, ns)
	sendN(t, p, topic, "held", 20)
	pc := newPopClient(t, grpcAddr, "zbx-pop-client-1", group, topic)
	held := pc.receiveN(t, 20, 10*time.Minute)
	d := brokerGet()
	if d.GrpcClients != 1 || d.GrpcConsumers != 1 || d.GrpcProducers != 0 || d.GrpcStreams != 1 || d.PopInflight != 20 || d.PopExpired != 0 {
		t.Fatalf("broker with 20 leases held: %+v", d)
	}
	if g := backlogGet(); g.PopInflight != 20 || g.PopInflightMax != 20 || g.PopExpired != 0 || g.Clients != 1 {
		t.Fatalf("group with 20 leases held: %+v", g)
	}
	var rows []map[string]string
	a.get(t, q("rocketmq.cluster.group.discovery", ns, "DefaultCluster"), &rows)
	if got := lldSet(t, rows, "{#GROUP}"); !slices.Contains(got, group) {
		t.Fatalf("group discovery after the filters: %v (all: %v)", got, rows)
	}

	// Acknowledged leases leave the count.
	pc.ack(t, held[:12])
	if g := backlogGet(); g.PopInflight != 8 || g.PopExpired != 0 {
		t.Fatalf("group after 12 acks: %+v", g)
	}

	// 5 more taken for 1 s and never acknowledged: they expire (and are
	// delivered again later); the 8 held ones stay in flight.
	sendN(t, p, topic, "expiring", 5)
	pc.receiveN(t, 5, time.Second)
	var g groupDoc
	waitFor(t, 30*time.Second, "5 expired leases", func() bool {
		g = backlogGet()
		return g.PopExpired == 5
	})
	if g.PopInflight != 8 || g.PopInflightMax != 8 {
		t.Fatalf("group after 5 leases expired: %+v", g)
	}
	if d := brokerGet(); d.PopExpired != 5 || d.PopInflight != 8 {
		t.Fatalf("broker after 5 leases expired: %+v", d)
	}

	// A second client: two clients, two streams.
	newPopClient(t, grpcAddr, "zbx-pop-client-2", group, topic)
	if d := brokerGet(); d.GrpcClients != 2 || d.GrpcConsumers != 2 || d.GrpcStreams != 2 {
		t.Fatalf("broker with two 5.x consumers: %+v", d)
	}
	if g := backlogGet(); g.Clients != 2 {
		t.Fatalf("online clients of the group with two 5.x consumers: %+v", g)
	}

}
