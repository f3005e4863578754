package admin

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/mqops/mqops/wire"
)

// NewTopicConfig returns mqadmin's defaults for a new topic: 8/8 queues,
// read-write, single tag.
func NewTopicConfig(topic string) wire.TopicConfig {
	return wire.TopicConfig{TopicName: topic, ReadQueueNums: 8, WriteQueueNums: 8, Perm: wire.PermRead | wire.PermWrite, TopicFilterType: "SINGLE_TAG"}
}

// CreateTopic creates or updates tc on the brokers t selects
// (UPDATE_AND_CREATE_TOPIC, 17) and returns them. An ordered topic created
// on a cluster also gets its order configuration written to the name
// servers (ORDER_TOPIC_CONFIG), as Java's updateTopic -o does (apache/rocketmq
// tools/src/main/java/org/apache/rocketmq/tools/command/topic/UpdateTopicSubCommand.java).
// attributes are RocketMQ 5's attribute changes, "+message.type=FIFO" (""
// keeps the topic's current attributes).
func (a *Admin) CreateTopic(t Target, tc wire.TopicConfig, attributes string) ([]Broker, error) {
	if err := wire.CheckTopic(tc.TopicName); err != nil {
		return nil, fmt.Errorf("create topic: %w", err)
	}
	changes, err := wire.ParseAttributes(attributes)
	if err != nil {
		return nil, fmt.Errorf("create topic %s: %w", tc.TopicName, err)
	}
	brokers, err := a.Brokers(t)
	if err != nil {
		return nil, fmt.Errorf("create topic %s: %w", tc.TopicName, err)
	}
	f := map[string]string{
		"topic": tc.TopicName, "defaultTopic": "TBW102",
		"readQueueNums": itoa(tc.ReadQueueNums), "writeQueueNums": itoa(tc.WriteQueueNums),
		"perm": itoa(tc.Perm), "topicFilterType": tc.TopicFilterType, "topicSysFlag": itoa(tc.TopicSysFlag),
		"order": fmt.Sprint(tc.Order),
	}
	if len(changes) > 0 {
		f["attributes"] = wire.FormatAttributes(changes)
	}
	for _, b := range brokers {
		if _, err := a.call(b.Addr, wire.UpdateAndCreateTopic, f, nil); err != nil {
			return nil, fmt.Errorf("create topic %s on %s: %w", tc.TopicName, b.Addr, err)
		}
	}
	if tc.Order && t.Cluster != "" {
		parts := make([]string, len(brokers))
		for i, b := range brokers {
			parts[i] = fmt.Sprintf("%s:%d", b.Name, tc.WriteQueueNums)
		}
		if err := a.KVPut("ORDER_TOPIC_CONFIG", tc.TopicName, strings.Join(parts, ";")); err != nil {
			return nil, err
		}
	}
	return brokers, nil
}

// DeleteTopic deletes a topic from the masters of cluster, or with cluster
// "" from every master its route names, then from every name server
// (215 then 216: a name server would re-learn it from a broker otherwise).
func (a *Admin) DeleteTopic(topic, cluster string) ([]Broker, error) {
	var brokers []Broker
	if cluster != "" {
		bs, err := a.Brokers(Target{Cluster: cluster})
		if err != nil {
			return nil, fmt.Errorf("delete topic %s: %w", topic, err)
		}
		brokers = bs
	} else {
		rd, err := a.TopicRoute(topic)
		if err != nil {
			return nil, fmt.Errorf("delete topic %s: %w", topic, err)
		}
		brokers = routeMasters(rd)
	}
	for _, b := range brokers {
		if _, err := a.call(b.Addr, wire.DeleteTopicInBroker, map[string]string{"topic": topic}, nil); err != nil {
			return nil, fmt.Errorf("delete topic %s on %s: %w", topic, b.Addr, err)
		}
	}
	return brokers, a.DeleteTopicInNamesrv(topic, cluster)
}

// TopicStats returns per-queue offsets of a topic on one broker
// (GET_TOPIC_STATS_INFO, 202).
func (a *Admin) TopicStats(addr, topic string) (*wire.TopicStatsTable, error) {
	resp, err := a.call(addr, wire.GetTopicStatsInfo, map[string]string{"topic": topic}, nil)
	if err != nil {
		return nil, fmt.Errorf("stats of topic %s on %s: %w", topic, addr, err)
	}
	t, err := wire.DecodeTopicStatsTable(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("decode stats of topic %s: %w", topic, err)
	}
	return t, nil
}

// QueueStatus is one queue's offset range.
type QueueStatus struct {
	BrokerName          string `json:"brokerName"`
	QueueID             int    `json:"queueId"`
	MinOffset           int64  `json:"minOffset"`
	MaxOffset           int64  `json:"maxOffset"`
	LastUpdateTimestamp int64  `json:"lastUpdateTimestamp"`
	// MessageType is the topic's message.type on this broker (RocketMQ
	// 5's attribute; "" when the broker's topic table could not be read).
	MessageType string `json:"messageType"`
	// ProduceQuota is the topic's produce quota on this broker
	// (+produce.tps/+produce.bps, mqops attributes), "" for none.
	ProduceQuota string `json:"produceQuota,omitempty"`
}

// TopicStatus returns every queue of a topic on every master of its route,
// sorted by broker name and queue id.
func (a *Admin) TopicStatus(topic string) ([]QueueStatus, error) {
	rd, err := a.TopicRoute(topic)
	if err != nil {
		return nil, err
	}
	masters := routeMasters(rd)
	stats := make([]*wire.TopicStatsTable, len(masters))
	err = FanOut(len(masters), a.parallel, func(i int) (err error) {
		stats[i], err = a.TopicStats(masters[i].Addr, topic)
		return err
	})
	if err != nil {
		return nil, err
	}
	configs := a.TopicConfigs(topic, rd)
	quotas, _ := ProduceQuotas(configs)
	var out []QueueStatus
	for _, st := range stats {
		for mq, o := range st.OffsetTable {
			mt := ""
			if tc := configs[mq.BrokerName]; tc != nil {
				mt = tc.MessageType()
			}
			out = append(out, QueueStatus{BrokerName: mq.BrokerName, QueueID: mq.QueueID, MinOffset: o.MinOffset, MaxOffset: o.MaxOffset,
				LastUpdateTimestamp: o.LastUpdateTimestamp, MessageType: mt, ProduceQuota: quotas[mq.BrokerName]})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].BrokerName != out[j].BrokerName {
			return out[i].BrokerName < out[j].BrokerName
		}
		return out[i].QueueID < out[j].QueueID
	})
	return out, nil
}

// TopicConsumers returns the groups that consume a topic on one broker:
// subscribed now or holding offsets (QUERY_TOPIC_CONSUME_BY_WHO, 300).
func (a *Admin) TopicConsumers(addr, topic string) ([]string, error) {
	resp, err := a.call(addr, wire.QueryTopicConsumeByWho, map[string]string{"topic": topic}, nil)
	if err != nil {
		return nil, fmt.Errorf("consumers of topic %s on %s: %w", topic, addr, err)
	}
	var gl wire.GroupList
	if err := decode(resp, "group list", &gl); err != nil {
		return nil, err
	}
	sort.Strings(gl.GroupList)
	return gl.GroupList, nil
}

// TopicConsumersAll is TopicConsumers over every master of the topic's
// route, deduplicated and sorted.
func (a *Admin) TopicConsumersAll(topic string) ([]string, error) {
	rd, err := a.TopicRoute(topic)
	if err != nil {
		return nil, err
	}
	masters := routeMasters(rd)
	groups := make([][]string, len(masters))
	err = FanOut(len(masters), a.parallel, func(i int) (err error) {
		groups[i], err = a.TopicConsumers(masters[i].Addr, topic)
		return err
	})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, gs := range groups {
		for _, g := range gs {
			seen[g] = true
		}
	}
	return sortedKeys(seen), nil
}

// IsRetryOrDLQ reports whether a topic is a consumer group's retry or
// dead-letter topic.
func IsRetryOrDLQ(topic string) bool {
	return strings.HasPrefix(topic, RetryPrefix) || strings.HasPrefix(topic, DLQPrefix)
}

// Prefixes of the per-group system topics.
const (
	RetryPrefix = "%RETRY%"
	DLQPrefix   = "%DLQ%"
)

// BrokerTopics returns the topics one broker holds, sorted
// (GET_ALL_TOPIC_CONFIG, 21).
func (a *Admin) BrokerTopics(addr string) ([]string, error) {
	w, err := a.BrokerTopicConfigs(addr)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(w.TopicConfigTable))
	for t := range w.TopicConfigTable {
		out = append(out, t)
	}
	sort.Strings(out)
	return out, nil
}

// BrokerTopicConfigs returns one broker's topic table
// (GET_ALL_TOPIC_CONFIG, 21).
func (a *Admin) BrokerTopicConfigs(addr string) (*wire.TopicConfigSerializeWrapper, error) {
	resp, err := a.call(addr, wire.GetAllTopicConfig, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("topics of %s: %w", addr, err)
	}
	var w wire.TopicConfigSerializeWrapper
	if err := decode(resp, "topic configs", &w); err != nil {
		return nil, err
	}
	return &w, nil
}

// MessageTypes maps every topic on the masters t selects to its
// message.type (RocketMQ 5's topic attribute, NORMAL when unset), asking
// the masters at once; where masters disagree the types are sorted and
// joined by ",". A master that does not answer adds nothing.
func (a *Admin) MessageTypes(t Target) (map[string]string, error) {
	masters, err := a.Brokers(t)
	if err != nil {
		return nil, err
	}
	tables := make([]*wire.TopicConfigSerializeWrapper, len(masters))
	_ = FanOut(len(masters), a.parallel, func(i int) error {
		tables[i], _ = a.BrokerTopicConfigs(masters[i].Addr)
		return nil
	})
	seen := map[string][]string{}
	for _, w := range tables {
		if w == nil {
			continue
		}
		for name, tc := range w.TopicConfigTable {
			if tc != nil && !slices.Contains(seen[name], tc.MessageType()) {
				seen[name] = append(seen[name], tc.MessageType())
			}
		}
	}
	out := make(map[string]string, len(seen))
	for name, ts := range seen {
		slices.Sort(ts)
		out[name] = strings.Join(ts, ",")
	}
	return out, nil
}

// TopicMessageTypes maps each master of a route to the topic's
// message.type there ("" where the broker does not answer or lacks the
// topic).
func (a *Admin) TopicMessageTypes(topic string, rd *wire.TopicRouteData) map[string]string {
	out := map[string]string{}
	for name, tc := range a.TopicConfigs(topic, rd) {
		out[name] = ""
		if tc != nil {
			out[name] = tc.MessageType()
		}
	}
	return out
}

// TopicConfigs maps each master of a route to the topic's config there
// (nil where the broker does not answer or lacks the topic).
func (a *Admin) TopicConfigs(topic string, rd *wire.TopicRouteData) map[string]*wire.TopicConfig {
	out := map[string]*wire.TopicConfig{}
	for _, b := range routeMasters(rd) {
		out[b.Name] = nil
		if w, err := a.BrokerTopicConfigs(b.Addr); err == nil {
			out[b.Name] = w.TopicConfigTable[topic]
		}
	}
	return out
}

// ProduceQuotas maps each master of a route to the topic's produce quota
// there ("200 msg/s", "" for none or unknown), and sums them: quotas are
// per broker, so a cluster accepts the sum over the masters with write
// queues.
func ProduceQuotas(configs map[string]*wire.TopicConfig) (per map[string]string, total string) {
	per = map[string]string{}
	var tps, bps int64
	limitedT, limitedB, writers := 0, 0, 0
	for name, tc := range configs {
		per[name] = ""
		if tc == nil || tc.WriteQueueNums == 0 {
			continue
		}
		writers++
		t, b := tc.ProduceQuota()
		per[name] = wire.FormatProduceQuota(t, b)
		if t > 0 {
			tps, limitedT = tps+t, limitedT+1
		}
		if b > 0 {
			bps, limitedB = bps+b, limitedB+1
		}
	}
	// A master without a limit makes the cluster's unlimited.
	if limitedT < writers {
		tps = 0
	}
	if limitedB < writers {
		bps = 0
	}
	return per, wire.FormatProduceQuota(tps, bps)
}
