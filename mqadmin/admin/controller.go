package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mqops/mqops/wire"
)

// Calls to a RocketMQ 5 controller group (apache/rocketmq 5.x
// client/src/main/java/org/apache/rocketmq/client/impl/MQClientAPIImpl.java:
// getControllerMetaData, getInSyncStateData, electMaster): metadata is
// served by every controller; the rest only by the leader, found through
// the metadata of any controller in the list.

// SplitAddrs splits a ";"-separated address list, as -n and Java's
// -a/--controllerAddress take it, dropping blanks.
func SplitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ";") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// ControllerPeer is one member of a controller group.
type ControllerPeer struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
}

// ControllerMeta is one controller's answer to CONTROLLER_GET_METADATA_INFO
// (1005): its group, the leader it knows of and the group's peers.
type ControllerMeta struct {
	Addr          string           `json:"addr"` // the controller asked
	Group         string           `json:"group,omitempty"`
	LeaderID      string           `json:"controllerLeaderId,omitempty"`
	LeaderAddress string           `json:"controllerLeaderAddress,omitempty"`
	IsLeader      bool             `json:"isLeader"`
	Peers         []ControllerPeer `json:"peers,omitempty"`
	// Error says why a controller has no answer; the others are still listed.
	Error string `json:"error,omitempty"`
}

// ControllerMetadata asks one controller for its view of the group.
func (a *Admin) ControllerMetadata(addr string) (*ControllerMeta, error) {
	resp, err := a.call(addr, wire.ControllerGetMetadataInfo, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("metadata of controller %s: %w", addr, err)
	}
	h := wire.ParseGetMetaDataResponseHeader(resp)
	m := &ControllerMeta{Addr: addr, Group: h.Group, LeaderID: h.ControllerLeaderID, LeaderAddress: h.ControllerLeaderAddress, IsLeader: h.IsLeader}
	// "n0:127.0.0.1:9878;n1:…;": the id ends at the first ':'.
	for _, p := range SplitAddrs(h.Peers) {
		id, addr, _ := strings.Cut(p, ":")
		m.Peers = append(m.Peers, ControllerPeer{ID: id, Addr: addr})
	}
	return m, nil
}

// ControllersMetadata asks every controller of addrs at once. Controllers
// that do not answer are listed with their error, and err then names the
// first of them.
func (a *Admin) ControllersMetadata(addrs []string) ([]ControllerMeta, error) {
	if len(addrs) == 0 {
		return nil, errNoController
	}
	out := make([]ControllerMeta, len(addrs))
	_ = FanOut(len(addrs), a.parallel, func(i int) error {
		m, err := a.ControllerMetadata(addrs[i])
		if err != nil {
			out[i] = ControllerMeta{Addr: addrs[i], Error: err.Error()}
			return nil // reported on its row
		}
		out[i] = *m
		return nil
	})
	var failed []string
	for _, m := range out {
		if m.Error != "" {
			failed = append(failed, m.Error)
		}
	}
	if len(failed) > 0 {
		return out, fmt.Errorf("%d of %d controllers did not answer: %s", len(failed), len(out), failed[0])
	}
	return out, nil
}

var (
	errNoController = errors.New("no controller address given (-a/--controller)")
	// errNoLeader: a controller answered but knows no leader yet.
	errNoLeader = errors.New("no controller leader")
)

// ControllerLeader returns the leader's address as the first controller of
// addrs that answers knows it.
func (a *Admin) ControllerLeader(addrs []string) (string, error) {
	if len(addrs) == 0 {
		return "", errNoController
	}
	var errs []string
	answered := false
	for _, addr := range addrs {
		m, err := a.ControllerMetadata(addr)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if m.LeaderAddress != "" {
			return m.LeaderAddress, nil
		}
		answered = true
		errs = append(errs, "controller "+addr+" knows no leader (election under way?)")
	}
	if answered {
		return "", fmt.Errorf("%w: %s", errNoLeader, strings.Join(errs, "; "))
	}
	return "", fmt.Errorf("no controller reachable: %s", strings.Join(errs, "; "))
}

// leaderAttempts bounds how often a request waits for a leader or follows
// a leader change: a controller that stopped leading between the metadata
// and the request answers CONTROLLER_NOT_LEADER, and the next metadata
// names its successor.
const leaderAttempts = 3

// callLeader sends one request to the controller leader and returns its
// answer and address.
func (a *Admin) callLeader(addrs []string, code int32, fields map[string]string, body []byte) (*wire.Command, string, error) {
	for attempt := 1; ; attempt++ {
		leader, err := a.ControllerLeader(addrs)
		var resp *wire.Command
		if err == nil {
			resp, err = a.call(leader, code, fields, body)
			if err != nil {
				err = fmt.Errorf("controller leader %s: %w", leader, err)
			}
		}
		retry := errors.Is(err, errNoLeader) || IsCode(err, wire.ControllerNotLeader)
		if !retry || attempt == leaderAttempts {
			return resp, leader, err
		}
		// A Raft election takes about a second here; give it that long.
		time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
	}
}

// SyncStateData returns, for the named broker sets, the master, epochs and
// in-sync and other replicas with their liveness
// (CONTROLLER_GET_SYNC_STATE_DATA, 1006). Sets the controller does not
// know are absent from the table.
func (a *Admin) SyncStateData(controllers, brokerNames []string) (*wire.BrokerReplicasInfo, error) {
	body, err := json.Marshal(brokerNames)
	if err != nil {
		return nil, err
	}
	resp, _, err := a.callLeader(controllers, wire.ControllerGetSyncStateData, nil, body)
	if err != nil {
		return nil, fmt.Errorf("sync state of %s: %w", strings.Join(brokerNames, ", "), err)
	}
	var info wire.BrokerReplicasInfo
	if err := decode(resp, "sync state data", &info); err != nil {
		return nil, err
	}
	if info.ReplicasInfoTable == nil {
		info.ReplicasInfoTable = map[string]*wire.ReplicasInfo{}
	}
	return &info, nil
}

// ReplicaInfo is a broker set's master and SyncStateSet as the controller
// leader has them (CONTROLLER_GET_REPLICA_INFO, 1004). MasterBrokerID is
// nil while the set has no master.
type ReplicaInfo struct {
	BrokerName        string  `json:"brokerName"`
	MasterBrokerID    *int64  `json:"masterBrokerId,omitempty"`
	MasterAddress     string  `json:"masterAddress,omitempty"`
	MasterEpoch       int32   `json:"masterEpoch"`
	SyncStateSet      []int64 `json:"syncStateSet"`
	SyncStateSetEpoch int32   `json:"syncStateSetEpoch"`
}

// ReplicaInfo asks the controller leader for one broker set's master.
func (a *Admin) ReplicaInfo(controllers []string, brokerName string) (*ReplicaInfo, error) {
	resp, _, err := a.callLeader(controllers, wire.ControllerGetReplicaInfo, map[string]string{"brokerName": brokerName}, nil)
	if err != nil {
		return nil, fmt.Errorf("replica info of %s: %w", brokerName, err)
	}
	h, err := wire.ParseMasterInfoHeader(resp)
	if err != nil {
		return nil, fmt.Errorf("replica info of %s: %w", brokerName, err)
	}
	var set wire.SyncStateSet
	if err := decode(resp, "SyncStateSet", &set); err != nil {
		return nil, err
	}
	r := &ReplicaInfo{BrokerName: brokerName, MasterEpoch: h.MasterEpoch, SyncStateSet: set.SyncStateSet, SyncStateSetEpoch: set.SyncStateSetEpoch}
	if h.HasMaster {
		id := h.MasterBrokerID
		r.MasterBrokerID, r.MasterAddress = &id, h.MasterAddress
	}
	return r, nil
}

// Elected is the outcome of an election: the new master, the epochs and
// the members of the set.
type Elected struct {
	ClusterName       string           `json:"clusterName"`
	BrokerName        string           `json:"brokerName"`
	MasterBrokerID    int64            `json:"masterBrokerId"`
	MasterAddress     string           `json:"masterAddress"`
	MasterEpoch       int32            `json:"masterEpoch"`
	SyncStateSetEpoch int32            `json:"syncStateSetEpoch"`
	SyncStateSet      []int64          `json:"syncStateSet"`
	BrokerAddrs       map[int64]string `json:"brokerAddrs"`
}

// ElectMaster makes brokerID the master of its set, as mqadmin electMaster
// does (CONTROLLER_ELECT_MASTER, 1002, designateElect=true). The
// controller refuses an id that is not an alive member of the
// SyncStateSet (CONTROLLER_ELECT_MASTER_FAILED) and the current master
// (CONTROLLER_MASTER_STILL_EXIST).
func (a *Admin) ElectMaster(controllers []string, cluster, brokerName string, brokerID int64) (*Elected, error) {
	h := wire.ElectMasterHeader{ClusterName: cluster, BrokerName: brokerName, BrokerID: brokerID, DesignateElect: true,
		InvokeTime: time.Now().UnixMilli()}
	resp, _, err := a.callLeader(controllers, wire.ControllerElectMaster, h.Fields(), nil)
	if err != nil {
		return nil, fmt.Errorf("elect broker %d of %s: %w", brokerID, brokerName, err)
	}
	mh, err := wire.ParseMasterInfoHeader(resp)
	if err != nil {
		return nil, fmt.Errorf("elect broker %d of %s: %w", brokerID, brokerName, err)
	}
	var body wire.ElectMasterResponseBody
	if err := decode(resp, "election result", &body); err != nil {
		return nil, err
	}
	e := &Elected{ClusterName: cluster, BrokerName: brokerName, MasterBrokerID: mh.MasterBrokerID, MasterAddress: mh.MasterAddress,
		MasterEpoch: mh.MasterEpoch, SyncStateSetEpoch: mh.SyncStateSetEpoch, SyncStateSet: body.SyncStateSet}
	if g := body.BrokerMemberGroup; g != nil {
		e.BrokerAddrs = g.BrokerAddrs
		if g.Cluster != "" {
			e.ClusterName = g.Cluster
		}
	}
	return e, nil
}

// BrokerHAStatus returns a broker's replication state: as master, each
// slave connection with its ack offset and lag; as slave, its HA client
// (GET_BROKER_HA_STATUS, 907).
func (a *Admin) BrokerHAStatus(addr string) (*wire.HARuntimeInfo, error) {
	resp, err := a.call(addr, wire.GetBrokerHAStatus, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("HA status of %s: %w", addr, err)
	}
	var info wire.HARuntimeInfo
	if err := decode(resp, "HA status", &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// BrokerEpochCache returns a broker's master epochs with their commit-log
// ranges (GET_BROKER_EPOCH_CACHE, 1007). The last entry is open: like
// Java's getBrokerEpoch, its end is set to the broker's max offset.
func (a *Admin) BrokerEpochCache(addr string) (*wire.EpochEntryCache, error) {
	resp, err := a.call(addr, wire.GetBrokerEpochCache, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("epoch cache of %s: %w", addr, err)
	}
	var c wire.EpochEntryCache
	if err := decode(resp, "epoch cache", &c); err != nil {
		return nil, err
	}
	if n := len(c.EpochList); n > 0 {
		c.EpochList[n-1].EndOffset = c.MaxOffset
	}
	return &c, nil
}

// BrokerHA is one broker's GET_BROKER_HA_STATUS answer, or why it has none.
type BrokerHA struct {
	Broker
	Status *wire.HARuntimeInfo `json:"status,omitempty"`
	Error  string              `json:"error,omitempty"`
}

// HAStatuses asks every broker t selects at once; brokers that do not
// answer are listed with their error, and err then names the first.
func (a *Admin) HAStatuses(t Target) ([]BrokerHA, error) {
	brokers, err := a.Brokers(t)
	if err != nil {
		return nil, err
	}
	out := make([]BrokerHA, len(brokers))
	_ = FanOut(len(brokers), a.parallel, func(i int) error {
		out[i].Broker = brokers[i]
		s, err := a.BrokerHAStatus(brokers[i].Addr)
		if err != nil {
			out[i].Error = err.Error()
			return nil
		}
		out[i].Status = s
		return nil
	})
	for _, b := range out {
		if b.Error != "" {
			return out, errors.New(b.Error)
		}
	}
	return out, nil
}

// BrokerEpochs is one broker's GET_BROKER_EPOCH_CACHE answer.
type BrokerEpochs struct {
	Broker
	Epochs *wire.EpochEntryCache `json:"epochCache,omitempty"`
	Error  string                `json:"error,omitempty"`
}

// EpochCaches asks every broker t selects (slaves included) at once.
func (a *Admin) EpochCaches(t Target) ([]BrokerEpochs, error) {
	t.WithSlaves = true
	brokers, err := a.Brokers(t)
	if err != nil {
		return nil, err
	}
	out := make([]BrokerEpochs, len(brokers))
	_ = FanOut(len(brokers), a.parallel, func(i int) error {
		out[i].Broker = brokers[i]
		c, err := a.BrokerEpochCache(brokers[i].Addr)
		if err != nil {
			out[i].Error = err.Error()
			return nil
		}
		out[i].Epochs = c
		return nil
	})
	for _, b := range out {
		if b.Error != "" {
			return out, errors.New(b.Error)
		}
	}
	return out, nil
}

// BrokerNames returns the broker-set names of a cluster, sorted, from the
// name server (what Java's CommandUtil.fetchBrokerNameByClusterName does).
func (a *Admin) BrokerNames(cluster string) ([]string, error) {
	brokers, err := a.Brokers(Target{Cluster: cluster, WithSlaves: true})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, b := range brokers {
		if len(names) == 0 || names[len(names)-1] != b.Name {
			names = append(names, b.Name)
		}
	}
	return names, nil
}

// FormatIDs prints broker ids as "1,2,3".
func FormatIDs(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(s, ",")
}
