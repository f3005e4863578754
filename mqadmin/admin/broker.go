package admin

import (
	"fmt"
	"strconv"

	"github.com/mqops/mqops/wire"
)

// RuntimeInfo returns a broker's runtime key/value table
// (GET_BROKER_RUNTIME_INFO, 28).
func (a *Admin) RuntimeInfo(addr string) (map[string]string, error) {
	resp, err := a.call(addr, wire.GetBrokerRuntimeInfo, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("runtime info of %s: %w", addr, err)
	}
	var t wire.KVTable
	if err := decode(resp, "runtime info", &t); err != nil {
		return nil, err
	}
	return t.Table, nil
}

// BrokerConfig returns a broker's live configuration (GET_BROKER_CONFIG, 26).
func (a *Admin) BrokerConfig(addr string) (map[string]string, error) {
	resp, err := a.call(addr, wire.GetBrokerConfig, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("config of %s: %w", addr, err)
	}
	return parseProperties(resp.Body)
}

// UpdateBrokerConfig sets keys on the brokers t selects; each broker
// applies and persists them (UPDATE_BROKER_CONFIG, 25).
func (a *Admin) UpdateBrokerConfig(t Target, kv map[string]string) ([]Broker, error) {
	brokers, err := a.Brokers(t)
	if err != nil {
		return nil, fmt.Errorf("update broker config: %w", err)
	}
	body := formatProperties(kv)
	for i, b := range brokers {
		resp, err := a.call(b.Addr, wire.UpdateBrokerConfig, nil, body)
		if err != nil {
			return nil, fmt.Errorf("update config of %s: %w", b.Addr, err)
		}
		// The broker says which keys wait for a restart or have no effect.
		brokers[i].Note = string(resp.Remark)
	}
	return brokers, nil
}

// SetBrokerWritable sets brokerPermission to 6 (read-write) or 4 (read
// only). The broker enforces it, persists it and re-registers, so routes
// follow — unlike the name-server-only SetWritePerm.
func (a *Admin) SetBrokerWritable(t Target, writable bool) ([]Broker, error) {
	perm := wire.PermRead
	if writable {
		perm |= wire.PermWrite
	}
	return a.UpdateBrokerConfig(t, map[string]string{"brokerPermission": strconv.Itoa(perm)})
}
