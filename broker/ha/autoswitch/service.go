// Package autoswitch replicates the commit log in RocketMQ 5 controller mode
// with the AutoSwitch HA protocol (apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/ha/autoswitch/AutoSwitchHAService.java,
// AutoSwitchHAConnection.java, AutoSwitchHAClient.java; frames in
// wire/ha.go). It is the classic stream of raw commit-log ranges plus a
// handshake in which the master sends its epoch list, so a returning
// replica cuts the tail its log does not share with the master
// (epoch.FindConsistentPoint), and a confirm offset, so consumers only see
// bytes every in-sync replica holds. One Service per broker serves slaves
// while the broker is master and follows the master while it is a slave;
// the controller decides which (broker/replicas).
package autoswitch

import (
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/broker/ha"
	"github.com/mqops/mqops/broker/ha/epoch"
	"github.com/mqops/mqops/broker/store"
)

// Store is the commit log replicated (implemented by *store.Store).
type Store interface {
	MaxPhyOffset() int64
	MinPhyOffset() int64
	SegmentSize() int64
	// ViewCommitLog returns up to n bytes at off from the mapped log,
	// never past the end of off's segment or of the log.
	ViewCommitLog(off int64, n int) (store.CommitLogView, error)
	SetOnAppend(fn func(maxPhy int64))
	// AppendAt appends master bytes at off = MaxPhyOffset (a slave store).
	AppendAt(off int64, b []byte) error
	TruncateTo(off int64) error
	TruncatePartialTail() (int64, error)
	SetConfirmOffset(off int64)
	ConfirmOffset() int64
}

// Config holds the settings of broker.conf the protocol uses.
type Config struct {
	HeartbeatInterval    time.Duration // haSendHeartbeatInterval
	HousekeepingInterval time.Duration // haHousekeepingInterval
	TransferBatchSize    int           // haTransferBatchSize
	SlaveTimeout         time.Duration // slaveTimeout: SYNC wait for the replicas' acks
	// MaxTransferBytesPerSecond caps each connection's transfer (ha.Config).
	MaxTransferBytesPerSecond int64
	// AllAckInSyncStateSet: a send completes once every SyncStateSet member
	// holds it, and the confirm offset is the lowest member's ack.
	AllAckInSyncStateSet bool
	// InSyncReplicas: without AllAckInSyncStateSet, the replicas (master
	// included) that must hold a send.
	InSyncReplicas int
	// MaxTimeSlaveNotCatchup (haMaxTimeSlaveNotCatchup): a member not
	// caught up for this long leaves the SyncStateSet.
	MaxTimeSlaveNotCatchup time.Duration
	SyncFromLastFile       bool // slave: an empty replica copies only the master's last file
	AsyncLearner           bool // slave: never join the SyncStateSet
	// OnExpand is called (on its own goroutine) with the proposed
	// SyncStateSet when a slave has caught up and should join it.
	OnExpand func(set []int64)
	Log      *slog.Logger
}

func (c *Config) fill() {
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 5 * time.Second
	}
	if c.HousekeepingInterval <= 0 {
		c.HousekeepingInterval = 20 * time.Second
	}
	if c.TransferBatchSize <= 0 {
		c.TransferBatchSize = 32 << 10
	}
	if c.SlaveTimeout <= 0 {
		c.SlaveTimeout = 3 * time.Second
	}
	if c.MaxTimeSlaveNotCatchup <= 0 {
		c.MaxTimeSlaveNotCatchup = 15 * time.Second
	}
	if c.InSyncReplicas <= 0 {
		c.InSyncReplicas = 1
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Service is one broker's AutoSwitch HA endpoint.
type Service struct {
	cfg    Config
	store  Store
	epochs *epoch.File
	hub    *ha.Hub

	master atomic.Bool // serving slaves (else refusing them)

	mu        sync.Mutex
	localID   int64
	confirmed []int64     // SyncStateSet the controller confirmed
	pending   [][]int64   // sets sent to the controller, not answered yet: the union is waited for
	expanding bool        // an OnExpand call is in flight
	alone     atomic.Bool // the effective set is the master alone
	// waiters are the SYNC sends waiting for the ack rule (recomputed on
	// acks, appends and set changes).
	waiters *ha.Waiters

	client *Client

	closeOnce sync.Once
}

// Listen binds the HA port; Start serves it.
func Listen(addr string, st Store, epochs *epoch.File, cfg Config) (*Service, error) {
	cfg.fill()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("HA listen on %s: %w", addr, err)
	}
	s := &Service{cfg: cfg, store: st, epochs: epochs, waiters: ha.NewWaiters(cfg.SlaveTimeout, -1, time.Now)}
	s.hub = ha.NewHub(ln, st, ha.Config{HeartbeatInterval: cfg.HeartbeatInterval, HousekeepingInterval: cfg.HousekeepingInterval,
		TransferBatchSize: cfg.TransferBatchSize, MaxTransferBytesPerSecond: cfg.MaxTransferBytesPerSecond, Log: cfg.Log},
		"replica", true, s.admit)
	return s, nil
}

// Addr is the bound HA address.
func (s *Service) Addr() net.Addr { return s.hub.Addr() }

// Epochs is the epoch list this service keeps.
func (s *Service) Epochs() *epoch.File { return s.epochs }

// Start accepts connections (served only while master).
func (s *Service) Start() {
	s.store.SetOnAppend(s.onAppend)
	s.waiters.Start()
	s.hub.Start()
}

// Close stops everything; pending sends fail.
func (s *Service) Close() error {
	var err error
	s.closeOnce.Do(func() {
		err = s.hub.Close()
		s.stopClient()
		s.waiters.Close()
	})
	return err
}

// ChangeToMaster makes this broker the master of epoch e (AutoSwitchHAService.changeToMaster):
// the slave client stops, a partial record at the tail is cut, the epoch
// starts at the log's end, and the SyncStateSet is {localID} until the
// controller says otherwise. The caller waits for the dispatcher.
func (s *Service) ChangeToMaster(e int32, localID int64) error {
	if last := s.epochs.LastEpoch(); e < last {
		return fmt.Errorf("change to master: epoch %d is older than the local epoch %d", e, last)
	}
	s.stopClient()
	s.hub.DropAll("becoming master")
	end, err := s.store.TruncatePartialTail()
	if err != nil {
		return fmt.Errorf("change to master: %w", err)
	}
	if err := s.epochs.TruncateFrom(end + 1); err != nil { // entries past the log's end
		return fmt.Errorf("change to master: %w", err)
	}
	// A master restarted within its own epoch keeps that epoch's entry.
	if s.epochs.LastEpoch() != e {
		if err := s.epochs.Append(epoch.Entry{Epoch: e, StartOffset: end}); err != nil {
			return fmt.Errorf("change to master: %w", err)
		}
	}
	s.mu.Lock()
	s.localID = localID
	s.confirmed = []int64{localID}
	s.pending = nil
	s.mu.Unlock()
	s.master.Store(true)
	s.recompute()
	s.cfg.Log.Info("[HA] master", "epoch", e, "epochStartOffset", end)
	return nil
}

// RecordEpoch starts a new epoch while staying master (the controller
// re-elected this broker; changeToMasterWhenLastRoleIsMaster).
func (s *Service) RecordEpoch(e int32) error {
	return s.epochs.Append(epoch.Entry{Epoch: e, StartOffset: s.store.MaxPhyOffset()})
}

// ChangeToSlave stops serving slaves and follows a master of epoch ≥ e.
// masterHA is the master's HA address, "" until known (SetMasterHA).
func (s *Service) ChangeToSlave(masterHA string, e int32, localID int64) {
	s.master.Store(false)
	s.hub.DropAll("becoming slave")
	s.waiters.FailAll(-1)
	s.mu.Lock()
	s.localID = localID
	c := s.client
	if c == nil {
		c = newClient(s, localID)
		s.client = c
	}
	s.mu.Unlock()
	c.follow(masterHA, e)
}

// SetMasterHA updates the HA address a slave follows.
func (s *Service) SetMasterHA(addr string) {
	s.mu.Lock()
	c := s.client
	s.mu.Unlock()
	if c != nil {
		c.setAddr(addr)
	}
}

// IsMaster says whether the service serves slaves.
func (s *Service) IsMaster() bool { return s.master.Load() }

func (s *Service) stopClient() {
	s.mu.Lock()
	c := s.client
	s.client = nil
	s.mu.Unlock()
	if c != nil {
		c.close()
	}
}

// SetSyncStateSet installs the set the controller confirmed; a pending
// proposal ends.
func (s *Service) SetSyncStateSet(set []int64) {
	s.mu.Lock()
	s.confirmed = sorted(set)
	s.pending = nil
	s.mu.Unlock()
	s.recompute()
}

// Propose marks set as being sent to the controller: until the answer
// (SetSyncStateSet), sends wait for the union of the confirmed set and
// every pending proposal, so the controller's set is never larger than
// what the master waits for, whichever proposal it accepts.
func (s *Service) Propose(set []int64) {
	s.mu.Lock()
	s.pending = append(s.pending, sorted(set))
	s.mu.Unlock()
	s.recompute()
}

// Withdraw drops a proposal the controller refused (it did not apply it);
// other pending ones still count.
func (s *Service) Withdraw(set []int64) {
	set = sorted(set)
	s.mu.Lock()
	if i := slices.IndexFunc(s.pending, func(p []int64) bool { return slices.Equal(p, set) }); i >= 0 {
		s.pending = slices.Delete(s.pending, i, i+1)
	}
	s.mu.Unlock()
	s.recompute()
}

// ConfirmedSyncStateSet is the set the controller last confirmed.
func (s *Service) ConfirmedSyncStateSet() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.confirmed...)
}

// SyncStateSet is the effective set: the confirmed one, with a pending
// proposal's members added.
func (s *Service) SyncStateSet() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.effective()
}

func (s *Service) effective() []int64 {
	out := append([]int64(nil), s.confirmed...)
	for _, p := range s.pending {
		for _, id := range p {
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	slices.Sort(out)
	return out
}

// InSyncReplicas is the effective set's size (AutoSwitchHAService.inSyncReplicasNums).
func (s *Service) InSyncReplicas() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.effective())
}

// Shrink returns the confirmed set without members that have no
// connection or have not caught up for haMaxTimeSlaveNotCatchup
// (AutoSwitchHAService.maybeShrinkSyncStateSet).
func (s *Service) Shrink() []int64 {
	now := time.Now()
	s.mu.Lock()
	set := append([]int64(nil), s.confirmed...)
	local := s.localID
	s.mu.Unlock()
	out := set[:0]
	for _, id := range set {
		if id == local {
			out = append(out, id)
			continue
		}
		for _, c := range s.hub.Conns() {
			if c.ID() == id && now.Sub(c.CaughtUp()) <= s.cfg.MaxTimeSlaveNotCatchup {
				out = append(out, id)
				break
			}
		}
	}
	return out
}

// WaitAck calls done(true) once the replicas the ack rule names hold every
// byte below end, done(false) after slaveTimeout (FLUSH_SLAVE_TIMEOUT).
func (s *Service) WaitAck(end int64, done func(ok bool)) { s.waiters.Wait(end, done) }

// ackedOffset is the offset the ack rule vouches for; s.mu held. With
// AllAckInSyncStateSet it is the lowest ack of the other members (the
// master's own max when it is alone); else the InSyncReplicas-1'th highest
// ack of any slave.
func (s *Service) ackedOffset(set []int64) int64 {
	maxPhy := s.store.MaxPhyOffset()
	conns := s.hub.Conns()
	if s.cfg.AllAckInSyncStateSet {
		acked := maxPhy
		for _, id := range set {
			if id == s.localID {
				continue
			}
			best := int64(-1)
			for _, c := range conns {
				if c.ID() == id {
					best = max(best, c.Ack())
				}
			}
			acked = min(acked, best)
		}
		return acked
	}
	need := s.cfg.InSyncReplicas - 1
	if need <= 0 {
		return maxPhy
	}
	var acks [16]int64
	list := acks[:0]
	for _, c := range conns {
		if c.ID() >= 0 {
			list = append(list, c.Ack())
		}
	}
	if len(list) < need {
		return -1
	}
	slices.Sort(list)
	return list[len(list)-need]
}

// recompute refreshes the confirm offset and completes the sends the ack
// rule now covers.
func (s *Service) recompute() {
	if !s.master.Load() {
		return
	}
	s.mu.Lock()
	set := s.effective()
	s.alone.Store(len(set) <= 1)
	acked := s.ackedOffset(set)
	confirm := acked
	if !s.cfg.AllAckInSyncStateSet {
		confirm = s.store.MaxPhyOffset()
	}
	s.mu.Unlock()
	// A member without a connection leaves the confirm offset where it
	// was (it must not move backwards for consumers).
	if confirm > s.store.ConfirmOffset() {
		s.store.SetConfirmOffset(confirm)
	}
	s.waiters.Set(acked)
}

// onAppend wakes the connection writers and, when the master is alone in
// its set (or acks are not required from all), moves the confirm offset
// and acks with the log's end. Runs on the append path: no allocation.
func (s *Service) onAppend(maxPhy int64) {
	if !s.master.Load() {
		return
	}
	s.hub.Wake()
	allAck, alone := s.cfg.AllAckInSyncStateSet, s.alone.Load()
	if !allAck || alone {
		s.store.SetConfirmOffset(maxPhy)
	}
	if (allAck && alone) || (!allAck && s.cfg.InSyncReplicas <= 1) {
		s.waiters.SetLater(maxPhy)
	}
}

// maybeExpand proposes a slave that caught up within the current epoch
// (AutoSwitchHAService.maybeExpandInSyncStateSet).
func (s *Service) maybeExpand(r *replica, ack int64) {
	if r.learner.Load() || s.cfg.OnExpand == nil {
		return
	}
	last, ok := s.epochs.Last()
	if !ok || ack < last.StartOffset || ack < s.store.ConfirmOffset() {
		return
	}
	id := r.c.ID()
	s.mu.Lock()
	// Against the confirmed set: a refused proposal is tried again.
	if slices.Contains(s.confirmed, id) || s.expanding {
		s.mu.Unlock()
		return
	}
	set := sorted(append(append([]int64(nil), s.confirmed...), id))
	s.pending = append(s.pending, set)
	s.expanding = true
	s.mu.Unlock()
	s.cfg.Log.Info("[HA] slave caught up, proposing it for the SyncStateSet", "slave", id, "ack", ack, "set", set)
	go func() {
		s.cfg.OnExpand(set)
		s.mu.Lock()
		s.expanding = false
		s.mu.Unlock()
	}()
}

// admit serves a replica only while master; a slave retries until it is
// told about the real master.
func (s *Service) admit(c *ha.Conn) ha.Stream {
	if !s.master.Load() {
		s.cfg.Log.Info("[HA] refusing a replica: this broker is not the master", "remote", c.Remote())
		return nil
	}
	return &replica{srv: s, c: c, hello: make(chan struct{})}
}

// SlaveStatus is one replica connection as the master sees it.
type SlaveStatus struct {
	Addr         string
	BrokerID     int64 // -1 before its handshake
	AckOffset    int64 // -1 before its first report
	NextOffset   int64
	LastCaughtUp time.Time
	InSync       bool
}

// Status lists connected replicas.
func (s *Service) Status() []SlaveStatus {
	set := s.SyncStateSet()
	var out []SlaveStatus
	for _, c := range s.hub.Conns() {
		cs := c.Status()
		st := SlaveStatus{Addr: cs.Addr, BrokerID: c.ID(), AckOffset: cs.AckOffset, NextOffset: cs.NextOffset, LastCaughtUp: cs.LastCaughtUp}
		st.InSync = slices.Contains(set, st.BrokerID)
		out = append(out, st)
	}
	return out
}

// ClientStatus reports the slave side (zero when master).
func (s *Service) ClientStatus() (st ClientStatus, ok bool) {
	s.mu.Lock()
	c := s.client
	s.mu.Unlock()
	if c == nil {
		return ClientStatus{}, false
	}
	return c.status(), true
}

func sorted(set []int64) []int64 {
	out := append([]int64(nil), set...)
	slices.Sort(out)
	return slices.Compact(out)
}
