package meta

import (
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/mqops/mqops/wire"
)

// Groups is the broker's subscription-group table (subscriptionGroup.json).
type Groups struct {
	t table[wire.SubscriptionGroupConfig]
}

// LoadGroups reads subscriptionGroup.json from path, or its .bak when the
// file is torn or holds an impossible entry; it fails when neither is
// usable. Names that break today's rules still load, with a warning.
func LoadGroups(path string, log *slog.Logger) (*Groups, error) {
	g := &Groups{t: newTable(path, func(v wire.DataVersion, m map[string]*wire.SubscriptionGroupConfig) any {
		return wire.SubscriptionGroupWrapper{DataVersion: v, SubscriptionGroupTable: m}
	})}
	var w wire.SubscriptionGroupWrapper
	err := load(path, log, func(b []byte) error {
		w = wire.SubscriptionGroupWrapper{}
		if err := json.Unmarshal(b, &w); err != nil {
			return err
		}
		for name, c := range w.SubscriptionGroupTable {
			if err := CheckGroupConfig(c); err != nil {
				return fmt.Errorf("group %q: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for name, c := range w.SubscriptionGroupTable {
		if c == nil {
			continue
		}
		if err := wire.CheckGroup(name); err != nil {
			log.Warn("[CONFIG_LOAD] group name breaks the naming rules; delete it with mqadmin", "file", path, "err", err)
		}
		c.GroupName = name
		g.t.m[name] = c
	}
	g.t.version = w.DataVersion
	return g, nil
}

// CheckGroupConfig refuses group settings the broker cannot serve.
func CheckGroupConfig(c *wire.SubscriptionGroupConfig) error {
	switch {
	case c == nil:
		return nil // skipped
	case c.RetryQueueNums < 0 || c.RetryQueueNums > MaxQueueNums:
		return fmt.Errorf("retryQueueNums %d outside 0..%d", c.RetryQueueNums, MaxQueueNums)
	case c.RetryMaxTimes < 0:
		return fmt.Errorf("retryMaxTimes %d is negative", c.RetryMaxTimes)
	case c.BrokerID < 0:
		return fmt.Errorf("brokerId %d is negative", c.BrokerID)
	case c.ConsumeRateLimit < 0:
		return fmt.Errorf("consumeRateLimit %d is negative", c.ConsumeRateLimit)
	case c.GroupRetryPolicy != nil:
		return c.GroupRetryPolicy.Check()
	}
	return nil
}

// Lookup returns a group's config, nil when unknown. Configs are
// immutable. A []byte name does not allocate (pull path).
func Lookup[N ~string | ~[]byte](g *Groups, name N) *wire.SubscriptionGroupConfig {
	return get(&g.t, name)
}

// Lookup returns a group's config, nil when unknown.
func (g *Groups) Lookup(name string) *wire.SubscriptionGroupConfig { return Lookup(g, name) }

// Ensure returns the config of a group, creating it with defaults when
// absent (autoCreateSubscriptionGroup). created reports a new group. A
// created group is written by the next Flush: the next heartbeat or pull
// would create it again after a crash.
func (g *Groups) Ensure(name string) (*wire.SubscriptionGroupConfig, bool, error) {
	if c := g.Lookup(name); c != nil {
		return c, false, nil
	}
	return g.t.put(name, *wire.NewSubscriptionGroupConfig(name), func(*wire.SubscriptionGroupConfig) bool { return true }, false)
}

// Flush writes subscriptionGroup.json if a change is waiting.
func (g *Groups) Flush() error { return g.t.flush() }

// Put creates or replaces a group config and persists the table.
func (g *Groups) Put(c wire.SubscriptionGroupConfig) error {
	_, _, err := g.t.put(c.GroupName, c, func(*wire.SubscriptionGroupConfig) bool { return false }, true)
	return err
}

// Delete removes a group config; it reports whether it existed.
func (g *Groups) Delete(name string) (bool, error) { return g.t.remove(name) }

// Snapshot returns a copy of the table with its data version.
func (g *Groups) Snapshot() wire.SubscriptionGroupWrapper {
	v, m := g.t.snapshot()
	return wire.SubscriptionGroupWrapper{DataVersion: v, SubscriptionGroupTable: m}
}

// Replace adopts a master's whole group table (a slave's metadata sync,
// Java's SlaveSynchronize.syncSubscriptionGroupConfig) when its data
// version differs from the one in force, and persists it. Entries the
// broker could not serve are left out and returned as errors.
func (g *Groups) Replace(w wire.SubscriptionGroupWrapper) (changed bool, skipped []error, err error) {
	m := make(map[string]*wire.SubscriptionGroupConfig, len(w.SubscriptionGroupTable))
	for name, c := range w.SubscriptionGroupTable {
		if c == nil {
			continue
		}
		if err := CheckGroupConfig(c); err != nil {
			skipped = append(skipped, fmt.Errorf("group %q: %w", name, err))
			continue
		}
		cp := *c
		cp.GroupName = name
		m[name] = &cp
	}
	changed, err = g.t.replace(w.DataVersion, m)
	return changed, skipped, err
}

// Names lists group names, sorted.
func (g *Groups) Names() []string { return g.t.names() }
