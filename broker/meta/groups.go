package meta

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/mqops/mqops/wire"
)

// Groups is the broker's subscription-group table.
type Groups struct {
	file persister

	mu      sync.RWMutex
	table   map[string]*wire.SubscriptionGroupConfig
	version wire.DataVersion
}

// LoadGroups reads subscriptionGroup.json (or its .bak) from path.
func LoadGroups(path string) (*Groups, error) {
	g := &Groups{file: persister{path: path}, table: map[string]*wire.SubscriptionGroupConfig{}}
	b, err := readFileOrBak(path)
	if err != nil {
		return nil, err
	}
	if b != nil {
		var w wire.SubscriptionGroupWrapper
		if err := json.Unmarshal(b, &w); err != nil {
			return nil, fmt.Errorf("parse %s: %w", path, err)
		}
		for name, c := range w.SubscriptionGroupTable {
			if c != nil {
				c.GroupName = name
				g.table[name] = c
			}
		}
		g.version = w.DataVersion
	}
	return g, nil
}

// Lookup returns a group's config, nil when unknown. Configs are
// immutable. A []byte name does not allocate (pull path).
func Lookup[T ~string | ~[]byte](g *Groups, name T) *wire.SubscriptionGroupConfig {
	g.mu.RLock()
	c := g.table[string(name)]
	g.mu.RUnlock()
	return c
}

// Lookup returns a group's config, nil when unknown.
func (g *Groups) Lookup(name string) *wire.SubscriptionGroupConfig { return Lookup(g, name) }

// Ensure returns the config of a group, creating it with defaults when
// absent (autoCreateSubscriptionGroup). created reports a new group.
func (g *Groups) Ensure(name string) (c *wire.SubscriptionGroupConfig, created bool, err error) {
	if c := g.Lookup(name); c != nil {
		return c, false, nil
	}
	g.mu.Lock()
	if c := g.table[name]; c != nil {
		g.mu.Unlock()
		return c, false, nil
	}
	c = wire.NewSubscriptionGroupConfig(name)
	g.table[name] = c
	g.bumpLocked()
	g.mu.Unlock()
	return c, true, g.save()
}

// Put creates or replaces a group config and persists the table.
func (g *Groups) Put(c wire.SubscriptionGroupConfig) error {
	cp := c
	g.mu.Lock()
	g.table[c.GroupName] = &cp
	g.bumpLocked()
	g.mu.Unlock()
	return g.save()
}

// Delete removes a group config; it reports whether it existed.
func (g *Groups) Delete(name string) (bool, error) {
	g.mu.Lock()
	if _, ok := g.table[name]; !ok {
		g.mu.Unlock()
		return false, nil
	}
	delete(g.table, name)
	g.bumpLocked()
	g.mu.Unlock()
	return true, g.save()
}

// Snapshot returns a copy of the table with its data version.
func (g *Groups) Snapshot() wire.SubscriptionGroupWrapper {
	g.mu.RLock()
	defer g.mu.RUnlock()
	w := wire.SubscriptionGroupWrapper{DataVersion: g.version, SubscriptionGroupTable: make(map[string]*wire.SubscriptionGroupConfig, len(g.table))}
	for k, v := range g.table {
		cp := *v
		w.SubscriptionGroupTable[k] = &cp
	}
	return w
}

// Names lists group names, sorted.
func (g *Groups) Names() []string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]string, 0, len(g.table))
	for k := range g.table {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (g *Groups) bumpLocked() {
	g.version = wire.DataVersion{Counter: g.version.Counter + 1, Timestamp: time.Now().UnixMilli()}
}

// save writes the table as it is when the write runs.
func (g *Groups) save() error {
	return g.file.persist(func() []byte {
		g.mu.RLock()
		defer g.mu.RUnlock()
		return wire.Marshal(wire.SubscriptionGroupWrapper{DataVersion: g.version, SubscriptionGroupTable: g.table})
	})
}
