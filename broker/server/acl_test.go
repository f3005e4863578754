package server

import (
	"errors"
	"maps"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/mqops/mqops/broker/acl"
	"github.com/mqops/mqops/broker/grpcsvc"
	"github.com/mqops/mqops/wire"
)

// aclBroker starts an in-process broker whose requests pass the ACL gate
// with one account that may publish to BenchSend.
func aclBroker(tb testing.TB) *Broker {
	tb.Helper()
	b, _ := aclBrokerWith(tb, "", nil)
	return b
}

// aclBrokerWith is aclBroker with more keys for the bench account (a YAML
// fragment, e.g. its produce quota) and config overrides; it also returns
// the rules' watcher, which the test reloads itself.
func aclBrokerWith(tb testing.TB, account string, overrides map[string]string) (*Broker, *acl.Watcher) {
	tb.Helper()
	rules := filepath.Join(tb.TempDir(), "plain_acl.yml")
	yml := "accounts:\n- accessKey: benchProducer\n  secretKey: benchSecret\n  topicPerms: [BenchSend=PUB]\n" + account
	if err := os.WriteFile(rules, []byte(yml), 0o600); err != nil {
		tb.Fatal(err)
	}
	w, err := acl.Load(acl.Source{AclFile: rules}, acl.BrokerTable, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	o := map[string]string{"aclEnable": "true"}
	maps.Copy(o, overrides)
	return startBroker(tb, o, func(opt *Options) { opt.ACL = acl.NewGate(w.Checker(), nil) }), w
}

// signedSendFrame is sendFrame signed as the bench account.
func signedSendFrame(topic string, body []byte, secret string) []byte {
	req := sendRequest(topic, body)
	wire.Sign(req, "benchProducer", secret, "")
	return wire.AppendFrame(nil, req)
}

// BenchmarkSendACL is BenchmarkSendPipelined with ACL off and on (every
// frame signed and verified), in one run, so the two figures compare.
func BenchmarkSendACL(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			var br *Broker
			frame := sendFrame("BenchSend", make([]byte, 1024))
			if on {
				br = aclBroker(b)
				frame = signedSendFrame("BenchSend", make([]byte, 1024), "benchSecret")
			} else {
				br = startBroker(b, nil)
			}
			sendBench(b, br, frame)
		})
	}
}

// The gate sits before dispatch: a wrong signature, an unsigned frame and
// a topic without PUB are answered 16 with the reason, on a real socket.
func TestACLGateRefuses(t *testing.T) {
	br := aclBroker(t)
	conn, err := net.Dial("tcp", br.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	roundTrip(t, conn, signedSendFrame("BenchSend", []byte("ok"), "benchSecret"))
	for frame, remark := range map[string]string{
		string(signedSendFrame("BenchSend", []byte("x"), "wrongSecret")): "Check signature failed for accessKey=benchProducer",
		string(sendFrame("BenchSend", []byte("x"))):                      "No accessKey is configured",
		string(signedSendFrame("Other", []byte("x"), "benchSecret")):     "No default permission for topic:Other",
	} {
		if _, err := conn.Write([]byte(frame)); err != nil {
			t.Fatal(err)
		}
		var ce *codeError
		if err := drain(conn, 1, nil); !errors.As(err, &ce) || ce.code != wire.NoPermission || ce.remark != remark {
			t.Fatalf("got %v, want 16 %q", err, remark)
		}
	}
}

// TestSendPathAllocationsACL: with ACL on, the send path still allocates
// at most once per message (the verification itself allocates nothing).
func TestSendPathAllocationsACL(t *testing.T) {
	if raceOn {
		t.Skip("the verifier's HMAC states live in a sync.Pool, which drops items at random under -race")
	}
	atMostOneAlloc(t, "a message on the send path with ACL", func(b *testing.B) {
		sendBench(b, aclBroker(b), signedSendFrame("BenchSend", make([]byte, 1024), "benchSecret"))
	})
}

// TestAccountQuota: an account's produceTps holds on this broker: past
// its longest delay a send is answered SYSTEM_BUSY with a remark naming
// the account, and counted per account; a reloaded file changes the rate
// at once, and an account left without a quota drops its bucket and
// counters.
func TestAccountQuota(t *testing.T) {
	br, w := aclBrokerWith(t, "  produceTps: 1\n", nil)
	conn, err := net.Dial("tcp", br.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	frame := signedSendFrame("BenchSend", []byte("q"), "benchSecret")
	roundTrip(t, conn, frame)
	// One token a second: the next send would wait 1 s, past 500 ms.
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	var ce *codeError
	want := "[ACCOUNT_QUOTA]accessKey benchProducer exceeds produce quota on broker-a (1 msg/s), start flow control for a while"
	if err := drain(conn, 1, nil); !errors.As(err, &ce) || ce.code != wire.SystemBusy || ce.remark != want {
		t.Fatalf("got %v, want 2 %q", err, want)
	}
	// The keys GET_BROKER_RUNTIME_INFO answers (an admin code here).
	runtime := func() map[string]string {
		kv := map[string]string{}
		br.addFlowRuntime(kv)
		return kv
	}
	kv := runtime()
	for k, v := range map[string]string{"accountQuotaRejectedTotal_benchProducer": "1", "accountQuotaRejectedTotal": "1",
		"flowRejected_ACCOUNT_QUOTA": "1", "quotaRejectedTotal": "0"} {
		if kv[k] != v {
			t.Errorf("%s = %q, want %q", k, kv[k], v)
		}
	}
	rules := br.acl.Rules().Files[0]
	edit := func(account string) {
		yml := "accounts:\n- accessKey: benchProducer\n  secretKey: benchSecret\n  topicPerms: [BenchSend=PUB]\n" + account
		if err := os.WriteFile(rules, []byte(yml), 0o600); err != nil {
			t.Fatal(err)
		}
		if !w.Poll() {
			t.Fatal("the edited rules were not loaded")
		}
	}
	edit("  produceTps: 100000\n")
	for range 20 {
		roundTrip(t, conn, frame)
	}
	edit("")
	if kv := runtime(); kv["accountQuotaRejectedTotal_benchProducer"] != "" || kv["accountQuotaRejectedTotal"] != "0" {
		t.Errorf("after the quota was removed: bucket counters %q, sum %q", kv["accountQuotaRejectedTotal_benchProducer"], kv["accountQuotaRejectedTotal"])
	}
}

// TestAccountQuotaGrpcSend: a send through the gRPC service or the HTTP
// gateway (grpcBackend.Send) is charged to its account's produce quota
// as well: past the longest delay it is answered SYSTEM_BUSY
// [ACCOUNT_QUOTA] and counted for that account; a send without an
// account (ACL off, global white list) is not charged.
func TestAccountQuotaGrpcSend(t *testing.T) {
	br, _ := aclBrokerWith(t, "  produceTps: 1\n", nil)
	if _, err := br.topics.Put(wire.TopicConfig{TopicName: "BenchSend", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}); err != nil {
		t.Fatal(err)
	}
	be := grpcBackend{br}
	msg := &grpcsvc.Message{Topic: "BenchSend", Body: []byte("q"), Properties: wire.AppendProperty(nil, wire.PropUniqKey, "01ABC"),
		BornHost: make([]byte, 8), Account: br.acl.Rules().Accounts["benchProducer"]}
	if r := be.Send(msg); r.Code != wire.Success {
		t.Fatalf("first send: %d %s", r.Code, r.Remark)
	}
	// One token a second: the next send would wait 1 s, past 500 ms.
	r := be.Send(msg)
	if want := "[ACCOUNT_QUOTA]accessKey benchProducer exceeds produce quota on broker-a (1 msg/s), start flow control for a while"; r.Code != wire.SystemBusy || r.Remark != want {
		t.Fatalf("second send: %d %q, want 2 %q", r.Code, r.Remark, want)
	}
	msg.Account = nil
	if r := be.Send(msg); r.Code != wire.Success {
		t.Fatalf("send without an account: %d %s", r.Code, r.Remark)
	}
	kv := map[string]string{}
	br.addFlowRuntime(kv)
	for k, v := range map[string]string{"accountQuotaRejectedTotal_benchProducer": "1", "flowRejected_ACCOUNT_QUOTA": "1"} {
		if kv[k] != v {
			t.Errorf("%s = %q, want %q", k, kv[k], v)
		}
	}
}

// TestSendPathAllocationsAccountQuota: an account with a produce quota
// (never reached here) costs the send path no allocation.
func TestSendPathAllocationsAccountQuota(t *testing.T) {
	if raceOn {
		t.Skip("the verifier's HMAC states live in a sync.Pool, which drops items at random under -race")
	}
	atMostOneAlloc(t, "a message on the send path with an account quota", func(b *testing.B) {
		br, _ := aclBrokerWith(b, "  produceTps: 1000000000\n  produceBps: 1000000000000\n", nil)
		sendBench(b, br, signedSendFrame("BenchSend", make([]byte, 1024), "benchSecret"))
	})
}
