package e2e

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/zabbix/probe"
)

// TestZabbixControllerACL: a real zabbix_agentd asks mqops-zbx controller
// about a real mqcontroller with aclEnable. Its reads (metadata, runtime
// info) are open and count nothing; one refused election per reason and
// one config update by an admin then show as exactly those counts, which
// the controller template's items read. A controller that does not
// answer is up 0 with the error, not a failed check.
func TestZabbixControllerACL(t *testing.T) {
	agentd := agentBinary(t, "zabbix_agentd")
	rules := filepath.Join(t.TempDir(), "plain_acl.yml")
	writeRules(t, rules, aclRulesHead+aclRulesTail)
	ctl := startControllersWith(t, 1, admin.NewDirect(3*time.Second), "aclEnable=true", "aclFile="+rules)[0]
	a := startAgent(t, agentd)
	key := `rocketmq.controller.get["` + ctl + `"]`

	var st probe.ControllerNode
	a.get(t, key, &st)
	if st.Up != 1 || st.IsLeader != 1 || st.Group != "group1" || st.ACLEnabled != 1 || st.ACLDenied != 0 || st.ACLAllowedAdmin != 0 || st.RuntimeError != "" {
		t.Fatalf("controller before any refusal: %+v", st)
	}

	elect := map[string]string{"clusterName": "DefaultCluster", "brokerName": "broker-a", "brokerId": "1", "designateElect": "true"}
	for _, cr := range []primitive.Credentials{
		{},          // no_access_key
		aclProducer, // admin: not an admin account
		{AccessKey: aclAdmin.AccessKey, SecretKey: "wrong-secret"}, // signature
		{AccessKey: "nobodyXX", SecretKey: "whatever1"},            // unknown_account
	} {
		if r := aclCall(t, ctl, cr, wire.ControllerElectMaster, elect, nil); r.Code != wire.NoPermission {
			t.Fatalf("election signed as %q: %d %s, want NO_PERMISSION", cr.AccessKey, r.Code, r.Remark)
		}
	}
	if r := aclCall(t, ctl, aclAdmin, wire.UpdateControllerConfig, nil, []byte("enableElectUncleanMaster=false\n")); r.Code != wire.Success {
		t.Fatalf("config update as admin: %d %s", r.Code, r.Remark)
	}

	st = probe.ControllerNode{}
	a.get(t, key, &st)
	want := map[string]int64{"no_access_key": 1, "admin": 1, "signature": 1, "unknown_account": 1}
	for r, n := range want {
		if st.ACLDeniedByReason[r] != n {
			t.Errorf("denials for %s: %d, want %d", r, st.ACLDeniedByReason[r], n)
		}
	}
	if st.ACLDenied != 4 || st.ACLAllowedAdmin != 1 || st.ACLReloadFailures != 0 || st.Up != 1 {
		t.Fatalf("controller after 4 refusals and 1 admin update: %+v", st)
	}

	var down probe.ControllerNode
	a.get(t, `rocketmq.controller.get["`+closedAddr(t)+`"]`, &down)
	if down.Up != 0 || down.Error == "" {
		t.Fatalf("a controller that is not there: %+v", down)
	}
}
