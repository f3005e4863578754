package meta

import (
	"sort"
	"sync"
	"time"

	"github.com/mqops/mqops/wire"
)

// table is a persisted, versioned map of immutable configs: updates replace
// the pointer, so readers may keep what get returned. Every change bumps
// the data version (name servers re-read a broker's topics only when it
// moves) and is written to the file, at once (durable) or by the next
// flush.
type table[T any] struct {
	file persister
	// encode renders the whole table in RocketMQ's file shape.
	encode func(version wire.DataVersion, m map[string]*T) any

	mu      sync.RWMutex
	m       map[string]*T
	version wire.DataVersion
}

func newTable[T any](path string, encode func(wire.DataVersion, map[string]*T) any) table[T] {
	return table[T]{file: persister{path: path}, encode: encode, m: map[string]*T{}}
}

// get looks a name up; a []byte name does not allocate.
func get[T any, N ~string | ~[]byte](t *table[T], name N) *T {
	t.mu.RLock()
	v := t.m[string(name)]
	t.mu.RUnlock()
	return v
}

// put stores v under name unless keep says the current value stays; it
// returns the value in force and whether it changed. durable writes the
// file before returning; otherwise the next flush does.
func (t *table[T]) put(name string, v T, keep func(old *T) bool, durable bool) (*T, bool, error) {
	t.mu.Lock()
	if old, ok := t.m[name]; ok && keep(old) {
		t.mu.Unlock()
		return old, false, nil
	}
	cp := v
	t.m[name] = &cp
	t.bumpLocked()
	t.mu.Unlock()
	if !durable {
		t.file.dirty.Store(true)
		return &cp, true, nil
	}
	return &cp, true, t.save()
}

// remove deletes name and writes the file; it reports whether it existed.
func (t *table[T]) remove(name string) (bool, error) {
	t.mu.Lock()
	if _, ok := t.m[name]; !ok {
		t.mu.Unlock()
		return false, nil
	}
	delete(t.m, name)
	t.bumpLocked()
	t.mu.Unlock()
	return true, t.save()
}

func (t *table[T]) bumpLocked() {
	t.version = wire.DataVersion{Counter: t.version.Counter + 1, Timestamp: time.Now().UnixMilli()}
}

// snapshot copies every entry, with the data version.
func (t *table[T]) snapshot() (wire.DataVersion, map[string]*T) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make(map[string]*T, len(t.m))
	for k, v := range t.m {
		cp := *v
		out[k] = &cp
	}
	return t.version, out
}

// names lists the keys, sorted.
func (t *table[T]) names() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]string, 0, len(t.m))
	for k := range t.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (t *table[T]) render() []byte {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return wire.Marshal(t.encode(t.version, t.m))
}

// save writes the table as it is when the write runs.
func (t *table[T]) save() error { return t.file.persist(t.render) }

// flush writes the table if a change since the last write is waiting.
func (t *table[T]) flush() error { return t.file.flush(t.render) }

// bump advances the data version without changing entries.
func (t *table[T]) bump() {
	t.mu.Lock()
	t.bumpLocked()
	t.mu.Unlock()
}

// replace swaps in a whole table with its version (a slave adopting its
// master's) unless the version is the one in force; it reports whether it
// did, and writes the file before returning.
func (t *table[T]) replace(version wire.DataVersion, m map[string]*T) (bool, error) {
	t.mu.Lock()
	if t.version == version {
		t.mu.Unlock()
		return false, nil
	}
	t.m, t.version = m, version
	t.mu.Unlock()
	return true, t.save()
}
