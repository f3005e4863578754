package probe

import (
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
	a, err := admin.New(addr, Timeout)
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
	// group's master is missing or a master is not writable, else StatusOK.
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
	DiskPused  float64 `json:"diskPused"`
	PutTPS     float64 `json:"putTps"`
	GetTPS     float64 `json:"getTps"`
}

// Cluster merges every name server's cluster table (a broker one of them
// lists counts) and asks each broker of cluster for its state.
func Cluster(namesrv, cluster string) *ClusterStatus {
	st := &ClusterStatus{Cluster: cluster, Reasons: []string{}, Brokers: []ClusterBroker{}}
	groups := map[string]map[int64]string{}
	for _, ns := range splitList(namesrv) {
		st.NamesrvCount++
		a, err := admin.New(ns, Timeout)
		if err != nil {
			st.Reasons = append(st.Reasons, "name server "+ns+": "+err.Error())
			continue
		}
		ci, err := a.ClusterInfo()
		a.Close()
		if err != nil {
			st.Reasons = append(st.Reasons, "name server "+ns+" down: "+err.Error())
			continue
		}
		st.NamesrvUp++
		mergeCluster(groups, ci, cluster)
	}
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		st.BrokerGroups++
		ids := make([]int64, 0, len(groups[name]))
		for id := range groups[name] {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		if groups[name][0] == "" {
			st.Reasons = append(st.Reasons, "broker group "+name+" has no master")
		}
		for _, id := range ids {
			b := probeBroker(name, id, groups[name][id])
			if id == 0 {
				st.Masters++
				st.MastersUp += b.Up
				if b.Up == 1 && b.Writable == 1 {
					st.MastersWritable++
				} else if b.Up == 1 {
					st.Reasons = append(st.Reasons, "master "+name+" is not writable")
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

func probeBroker(name string, id int64, addr string) ClusterBroker {
	b := ClusterBroker{Name: name, ID: id, Addr: addr}
	a, err := admin.New(addr, Timeout)
	if err != nil {
		b.Error = err.Error()
		return b
	}
	defer a.Close()
	rt, err := a.RuntimeInfo(addr)
	if err != nil {
		b.Error = err.Error()
		return b
	}
	b.Up = 1
	var s BrokerStatus
	s.fill(rt, map[string]string{}, time.Now())
	b.Permission, b.Writable = s.Permission, s.Writable
	b.DiskPused, b.PutTPS, b.GetTPS = s.CommitLogPused, s.PutTPS, s.GetTPS
	return b
}
