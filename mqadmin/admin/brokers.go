package admin

import (
	"fmt"
	"sort"
	"strings"

	"github.com/mqops/mqops/wire"
)

// Broker is one broker process: its group, id (0 = master) and address.
type Broker struct {
	Cluster string `json:"cluster"`
	Name    string `json:"brokerName"`
	ID      int64  `json:"brokerId"`
	Addr    string `json:"addr"`
	// Note is the broker's remark on an admin change, e.g. which settings
	// take effect only after a restart.
	Note string `json:"note,omitempty"`
}

// Role is "MASTER" for id 0 and "SLAVE" otherwise.
func (b Broker) Role() string {
	if b.ID == 0 {
		return "MASTER"
	}
	return "SLAVE"
}

// Target selects brokers the way mqadmin's -b/-c options do: Broker is an
// address (ip:port) or a broker name, Cluster a cluster name; with neither,
// every cluster. Only masters unless WithSlaves (an explicit address is
// always taken as given).
type Target struct {
	Broker     string
	Cluster    string
	WithSlaves bool
}

// Brokers resolves t against the name server's cluster info, sorted by
// cluster, broker name and id.
func (a *Admin) Brokers(t Target) ([]Broker, error) {
	if strings.Contains(t.Broker, ":") {
		// An address needs no name server; look it up only to name it.
		b := Broker{Addr: t.Broker, ID: -1}
		if ci, err := a.ClusterInfo(); err == nil {
			for _, x := range allBrokers(ci) {
				if x.Addr == t.Broker {
					b = x
				}
			}
		}
		return []Broker{b}, nil
	}
	ci, err := a.ClusterInfo()
	if err != nil {
		return nil, err
	}
	if t.Cluster != "" {
		if _, ok := ci.ClusterAddrTable[t.Cluster]; !ok {
			return nil, fmt.Errorf("cluster %s not found (known: %s)", t.Cluster, strings.Join(sortedKeys(ci.ClusterAddrTable), ", "))
		}
	}
	if t.Broker != "" {
		if _, ok := ci.BrokerAddrTable[t.Broker]; !ok {
			return nil, fmt.Errorf("broker %s not found (known: %s)", t.Broker, strings.Join(sortedKeys(ci.BrokerAddrTable), ", "))
		}
	}
	var out []Broker
	for _, b := range allBrokers(ci) {
		if (t.Cluster != "" && b.Cluster != t.Cluster) || (t.Broker != "" && b.Name != t.Broker) || (b.ID != 0 && !t.WithSlaves) {
			continue
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s found", describeTarget(t))
	}
	return out, nil
}

func describeTarget(t Target) string {
	kind := "master broker"
	if t.WithSlaves {
		kind = "broker"
	}
	switch {
	case t.Broker != "":
		return fmt.Sprintf("%s named %s", kind, t.Broker)
	case t.Cluster != "":
		return fmt.Sprintf("%s in cluster %s", kind, t.Cluster)
	}
	return kind
}

// allBrokers flattens cluster info, sorted by cluster, name and id.
func allBrokers(ci *wire.ClusterInfo) []Broker {
	clusterOf := map[string]string{}
	for c, names := range ci.ClusterAddrTable {
		for _, n := range names {
			clusterOf[n] = c
		}
	}
	var out []Broker
	for name, bd := range ci.BrokerAddrTable {
		if bd == nil {
			continue
		}
		c := bd.Cluster
		if c == "" {
			c = clusterOf[name]
		}
		for _, id := range brokerIDs(bd) {
			out = append(out, Broker{Cluster: c, Name: name, ID: id, Addr: bd.BrokerAddrs[id]})
		}
	}
	sortBrokers(out)
	return out
}

func sortBrokers(bs []Broker) {
	sort.Slice(bs, func(i, j int) bool {
		a, b := bs[i], bs[j]
		if a.Cluster != b.Cluster {
			return a.Cluster < b.Cluster
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.ID < b.ID
	})
}

// routeMasters returns the master of every broker group in a route that
// has one, sorted by broker name.
func routeMasters(rd *wire.TopicRouteData) []Broker {
	var out []Broker
	for i := range rd.BrokerDatas {
		bd := &rd.BrokerDatas[i]
		if addr := MasterAddr(bd); addr != "" {
			out = append(out, Broker{Cluster: bd.Cluster, Name: bd.BrokerName, ID: 0, Addr: addr})
		}
	}
	sortBrokers(out)
	return out
}

// queueData returns a route's queue data of one broker group.
func queueData(rd *wire.TopicRouteData, brokerName string) (wire.QueueData, bool) {
	for _, qd := range rd.QueueDatas {
		if qd.BrokerName == brokerName {
			return qd, true
		}
	}
	return wire.QueueData{}, false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
