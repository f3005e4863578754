package namesrv

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/mqops/mqops/atomicfile"
)

// orderTopicNamespace is the only KV namespace with built-in meaning: topic
// → "brokerName:queueNums;…" for ordered topics, as Java's updateTopic -o
// writes it (apache/rocketmq
// tools/src/main/java/org/apache/rocketmq/tools/command/topic/UpdateTopicSubCommand.java).
const orderTopicNamespace = "ORDER_TOPIC_CONFIG"

// kvFile is the persisted form, identical to Java's KVConfigSerializeWrapper.
type kvFile struct {
	ConfigTable map[string]map[string]string `json:"configTable"`
}

// kvStore is the namespaced key/value config. Every change is written to
// disk before it is acknowledged, so a crash never loses an acknowledged put.
type kvStore struct {
	path string

	mu    sync.RWMutex
	table map[string]map[string]string
}

// loadKV reads path; a missing file is an empty store. A corrupt file is an
// error rather than an empty store so that a restart cannot silently drop
// the ordered-topic configuration.
func loadKV(path string) (*kvStore, error) {
	kv := &kvStore{path: path, table: make(map[string]map[string]string)}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return kv, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read kv config: %w", err)
	}
	if len(b) == 0 {
		return kv, nil
	}
	var f kvFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse kv config %s: %w", path, err)
	}
	for ns, m := range f.ConfigTable {
		if m == nil {
			m = make(map[string]string)
		}
		kv.table[ns] = m
	}
	return kv, nil
}

func (kv *kvStore) get(ns, key string) (string, bool) {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	v, ok := kv.table[ns][key]
	return v, ok
}

// list copies a namespace. ok is false when the namespace never existed; an
// emptied namespace stays and is returned empty, as in Java, so that brokers
// receiving it clear the order flag of every topic.
func (kv *kvStore) list(ns string) (map[string]string, bool) {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	m, ok := kv.table[ns]
	if !ok {
		return nil, false
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out, true
}

// put stores a value and persists; on a write failure the change is undone.
func (kv *kvStore) put(ns, key, value string) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	m, nsExisted := kv.table[ns]
	if !nsExisted {
		m = make(map[string]string)
		kv.table[ns] = m
	}
	old, keyExisted := m[key]
	m[key] = value
	if err := kv.persistLocked(); err != nil {
		switch {
		case !nsExisted:
			delete(kv.table, ns)
		case keyExisted:
			m[key] = old
		default:
			delete(m, key)
		}
		return err
	}
	return nil
}

// delete removes a key and persists; deleting an absent key is a no-op.
func (kv *kvStore) delete(ns, key string) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	m := kv.table[ns]
	old, ok := m[key]
	if !ok {
		return nil
	}
	delete(m, key)
	if err := kv.persistLocked(); err != nil {
		m[key] = old
		return err
	}
	return nil
}

// persistLocked replaces the file atomically: temp file, fsync, rename,
// fsync of the directory.
func (kv *kvStore) persistLocked() error {
	b, err := json.Marshal(kvFile{ConfigTable: kv.table})
	if err != nil {
		return fmt.Errorf("encode kv config: %w", err)
	}
	if err := atomicfile.Write(kv.path, b, atomicfile.Options{}); err != nil {
		return fmt.Errorf("persist kv config: %w", err)
	}
	return nil
}
