package e2e

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The HTTP gateway with aclEnable, against a real mqbroker and net/http:
// the gRPC port's MQv2-HMAC-SHA1 header, HTTP Basic over TLS only, PUB/SUB
// as on the other ports, the global white list, and acl.log.

// gwACLRules: the ACL test plan's accounts, and 127.0.0.2 globally
// white-listed (the test dials from it; Linux routes all of 127/8 to lo).
const gwACLRules = `globalWhiteRemoteAddresses:
- 127.0.0.2
` + aclRulesHead + aclRulesTail

// signedPost posts body to the gateway with the given headers; it returns
// the status and the JSON answer.
func signedPost(t *testing.T, hc *http.Client, url string, hdr map[string]string, body string) (int, apiErr, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var e apiErr
	if !json.Valid(b) || json.Unmarshal(b, &e) != nil {
		t.Fatalf("POST %s: answer %d is not JSON: %q", url, resp.StatusCode, b)
	}
	return resp.StatusCode, e, b
}

// mqv2 is the header pair a RocketMQ 5 client sends (and the README's
// openssl line computes): HMAC-SHA1 of the date-time under the secret, hex.
func mqv2(ak, sk string) map[string]string {
	dt := time.Now().Format("20060102T150405Z")
	m := hmac.New(sha1.New, []byte(sk))
	m.Write([]byte(dt))
	return map[string]string{
		"x-mq-date-time": dt,
		"authorization":  "MQv2-HMAC-SHA1 Credential=" + ak + ", SignedHeaders=x-mq-date-time, Signature=" + hex.EncodeToString(m.Sum(nil)),
	}
}

func TestHTTPGatewayACL(t *testing.T) {
	c := startACLCluster(t, gwACLRules, "enableHttpGateway=true")
	g := gatewayOf(t, c.broker)
	aclCreateTopic(t, c, "TopicA")
	aclCreateTopic(t, c, "TopicB")
	waitFor(t, 10*time.Second, "the INFO that the gateway is authenticated", func() bool {
		return strings.Contains(c.broker.out.String(), "[ACL] the HTTP gateway (enableHttpGateway) is authenticated")
	})
	if strings.Contains(c.broker.out.String(), "is not checked") {
		t.Fatal("the broker still warns that the HTTP gateway is not checked")
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	sendA, sendB := g.base+"/v1/topics/TopicA/messages", g.base+"/v1/topics/TopicB/messages"
	receiveA := g.base + "/v1/groups/GroupA/topics/TopicA/receive"

	refused := []struct {
		name   string
		url    string
		hdr    map[string]string
		status int
		msg    string
	}{
		{"unsigned", sendA, nil, 401, "No accessKey is configured"},
		{"wrong secret", sendA, mqv2("producerA", "wrong-secret"), 401, "Check signature failed for accessKey=producerA"},
		{"unknown account", sendA, mqv2("nobodyXX", "whatever"), 401, "No acl config for nobodyXX"},
		{"malformed", sendA, map[string]string{"authorization": "MQv2-HMAC-SHA1 Credential=producerA, Signature=zz"}, 401, "not a hex HMAC"},
		{"no PUB on TopicB", sendB, mqv2("producerA", "secretProdA"), 403, "No default permission for topic:TopicB"},
		{"consumer cannot send", sendA, mqv2("consumerA", "secretConsA"), 403, "topic:TopicA"},
		{"producer cannot receive", receiveA, mqv2("producerA", "secretProdA"), 403, "topic:TopicA"},
		{"Basic over plain HTTP", sendA, map[string]string{"authorization": "Basic cHJvZHVjZXJBOnNlY3JldFByb2RB"}, 401, "accepted over TLS only"},
	}
	for _, r := range refused {
		st, e, raw := signedPost(t, hc, r.url, r.hdr, `{"body":"refused"}`)
		wantCode := map[int]string{401: "UNAUTHORIZED", 403: "FORBIDDEN"}[r.status]
		if st != r.status || e.CodeName != wantCode || e.Code/100 != r.status || !strings.Contains(e.Message, r.msg) {
			t.Errorf("%s: %d %s, want %d %s with %q", r.name, st, raw, r.status, wantCode, r.msg)
		}
	}

	// The good account sends; the consumer account receives it, and
	// nothing refused was stored.
	st, _, raw := signedPost(t, hc, sendA, mqv2("producerA", "secretProdA"), `{"body":"signed hello"}`)
	if st != http.StatusCreated {
		t.Fatalf("signed send: %d %s", st, raw)
	}
	var sent sendAnswer
	_ = json.Unmarshal(raw, &sent)
	got := receiveSigned(t, hc, receiveA, mqv2("consumerA", "secretConsA"), 1)
	if got[sent.MessageID] != "signed hello" || len(got) != 1 {
		t.Fatalf("received %v, want only %s", got, sent.MessageID)
	}

	// The README's shell example: openssl computes the signature, curl sends.
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatalf("openssl is needed to check the README's example: %v", err)
	}
	script := `DT=$(date +%Y%m%dT%H%M%SZ)
SIG=$(printf %s "$DT" | openssl dgst -sha1 -hmac "$SK" | sed 's/^.*= //')
curl -sS -X POST "$GW/v1/topics/TopicA/messages" \
  -H "x-mq-date-time: $DT" \
  -H "authorization: MQv2-HMAC-SHA1 Credential=$AK, SignedHeaders=x-mq-date-time, Signature=$SIG" \
  -H 'Content-Type: application/json' -d '{"body":"from curl"}'
curl -sS -k -u "$AK:$SK" -X POST "$TLSGW/v1/topics/TopicA/messages" -d '{"body":"curl basic"}'`
	tlsBase := strings.Replace(g.base, "http://", "https://", 1)
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(cmd.Environ(), "GW="+g.base, "TLSGW="+tlsBase, "AK=producerA", "SK=secretProdA")
	out, err := cmd.CombinedOutput()
	var curlSent, curlBasic sendAnswer
	dec := json.NewDecoder(strings.NewReader(string(out)))
	if err != nil || dec.Decode(&curlSent) != nil || curlSent.MessageID == "" || dec.Decode(&curlBasic) != nil || curlBasic.MessageID == "" {
		t.Fatalf("curl + openssl send, curl -u over TLS: %v: %s", err, out)
	}

	// Basic over TLS: the broker's port is permissive with its self-signed
	// certificate, so https:// reaches the same gateway.
	https := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, _ := http.NewRequest(http.MethodPost, tlsBase+"/v1/topics/TopicA/messages", strings.NewReader(`{"body":"basic over tls"}`))
	req.SetBasicAuth("producerA", "secretProdA")
	resp, err := https.Do(req)
	if err != nil {
		t.Fatalf("Basic over TLS: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.TLS == nil {
		t.Fatalf("Basic over TLS: %d %s", resp.StatusCode, b)
	}
	req, _ = http.NewRequest(http.MethodPost, tlsBase+"/v1/topics/TopicA/messages", strings.NewReader(`{"body":"refused"}`))
	req.SetBasicAuth("producerA", "wrong-secret")
	resp, err = https.Do(req)
	if err != nil {
		t.Fatalf("Basic over TLS, wrong secret: %v", err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "Check secret key failed for accessKey=producerA") ||
		!strings.Contains(strings.Join(resp.Header.Values("WWW-Authenticate"), ";"), "Basic") {
		t.Fatalf("Basic over TLS, wrong secret: %d %v %s", resp.StatusCode, resp.Header, b)
	}

	// A globally white-listed address needs no credentials, as on the
	// remoting and gRPC ports.
	white := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	if st, _, raw := signedPost(t, white, sendB, nil, `{"body":"white listed"}`); st != http.StatusCreated {
		t.Fatalf("unsigned send from the white-listed 127.0.0.2: %d %s", st, raw)
	}

	got = receiveSigned(t, hc, receiveA, mqv2("consumerA", "secretConsA"), 3)
	if len(got) != 3 || got[curlSent.MessageID] != "from curl" || got[curlBasic.MessageID] != "curl basic" {
		t.Fatalf("after curl and Basic sends received %v", got)
	}

	// Refusals like the remoting port's: identical ones (account, address,
	// request, reason) fold into one line per 10 s.
	waitFor(t, 10*time.Second, "acl.log names the refused HTTP requests", func() bool {
		l := aclLogText(t, c.aclLog)
		return strings.Contains(l, `http="POST /v1/topics/{topic}/messages"`) && strings.Contains(l, "Check signature failed for accessKey=producerA") &&
			strings.Contains(l, "resource=topic:TopicB need=PUB") && strings.Contains(l, `receive" ak=producerA`)
	})
}

// receiveSigned receives from the gateway until n messages came, acking
// each; it returns id → body.
func receiveSigned(t *testing.T, hc *http.Client, url string, hdr map[string]string, n int) map[string]string {
	t.Helper()
	got := map[string]string{}
	ackURL := strings.TrimSuffix(url, "/receive") + "/ack"
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		st, _, raw := signedPost(t, hc, url, hdr, `{"max":16,"waitMs":2000,"invisibleMs":60000}`)
		if st != http.StatusOK {
			t.Fatalf("signed receive: %d %s", st, raw)
		}
		var a struct {
			Messages []gwMessage `json:"messages"`
		}
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatal(err)
		}
		for _, m := range a.Messages {
			got[m.MessageID] = m.body()
			ack, _ := json.Marshal(map[string]any{"receiptHandles": []string{m.ReceiptHandle}})
			if st, _, raw := signedPost(t, hc, ackURL, hdr, string(ack)); st != http.StatusOK {
				t.Fatalf("signed ack: %d %s", st, raw)
			}
		}
	}
	if len(got) < n {
		t.Fatalf("received %d of %d messages", len(got), n)
	}
	return got
}
