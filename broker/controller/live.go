package controller

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// replicaKey names one replica across clusters (BrokerIdentityInfo).
type replicaKey struct {
	cluster, name string
	id            int64
}

// liveEntry is one replica's last heartbeat (BrokerLiveInfo).
type liveEntry struct {
	addr     string
	lastSeen time.Time
	timeout  time.Duration
	conn     *remoting.Conn
	epoch    int32
	maxOff   int64
	confirm  int64
	priority int32
}

// liveTable is this node's view of which replicas heartbeat: every
// controller keeps its own, nothing of it is replicated.
type liveTable struct {
	mu      sync.Mutex
	entries map[replicaKey]*liveEntry
	now     func() time.Time
}

func newLiveTable() *liveTable {
	return &liveTable{entries: map[replicaKey]*liveEntry{}, now: time.Now}
}

// heartbeat records h, keeping the highest (epoch, maxOffset) seen as
// DefaultBrokerHeartbeatManager.onBrokerHeartbeat does.
func (t *liveTable) heartbeat(h *wire.BrokerHeartbeatHeader, c *remoting.Conn) {
	k := replicaKey{h.ClusterName, h.BrokerName, h.BrokerID}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[k]
	if e == nil {
		t.entries[k] = &liveEntry{addr: h.BrokerAddr, lastSeen: t.now(), timeout: time.Duration(h.HeartbeatTimeoutMillis) * time.Millisecond,
			conn: c, epoch: h.Epoch, maxOff: h.MaxOffset, confirm: h.ConfirmOffset, priority: h.ElectionPriority}
		return
	}
	e.lastSeen = t.now()
	e.timeout = time.Duration(h.HeartbeatTimeoutMillis) * time.Millisecond
	e.priority = h.ElectionPriority
	e.addr, e.conn = h.BrokerAddr, c
	if h.Epoch > e.epoch || h.Epoch == e.epoch && h.MaxOffset > e.maxOff {
		e.epoch, e.maxOff, e.confirm = h.Epoch, h.MaxOffset, h.ConfirmOffset
	}
}

func (t *liveTable) isAlive(e *liveEntry, now time.Time) bool {
	return now.Sub(e.lastSeen) < e.timeout
}

// aliveIn lists the live replicas of one set, ordered by id.
func (t *liveTable) aliveIn(cluster, name string) []liveInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var out []liveInfo
	for k, e := range t.entries {
		if k.name == name && (cluster == "" || k.cluster == cluster) && t.isAlive(e, now) {
			out = append(out, liveInfo{ID: k.id, Epoch: e.epoch, MaxOff: e.maxOff, Priority: e.priority})
		}
	}
	slices.SortFunc(out, func(a, b liveInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// conns returns the heartbeat connections of a set's live replicas.
func (t *liveTable) conns(cluster, name string) []*remoting.Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var out []*remoting.Conn
	for k, e := range t.entries {
		if k.name == name && k.cluster == cluster && t.isAlive(e, now) && e.conn != nil {
			out = append(out, e.conn)
		}
	}
	return out
}

// expire drops replicas silent past their timeout and returns them.
func (t *liveTable) expire() []replicaKey {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var gone []replicaKey
	for k, e := range t.entries {
		if !t.isAlive(e, now) {
			delete(t.entries, k)
			gone = append(gone, k)
		}
	}
	return gone
}

// closed drops the replicas whose heartbeat connection c was and returns
// them: a closed connection means the broker is gone now, not in 10 s.
func (t *liveTable) closed(c *remoting.Conn) []replicaKey {
	if c == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var gone []replicaKey
	for k, e := range t.entries {
		if e.conn == c {
			delete(t.entries, k)
			gone = append(gone, k)
		}
	}
	return gone
}
