package httpgw

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"

	"github.com/mqops/mqops/broker/grpcsvc"
	"github.com/mqops/mqops/wire"
)

// recorder is a Backend that keeps what the handlers hand it; the real
// broker behind the gateway is exercised by the e2e tests (e2e/httpgw_test.go).
type recorder struct {
	sent      []*grpcsvc.Message
	topicType string
	receives  []*grpcsvc.PopRequest
}

func (r *recorder) Send(m *grpcsvc.Message) grpcsvc.SendResult {
	r.sent = append(r.sent, m)
	return grpcsvc.SendResult{Code: wire.Success, QueueID: 1, QueueOffset: 7}
}
func (r *recorder) TopicMessageType(string) string { return r.topicType }
func (r *recorder) Receive(_ context.Context, pr *grpcsvc.PopRequest) ([]grpcsvc.Delivery, *grpcsvc.PopError) {
	r.receives = append(r.receives, pr)
	return nil, nil
}
func (r *recorder) Ack(string, string, string) *grpcsvc.PopError {
	return &grpcsvc.PopError{Code: grpcsvc.PopBadHandle, Msg: "receipt handle is expired"}
}
func (r *recorder) ChangeInvisible(string, string, string, time.Duration) (string, *grpcsvc.PopError) {
	return "", &grpcsvc.PopError{Code: grpcsvc.PopBadHandle, Msg: "receipt handle is expired"}
}

func newTestServer(t testing.TB, be Backend) (*Server, http.Handler) {
	t.Helper()
	s, err := Listen(Config{Addr: "127.0.0.1:0", MaxMessageSize: 64, MaxDelay: time.Hour}, be)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.lis.Close() })
	return s, s.handler()
}

func do(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = "10.1.2.3:4567"
	h.ServeHTTP(w, req)
	return w
}

// TestSendStoresProxyProperties: an HTTP send is stored as Java's proxy
// stores a 5.x send (SendMessageActivity.buildMessageProperty).
func TestSendStoresProxyProperties(t *testing.T) {
	be := &recorder{topicType: wire.MessageTypeMixed}
	_, h := newTestServer(t, be)
	w := do(h, "POST", "/v1/topics/T1/messages", `{"body":"hi","tag":"A","keys":["k1","k2"],"properties":{"p":"v"},"messageGroup":"g1"}`)
	if w.Code != http.StatusCreated {
		t.Fatalf("send: %d %s", w.Code, w.Body)
	}
	var ans sendResponse
	if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil || ans.QueueID != 1 || ans.Offset != 7 {
		t.Fatalf("answer %s: %v", w.Body, err)
	}
	if !regexp.MustCompile(`^01[0-9A-F]{32}$`).MatchString(ans.MessageID) {
		t.Fatalf("made id %q is not a 5.x v1 message id", ans.MessageID)
	}
	m := be.sent[0]
	props := wire.ParseProperties(m.Properties)
	want := map[string]string{
		"TAGS": "A", "KEYS": "k1 k2", "p": "v", "__SHARDINGKEY": "g1", "UNIQ_KEY": ans.MessageID, "PGROUP": "T1", "__BORNHOST": "10.1.2.3",
	}
	if len(props) != len(want) {
		t.Fatalf("properties %v, want %v", props, want)
	}
	for k, v := range want {
		if props[k] != v {
			t.Fatalf("property %s = %q, want %q (all: %v)", k, props[k], v, props)
		}
	}
	if m.Topic != "T1" || string(m.Body) != "hi" || m.MessageGroup != "g1" || wire.HostString(m.BornHost) != "10.1.2.3:4567" || m.BornTimestamp == 0 {
		t.Fatalf("message %+v", m)
	}

	// DELAY: delayMs becomes TIMER_DELIVER_MS, which the timer serves.
	before := time.Now().UnixMilli()
	if w := do(h, "POST", "/v1/topics/T1/messages", `{"bodyBase64":"AAE=","delayMs":5000}`); w.Code != http.StatusCreated {
		t.Fatalf("delay send: %d %s", w.Code, w.Body)
	}
	m = be.sent[1]
	at, err := strconv.ParseInt(wire.ParseProperties(m.Properties)[wire.PropTimerDeliverMs], 10, 64)
	if string(m.Body) != "\x00\x01" || err != nil || at < before+5000 || at > time.Now().UnixMilli()+5000 {
		t.Fatalf("delay message %+v, deliver at %d (%v)", m, at, err)
	}
}

// TestTypeCheck: the topic's message.type decides, as for gRPC sends.
func TestTypeCheck(t *testing.T) {
	cases := []struct {
		topicType, body string
		ok              bool
	}{
		{wire.MessageTypeNormal, `{"body":"a"}`, true},
		{wire.MessageTypeNormal, `{"body":"a","messageGroup":"g"}`, false},
		{wire.MessageTypeFIFO, `{"body":"a","messageGroup":"g"}`, true},
		{wire.MessageTypeFIFO, `{"body":"a"}`, false},
		{wire.MessageTypeDelay, `{"body":"a","deliverAt":1}`, true},
		{wire.MessageTypeDelay, `{"body":"a"}`, false},
		{wire.MessageTypeTransaction, `{"body":"a"}`, false},
		{wire.MessageTypeMixed, `{"body":"a","delayMs":1}`, true},
		{"", `{"body":"a"}`, true}, // unknown topic: Send answers TOPIC_NOT_FOUND
	}
	for _, c := range cases {
		be := &recorder{topicType: c.topicType}
		_, h := newTestServer(t, be)
		w := do(h, "POST", "/v1/topics/T1/messages", c.body)
		if got := w.Code == http.StatusCreated; got != c.ok {
			t.Fatalf("topic %s, %s: %d %s", c.topicType, c.body, w.Code, w.Body)
		}
		if !c.ok && !strings.Contains(w.Body.String(), "MESSAGE_PROPERTY_CONFLICT_WITH_TYPE") {
			t.Fatalf("topic %s, %s: %s", c.topicType, c.body, w.Body)
		}
	}
}

// TestReceiveLimits: defaults and the gRPC service's limits.
func TestReceiveLimits(t *testing.T) {
	be := &recorder{}
	_, h := newTestServer(t, be)
	if w := do(h, "POST", "/v1/groups/G/topics/T/receive", ``); w.Code != http.StatusOK || w.Body.String() != "{\"messages\":[]}\n" {
		t.Fatalf("empty receive: %d %q", w.Code, w.Body)
	}
	pr := be.receives[0]
	if pr.Batch != defaultBatch || pr.Invisible != defaultInvisible || pr.Wait != 0 || pr.Filter != "*" || pr.FilterType != "TAG" || pr.AutoRenew {
		t.Fatalf("defaults %+v", pr)
	}
	do(h, "POST", "/v1/groups/G/topics/T/receive", `{"max":32,"invisibleMs":10000,"waitMs":20000,"filter":"a||b"}`)
	pr = be.receives[1]
	if pr.Batch != 32 || pr.Invisible != 10*time.Second || pr.Wait != 20*time.Second || pr.Filter != "a||b" {
		t.Fatalf("explicit %+v", pr)
	}
	for body, code := range map[string]v2.Code{
		`{"max":33}`:             v2.Code_BAD_REQUEST,
		`{"waitMs":20001}`:       v2.Code_ILLEGAL_POLLING_TIME,
		`{"invisibleMs":9999}`:   v2.Code_ILLEGAL_INVISIBLE_TIME,
		`{"filterType":"SQL92"}`: v2.Code_ILLEGAL_FILTER_EXPRESSION,
	} {
		w := do(h, "POST", "/v1/groups/G/topics/T/receive", body)
		var e errorBody
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code != int(code) || w.Code != int(code)/100 {
			t.Fatalf("%s: %d %s", body, w.Code, w.Body)
		}
	}
	if len(be.receives) != 2 {
		t.Fatalf("refused receives reached the backend: %d", len(be.receives))
	}
}

func TestHTTPStatus(t *testing.T) {
	for code, want := range map[v2.Code]int{
		v2.Code_OK: 200, v2.Code_BAD_REQUEST: 400, v2.Code_INVALID_RECEIPT_HANDLE: 400, v2.Code_UNAUTHORIZED: 401,
		v2.Code_FORBIDDEN: 403, v2.Code_TOPIC_NOT_FOUND: 404, v2.Code_PAYLOAD_TOO_LARGE: 413, v2.Code_MESSAGE_BODY_TOO_LARGE: 413,
		v2.Code_TOO_MANY_REQUESTS: 429, v2.Code_INTERNAL_SERVER_ERROR: 500, v2.Code_NOT_IMPLEMENTED: 501,
		v2.Code_MASTER_PERSISTENCE_TIMEOUT: 504, v2.Code_MULTIPLE_RESULTS: 500, v2.Code_CODE_UNSPECIFIED: 500,
	} {
		if got := httpStatus(code); got != want {
			t.Errorf("httpStatus(%s) = %d, want %d", code, got, want)
		}
	}
}

// TestPanicIsA500: a handler panic answers 500 in JSON and the server
// goes on.
func TestPanicIsA500(t *testing.T) {
	s, _ := newTestServer(t, &recorder{})
	h := s.guard(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	w := do(h, "POST", "/", "")
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), `"codeName":"INTERNAL_ERROR"`) {
		t.Fatalf("panic: %d %s", w.Code, w.Body)
	}
}

// FuzzHandlers: no input makes a handler panic or answer 5xx.
func FuzzHandlers(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"body":"x"}`, `{"bodyBase64":"AA=="}`, `{"receiptHandles":["v1 1 2 0 b 0 0 0"]}`,
		`{"receiptHandle":"x","invisibleMs":0}`, `{"max":1,"waitMs":1}`, `{"body":"a","deliverAt":9223372036854775807}`,
		`{"body":"a","delayMs":9223372036854775807}`, `{"properties":{"":""}}`, `[]`, `null`, `{"keys":null}`} {
		for i := range 4 {
			f.Add(i, s)
		}
	}
	_, h := newTestServer(f, &recorder{topicType: wire.MessageTypeNormal})
	f.Fuzz(func(t *testing.T, i int, body string) {
		paths := []string{"/v1/topics/T/messages", "/v1/groups/G/topics/T/receive", "/v1/groups/G/topics/T/ack", "/v1/groups/G/topics/T/invisible"}
		w := do(h, "POST", paths[uint(i)%4], body)
		if w.Code >= 500 || !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%q: %d %s", body, w.Code, w.Body)
		}
	})
}

func TestIsText(t *testing.T) {
	for s, want := range map[string]bool{
		"": true, "hello": true, "héllo wörld ✓": true, "a\tb\r\nc": true,
		"\x00\x01\x02\x03": false, "a\x1bb": false, "\xff": false, "\xe2\x82": false, "a\u0085": false,
	} {
		if got := isText([]byte(s)); got != want {
			t.Errorf("isText(%q) = %v, want %v", s, got, want)
		}
	}
}
