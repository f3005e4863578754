package server

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqops/mqops/broker/acl"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

func TestACLAdminCodesWithACLOff(t *testing.T) {
	p := newPeer(t, startBroker(t, nil), nil)
	for code, want := range map[int32]int32{
		wire.UpdateAndCreateACLConfig: wire.UpdateAndCreateACLConfigFailed, wire.DeleteACLConfig: wire.DeleteACLConfigFailed,
		wire.UpdateGlobalWhiteAddrsConfig: wire.UpdateGlobalWhiteAddrsConfigFailed,
		wire.GetBrokerClusterACLInfo:      wire.SystemError, wire.GetBrokerClusterACLConfig: wire.SystemError,
	} {
		p.expect(want, "ACL is off on this broker (aclEnable=false)", code, map[string]string{"accessKey": "someone1", "globalWhiteAddrs": "*"}, nil)
	}
}

// TestACLAdminWire checks codes 52 and 54's answers field by field against
// Java's GetBrokerAclConfigResponseHeader and
// GetBrokerClusterAclConfigResponseBody, after a code 50 change.
func TestACLAdminWire(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "plain_acl.yml")
	if err := os.WriteFile(rules, []byte("globalWhiteRemoteAddresses: ['10.1.1.*']\naccounts:\n- accessKey: adminXX1\n  secretKey: secretAdmX\n  admin: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := acl.Load(acl.Source{AclFile: rules}, acl.BrokerTable, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	gate := acl.NewGate(w.Checker(), nil)
	gate.Edit = w
	b := openBroker(t, dir, map[string]string{"aclEnable": "true", "brokerName": "broker-x", "brokerClusterName": "ClusterX"})
	b.acl = gate
	b.Start()
	t.Cleanup(func() { _ = b.Close() })
	cl := remoting.NewClient(nil, slog.New(slog.DiscardHandler))
	t.Cleanup(cl.Close)
	cl.SetCredentials(wire.Credentials{AccessKey: "adminXX1", SecretKey: "secretAdmX"})
	call := func(code int32, fields map[string]string) *wire.Command {
		t.Helper()
		resp, err := cl.Invoke(b.srv.Addr().String(), wire.NewRequest(code, fields, nil), waitTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Code != wire.Success {
			t.Fatalf("code %d: %s %s", code, wire.ResponseName(resp.Code), resp.Remark)
		}
		return resp
	}
	// Java's client sends every field, admin always.
	call(wire.UpdateAndCreateACLConfig, map[string]string{"accessKey": "appUser1", "secretKey": "appSecret1", "admin": "false",
		"defaultTopicPerm": "DENY", "defaultGroupPerm": "SUB", "topicPerms": "T1=PUB,T2=PUB|SUB", "groupPerms": "g1=DENY",
		"whiteRemoteAddress": "192.168.0.1", "produceTps": "100"})

	r := call(wire.GetBrokerClusterACLInfo, nil)
	var v wire.DataVersion
	if err := json.Unmarshal(r.Get("version"), &v); err != nil || v.Counter != 1 || v.Timestamp == 0 {
		t.Fatalf("version %q: %v", r.Get("version"), err)
	}
	var all map[string]wire.DataVersion
	if err := json.Unmarshal(r.Get("allAclFileVersion"), &all); err != nil || len(all) != 1 || all[rules] != v {
		t.Fatalf("allAclFileVersion %q: %v", r.Get("allAclFileVersion"), err)
	}
	if r.GetString("brokerName") != "broker-x" || r.GetString("clusterName") != "ClusterX" || r.GetString("brokerAddr") != b.Addr() {
		t.Fatalf("header %v", r.Fields())
	}

	r = call(wire.GetBrokerClusterACLConfig, nil)
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(body)
	want := `{"globalWhiteAddrs":["10.1.1.*"],"plainAccessConfigs":[` +
		`{"accessKey":"adminXX1","admin":true,"defaultGroupPerm":"DENY","defaultTopicPerm":"DENY","groupPerms":[],"secretKey":"secretAdmX","topicPerms":[],"whiteRemoteAddress":""},` +
		`{"accessKey":"appUser1","admin":false,"defaultGroupPerm":"SUB","defaultTopicPerm":"DENY","groupPerms":["g1=DENY"],"produceTps":100,"secretKey":"appSecret1","topicPerms":["T1=PUB","T2=PUB|SUB"],"whiteRemoteAddress":"192.168.0.1"}]}`
	if string(got) != want {
		t.Fatalf("body\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(string(mustReadFile(t, rules)), "counter: 1") {
		t.Fatal("dataVersion not written")
	}
}

func mustReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
