package admin

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/mqops/mqops/wire"
)

// Requests answered by name servers (apache/rocketmq
// namesrv/src/main/java/org/apache/rocketmq/namesrv/processor/DefaultRequestProcessor.java).

// TopicRoute returns the route of topic (GET_ROUTEINFO_BY_TOPIC, 105).
func (a *Admin) TopicRoute(topic string) (*wire.TopicRouteData, error) {
	resp, err := a.callNamesrv(wire.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil)
	if err != nil {
		return nil, fmt.Errorf("route of topic %s: %w", topic, err)
	}
	var rd wire.TopicRouteData
	if err := decode(resp, "route of topic "+topic, &rd); err != nil {
		return nil, err
	}
	return &rd, nil
}

// ClusterInfo returns every cluster and broker the name server knows
// (GET_BROKER_CLUSTER_INFO, 106).
func (a *Admin) ClusterInfo() (*wire.ClusterInfo, error) {
	resp, err := a.callNamesrv(wire.GetBrokerClusterInfo, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("cluster info: %w", err)
	}
	var ci wire.ClusterInfo
	if err := decode(resp, "cluster info", &ci); err != nil {
		return nil, err
	}
	return &ci, nil
}

// TopicList returns every topic with a route, sorted
// (GET_ALL_TOPIC_LIST_FROM_NAMESERVER, 206).
func (a *Admin) TopicList() ([]string, error) {
	resp, err := a.callNamesrv(wire.GetAllTopicListFromNamesrv, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("topic list: %w", err)
	}
	var tl wire.TopicList
	if err := decode(resp, "topic list", &tl); err != nil {
		return nil, err
	}
	sort.Strings(tl.TopicList)
	return tl.TopicList, nil
}

// NamesrvResult is one name server's answer to a call sent to all of them.
type NamesrvResult struct {
	Addr  string `json:"namesrv"`
	Count int    `json:"count"`
}

// eachNamesrv runs fn against every name server and stops at the first
// failure: these are writes that must reach all of them.
func (a *Admin) eachNamesrv(what string, fn func(addr string) error) error {
	for _, ns := range a.namesrvs {
		if err := fn(ns); err != nil {
			return fmt.Errorf("%s on name server %s: %w", what, ns, err)
		}
	}
	return nil
}

// DeleteTopicInNamesrv removes a topic from every name server
// (DELETE_TOPIC_IN_NAMESRV, 216); with cluster only that cluster's queues go.
func (a *Admin) DeleteTopicInNamesrv(topic, cluster string) error {
	f := map[string]string{"topic": topic}
	if cluster != "" {
		f["clusterName"] = cluster
	}
	return a.eachNamesrv("delete topic "+topic, func(ns string) error {
		_, err := a.call(ns, wire.DeleteTopicInNamesrv, f, nil)
		return err
	})
}

// SetWritePerm clears (wipe) or restores the write bit of every queue of a
// broker name in every name server's routes (205 / 327). Only routes
// change: the broker re-registers its own permission later (Java's
// RouteInfoManager.operateWritePermOfBroker, apache/rocketmq
// namesrv/src/main/java/org/apache/rocketmq/namesrv/routeinfo/RouteInfoManager.java).
func (a *Admin) SetWritePerm(brokerName string, wipe bool) ([]NamesrvResult, error) {
	code, countKey, what := wire.AddWritePermOfBroker, "addTopicCount", "add write perm of "+brokerName
	if wipe {
		code, countKey, what = wire.WipeWritePermOfBroker, "wipeTopicCount", "wipe write perm of "+brokerName
	}
	var out []NamesrvResult
	err := a.eachNamesrv(what, func(ns string) error {
		resp, err := a.call(ns, code, map[string]string{"brokerName": brokerName}, nil)
		if err != nil {
			return err
		}
		n, _ := resp.GetInt(countKey)
		out = append(out, NamesrvResult{Addr: ns, Count: int(n)})
		return nil
	})
	return out, err
}

// NamesrvConfig returns every name server's configuration (GET_NAMESRV_CONFIG, 319).
func (a *Admin) NamesrvConfig() (map[string]map[string]string, error) {
	cfgs := make([]map[string]string, len(a.namesrvs))
	err := FanOut(len(a.namesrvs), a.parallel, func(i int) error {
		ns := a.namesrvs[i]
		resp, err := a.call(ns, wire.GetNamesrvConfig, nil, nil)
		if err == nil {
			cfgs[i], err = parseProperties(resp.Body)
		}
		if err != nil {
			return fmt.Errorf("get config on name server %s: %w", ns, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]string{}
	for i, ns := range a.namesrvs {
		out[ns] = cfgs[i]
	}
	return out, nil
}

// UpdateNamesrvConfig sets keys on every name server (UPDATE_NAMESRV_CONFIG, 318).
func (a *Admin) UpdateNamesrvConfig(kv map[string]string) error {
	body := formatProperties(kv)
	return a.eachNamesrv("update config", func(ns string) error {
		_, err := a.call(ns, wire.UpdateNamesrvConfig, nil, body)
		return err
	})
}

// KVGet reads one KV entry (GET_KV_CONFIG, 101). found is false when the
// name server has no such key (QUERY_NOT_FOUND).
func (a *Admin) KVGet(namespace, key string) (value string, found bool, err error) {
	resp, err := a.callNamesrv(wire.GetKVConfig, map[string]string{"namespace": namespace, "key": key}, nil)
	if IsCode(err, wire.QueryNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("get kv %s/%s: %w", namespace, key, err)
	}
	return resp.GetString("value"), true, nil
}

// KVList reads a whole KV namespace (GET_KVLIST_BY_NAMESPACE, 219); an
// unknown namespace is empty.
func (a *Admin) KVList(namespace string) (map[string]string, error) {
	resp, err := a.callNamesrv(wire.GetKVListByNamespace, map[string]string{"namespace": namespace}, nil)
	if IsCode(err, wire.QueryNotFound) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list kv %s: %w", namespace, err)
	}
	var t wire.KVTable
	if err := decode(resp, "kv table", &t); err != nil {
		return nil, err
	}
	if t.Table == nil {
		t.Table = map[string]string{}
	}
	return t.Table, nil
}

// KVPut writes one KV entry on every name server (PUT_KV_CONFIG, 100).
func (a *Admin) KVPut(namespace, key, value string) error {
	f := map[string]string{"namespace": namespace, "key": key, "value": value}
	return a.eachNamesrv(fmt.Sprintf("put kv %s/%s", namespace, key), func(ns string) error {
		_, err := a.call(ns, wire.PutKVConfig, f, nil)
		return err
	})
}

// KVDelete removes one KV entry from every name server (DELETE_KV_CONFIG, 102).
func (a *Admin) KVDelete(namespace, key string) error {
	f := map[string]string{"namespace": namespace, "key": key}
	return a.eachNamesrv(fmt.Sprintf("delete kv %s/%s", namespace, key), func(ns string) error {
		_, err := a.call(ns, wire.DeleteKVConfig, f, nil)
		return err
	})
}

// parseProperties reads the Java properties text brokers and name servers
// answer config requests with; the daemons' own parser (escapes included)
// keeps both sides in agreement.
func parseProperties(b []byte) (map[string]string, error) {
	m, err := wire.ParseJavaProperties(string(b))
	if err != nil {
		return nil, fmt.Errorf("config answer: %w", err)
	}
	return m, nil
}

// formatProperties writes key=value lines in key order.
func formatProperties(kv map[string]string) []byte {
	kvs := make([]wire.JavaProperty, 0, len(kv))
	for _, k := range sortedKeys(kv) {
		kvs = append(kvs, wire.JavaProperty{Key: k, Value: kv[k]})
	}
	return wire.FormatJavaProperties(kvs)
}

// MasterAddr returns the brokerId 0 address of a broker group, "" if none.
func MasterAddr(bd *wire.BrokerData) string { return bd.BrokerAddrs[0] }

// brokerIDs returns the ids of a broker group in ascending order.
func brokerIDs(bd *wire.BrokerData) []int64 {
	ids := make([]int64, 0, len(bd.BrokerAddrs))
	for id := range bd.BrokerAddrs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// itoa is strconv.Itoa for the many int extFields.
func itoa[T ~int | ~int32 | ~int64](v T) string { return strconv.FormatInt(int64(v), 10) }

// ClusterTopics returns the topics with queues in one cluster, sorted
// (GET_TOPICS_BY_CLUSTER, 224).
func (a *Admin) ClusterTopics(cluster string) ([]string, error) {
	resp, err := a.callNamesrv(wire.GetTopicsByCluster, map[string]string{"cluster": cluster}, nil)
	if err != nil {
		return nil, fmt.Errorf("topics of cluster %s: %w", cluster, err)
	}
	var tl wire.TopicList
	if err := decode(resp, "topic list", &tl); err != nil {
		return nil, err
	}
	sort.Strings(tl.TopicList)
	return tl.TopicList, nil
}
