// Package controller is the RocketMQ 5 controller: a Raft group (hashicorp/raft)
// that keeps, per broker set, the registered replicas, the master and its
// epoch, and the SyncStateSet, elects masters when they die and fences
// stale ones. It follows apache/rocketmq 5.x
// controller/src/main/java/org/apache/rocketmq/controller (ReplicasInfoManager,
// DefaultElectPolicy, DLedgerController, DefaultBrokerHeartbeatManager).
package controller

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/mqops/mqops/wire"
)

// replica is one registered broker id of a set.
type replica struct {
	Addr      string `json:"addr"`
	CheckCode string `json:"checkCode"`
}

// brokerSet is Java's BrokerReplicaInfo and SyncStateInfo of one brokerName.
type brokerSet struct {
	ClusterName  string            `json:"clusterName"`
	BrokerName   string            `json:"brokerName"`
	NextBrokerID int64             `json:"nextAssignBrokerId"`
	Replicas     map[int64]replica `json:"replicas"`
	// MasterID is nil while the set has no master.
	MasterID          *int64  `json:"masterBrokerId"`
	MasterEpoch       int32   `json:"masterEpoch"`
	SyncStateSet      []int64 `json:"syncStateSet"` // sorted
	SyncStateSetEpoch int32   `json:"syncStateSetEpoch"`
}

func (b *brokerSet) addr(id *int64) string {
	if id == nil {
		return ""
	}
	return b.Replicas[*id].Addr
}

func (b *brokerSet) inSync(id int64) bool { return slices.Contains(b.SyncStateSet, id) }

func (b *brokerSet) clone() *brokerSet {
	c := *b
	c.Replicas = maps.Clone(b.Replicas)
	c.SyncStateSet = slices.Clone(b.SyncStateSet)
	if b.MasterID != nil {
		id := *b.MasterID
		c.MasterID = &id
	}
	return &c
}

// liveInfo is what a command carries about one replica the proposing
// leader saw alive: liveness is per node and not replicated, so it enters
// the log with the command and Apply decides from it deterministically.
type liveInfo struct {
	ID       int64 `json:"id"`
	Epoch    int32 `json:"epoch"`
	MaxOff   int64 `json:"maxOffset"`
	Priority int32 `json:"priority"`
}

// Command operations, one per Raft log entry.
const (
	opApplyBrokerID = "applyBrokerId"
	opRegister      = "registerBroker"
	opElectMaster   = "electMaster"
	opAlterSyncSet  = "alterSyncStateSet"
	opCleanBroker   = "cleanBrokerData"
)

// command is one Raft log entry. Preconditions are checked in Apply
// against the state at that point of the log, so concurrent requests are
// validated in log order and every replica reaches the same answer.
type command struct {
	Op      string     `json:"op"`
	Cluster string     `json:"cluster,omitempty"`
	Name    string     `json:"name"`
	ID      int64      `json:"id"`
	Addr    string     `json:"addr,omitempty"`
	Code    string     `json:"checkCode,omitempty"`
	Alive   []liveInfo `json:"alive,omitempty"`
	// electMaster
	Designate bool `json:"designate,omitempty"`
	Unclean   bool `json:"unclean,omitempty"`
	// alterSyncStateSet
	MasterEpoch int32   `json:"masterEpoch,omitempty"`
	SSEpoch     int32   `json:"ssEpoch,omitempty"`
	Set         []int64 `json:"set,omitempty"`
	// cleanBrokerData
	IDs         []int64 `json:"ids,omitempty"`
	CleanLiving bool    `json:"cleanLiving,omitempty"`
}

// result is what Apply returns and the leader sends back unchanged.
type result struct {
	Code   int32
	Remark string
	Fields map[string]string
	Body   []byte
	// Elected is set when a new master was recorded: the leader then
	// notifies the set's live replicas.
	Elected *brokerSet
}

func fail(code int32, format string, args ...any) *result {
	return &result{Code: code, Remark: fmt.Sprintf(format, args...)}
}

// fsm is the replicated state machine.
type fsm struct {
	mu   sync.RWMutex
	sets map[string]*brokerSet
}

func newFSM() *fsm { return &fsm{sets: map[string]*brokerSet{}} }

// Apply implements raft.FSM. A malformed entry cannot come from this
// program; it is answered with an error rather than crashing every node.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	var c command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return fail(wire.SystemError, "undecodable controller log entry %d: %v", l.Index, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch c.Op {
	case opApplyBrokerID:
		return f.applyBrokerID(&c)
	case opRegister:
		return f.register(&c)
	case opElectMaster:
		return f.electMaster(&c)
	case opAlterSyncSet:
		return f.alterSyncStateSet(&c)
	case opCleanBroker:
		return f.cleanBrokerData(&c)
	}
	return fail(wire.SystemError, "unknown controller log operation %q", c.Op)
}

// get returns a copy of one set, nil when unknown.
func (f *fsm) get(name string) *brokerSet {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if b := f.sets[name]; b != nil {
		return b.clone()
	}
	return nil
}

// all returns copies of every set.
func (f *fsm) all() []*brokerSet {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]*brokerSet, 0, len(f.sets))
	for _, name := range slices.Sorted(maps.Keys(f.sets)) {
		out = append(out, f.sets[name].clone())
	}
	return out
}

func syncStateBody(b *brokerSet) []byte {
	return wire.Marshal(&wire.SyncStateSet{SyncStateSet: nonNil(b.SyncStateSet), SyncStateSetEpoch: b.SyncStateSetEpoch})
}

func nonNil(s []int64) []int64 {
	if s == nil {
		return []int64{}
	}
	return s
}

// applyBrokerID is CONTROLLER_APPLY_BROKER_ID: an id is granted if unused
// or already held by the same registerCheckCode; a new set starts at 1.
func (f *fsm) applyBrokerID(c *command) *result {
	fields := map[string]string{"clusterName": c.Cluster, "brokerName": c.Name}
	addr, _, _ := strings.Cut(c.Code, ";")
	b := f.sets[c.Name]
	if b == nil {
		if c.ID != wire.FirstBrokerControllerID {
			return fail(wire.ControllerBrokerIDInvalid, "Broker-set: %s hasn't been registered in controller, but broker try to apply brokerId: %d", c.Name, c.ID)
		}
		f.sets[c.Name] = &brokerSet{
			ClusterName: c.Cluster, BrokerName: c.Name, NextBrokerID: wire.FirstBrokerControllerID + 1,
			Replicas: map[int64]replica{c.ID: {Addr: addr, CheckCode: c.Code}},
		}
		return &result{Fields: fields}
	}
	r, exists := b.Replicas[c.ID]
	if exists && r.CheckCode != c.Code {
		return fail(wire.ControllerBrokerIDInvalid, "Fail to apply brokerId: %d in broker-set: %s", c.ID, c.Name)
	}
	if !exists {
		b.Replicas[c.ID] = replica{Addr: addr, CheckCode: c.Code}
		b.NextBrokerID++
	}
	return &result{Fields: fields}
}

// register is CONTROLLER_REGISTER_BROKER: it tells a registered replica
// the live master, if any, and records a changed address.
func (f *fsm) register(c *command) *result {
	b := f.sets[c.Name]
	if b == nil {
		return fail(wire.ControllerBrokerNeedToBeRegistered, "Broker-set: %s hasn't been registered in controller", c.Name)
	}
	r, ok := b.Replicas[c.ID]
	if !ok {
		return fail(wire.ControllerBrokerNeedToBeRegistered, "BrokerId: %d hasn't been registered in broker-set: %s", c.ID, c.Name)
	}
	if r.Addr != c.Addr {
		r.Addr = c.Addr
		b.Replicas[c.ID] = r
	}
	h := wire.MasterInfoHeader{ClusterName: c.Cluster, BrokerName: c.Name}
	if b.MasterID != nil && isAliveIn(c.Alive, *b.MasterID) {
		h.HasMaster, h.MasterBrokerID, h.MasterAddress = true, *b.MasterID, b.addr(b.MasterID)
		h.MasterEpoch, h.SyncStateSetEpoch, h.HasSyncStateSetEpoch = b.MasterEpoch, b.SyncStateSetEpoch, true
	}
	return &result{Fields: h.Fields(), Body: syncStateBody(b)}
}

func isAliveIn(live []liveInfo, id int64) bool {
	return slices.ContainsFunc(live, func(l liveInfo) bool { return l.ID == id })
}

// electMaster is CONTROLLER_ELECT_MASTER (ReplicasInfoManager.electMaster
// with DefaultElectPolicy). c.ID is the requesting broker, -1 when the
// controller itself asks.
func (f *fsm) electMaster(c *command) *result {
	b := f.sets[c.Name]
	if b == nil {
		return fail(wire.ControllerBrokerNeedToBeRegistered, "Broker hasn't been registered")
	}
	var newMaster *int64
	if b.MasterEpoch == 0 && c.ID != -1 {
		if _, ok := b.Replicas[c.ID]; ok {
			id := c.ID
			newMaster = &id
		}
	}
	if newMaster == nil {
		var prefer *int64
		if c.Designate {
			id := c.ID
			prefer = &id
		}
		newMaster = elect(b.SyncStateSet, c.Alive, b.MasterID, prefer)
		if newMaster == nil && c.Unclean {
			newMaster = elect(slices.Sorted(maps.Keys(b.Replicas)), c.Alive, b.MasterID, prefer)
		}
	}
	if newMaster != nil && b.MasterID != nil && *newMaster == *b.MasterID {
		h := wire.MasterInfoHeader{HasMaster: true, MasterBrokerID: *b.MasterID, MasterAddress: b.addr(b.MasterID),
			MasterEpoch: b.MasterEpoch, SyncStateSetEpoch: b.SyncStateSetEpoch, HasSyncStateSetEpoch: true}
		return &result{
			Code:   wire.ControllerMasterStillExist,
			Remark: fmt.Sprintf("The old master %d is still alive, not need to elect new master for broker %s", *b.MasterID, b.BrokerName),
			Fields: h.Fields(),
			Body:   wire.Marshal(&wire.ElectMasterResponseBody{SyncStateSet: nonNil(b.SyncStateSet)}),
		}
	}
	if newMaster != nil {
		b.MasterID = newMaster
		b.MasterEpoch++
		b.SyncStateSet = []int64{*newMaster}
		b.SyncStateSetEpoch++
		h := wire.MasterInfoHeader{HasMaster: true, MasterBrokerID: *newMaster, MasterAddress: b.addr(newMaster),
			MasterEpoch: b.MasterEpoch, SyncStateSetEpoch: b.SyncStateSetEpoch, HasSyncStateSetEpoch: true}
		addrs := make(map[int64]string, len(b.Replicas))
		for id, r := range b.Replicas {
			addrs[id] = r.Addr
		}
		body := wire.ElectMasterResponseBody{
			BrokerMemberGroup: &wire.BrokerMemberGroup{Cluster: b.ClusterName, BrokerName: b.BrokerName, BrokerAddrs: addrs},
			SyncStateSet:      []int64{*newMaster},
		}
		return &result{Fields: h.Fields(), Body: wire.Marshal(&body), Elected: b.clone()}
	}
	if c.ID == -1 {
		// The controller saw the master die and nobody can replace it:
		// record that there is no master (the epoch moves on, the
		// SyncStateSet is kept for a later election).
		b.MasterID = nil
		b.MasterEpoch++
		return fail(wire.ControllerMasterNotAvailable, "Old master has down and failed to elect a new broker master")
	}
	return fail(wire.ControllerElectMasterFailed, "Failed to elect a new master")
}

// elect is DefaultElectPolicy.tryElect over candidates: the alive ones;
// the old master if still alive and not overridden; the preferred id only
// if alive; else the best by (epoch desc, maxOffset desc, priority asc),
// ties to the lower id.
func elect(candidates []int64, live []liveInfo, oldMaster, prefer *int64) *int64 {
	var ok []liveInfo
	for _, l := range live {
		if slices.Contains(candidates, l.ID) {
			ok = append(ok, l)
		}
	}
	if len(ok) == 0 {
		return nil
	}
	if oldMaster != nil && isAliveIn(ok, *oldMaster) && (prefer == nil || *prefer == *oldMaster) {
		id := *oldMaster
		return &id
	}
	if prefer != nil {
		if isAliveIn(ok, *prefer) {
			id := *prefer
			return &id
		}
		return nil
	}
	best := slices.MinFunc(ok, func(a, b liveInfo) int {
		return cmp.Or(cmp.Compare(b.Epoch, a.Epoch), cmp.Compare(b.MaxOff, a.MaxOff),
			cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.ID, b.ID))
	})
	return &best.ID
}

// alterSyncStateSet is CONTROLLER_ALTER_SYNC_STATE_SET with Java's checks
// in Java's order; a stale master is fenced by its epoch (2000).
func (f *fsm) alterSyncStateSet(c *command) *result {
	b := f.sets[c.Name]
	if b == nil {
		return fail(wire.ControllerAlterSyncStateSetFailed, "Broker metadata is not existed")
	}
	newSet := slices.Compact(slices.Sorted(slices.Values(c.Set)))
	if slices.Equal(newSet, b.SyncStateSet) {
		return fail(wire.ControllerAlterSyncStateSetFailed, "The newSyncStateSet is equal with oldSyncStateSet, no needed to update syncStateSet")
	}
	if b.MasterID == nil || *b.MasterID != c.ID {
		cur := "null"
		if b.MasterID != nil {
			cur = fmt.Sprint(*b.MasterID)
		}
		return fail(wire.ControllerInvalidMaster, "Rejecting alter syncStateSet request because the current leader is:{%s}, not {%d}", cur, c.ID)
	}
	if c.MasterEpoch != b.MasterEpoch {
		return fail(wire.ControllerFencedMasterEpoch, "Rejecting alter syncStateSet request because the current master epoch is:{%d}, not {%d}", b.MasterEpoch, c.MasterEpoch)
	}
	if c.SSEpoch != b.SyncStateSetEpoch {
		return fail(wire.ControllerFencedSyncStateSetEpoch, "Rejecting alter syncStateSet request because the current syncStateSet epoch is:{%d}, not {%d}", b.SyncStateSetEpoch, c.SSEpoch)
	}
	for _, id := range newSet {
		if _, ok := b.Replicas[id]; !ok {
			return fail(wire.ControllerInvalidReplicas, "Rejecting alter syncStateSet request because the replicas {%d} don't exist", id)
		}
		if !isAliveIn(c.Alive, id) {
			return fail(wire.ControllerBrokerNotAlive, "Rejecting alter syncStateSet request because the replicas {%d} don't alive", id)
		}
	}
	if !slices.Contains(newSet, *b.MasterID) {
		return fail(wire.ControllerAlterSyncStateSetFailed, "Rejecting alter syncStateSet request because the newSyncStateSet don't contains origin leader {%d}", *b.MasterID)
	}
	b.SyncStateSet = newSet
	b.SyncStateSetEpoch++
	h := wire.AlterSyncStateSetResponseHeader{NewSyncStateSetEpoch: b.SyncStateSetEpoch}
	return &result{Fields: h.Fields(), Body: syncStateBody(b)}
}

// cleanBrokerData is CLEAN_BROKER_DATA: it forgets a whole set, or some of
// its ids, refusing while they are alive unless told otherwise.
func (f *fsm) cleanBrokerData(c *command) *result {
	b := f.sets[c.Name]
	if !c.CleanLiving {
		if len(c.IDs) == 0 && b != nil && b.MasterID != nil {
			return fail(wire.ControllerInvalidCleanBrokerMetadata, "Broker %s is still alive, clean up failure", c.Name)
		}
		for _, id := range c.IDs {
			if isAliveIn(c.Alive, id) {
				return fail(wire.ControllerInvalidCleanBrokerMetadata, "Broker [%s,  %d] is still alive, clean up failure", c.Name, id)
			}
		}
	}
	if b == nil {
		return fail(wire.ControllerInvalidCleanBrokerMetadata, "Broker %s is not existed,clean broker data failure.", c.Name)
	}
	if len(c.IDs) == 0 {
		delete(f.sets, c.Name)
		return &result{}
	}
	for _, id := range c.IDs {
		delete(b.Replicas, id)
		b.SyncStateSet = slices.DeleteFunc(b.SyncStateSet, func(x int64) bool { return x == id })
	}
	if len(b.Replicas) == 0 || len(b.SyncStateSet) == 0 {
		delete(f.sets, c.Name)
	}
	return &result{}
}

// snapshot is the JSON form of the whole state.
type snapshot struct {
	Sets map[string]*brokerSet `json:"sets"`
}

// Snapshot implements raft.FSM.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, err := json.Marshal(snapshot{Sets: f.sets})
	if err != nil {
		return nil, fmt.Errorf("encode controller snapshot: %w", err)
	}
	return fsmSnapshot(b), nil
}

// Restore implements raft.FSM.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var s snapshot
	if err := json.NewDecoder(rc).Decode(&s); err != nil {
		return fmt.Errorf("decode controller snapshot: %w", err)
	}
	if s.Sets == nil {
		s.Sets = map[string]*brokerSet{}
	}
	f.mu.Lock()
	f.sets = s.Sets
	f.mu.Unlock()
	return nil
}

type fsmSnapshot []byte

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("write controller snapshot: %w", err)
	}
	return sink.Close()
}

func (s fsmSnapshot) Release() {}
