package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/mqops/mqops/wire"
)

const aclAdminRules = `# the operators' accounts
accounts:
- accessKey: adminXX1
  secretKey: secretAdmX
  admin: true
- accessKey: brokerInner
  secretKey: secretInner
  admin: true
- accessKey: producerA
  secretKey: secretProdA
  topicPerms:
  - TopicA=PUB
`

// aclBrokerJSON is one broker's entry of getAclConfig -o json.
type aclBrokerJSON struct {
	BrokerAddr         string                   `json:"brokerAddr"`
	GlobalWhiteAddrs   []string                 `json:"globalWhiteAddrs"`
	PlainAccessConfigs []wire.PlainAccessConfig `json:"plainAccessConfigs"`
}

// TestACLAdmin changes the ACL rules of a two-broker cluster with
// mqadmin's ACL commands (request codes 50-54), and watches the official
// v2.1.2 producer follow each change on both brokers.
func TestACLAdmin(t *testing.T) {
	dir := t.TempDir()
	nsRules, aRules, bRules := filepath.Join(dir, "ns.yml"), filepath.Join(dir, "a", "plain_acl.yml"), filepath.Join(dir, "b", "plain_acl.yml")
	for _, f := range []string{nsRules, aRules, bRules} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		writeRules(t, f, aclAdminRules)
	}
	ns := startNamesrv(t, "aclEnable=true", "aclFile="+nsRules)
	inner, _ := json.Marshal(wire.Credentials{AccessKey: aclInner.AccessKey, SecretKey: aclInner.SecretKey})
	brokerConf := func(rules string, extra ...string) []string {
		return append([]string{"aclEnable=true", "aclFile=" + rules, "innerClientAuthenticationCredentials=" + string(inner)}, extra...)
	}
	adir, bdir := newBrokerDir(t), newBrokerDir(t)
	ba := startBroker(t, adir, ns.addr, brokerConf(aRules)...)
	bb := startBroker(t, bdir, ns.addr, brokerConf(bRules, "brokerName=broker-b")...)

	adminEnv := []string{"MQADMIN_ACCESS_KEY=" + aclAdmin.AccessKey, "MQADMIN_SECRET_KEY=" + aclAdmin.SecretKey}
	run := func(env []string, args ...string) cliResult {
		t.Helper()
		return runCLI(t, env, append(args, "-n", ns.addr)...)
	}
	ok := func(args ...string) string {
		t.Helper()
		r := run(adminEnv, args...)
		if r.code != 0 {
			t.Fatalf("mqadmin %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}
	okJSON := func(v any, args ...string) {
		t.Helper()
		out := ok(append(args, "--output", "json")...)
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("mqadmin %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// Every row of a cluster-wide write says OK, one per broker.
	allOK := func(out string) {
		t.Helper()
		tb := tableOf(t, out)
		tb.wantHeader(t, "Broker Name", "Broker Addr", "Result")
		if len(tb.rows) != 2 || tb.rows[0]["Result"] != "OK" || tb.rows[1]["Result"] != "OK" {
			t.Fatalf("want OK from both brokers:\n%s", out)
		}
	}

	const topic = "AclAdminT"
	ok("topic", "create", "-t", topic, "-c", "DefaultCluster")
	waitFor(t, 30*time.Second, "route of "+topic+" on both brokers", func() bool {
		r := aclCall(t, ns.addr, primitive.Credentials{}, wire.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil)
		var rd wire.TopicRouteData
		return r.Code == wire.Success && json.Unmarshal(r.Body, &rd) == nil && len(rd.BrokerDatas) == 2
	})

	appUser := primitive.Credentials{AccessKey: "appUser1", SecretKey: "appSecret1"}
	p := newProducer(t, ns.addr, producer.WithQueueSelector(producer.NewManualQueueSelector()), producer.WithCredentials(appUser))
	send := func(brokerName string) error {
		m := primitive.NewMessage(topic, []byte("acl-admin"))
		m.Queue = &primitive.MessageQueue{Topic: topic, BrokerName: brokerName, QueueId: 0}
		_, err := p.SendSync(context.Background(), m)
		return err
	}
	brokers := []string{"broker-a", "broker-b"}
	refused := func(why string) {
		t.Helper()
		for _, b := range brokers {
			if err := send(b); err == nil || !strings.Contains(err.Error(), "CODE: 16") || !strings.Contains(err.Error(), why) {
				t.Fatalf("send to %s: want NO_PERMISSION %q, got %v", b, why, err)
			}
		}
	}
	accepted := func() {
		t.Helper()
		for _, b := range brokers {
			if err := send(b); err != nil {
				t.Fatalf("send to %s: %v", b, err)
			}
		}
	}
	writes := 0

	t.Run("create cluster-wide", func(t *testing.T) {
		refused("No acl config for appUser1")
		allOK(ok("updateAclConfig", "-c", "DefaultCluster", "-a", "appUser1", "-s", "appSecret1", "-i", "DENY", "-t", topic+"=PUB", "--produceTps", "1000"))
		writes++
		accepted()
		var cfg []aclBrokerJSON
		okJSON(&cfg, "getAclConfig", "-c", "DefaultCluster")
		if len(cfg) != 2 {
			t.Fatalf("getAclConfig: %+v", cfg)
		}
		for _, b := range cfg {
			var acc *wire.PlainAccessConfig
			for i := range b.PlainAccessConfigs {
				if b.PlainAccessConfigs[i].AccessKey == "appUser1" {
					acc = &b.PlainAccessConfigs[i]
				}
			}
			if acc == nil || acc.SecretKey != "******" || acc.DefaultTopicPerm != "DENY" || !reflect.DeepEqual(acc.TopicPerms, []string{topic + "=PUB"}) || acc.ProduceTPS != 1000 || acc.Admin {
				t.Fatalf("appUser1 on %s: %+v", b.BrokerAddr, acc)
			}
		}
	})

	t.Run("change permission", func(t *testing.T) {
		allOK(ok("updateAclConfig", "-c", "DefaultCluster", "-a", "appUser1", "-t", topic+"=SUB"))
		writes++
		refused("No default permission for topic:" + topic)
		allOK(ok("acl", "user", "update", "--ak", "appUser1", "--topic-perm", topic+"=PUB|SUB", "--produce-bps", "1048576", "-c", "DefaultCluster"))
		writes++
		accepted()
		var got []aclBrokerJSON
		okJSON(&got, "acl", "user", "get", "--ak", "appUser1", "-c", "DefaultCluster")
		for _, b := range got {
			if len(b.PlainAccessConfigs) != 1 {
				t.Fatalf("acl user get on %s: %+v", b.BrokerAddr, b)
			}
			acc := b.PlainAccessConfigs[0]
			// The secret, the default and the tps quota were kept.
			if acc.DefaultTopicPerm != "DENY" || !reflect.DeepEqual(acc.TopicPerms, []string{topic + "=PUB|SUB"}) || acc.ProduceTPS != 1000 || acc.ProduceBPS != 1048576 {
				t.Fatalf("appUser1 on %s: %+v", b.BrokerAddr, acc)
			}
		}
	})

	t.Run("delete", func(t *testing.T) {
		allOK(ok("deleteAclConfig", "-c", "DefaultCluster", "-a", "appUser1"))
		writes++
		refused("No acl config for appUser1")
	})

	t.Run("global white list", func(t *testing.T) {
		// The test's own address: the unsigned-and-unknown producer gets in.
		allOK(ok("updateGlobalWhiteAddr", "-c", "DefaultCluster", "-g", "127.0.0.1,10.250.0.*"))
		writes++
		accepted()
		var cfg []aclBrokerJSON
		okJSON(&cfg, "getAclConfig", "-c", "DefaultCluster")
		for _, b := range cfg {
			if !reflect.DeepEqual(b.GlobalWhiteAddrs, []string{"127.0.0.1", "10.250.0.*"}) {
				t.Fatalf("white list of %s: %v", b.BrokerAddr, b.GlobalWhiteAddrs)
			}
		}
		allOK(ok("acl", "whitelist", "set", "-c", "DefaultCluster"))
		writes++
		refused("No acl config for appUser1")
	})

	t.Run("versions", func(t *testing.T) {
		var vs []struct {
			Cluster    string           `json:"clusterName"`
			BrokerName string           `json:"brokerName"`
			BrokerAddr string           `json:"brokerAddr"`
			Version    wire.DataVersion `json:"version"`
		}
		okJSON(&vs, "clusterAclConfigVersion", "-c", "DefaultCluster")
		if len(vs) != 2 || vs[0].BrokerName != "broker-a" || vs[1].BrokerName != "broker-b" || vs[0].BrokerAddr != ba.addr || vs[1].BrokerAddr != bb.addr {
			t.Fatalf("versions: %+v", vs)
		}
		for _, v := range vs {
			if v.Cluster != "DefaultCluster" || v.Version.Counter != int64(writes) || v.Version.Timestamp < time.Now().Add(-5*time.Minute).UnixMilli() {
				t.Fatalf("version of %s after %d changes: %+v", v.BrokerName, writes, v)
			}
		}
		tb := tableOf(t, ok("acl", "version", "-c", "DefaultCluster"))
		tb.wantHeader(t, "Cluster Name", "Broker Name", "Broker Addr", "AclConfigVersionNum", "AclLastUpdateTime")
		if len(tb.rows) != 2 || tb.rows[1]["AclConfigVersionNum"] != strconv.Itoa(writes) {
			t.Fatalf("acl version table: %+v", tb.rows)
		}
	})

	t.Run("non-admin refused", func(t *testing.T) {
		producerEnv := []string{"MQADMIN_ACCESS_KEY=" + aclProducer.AccessKey, "MQADMIN_SECRET_KEY=" + aclProducer.SecretKey}
		r := run(producerEnv, "updateAclConfig", "-b", ba.addr, "-a", "sneaky01", "-s", "sneakySecret", "-m", "true")
		if r.code == 0 || !strings.Contains(r.stderr, "NO_PERMISSION: Need admin permission for request code=50, but accessKey=producerA is not") {
			t.Fatalf("non-admin updateAclConfig: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		resp := aclCall(t, bb.addr, aclProducer, wire.UpdateAndCreateACLConfig, map[string]string{"accessKey": "sneaky01", "secretKey": "sneakySecret", "admin": "true"}, nil)
		if resp.Code != wire.NoPermission {
			t.Fatalf("non-admin code 50: %d %s", resp.Code, resp.Remark)
		}
		for _, code := range []int32{wire.DeleteACLConfig, wire.GetBrokerClusterACLInfo, wire.UpdateGlobalWhiteAddrsConfig, wire.GetBrokerClusterACLConfig} {
			if resp := aclCall(t, bb.addr, aclProducer, code, map[string]string{"accessKey": "adminXX1", "globalWhiteAddrs": "*"}, nil); resp.Code != wire.NoPermission {
				t.Fatalf("non-admin code %d: %d %s", code, resp.Code, resp.Remark)
			}
		}
	})

	t.Run("bad input", func(t *testing.T) {
		// Refused by mqadmin before any broker is written.
		r := run(adminEnv, "updateAclConfig", "-c", "DefaultCluster", "-a", "short", "-s", "appSecret1")
		if r.code == 0 || !strings.Contains(r.stderr, `accessKey "short" must be longer than 6 characters`) {
			t.Fatalf("short accessKey: exit %d\n%s", r.code, r.stderr)
		}
		// Refused by the broker, with Java's failure code and the field named.
		resp := aclCall(t, ba.addr, aclAdmin, wire.UpdateAndCreateACLConfig, map[string]string{"accessKey": "appUser2", "secretKey": "appSecret2", "topicPerms": "T1=WRITE"}, nil)
		if resp.Code != wire.UpdateAndCreateACLConfigFailed || !strings.Contains(string(resp.Remark), `topicPerms entry "T1=WRITE"`) {
			t.Fatalf("bad topicPerms: %d %s", resp.Code, resp.Remark)
		}
		resp = aclCall(t, ba.addr, aclAdmin, wire.UpdateAndCreateACLConfig, map[string]string{"accessKey": "appUser2", "secretKey": "appSecret2", "produceTps": "fast"}, nil)
		if resp.Code != wire.UpdateAndCreateACLConfigFailed || !strings.Contains(string(resp.Remark), "produceTps") {
			t.Fatalf("bad produceTps: %d %s", resp.Code, resp.Remark)
		}
		if resp := aclCall(t, ba.addr, aclAdmin, wire.DeleteACLConfig, map[string]string{"accessKey": "nobody01"}, nil); resp.Code != wire.DeleteACLConfigFailed || !strings.Contains(string(resp.Remark), "no account with accessKey nobody01") {
			t.Fatalf("delete unknown: %d %s", resp.Code, resp.Remark)
		}
	})

	t.Run("partial failure", func(t *testing.T) {
		// An account on broker-a only: deleting it cluster-wide fails on
		// broker-b, which is reported, and the command exits 1.
		if tb := tableOf(t, ok("acl", "user", "create", "--ak", "onlyOnA1", "--sk", "onlySecret1", "-b", "broker-a")); len(tb.rows) != 1 || tb.rows[0]["Result"] != "OK" {
			t.Fatalf("create on broker-a: %+v", tb.rows)
		}
		r := run(adminEnv, "acl", "user", "delete", "--ak", "onlyOnA1", "-c", "DefaultCluster")
		tb := tableOf(t, r.stdout)
		if r.code == 0 || len(tb.rows) != 2 || tb.rows[0]["Result"] != "OK" || !strings.HasPrefix(tb.rows[1]["Result"], "FAILED: DELETE_ACL_CONFIG_FAILED") ||
			!strings.Contains(r.stderr, "failed on 1 of 2 brokers ("+bb.addr+")") {
			t.Fatalf("partial delete: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("restart reloads the written file", func(t *testing.T) {
		ok("acl", "user", "create", "--ak", "keepMe01", "--sk", "keepSecret1", "--default-topic-perm", "PUB", "--group-perm", "g1=SUB", "--produce-tps", "5", "-b", "broker-a")
		var before, after []aclBrokerJSON
		okJSON(&before, "acl", "user", "list", "-b", "broker-a", "--show-secret")
		ba.stop()
		ba = startBroker(t, adir, ns.addr, append(brokerConf(aRules), ba.samePorts()...)...)
		okJSON(&after, "acl", "user", "list", "-b", "broker-a", "--show-secret")
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("rules before the restart:\n%+v\nafter:\n%+v", before, after)
		}
		if !strings.Contains(string(mustRead(t, aRules)), "# the operators' accounts") {
			t.Fatal("the operators' comment was lost")
		}
	})

	t.Run("secrets stay out of the logs", func(t *testing.T) {
		for _, d := range []brokerDir{adir, bdir} {
			logged := false // the changes are in the logs read
			err := filepath.Walk(filepath.Join(string(d), "logs"), func(path string, fi os.FileInfo, err error) error {
				if err != nil || fi.IsDir() {
					return err
				}
				text := string(mustRead(t, path))
				logged = logged || strings.Contains(text, "[ACL_UPDATE] account created")
				for _, s := range []string{"appSecret1", "onlySecret1", "keepSecret1", "sneakySecret"} {
					if strings.Contains(text, s) {
						t.Errorf("%s shows the secret %s", path, s)
					}
				}
				return nil
			})
			if err != nil || !logged {
				t.Fatalf("logs of %s: no [ACL_UPDATE] line (%v)", d, err)
			}
		}
	})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
