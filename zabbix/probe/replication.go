package probe

import (
	"fmt"
	"math"
	"net"
	"sort"
	"strings"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/wire"
)

// ReplicationStatus is a cluster's replication as the Zabbix helper sees
// it: per broker set (brokerName) the master's slave connections, per
// slave its lag, and, when controllers are given, the controller group's
// leader and each set's SyncStateSet and master epoch.
type ReplicationStatus struct {
	// Up is 1 when a name server answered; without one nothing else is known.
	Up    int    `json:"up"`
	Error string `json:"error,omitempty"`
	// Sets is keyed by brokerName, Replicas by "brokerName/brokerId".
	Sets       map[string]*ReplicaSet `json:"sets"`
	Replicas   map[string]*Replica    `json:"replicas"`
	Controller *ControllerStatus      `json:"controller,omitempty"`
}

// ReplicaSet is one broker set (brokerName): its master's replication.
type ReplicaSet struct {
	MasterAddr string `json:"masterAddr,omitempty"`
	MasterUp   int    `json:"masterUp"`
	MasterRole string `json:"masterRole,omitempty"`
	// Slaves is the slave connections the master has, InSync those of them
	// in sync (GET_BROKER_HA_STATUS, as mqadmin haStatus shows them).
	Slaves int `json:"slaves"`
	InSync int `json:"inSync"`
	// NoInSync is 1 when the set is meant to replicate (a SYNC_MASTER, a
	// slave registered, a slave connected, or a SyncStateSet in the
	// controller) and no slave is in sync: SYNC_MASTER sends then fail and
	// losing the master loses data.
	NoInSync    int   `json:"noInSync"`
	MaxLagBytes int64 `json:"maxLagBytes"`
	// MasterEpoch and SyncStateSetSize come from the controller leader
	// (CONTROLLER_GET_SYNC_STATE_DATA, 1006); a broker in controller mode
	// also reports its epoch, used when no controller is configured.
	MasterEpoch      *int64 `json:"masterEpoch,omitempty"`
	SyncStateSetSize *int   `json:"syncStateSetSize,omitempty"`
	Error            string `json:"error,omitempty"`
}

// Replica is one slave: how far it is behind its master.
type Replica struct {
	Broker string `json:"brokerName"`
	ID     int64  `json:"brokerId"`
	Addr   string `json:"addr"`
	Up     int    `json:"up"`
	// Connected is 1 while the master lists this slave's HA connection.
	Connected int `json:"connected"`
	InSync    int `json:"inSync"`
	// LagBytes is the master's diff for this slave's connection (its max
	// offset minus the slave's last acked offset), or, without a
	// connection, the difference of the two brokers' commit-log max offsets.
	LagBytes *int64 `json:"lagBytes,omitempty"`
	// LagSeconds is how long the slave needs to catch up at the rate the
	// master is sending to it: LagBytes / transferredByteInSecond, both as
	// mqadmin haStatus (Java's HAConnectionRuntimeInfo) reports them; 0
	// when nothing is outstanding. Absent when bytes are outstanding but
	// none flow (Stalled), where no rate gives a time.
	LagSeconds *float64 `json:"lagSeconds,omitempty"`
	Stalled    int      `json:"stalled"`
	// RateBytes is transferredByteInSecond of the connection.
	RateBytes int64  `json:"rateBytesPerSecond"`
	Error     string `json:"error,omitempty"`
}

// ControllerStatus is the controller group as its members answer
// CONTROLLER_GET_METADATA_INFO (1005).
type ControllerStatus struct {
	Configured int `json:"configured"`
	Answered   int `json:"answered"`
	Leaders    int `json:"leaders"`
	// LeaderPresent is 1 when exactly one controller says it leads.
	LeaderPresent int    `json:"leaderPresent"`
	LeaderAddr    string `json:"leaderAddr,omitempty"`
	Error         string `json:"error,omitempty"`
}

// Replication reads the cluster's brokers through the name servers, the
// masters' HA status and, when controllers (";"-separated) is not empty,
// the controller group.
func Replication(namesrv, cluster, controllers string) *ReplicationStatus {
	st := &ReplicationStatus{Sets: map[string]*ReplicaSet{}, Replicas: map[string]*Replica{}}
	// The controllers are asked while the brokers are: a hung controller and
	// a hung broker cost one timeout together.
	ctrlDone := make(chan struct{})
	go func() {
		defer close(ctrlDone)
		if ctrls := admin.SplitAddrs(controllers); len(ctrls) > 0 {
			st.Controller = controllerStatus(ctrls)
		}
	}()
	defer func() { <-ctrlDone }()
	a, err := newAdmin(namesrv)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	defer a.Close()
	rts, err := a.ClusterRuntime(cluster)
	<-ctrlDone
	if len(rts) == 0 && err != nil {
		st.Error = err.Error()
		return st
	}
	st.Up = 1
	masters := map[string]*admin.BrokerRuntime{}
	for i := range rts {
		r := &rts[i]
		set := st.Sets[r.Name]
		if set == nil {
			set = &ReplicaSet{}
			st.Sets[r.Name] = set
		}
		if r.ID == 0 {
			masters[r.Name] = r
			set.MasterAddr, set.MasterRole, set.MasterEpoch = r.Addr, r.BrokerRole, r.MasterEpoch
			if r.Error == "" {
				set.MasterUp = 1
			} else {
				set.Error = r.Error
			}
			continue
		}
		rep := &Replica{Broker: r.Name, ID: r.ID, Addr: r.Addr, LagBytes: r.LagBytes, Error: r.Error}
		if r.Error == "" {
			rep.Up = 1
		}
		st.Replicas[fmt.Sprintf("%s/%d", r.Name, r.ID)] = rep
	}
	// The masters' HA status, all at once: a dead master costs one timeout.
	names := make([]string, 0, len(masters))
	for n, m := range masters {
		if m.Error == "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	has := make([]*wire.HARuntimeInfo, len(names))
	errs := make([]error, len(names))
	_ = admin.FanOut(len(names), admin.DefaultParallel, func(i int) error {
		has[i], errs[i] = a.BrokerHAStatus(masters[names[i]].Addr)
		return nil
	})
	for i, n := range names {
		set := st.Sets[n]
		if errs[i] != nil {
			set.Error = errs[i].Error()
			continue
		}
		st.fillSet(n, set, has[i], rts)
	}
	if c := st.Controller; c != nil && c.LeaderPresent == 1 {
		st.syncStates(a, admin.SplitAddrs(controllers))
	}
	for _, set := range st.Sets {
		replicated := set.MasterRole == "SYNC_MASTER" || set.Slaves > 0 || (set.SyncStateSetSize != nil && *set.SyncStateSetSize > 1)
		for _, r := range st.Replicas {
			if st.Sets[r.Broker] == set {
				replicated = true
			}
		}
		if replicated && set.InSync == 0 {
			set.NoInSync = 1
		}
	}
	return st
}

// fillSet takes a master's HA status into its set and matches each slave
// connection to a registered slave: by host, and among slaves on the same
// host by the acked offset nearest the slave's own max offset (the
// connection's address is the slave's ephemeral HA client port, not its
// broker address).
func (st *ReplicationStatus) fillSet(name string, set *ReplicaSet, ha *wire.HARuntimeInfo, rts []admin.BrokerRuntime) {
	set.Slaves, set.InSync = len(ha.HAConnectionInfo), int(ha.InSyncSlaveNums)
	used := map[*Replica]bool{}
	for _, c := range ha.HAConnectionInfo {
		set.MaxLagBytes = max(set.MaxLagBytes, c.Diff)
		var best *Replica
		var bestGap int64 = math.MaxInt64
		for i := range rts {
			r := &rts[i]
			rep := st.Replicas[fmt.Sprintf("%s/%d", r.Name, r.ID)]
			if r.Name != name || rep == nil || used[rep] || host(r.Addr) != host(c.Addr) {
				continue
			}
			gap := int64(math.MaxInt64 - 1) // a slave that did not answer matches last
			if r.Error == "" {
				gap = r.CommitLogMaxOffset - c.SlaveAckOffset
				if gap < 0 {
					gap = -gap
				}
			}
			if gap < bestGap {
				best, bestGap = rep, gap
			}
		}
		if best == nil {
			continue
		}
		used[best] = true
		lag := c.Diff
		best.Connected, best.LagBytes, best.RateBytes = 1, &lag, c.TransferredByteInSecond
		if c.InSync {
			best.InSync = 1
		}
		switch {
		case lag <= 0:
			zero := 0.0
			best.LagSeconds = &zero
		case c.TransferredByteInSecond > 0:
			s := math.Round(float64(lag)/float64(c.TransferredByteInSecond)*1000) / 1000
			best.LagSeconds = &s
		default:
			best.Stalled = 1
		}
	}
}

// syncStates asks the controller leader for every set's SyncStateSet and
// master epoch; they replace the brokers' own epochs.
func (st *ReplicationStatus) syncStates(a *admin.Admin, ctrls []string) {
	names := make([]string, 0, len(st.Sets))
	for n := range st.Sets {
		names = append(names, n)
	}
	sort.Strings(names)
	info, err := a.SyncStateData(ctrls, names)
	if err != nil {
		st.Controller.Error = err.Error()
		return
	}
	for n, ri := range info.ReplicasInfoTable {
		set := st.Sets[n]
		if set == nil || ri == nil {
			continue
		}
		epoch := int64(ri.MasterEpoch)
		size := len(ri.InSyncReplicas)
		set.MasterEpoch, set.SyncStateSetSize = &epoch, &size
	}
}

// controllerStatus asks every controller for its metadata.
func controllerStatus(ctrls []string) *ControllerStatus {
	c := &ControllerStatus{Configured: len(ctrls)}
	a := newDirect()
	defer a.Close()
	ms, err := a.ControllersMetadata(ctrls)
	if err != nil {
		c.Error = err.Error()
	}
	for _, m := range ms {
		if m.Error != "" {
			continue
		}
		c.Answered++
		if m.IsLeader {
			c.Leaders++
			c.LeaderAddr = m.Addr
		}
	}
	switch {
	case c.Leaders == 1:
		c.LeaderPresent = 1
	case c.Leaders > 1:
		c.Error = strings.TrimPrefix(c.Error+fmt.Sprintf("; %d controllers say they lead", c.Leaders), "; ")
	case c.Answered > 0 && c.Error == "":
		c.Error = "no controller leads (election under way?)"
	}
	return c
}

func host(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// ReplicaRows is the discovery of slaves: one row per slave (id ≥ 1) of
// each broker set, as the name servers list them.
func ReplicaRows(namesrv, cluster string) ([]Row, error) {
	rows, err := Brokers(namesrv, cluster)
	if err != nil {
		return nil, err
	}
	out := []Row{}
	for _, r := range rows {
		if r["{#BROKER.ID}"] != "0" {
			out = append(out, r)
		}
	}
	return out, nil
}

// BrokerSetRows is the discovery of broker sets: one row per brokerName.
func BrokerSetRows(namesrv, cluster string) ([]Row, error) {
	rows, err := Brokers(namesrv, cluster)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	out := []Row{}
	for _, r := range rows {
		if n := r["{#BROKER}"]; !seen[n] {
			seen[n] = true
			out = append(out, Row{"{#BROKER}": n})
		}
	}
	return out, nil
}
