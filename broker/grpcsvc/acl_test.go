package grpcsvc

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	innerMD "github.com/apache/rocketmq-clients/golang/v5/metadata"
	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mqops/mqops/broker/acl"
)

// clientAuthorization is the header rocketmq-clients golang/v5 v5.1.2
// writes (client.go Sign), built from its own constants.
func clientAuthorization(ak, sk, dateTime string) string {
	h := hmac.New(sha1.New, []byte(sk))
	h.Write([]byte(dateTime))
	return fmt.Sprintf("%s %s=%s/%s/%s, %s=%s, %s=%s", innerMD.EncryptHeader, innerMD.Credential, ak, "", innerMD.Rocketmq,
		innerMD.SignedHeaders, innerMD.DateTime, innerMD.Signature, hex.EncodeToString(h.Sum(nil)))
}

// Example 6 of the design notes: x-mq-date-time 20250101T120000Z under
// secret 12345678; Java clients write the hex in upper case.
const golden6 = "28f6197047a0b0cc33c05e4f75d7d5446262c710"

func TestParseAuthorizationGolden(t *testing.T) {
	h := clientAuthorization("RocketMQ", "12345678", "20250101T120000Z")
	if !strings.HasSuffix(h, "Signature="+golden6) || !strings.Contains(h, "Credential=RocketMQ//Rocketmq, ") {
		t.Fatalf("client header %q", h)
	}
	for _, v := range []string{h, "MQv2-HMAC-SHA1 Credential=RocketMQ, SignedHeaders=x-mq-date-time, Signature=" + strings.ToUpper(golden6)} {
		ak, mac, err := acl.ParseAuthorization(v)
		if err != nil || ak != "RocketMQ" || hex.EncodeToString(mac) != golden6 {
			t.Fatalf("%q: ak=%q mac=%x err=%v", v, ak, mac, err)
		}
	}
}

func TestParseAuthorizationMalformed(t *testing.T) {
	cases := map[string]string{
		"":                                                 "no credentials",
		"MQv2-HMAC-SHA1":                                   "no credentials",
		"Basic Credential=a, Signature=00":                 "scheme",
		"MQv2-HMAC-SHA1 ":                                  "not key=value",
		"MQv2-HMAC-SHA1 Credential":                        "not key=value",
		"MQv2-HMAC-SHA1 Credential=a,,":                    "not key=value",
		"MQv2-HMAC-SHA1 Signature=00":                      "names no AccessKey",
		"MQv2-HMAC-SHA1 Credential=/x, S=1":                "names no AccessKey",
		"MQv2-HMAC-SHA1 Credential=ak":                     "not a hex HMAC",
		"MQv2-HMAC-SHA1 Credential=ak, Signature=zz":       "not a hex HMAC",
		"MQv2-HMAC-SHA1 Credential=ak, Signature=abc":      "not a hex HMAC",
		"MQv2-HMAC-SHA1 Credential=ak, Signature=":         "not a hex HMAC",
		"MQv2-HMAC-SHA1 Credential=ak\x00, Signature=\xff": "not a hex HMAC",
	}
	for v, want := range cases {
		_, _, err := acl.ParseAuthorization(v)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", v, err, want)
		}
	}
}

const aclRules = `accounts:
- accessKey: producerA
  secretKey: secretA1
  topicPerms:
  - TopicA=PUB
- accessKey: consumerA
  secretKey: secretC1
  topicPerms:
  - TopicA=SUB
  groupPerms:
  - GroupA=SUB
`

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func startACLService(t *testing.T) (*Server, *recorder, *acl.Gate, *syncBuf) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	if err := os.WriteFile(path, []byte(aclRules), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuf{}
	audit := acl.NewAudit(slog.New(slog.NewTextHandler(logs, nil)), time.Nanosecond)
	w, err := acl.Load(acl.Source{AclFile: path}, acl.BrokerTable, audit, nil)
	if err != nil {
		t.Fatal(err)
	}
	gate := acl.NewGate(w.Checker(), audit)
	rec := &recorder{}
	s, err := Listen(Config{Addr: "127.0.0.1:0", MaxRecvMsgSize: 1 << 20, TLSMode: TLSDisabled, MaxMessageSize: 1024,
		MaxDelay: time.Hour, ACL: gate, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, rec)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve() }()
	t.Cleanup(s.Stop)
	return s, rec, gate, logs
}

func signedCtx(t *testing.T, ak, sk string) context.Context {
	ctx := ctxFor(t, "client-1")
	if ak == "" {
		return ctx
	}
	now := time.Now().Format("20060102T150405Z")
	return metadata.AppendToOutgoingContext(ctx, mdDateTime, now, mdAuthorization, clientAuthorization(ak, sk, now))
}

// TestACLUnary: over a real gRPC connection, sends pass with PUB and are
// refused, before reaching the store, as UNAUTHORIZED (no or wrong
// credentials) or FORBIDDEN (no PUB), counted and written to acl.log.
func TestACLUnary(t *testing.T) {
	s, rec, gate, logs := startACLService(t)
	c := dialService(t, s, false)
	send := func(ak, sk, topic string) *v2.Status {
		t.Helper()
		resp, err := c.SendMessage(signedCtx(t, ak, sk), &v2.SendMessageRequest{Messages: []*v2.Message{normal(topic, "x")}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetStatus()
	}
	if st := send("producerA", "secretA1", "TopicA"); st.GetCode() != v2.Code_OK || rec.count() != 1 {
		t.Fatalf("allowed send: %v, stored %d", st, rec.count())
	}
	// The send carries its account, whose produce quota the broker charges.
	if a := rec.sent[0].Account; a == nil || a.AccessKey != "producerA" {
		t.Fatalf("the allowed send reached the backend as account %+v, want producerA", a)
	}
	cases := []struct {
		ak, sk, topic string
		code          v2.Code
		msg           string
		reason        acl.Reason
	}{
		{"producerA", "wrong-secret", "TopicA", v2.Code_UNAUTHORIZED, "Check signature failed for accessKey=producerA", acl.ReasonSignature},
		{"", "", "TopicA", v2.Code_UNAUTHORIZED, "No accessKey is configured", acl.ReasonNoAccessKey},
		{"nobodyXX", "secretA1", "TopicA", v2.Code_UNAUTHORIZED, "No acl config for nobodyXX", acl.ReasonUnknownAccount},
		{"producerA", "secretA1", "TopicB", v2.Code_FORBIDDEN, "No default permission for topic:TopicB", acl.ReasonTopic},
		{"consumerA", "secretC1", "TopicA", v2.Code_FORBIDDEN, "No default permission for topic:TopicA", acl.ReasonTopic},
	}
	for _, tc := range cases {
		before := gate.Stats.Denied(tc.reason)
		st := send(tc.ak, tc.sk, tc.topic)
		if st.GetCode() != tc.code || st.GetMessage() != tc.msg {
			t.Errorf("%s/%s: status %v, want %v %q", tc.ak, tc.topic, st, tc.code, tc.msg)
		}
		if gate.Stats.Denied(tc.reason) != before+1 {
			t.Errorf("%s/%s: %s not counted", tc.ak, tc.topic, tc.reason)
		}
	}
	if rec.count() != 1 {
		t.Fatalf("a refused send reached the store: %d stored", rec.count())
	}
	if l := logs.String(); !strings.Contains(l, "grpc=/apache.rocketmq.v2.MessagingService/SendMessage") || !strings.Contains(l, "resource=topic:TopicB need=PUB") {
		t.Fatalf("acl.log:\n%s", l)
	}
	// A header the parser refuses is a clear UNAUTHORIZED, not a panic.
	ctx := metadata.AppendToOutgoingContext(ctxFor(t, "c"), mdAuthorization, "MQv2-HMAC-SHA1 Credential=producerA, Signature=zz")
	resp, err := c.QueryRoute(ctx, &v2.QueryRouteRequest{Topic: &v2.Resource{Name: "TopicA"}})
	if err != nil || resp.GetStatus().GetCode() != v2.Code_UNAUTHORIZED || !strings.Contains(resp.GetStatus().GetMessage(), "hex") {
		t.Fatalf("malformed header: %v %v", resp.GetStatus(), err)
	}
	// Consuming calls need SUB on topic and group.
	ack, err := c.AckMessage(signedCtx(t, "consumerA", "secretC1"), &v2.AckMessageRequest{Topic: &v2.Resource{Name: "TopicA"}, Group: &v2.Resource{Name: "GroupB"}})
	if err != nil || ack.GetStatus().GetCode() != v2.Code_FORBIDDEN || ack.GetStatus().GetMessage() != "No default permission for group:GroupB" {
		t.Fatalf("ack other group: %v %v", ack.GetStatus(), err)
	}
}

// TestACLStreams: Telemetry needs credentials; ReceiveMessage SUB on its
// topic and group, refused with the status as the stream's first answer.
func TestACLStreams(t *testing.T) {
	s, _, _, _ := startACLService(t)
	c := dialService(t, s, false)
	tel, err := c.Telemetry(signedCtx(t, "consumerA", "wrong-secret"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tel.Recv(); status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "Check signature failed") {
		t.Fatalf("telemetry with a wrong secret: %v", err)
	}
	rs, err := c.ReceiveMessage(signedCtx(t, "consumerA", "secretC1"), &v2.ReceiveMessageRequest{
		Group: &v2.Resource{Name: "GroupB"}, MessageQueue: &v2.MessageQueue{Topic: &v2.Resource{Name: "TopicA"}}})
	if err != nil {
		t.Fatal(err)
	}
	first, err := rs.Recv()
	if err != nil || first.GetStatus().GetCode() != v2.Code_FORBIDDEN || first.GetStatus().GetMessage() != "No default permission for group:GroupB" {
		t.Fatalf("receive, other group: %v %v", first, err)
	}
	if _, err := rs.Recv(); status.Code(err) != codes.PermissionDenied || errors.Is(err, io.EOF) {
		t.Fatalf("receive, then: %v", err)
	}
}
