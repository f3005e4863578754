package meta

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

// Offsets holds committed consumer offsets keyed "topic@group" → queueId →
// next offset to consume, persisted as consumerOffset.json. Commits arrive
// every 5 s per queue per consumer, so they are kept in memory and flushed
// periodically (and at shutdown): a crash re-delivers at most one flush
// interval of messages, which at-least-once consumers tolerate.
type Offsets struct {
	path string

	mu    sync.Mutex
	table map[string]map[int32]int64
	dirty bool
}

type offsetFile struct {
	OffsetTable map[string]map[int32]int64 `json:"offsetTable"`
}

// LoadOffsets reads consumerOffset.json (or its .bak) from path.
func LoadOffsets(path string) (*Offsets, error) {
	o := &Offsets{path: path, table: map[string]map[int32]int64{}}
	b, err := readFileOrBak(path)
	if err != nil {
		return nil, err
	}
	if b != nil {
		var f offsetFile
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("parse %s: %w", path, err)
		}
		for k, v := range f.OffsetTable {
			if v != nil {
				o.table[k] = v
			}
		}
	}
	return o, nil
}

func offsetKey(topic, group string) string { return topic + "@" + group }

// Commit stores an offset unconditionally, as Java does (lower values too).
func (o *Offsets) Commit(group, topic string, queueID int32, offset int64) {
	k := offsetKey(topic, group)
	o.mu.Lock()
	m := o.table[k]
	if m == nil {
		m = map[int32]int64{}
		o.table[k] = m
	}
	if old, ok := m[queueID]; !ok || old != offset {
		m[queueID] = offset
		o.dirty = true
	}
	o.mu.Unlock()
}

// Query returns the committed offset, ok=false when none exists.
func (o *Offsets) Query(group, topic string, queueID int32) (int64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	v, ok := o.table[offsetKey(topic, group)][queueID]
	return v, ok
}

// Table returns a copy of one group's offsets on one topic.
func (o *Offsets) Table(group, topic string) map[int32]int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	src := o.table[offsetKey(topic, group)]
	out := make(map[int32]int64, len(src))
	for q, v := range src {
		out[q] = v
	}
	return out
}

// TopicsOf lists topics a group has offsets for.
func (o *Offsets) TopicsOf(group string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for k := range o.table {
		if i := strings.LastIndexByte(k, '@'); i >= 0 && k[i+1:] == group {
			out = append(out, k[:i])
		}
	}
	return out
}

// GroupsOf lists groups holding offsets for a topic.
func (o *Offsets) GroupsOf(topic string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for k := range o.table {
		if i := strings.LastIndexByte(k, '@'); i >= 0 && k[:i] == topic {
			out = append(out, k[i+1:])
		}
	}
	return out
}

// DeleteGroup drops every offset of a group.
func (o *Offsets) DeleteGroup(group string) {
	o.mu.Lock()
	for k := range o.table {
		if i := strings.LastIndexByte(k, '@'); i >= 0 && k[i+1:] == group {
			delete(o.table, k)
			o.dirty = true
		}
	}
	o.mu.Unlock()
}

// Encode returns the JSON of the whole table.
func (o *Offsets) Encode() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	b, _ := json.Marshal(offsetFile{OffsetTable: o.table})
	return b
}

// Flush persists the table if it changed since the last flush.
func (o *Offsets) Flush() error {
	o.mu.Lock()
	if !o.dirty {
		o.mu.Unlock()
		return nil
	}
	b, err := json.Marshal(offsetFile{OffsetTable: o.table})
	o.dirty = false
	o.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode consumer offsets: %w", err)
	}
	if err := writeFileAtomic(o.path, b); err != nil {
		o.mu.Lock()
		o.dirty = true
		o.mu.Unlock()
		return err
	}
	return nil
}
