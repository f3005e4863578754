package e2e

import (
	"crypto/tls"
	"encoding/json"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/wire"
)

// Controller traffic with ACL and TLS, real mqcontroller and mqbroker
// processes: brokers sign what they send to the controller with their
// inner credential, the controller signs NOTIFY_BROKER_ROLE_CHANGED with
// its own, neither white-lists the other, and the controller port serves
// TLS like the other daemons'.

func innerCredentialsKey(t *testing.T) string {
	t.Helper()
	b, err := json.Marshal(wire.Credentials{AccessKey: aclInner.AccessKey, SecretKey: aclInner.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return "innerClientAuthenticationCredentials=" + string(b)
}

// allowedNotifies counts the NOTIFY_BROKER_ROLE_CHANGED a broker's ACL let
// in, signed by the controller's inner account (admin codes are logged
// when allowed).
func allowedNotifies(t *testing.T, aclLog string) int {
	return strings.Count(aclLogText(t, aclLog), "ALLOW code=1008(NOTIFY_BROKER_ROLE_CHANGED) ak="+aclInner.AccessKey)
}

func TestControllerACL(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "plain_acl.yml")
	writeRules(t, rules, aclRulesHead+aclRulesTail) // no white list at all
	inner := innerCredentialsKey(t)
	ctls := startControllersWith(t, 1, admin.NewDirect(3*time.Second), "aclEnable=true", "aclFile="+rules, inner)
	ns := startNamesrv(t)
	g := startCtlReplicas(t, ctls, ns.addr, 2, append(ctlKeys(ctls), "brokerClusterName=DefaultCluster",
		"controllerHeartBeatTimeoutMills=3000", "aclEnable=true", "aclFile="+rules, inner))
	aclLogOf := func(i int) string { return filepath.Join(string(g.dirs[i]), "logs", "acl.log") }

	// Registration, heartbeats, the first election and the SyncStateSet
	// change all need an admin account on this controller: they are signed.
	master := g.waitInSync(60*time.Second, 2)
	waitFor(t, 20*time.Second, "the first master's ACL letting in a signed role-change notification", func() bool {
		return allowedNotifies(t, aclLogOf(master)) > 0
	})

	// A signed send, replicated to the slave (allAckInSyncStateSet).
	aclCreateTopic(t, &aclCluster{cluster: &cluster{broker: g.procs[master]}}, "TopicA")
	if resp := aclCall(t, g.procs[master].addr, aclProducer, wire.SendMessage, sendFields("TopicA", "0"), []byte("before the election")); resp.Code != wire.Success {
		t.Fatalf("signed send to the master: %d %s", resp.Code, resp.Remark)
	}

	h, set := replicaInfo(t, ctls)
	i := slices.IndexFunc(set.SyncStateSet, func(id int64) bool { return id != h.MasterBrokerID })
	if i < 0 {
		t.Fatalf("no slave in the SyncStateSet %v", set.SyncStateSet)
	}
	slaveID := strconv.FormatInt(set.SyncStateSet[i], 10)
	slave := 1 - master
	elect := []string{"ha", "elect", "-a", ctls[0], "-b", "broker-a", "--id", slaveID}

	// An unsigned election and one by an account that is not admin are
	// refused by the controller and change nothing.
	for _, c := range []struct {
		name  string
		creds []string
		want  string
	}{
		{"unsigned", nil, "No accessKey is configured"},
		{"not admin", []string{"--access-key", aclProducer.AccessKey, "--secret-key", aclProducer.SecretKey}, "Need admin permission for request code=1002, but accessKey=producerA is not"},
		{"wrong secret", []string{"--access-key", aclAdmin.AccessKey, "--secret-key", "wrong-secret"}, "Check signature failed for accessKey=adminXX1"},
	} {
		r := runCLI(t, nil, append(elect, c.creds...)...)
		if r.code == 0 || !strings.Contains(r.stdout+r.stderr, c.want) {
			t.Fatalf("%s mqadmin ha elect: exit %d, want a refusal with %q\nstdout:\n%s\nstderr:\n%s", c.name, r.code, c.want, r.stdout, r.stderr)
		}
	}
	resp := ctlCall(ctls[0], wire.ControllerElectMaster, map[string]string{"clusterName": "DefaultCluster", "brokerName": "broker-a",
		"brokerId": slaveID, "designateElect": "true"}, nil)
	if resp == nil || resp.Code != wire.NoPermission {
		t.Fatalf("raw unsigned CONTROLLER_ELECT_MASTER: %+v", resp)
	}
	if h2, _ := replicaInfo(t, ctls); h2.MasterBrokerID != h.MasterBrokerID || h2.MasterEpoch != h.MasterEpoch {
		t.Fatalf("a refused election changed the master: %+v, was %+v", h2, h)
	}

	// An admin elects the slave: the controller's signed notification gets
	// through the new master's ACL.
	before := allowedNotifies(t, aclLogOf(slave))
	if out := ctl(t, append(elect, "--access-key", aclAdmin.AccessKey, "--secret-key", aclAdmin.SecretKey)...); !strings.Contains(out, g.procs[slave].addr) {
		t.Fatalf("admin elect printed %s, want the new master %s", out, g.procs[slave].addr)
	}
	waitFor(t, 20*time.Second, "the elected slave's ACL letting in the signed role change", func() bool {
		return allowedNotifies(t, aclLogOf(slave)) > before
	})
	// The old master follows it and is back in the SyncStateSet (an
	// election picks only in-sync replicas).
	if m := g.waitInSync(60*time.Second, 2); m != slave {
		t.Fatalf("master is replica %d, want the admin-elected %d", m, slave)
	}

	// Failover: the master dies, the controller elects the survivor and
	// tells it, signed, with nobody white-listed.
	before = allowedNotifies(t, aclLogOf(master))
	g.procs[slave].kill()
	waitFor(t, 60*time.Second, "the surviving replica elected after kill -9", func() bool {
		h, _ := replicaInfo(t, ctls)
		return h.MasterAddress == g.procs[master].addr
	})
	waitFor(t, 20*time.Second, "the survivor's ACL letting in the signed role change", func() bool {
		return allowedNotifies(t, aclLogOf(master)) > before
	})
	if l := aclLogText(t, aclLogOf(master)); strings.Contains(l, "DENY") {
		t.Fatalf("the broker refused controller or peer traffic:\n%s", l)
	}
}

func TestControllerTLS(t *testing.T) {
	ta := admin.NewDirect(3 * time.Second)
	ta.UseTLS(&tls.Config{InsecureSkipVerify: true})
	ctls := startControllersWith(t, 1, ta, "tlsServerMode=enforcing")
	// Plaintext is refused on an enforcing port.
	if resp := ctlCall(ctls[0], wire.ControllerGetMetadataInfo, nil, nil); resp != nil {
		t.Fatalf("plaintext request answered by an enforcing controller: %+v", resp)
	}
	meta := []string{"controller", "metadata", "-a", ctls[0]}
	if r := runCLI(t, nil, meta...); r.code == 0 {
		t.Fatalf("mqadmin without --tls reached an enforcing controller:\n%s", r.stdout)
	}
	tlsFlags := []string{"--tls", "--tls-insecure-skip-verify"}
	if out := ctl(t, append(meta, tlsFlags...)...); !strings.Contains(out, ctls[0]) {
		t.Fatalf("mqadmin --tls controller metadata printed %s", out)
	}

	// A broker with useTLS registers, heartbeats and is elected over TLS.
	ns := startNamesrv(t)
	g := startCtlReplicas(t, ctls, ns.addr, 1, append(ctlKeys(ctls), "brokerClusterName=DefaultCluster", "useTLS=true"))
	waitFor(t, 60*time.Second, "the TLS broker elected master (mqadmin --tls ha sync-state)", func() bool {
		r := runCLI(t, nil, append([]string{"ha", "sync-state", "-a", ctls[0], "-b", "broker-a"}, tlsFlags...)...)
		return r.code == 0 && strings.Contains(r.stdout, g.procs[0].addr)
	})
}

// TestEmbeddedControllerACL: a name server's embedded controller checks its
// port with the name server's rules: reads open, an unsigned or non-admin
// election refused, an admin's let through to the controller's own answer.
func TestEmbeddedControllerACL(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "plain_acl.yml")
	writeRules(t, rules, aclRulesHead+aclRulesTail)
	_, ctls, _ := startControllerNamesrvProcs(t, 1, "aclEnable=true", "aclFile="+rules)
	ctlExpect(t, ctls[0], wire.ControllerGetMetadataInfo, nil, nil, wire.Success)
	electFields := map[string]string{"clusterName": "DefaultCluster", "brokerName": "broker-a", "brokerId": "1", "designateElect": "true"}
	if resp := ctlCall(ctls[0], wire.ControllerElectMaster, electFields, nil); resp == nil || resp.Code != wire.NoPermission ||
		!strings.Contains(string(resp.Remark), "No accessKey is configured") {
		t.Fatalf("unsigned election: %+v", resp)
	}
	if resp := aclCall(t, ctls[0], aclProducer, wire.ControllerElectMaster, electFields, nil); resp.Code != wire.NoPermission ||
		!strings.Contains(string(resp.Remark), "Need admin permission for request code=1002") {
		t.Fatalf("non-admin election: %d %s", resp.Code, resp.Remark)
	}
	// No such broker set: the controller's answer, past the ACL.
	if resp := aclCall(t, ctls[0], aclAdmin, wire.ControllerElectMaster, electFields, nil); resp.Code == wire.NoPermission || resp.Code == wire.Success {
		t.Fatalf("admin election of an unknown set: %d %s", resp.Code, resp.Remark)
	}
}
