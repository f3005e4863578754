package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The HTTP/JSON gateway (broker/httpgw) driven by net/http against real
// daemons: a send, receive, ack, invisible round trip, bad input that gets
// clear 4xx answers and loses nothing, and long polling.

var httpGatewayLine = regexp.MustCompile(`The broker's HTTP/JSON gateway listens on (\S+)`)

// gateway is an HTTP client of one broker's gateway.
type gateway struct {
	t    *testing.T
	base string
	hc   *http.Client
}

// startGatewayCluster starts a name server and a broker with the gateway
// on a free port (the harness passes httpGatewayPort=0).
func startGatewayCluster(t *testing.T, extra ...string) (*cluster, *gateway) {
	t.Helper()
	c := startCluster(t, append([]string{"enableHttpGateway=true"}, extra...)...)
	return c, gatewayOf(t, c.broker)
}

// gatewayOf finds the gateway address a broker printed.
func gatewayOf(t *testing.T, broker *proc) *gateway {
	t.Helper()
	// Printed before the ready line, but it may reach out just after it.
	var m []string
	waitFor(t, 10*time.Second, "the broker's HTTP gateway address line", func() bool {
		m = httpGatewayLine.FindStringSubmatch(broker.out.String())
		return m != nil
	})
	return &gateway{t: t, base: "http://" + m[1], hc: &http.Client{Timeout: 30 * time.Second}}
}

// apiErr is the gateway's error body (and the top of an ack answer).
type apiErr struct {
	Code      int    `json:"code"`
	CodeName  string `json:"codeName"`
	Message   string `json:"message"`
	MessageID string `json:"messageId"`
}

type sendAnswer struct {
	MessageID string `json:"messageId"`
	QueueID   int32  `json:"queueId"`
	Offset    int64  `json:"offset"`
}

type gwMessage struct {
	MessageID       string            `json:"messageId"`
	Topic           string            `json:"topic"`
	Body            *string           `json:"body"`
	BodyBase64      []byte            `json:"bodyBase64"`
	Tag             string            `json:"tag"`
	Keys            []string          `json:"keys"`
	Properties      map[string]string `json:"properties"`
	MessageGroup    string            `json:"messageGroup"`
	ReceiptHandle   string            `json:"receiptHandle"`
	DeliveryAttempt int32             `json:"deliveryAttempt"`
	QueueID         int32             `json:"queueId"`
	Offset          int64             `json:"offset"`
}

func (m gwMessage) body() string {
	if m.Body != nil {
		return *m.Body
	}
	return string(m.BodyBase64)
}

type ackAnswer struct {
	apiErr
	Results []struct {
		ReceiptHandle string `json:"receiptHandle"`
		Code          int    `json:"code"`
		CodeName      string `json:"codeName"`
	} `json:"results"`
}

// raw posts body as is (nil: no body) and returns the status and the
// answer, which must be JSON.
func (g *gateway) raw(ctx context.Context, method, path string, body []byte) (int, []byte) {
	g.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.base+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.hc.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatalf("%s %s: read the answer: %v", method, path, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" || !json.Valid(out) {
		g.t.Fatalf("%s %s: answer %d is not JSON (%s): %q", method, path, resp.StatusCode, ct, out)
	}
	return resp.StatusCode, out
}

// post sends v as JSON and decodes the answer into out (if not nil).
func (g *gateway) post(path string, v any, out any) int {
	g.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		g.t.Fatal(err)
	}
	status, ans := g.raw(context.Background(), http.MethodPost, path, b)
	if out != nil {
		if err := json.Unmarshal(ans, out); err != nil {
			g.t.Fatalf("POST %s: decode %q: %v", path, ans, err)
		}
	}
	return status
}

// wantErr posts and expects an error answer with this status and code.
func (g *gateway) wantErr(path string, body []byte, status int, codeName string) apiErr {
	g.t.Helper()
	got, ans := g.raw(context.Background(), http.MethodPost, path, body)
	var e apiErr
	if err := json.Unmarshal(ans, &e); err != nil {
		g.t.Fatalf("POST %s %.80q: decode %q: %v", path, body, ans, err)
	}
	if got != status || e.CodeName != codeName || e.Message == "" || e.Code/100 != status && status != http.StatusMethodNotAllowed {
		g.t.Fatalf("POST %s %.80q: got %d %s, want %d %s: %s", path, body, got, ans, status, codeName, e.Message)
	}
	return e
}

func (g *gateway) send(topic string, v any) sendAnswer {
	g.t.Helper()
	var a sendAnswer
	if st := g.post("/v1/topics/"+topic+"/messages", v, &a); st != http.StatusCreated || a.MessageID == "" {
		g.t.Fatalf("send to %s: %d %+v", topic, st, a)
	}
	return a
}

func (g *gateway) receive(group, topic string, v any) []gwMessage {
	g.t.Helper()
	var a struct {
		Messages []gwMessage `json:"messages"`
	}
	if st := g.post("/v1/groups/"+group+"/topics/"+topic+"/receive", v, &a); st != http.StatusOK || a.Messages == nil {
		g.t.Fatalf("receive %s/%s: %d %+v", group, topic, st, a)
	}
	return a.Messages
}

func (g *gateway) ack(group, topic string, handles ...string) (int, ackAnswer) {
	g.t.Helper()
	var a ackAnswer
	st := g.post("/v1/groups/"+group+"/topics/"+topic+"/ack", map[string]any{"receiptHandles": handles}, &a)
	return st, a
}

// receiveUntil receives (acking nothing) until want has n entries or
// the timeout passes; keep decides what to collect.
func (g *gateway) receiveUntil(group, topic string, n int, timeout time.Duration, keep func(gwMessage) bool) map[string]gwMessage {
	g.t.Helper()
	got := map[string]gwMessage{}
	deadline := time.Now().Add(timeout)
	for len(got) < n && time.Now().Before(deadline) {
		for _, m := range g.receive(group, topic, map[string]any{"max": 32, "waitMs": 2000, "invisibleMs": 60000}) {
			if keep == nil || keep(m) {
				got[m.MessageID] = m
			}
		}
	}
	if len(got) < n {
		g.t.Fatalf("received %d of %d messages of %s in %v", len(got), n, topic, timeout)
	}
	return got
}

func TestHTTPGatewayRoundTrip(t *testing.T) {
	c, g := startGatewayCluster(t)
	const topic, group = "HttpRoundTrip", "HttpRoundTripG"
	createTopic(t, c, topic, 4)

	// Text and binary bodies, tag, keys, properties; ids given and made.
	type sent struct {
		body  string
		tag   string
		props map[string]string
	}
	want := map[string]sent{}
	for i := range 20 {
		req := map[string]any{"keys": []string{fmt.Sprintf("k%d", i), "shared"}, "properties": map[string]string{"n": fmt.Sprint(i)}}
		s := sent{tag: []string{"TagA", "TagB"}[i%2], props: map[string]string{"n": fmt.Sprint(i)}}
		req["tag"] = s.tag
		if i%3 == 0 {
			s.body = string([]byte{0xff, 0x00, byte(i), 0xfe}) // not UTF-8
			req["bodyBase64"] = base64.StdEncoding.EncodeToString([]byte(s.body))
		} else {
			s.body = fmt.Sprintf("héllo %d", i)
			req["body"] = s.body
		}
		if i == 5 {
			req["messageId"] = "my-own-id-5"
		}
		a := g.send(topic, req)
		if i == 5 && a.MessageID != "my-own-id-5" {
			t.Fatalf("message id given as my-own-id-5 came back as %q", a.MessageID)
		}
		if i != 5 && !regexp.MustCompile(`^01[0-9A-F]{32}$`).MatchString(a.MessageID) {
			t.Fatalf("made message id %q is not a 5.x v1 id", a.MessageID)
		}
		want[a.MessageID] = s
	}

	got := g.receiveUntil(group, topic, len(want), 30*time.Second, nil)
	for id, m := range got {
		s, ok := want[id]
		if !ok {
			t.Fatalf("received a message never sent: %+v", m)
		}
		if m.body() != s.body || m.Tag != s.tag || m.Properties["n"] != s.props["n"] || len(m.Properties) != 1 ||
			len(m.Keys) != 2 || m.Keys[1] != "shared" || m.Topic != topic || m.DeliveryAttempt != 1 || m.ReceiptHandle == "" {
			t.Fatalf("message %s came back as %+v, sent %+v", id, m, s)
		}
		if (m.Body == nil) != (s.body[0] == 0xff) {
			t.Fatalf("message %s: a UTF-8 body comes as body, another as bodyBase64: %+v", id, m)
		}
	}

	// Ack all but two in one request; one of the two is made visible
	// again at once, the other gets a longer lease and a new handle.
	var handles []string
	var again, moved gwMessage
	for _, m := range got {
		switch {
		case again.MessageID == "":
			again = m
		case moved.MessageID == "":
			moved = m
		default:
			handles = append(handles, m.ReceiptHandle)
		}
	}
	if st, a := g.ack(group, topic, handles...); st != http.StatusOK || a.CodeName != "OK" || len(a.Results) != len(handles) {
		t.Fatalf("ack of %d handles: %d %+v", len(handles), st, a)
	}
	var inv struct {
		ReceiptHandle string `json:"receiptHandle"`
	}
	if st := g.post("/v1/groups/"+group+"/topics/"+topic+"/invisible", map[string]any{"receiptHandle": again.ReceiptHandle, "invisibleMs": 0}, &inv); st != http.StatusOK || inv.ReceiptHandle == "" {
		t.Fatalf("invisible 0: %d %+v", st, inv)
	}
	if st := g.post("/v1/groups/"+group+"/topics/"+topic+"/invisible", map[string]any{"receiptHandle": moved.ReceiptHandle, "invisibleMs": 120000}, &inv); st != http.StatusOK || inv.ReceiptHandle == "" {
		t.Fatalf("invisible 120 s: %d %+v", st, inv)
	}
	// The made-visible message comes back with its next attempt.
	back := g.receiveUntil(group, topic, 1, 30*time.Second, func(m gwMessage) bool { return m.MessageID == again.MessageID })[again.MessageID]
	if back.DeliveryAttempt != 2 || back.body() != want[again.MessageID].body || back.Topic != topic {
		t.Fatalf("redelivered message: %+v", back)
	}
	// The new handle of the moved lease acks; then the old one is spent.
	if st, a := g.ack(group, topic, inv.ReceiptHandle, back.ReceiptHandle); st != http.StatusOK {
		t.Fatalf("ack the moved lease's new handle and the redelivery: %d %+v", st, a)
	}
	if st, a := g.ack(group, topic, moved.ReceiptHandle); st != http.StatusBadRequest || a.CodeName != "INVALID_RECEIPT_HANDLE" {
		t.Fatalf("ack of an acked delivery's old handle: %d %+v", st, a)
	}
	// A handle acked once and a live one in one request: 207, per handle.
	for _, b := range []string{"x1", "x2"} {
		g.send(topic, map[string]any{"body": b})
	}
	two := g.receiveUntil(group, topic, 2, 30*time.Second, nil)
	var live []string
	for _, m := range two {
		live = append(live, m.ReceiptHandle)
	}
	if st, _ := g.ack(group, topic, live[0]); st != http.StatusOK {
		t.Fatalf("ack: %d", st)
	}
	st, a := g.ack(group, topic, live[0], live[1])
	if st != http.StatusMultiStatus || a.CodeName != "MULTIPLE_RESULTS" || a.Results[0].CodeName != "INVALID_RECEIPT_HANDLE" || a.Results[1].CodeName != "OK" {
		t.Fatalf("mixed ack: %d %+v", st, a)
	}

	// A tag filter: another group sees only TagA messages.
	tagA := 0
	for _, s := range want {
		if s.tag == "TagA" {
			tagA++
		}
	}
	filtered := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(filtered) < tagA && time.Now().Before(deadline) {
		for _, m := range g.receive("HttpTagFilterG", topic, map[string]any{"filter": "TagA", "waitMs": 1000}) {
			if m.Tag != "TagA" {
				t.Fatalf("filter TagA delivered %+v", m)
			}
			filtered[m.MessageID] = true
		}
	}
	if len(filtered) != tagA {
		t.Fatalf("filter TagA delivered %d of %d messages", len(filtered), tagA)
	}
}

// TestHTTPGatewayBadInput sends bad requests of every kind between good
// sends: each gets a clear 4xx in JSON, the broker stays up, and every
// good message is still received.
func TestHTTPGatewayBadInput(t *testing.T) {
	c, g := startGatewayCluster(t, "maxMessageSize=1024")
	const topic, group = "HttpBad", "HttpBadG"
	createTopic(t, c, topic, 2)
	const fifo = "HttpBadFifo"
	createTopic(t, c, fifo, 2)
	if r := runCLI(t, nil, "updateTopic", "-n", c.ns.addr, "-b", c.broker.addr, "-t", fifo, "-a", "+message.type=FIFO"); r.code != 0 {
		t.Fatalf("updateTopic: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	sent := map[string]bool{}
	good := func() {
		a := g.send(topic, map[string]any{"body": fmt.Sprintf("good %d", len(sent))})
		sent[a.MessageID] = true
	}
	msgs := "/v1/topics/" + topic + "/messages"
	recv := "/v1/groups/" + group + "/topics/" + topic + "/receive"
	ackP := "/v1/groups/" + group + "/topics/" + topic + "/ack"
	inv := "/v1/groups/" + group + "/topics/" + topic + "/invisible"
	cases := []struct {
		path, body string
		status     int
		code       string
	}{
		{msgs, `{"body":`, 400, "BAD_REQUEST"},
		{msgs, `not json`, 400, "BAD_REQUEST"},
		{msgs, `{"body":"a"} {"body":"b"}`, 400, "BAD_REQUEST"},
		{msgs, `{"body":"a","messageGruop":"g"}`, 400, "BAD_REQUEST"}, // misspelt: refused, not sent as NORMAL
		{msgs, `{"body":5}`, 400, "BAD_REQUEST"},
		{msgs, `{"bodyBase64":"!!!"}`, 400, "BAD_REQUEST"},
		{msgs, `{"body":"a","bodyBase64":"YQ=="}`, 400, "BAD_REQUEST"},
		{msgs, `{}`, 413, "MESSAGE_BODY_EMPTY"},
		{msgs, `{"body":"` + strings.Repeat("x", 1025) + `"}`, 413, "MESSAGE_BODY_TOO_LARGE"},
		{msgs, `{"body":"` + strings.Repeat("x", 100<<10) + `"}`, 413, "PAYLOAD_TOO_LARGE"},
		{msgs, `{"body":"a","tag":"a|b"}`, 400, "ILLEGAL_MESSAGE_TAG"},
		{msgs, `{"body":"a","keys":[" "]}`, 400, "ILLEGAL_MESSAGE_KEY"},
		{msgs, `{"body":"a","properties":{"UNIQ_KEY":"x"}}`, 400, "ILLEGAL_MESSAGE_PROPERTY_KEY"},
		{msgs, `{"body":"a","properties":{"p":"a\u0001b"}}`, 400, "BAD_REQUEST"},
		{msgs, `{"body":"a","messageId":"has space"}`, 400, "ILLEGAL_MESSAGE_ID"},
		{msgs, `{"body":"a","messageGroup":""}`, 400, "ILLEGAL_MESSAGE_GROUP"},
		{msgs, `{"body":"a","messageGroup":"g"}`, 400, "MESSAGE_PROPERTY_CONFLICT_WITH_TYPE"},            // NORMAL topic
		{"/v1/topics/" + fifo + "/messages", `{"body":"a"}`, 400, "MESSAGE_PROPERTY_CONFLICT_WITH_TYPE"}, // FIFO topic
		{msgs, `{"body":"a","messageGroup":"g","delayMs":5}`, 400, "BAD_REQUEST"},
		{msgs, `{"body":"a","delayMs":-1}`, 400, "ILLEGAL_DELIVERY_TIME"},
		{msgs, `{"body":"a","deliverAt":1,"delayMs":1}`, 400, "ILLEGAL_DELIVERY_TIME"},
		{msgs, `{"body":"a","delayMs":999999999999}`, 400, "ILLEGAL_DELIVERY_TIME"},
		{"/v1/topics/NoSuchTopic/messages", `{"body":"a"}`, 404, "TOPIC_NOT_FOUND"},
		{"/v1/topics/bad.topic/messages", `{"body":"a"}`, 400, "ILLEGAL_TOPIC"},
		{"/v1/groups/" + group + "/topics/NoSuchTopic/receive", `{}`, 404, "TOPIC_NOT_FOUND"},
		{"/v1/groups/bad.group/topics/" + topic + "/receive", `{}`, 400, "ILLEGAL_CONSUMER_GROUP"},
		{recv, `{"max":0}`, 400, "BAD_REQUEST"},
		{recv, `{"max":33}`, 400, "BAD_REQUEST"},
		{recv, `{"waitMs":20001}`, 400, "ILLEGAL_POLLING_TIME"},
		{recv, `{"waitMs":-1}`, 400, "ILLEGAL_POLLING_TIME"},
		{recv, `{"invisibleMs":5}`, 400, "ILLEGAL_INVISIBLE_TIME"},
		{recv, `{"invisibleMs":86400000}`, 400, "ILLEGAL_INVISIBLE_TIME"},
		{recv, `{"filter":"a","filterType":"REGEX"}`, 400, "ILLEGAL_FILTER_EXPRESSION"},
		{recv, `{"max":"many"}`, 400, "BAD_REQUEST"},
		{ackP, `{"receiptHandles":[]}`, 400, "BAD_REQUEST"},
		{ackP, `{"receiptHandles":["garbage"]}`, 400, "INVALID_RECEIPT_HANDLE"},
		{ackP, `{"receiptHandles":[""]}`, 400, "INVALID_RECEIPT_HANDLE"},
		{ackP, `{"receiptHandles":["v1 1 2 0 other-broker 0 0 0"]}`, 400, "INVALID_RECEIPT_HANDLE"},
		{ackP, `{"receiptHandles":["v1 1 2 0 broker-a 0 0 0"]}`, 400, "INVALID_RECEIPT_HANDLE"},
		{ackP, `{"receiptHandles":["v1 -1 2 7 broker-a 99999999999 0 0"]}`, 400, "INVALID_RECEIPT_HANDLE"},
		{inv, `{"receiptHandle":"garbage","invisibleMs":1000}`, 400, "INVALID_RECEIPT_HANDLE"},
		{inv, `{"receiptHandle":"garbage"}`, 400, "ILLEGAL_INVISIBLE_TIME"},
		{inv, `{"receiptHandle":"garbage","invisibleMs":-5}`, 400, "ILLEGAL_INVISIBLE_TIME"},
		{"/v1/nothing", `{}`, 404, "NOT_FOUND"},
	}
	for _, tc := range cases {
		good()
		g.wantErr(tc.path, []byte(tc.body), tc.status, tc.code)
	}
	// A wrong method is 405 with Allow: POST.
	if st, ans := g.raw(context.Background(), http.MethodGet, recv, nil); st != http.StatusMethodNotAllowed {
		t.Fatalf("GET receive: %d %s", st, ans)
	}

	// Handles of real deliveries, used wrongly: on another topic or group,
	// and after an ack.
	good()
	got := g.receiveUntil(group, topic, len(sent), 30*time.Second, nil)
	var some gwMessage
	for id, m := range got {
		if !sent[id] {
			t.Fatalf("received a message never sent: %+v", m)
		}
		some = m
	}
	g.wantErr("/v1/groups/OtherG/topics/"+topic+"/ack", []byte(`{"receiptHandles":["`+some.ReceiptHandle+`"]}`), 400, "INVALID_RECEIPT_HANDLE")
	g.wantErr("/v1/groups/"+group+"/topics/"+fifo+"/ack", []byte(`{"receiptHandles":["`+some.ReceiptHandle+`"]}`), 400, "INVALID_RECEIPT_HANDLE")
	for _, m := range got {
		if st, a := g.ack(group, topic, m.ReceiptHandle); st != http.StatusOK {
			t.Fatalf("ack %s: %d %+v", m.MessageID, st, a)
		}
	}
	g.wantErr(ackP, []byte(`{"receiptHandles":["`+some.ReceiptHandle+`"]}`), 400, "INVALID_RECEIPT_HANDLE")

	// Random bytes at every endpoint: always a JSON 4xx, never a crash.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 400 {
		b := make([]byte, 1+rng.IntN(64))
		for j := range b {
			b[j] = byte(rng.IntN(256))
		}
		if i%2 == 0 && len(b) > 2 {
			b[0], b[len(b)-1] = '{', '}'
		}
		path := []string{msgs, recv, ackP, inv}[i%4]
		st, ans := g.raw(context.Background(), http.MethodPost, path, b)
		// Blank input to receive is an empty request: a valid one.
		if (st < 400 || st >= 500) && !(path == recv && st == http.StatusOK) {
			t.Fatalf("POST %s %q: %d %s", path, b, st, ans)
		}
	}
	good()
	last := g.receiveUntil(group, topic, 1, 30*time.Second, nil)
	for id := range last {
		if !sent[id] {
			t.Fatalf("received a message never sent: %s", id)
		}
	}
	if out := c.broker.out.String(); strings.Contains(out, "[PANIC]") || strings.Contains(out, "panic:") {
		t.Fatalf("the broker panicked:\n%s", out)
	}
}

// TestHTTPGatewayLongPoll: a waiting receive returns when a message
// arrives, and a receive whose client went away takes nothing with it.
func TestHTTPGatewayLongPoll(t *testing.T) {
	c, g := startGatewayCluster(t)
	const topic, group = "HttpLongPoll", "HttpLongPollG"
	createTopic(t, c, topic, 2)
	if ms := g.receive(group, topic, map[string]any{}); len(ms) != 0 {
		t.Fatalf("empty topic delivered %+v", ms)
	}

	// A client that gives up after 15 s: only a receive woken by the
	// arrival answers in time (its wait is 20 s).
	type result struct {
		st  int
		ans []byte
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.base+"/v1/groups/"+group+"/topics/"+topic+"/receive", strings.NewReader(`{"waitMs":20000}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{0, []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, b}
	}()
	time.Sleep(time.Second) // let the receive start waiting; sending first is also correct
	a := g.send(topic, map[string]any{"body": "wake up"})
	r := <-done
	var ans struct{ Messages []gwMessage }
	if r.st != http.StatusOK || json.Unmarshal(r.ans, &ans) != nil || len(ans.Messages) != 1 || ans.Messages[0].MessageID != a.MessageID {
		t.Fatalf("waiting receive: %d %s", r.st, r.ans)
	}

	// A receive whose client cancels stops waiting: the next message goes
	// to the next receive, not to the abandoned one.
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.base+"/v1/groups/"+group+"/topics/"+topic+"/receive", strings.NewReader(`{"waitMs":20000,"invisibleMs":600000}`))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(time.Second)
	cancel()
	<-gone
	g.receive("HttpLongPollOther", topic, map[string]any{}) // one more round trip for the server to see it
	b := g.send(topic, map[string]any{"body": "for the live one"})
	// An abandoned receive still waiting would take it at its dispatch;
	// give it that chance before the live receive asks.
	time.Sleep(time.Second)
	got := g.receiveUntil(group, topic, 1, 15*time.Second, nil)
	if _, ok := got[b.MessageID]; !ok {
		t.Fatalf("the message went elsewhere: got %+v", got)
	}
}

// TestHTTPGatewayLeaseSurvivesRestart: a message received over HTTP and
// not acked stays leased across a clean restart, and its handle acks
// afterwards (the POP engine's popState.json serves HTTP receives too).
func TestHTTPGatewayLeaseSurvivesRestart(t *testing.T) {
	c, g := startGatewayCluster(t)
	const topic, group = "HttpRestart", "HttpRestartG"
	createTopic(t, c, topic, 2)
	a := g.send(topic, map[string]any{"body": "kept"})
	m := g.receiveUntil(group, topic, 1, 30*time.Second, nil)[a.MessageID]
	c.broker.stop()
	c.broker = restartBroker(t, c, "enableHttpGateway=true")
	g = gatewayOf(t, c.broker)
	if st, ans := g.ack(group, topic, m.ReceiptHandle); st != http.StatusOK || ans.CodeName != "OK" {
		t.Fatalf("ack after the restart: %d %+v", st, ans)
	}
	if st, ans := g.ack(group, topic, m.ReceiptHandle); st != http.StatusBadRequest || ans.CodeName != "INVALID_RECEIPT_HANDLE" {
		t.Fatalf("second ack after the restart: %d %+v", st, ans)
	}
}

// TestHTTPGatewayTypedMessages: a messageGroup makes a FIFO message that
// keeps its queue and comes back with its group; delayMs makes a DELAY
// message that the timer delivers later.
func TestHTTPGatewayTypedMessages(t *testing.T) {
	c, g := startGatewayCluster(t)
	const fifo, delay, group = "HttpFifo", "HttpDelay", "HttpTypedG"
	for topic, typ := range map[string]string{fifo: "FIFO", delay: "DELAY"} {
		createTopic(t, c, topic, 4)
		if r := runCLI(t, nil, "updateTopic", "-n", c.ns.addr, "-b", c.broker.addr, "-t", topic, "-a", "+message.type="+typ); r.code != 0 {
			t.Fatalf("updateTopic %s: exit %d\n%s%s", topic, r.code, r.stdout, r.stderr)
		}
	}
	queue := int32(-1)
	ids := map[string]bool{}
	for i := range 5 {
		a := g.send(fifo, map[string]any{"body": fmt.Sprint("step ", i), "messageGroup": "order-42"})
		if queue >= 0 && a.QueueID != queue {
			t.Fatalf("message group order-42 moved from queue %d to %d", queue, a.QueueID)
		}
		queue = a.QueueID
		ids[a.MessageID] = true
	}
	for id, m := range g.receiveUntil(group, fifo, len(ids), 30*time.Second, nil) {
		if !ids[id] || m.MessageGroup != "order-42" || m.QueueID != queue {
			t.Fatalf("FIFO message came back as %+v", m)
		}
	}
	d := g.send(delay, map[string]any{"body": "later", "delayMs": 1000})
	if m := g.receiveUntil(group, delay, 1, 30*time.Second, nil)[d.MessageID]; m.body() != "later" {
		t.Fatalf("DELAY message came back as %+v", m)
	}
}
