package admin

import (
	"fmt"

	"github.com/mqops/mqops/wire"
)

// CreateGroup creates or updates a subscription group on the brokers t
// selects (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, 200).
func (a *Admin) CreateGroup(t Target, cfg *wire.SubscriptionGroupConfig) ([]Broker, error) {
	brokers, err := a.Brokers(t)
	if err != nil {
		return nil, fmt.Errorf("create group %s: %w", cfg.GroupName, err)
	}
	body := wire.Marshal(cfg)
	for _, b := range brokers {
		if _, err := a.call(b.Addr, wire.UpdateAndCreateSubGroup, nil, body); err != nil {
			return nil, fmt.Errorf("create group %s on %s: %w", cfg.GroupName, b.Addr, err)
		}
	}
	return brokers, nil
}

// DeleteGroup deletes a subscription group (and with removeOffset its
// committed offsets) from the brokers t selects (DELETE_SUBSCRIPTIONGROUP,
// 207). On a whole cluster its retry and dead-letter topics go too, as
// Java's deleteSubGroup -c does.
func (a *Admin) DeleteGroup(t Target, group string, removeOffset bool) ([]Broker, error) {
	brokers, err := a.Brokers(t)
	if err != nil {
		return nil, fmt.Errorf("delete group %s: %w", group, err)
	}
	f := map[string]string{"groupName": group, "removeOffset": fmt.Sprint(removeOffset)}
	for _, b := range brokers {
		if _, err := a.call(b.Addr, wire.DeleteSubGroup, f, nil); err != nil {
			return nil, fmt.Errorf("delete group %s on %s: %w", group, b.Addr, err)
		}
	}
	if t.Cluster != "" {
		for _, topic := range []string{RetryPrefix + group, DLQPrefix + group} {
			if _, err := a.DeleteTopic(topic, t.Cluster); err != nil {
				return nil, err
			}
		}
	}
	return brokers, nil
}

// GroupConfig is one subscription group and the brokers defining it.
type GroupConfig struct {
	Config  *wire.SubscriptionGroupConfig `json:"config"`
	Brokers []string                      `json:"brokers"`
}

// Groups lists the subscription groups defined on the brokers t selects
// (GET_ALL_SUBSCRIPTIONGROUP_CONFIG, 201), sorted by name; a group defined
// differently on several brokers shows the first broker's settings.
func (a *Admin) Groups(t Target) ([]GroupConfig, error) {
	brokers, err := a.Brokers(t)
	if err != nil {
		return nil, err
	}
	byName := map[string]*GroupConfig{}
	for _, b := range brokers {
		resp, err := a.call(b.Addr, wire.GetAllSubGroupConfig, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("groups of %s: %w", b.Addr, err)
		}
		var w wire.SubscriptionGroupWrapper
		if err := decode(resp, "subscription groups", &w); err != nil {
			return nil, err
		}
		for name, cfg := range w.SubscriptionGroupTable {
			gc := byName[name]
			if gc == nil {
				gc = &GroupConfig{Config: cfg}
				byName[name] = gc
			}
			gc.Brokers = append(gc.Brokers, b.Name)
		}
	}
	out := make([]GroupConfig, 0, len(byName))
	for _, name := range sortedKeys(byName) {
		out = append(out, *byName[name])
	}
	return out, nil
}
