package namesrv

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// masterID is the broker id of a group's master.
const masterID = 0

// Topic system flags carried in QueueData.topicSysFlag (Java TopicSysFlag).
const (
	sysFlagUnit    = 1 << 0
	sysFlagUnitSub = 1 << 1
)

// brokerLive is one broker address's liveness record (Java BrokerLiveInfo).
type brokerLive struct {
	lastUpdate   time.Time
	dataVersion  wire.DataVersion
	conn         *remoting.Conn // the connection the broker last registered on
	haServerAddr string
}

// connBrokers is attached to every accepted connection: the broker addresses
// ever registered over it. Guarded by routeTable.mu.
type connBrokers struct {
	addrs map[string]struct{}
}

// registration is one REGISTER_BROKER request, decoded.
type registration struct {
	cluster, brokerName, brokerAddr, haServerAddr string
	brokerID                                      int64
	topics                                        wire.TopicConfigSerializeWrapper
	filterServers                                 []string
}

// registerResult is what a slave learns about its master, and whether the
// address was not live before.
type registerResult struct {
	haServerAddr, masterAddr string
	newAddr                  bool
	ignored                  bool   // a newer holder (higher stateVersion) has the id
	heldBy                   string // that holder
}

// removal names one broker address dropped from the registry, for logging.
type removal struct {
	addr, brokerName string
	groupGone        bool // the whole broker group disappeared with it
}

// routeTable is the name server's in-memory directory (Java RouteInfoManager):
// five tables behind one lock, so every answer is a consistent snapshot.
type routeTable struct {
	mu            sync.RWMutex
	topicQueues   map[string]map[string]*wire.QueueData // topic → brokerName → queue data
	brokers       map[string]*wire.BrokerData           // brokerName → addresses by id
	clusters      map[string]map[string]struct{}        // cluster → brokerNames
	live          map[string]*brokerLive                // brokerAddr → liveness
	filterServers map[string][]string                   // brokerAddr → filter servers
}

func newRouteTable() *routeTable {
	return &routeTable{
		topicQueues:   make(map[string]map[string]*wire.QueueData),
		brokers:       make(map[string]*wire.BrokerData),
		clusters:      make(map[string]map[string]struct{}),
		live:          make(map[string]*brokerLive),
		filterServers: make(map[string][]string),
	}
}

// register applies one broker registration (Java's
// RouteInfoManager.registerBroker, apache/rocketmq
// namesrv/src/main/java/org/apache/rocketmq/namesrv/routeinfo/RouteInfoManager.java).
func (t *routeTable) register(r *registration, conn *remoting.Conn, cb *connBrokers, now time.Time) registerResult {
	t.mu.Lock()
	defer t.mu.Unlock()

	// RocketMQ 5's fencing of a stale master (RouteInfoManager.registerBroker
	// in apache/rocketmq 5.x): an id already held by another live address
	// with a higher stateVersion (master epoch) keeps its holder.
	if bd := t.brokers[r.brokerName]; bd != nil {
		if old, ok := bd.BrokerAddrs[r.brokerID]; ok && old != r.brokerAddr {
			if ol := t.live[old]; ol != nil && ol.dataVersion.StateVersion > r.topics.DataVersion.StateVersion {
				delete(t.live, r.brokerAddr)
				return registerResult{ignored: true, heldBy: old}
			}
		}
	}

	names := t.clusters[r.cluster]
	if names == nil {
		names = make(map[string]struct{})
		t.clusters[r.cluster] = names
	}
	names[r.brokerName] = struct{}{}

	bd := t.brokers[r.brokerName]
	first := bd == nil
	if first {
		bd = &wire.BrokerData{Cluster: r.cluster, BrokerName: r.brokerName, BrokerAddrs: make(map[int64]string)}
		t.brokers[r.brokerName] = bd
	}
	// One address holds one id: a slave promoted to master re-registers its
	// address under id 0 and must vanish from its old id.
	for id, addr := range bd.BrokerAddrs {
		if addr == r.brokerAddr && id != r.brokerID {
			delete(bd.BrokerAddrs, id)
		}
	}
	if _, had := bd.BrokerAddrs[r.brokerID]; !had {
		first = true
	}
	bd.BrokerAddrs[r.brokerID] = r.brokerAddr

	if r.brokerID == masterID {
		prev := t.live[r.brokerAddr]
		if first || prev == nil || prev.dataVersion != r.topics.DataVersion {
			for name, tc := range r.topics.TopicConfigTable {
				if tc == nil {
					continue
				}
				t.upsertQueueData(name, r.brokerName, tc)
			}
		}
	}

	_, wasLive := t.live[r.brokerAddr]
	t.live[r.brokerAddr] = &brokerLive{lastUpdate: now, dataVersion: r.topics.DataVersion, conn: conn, haServerAddr: r.haServerAddr}
	if cb != nil {
		cb.addrs[r.brokerAddr] = struct{}{}
	}

	if len(r.filterServers) == 0 {
		delete(t.filterServers, r.brokerAddr)
	} else {
		t.filterServers[r.brokerAddr] = slices.Clone(r.filterServers)
	}

	res := registerResult{newAddr: !wasLive}
	if r.brokerID != masterID {
		if masterAddr, ok := bd.BrokerAddrs[masterID]; ok {
			if ml := t.live[masterAddr]; ml != nil {
				res.haServerAddr, res.masterAddr = ml.haServerAddr, masterAddr
			}
		}
	}
	return res
}

// upsertQueueData records a master's topic config. The key is the topic
// table's key, which Java brokers always keep equal to topicName.
func (t *routeTable) upsertQueueData(topic, brokerName string, tc *wire.TopicConfig) {
	qds := t.topicQueues[topic]
	if qds == nil {
		qds = make(map[string]*wire.QueueData)
		t.topicQueues[topic] = qds
	}
	qds[brokerName] = &wire.QueueData{
		BrokerName:     brokerName,
		Perm:           tc.Perm,
		ReadQueueNums:  tc.ReadQueueNums,
		TopicSysFlag:   tc.TopicSysFlag,
		WriteQueueNums: tc.WriteQueueNums,
	}
}

// queryDataVersion answers QUERY_DATA_VERSION: whether dv differs from what
// the broker last registered (nil dv always differs), the stored version if
// any; an unchanged version counts as a heartbeat.
func (t *routeTable) queryDataVersion(addr string, dv *wire.DataVersion, now time.Time) (changed bool, stored *wire.DataVersion) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.live[addr]
	if l == nil {
		return true, nil
	}
	stored = new(l.dataVersion)
	changed = dv == nil || *dv != l.dataVersion
	if !changed {
		l.lastUpdate = now
	}
	return changed, stored
}

// unregister removes brokerAddrs[brokerID] of brokerName (UNREGISTER_BROKER).
func (t *routeTable) unregister(brokerAddr, brokerName string, brokerID int64) (removed bool, groupGone bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.live, brokerAddr)
	delete(t.filterServers, brokerAddr)
	bd := t.brokers[brokerName]
	if bd == nil {
		return false, false
	}
	_, removed = bd.BrokerAddrs[brokerID]
	delete(bd.BrokerAddrs, brokerID)
	if len(bd.BrokerAddrs) == 0 {
		t.removeGroupLocked(brokerName)
		return removed, true
	}
	return removed, false
}

// removeAddrLocked drops every trace of one broker address (Java
// onChannelDestroy). The caller holds the write lock.
func (t *routeTable) removeAddrLocked(addr string) removal {
	delete(t.live, addr)
	delete(t.filterServers, addr)
	rm := removal{addr: addr}
	for name, bd := range t.brokers {
		found := false
		for id, a := range bd.BrokerAddrs {
			if a == addr {
				delete(bd.BrokerAddrs, id)
				found = true
			}
		}
		if !found {
			continue
		}
		rm.brokerName = name
		if len(bd.BrokerAddrs) == 0 {
			t.removeGroupLocked(name)
			rm.groupGone = true
		}
		break
	}
	return rm
}

// removeGroupLocked deletes an empty broker group: its BrokerData, its name
// in every cluster (and clusters left empty), and its queue data in every
// topic (and topics left empty).
func (t *routeTable) removeGroupLocked(brokerName string) {
	delete(t.brokers, brokerName)
	for cluster, names := range t.clusters {
		delete(names, brokerName)
		if len(names) == 0 {
			delete(t.clusters, cluster)
		}
	}
	for topic, qds := range t.topicQueues {
		delete(qds, brokerName)
		if len(qds) == 0 {
			delete(t.topicQueues, topic)
		}
	}
}

// connClosed removes the addresses registered over conn that have not since
// re-registered over another connection.
func (t *routeTable) connClosed(conn *remoting.Conn, cb *connBrokers) []removal {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []removal
	for addr := range cb.addrs {
		delete(cb.addrs, addr)
		if l := t.live[addr]; l != nil && l.conn == conn {
			out = append(out, t.removeAddrLocked(addr))
		}
	}
	return out
}

// expire removes brokers whose last registration is older than maxAge and
// returns the connections no live broker uses any more, for the caller to
// close outside the lock (closing runs connClosed, which takes it).
func (t *routeTable) expire(now time.Time, maxAge time.Duration) ([]removal, []*remoting.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []removal
	stale := make(map[*remoting.Conn]struct{})
	for addr, l := range t.live {
		if now.Sub(l.lastUpdate) > maxAge {
			out = append(out, t.removeAddrLocked(addr))
			if l.conn != nil {
				stale[l.conn] = struct{}{}
			}
		}
	}
	for _, l := range t.live {
		delete(stale, l.conn)
	}
	return out, slices.Collect(maps.Keys(stale))
}

// route builds GET_ROUTEINFO_BY_TOPIC's answer; ok is false when the topic
// has no queue data or none of its brokers is known.
func (t *routeTable) route(topic string) (wire.TopicRouteData, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	rd := wire.TopicRouteData{
		BrokerDatas:       []wire.BrokerData{},
		FilterServerTable: map[string][]string{},
		QueueDatas:        []wire.QueueData{},
	}
	qds := t.topicQueues[topic]
	if len(qds) == 0 {
		return rd, false
	}
	for _, name := range slices.Sorted(maps.Keys(qds)) {
		rd.QueueDatas = append(rd.QueueDatas, *qds[name])
		bd := t.brokers[name]
		if bd == nil {
			continue
		}
		rd.BrokerDatas = append(rd.BrokerDatas, cloneBrokerData(bd))
		for _, addr := range bd.BrokerAddrs {
			if fs := t.filterServers[addr]; len(fs) > 0 {
				rd.FilterServerTable[addr] = slices.Clone(fs)
			}
		}
	}
	return rd, len(rd.BrokerDatas) > 0
}

// clusterInfo builds GET_BROKER_CLUSTER_INFO's answer.
func (t *routeTable) clusterInfo() wire.ClusterInfo {
	t.mu.RLock()
	defer t.mu.RUnlock()
	ci := wire.ClusterInfo{
		BrokerAddrTable:  make(map[string]*wire.BrokerData, len(t.brokers)),
		ClusterAddrTable: make(map[string][]string, len(t.clusters)),
	}
	for name, bd := range t.brokers {
		c := cloneBrokerData(bd)
		ci.BrokerAddrTable[name] = &c
	}
	for cluster, names := range t.clusters {
		ci.ClusterAddrTable[cluster] = slices.Sorted(maps.Keys(names))
	}
	return ci
}

// setWritePerm clears the write bit (wipe) or sets perm to RW (add) on every
// queue data of brokerName and returns how many topics it touched.
func (t *routeTable) setWritePerm(brokerName string, wipe bool) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, qds := range t.topicQueues {
		qd := qds[brokerName]
		if qd == nil {
			continue
		}
		if wipe {
			qd.Perm &^= wire.PermWrite
		} else {
			qd.Perm = wire.PermRead | wire.PermWrite
		}
		n++
	}
	return n
}

// deleteTopic drops a topic, or with a cluster only that cluster's queue
// data (the topic goes once none is left).
func (t *routeTable) deleteTopic(topic, cluster string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cluster == "" {
		delete(t.topicQueues, topic)
		return
	}
	qds := t.topicQueues[topic]
	if qds == nil {
		return
	}
	for name := range t.clusters[cluster] {
		delete(qds, name)
	}
	if len(qds) == 0 {
		delete(t.topicQueues, topic)
	}
}

// topics lists, sorted, every topic whose queue data keep (nil: all)
// reports true. keep runs under the read lock.
func (t *routeTable) topics(keep func(qds map[string]*wire.QueueData) bool) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := []string{}
	for topic, qds := range t.topicQueues {
		if keep == nil || keep(qds) {
			out = append(out, topic)
		}
	}
	slices.Sort(out)
	return out
}

// topicsOfCluster lists topics with queue data on any broker of cluster.
func (t *routeTable) topicsOfCluster(cluster string) []string {
	return t.topics(func(qds map[string]*wire.QueueData) bool {
		for name := range qds {
			if _, ok := t.clusters[cluster][name]; ok {
				return true
			}
		}
		return false
	})
}

// firstSysFlag is the topicSysFlag of the alphabetically first broker's
// queue data: Java looks at the first queue data only.
func firstSysFlag(qds map[string]*wire.QueueData) int {
	if len(qds) == 0 {
		return 0
	}
	return qds[slices.Min(slices.Collect(maps.Keys(qds)))].TopicSysFlag
}

// systemTopics answers GET_SYSTEM_TOPIC_LIST_FROM_NS: every cluster and
// broker name, plus one broker address.
func (t *routeTable) systemTopics() wire.TopicList {
	t.mu.RLock()
	defer t.mu.RUnlock()
	set := make(map[string]struct{})
	for cluster, names := range t.clusters {
		set[cluster] = struct{}{}
		for name := range names {
			set[name] = struct{}{}
		}
	}
	tl := wire.TopicList{TopicList: slices.Sorted(maps.Keys(set))}
	if tl.TopicList == nil {
		tl.TopicList = []string{}
	}
	for _, name := range slices.Sorted(maps.Keys(t.brokers)) {
		addrs := t.brokers[name].BrokerAddrs
		if len(addrs) > 0 {
			tl.BrokerAddr = addrs[slices.Min(slices.Collect(maps.Keys(addrs)))]
			break
		}
	}
	return tl
}

func cloneBrokerData(bd *wire.BrokerData) wire.BrokerData {
	return wire.BrokerData{Cluster: bd.Cluster, BrokerName: bd.BrokerName, BrokerAddrs: maps.Clone(bd.BrokerAddrs)}
}
