package admin

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// Code 50's header: only what is set, admin and quotas only when given.
func TestACLAccountFields(t *testing.T) {
	f, tps := false, int64(0)
	got := (&ACLAccount{AccessKey: "appUser1", TopicPerms: []string{"A=PUB", "B=SUB"}, Admin: &f, ProduceTPS: &tps}).fields()
	want := map[string]string{"accessKey": "appUser1", "topicPerms": "A=PUB,B=SUB", "admin": "false", "produceTps": "0"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fields %v, want %v", got, want)
	}
}

func TestBrokerResultJSON(t *testing.T) {
	b, _ := json.Marshal([]BrokerResult{{Broker: Broker{Cluster: "C", Name: "broker-a", Addr: "10.0.0.1:10911"}},
		{Broker: Broker{Cluster: "C", Name: "broker-b", ID: 0, Addr: "10.0.0.2:10911"}, Err: errors.New("DELETE_ACL_CONFIG_FAILED: no account")}})
	want := `[{"cluster":"C","brokerName":"broker-a","brokerId":0,"addr":"10.0.0.1:10911","ok":true},` +
		`{"cluster":"C","brokerName":"broker-b","brokerId":0,"addr":"10.0.0.2:10911","ok":false,"error":"DELETE_ACL_CONFIG_FAILED: no account"}]`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}
