package grpcsvc

import (
	"context"
	"net/netip"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/mqops/mqops/broker/acl"
)

// Metadata keys of a RocketMQ 5 client's credentials (apache/rocketmq-clients
// golang/metadata/metadata.go; golang/client.go Sign).
const (
	mdAuthorization = "authorization"
	mdDateTime      = "x-mq-date-time"
)

// aclUnary checks a unary call's credentials and the resources its
// request names before the handler runs. A refusal is answered the way
// Java's proxy answers an AuthenticationException (UNAUTHORIZED) or an
// AuthorizationException (FORBIDDEN): gRPC OK with the code in the
// response's Status (apache/rocketmq
// proxy/src/main/java/org/apache/rocketmq/proxy/grpc/v2/common/ResponseBuilder.java).
func (s *Server) aclUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	caller, st := s.authorize(ctx, info.FullMethod, req)
	if st != nil {
		if resp := refusal(req, st); resp != nil {
			return resp, nil
		}
		return nil, grpcRefusal(st)
	}
	if _, ok := req.(*v2.SendMessageRequest); ok && caller.Account() != nil {
		// The broker charges the send to the account's produce quota.
		ctx = context.WithValue(ctx, accountKey{}, caller.Account())
	}
	return h(ctx, req)
}

type accountKey struct{}

// accountOf is the ACL account a send was authenticated as, nil without
// ACL or through the global white list.
func accountOf(ctx context.Context) *acl.Account {
	a, _ := ctx.Value(accountKey{}).(*acl.Account)
	return a
}

// aclStream authenticates a streaming call; ReceiveMessage's request (its
// topic and group) is checked when the handler reads it.
func (s *Server) aclStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx := ss.Context()
	if _, st := s.authorize(ctx, info.FullMethod, nil); st != nil {
		return grpcRefusal(st)
	}
	if info.IsClientStream {
		return h(srv, ss) // Telemetry: the credentials are all it needs
	}
	return h(srv, &aclStreamCheck{ServerStream: ss, s: s, method: info.FullMethod})
}

// aclStreamCheck checks the request of a server-streaming call.
type aclStreamCheck struct {
	grpc.ServerStream
	s      *Server
	method string
}

func (a *aclStreamCheck) RecvMsg(m any) error {
	if err := a.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if _, st := a.s.authorize(a.Context(), a.method, m); st != nil {
		if _, ok := m.(*v2.ReceiveMessageRequest); ok {
			// The client reads the refusal as the stream's status message.
			_ = a.SendMsg(&v2.ReceiveMessageResponse{Content: &v2.ReceiveMessageResponse_Status{Status: st}})
		}
		return grpcRefusal(st)
	}
	return nil
}

// grpcRefusal is a refusal for calls whose answer has no Status field.
func grpcRefusal(st *v2.Status) error {
	c := codes.PermissionDenied
	if st.Code == v2.Code_UNAUTHORIZED {
		c = codes.Unauthenticated
	}
	return status.Error(c, st.Message)
}

// authorize authenticates the call and, when req is not nil, checks what
// it names: PUB on the topics it sends to, SUB on the topic and group it
// consumes. It returns the caller and a nil Status when the call may go on.
func (s *Server) authorize(ctx context.Context, method string, req any) (acl.Caller, *v2.Status) {
	var remote string
	var ip netip.Addr
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		remote, ip = p.Addr.String(), acl.RemoteIP(p.Addr)
	}
	var ak, dateTime string
	var mac []byte
	if v := metadata.ValueFromIncomingContext(ctx, mdAuthorization); len(v) > 0 {
		var err error
		if ak, mac, err = acl.ParseAuthorization(v[0]); err != nil {
			d := acl.Decision{Reason: acl.ReasonSignature, Remark: err.Error()}
			if ak == "" {
				d.Reason = acl.ReasonNoAccessKey
			}
			s.cfg.ACL.RefuseCall(method, ak, remote, ip, d)
			return acl.Caller{}, st(v2.Code_UNAUTHORIZED, d.Remark)
		}
	}
	if v := metadata.ValueFromIncomingContext(ctx, mdDateTime); len(v) > 0 {
		dateTime = v[0]
	}
	caller, d := s.cfg.ACL.AuthenticateCall(ip, ak, dateTime, mac)
	if !d.OK {
		s.cfg.ACL.RefuseCall(method, ak, remote, ip, d)
		return acl.Caller{}, st(v2.Code_UNAUTHORIZED, d.Remark)
	}
	if req == nil {
		return caller, nil
	}
	if d = checkResources(caller, req); !d.OK {
		s.cfg.ACL.RefuseCall(method, ak, remote, ip, d)
		return acl.Caller{}, st(v2.Code_FORBIDDEN, d.Remark)
	}
	return caller, nil
}

// checkResources is the per-request permission table: sends and
// transaction ends need PUB on the topic, consuming calls SUB on the topic
// and the group; calls naming only a group need SUB on it; the rest
// (QueryRoute, Telemetry) need an authenticated caller only.
func checkResources(k acl.Caller, req any) acl.Decision {
	ok := acl.Decision{OK: true}
	switch r := req.(type) {
	case *v2.SendMessageRequest:
		for _, m := range r.GetMessages() {
			if d := k.Topic(m.GetTopic().GetName(), acl.Pub); !d.OK {
				return d
			}
		}
	case *v2.EndTransactionRequest:
		return k.Topic(r.GetTopic().GetName(), acl.Pub)
	case *v2.RecallMessageRequest:
		return k.Topic(r.GetTopic().GetName(), acl.Pub)
	case *v2.ReceiveMessageRequest:
		return topicAndGroup(k, r.GetMessageQueue().GetTopic().GetName(), r.GetGroup().GetName())
	case *v2.AckMessageRequest:
		return topicAndGroup(k, r.GetTopic().GetName(), r.GetGroup().GetName())
	case *v2.ChangeInvisibleDurationRequest:
		return topicAndGroup(k, r.GetTopic().GetName(), r.GetGroup().GetName())
	case *v2.ForwardMessageToDeadLetterQueueRequest:
		return topicAndGroup(k, r.GetTopic().GetName(), r.GetGroup().GetName())
	case *v2.QueryAssignmentRequest:
		return topicAndGroup(k, r.GetTopic().GetName(), r.GetGroup().GetName())
	case *v2.HeartbeatRequest:
		if g := r.GetGroup().GetName(); g != "" {
			return k.Group(g)
		}
	case *v2.NotifyClientTerminationRequest:
		if g := r.GetGroup().GetName(); g != "" {
			return k.Group(g)
		}
	}
	return ok
}

func topicAndGroup(k acl.Caller, topic, group string) acl.Decision {
	if topic != "" {
		if d := k.Topic(topic, acl.Sub); !d.OK {
			return d
		}
	}
	if group != "" {
		return k.Group(group)
	}
	return acl.Decision{OK: true}
}

// refusal is the response carrying st for a unary request, nil for a
// request type without one.
func refusal(req any, st *v2.Status) any {
	switch req.(type) {
	case *v2.QueryRouteRequest:
		return &v2.QueryRouteResponse{Status: st}
	case *v2.HeartbeatRequest:
		return &v2.HeartbeatResponse{Status: st}
	case *v2.SendMessageRequest:
		return &v2.SendMessageResponse{Status: st}
	case *v2.QueryAssignmentRequest:
		return &v2.QueryAssignmentResponse{Status: st}
	case *v2.AckMessageRequest:
		return &v2.AckMessageResponse{Status: st}
	case *v2.ForwardMessageToDeadLetterQueueRequest:
		return &v2.ForwardMessageToDeadLetterQueueResponse{Status: st}
	case *v2.EndTransactionRequest:
		return &v2.EndTransactionResponse{Status: st}
	case *v2.NotifyClientTerminationRequest:
		return &v2.NotifyClientTerminationResponse{Status: st}
	case *v2.ChangeInvisibleDurationRequest:
		return &v2.ChangeInvisibleDurationResponse{Status: st}
	case *v2.RecallMessageRequest:
		return &v2.RecallMessageResponse{Status: st}
	}
	return nil
}
