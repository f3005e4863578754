// Package grpcsvc serves RocketMQ 5's gRPC protocol,
// apache.rocketmq.v2.MessagingService, from inside the broker (what Java's
// proxy does in "local" mode, apache/rocketmq
// proxy/src/main/java/org/apache/rocketmq/proxy/grpc/v2/GrpcMessagingApplication.java),
// so the official 5.x clients work unchanged. It converts requests to the
// broker's own send path (Backend) and answers the way Java's proxy does:
// unary calls complete with gRPC OK and carry the outcome in the body's
// Status.
//
// Producers are served (QueryRoute, Heartbeat, Telemetry, SendMessage of
// NORMAL, FIFO, DELAY and TRANSACTION messages, EndTransaction,
// NotifyClientTermination), and consumers of non-FIFO groups through the
// broker's POP engine (consumer.go, PopBackend; FIFO groups are served like
// normal ones for now). RecallMessage answers NOT_IMPLEMENTED; PullMessage, the offset RPCs and SyncLiteSubscription
// answer gRPC UNIMPLEMENTED, as Java's proxy does.
package grpcsvc

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/mqops/mqops/broker/acl"
	"github.com/mqops/mqops/tlsconf"
	"github.com/mqops/mqops/wire"
)

// Backend is what the service needs from the broker.
type Backend interface {
	// Send stores one message through the broker's send checks and store
	// path and returns when it is as durable as a remoting send's answer
	// promises.
	Send(m *Message) SendResult
	// Route is the topic's route as the name servers know it; a nil route
	// with a nil error means the topic is unknown.
	Route(topic string) (*wire.TopicRouteData, error)
	// GrpcAddrs maps brokers' remoting addresses to the gRPC addresses
	// they published in the name servers; want lists the addresses the
	// caller needs (a missing one makes a fresh lookup worthwhile).
	GrpcAddrs(want []string) map[string]string
	producerBackend
}

// Message is one message to store, in the broker's terms.
type Message struct {
	Topic         string
	Body          []byte
	Properties    []byte // encoded as in the commit log
	SysFlag       int32
	BornTimestamp int64
	BornHost      []byte // wire.HostBytes
	MessageGroup  string // a FIFO message's group: its queue is QueueForGroup
	// Account is the ACL account the send was authenticated as (nil
	// without ACL or through the global white list); its produce quota
	// applies as on the remoting port.
	Account *acl.Account
}

// SendResult is the outcome of Backend.Send, with a remoting response code.
type SendResult struct {
	Code        int32
	Remark      string
	QueueID     int32
	QueueOffset int64 // of a half message: its half-queue offset
	PhysOffset  int64 // commit log offset
}

// Config is the service's configuration (broker keys of the same names).
type Config struct {
	Addr           string // listen address host:port (grpcServerPort)
	MaxRecvMsgSize int    // grpcMaxInboundMessageSize
	TLSMode        string // tlsServerMode
	CertPath       string // tlsCertPath
	KeyPath        string // tlsKeyPath
	SelfSigned     bool   // tlsTestModeEnable: without CertPath, make a certificate
	CertHosts      []string
	// TLS, if set, is the server configuration to use instead of the
	// four fields above (the broker shares its remoting port's).
	TLS            *tls.Config
	MaxMessageSize int // maxMessageSize: body limit, also told to producers
	// MaxDelay bounds delivery timestamps (timerMaxDelaySec).
	MaxDelay time.Duration
	// NoTypeCheck turns off the message type check against the topic's
	// message.type (enableTopicMessageTypeCheck=false).
	NoTypeCheck      bool
	ClientIdleExpiry time.Duration
	MinInvisible     time.Duration // minInvisibleTimeMillsForRecv: shortest invisible duration of a receive
	// ACL, when set (aclEnable), checks every call's credentials and
	// permissions (acl.go); nil serves everyone.
	ACL *acl.Gate
	Log *slog.Logger
}

// streamWorkers is how many goroutines serve calls. A call holds its
// worker from its HEADERS frame until its answer, through the wait for
// the request's DATA frame and the store, so one client's 64 concurrent
// sends occupy 64; more calls than workers each start a fresh goroutine
// (pprof: 7 % of the send path's CPU in runtime.newstack with 32 workers
// and 64 senders). An idle worker costs its stack, a few KiB.
const streamWorkers = 256

// Server is the running service.
type Server struct {
	v2.UnimplementedMessagingServiceServer
	cfg     Config
	be      Backend
	log     *slog.Logger
	lis     net.Listener
	grpc    *grpc.Server
	clients *clientTable
	streams streamSet // open Telemetry streams (transaction check-backs)
	routes  routeCache
	stop    chan struct{}
	wg      sync.WaitGroup // expireLoop and running handlers: Stop waits for them
}

// Listen binds the port and prepares the service; Serve serves it.
func Listen(cfg Config, be Backend) (*Server, error) {
	if cfg.ClientIdleExpiry <= 0 {
		cfg.ClientIdleExpiry = 120 * time.Second // Java's grpcClientIdleTimeMills
	}
	if cfg.MinInvisible <= 0 {
		cfg.MinInvisible = 10 * time.Second // Java's minInvisibleTimeMillsForRecv
	}
	if cfg.TLSMode == "" {
		cfg.TLSMode = TLSPermissive
	}
	tcfg := cfg.TLS
	if cfg.TLSMode != TLSDisabled && tcfg == nil {
		var err error
		if tcfg, err = tlsconf.Server(cfg.CertPath, cfg.KeyPath, cfg.SelfSigned, cfg.CertHosts); err != nil {
			return nil, err
		}
	}
	lis, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("grpc listen %s: %w", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, be: be, log: cfg.Log, lis: lis, clients: newClientTable(), stop: make(chan struct{})}
	unary := []grpc.UnaryServerInterceptor{s.recoverUnary}
	stream := []grpc.StreamServerInterceptor{s.recoverStream}
	if cfg.ACL != nil {
		unary, stream = append(unary, s.aclUnary), append(stream, s.aclStream)
	}
	s.grpc = grpc.NewServer(
		grpc.Creds(newSniffCreds(cfg.TLSMode, tcfg)),
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgSize),
		// Java clients ping every 300 s even without calls.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 30 * time.Second, PermitWithoutStream: true}),
		// Calls run on reused goroutines whose stacks have grown already:
		// a fresh goroutine per call spent a tenth of the send path's CPU
		// growing its stack (pprof: runtime.newstack). When all are busy
		// (long polls), grpc-go starts a goroutine as before.
		grpc.NumStreamWorkers(streamWorkers),
		// Deliveries are written by hand from the stored record (encode.go).
		grpc.ForceServerCodecV2(newServerCodec()),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	)
	v2.RegisterMessagingServiceServer(s.grpc, s)
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// Serve serves until Stop.
func (s *Server) Serve() error {
	s.wg.Add(1)
	go s.expireLoop()
	return s.grpc.Serve(s.lis)
}

// Stop closes the listener and every connection (clients reconnect to
// another broker or after the restart) and waits for running handlers,
// so the store can close after it.
func (s *Server) Stop() {
	close(s.stop)
	s.grpc.Stop()
	_ = s.lis.Close() // Stop closes it only if Serve ran
	s.wg.Wait()
}

func (s *Server) expireLoop() {
	defer s.wg.Done()
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			for _, id := range s.clients.expire(now.Add(-s.cfg.ClientIdleExpiry)) {
				s.log.Info("[GRPC_CLIENT_EXPIRED] no heartbeat or stream", "clientId", id, "after", s.cfg.ClientIdleExpiry)
			}
		}
	}
}

// recoverUnary turns a handler panic into gRPC INTERNAL: nothing a
// client sends may take the broker down.
func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	s.wg.Add(1)
	defer s.wg.Done()
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("[PANIC] recovered in gRPC handler", "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
			resp, err = nil, status.Errorf(codes.Internal, "internal error: %v", p)
		}
	}()
	return h(ctx, req)
}

func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	s.wg.Add(1)
	defer s.wg.Done()
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("[PANIC] recovered in gRPC handler", "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
			err = status.Errorf(codes.Internal, "internal error: %v", p)
		}
	}()
	return h(srv, ss)
}

func st(code v2.Code, msg string) *v2.Status { return &v2.Status{Code: code, Message: msg} }

var statusOK = func() *v2.Status { return st(v2.Code_OK, "OK") }

// notImplemented is the answer of the RPCs this broker does not serve yet.
func notImplemented(what string) *v2.Status {
	return st(v2.Code_NOT_IMPLEMENTED, what+" is not implemented by this broker yet")
}

// ---- RPCs not served yet: a clear status in the body ----

func (s *Server) RecallMessage(ctx context.Context, _ *v2.RecallMessageRequest) (*v2.RecallMessageResponse, error) {
	if _, bad := clientOf(ctx); bad != nil {
		return &v2.RecallMessageResponse{Status: bad}, nil
	}
	return &v2.RecallMessageResponse{Status: notImplemented("RecallMessage")}, nil
}
