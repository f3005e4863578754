// Package httpgw is the broker's HTTP/JSON gateway: send, receive, ack and
// change invisibility with any HTTP client, for languages that have no
// RocketMQ client. It serves plain net/http handlers on a port of its own
// and calls the broker's send path and POP engine directly (the Backend
// the gRPC service uses too, not the gRPC layer), so a receipt handle
// from an HTTP receive acks over gRPC and the reverse.
//
// Errors are JSON {"code", "codeName", "message"} with RocketMQ 5's codes
// (apache/rocketmq-apis apache/rocketmq/v2/definition.proto, enum Code);
// the HTTP status is the code's first three digits (40402 TOPIC_NOT_FOUND
// → 404, 41301 MESSAGE_BODY_TOO_LARGE → 413), the rule the enum follows.
package httpgw

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"

	"github.com/mqops/mqops/broker/acl"
	"github.com/mqops/mqops/broker/grpcsvc"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/tlsconf"
)

// Backend is the broker as the gateway sees it: the send path and the POP
// engine (implemented by broker/server for the gRPC service as well).
type Backend interface {
	Send(m *grpcsvc.Message) grpcsvc.SendResult
	// TopicMessageType is the topic's message.type, "" for an unknown topic.
	TopicMessageType(topic string) string
	Receive(ctx context.Context, r *grpcsvc.PopRequest) ([]grpcsvc.Delivery, *grpcsvc.PopError)
	Ack(group, topic, handle string) *grpcsvc.PopError
	ChangeInvisible(group, topic, handle string, d time.Duration) (string, *grpcsvc.PopError)
}

// Config is the gateway's configuration (broker keys in brackets).
type Config struct {
	Addr           string        // listen address host:port (bindAddress, httpGatewayPort)
	MaxMessageSize int           // maxMessageSize: largest message body
	MaxDelay       time.Duration // timerMaxDelaySec: latest delivery time from now
	NoTypeCheck    bool          // enableTopicMessageTypeCheck=false
	MinInvisible   time.Duration // minInvisibleTimeMillsForRecv
	// ACL checks every request when aclEnable is on (nil: off): the gRPC
	// port's credentials, or Basic credentials over TLS (auth.go).
	ACL *acl.Gate
	// TLSMode (tlsServerMode) and TLS, the broker's certificate: as on the
	// remoting port, the first byte of a connection decides (HTTP never
	// starts with a TLS record's 0x16). "" is disabled.
	TLSMode string
	TLS     *tls.Config
	Log     *slog.Logger
}

// HTTP server limits. A receive may wait 20 s, so writes get more than that.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 60 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
	// smallBodyLimit bounds the requests that carry no message body.
	smallBodyLimit = 1 << 20
)

// Server is the running gateway.
type Server struct {
	cfg     Config
	be      Backend
	log     *slog.Logger
	lis     net.Listener
	http    *http.Server
	ids     *idGen
	sendCap int64 // largest send request: the body as base64 or escaped JSON
	wg      sync.WaitGroup
}

// Listen binds the port; Serve serves it.
func Listen(cfg Config, be Backend) (*Server, error) {
	if cfg.MinInvisible <= 0 {
		cfg.MinInvisible = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.TLSMode == "" {
		cfg.TLSMode = tlsconf.Disabled
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("http gateway listen %s: %w", cfg.Addr, err)
	}
	lis, err := remoting.TLSListener(ln, cfg.TLSMode, cfg.TLS, readHeaderTimeout, cfg.Log)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("http gateway: %w", err)
	}
	s := &Server{cfg: cfg, be: be, log: cfg.Log, lis: lis, ids: newIDGen()}
	// JSON escaping can double a text body and base64 grows one by a
	// third; properties, keys and tag add at most 16 KiB.
	s.sendCap = 2*int64(cfg.MaxMessageSize) + 64<<10
	s.http = &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnContext:       withConn,
		ErrorLog:          slog.NewLogLogger(cfg.Log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// Serve serves until Stop.
func (s *Server) Serve() error {
	err := s.http.Serve(s.lis)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Stop closes the listener and every connection (waiting receives see
// their request context end) and waits for running handlers, so the store
// can close after it.
func (s *Server) Stop() {
	_ = s.http.Close()
	s.wg.Wait()
}

// handler routes the endpoints; the method-less patterns answer other
// methods with 405 and the catch-all answers unknown paths, both in JSON.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	routes := []struct {
		path string
		h    http.HandlerFunc
		need acl.Perm
	}{
		{"/v1/topics/{topic}/messages", s.send, acl.Pub},
		{"/v1/groups/{group}/topics/{topic}/receive", s.receive, acl.Sub},
		{"/v1/groups/{group}/topics/{topic}/ack", s.ack, acl.Sub},
		{"/v1/groups/{group}/topics/{topic}/invisible", s.invisible, acl.Sub},
	}
	for _, r := range routes {
		mux.HandleFunc("POST "+r.path, s.checked(r.need, r.h))
		mux.HandleFunc(r.path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{Code: int(v2.Code_BAD_REQUEST), CodeName: v2.Code_BAD_REQUEST.String(), Message: "use POST"})
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, apiErr(v2.Code_NOT_FOUND, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return s.guard(mux)
}

// guard counts running handlers for Stop and turns a panic into a 500:
// nothing a client sends may take the broker down.
func (s *Server) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.wg.Add(1)
		defer s.wg.Done()
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("[PANIC] recovered in HTTP gateway handler", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				writeErr(w, apiErr(v2.Code_INTERNAL_ERROR, "internal error: %v", p))
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// apiError is a refused request: a RocketMQ 5 code and why.
type apiError struct {
	code v2.Code
	msg  string
}

func apiErr(code v2.Code, format string, args ...any) *apiError {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

// httpStatus is the HTTP status of a RocketMQ 5 code: its first three
// digits (20000 OK → 200, 40013 → 400, 50001 → 500).
func httpStatus(c v2.Code) int {
	if s := int(c) / 100; s == http.StatusOK || s >= 400 && s < 600 {
		return s
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Code      int    `json:"code"`
	CodeName  string `json:"codeName"`
	Message   string `json:"message"`
	MessageID string `json:"messageId,omitempty"` // a send's id, when it has one
}

func writeErr(w http.ResponseWriter, e *apiError) {
	writeJSON(w, httpStatus(e.code), errorBody{Code: int(e.code), CodeName: e.code.String(), Message: e.msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // a client gone meanwhile needs no answer
}

// decode reads one JSON object of at most limit bytes into v, refusing
// unknown fields (a misspelt "messageGroup" must not send a NORMAL
// message) and trailing data. An empty body is an empty object.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) *apiError {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err == nil:
		if _, err = dec.Token(); errors.Is(err, io.EOF) {
			return nil
		} else if err == nil {
			err = errors.New("data after the JSON object")
		}
	}
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		return apiErr(v2.Code_PAYLOAD_TOO_LARGE, "the request body is larger than %d bytes", mbe.Limit)
	}
	return apiErr(v2.Code_BAD_REQUEST, "bad JSON request: %v", err)
}
