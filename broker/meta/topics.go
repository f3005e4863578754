package meta

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/mqops/mqops/wire"
)

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
	TopicTimer        = "rmq_sys_wheel_timer" // RocketMQ 5's name for timer messages
	RetryPrefix       = "%RETRY%"
	DLQPrefix         = "%DLQ%"
)

// NotAllowedToSend lists system topics producers may never write.
var NotAllowedToSend = map[string]bool{
	TopicSchedule: true, TopicTransHalf: true, TopicTransOpHalf: true,
	TopicTransMaxTime: true, TopicSelfTest: true, TopicOffsetMoved: true,
	TopicTimer: true,
}

// Topics is the broker's topic table (topics.json). Configs are immutable
// once stored: updates replace the pointer, so readers may keep what Get
// returned.
type Topics struct {
	t table[wire.TopicConfig]

	sysMu  sync.RWMutex
	system map[string]bool // created by the broker; admin codes may not touch them
}

// MaxQueueNums bounds a topic's queue counts (the admin create check).
const MaxQueueNums = 1024

// LoadTopics reads topics.json from path, or its .bak when the file is
// torn or holds an impossible entry; it fails when neither is usable.
// Names that break today's rules (created by earlier builds) still load,
// with a warning, so that they can be deleted.
func LoadTopics(path string, log *slog.Logger) (*Topics, error) {
	t := &Topics{system: map[string]bool{}, t: newTable(path, func(v wire.DataVersion, m map[string]*wire.TopicConfig) any {
		return wire.TopicConfigSerializeWrapper{DataVersion: v, TopicConfigTable: m}
	})}
	var w wire.TopicConfigSerializeWrapper
	err := load(path, log, func(b []byte) error {
		w = wire.TopicConfigSerializeWrapper{}
		if err := json.Unmarshal(b, &w); err != nil {
			return err
		}
		for name, tc := range w.TopicConfigTable {
			if err := checkTopicConfig(tc); err != nil {
				return fmt.Errorf("topic %q: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for name, tc := range w.TopicConfigTable {
		if tc == nil {
			continue
		}
		if err := wire.CheckTopic(name); err != nil {
			log.Warn("[CONFIG_LOAD] topic name breaks the naming rules; it cannot be sent to, delete it with mqadmin", "file", path, "err", err)
		}
		tc.TopicName = name
		t.t.m[name] = tc
	}
	t.t.version = w.DataVersion
	return t, nil
}

// checkTopicConfig refuses a loaded entry the broker cannot serve.
func checkTopicConfig(tc *wire.TopicConfig) error {
	switch {
	case tc == nil:
		return nil // skipped
	case tc.ReadQueueNums < 0 || tc.ReadQueueNums > MaxQueueNums:
		return fmt.Errorf("readQueueNums %d outside 0..%d", tc.ReadQueueNums, MaxQueueNums)
	case tc.WriteQueueNums < 0 || tc.WriteQueueNums > MaxQueueNums:
		return fmt.Errorf("writeQueueNums %d outside 0..%d", tc.WriteQueueNums, MaxQueueNums)
	case tc.Perm&^(wire.PermPriority|wire.PermRead|wire.PermWrite|wire.PermInherit) != 0:
		return fmt.Errorf("perm %d is not a combination of 8, 4, 2 and 1", tc.Perm)
	case tc.TopicFilterType != "" && tc.TopicFilterType != "SINGLE_TAG" && tc.TopicFilterType != "MULTI_TAG":
		return fmt.Errorf("topicFilterType %q is neither SINGLE_TAG nor MULTI_TAG", tc.TopicFilterType)
	}
	return nil
}

// Get returns the config of a topic, nil when unknown. The []byte form
// does not allocate on the send path.
func (t *Topics) Get(name []byte) *wire.TopicConfig { return get(&t.t, name) }

// Lookup is Get for a string name.
func (t *Topics) Lookup(name string) *wire.TopicConfig { return get(&t.t, name) }

// IsSystem reports whether a topic is one the broker created for itself.
func (t *Topics) IsSystem(name string) bool {
	t.sysMu.RLock()
	defer t.sysMu.RUnlock()
	return t.system[name] || strings.HasPrefix(name, "rmq_sys_")
}

// EnsureSystem creates a system topic unless it already exists, and marks it
// as system so that admin requests cannot change or delete it.
func (t *Topics) EnsureSystem(tc wire.TopicConfig) error {
	t.sysMu.Lock()
	t.system[tc.TopicName] = true
	t.sysMu.Unlock()
	_, _, err := t.CreateIfAbsent(tc, true)
	return err
}

// Put stores a topic config, bumps the data version and persists the table.
// It reports whether anything changed.
func (t *Topics) Put(tc wire.TopicConfig) (bool, error) {
	if tc.TopicFilterType == "" {
		tc.TopicFilterType = "SINGLE_TAG"
	}
	_, changed, err := t.t.put(tc.TopicName, tc, func(old *wire.TopicConfig) bool { return old.Equal(&tc) }, true)
	return changed, err
}

// CreateIfAbsent stores tc unless a topic of that name exists; it returns
// the config in force and whether it was created. durable writes the file
// before returning (a topic an acknowledged message lives in); otherwise
// the next Flush does (a retry topic the next heartbeat creates again).
func (t *Topics) CreateIfAbsent(tc wire.TopicConfig, durable bool) (*wire.TopicConfig, bool, error) {
	if tc.TopicFilterType == "" {
		tc.TopicFilterType = "SINGLE_TAG"
	}
	return t.t.put(tc.TopicName, tc, func(*wire.TopicConfig) bool { return true }, durable)
}

// Flush writes topics.json if a change is waiting.
func (t *Topics) Flush() error { return t.t.flush() }

// Delete removes a topic; it reports whether it existed.
func (t *Topics) Delete(name string) (bool, error) { return t.t.remove(name) }

// Names lists topic names, sorted.
func (t *Topics) Names() []string { return t.t.names() }

// Snapshot returns a copy of the table with its data version.
func (t *Topics) Snapshot() wire.TopicConfigSerializeWrapper {
	v, m := t.t.snapshot()
	return wire.TopicConfigSerializeWrapper{DataVersion: v, TopicConfigTable: m}
}

// Replace adopts a master's whole topic table (a slave's metadata sync,
// Java's SlaveSynchronize.syncTopicConfig) when its data version differs
// from the one in force, and persists it. Entries the broker could not
// serve are left out and returned as errors; the rest is adopted.
func (t *Topics) Replace(w wire.TopicConfigSerializeWrapper) (changed bool, skipped []error, err error) {
	m := make(map[string]*wire.TopicConfig, len(w.TopicConfigTable))
	for name, tc := range w.TopicConfigTable {
		if tc == nil {
			continue
		}
		if err := checkTopicConfig(tc); err != nil {
			skipped = append(skipped, fmt.Errorf("topic %q: %w", name, err))
			continue
		}
		cp := *tc
		cp.TopicName = name
		if cp.TopicFilterType == "" {
			cp.TopicFilterType = "SINGLE_TAG"
		}
		m[name] = &cp
	}
	changed, err = t.t.replace(w.DataVersion, m)
	return changed, skipped, err
}

// Bump advances the data version: a brokerPermission change re-registers
// every topic with a new perm, and name servers only re-read a broker's
// topics when its version moves.
func (t *Topics) Bump() { t.t.bump() }
