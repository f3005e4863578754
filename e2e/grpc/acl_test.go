package grpc

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
	"github.com/apache/rocketmq-clients/golang/v5/credentials"
	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
)

const grpcACLRules = `accounts:
- accessKey: producerA
  secretKey: secretProdA
  topicPerms:
  - TopicA=PUB
- accessKey: consumerA
  secretKey: secretConsA
  topicPerms:
  - TopicA=SUB
  groupPerms:
  - GroupA=SUB
- accessKey: adminXX1
  secretKey: secretAdmX
  admin: true
- accessKey: producerQ
  secretKey: secretProdQ
  topicPerms:
  - TopicA=PUB
  produceTps: 1
`

// startACLBroker runs a name server and a gRPC broker with aclEnable and
// grpcACLRules (and the HTTP gateway on); it returns the cluster and the
// broker's acl.log path.
func startACLBroker(t *testing.T) (*cluster, string) {
	t.Helper()
	rules := filepath.Join(t.TempDir(), "plain_acl.yml")
	if err := os.WriteFile(rules, []byte(grpcACLRules), 0o600); err != nil {
		t.Fatal(err)
	}
	ns := startNamesrv(t)
	dir := t.TempDir()
	kv := append([]string{"aclEnable=true", "aclFile=" + rules, "enableHttpGateway=true",
		`innerClientAuthenticationCredentials={"accessKey":"adminXX1","secretKey":"secretAdmX"}`}, popKV...)
	br, ga := startGRPCBroker(t, ns.addr, dir, kv...)
	return &cluster{ns: ns, broker: br, grpcAddr: ga}, filepath.Join(dir, "logs", "acl.log")
}

func aclCreateTopicAsAdmin(t *testing.T, c *cluster, topic string) {
	t.Helper()
	if out, err := mqadmin(t, c, "updateTopic", "-b", c.broker.addr, "-t", topic, "-r", "2", "-w", "2",
		"--access-key", "adminXX1", "--secret-key", "secretAdmX"); err != nil {
		t.Fatalf("mqadmin updateTopic as admin: %v\n%s", err, out)
	}
}

func v5ProducerAs(t *testing.T, c *cluster, ak, sk string, topics ...string) rmq.Producer {
	t.Helper()
	p, err := rmq.NewProducer(&rmq.Config{Endpoint: c.grpcAddr, Credentials: &credentials.SessionCredentials{AccessKey: ak, AccessSecret: sk}},
		rmq.WithTopics(topics...))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("start the v5 producer as %s: %v", ak, err)
	}
	t.Cleanup(func() { _ = p.GracefulStop() })
	return p
}

// TestV5ACL: with aclEnable the gRPC port checks the official v5.1.2
// client's per-call credentials: a producer with PUB sends, a wrong
// secret is UNAUTHORIZED, a topic without PUB is FORBIDDEN (neither
// stored), and a SimpleConsumer with SUB on topic and group receives
// exactly what was sent. Refusals are written to acl.log.
func TestV5ACL(t *testing.T) {
	c, aclLog := startACLBroker(t)
	// The HTTP gateway is checked as well, and the broker says so (after
	// it has started, so possibly after the harness saw it up).
	const info = "[ACL] the HTTP gateway (enableHttpGateway) is authenticated"
	waitFor(t, 30*time.Second, "the INFO that the HTTP gateway is authenticated", func() bool { return strings.Contains(c.broker.out.String(), info) })
	aclCreateTopicAsAdmin(t, c, "TopicA")
	aclCreateTopicAsAdmin(t, c, "TopicB")

	ids := sendV5(t, v5ProducerAs(t, c, "producerA", "secretProdA", "TopicA"), "TopicA", 5, "TagA")

	bad := v5ProducerAs(t, c, "producerA", "wrong-secret")
	_, err := bad.Send(context.Background(), &rmq.Message{Topic: "TopicA", Body: []byte("refused")})
	if rpcCode(err) != int32(v2.Code_UNAUTHORIZED) || !strings.Contains(err.Error(), "Check signature failed for accessKey=producerA") {
		t.Fatalf("send with a wrong secret: %v", err)
	}
	good := v5ProducerAs(t, c, "producerA", "secretProdA")
	_, err = good.Send(context.Background(), &rmq.Message{Topic: "TopicB", Body: []byte("refused")})
	if rpcCode(err) != int32(v2.Code_FORBIDDEN) || !strings.Contains(err.Error(), "No default permission for topic:TopicB") {
		t.Fatalf("send without PUB: %v", err)
	}

	sc := newV5ConsumerAs(t, c.grpcAddr, "GroupA", "consumerA", "secretConsA", map[string]*rmq.FilterExpression{"TopicA": rmq.SUB_ALL})
	got := receiveUntil(t, sc, len(ids), 20*time.Second, 30*time.Second)
	for _, mv := range got {
		if ids[mv.GetMessageId()] != string(mv.GetBody()) {
			t.Fatalf("received %s %q, not one of the sent messages", mv.GetMessageId(), mv.GetBody())
		}
		if err := sc.Ack(context.Background(), mv); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	if len(got) != len(ids) {
		t.Fatalf("received %d messages, sent %d (refused sends must not be stored)", len(got), len(ids))
	}

	waitFor(t, 10*time.Second, "acl.log names the refused gRPC calls", func() bool {
		b, _ := os.ReadFile(aclLog)
		l := string(b)
		return strings.Contains(l, "grpc=/apache.rocketmq.v2.MessagingService/") && strings.Contains(l, "Check signature failed for accessKey=producerA") &&
			strings.Contains(l, "resource=topic:TopicB need=PUB")
	})
}

func newV5ConsumerAs(t *testing.T, grpcAddr, group, ak, sk string, subs map[string]*rmq.FilterExpression) rmq.SimpleConsumer {
	t.Helper()
	sc, err := rmq.NewSimpleConsumer(&rmq.Config{Endpoint: grpcAddr, ConsumerGroup: group, Credentials: &credentials.SessionCredentials{AccessKey: ak, AccessSecret: sk}},
		rmq.WithAwaitDuration(2*time.Second), rmq.WithSubscriptionExpressions(subs))
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Start(); err != nil {
		t.Fatalf("start the v5 simple consumer as %s: %v", ak, err)
	}
	t.Cleanup(func() { _ = sc.GracefulStop() })
	return sc
}

// TestV5AccountQuota: an ACL account's produce quota (produceTps: 1)
// holds on the gRPC port and the HTTP gateway as on the remoting port.
// The official v5.1.2 producer signed as producerQ gets
// TOO_MANY_REQUESTS [ACCOUNT_QUOTA] naming the account, an HTTP send
// signed as producerQ gets 429 with the same remark, producerA (no quota)
// keeps sending to the same topic, and the broker's runtime info counts
// the refusals for producerQ.
func TestV5AccountQuota(t *testing.T) {
	c, _ := startACLBroker(t)
	aclCreateTopicAsAdmin(t, c, "TopicA")
	const remark = "[ACCOUNT_QUOTA]accessKey producerQ exceeds produce quota on "

	// One token a second and at most 500 ms of delay: a send right after
	// the one that took the token is refused (a slow machine may let a
	// token refill between two sends; the loop only needs one refusal).
	q := v5ProducerAs(t, c, "producerQ", "secretProdQ", "TopicA")
	var err error
	for i := 0; i < 50 && err == nil; i++ {
		_, err = q.Send(context.Background(), &rmq.Message{Topic: "TopicA", Body: []byte("quota")})
	}
	if rpcCode(err) != int32(v2.Code_TOO_MANY_REQUESTS) || !strings.Contains(err.Error(), remark) {
		t.Fatalf("v5 sends as producerQ at 1 msg/s: %v; want TOO_MANY_REQUESTS %q", err, remark)
	}
	sendV5(t, v5ProducerAs(t, c, "producerA", "secretProdA", "TopicA"), "TopicA", 10, "TagA")

	var gw string
	waitFor(t, 10*time.Second, "the broker's HTTP gateway address line", func() bool {
		m := httpGatewayLine.FindStringSubmatch(c.broker.out.String())
		if m != nil {
			gw = "http://" + m[1]
		}
		return m != nil
	})
	post := func(ak, sk string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, gw+"/v1/topics/TopicA/messages", strings.NewReader(`{"body":"quota"}`))
		if err != nil {
			t.Fatal(err)
		}
		dt := time.Now().Format("20060102T150405Z")
		mac := hmac.New(sha1.New, []byte(sk))
		mac.Write([]byte(dt))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("x-mq-date-time", dt)
		req.Header.Set("authorization", "MQv2-HMAC-SHA1 Credential="+ak+", SignedHeaders=x-mq-date-time, Signature="+hex.EncodeToString(mac.Sum(nil)))
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("POST as %s: %v", ak, err)
		}
		defer resp.Body.Close()
		var e struct {
			Message string `json:"message"`
		}
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("POST as %s: answer %d is not JSON: %q", ak, resp.StatusCode, b)
		}
		return resp.StatusCode, e.Message
	}
	code, msg := http.StatusCreated, ""
	for i := 0; i < 50 && code == http.StatusCreated; i++ {
		code, msg = post("producerQ", "secretProdQ")
	}
	if code != http.StatusTooManyRequests || !strings.Contains(msg, remark) {
		t.Fatalf("HTTP sends as producerQ at 1 msg/s: %d %q; want 429 %q", code, msg, remark)
	}
	for range 10 {
		if code, msg := post("producerA", "secretProdA"); code != http.StatusCreated {
			t.Fatalf("HTTP send as producerA (no quota): %d %q", code, msg)
		}
	}

	out, err := mqadmin(t, c, "brokerStatus", "-b", c.broker.addr, "--access-key", "adminXX1", "--secret-key", "secretAdmX")
	if err != nil {
		t.Fatalf("mqadmin brokerStatus: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`accountQuotaRejectedTotal_producerQ\s*:?\s*(\d+)`).FindStringSubmatch(out)
	if m == nil || m[1] == "0" || m[1] == "1" {
		t.Fatalf("runtime info counts %v refusals for producerQ, want at least 2 (one gRPC, one HTTP):\n%s", m, out)
	}
}
