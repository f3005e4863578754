package probe

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/wire"
)

// Row is one low-level-discovery entry: LLD macro → value.
type Row map[string]string

// Topic types, {#TOPIC.TYPE}: the templates discover "normal" topics only
// unless {$RMQ.LLD.TOPIC.TYPE.MATCHES} says otherwise. The broker's own
// topics named after its cluster and broker groups (and the cluster's
// _REPLY_TOPIC) are "system" too, which no name-based filter could tell,
// and so are the canary's topic and group.
const (
	TypeNormal = "normal"
	TypeRetry  = "retry"
	TypeDLQ    = "dlq"
	TypeSystem = "system"
)

var systemTopics = map[string]bool{
	"TBW102": true, "SCHEDULE_TOPIC_XXXX": true, "BenchmarkTest": true, "SELF_TEST_TOPIC": true,
	"OFFSET_MOVED_EVENT": true, "TRANS_CHECK_MAX_TIME_TOPIC": true, "RMQ_SYS_TRACE_TOPIC": true,
}

// systemGroups are the groups Apache RocketMQ brokers define for their
// own tools.
var systemGroups = map[string]bool{
	"TOOLS_CONSUMER": true, "FILTERSRV_CONSUMER": true, "SELF_TEST_C_GROUP": true,
	"CID_ONS-HTTP-PROXY": true, "CID_ONSAPI_PERMISSION": true, "CID_ONSAPI_OWNER": true,
	"CID_ONSAPI_PULL": true, "CID_RMQ_SYS_TRANS": true,
}

// CanaryPrefix starts the canary's default topic and group names.
const CanaryPrefix = "MQOPS_CANARY"

func topicType(t string, brokerNames map[string]bool) string {
	if base, ok := strings.CutSuffix(t, "_REPLY_TOPIC"); ok && brokerNames[base] {
		return TypeSystem // a cluster's request-reply topic
	}
	switch {
	case strings.HasPrefix(t, admin.RetryPrefix):
		return TypeRetry
	case strings.HasPrefix(t, admin.DLQPrefix):
		return TypeDLQ
	case systemTopics[t], brokerNames[t], strings.HasPrefix(t, "RMQ_SYS_"), strings.HasPrefix(t, "rmq_sys_"),
		strings.HasPrefix(t, CanaryPrefix):
		return TypeSystem
	}
	return TypeNormal
}

func groupType(g string) string {
	if systemGroups[g] || strings.HasPrefix(g, "CID_RMQ_SYS_") || strings.HasPrefix(g, CanaryPrefix) {
		return TypeSystem
	}
	return TypeNormal
}

// Scope says where discovery looks: one broker (Broker, an address) or
// the masters of a cluster through its name servers.
type Scope struct {
	Namesrv string
	Cluster string
	Broker  string
}

func (s Scope) open() (*admin.Admin, error) {
	ns := s.Namesrv
	if ns == "" {
		ns = s.Broker // broker calls go by address; no name server needed
	}
	if ns == "" {
		return nil, fmt.Errorf("discovery needs a broker address or name servers")
	}
	return newAdmin(ns)
}

func (s Scope) masters(a *admin.Admin) ([]admin.Broker, error) {
	if s.Broker != "" {
		return []admin.Broker{{Addr: s.Broker}}, nil
	}
	return a.Brokers(admin.Target{Cluster: s.Cluster})
}

// Topics lists the topics of the scope with their type: {#TOPIC},
// {#TOPIC.TYPE}, {#CLUSTER}.
func Topics(s Scope) ([]Row, error) {
	a, err := s.open()
	if err != nil {
		return nil, err
	}
	defer a.Close()
	masters, err := s.masters(a)
	if err != nil {
		return nil, err
	}
	cluster, names := s.Cluster, map[string]bool{}
	var topics []string
	if s.Broker != "" {
		if topics, err = a.BrokerTopics(s.Broker); err != nil {
			return nil, err
		}
		cfg, err := a.BrokerConfig(s.Broker)
		if err != nil {
			return nil, err
		}
		cluster = cfg["brokerClusterName"]
		names[cfg["brokerName"]] = true
	} else if topics, err = a.ClusterTopics(s.Cluster); err != nil {
		return nil, err
	}
	for _, b := range masters {
		names[b.Name] = true
	}
	names[cluster] = true
	rows := make([]Row, 0, len(topics))
	for _, t := range topics {
		rows = append(rows, Row{"{#TOPIC}": t, "{#TOPIC.TYPE}": topicType(t, names), "{#CLUSTER}": cluster})
	}
	return rows, nil
}

// Groups lists the consumer groups of the scope — those with a
// subscription-group config and those with consume progress — as
// {#GROUP}, {#GROUP.TYPE}; with pairs, one row per topic the group has
// progress on instead, adding {#TOPIC} and {#TOPIC.TYPE}.
func Groups(s Scope, pairs bool) ([]Row, error) {
	a, err := s.open()
	if err != nil {
		return nil, err
	}
	defer a.Close()
	masters, err := s.masters(a)
	if err != nil {
		return nil, err
	}
	lists := make([]*wire.ConsumeStatsList, len(masters))
	err = admin.FanOut(len(masters), a.Parallel(), func(i int) (err error) {
		lists[i], err = a.BrokerConsumeStats(masters[i].Addr, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	groups := map[string]map[string]bool{} // group → topics with progress
	names := map[string]bool{s.Cluster: s.Cluster != ""}
	for i, l := range lists {
		names[masters[i].Name] = true
		for g, list := range l.Groups {
			if groups[g] == nil {
				groups[g] = map[string]bool{}
			}
			for _, cs := range list {
				for mq := range cs.OffsetTable {
					groups[g][mq.Topic] = true
				}
			}
		}
	}
	if !pairs {
		t := admin.Target{Cluster: s.Cluster, Broker: s.Broker}
		gcs, err := a.Groups(t)
		if err != nil {
			return nil, err
		}
		for _, gc := range gcs {
			if groups[gc.Config.GroupName] == nil {
				groups[gc.Config.GroupName] = map[string]bool{}
			}
		}
	}
	var rows []Row
	for _, g := range slices.Sorted(maps.Keys(groups)) {
		if !pairs {
			rows = append(rows, Row{"{#GROUP}": g, "{#GROUP.TYPE}": groupType(g)})
			continue
		}
		for _, t := range slices.Sorted(maps.Keys(groups[g])) {
			rows = append(rows, Row{"{#GROUP}": g, "{#GROUP.TYPE}": groupType(g), "{#TOPIC}": t, "{#TOPIC.TYPE}": topicType(t, names)})
		}
	}
	if rows == nil {
		rows = []Row{}
	}
	return rows, nil
}

// Accounts lists the ACL accounts that have a produce quota (produceTps,
// produceBps in plain_acl.yml) on the scope's brokers: {#ACCESSKEY}. A
// broker reports each such account's counters in its runtime info
// (accountQuotaRejectedTotal_<accessKey>); accounts without a quota have
// no per-account figures to watch, and a broker without ACL lists none.
func Accounts(s Scope) ([]Row, error) {
	a, err := s.open()
	if err != nil {
		return nil, err
	}
	defer a.Close()
	masters, err := s.masters(a)
	if err != nil {
		return nil, err
	}
	rts := make([]map[string]string, len(masters))
	err = admin.FanOut(len(masters), a.Parallel(), func(i int) (err error) {
		rts[i], err = a.RuntimeInfo(masters[i].Addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	aks := map[string]bool{}
	for _, rt := range rts {
		for ak := range byPrefix(rt, accountRejectedPrefix) {
			aks[ak] = true
		}
	}
	rows := []Row{}
	for _, ak := range slices.Sorted(maps.Keys(aks)) {
		rows = append(rows, Row{"{#ACCESSKEY}": ak})
	}
	return rows, nil
}

// Brokers lists the broker processes of a cluster: {#BROKER}, {#BROKER.ID},
// {#BROKER.ADDR}.
func Brokers(namesrv, cluster string) ([]Row, error) {
	a, err := newAdmin(namesrv)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	bs, err := a.Brokers(admin.Target{Cluster: cluster, WithSlaves: true})
	if err != nil {
		return nil, err
	}
	rows := make([]Row, 0, len(bs))
	for _, b := range bs {
		rows = append(rows, Row{"{#BROKER}": b.Name, "{#BROKER.ID}": fmt.Sprint(b.ID), "{#BROKER.ADDR}": b.Addr})
	}
	return rows, nil
}
