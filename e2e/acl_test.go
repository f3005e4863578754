package e2e

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/zabbix/probe"
)

// The accounts of the ACL test plan (spec §A.6): keys must be longer than
// six characters, as in Java.
var (
	aclProducer = primitive.Credentials{AccessKey: "producerA", SecretKey: "secretProdA"}
	aclConsumer = primitive.Credentials{AccessKey: "consumerA", SecretKey: "secretConsA"}
	aclAdmin    = primitive.Credentials{AccessKey: "adminXX1", SecretKey: "secretAdmX"}
	aclInner    = primitive.Credentials{AccessKey: "brokerInner", SecretKey: "secretInner"}
)

const aclRulesHead = `accounts:
- accessKey: producerA
  secretKey: secretProdA
  topicPerms:
  - TopicA=PUB
`

const aclRulesTail = `- accessKey: consumerA
  secretKey: secretConsA
  topicPerms:
  - TopicA=SUB
  groupPerms:
  - GroupA=SUB
- accessKey: adminXX1
  secretKey: secretAdmX
  admin: true
- accessKey: brokerInner
  secretKey: secretInner
  admin: true
`

type aclCluster struct {
	*cluster
	rules  string // the rules file both daemons read
	aclLog string // the broker's acl.log
}

// startACLCluster runs a name server and a broker with aclEnable and one
// rules file, the broker signing as brokerInner.
func startACLCluster(t *testing.T, rules string, extra ...string) *aclCluster {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "plain_acl.yml")
	writeRules(t, path, rules)
	ns := startNamesrv(t, "aclEnable=true", "aclFile="+path)
	bdir := newBrokerDir(t)
	inner, _ := json.Marshal(wire.Credentials{AccessKey: aclInner.AccessKey, SecretKey: aclInner.SecretKey})
	b := startBroker(t, bdir, ns.addr, append([]string{"aclEnable=true", "aclFile=" + path, "innerClientAuthenticationCredentials=" + string(inner)}, extra...)...)
	return &aclCluster{cluster: &cluster{ns: ns, broker: b, dir: bdir}, rules: path, aclLog: filepath.Join(string(bdir), "logs", "acl.log")}
}

// writeRules replaces the rules by an atomic rename, as editors and
// configuration tools do.
func writeRules(t *testing.T, path, rules string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// call sends one request with our remoting client, signed when cr is set.
func aclCall(t *testing.T, addr string, cr primitive.Credentials, code int32, fields map[string]string, body []byte) *wire.Command {
	t.Helper()
	cl := remoting.NewClient(nil, slog.New(slog.DiscardHandler))
	defer cl.Close()
	if !cr.IsEmpty() {
		cl.SetCredentials(wire.Credentials{AccessKey: cr.AccessKey, SecretKey: cr.SecretKey})
	}
	resp, err := cl.Invoke(addr, wire.NewRequest(code, fields, body), 5*time.Second)
	if err != nil {
		t.Fatalf("request %d to %s: %v", code, addr, err)
	}
	return resp
}

func aclCreateTopic(t *testing.T, c *aclCluster, topic string) {
	t.Helper()
	resp := aclCall(t, c.broker.addr, aclAdmin, wire.UpdateAndCreateTopic, map[string]string{"topic": topic, "readQueueNums": "2", "writeQueueNums": "2", "perm": "6"}, nil)
	if resp.Code != wire.Success {
		t.Fatalf("create %s as admin: %d %s", topic, resp.Code, resp.Remark)
	}
}

// routed reports whether the name server has a route for topic; route
// reads are open, so the request goes unsigned.
func routed(t *testing.T, c *aclCluster, topic string) bool {
	return aclCall(t, c.ns.addr, primitive.Credentials{}, wire.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil).Code == wire.Success
}

func aclProducerFor(t *testing.T, c *aclCluster, cr primitive.Credentials) interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
} {
	opts := []producer.Option{}
	if !cr.IsEmpty() {
		opts = append(opts, producer.WithCredentials(cr))
	}
	return newProducer(t, c.ns.addr, opts...)
}

func aclSend(p interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
}, topic, body string) error {
	_, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(body)))
	return err
}

func aclLogText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// TestACL runs the ACL test plan's cases 1-4, 7 and 8 against one
// name server and broker with aclEnable and the official v2.1.2 client.
func TestACL(t *testing.T) {
	c := startACLCluster(t, aclRulesHead+aclRulesTail, "traceTopicEnable=true")
	aclCreateTopic(t, c, "TopicA")
	aclCreateTopic(t, c, "TopicB")
	// The broker's registration carries its inner credential: without it
	// the name server refuses REGISTER_BROKER and no route appears.
	waitFor(t, 30*time.Second, "routes of TopicA and TopicB", func() bool { return routed(t, c, "TopicA") && routed(t, c, "TopicB") })

	t.Run("1 right keys", func(t *testing.T) {
		p := aclProducerFor(t, c, aclProducer)
		if err := aclSend(p, "TopicA", "acl-ok"); err != nil {
			t.Fatal(err)
		}
		col := newCollector()
		newPushConsumer(t, c.ns.addr, "GroupA", "TopicA", consumer.MessageSelector{}, col,
			consumer.WithCredentials(aclConsumer), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
		waitFor(t, 30*time.Second, "message consumed", func() bool { return col.get("acl-ok") != nil })
		// The committed offset, read as admin.
		waitFor(t, 30*time.Second, "offset committed", func() bool {
			total := int64(0)
			for q := 0; q < 2; q++ {
				r := aclCall(t, c.broker.addr, aclAdmin, wire.QueryConsumerOffset, map[string]string{"consumerGroup": "GroupA", "topic": "TopicA", "queueId": string(rune('0' + q))}, nil)
				if r.Code == wire.Success {
					off, _ := r.GetInt("offset")
					total += off
				}
			}
			return total >= 1
		})
		// Offsets of TopicA for consumerA: allowed; for producerA: no SUB.
		if r := aclCall(t, c.broker.addr, aclConsumer, wire.QueryConsumerOffset, map[string]string{"consumerGroup": "GroupA", "topic": "TopicA", "queueId": "0"}, nil); r.Code == wire.NoPermission {
			t.Fatalf("consumerA refused: %s", r.Remark)
		}
	})

	t.Run("2 wrong secret", func(t *testing.T) {
		p := aclProducerFor(t, c, primitive.Credentials{AccessKey: aclProducer.AccessKey, SecretKey: "wrongSecret"})
		err := aclSend(p, "TopicA", "acl-wrong")
		if err == nil || !strings.Contains(err.Error(), "CODE: 16") || !strings.Contains(err.Error(), "Check signature failed for accessKey=producerA") {
			t.Fatalf("send with a wrong secret: %v", err)
		}
		// The retries of that send are folded into one line.
		var lines []string
		for _, l := range strings.Split(aclLogText(t, c.aclLog), "\n") {
			if strings.Contains(l, "DENY") && strings.Contains(l, "Check signature failed for accessKey=producerA") && strings.Contains(l, "code=10(SEND_MESSAGE)") {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 || strings.Contains(lines[0], "wrongSecret") {
			t.Fatalf("acl.log DENY lines: %q", lines)
		}
		// A consumer with a wrong secret receives nothing: its heartbeat is refused.
		col := newCollector()
		newPushConsumer(t, c.ns.addr, "GroupA", "TopicA", consumer.MessageSelector{}, col,
			consumer.WithCredentials(primitive.Credentials{AccessKey: aclConsumer.AccessKey, SecretKey: "wrongSecret"}))
		waitFor(t, 20*time.Second, "refused heartbeat in acl.log", func() bool {
			return strings.Contains(aclLogText(t, c.aclLog), "code=34(HEART_BEAT) ak=consumerA")
		})
	})

	t.Run("3 no PUB on the topic", func(t *testing.T) {
		p := aclProducerFor(t, c, aclProducer)
		err := aclSend(p, "TopicB", "acl-b")
		if err == nil || !strings.Contains(err.Error(), "CODE: 16") || !strings.Contains(err.Error(), "No default permission for topic:TopicB") {
			t.Fatalf("send to TopicB: %v", err)
		}
		col := newCollector()
		newPushConsumer(t, c.ns.addr, "GroupA", "TopicB", consumer.MessageSelector{}, col, consumer.WithCredentials(aclConsumer))
		waitFor(t, 20*time.Second, "refused heartbeat for TopicB", func() bool {
			log := aclLogText(t, c.aclLog)
			return strings.Contains(log, "code=34(HEART_BEAT) ak=consumerA") && strings.Contains(log, "resource=topic:TopicB")
		})
	})

	t.Run("4 admin command from a non-admin", func(t *testing.T) {
		r := aclCall(t, c.broker.addr, aclProducer, wire.UpdateAndCreateTopic, map[string]string{"topic": "TopicEvil", "readQueueNums": "1", "writeQueueNums": "1", "perm": "6"}, nil)
		if r.Code != wire.NoPermission || string(r.Remark) != "Need admin permission for request code=17, but accessKey=producerA is not" {
			t.Fatalf("17 as producerA: %d %s", r.Code, r.Remark)
		}
		if r := aclCall(t, c.broker.addr, aclConsumer, 50, map[string]string{"accessKey": "evilEvil", "secretKey": "evilEvil", "admin": "true"}, nil); r.Code != wire.NoPermission {
			t.Fatalf("50 as consumerA: %d %s", r.Code, r.Remark)
		}
		// v2.1.2's admin ignores the answer: assert on the topic table.
		adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{c.ns.addr})), admin.WithCredentials(aclProducer))
		if err != nil {
			t.Fatal(err)
		}
		defer adm.Close()
		_, _ = adm.GetAllSubscriptionGroup(context.Background(), c.broker.addr, 5*time.Second) // installs its signer
		if err := adm.CreateTopic(context.Background(), admin.WithTopicCreate("TopicEvil2"), admin.WithBrokerAddrCreate(c.broker.addr)); err != nil {
			t.Fatalf("v2.1.2 CreateTopic: %v (it ignores response codes)", err)
		}
		all := aclCall(t, c.broker.addr, aclAdmin, wire.GetAllTopicConfig, nil, nil)
		if all.Code != wire.Success || !strings.Contains(string(all.Body), "TopicA") {
			t.Fatalf("topic table as admin: %d %s", all.Code, all.Remark)
		}
		for _, evil := range []string{"TopicEvil", "TopicEvil2"} {
			if strings.Contains(string(all.Body), `"`+evil+`"`) {
				t.Fatalf("%s was created by a non-admin", evil)
			}
		}
		// The same as admin works.
		aclCreateTopic(t, c, "TopicAdminMade")
		if !strings.Contains(aclLogText(t, c.aclLog), "ALLOW code=17(UPDATE_AND_CREATE_TOPIC) ak=adminXX1") {
			t.Fatal("no ALLOW line for the admin code")
		}
		// The refusals are counted for monitoring.
		rt := aclCall(t, c.broker.addr, aclAdmin, wire.GetBrokerRuntimeInfo, nil, nil)
		var kv wire.KVTable
		if err := json.Unmarshal(rt.Body, &kv); err != nil || kv.Table["acl_denied_total.admin"] == "" || kv.Table["acl_denied_total.admin"] == "0" {
			t.Fatalf("runtime info: %v %v", err, kv.Table)
		}
	})

	t.Run("7 SecurityToken", func(t *testing.T) {
		withToken := aclProducer
		withToken.SecurityToken = "tok"
		if err := aclSend(aclProducerFor(t, c, withToken), "TopicA", "acl-token"); err != nil {
			t.Fatalf("v2.1.2 with a token (token not signed): %v", err)
		}
		// Java's way: the token is signed.
		req := wire.NewRequest(wire.GetMaxOffset, map[string]string{"topic": "TopicA", "queueId": "0"}, nil)
		wire.Sign(req, aclConsumer.AccessKey, aclConsumer.SecretKey, "tok")
		cl := remoting.NewClient(nil, slog.New(slog.DiscardHandler))
		defer cl.Close()
		r, err := cl.Invoke(c.broker.addr, req, 5*time.Second)
		if err != nil || r.Code != wire.Success {
			t.Fatalf("Java-style token signature: %v %+v", err, r)
		}
	})

	t.Run("9 callbacks and trace", func(t *testing.T) {
		// Trace records go to RMQ_SYS_TRACE_TOPIC, on which producerA has
		// no permission: a correctly signed account may always publish
		// them. The record is sent as v2.1.2's trace dispatcher sends it
		// (SEND_MESSAGE signed with the producer's keys) rather than through
		// producer.WithTrace: v2.1.2 keeps one trace client per process
		// (instance INNER_TRACE_CLIENT_DEFAULT, never removed) and hands a
		// nil dispatcher to a second producer with other name servers, so
		// TestMQAdminTrace and this test cannot both trace in one process.
		r := aclCall(t, c.broker.addr, aclProducer, wire.SendMessage, sendFields("RMQ_SYS_TRACE_TOPIC", "0"), []byte("Pub\x01trace-record"))
		if r.Code != wire.Success {
			t.Fatalf("signed trace record from producerA: %d %s", r.Code, r.Remark)
		}
		if r := aclCall(t, c.broker.addr, aclConsumer, wire.SendMessage, sendFields("TopicA", "0"), []byte("x")); r.Code != wire.NoPermission {
			t.Fatalf("consumerA sending to TopicA (no PUB): %d %s", r.Code, r.Remark)
		}
		// The broker asks a consumer for its running info; the client's
		// (signed) response is not checked.
		col := newCollector()
		newPushConsumer(t, c.ns.addr, "GroupA", "TopicA", consumer.MessageSelector{}, col, consumer.WithCredentials(aclConsumer))
		var ids wire.ConsumerListBody
		waitFor(t, 30*time.Second, "consumer registered", func() bool {
			r := aclCall(t, c.broker.addr, aclAdmin, wire.GetConsumerListByGroup, map[string]string{"consumerGroup": "GroupA"}, nil)
			return r.Code == wire.Success && json.Unmarshal(r.Body, &ids) == nil && len(ids.ConsumerIDList) > 0
		})
		r = aclCall(t, c.broker.addr, aclAdmin, wire.GetConsumerRunningInfo, map[string]string{"consumerGroup": "GroupA", "clientId": ids.ConsumerIDList[0], "jstackEnable": "false"}, nil)
		if r.Code != wire.Success || !strings.Contains(string(r.Body), "TopicA") {
			t.Fatalf("running info through the broker: %d %s %s", r.Code, r.Remark, r.Body)
		}
	})

	t.Run("mqadmin signs", func(t *testing.T) {
		args := []string{"topic", "create", "-t", "TopicCli", "-b", c.broker.addr, "-n", c.ns.addr}
		r := runCLI(t, nil, append(args, "--access-key", aclProducer.AccessKey, "--secret-key", aclProducer.SecretKey)...)
		if r.code == 0 || !strings.Contains(r.stderr, "Need admin permission for request code=17, but accessKey=producerA is not") {
			t.Fatalf("non-admin: exit %d\n%s", r.code, r.stderr)
		}
		if r := runCLI(t, nil, args...); r.code == 0 || !strings.Contains(r.stderr, "No accessKey is configured") {
			t.Fatalf("unsigned: exit %d\n%s", r.code, r.stderr)
		}
		env := []string{"MQADMIN_ACCESS_KEY=" + aclAdmin.AccessKey, "MQADMIN_SECRET_KEY=" + aclAdmin.SecretKey}
		if r := runCLI(t, env, args...); r.code != 0 {
			t.Fatalf("admin from the environment: exit %d\n%s", r.code, r.stderr)
		}
		// Java's tools.yml, for users migrating.
		home := t.TempDir()
		if err := os.MkdirAll(filepath.Join(home, "conf"), 0o755); err != nil {
			t.Fatal(err)
		}
		tools := "accessKey: " + aclAdmin.AccessKey + "\nsecretKey: " + aclAdmin.SecretKey + "\n"
		if err := os.WriteFile(filepath.Join(home, "conf", "tools.yml"), []byte(tools), 0o600); err != nil {
			t.Fatal(err)
		}
		args[3] = "TopicCli2"
		if r := runCLI(t, []string{"ROCKETMQ_HOME=" + home}, args...); r.code != 0 {
			t.Fatalf("admin from tools.yml: exit %d\n%s", r.code, r.stderr)
		}
	})

	t.Run("zabbix probe signs", func(t *testing.T) {
		run := func(env ...string) (up int, denied bool) {
			st, out := aclProbe(t, c, env...)
			return st.Up, strings.Contains(string(out), "No accessKey is configured")
		}
		if up, denied := run("MQADMIN_ACCESS_KEY=", "MQADMIN_SECRET_KEY="); up != 0 || !denied {
			t.Fatalf("unsigned probe: up=%d, refusal shown %v", up, denied)
		}
		// The unsigned probe's own refusal is counted (reason
		// no_access_key) and reported to Zabbix by the signed one.
		st, out := aclProbe(t, c, "MQADMIN_ACCESS_KEY="+aclConsumer.AccessKey, "MQADMIN_SECRET_KEY="+aclConsumer.SecretKey)
		if st.Up != 1 {
			t.Fatalf("signed probe: up=%d", st.Up)
		}
		var byReason int64
		for _, n := range st.ACLDeniedByReason {
			byReason += n
		}
		if st.ACLDeniedByReason["no_access_key"] < 1 || st.ACLDenied != byReason {
			t.Fatalf("ACL denials: total %d, by reason %v\n%s", st.ACLDenied, st.ACLDeniedByReason, out)
		}
	})

	t.Run("8 name server", func(t *testing.T) {
		// Reads stay open: an unsigned v2.1.2 pull consumer finds routes.
		pc, err := consumer.NewPullConsumer(consumer.WithNameServer([]string{c.ns.addr}), consumer.WithGroupName("GroupA"), consumer.WithInstance(instance("pull")))
		if err != nil {
			t.Fatal(err)
		}
		if err := pc.Subscribe("TopicA", consumer.MessageSelector{}); err != nil {
			t.Fatal(err)
		}
		// Start fails unless the (unsigned) route query succeeds.
		if err := pc.Start(); err != nil {
			t.Fatal(err)
		}
		defer pc.Shutdown()
		if r := aclCall(t, c.ns.addr, primitive.Credentials{}, wire.GetRouteInfoByTopic, map[string]string{"topic": "TopicA"}, nil); r.Code != wire.Success {
			t.Fatalf("unsigned route read: %d %s", r.Code, r.Remark)
		}
		r := aclCall(t, c.ns.addr, primitive.Credentials{}, wire.PutKVConfig, map[string]string{"namespace": "n", "key": "k", "value": "v"}, nil)
		if r.Code != wire.NoPermission || string(r.Remark) != "No accessKey is configured" {
			t.Fatalf("unsigned PUT_KV_CONFIG: %d %s", r.Code, r.Remark)
		}
		if r := aclCall(t, c.ns.addr, aclProducer, wire.PutKVConfig, map[string]string{"namespace": "n", "key": "k", "value": "v"}, nil); r.Code != wire.NoPermission {
			t.Fatalf("PUT_KV_CONFIG as producerA: %d %s", r.Code, r.Remark)
		}
		// A forged registration would move TopicA to a fake broker.
		body := wire.Marshal(wire.RegisterBrokerBody{FilterServerList: []string{}, TopicConfigSerializeWrapper: wire.TopicConfigSerializeWrapper{
			TopicConfigTable: map[string]*wire.TopicConfig{"TopicA": {TopicName: "TopicA", ReadQueueNums: 8, WriteQueueNums: 8, Perm: 6}}}})
		fields := map[string]string{"brokerName": "broker-a", "brokerAddr": "127.0.0.1:1", "clusterName": "DefaultCluster", "haServerAddr": "127.0.0.1:2", "brokerId": "0", "compressed": "false"}
		if r := aclCall(t, c.ns.addr, primitive.Credentials{}, wire.RegisterBroker, fields, body); r.Code != wire.NoPermission {
			t.Fatalf("unsigned REGISTER_BROKER: %d %s", r.Code, r.Remark)
		}
		route := aclCall(t, c.ns.addr, primitive.Credentials{}, wire.GetRouteInfoByTopic, map[string]string{"topic": "TopicA"}, nil)
		if strings.Contains(string(route.Body), `"127.0.0.1:1"`) || !strings.Contains(string(route.Body), c.broker.addr) {
			t.Fatalf("route changed: %s", route.Body)
		}
	})
}

// aclProbe runs mqops-zbx broker against c's broker with env added to the
// environment (credentials) and returns what it printed.
func aclProbe(t *testing.T, c *aclCluster, env ...string) (probe.BrokerStatus, []byte) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "mqops-zbx"), "broker", "--addr", c.broker.addr, "--namesrv", c.ns.addr)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mqops-zbx broker: %v", err)
	}
	var st probe.BrokerStatus
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("mqops-zbx broker: %v in %s", err, out)
	}
	return st, out
}

// TestACLReload runs cases 5 and 6: the global white list, and a rules
// file edited while the daemons run (no restart, no fixed sleeps).
func TestACLReload(t *testing.T) {
	white := "globalWhiteRemoteAddresses:\n- 127.0.0.1\n"
	c := startACLCluster(t, white+aclRulesHead+aclRulesTail)
	aclCreateTopic(t, c, "TopicA")
	aclCreateTopic(t, c, "TopicB")
	waitFor(t, 30*time.Second, "routes", func() bool { return routed(t, c, "TopicA") && routed(t, c, "TopicB") })

	// 5: white-listed, unsigned.
	anon := aclProducerFor(t, c, primitive.Credentials{})
	if err := aclSend(anon, "TopicB", "white"); err != nil {
		t.Fatalf("unsigned send from the white list: %v", err)
	}
	writeRules(t, c.rules, aclRulesHead+aclRulesTail)
	var last error
	waitFor(t, 20*time.Second, "white list removed", func() bool {
		last = aclSend(anon, "TopicB", "white-removed")
		return last != nil && strings.Contains(last.Error(), "No accessKey is configured")
	})

	// 6: grant TopicB by atomic rename.
	p := aclProducerFor(t, c, aclProducer)
	if err := aclSend(p, "TopicB", "b0"); err == nil {
		t.Fatal("TopicB allowed before the grant")
	}
	granted := strings.Replace(aclRulesHead, "  - TopicA=PUB\n", "  - TopicA=PUB\n  - TopicB=PUB\n", 1) + aclRulesTail
	writeRules(t, c.rules, granted)
	waitFor(t, 20*time.Second, "TopicB granted (rename)", func() bool { return aclSend(p, "TopicB", "b1") == nil })

	// Revoke, then grant again with an in-place write.
	writeRules(t, c.rules, aclRulesHead+aclRulesTail)
	waitFor(t, 20*time.Second, "TopicB revoked", func() bool { return aclSend(p, "TopicB", "b2") != nil })
	if err := os.WriteFile(c.rules, []byte(granted), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "TopicB granted (in place)", func() bool { return aclSend(p, "TopicB", "b3") == nil })

	// A broken file keeps the rules in force and says where it is broken.
	broken := granted + "- accessKey: [oops\n"
	writeRules(t, c.rules, broken)
	waitFor(t, 20*time.Second, "reload error in acl.log", func() bool {
		log := aclLogText(t, c.aclLog)
		return strings.Contains(log, "ERROR") && strings.Contains(log, "reload failed") && strings.Contains(log, c.rules+":")
	})
	if err := aclSend(p, "TopicB", "b4"); err != nil {
		t.Fatalf("old rules lost after a broken edit: %v", err)
	}
	// Zabbix sees the failed reload (the rules in force are not the file's).
	if st, out := aclProbe(t, c, "MQADMIN_ACCESS_KEY="+aclAdmin.AccessKey, "MQADMIN_SECRET_KEY="+aclAdmin.SecretKey); st.ACLReloadFailures < 1 {
		t.Fatalf("ACL reload failures reported: %d\n%s", st.ACLReloadFailures, out)
	}

	// Deleting the account.
	writeRules(t, c.rules, "accounts:\n"+aclRulesTail)
	waitFor(t, 20*time.Second, "account removed", func() bool {
		last = aclSend(p, "TopicA", "gone")
		return last != nil && strings.Contains(last.Error(), "No acl config for producerA")
	})
}
