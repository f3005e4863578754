package grpcsvc

import (
	"context"
	"sort"
	"sync"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Request headers (apache/rocketmq
// common/src/main/java/org/apache/rocketmq/common/constant/GrpcConstants.java).
const (
	hdrClientID  = "x-mq-client-id"
	hdrNamespace = "x-mq-namespace"
	hdrLanguage  = "x-mq-language"
	hdrVersion   = "x-mq-client-version"
)

// header is one request header; unlike FromIncomingContext it does not
// copy every header, which each call would pay several times.
func header(ctx context.Context, name string) string {
	if v := metadata.ValueFromIncomingContext(ctx, name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// clientOf is the request's client id, or the CLIENT_ID_REQUIRED status
// Java's proxy answers without one (GrpcMessagingApplication.validateContext).
func clientOf(ctx context.Context) (string, *v2.Status) {
	id := header(ctx, hdrClientID)
	if id == "" {
		return "", st(v2.Code_CLIENT_ID_REQUIRED, "the x-mq-client-id header is required")
	}
	return id, nil
}

// withNamespace is a resource's name as stored: a namespace (header or
// resource field) prefixes it with "ns%" (apache/rocketmq
// remoting/src/main/java/org/apache/rocketmq/remoting/protocol/NamespaceUtil.java).
func withNamespace(ctx context.Context, r *v2.Resource) string {
	ns := r.GetResourceNamespace()
	if ns == "" {
		ns = header(ctx, hdrNamespace)
	}
	if ns == "" || r.GetName() == "" {
		return r.GetName()
	}
	return ns + "%" + r.GetName()
}

// client is what the broker knows about one 5.x client.
type client struct {
	settings *v2.Settings
	lastSeen time.Time
	streams  int // open Telemetry streams
	// From the Telemetry stream's headers and peer, for admin listings.
	addr, language, version string
}

// ClientInfo is one 5.x client as the admin listings show it (Java lists
// them with the remoting clients: ClientActivity.registerConsumer).
type ClientInfo struct {
	ClientID string
	Addr     string // host:port of its Telemetry stream
	Language string // x-mq-language, e.g. GO, NODE_JS, JAVA
	Version  string // x-mq-client-version, e.g. 5.0.1-rc1
	Type     v2.ClientType
	// Consumers: the group and its subscriptions as the Settings say.
	Group         string
	Subscriptions []*v2.SubscriptionEntry
}

// ClientCounts are the 5.x clients the broker knows (with Settings) by
// kind, and the Telemetry streams open.
type ClientCounts struct {
	Clients, Producers, Consumers, Streams int
}

// clientTable holds the Settings each client sent on its Telemetry
// stream, keyed by client id (Java: GrpcClientSettingsManager).
type clientTable struct {
	mu sync.Mutex
	m  map[string]*client
}

func newClientTable() *clientTable { return &clientTable{m: map[string]*client{}} }

// settings are the Settings a client sent, nil if none.
func (t *clientTable) settings(id string) *v2.Settings {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.m[id]; c != nil {
		return c.settings
	}
	return nil
}

// connected reports whether the client has a Telemetry stream open.
func (t *clientTable) connected(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.m[id]
	return c != nil && c.streams > 0
}

// put stores a client's Settings and who sent them; first reports its
// first Settings.
func (t *clientTable) put(id string, s *v2.Settings, addr, language, version string) (first bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.m[id]
	if c == nil {
		c = &client{}
		t.m[id] = c
	}
	first = c.settings == nil
	c.settings, c.lastSeen = s, time.Now()
	c.addr, c.language, c.version = addr, language, version
	return first
}

// consumers lists the clients whose Settings subscribe group.
func (t *clientTable) consumers(group string) []ClientInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []ClientInfo
	for id, c := range t.m {
		sub := c.settings.GetSubscription()
		if sub == nil || sub.GetGroup().GetName() != group {
			continue
		}
		out = append(out, ClientInfo{ClientID: id, Addr: c.addr, Language: c.language, Version: c.version,
			Type: c.settings.GetClientType(), Group: group, Subscriptions: sub.GetSubscriptions()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out
}

func (t *clientTable) counts() ClientCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	var n ClientCounts
	for _, c := range t.m {
		n.Streams += max(c.streams, 0)
		switch {
		case c.settings == nil:
		case c.settings.GetPublishing() != nil:
			n.Clients++
			n.Producers++
		case c.settings.GetSubscription() != nil:
			n.Clients++
			n.Consumers++
		default:
			n.Clients++
		}
	}
	return n
}

// Consumers lists the 5.x clients of a consumer group (those that sent
// Settings on their Telemetry stream), by client id.
func (s *Server) Consumers(group string) []ClientInfo { return s.clients.consumers(group) }

// ClientCounts counts the 5.x clients and their open Telemetry streams.
func (s *Server) ClientCounts() ClientCounts { return s.clients.counts() }

// touch records a heartbeat; false for a client whose Settings are unknown.
func (t *clientTable) touch(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.m[id]
	if c == nil || c.settings == nil {
		return false
	}
	c.lastSeen = time.Now()
	return true
}

func (t *clientTable) streamOpened(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.m[id]
	if c == nil {
		c = &client{}
		t.m[id] = c
	}
	c.streams++
	c.lastSeen = time.Now()
}

func (t *clientTable) streamClosed(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.m[id]; c != nil {
		c.streams--
		c.lastSeen = time.Now()
	}
}

func (t *clientTable) remove(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.m[id]
	delete(t.m, id)
	return c != nil && c.settings != nil
}

// expire drops clients with no open stream and no heartbeat since before.
// Go v5.1.2 never calls NotifyClientTermination.
func (t *clientTable) expire(before time.Time) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var gone []string
	for id, c := range t.m {
		if c.streams <= 0 && c.lastSeen.Before(before) {
			delete(t.m, id)
			gone = append(gone, id)
		}
	}
	return gone
}

func (s *Server) Heartbeat(ctx context.Context, req *v2.HeartbeatRequest) (*v2.HeartbeatResponse, error) {
	id, bad := clientOf(ctx)
	if bad != nil {
		return &v2.HeartbeatResponse{Status: bad}, nil
	}
	// Unknown Settings make Go v5.1.2 re-send them (client.go doHeartbeat).
	if !s.clients.touch(id) {
		return &v2.HeartbeatResponse{Status: st(v2.Code_UNRECOGNIZED_CLIENT_TYPE, "no Settings received from client "+id+" yet: send them on the Telemetry stream")}, nil
	}
	return &v2.HeartbeatResponse{Status: statusOK()}, nil
}

func (s *Server) NotifyClientTermination(ctx context.Context, _ *v2.NotifyClientTerminationRequest) (*v2.NotifyClientTerminationResponse, error) {
	id, bad := clientOf(ctx)
	if bad != nil {
		return &v2.NotifyClientTerminationResponse{Status: bad}, nil
	}
	if !s.clients.remove(id) {
		return &v2.NotifyClientTerminationResponse{Status: st(v2.Code_UNRECOGNIZED_CLIENT_TYPE, "unknown client "+id)}, nil
	}
	s.log.Info("[GRPC_CLIENT_CLOSED] client terminated", "clientId", id)
	return &v2.NotifyClientTerminationResponse{Status: statusOK()}, nil
}

// Telemetry keeps the client's stream open for its life: Settings in,
// merged Settings out (later: transaction check-backs and admin
// commands). Errors are real gRPC statuses here, as in Java's proxy
// (ClientActivity.processTelemetryException). The stream is never ended
// by the server: Go v5.1.2 only re-opens it minutes later.
func (s *Server) Telemetry(ss v2.MessagingService_TelemetryServer) error {
	ctx := ss.Context()
	id, bad := clientOf(ctx)
	if bad != nil {
		return status.Error(codes.InvalidArgument, bad.Message)
	}
	s.clients.streamOpened(id)
	defer s.clients.streamClosed(id)
	ts := s.streams.open(id, ss)
	defer s.streams.close(ts)
	for {
		cmd, err := ss.Recv()
		if err != nil {
			return nil // the client went away or cancelled
		}
		switch c := cmd.Command.(type) {
		case *v2.TelemetryCommand_Settings:
			reply, err := s.mergeSettings(c.Settings)
			if err != nil {
				return err
			}
			addr := ""
			if p := peerHost(ctx); p != nil {
				addr = p.String()
			}
			if s.clients.put(id, c.Settings, addr, header(ctx, hdrLanguage), header(ctx, hdrVersion)) {
				s.log.Info("[GRPC_CLIENT] registered", "clientId", id, "type", c.Settings.GetClientType().String(),
					"language", header(ctx, hdrLanguage), "version", header(ctx, hdrVersion), "remote", addr)
			}
			if err := ts.send(&v2.TelemetryCommand{Status: statusOK(), Command: &v2.TelemetryCommand_Settings{Settings: reply}}); err != nil {
				return nil
			}
		default:
			// Answers to commands this broker does not send yet.
			s.log.Debug("[GRPC_TELEMETRY] ignored command", "clientId", id, "type", commandName(cmd))
		}
	}
}

func commandName(cmd *v2.TelemetryCommand) string {
	if cmd.Command == nil {
		return "none"
	}
	return string(cmd.ProtoReflect().WhichOneof(cmd.ProtoReflect().Descriptor().Oneofs().ByName("command")).Name())
}

// Settings defaults: Java's ProxyConfig grpcClientProducer* and
// grpcClientConsumer* values (apache/rocketmq
// proxy/src/main/java/org/apache/rocketmq/proxy/config/ProxyConfig.java).
const (
	producerMaxAttempts    = 3
	producerBackoffInitial = 10 * time.Millisecond
	producerBackoffMax     = time.Second
	backoffMultiplier      = 2
	consumerBatchSize      = 32
	consumerLongPolling    = 20 * time.Second
	consumerMaxAttempts    = 16 + 1 // a group's default retryMaxTimes + 1
	consumerBackoffInitial = time.Second
	consumerBackoffMax     = 2 * time.Hour
)

// mergeSettings is the reply to a client's Settings, complete as Java's
// GrpcClientSettingsManager makes it: Node.js 1.0.8 dereferences the
// exponential backoff and Go v5.1.2 takes max_body_size as is (0 would
// refuse every send).
func (s *Server) mergeSettings(in *v2.Settings) (*v2.Settings, error) {
	out := proto.Clone(in).(*v2.Settings)
	out.Metric = &v2.Metric{On: false}
	switch ps := in.PubSub.(type) {
	case *v2.Settings_Publishing:
		out.BackoffPolicy = exponential(producerMaxAttempts, producerBackoffInitial, producerBackoffMax)
		out.PubSub = &v2.Settings_Publishing{Publishing: &v2.Publishing{
			Topics: ps.Publishing.GetTopics(), MaxBodySize: int32(s.cfg.MaxMessageSize), ValidateMessageType: !s.cfg.NoTypeCheck,
		}}
	case *v2.Settings_Subscription:
		sub := proto.Clone(ps.Subscription).(*v2.Subscription)
		if sub.GetGroup().GetName() == "" {
			return nil, status.Error(codes.InvalidArgument, "subscription settings without a group")
		}
		// Node.js 1.0.8's PushConsumer consumes a fifo group's messages
		// one at a time in order (FifoConsumeService); Go v5.1.2 ignores it.
		sub.Fifo = proto.Bool(s.consumerFifo(sub.GetGroup().GetName()))
		sub.ReceiveBatchSize = proto.Int32(consumerBatchSize)
		sub.LongPollingTimeout = durationpb.New(consumerLongPolling)
		out.PubSub = &v2.Settings_Subscription{Subscription: sub}
		out.BackoffPolicy = exponential(s.consumerMaxAttempts(sub.GetGroup().GetName()), consumerBackoffInitial, consumerBackoffMax)
	default:
		return nil, status.Error(codes.InvalidArgument, "settings have neither publishing nor subscription")
	}
	return out, nil
}

func exponential(attempts int32, initial, max time.Duration) *v2.RetryPolicy {
	return &v2.RetryPolicy{MaxAttempts: attempts, Strategy: &v2.RetryPolicy_ExponentialBackoff{ExponentialBackoff: &v2.ExponentialBackoff{
		Initial: durationpb.New(initial), Max: durationpb.New(max), Multiplier: backoffMultiplier,
	}}}
}
