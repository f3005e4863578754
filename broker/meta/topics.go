package meta

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/mqops/mqops/wire"
)

// MaxTopicLength is the longest topic name a record can hold.
const MaxTopicLength = 127

// ValidateTopicName reports why a topic name is unusable, or nil. Names
// follow RocketMQ's TopicValidator, ^[%|a-zA-Z0-9_-]+$ (store.md §14); the
// check runs on every send, so it is a loop rather than a regexp.
func ValidateTopicName[T ~string | ~[]byte](name T) error {
	switch {
	case len(name) == 0:
		return fmt.Errorf("the specified topic is blank")
	case len(name) > MaxTopicLength:
		return fmt.Errorf("the specified topic %q is longer than topic max length %d", name, MaxTopicLength)
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '%', c == '|', c == '_', c == '-':
		default:
			return fmt.Errorf("the specified topic %q contains illegal characters, allowing only ^[%%|a-zA-Z0-9_-]+$", name)
		}
	}
	return nil
}

// Well-known topic names.
const (
	TopicAutoCreate   = "TBW102"
	TopicSchedule     = "SCHEDULE_TOPIC_XXXX"
	TopicBenchmark    = "BenchmarkTest"
	TopicSelfTest     = "SELF_TEST_TOPIC"
	TopicOffsetMoved  = "OFFSET_MOVED_EVENT"
	TopicTransHalf    = "RMQ_SYS_TRANS_HALF_TOPIC"
	TopicTransOpHalf  = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
	TopicTransMaxTime = "TRANS_CHECK_MAX_TIME_TOPIC"
	TopicTrace        = "RMQ_SYS_TRACE_TOPIC"
	RetryPrefix       = "%RETRY%"
	DLQPrefix         = "%DLQ%"
)

// NotAllowedToSend lists system topics producers may never write.
var NotAllowedToSend = map[string]bool{
	TopicSchedule: true, TopicTransHalf: true, TopicTransOpHalf: true,
	TopicTransMaxTime: true, TopicSelfTest: true, TopicOffsetMoved: true,
}

// Topics is the broker's topic table. Configs are immutable once stored:
// updates replace the pointer, so readers may keep what Get returned.
type Topics struct {
	file persister

	mu      sync.RWMutex
	table   map[string]*wire.TopicConfig
	system  map[string]bool
	version wire.DataVersion
}

// LoadTopics reads topics.json (or its .bak) from path.
func LoadTopics(path string) (*Topics, error) {
	t := &Topics{file: persister{path: path}, table: map[string]*wire.TopicConfig{}, system: map[string]bool{}}
	b, err := readFileOrBak(path)
	if err != nil {
		return nil, err
	}
	if b != nil {
		var w wire.TopicConfigSerializeWrapper
		if err := json.Unmarshal(b, &w); err != nil {
			return nil, fmt.Errorf("parse %s: %w", path, err)
		}
		for name, tc := range w.TopicConfigTable {
			if tc != nil {
				tc.TopicName = name
				t.table[name] = tc
			}
		}
		t.version = w.DataVersion
	}
	return t, nil
}

// Get returns the config of a topic. The []byte form avoids allocating on
// the send path.
func (t *Topics) Get(name []byte) *wire.TopicConfig {
	t.mu.RLock()
	tc := t.table[string(name)]
	t.mu.RUnlock()
	return tc
}

// Lookup is Get for a string name.
func (t *Topics) Lookup(name string) *wire.TopicConfig {
	t.mu.RLock()
	tc := t.table[name]
	t.mu.RUnlock()
	return tc
}

// IsSystem reports whether a topic is one the broker created for itself.
func (t *Topics) IsSystem(name string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.system[name] || len(name) >= 8 && name[:8] == "rmq_sys_"
}

// EnsureSystem creates a system topic unless it already exists, and marks it
// as system so that admin requests cannot change or delete it.
func (t *Topics) EnsureSystem(tc wire.TopicConfig) error {
	t.mu.Lock()
	t.system[tc.TopicName] = true
	_, ok := t.table[tc.TopicName]
	t.mu.Unlock()
	if ok {
		return nil
	}
	_, err := t.Put(tc)
	return err
}

// Put stores a topic config, bumps the data version and persists the table.
// It reports whether anything changed.
func (t *Topics) Put(tc wire.TopicConfig) (bool, error) {
	if tc.TopicFilterType == "" {
		tc.TopicFilterType = "SINGLE_TAG"
	}
	t.mu.Lock()
	if old, ok := t.table[tc.TopicName]; ok && *old == tc {
		t.mu.Unlock()
		return false, nil
	}
	cp := tc
	t.table[tc.TopicName] = &cp
	t.bumpLocked()
	t.mu.Unlock()
	return true, t.save()
}

// CreateIfAbsent stores tc unless a topic of that name exists; it returns
// the config in force and whether it was created.
func (t *Topics) CreateIfAbsent(tc wire.TopicConfig) (*wire.TopicConfig, bool, error) {
	t.mu.Lock()
	if old, ok := t.table[tc.TopicName]; ok {
		t.mu.Unlock()
		return old, false, nil
	}
	if tc.TopicFilterType == "" {
		tc.TopicFilterType = "SINGLE_TAG"
	}
	cp := tc
	t.table[tc.TopicName] = &cp
	t.bumpLocked()
	t.mu.Unlock()
	return &cp, true, t.save()
}

// Delete removes a topic; it reports whether it existed.
func (t *Topics) Delete(name string) (bool, error) {
	t.mu.Lock()
	if _, ok := t.table[name]; !ok {
		t.mu.Unlock()
		return false, nil
	}
	delete(t.table, name)
	t.bumpLocked()
	t.mu.Unlock()
	return true, t.save()
}

// Bump advances the data version (brokerPermission changes re-register
// every topic with a new perm).
func (t *Topics) Bump() {
	t.mu.Lock()
	t.bumpLocked()
	t.mu.Unlock()
}

func (t *Topics) bumpLocked() {
	t.version = wire.DataVersion{Counter: t.version.Counter + 1, Timestamp: time.Now().UnixMilli()}
}

// Snapshot returns a copy of the table with its data version.
func (t *Topics) Snapshot() wire.TopicConfigSerializeWrapper {
	t.mu.RLock()
	defer t.mu.RUnlock()
	w := wire.TopicConfigSerializeWrapper{DataVersion: t.version, TopicConfigTable: make(map[string]*wire.TopicConfig, len(t.table))}
	for k, v := range t.table {
		cp := *v
		w.TopicConfigTable[k] = &cp
	}
	return w
}

// Names lists topic names, sorted.
func (t *Topics) Names() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]string, 0, len(t.table))
	for k := range t.table {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// save writes the table as it is when the write runs.
func (t *Topics) save() error {
	return t.file.persist(func() []byte {
		t.mu.RLock()
		defer t.mu.RUnlock()
		return wire.Marshal(wire.TopicConfigSerializeWrapper{DataVersion: t.version, TopicConfigTable: t.table})
	})
}
