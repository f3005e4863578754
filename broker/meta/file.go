// Package meta holds the broker's persisted metadata: topic configs,
// subscription groups and committed consumer offsets. Each table is written as
// one JSON file with RocketMQ's name and shape under <store>/config/.
package meta

import (
	"sync"

	"github.com/mqops/mqops/atomicfile"
)

// persister writes one table's file. Writes are serialised and each one
// encodes the table's state at the time it runs, so a slow writer can
// never rename an older snapshot over a newer one.
type persister struct {
	mu   sync.Mutex
	path string
}

func (p *persister) persist(encode func() []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return atomicfile.Write(p.path, encode(), atomicfile.Options{Backup: true})
}
