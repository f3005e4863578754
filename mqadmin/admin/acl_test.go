package admin

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestBrokerResultJSON(t *testing.T) {
	b, _ := json.Marshal([]BrokerResult{{Broker: Broker{Cluster: "C", Name: "broker-a", Addr: "10.0.0.1:10911"}},
		{Broker: Broker{Cluster: "C", Name: "broker-b", ID: 0, Addr: "10.0.0.2:10911"}, Err: errors.New("DELETE_ACL_CONFIG_FAILED: no account")}})
	want := `[{"cluster":"C","brokerName":"broker-a","brokerId":0,"addr":"10.0.0.1:10911","ok":true},` +
		`{"cluster":"C","brokerName":"broker-b","brokerId":0,"addr":"10.0.0.2:10911","ok":false,"error":"DELETE_ACL_CONFIG_FAILED: no account"}]`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}
