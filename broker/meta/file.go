// Package meta holds the broker's persisted metadata: topic configs,
// subscription groups and committed consumer offsets. Each table is written as
// one JSON file with RocketMQ's name and shape under <store>/config/.
package meta

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/mqops/mqops/atomicfile"
)

// persister writes one table's file. Writes are serialised and each one
// encodes the table's state at the time it runs, so a slow writer can
// never rename an older snapshot over a newer one.
//
// A file holds the whole table, so writing it on every change costs
// O(n) per change and O(n²) for n changes (heartbeats naming n new
// groups). Changes that can be lost in a crash only mark the file dirty;
// Flush, called periodically by the broker and at shutdown, writes it
// once for all of them.
type persister struct {
	mu    sync.Mutex
	path  string
	dirty atomic.Bool
}

// persist writes the file now; it covers every change marked dirty so far.
func (p *persister) persist(encode func() []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dirty.Store(false)
	if err := atomicfile.Write(p.path, encode(), atomicfile.Options{Backup: true}); err != nil {
		p.dirty.Store(true)
		return err
	}
	return nil
}

// flush writes the file if a change is waiting.
func (p *persister) flush(encode func() []byte) error {
	if !p.dirty.Load() {
		return nil
	}
	return p.persist(encode)
}

// load reads a table's file with parse, falling back to its .bak copy
// when the file is torn or fails validation (logged as an error naming
// both); it fails when neither is usable rather than start empty.
func load(path string, log *slog.Logger, parse func([]byte) error) error {
	fellBack, err := atomicfile.Load(path, parse)
	if err != nil {
		return err
	}
	if fellBack != nil {
		log.Error("[CONFIG_LOAD] file unusable, loaded its backup instead", "file", path, "backup", path+".bak", "err", fellBack)
	}
	return nil
}
