package admin

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mqops/mqops/wire"
)

// ACL admin calls (codes 50-54), as apache/rocketmq rocketmq-all-4.9.7
// client/src/main/java/org/apache/rocketmq/client/impl/MQClientAPIImpl.java
// sends them (createPlainAccessConfig, deleteAccessConfig,
// updateGlobalWhiteAddrsConfig, getBrokerClusterAclInfo,
// getBrokerClusterConfig).

// UpdateACLAccount creates or updates an account on one broker
// (UPDATE_AND_CREATE_ACL_CONFIG, 50).
func (a *Admin) UpdateACLAccount(addr string, acc wire.ACLAccount) error {
	if _, err := a.call(addr, wire.UpdateAndCreateACLConfig, acc.Fields(), nil); err != nil {
		return fmt.Errorf("update ACL account %s on %s: %w", acc.AccessKey, addr, err)
	}
	return nil
}

// DeleteACLAccount deletes an account on one broker (DELETE_ACL_CONFIG, 51).
func (a *Admin) DeleteACLAccount(addr, accessKey string) error {
	if _, err := a.call(addr, wire.DeleteACLConfig, map[string]string{wire.ACLAccessKey: accessKey}, nil); err != nil {
		return fmt.Errorf("delete ACL account %s on %s: %w", accessKey, addr, err)
	}
	return nil
}

// SetGlobalWhiteAddrs replaces the global white list of one broker's rules
// file (the default one when file is empty; UPDATE_GLOBAL_WHITE_ADDRS_CONFIG,
// 53). An empty list clears it.
func (a *Admin) SetGlobalWhiteAddrs(addr string, addrs []string, file string) error {
	f := map[string]string{wire.ACLGlobalWhiteAddrs: strings.Join(addrs, ",")}
	if file != "" {
		f[wire.ACLFileFullPath] = file
	}
	if _, err := a.call(addr, wire.UpdateGlobalWhiteAddrsConfig, f, nil); err != nil {
		return fmt.Errorf("update global white list on %s: %w", addr, err)
	}
	return nil
}

// ACLVersion is one broker's answer to GET_BROKER_CLUSTER_ACL_INFO (52).
type ACLVersion struct {
	Cluster    string                      `json:"clusterName"`
	BrokerName string                      `json:"brokerName"`
	BrokerAddr string                      `json:"brokerAddr"`
	Version    wire.DataVersion            `json:"version"`
	Files      map[string]wire.DataVersion `json:"allAclFileVersion,omitempty"`
}

// ACLVersionOf asks one broker for its rules' data versions.
func (a *Admin) ACLVersionOf(addr string) (*ACLVersion, error) {
	resp, err := a.call(addr, wire.GetBrokerClusterACLInfo, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("ACL version of %s: %w", addr, err)
	}
	v := &ACLVersion{Cluster: resp.GetString(wire.ACLClusterName), BrokerName: resp.GetString(wire.ACLBrokerName), BrokerAddr: resp.GetString(wire.ACLBrokerAddr)}
	if err := json.Unmarshal(resp.Get(wire.ACLVersion), &v.Version); err != nil {
		return nil, fmt.Errorf("ACL version of %s: decode version %q: %w", addr, resp.Get(wire.ACLVersion), err)
	}
	if all := resp.Get(wire.ACLAllAclFileVersion); len(all) > 0 {
		// 4.9.0-4.9.2 brokers do not send it.
		if err := json.Unmarshal(all, &v.Files); err != nil {
			return nil, fmt.Errorf("ACL version of %s: decode allAclFileVersion: %w", addr, err)
		}
	}
	return v, nil
}

// ACLConfigOf asks one broker for its rules (GET_BROKER_CLUSTER_ACL_CONFIG,
// 54; brokers of RocketMQ 4.9.8 and later answer 3).
func (a *Admin) ACLConfigOf(addr string) (*wire.ACLConfigBody, error) {
	resp, err := a.call(addr, wire.GetBrokerClusterACLConfig, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("ACL config of %s: %w", addr, err)
	}
	var body wire.ACLConfigBody
	if err := decode(resp, "ACL config of "+addr, &body); err != nil {
		return nil, err
	}
	return &body, nil
}

// BrokerResult is the outcome of one write on one broker.
type BrokerResult struct {
	Broker
	Err error `json:"-"`
}

// MarshalJSON adds the error text.
func (r BrokerResult) MarshalJSON() ([]byte, error) {
	type plain Broker
	out := struct {
		plain
		OK    bool   `json:"ok"`
		Error string `json:"error,omitempty"`
	}{plain: plain(r.Broker), OK: r.Err == nil}
	if r.Err != nil {
		out.Error = r.Err.Error()
	}
	return json.Marshal(out)
}

// OnEachBroker runs write on every broker t selects, one after the other,
// and reports each outcome: unlike other cluster writes it does not stop
// at a failure, so that the brokers it reached and those it did not are
// both known. The error is for resolving t only.
func (a *Admin) OnEachBroker(t Target, write func(addr string) error) ([]BrokerResult, error) {
	brokers, err := a.Brokers(t)
	if err != nil {
		return nil, err
	}
	out := make([]BrokerResult, len(brokers))
	for i, b := range brokers {
		out[i] = BrokerResult{Broker: b, Err: write(b.Addr)}
	}
	return out, nil
}
