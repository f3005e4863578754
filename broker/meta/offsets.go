package meta

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/mqops/mqops/wire"
)

// Offsets holds committed consumer offsets, group → topic → queueId → next
// offset to consume, persisted as consumerOffset.json in RocketMQ's shape
// ({"offsetTable":{"topic@group":{queueId:offset}}}). Commits arrive every
// 5 s per queue per consumer and piggy-back on most pulls, so they update
// memory without allocating and are flushed periodically (and at
// shutdown): a crash re-delivers at most one flush interval of messages,
// which at-least-once consumers tolerate.
type Offsets struct {
	file persister

	mu    sync.Mutex
	table map[string]map[string]map[int32]int64
	dirty bool
}

type offsetFile struct {
	OffsetTable map[string]map[int32]int64 `json:"offsetTable"`
}

// LoadOffsets reads consumerOffset.json from path, or its .bak when the
// file is torn; it fails when neither is usable. Negative offsets and
// queue ids, which earlier builds stored as sent, are dropped with a
// warning: the consumer then starts from its ConsumeFromWhere.
func LoadOffsets(path string, log *slog.Logger) (*Offsets, error) {
	o := &Offsets{file: persister{path: path}, table: map[string]map[string]map[int32]int64{}}
	var f offsetFile
	err := load(path, log, func(b []byte) error {
		f = offsetFile{}
		return json.Unmarshal(b, &f)
	})
	if err != nil {
		return nil, err
	}
	for k, qs := range f.OffsetTable {
		i := strings.LastIndexByte(k, '@')
		if i < 0 || qs == nil {
			continue
		}
		for q, off := range qs {
			if q < 0 || off < 0 {
				log.Warn("[CONFIG_LOAD] impossible consumer offset dropped", "file", path, "topic@group", k, "queueId", q, "offset", off)
				continue
			}
			o.queues(k[i+1:], k[:i], true)[q] = off
		}
	}
	return o, nil
}

// queues returns the queue map of (group, topic); the []byte form of the
// group looks up without allocating.
func (o *Offsets) queues(group, topic string, create bool) map[int32]int64 {
	return queuesOf(o, group, topic, create)
}

func queuesOf[T ~string | ~[]byte](o *Offsets, group T, topic string, create bool) map[int32]int64 {
	g := o.table[string(group)]
	if g == nil {
		if !create {
			return nil
		}
		g = map[string]map[int32]int64{}
		o.table[string(group)] = g
	}
	qs := g[topic]
	if qs == nil && create {
		qs = map[int32]int64{}
		g[topic] = qs
	}
	return qs
}

// Commit stores an offset unconditionally, as Java does (lower values too).
func Commit[T ~string | ~[]byte](o *Offsets, group T, topic string, queueID int32, offset int64) {
	o.mu.Lock()
	qs := queuesOf(o, group, topic, true)
	if old, ok := qs[queueID]; !ok || old != offset {
		qs[queueID] = offset
		o.dirty = true
	}
	o.mu.Unlock()
}

// Commit stores an offset unconditionally.
func (o *Offsets) Commit(group, topic string, queueID int32, offset int64) {
	Commit(o, group, topic, queueID, offset)
}

// Query returns the committed offset, ok=false when none exists.
func (o *Offsets) Query(group, topic string, queueID int32) (int64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	v, ok := o.queues(group, topic, false)[queueID]
	return v, ok
}

// DeleteGroup drops every offset of a group.
func (o *Offsets) DeleteGroup(group string) {
	o.mu.Lock()
	if _, ok := o.table[group]; ok {
		delete(o.table, group)
		o.dirty = true
	}
	o.mu.Unlock()
}

// Encode returns the JSON of the whole table in RocketMQ's shape.
func (o *Offsets) Encode() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.encodeLocked()
}

func (o *Offsets) encodeLocked() []byte {
	f := offsetFile{OffsetTable: map[string]map[int32]int64{}}
	for g, topics := range o.table {
		for t, qs := range topics {
			f.OffsetTable[t+"@"+g] = qs
		}
	}
	b, _ := json.Marshal(f) // maps of strings and ints always encode
	return b
}

// Flush persists the table if it changed since the last flush.
func (o *Offsets) Flush() error {
	o.mu.Lock()
	dirty := o.dirty
	o.mu.Unlock()
	if !dirty {
		return nil
	}
	return o.Persist()
}

// Persist writes the table now and returns once it is on disk. Flush
// returns at once while another Flush is still writing the change; an
// offset that must be durable before an answer (a POP offset reset)
// needs Persist.
func (o *Offsets) Persist() error {
	o.mu.Lock()
	o.dirty = false
	o.mu.Unlock()
	err := o.file.persist(func() []byte {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.encodeLocked()
	})
	if err != nil {
		o.mu.Lock()
		o.dirty = true
		o.mu.Unlock()
	}
	return err
}

// Merge adopts a master's offset table (GET_ALL_CONSUMER_OFFSET's body,
// a slave's metadata sync): as Java's SlaveSynchronize.syncConsumerOffset
// (a putAll), each topic@group of the body replaces that entry's queue
// map and entries the body lacks stay. Java writes numeric map keys
// unquoted; both spellings are read. The table is persisted before Merge
// returns. Entries that are no position (no '@', negative queue or
// offset) are left out.
func (o *Offsets) Merge(body []byte) error {
	std, err := wire.QuoteObjectKeys(body)
	if err != nil {
		return fmt.Errorf("consumer offsets: %w", err)
	}
	var f offsetFile
	if err := json.Unmarshal(std, &f); err != nil {
		return fmt.Errorf("consumer offsets: %w", err)
	}
	o.mu.Lock()
	for k, qs := range f.OffsetTable {
		i := strings.LastIndexByte(k, '@')
		if i < 0 || qs == nil {
			continue
		}
		next := make(map[int32]int64, len(qs))
		for q, off := range qs {
			if q >= 0 && off >= 0 {
				next[q] = off
			}
		}
		group, topic := k[i+1:], k[:i]
		if o.table[group] == nil {
			o.table[group] = map[string]map[int32]int64{}
		}
		o.table[group][topic] = next
	}
	o.dirty = true
	o.mu.Unlock()
	return o.Flush()
}

// TopicsOf lists the topics a group has committed offsets for, sorted.
func (o *Offsets) TopicsOf(group string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]string, 0, len(o.table[group]))
	for t := range o.table[group] {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// MinCommitted returns the lowest committed offset of a queue over the
// groups holding offsets for its topic (a group without an entry for the
// queue counts as 0: it has read nothing there); ok is false when no
// group holds offsets for the topic.
func (o *Offsets) MinCommitted(topic string, queueID int32) (offset int64, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, topics := range o.table {
		qs, has := topics[topic]
		if !has {
			continue
		}
		off := qs[queueID] // 0 when missing
		if !ok || off < offset {
			offset = off
		}
		ok = true
	}
	return offset, ok
}

// GroupsOf lists the groups holding offsets for a topic, sorted.
func (o *Offsets) GroupsOf(topic string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for g, topics := range o.table {
		if _, ok := topics[topic]; ok {
			out = append(out, g)
		}
	}
	sort.Strings(out)
	return out
}

// Groups lists every group holding offsets, sorted.
func (o *Offsets) Groups() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]string, 0, len(o.table))
	for g := range o.table {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}
