package admin

import (
	"fmt"

	"github.com/mqops/mqops/wire"
)

// CreateGroup creates or updates a subscription group on the brokers t
// selects (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, 200).
func (a *Admin) CreateGroup(t Target, cfg *wire.SubscriptionGroupConfig) ([]Broker, error) {
	if err := wire.CheckGroup(cfg.GroupName); err != nil {
		return nil, fmt.Errorf("create group: %w", err)
	}
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
	tables := make([]map[string]*wire.SubscriptionGroupConfig, len(brokers))
	err = FanOut(len(brokers), a.parallel, func(i int) (err error) {
		tables[i], err = a.brokerGroups(brokers[i].Addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	byName := map[string]*GroupConfig{}
	for i, b := range brokers {
		for name, cfg := range tables[i] {
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

// brokerGroups returns one broker's subscription group table.
func (a *Admin) brokerGroups(addr string) (map[string]*wire.SubscriptionGroupConfig, error) {
	resp, err := a.call(addr, wire.GetAllSubGroupConfig, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("groups of %s: %w", addr, err)
	}
	var w wire.SubscriptionGroupWrapper
	if err := decode(resp, "subscription groups", &w); err != nil {
		return nil, err
	}
	return w.SubscriptionGroupTable, nil
}

// GroupChange is a group's config on one broker after ChangeGroup.
type GroupChange struct {
	Broker Broker                        `json:"broker"`
	Config *wire.SubscriptionGroupConfig `json:"config"`
	// Created is true when the broker did not define the group before.
	Created bool `json:"created"`
}

// ChangeGroup edits a group's config on each broker t selects: it reads
// the broker's current config of the group (Java's defaults when the group
// is not defined there yet), applies change and writes the result back
// (GET_ALL_SUBSCRIPTIONGROUP_CONFIG, then UPDATE_AND_CREATE_SUBSCRIPTIONGROUP),
// so the settings change does not touch keep their per-broker values.
func (a *Admin) ChangeGroup(t Target, group string, change func(*wire.SubscriptionGroupConfig)) ([]GroupChange, error) {
	if err := wire.CheckGroup(group); err != nil {
		return nil, fmt.Errorf("change group: %w", err)
	}
	brokers, err := a.Brokers(t)
	if err != nil {
		return nil, fmt.Errorf("change group %s: %w", group, err)
	}
	out := make([]GroupChange, 0, len(brokers))
	for _, b := range brokers {
		table, err := a.brokerGroups(b.Addr)
		if err != nil {
			return nil, fmt.Errorf("change group %s: %w", group, err)
		}
		gc := GroupChange{Broker: b, Config: table[group]}
		if gc.Config == nil {
			gc.Config, gc.Created = wire.NewSubscriptionGroupConfig(group), true
		}
		change(gc.Config)
		if _, err := a.call(b.Addr, wire.UpdateAndCreateSubGroup, nil, wire.Marshal(gc.Config)); err != nil {
			return nil, fmt.Errorf("update group %s on %s: %w", group, b.Addr, err)
		}
		out = append(out, gc)
	}
	return out, nil
}

// SetGroupConsumeEnable pauses (false) or resumes (true) a group's
// consumption on the brokers t selects: the broker stops handing the group
// messages while consumeEnable is false.
func (a *Admin) SetGroupConsumeEnable(t Target, group string, enable bool) ([]GroupChange, error) {
	return a.ChangeGroup(t, group, func(c *wire.SubscriptionGroupConfig) { c.ConsumeEnable = enable })
}

// SetGroupRateLimit caps the messages per second the brokers t selects
// hand a group (0: unlimited).
func (a *Admin) SetGroupRateLimit(t Target, group string, perSecond int) ([]GroupChange, error) {
	if perSecond < 0 {
		return nil, fmt.Errorf("rate limit of group %s must be 0 (unlimited) or more, got %d", group, perSecond)
	}
	return a.ChangeGroup(t, group, func(c *wire.SubscriptionGroupConfig) { c.ConsumeRateLimit = perSecond })
}
