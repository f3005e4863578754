package meta

import (
	"encoding/json"
	"fmt"

	"github.com/mqops/mqops/atomicfile"
	"github.com/mqops/mqops/wire"
)

// Groups is the broker's subscription-group table (subscriptionGroup.json).
type Groups struct {
	t table[wire.SubscriptionGroupConfig]
}

// LoadGroups reads subscriptionGroup.json (or its .bak) from path.
func LoadGroups(path string) (*Groups, error) {
	g := &Groups{t: newTable(path, func(v wire.DataVersion, m map[string]*wire.SubscriptionGroupConfig) any {
		return wire.SubscriptionGroupWrapper{DataVersion: v, SubscriptionGroupTable: m}
	})}
	b, err := atomicfile.Read(path)
	if err != nil || b == nil {
		return g, err
	}
	var w wire.SubscriptionGroupWrapper
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	for name, c := range w.SubscriptionGroupTable {
		if c != nil {
			c.GroupName = name
			g.t.m[name] = c
		}
	}
	g.t.version = w.DataVersion
	return g, nil
}

// Lookup returns a group's config, nil when unknown. Configs are
// immutable. A []byte name does not allocate (pull path).
func Lookup[N ~string | ~[]byte](g *Groups, name N) *wire.SubscriptionGroupConfig {
	return get(&g.t, name)
}

// Lookup returns a group's config, nil when unknown.
func (g *Groups) Lookup(name string) *wire.SubscriptionGroupConfig { return Lookup(g, name) }

// Ensure returns the config of a group, creating it with defaults when
// absent (autoCreateSubscriptionGroup). created reports a new group.
func (g *Groups) Ensure(name string) (*wire.SubscriptionGroupConfig, bool, error) {
	if c := g.Lookup(name); c != nil {
		return c, false, nil
	}
	return g.t.put(name, *wire.NewSubscriptionGroupConfig(name), func(*wire.SubscriptionGroupConfig) bool { return true })
}

// Put creates or replaces a group config and persists the table.
func (g *Groups) Put(c wire.SubscriptionGroupConfig) error {
	_, _, err := g.t.put(c.GroupName, c, func(*wire.SubscriptionGroupConfig) bool { return false })
	return err
}

// Delete removes a group config; it reports whether it existed.
func (g *Groups) Delete(name string) (bool, error) { return g.t.remove(name) }

// Snapshot returns a copy of the table with its data version.
func (g *Groups) Snapshot() wire.SubscriptionGroupWrapper {
	v, m := g.t.snapshot()
	return wire.SubscriptionGroupWrapper{DataVersion: v, SubscriptionGroupTable: m}
}

// Names lists group names, sorted.
func (g *Groups) Names() []string { return g.t.names() }
