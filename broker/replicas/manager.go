package replicas

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/broker/ha/autoswitch"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// Config is what the manager needs from broker.conf.
type Config struct {
	Cluster, Name string
	Addr          string   // brokerIP1:listenPort, as registered everywhere
	Controllers   []string // controllerAddr
	IdentityPath  string   // storePathBrokerIdentity

	SyncBrokerMetadataPeriod     time.Duration // GET_REPLICA_INFO poll
	CheckSyncStateSetPeriod      time.Duration // master's shrink check
	SyncControllerMetadataPeriod time.Duration // leader lookup
	HeartbeatInterval            time.Duration // brokerHeartbeatInterval
	HeartbeatTimeout             time.Duration // controllerHeartBeatTimeoutMills, sent in each heartbeat
	ElectionPriority             int32
	RequestTimeout               time.Duration // controller calls (Java: 3 s)
	Log                          *slog.Logger

	// Credentials (innerClientAuthenticationCredentials) sign every call
	// to the controllers, for controllers with aclEnable; TLS (useTLS)
	// dials them over TLS.
	Credentials wire.Credentials
	TLS         *tls.Config
	// Handler serves what controllers send back on these connections:
	// NOTIFY_BROKER_ROLE_CHANGED goes out on the broker's heartbeat
	// connection. The broker passes its own dispatch, ACL check included.
	Handler remoting.Handler
}

// Hooks are the broker-level steps of a role change, run by the manager
// after the HA service has switched.
type Hooks struct {
	// ToMaster: the store accepts writes once the dispatcher has caught
	// up, the broker registers as id 0 with stateVersion = epoch and its
	// master-only services start.
	ToMaster func(epoch int32) error
	// ToSlave: the store refuses writes, master-only services stop, the
	// broker registers as id localID with stateVersion = epoch and syncs
	// its metadata from masterAddr.
	ToSlave func(masterAddr string, localID int64, epoch int32) error
	// MasterHA returns the HA address of the master listening at
	// masterAddr if the broker knows it already ("" otherwise: the broker
	// calls Service.SetMasterHA once a name server tells it).
	MasterHA func(masterAddr string) string
	// Offsets for heartbeats: the log's end and the confirm offset.
	MaxPhyOffset, ConfirmOffset func() int64
}

// Manager is the broker's ReplicasManager: it registers with the
// controller under a persistent id, heartbeats every controller, and
// applies the role changes the controller announces (NOTIFY_BROKER_ROLE_CHANGED
// or its own GET_REPLICA_INFO poll), only for epochs newer than its own.
type Manager struct {
	cfg   Config
	hooks Hooks
	ha    *autoswitch.Service
	ids   IdentityFiles
	cl    *remoting.Client

	mu       sync.Mutex // role state, held across a role change
	leader   string
	brokerID int64 // controller-assigned id, -1 until registered
	// hbID mirrors brokerID for the heartbeat loop, which must not wait
	// for a role change holding mu (SetRole waits for the dispatcher): a
	// late heartbeat makes the controller elect another master.
	hbID        atomic.Int64
	masterID    int64 // -1: no master known
	masterAddr  string
	masterEpoch int32
	ssEpoch     int32
	master      bool

	life   sync.Mutex // orders HandleNotify's goroutines with Close
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

// New makes a manager driving ha; Start runs it.
func New(cfg Config, ha *autoswitch.Service, hooks Hooks) *Manager {
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 3 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{cfg: cfg, hooks: hooks, ha: ha, ids: IdentityFiles{Path: cfg.IdentityPath},
		cl: remoting.NewClient(cfg.Handler, cfg.Log), brokerID: -1, masterID: -1, stop: make(chan struct{})}
	m.cl.SetCredentials(cfg.Credentials)
	m.cl.UseTLS(cfg.TLS)
	m.hbID.Store(-1)
	return m
}

// ParseControllers splits controllerAddr.
func ParseControllers(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ";") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Start registers and runs the timers until Close. The broker stays fenced
// (a slave store, not registered with the name servers) until a role is
// decided.
func (m *Manager) Start() {
	m.wg.Add(2)
	go m.run()
	go m.heartbeatLoop()
}

// Close stops the manager and its controller connections (the controller
// sees them close and elects another master if this one was it).
func (m *Manager) Close() {
	m.life.Lock()
	if m.closed {
		m.life.Unlock()
		return
	}
	m.closed = true
	close(m.stop)
	m.life.Unlock()
	m.cl.Close()
	m.wg.Wait()
}

// State is the manager's view, for status requests and tests.
type State struct {
	BrokerID, MasterID int64
	MasterAddr         string
	MasterEpoch        int32
	SyncStateSetEpoch  int32
	Master             bool
}

// State returns the current role state.
func (m *Manager) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return State{BrokerID: m.brokerID, MasterID: m.masterID, MasterAddr: m.masterAddr, MasterEpoch: m.masterEpoch,
		SyncStateSetEpoch: m.ssEpoch, Master: m.master}
}

func (m *Manager) sleep(d time.Duration) bool {
	select {
	case <-m.stop:
		return false
	case <-time.After(d):
		return true
	}
}

func (m *Manager) run() {
	defer m.wg.Done()
	// Start-up: find the leader, register (5 tries with random pauses, as
	// Java), then take the announced role or run for master.
	for {
		if err := m.startup(); err != nil {
			m.cfg.Log.Warn("[CONTROLLER] registration with the controller failed, retrying", "err", err)
			if !m.sleep(2 * time.Second) {
				return
			}
			continue
		}
		break
	}
	poll := time.NewTicker(m.cfg.SyncBrokerMetadataPeriod)
	defer poll.Stop()
	leader := time.NewTicker(m.cfg.SyncControllerMetadataPeriod)
	defer leader.Stop()
	check := time.NewTicker(m.cfg.CheckSyncStateSetPeriod)
	defer check.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-poll.C:
			if err := m.syncReplicaInfo(); err != nil {
				m.cfg.Log.Warn("[CONTROLLER] GET_REPLICA_INFO failed", "err", err)
			}
		case <-leader.C:
			_ = m.findLeader()
		case <-check.C:
			m.checkSyncStateSet()
		}
	}
}

func (m *Manager) startup() error {
	if err := m.findLeader(); err != nil {
		return err
	}
	var err error
	for range 5 {
		if err = m.register(); err == nil {
			break
		}
		if !m.sleep(time.Duration(rand.IntN(1000)) * time.Millisecond) {
			return nil
		}
	}
	if err != nil {
		return err
	}
	m.sendHeartbeats()
	m.mu.Lock()
	has := m.masterID >= 0
	m.mu.Unlock()
	if !has {
		if err := m.elect(); err != nil {
			return fmt.Errorf("no master in %s yet: %w", m.cfg.Name, err)
		}
	}
	return nil
}

// call sends a request to the controller leader; a 2007 answer (not the
// leader) refreshes the leader once and retries.
func (m *Manager) call(code int32, fields map[string]string, body []byte) (*wire.Command, error) {
	for attempt := 0; ; attempt++ {
		m.mu.Lock()
		leader := m.leader
		m.mu.Unlock()
		if leader == "" {
			if err := m.findLeader(); err != nil {
				return nil, err
			}
			continue
		}
		resp, err := m.cl.Invoke(leader, wire.NewRequest(code, fields, body), m.cfg.RequestTimeout)
		if err == nil && resp.Code != wire.ControllerNotLeader {
			return resp, nil
		}
		if attempt > 0 {
			if err == nil {
				err = fmt.Errorf("controller %s: %s", leader, resp.Remark)
			}
			return nil, err
		}
		if ferr := m.findLeader(); ferr != nil {
			return nil, errors.Join(err, ferr)
		}
	}
}

// findLeader asks the controllers for the leader (CONTROLLER_GET_METADATA_INFO).
func (m *Manager) findLeader() error {
	var errs []error
	for _, a := range m.cfg.Controllers {
		resp, err := m.cl.Invoke(a, wire.NewRequest(wire.ControllerGetMetadataInfo, nil, nil), m.cfg.RequestTimeout)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		h := wire.ParseGetMetaDataResponseHeader(resp)
		if h.ControllerLeaderAddress != "" {
			m.mu.Lock()
			if m.leader != h.ControllerLeaderAddress {
				m.cfg.Log.Info("[CONTROLLER] controller leader", "addr", h.ControllerLeaderAddress)
			}
			m.leader = h.ControllerLeaderAddress
			m.mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("no controller leader among %v: %w", m.cfg.Controllers, errors.Join(errs...))
}

// register obtains the persistent id (GET_NEXT_BROKER_ID, APPLY_BROKER_ID
// with the temp file as a crash-safe intent) and registers the address
// (CONTROLLER_REGISTER_BROKER), taking a role the answer announces.
func (m *Manager) register() error {
	id, ok, err := m.ids.Load()
	if err != nil {
		return err
	}
	if ok && (id.Cluster != m.cfg.Cluster || id.Name != m.cfg.Name) {
		return fmt.Errorf("%s belongs to %s/%s, this broker is %s/%s: fix brokerClusterName/brokerName or the file",
			m.ids.Path, id.Cluster, id.Name, m.cfg.Cluster, m.cfg.Name)
	}
	if !ok {
		tmp, has, err := m.ids.LoadTemp()
		if err != nil {
			return err
		}
		if !has || tmp.Cluster != m.cfg.Cluster || tmp.Name != m.cfg.Name {
			resp, err := m.call(wire.ControllerGetNextBrokerID, (&wire.BrokerSetHeader{ClusterName: m.cfg.Cluster, BrokerName: m.cfg.Name}).Fields(), nil)
			if err != nil {
				return fmt.Errorf("GET_NEXT_BROKER_ID: %w", err)
			}
			next, ok := resp.GetInt("nextBrokerId")
			if resp.Code != wire.Success || !ok {
				return fmt.Errorf("GET_NEXT_BROKER_ID: %s %s", wire.ResponseName(resp.Code), resp.Remark)
			}
			tmp = Identity{Cluster: m.cfg.Cluster, Name: m.cfg.Name, ID: next,
				CheckCode: m.cfg.Addr + ";" + strconv.FormatInt(time.Now().UnixMilli(), 10)}
			if err := m.ids.SaveTemp(tmp); err != nil {
				return err
			}
		}
		resp, err := m.call(wire.ControllerApplyBrokerID, (&wire.ApplyBrokerIDHeader{ClusterName: tmp.Cluster, BrokerName: tmp.Name,
			AppliedBrokerID: tmp.ID, RegisterCheckCode: tmp.CheckCode}).Fields(), nil)
		if err != nil {
			return fmt.Errorf("APPLY_BROKER_ID %d: %w", tmp.ID, err)
		}
		if resp.Code != wire.Success {
			_ = m.ids.DropTemp() // taken by another replica: ask for the next one
			return fmt.Errorf("APPLY_BROKER_ID %d: %s %s", tmp.ID, wire.ResponseName(resp.Code), resp.Remark)
		}
		id = Identity{Cluster: tmp.Cluster, Name: tmp.Name, ID: tmp.ID}
		if err := m.ids.Commit(id); err != nil {
			return err
		}
	}
	m.mu.Lock()
	m.brokerID = id.ID
	m.hbID.Store(id.ID)
	m.mu.Unlock()
	resp, err := m.call(wire.ControllerRegisterBroker, (&wire.RegisterBrokerToControllerHeader{ClusterName: m.cfg.Cluster,
		BrokerName: m.cfg.Name, BrokerID: id.ID, BrokerAddress: m.cfg.Addr, InvokeTime: time.Now().UnixMilli()}).Fields(), nil)
	if err != nil {
		return fmt.Errorf("CONTROLLER_REGISTER_BROKER: %w", err)
	}
	if resp.Code != wire.Success {
		return fmt.Errorf("CONTROLLER_REGISTER_BROKER: %s %s", wire.ResponseName(resp.Code), resp.Remark)
	}
	m.cfg.Log.Info("[CONTROLLER] registered with the controller", "brokerId", id.ID)
	return m.applyAnswer(resp, false)
}

// applyAnswer takes the master a controller answer names (1002, 1003,
// 1004, 1008); elect asks for an election when it names none.
func (m *Manager) applyAnswer(resp *wire.Command, elect bool) error {
	h, err := wire.ParseMasterInfoHeader(resp)
	if err != nil {
		return err
	}
	// 1003, 1004 and 1008 carry a SyncStateSet, 1002 an
	// ElectMasterResponseBody: both hold the set as "syncStateSet".
	var set wire.SyncStateSet
	if len(resp.Body) > 0 {
		if err := wire.UnmarshalLenient(resp.Body, &set); err != nil {
			return fmt.Errorf("decode SyncStateSet: %w", err)
		}
	}
	if h.HasSyncStateSetEpoch {
		set.SyncStateSetEpoch = h.SyncStateSetEpoch
	}
	if !h.HasMaster || h.MasterAddress == "" {
		m.mu.Lock()
		newer := h.MasterEpoch > m.masterEpoch
		m.mu.Unlock()
		if elect && newer {
			return m.elect()
		}
		return nil
	}
	return m.changeRole(h.MasterBrokerID, h.MasterAddress, h.MasterEpoch, set.SyncStateSetEpoch, set.SyncStateSet)
}

// elect asks the controller to make this broker master (it answers with
// the current master if there is one).
func (m *Manager) elect() error {
	m.mu.Lock()
	id := m.brokerID
	m.mu.Unlock()
	resp, err := m.call(wire.ControllerElectMaster, (&wire.ElectMasterHeader{ClusterName: m.cfg.Cluster, BrokerName: m.cfg.Name,
		BrokerID: id, InvokeTime: time.Now().UnixMilli()}).Fields(), nil)
	if err != nil {
		return fmt.Errorf("CONTROLLER_ELECT_MASTER: %w", err)
	}
	if resp.Code != wire.Success && resp.Code != wire.ControllerMasterStillExist {
		return fmt.Errorf("CONTROLLER_ELECT_MASTER: %s %s", wire.ResponseName(resp.Code), resp.Remark)
	}
	return m.applyAnswer(resp, false)
}

// syncReplicaInfo polls GET_REPLICA_INFO (the fallback when a 1008 is lost).
func (m *Manager) syncReplicaInfo() error {
	resp, err := m.call(wire.ControllerGetReplicaInfo, map[string]string{"brokerName": m.cfg.Name}, nil)
	if err != nil {
		return err
	}
	switch resp.Code {
	case wire.Success:
	case wire.ControllerBrokerMetadataNotExist:
		return m.register() // the controller lost us (cleaned): register again
	default:
		return fmt.Errorf("%s %s", wire.ResponseName(resp.Code), resp.Remark)
	}
	return m.applyAnswer(resp, true)
}

// HandleNotify serves NOTIFY_BROKER_ROLE_CHANGED (1008) from a
// controller: req is decoded at once (the connection reuses it), the role
// change runs on its own goroutine so the answer goes out immediately.
func (m *Manager) HandleNotify(req *wire.Command) error {
	h, err := wire.ParseMasterInfoHeader(req)
	if err != nil {
		return err
	}
	var set wire.SyncStateSet
	if len(req.Body) > 0 {
		if err := wire.UnmarshalLenient(req.Body, &set); err != nil {
			return fmt.Errorf("decode SyncStateSet: %w", err)
		}
	}
	if !h.HasMaster || h.MasterAddress == "" {
		return nil
	}
	if h.HasSyncStateSetEpoch {
		set.SyncStateSetEpoch = h.SyncStateSetEpoch
	}
	m.life.Lock()
	defer m.life.Unlock()
	if m.closed {
		return nil
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.changeRole(h.MasterBrokerID, h.MasterAddress, h.MasterEpoch, set.SyncStateSetEpoch, set.SyncStateSet); err != nil {
			m.cfg.Log.Error("[CONTROLLER] role change failed", "err", err)
		}
	}()
	return nil
}

// changeRole applies an announced master if its epoch is newer than the
// local one (ReplicasManager.changeBrokerRole); equal epochs only refresh
// a master's SyncStateSet.
func (m *Manager) changeRole(masterID int64, masterAddr string, epoch, ssEpoch int32, set []int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if epoch < m.masterEpoch || m.brokerID < 0 {
		return nil
	}
	if epoch == m.masterEpoch {
		if m.master && masterID == m.brokerID && ssEpoch > m.ssEpoch && len(set) > 0 {
			m.ssEpoch = ssEpoch
			m.ha.SetSyncStateSet(set)
		}
		return nil
	}
	if masterID == m.brokerID {
		m.cfg.Log.Info("[CONTROLLER] becoming master", "epoch", epoch, "syncStateSet", set)
		if m.master {
			if err := m.ha.RecordEpoch(epoch); err != nil {
				return err
			}
		} else if err := m.ha.ChangeToMaster(epoch, m.brokerID); err != nil {
			return err
		}
		if len(set) == 0 {
			set = []int64{m.brokerID}
		}
		m.ha.SetSyncStateSet(set)
		if err := m.hooks.ToMaster(epoch); err != nil {
			return fmt.Errorf("change to master: %w", err)
		}
		m.master = true
	} else {
		m.cfg.Log.Info("[CONTROLLER] becoming slave", "epoch", epoch, "master", masterAddr, "masterId", masterID)
		m.master = false
		if err := m.hooks.ToSlave(masterAddr, m.brokerID, epoch); err != nil {
			return fmt.Errorf("change to slave: %w", err)
		}
		m.ha.ChangeToSlave(m.hooks.MasterHA(masterAddr), epoch, m.brokerID)
	}
	m.masterID, m.masterAddr, m.masterEpoch, m.ssEpoch = masterID, masterAddr, epoch, ssEpoch
	return nil
}

// checkSyncStateSet shrinks a master's set (members without a connection
// or not caught up for haMaxTimeSlaveNotCatchup) through ALTER_SYNC_STATE_SET.
func (m *Manager) checkSyncStateSet() {
	m.mu.Lock()
	master := m.master
	m.mu.Unlock()
	if !master {
		return
	}
	cur := m.ha.ConfirmedSyncStateSet()
	next := m.ha.Shrink()
	if slices.Equal(cur, next) {
		return
	}
	m.AlterSyncStateSet(next)
}

// AlterSyncStateSet proposes set to the controller; until the answer the
// master waits for the union of the old and the new set.
func (m *Manager) AlterSyncStateSet(set []int64) {
	m.mu.Lock()
	if !m.master {
		m.mu.Unlock()
		return
	}
	id, epoch, ssEpoch := m.brokerID, m.masterEpoch, m.ssEpoch
	m.mu.Unlock()
	m.ha.Propose(set)
	body := wire.Marshal(wire.SyncStateSet{SyncStateSet: set, SyncStateSetEpoch: ssEpoch})
	resp, err := m.call(wire.ControllerAlterSyncStateSet, (&wire.AlterSyncStateSetHeader{BrokerName: m.cfg.Name,
		MasterBrokerID: id, MasterEpoch: epoch, InvokeTime: time.Now().UnixMilli()}).Fields(), body)
	if err != nil {
		// The controller may have applied it: keep waiting for the union.
		m.cfg.Log.Warn("[CONTROLLER] ALTER_SYNC_STATE_SET failed; still waiting for the union", "set", set, "err", err)
		return
	}
	if resp.Code != wire.Success {
		err = fmt.Errorf("%s %s", wire.ResponseName(resp.Code), resp.Remark)
		if resp.Code == wire.ControllerFencedMasterEpoch {
			// A stale master: its set must not shrink, so its sends stay
			// unacknowledged until it learns the new master.
			m.cfg.Log.Warn("[CONTROLLER] ALTER_SYNC_STATE_SET fenced: this master's epoch is stale", "set", set, "err", err)
			return
		}
		m.cfg.Log.Warn("[CONTROLLER] ALTER_SYNC_STATE_SET refused", "set", set, "err", err)
		m.ha.Withdraw(set)
		return
	}
	var got wire.SyncStateSet
	if err := wire.UnmarshalLenient(resp.Body, &got); err != nil {
		m.cfg.Log.Warn("[CONTROLLER] ALTER_SYNC_STATE_SET answer", "err", err)
		return
	}
	if e, ok := resp.GetInt32("newSyncStateSetEpoch"); ok {
		got.SyncStateSetEpoch = e
	}
	m.mu.Lock()
	if m.master && m.masterEpoch == epoch && got.SyncStateSetEpoch > m.ssEpoch {
		m.ssEpoch = got.SyncStateSetEpoch
		m.ha.SetSyncStateSet(got.SyncStateSet)
		m.cfg.Log.Info("[CONTROLLER] SyncStateSet changed", "set", got.SyncStateSet, "epoch", got.SyncStateSetEpoch)
	}
	m.mu.Unlock()
}

func (m *Manager) heartbeatLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.sendHeartbeats()
		}
	}
}

// sendHeartbeats sends BROKER_HEARTBEAT oneway to every controller.
func (m *Manager) sendHeartbeats() {
	id := m.hbID.Load()
	if id < 0 {
		return
	}
	h := wire.BrokerHeartbeatHeader{ClusterName: m.cfg.Cluster, BrokerAddr: m.cfg.Addr, BrokerName: m.cfg.Name,
		BrokerID: id, HasBrokerID: true, Epoch: m.ha.Epochs().LastEpoch(), MaxOffset: m.hooks.MaxPhyOffset(),
		ConfirmOffset: m.hooks.ConfirmOffset(), HeartbeatTimeoutMillis: m.cfg.HeartbeatTimeout.Milliseconds(),
		ElectionPriority: m.cfg.ElectionPriority}
	fields := h.Fields()
	for _, a := range m.cfg.Controllers {
		if err := m.cl.InvokeOneway(a, wire.NewRequest(wire.BrokerHeartbeat, fields, nil)); err != nil {
			m.cfg.Log.Debug("[CONTROLLER] heartbeat not sent", "controller", a, "err", err)
		}
	}
}
