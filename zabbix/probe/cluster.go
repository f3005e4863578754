package probe

import (
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/wire"
)

// NamesrvStatus is one name server's view of the brokers.
type NamesrvStatus struct {
	Up           int      `json:"up"`
	Error        string   `json:"error,omitempty"`
	Addr         string   `json:"addr"`
	Clusters     int      `json:"clusters"`
	BrokerGroups int      `json:"brokerGroups"`
	Brokers      int      `json:"brokers"` // broker processes, masters and slaves
	Masters      int      `json:"masters"`
	Topics       int      `json:"topics"`
	BrokerNames  []string `json:"brokerNames"`
}

// Namesrv asks the name server at addr for its cluster table and topics.
func Namesrv(addr string) *NamesrvStatus {
	st := &NamesrvStatus{Addr: addr, BrokerNames: []string{}}
	a, err := newAdmin(addr)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	defer a.Close()
	ci, err := a.ClusterInfo()
	if err != nil {
		st.Error = err.Error()
		return st
	}
	topics, err := a.TopicList()
	if err != nil {
		st.Error = err.Error()
		return st
	}
	st.Up = 1
	st.Topics = len(topics)
	st.Clusters = len(ci.ClusterAddrTable)
	for name, bd := range ci.BrokerAddrTable {
		st.BrokerGroups++
		st.Brokers += len(bd.BrokerAddrs)
		if bd.BrokerAddrs[0] != "" {
			st.Masters++
		}
		st.BrokerNames = append(st.BrokerNames, name)
	}
	sort.Strings(st.BrokerNames)
	return st
}

// Cluster status values (the templates' value map).
const (
	StatusOK       = 0
	StatusDegraded = 1
	StatusDown     = 2
)

// ClusterStatus is a cluster as its name servers and brokers describe it.
type ClusterStatus struct {
	Cluster string `json:"cluster"`
	// Status is StatusDown when no name server answers or no master can
	// take writes, StatusDegraded when a name server, a broker or a
	// group's master is missing or a master is not writable (by permission,
	// or because its store refuses sends: disk full, failed fsync), else
	// StatusOK.
	Status          int             `json:"status"`
	Reasons         []string        `json:"reasons"`
	NamesrvCount    int             `json:"namesrvCount"`
	NamesrvUp       int             `json:"namesrvUp"`
	BrokerGroups    int             `json:"brokerGroups"`
	Masters         int             `json:"masters"`
	MastersUp       int             `json:"mastersUp"`
	MastersWritable int             `json:"mastersWritable"`
	Slaves          int             `json:"slaves"`
	SlavesUp        int             `json:"slavesUp"`
	Brokers         []ClusterBroker `json:"brokers"`
}

// ClusterBroker is one broker process of the cluster.
type ClusterBroker struct {
	Name       string  `json:"brokerName"`
	ID         int64   `json:"brokerId"`
	Addr       string  `json:"addr"`
	Up         int     `json:"up"`
	Error      string  `json:"error,omitempty"`
	Permission int     `json:"permission"`
	Writable   int     `json:"writable"`
	StoreState string  `json:"storeState"`
	StoreError string  `json:"storeError,omitempty"`
	DiskPused  float64 `json:"diskPused"`
	PutTPS     float64 `json:"putTps"`
	GetTPS     float64 `json:"getTps"`
}

// Cluster merges every name server's cluster table (a broker one of them
// lists counts) and asks each broker of cluster for its state.
func Cluster(namesrv, cluster string) *ClusterStatus {
	st := &ClusterStatus{Cluster: cluster, Reasons: []string{}, Brokers: []ClusterBroker{}}
	nss := splitList(namesrv)
	st.NamesrvCount = len(nss)
	infos := make([]*wire.ClusterInfo, len(nss))
	failures := make([]string, len(nss))
	_ = admin.FanOut(len(nss), admin.DefaultParallel, func(i int) error {
		a, err := newAdmin(nss[i])
		if err != nil {
			failures[i] = "name server " + nss[i] + ": " + err.Error()
			return nil
		}
		defer a.Close()
		if infos[i], err = a.ClusterInfo(); err != nil {
			failures[i] = "name server " + nss[i] + " down: " + err.Error()
		}
		return nil
	})
	groups := map[string]map[int64]string{}
	for i, ci := range infos {
		if ci == nil {
			st.Reasons = append(st.Reasons, failures[i])
			continue
		}
		st.NamesrvUp++
		mergeCluster(groups, ci, cluster)
	}
	names := slices.Sorted(maps.Keys(groups))
	var all []ClusterBroker // by name, then id
	for _, name := range names {
		for _, id := range slices.Sorted(maps.Keys(groups[name])) {
			all = append(all, ClusterBroker{Name: name, ID: id, Addr: groups[name][id]})
		}
	}
	_ = admin.FanOut(len(all), admin.DefaultParallel, func(i int) error {
		probeBroker(&all[i])
		return nil
	})
	next := 0
	for _, name := range names {
		st.BrokerGroups++
		if groups[name][0] == "" {
			st.Reasons = append(st.Reasons, "broker group "+name+" has no master")
		}
		for ; next < len(all) && all[next].Name == name; next++ {
			b := all[next]
			if b.ID == 0 {
				st.Masters++
				st.MastersUp += b.Up
				if p := b.sendProblem(); b.Up == 1 && p == "" {
					st.MastersWritable++
				} else if b.Up == 1 {
					st.Reasons = append(st.Reasons, "master "+name+" "+p)
				}
			} else {
				st.Slaves++
				st.SlavesUp += b.Up
			}
			if b.Up == 0 {
				st.Reasons = append(st.Reasons, "broker "+name+" "+b.Addr+" down: "+b.Error)
			}
			st.Brokers = append(st.Brokers, b)
		}
	}
	switch {
	case st.NamesrvUp == 0:
		st.Status = StatusDown
		st.Reasons = append(st.Reasons, "no name server answers")
	case st.MastersWritable == 0:
		st.Status = StatusDown
		st.Reasons = append(st.Reasons, "no writable master")
	case len(st.Reasons) > 0:
		st.Status = StatusDegraded
	}
	return st
}

func mergeCluster(groups map[string]map[int64]string, ci *wire.ClusterInfo, cluster string) {
	for _, name := range ci.ClusterAddrTable[cluster] {
		bd := ci.BrokerAddrTable[name]
		if bd == nil {
			continue
		}
		if groups[name] == nil {
			groups[name] = map[int64]string{}
		}
		for id, addr := range bd.BrokerAddrs {
			groups[name][id] = addr
		}
	}
}

// sendProblem says why a broker that answered takes no sends, "" when it
// takes them.
func (b *ClusterBroker) sendProblem() string {
	switch {
	case b.Writable == 1:
		return ""
	case b.Permission>>1&1 == 1: // the permission allows writes: the store refuses them
		return "refuses sends: store " + b.StoreState + ": " + b.StoreError
	default:
		return "is not writable"
	}
}

// probeBroker fills b from its runtime table, or says why it could not.
func probeBroker(b *ClusterBroker) {
	a, err := newAdmin(b.Addr)
	if err != nil {
		b.Error = err.Error()
		return
	}
	defer a.Close()
	rt, err := a.RuntimeInfo(b.Addr)
	if err != nil {
		b.Error = err.Error()
		return
	}
	b.Up = 1
	var s BrokerStatus
	s.fill(rt, map[string]string{}, time.Now())
	b.Permission, b.Writable = s.Permission, s.Writable
	b.StoreState, b.StoreError = s.StoreState, s.StoreError
	b.DiskPused, b.PutTPS, b.GetTPS = s.CommitLogPused, s.PutTPS, s.GetTPS
}
