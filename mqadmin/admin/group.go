package admin

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/mqops/mqops/wire"
)

// ConsumeStats returns a group's progress on one broker, for one topic or
// (topic "") every topic it consumes there (GET_CONSUME_STATS, 208).
func (a *Admin) ConsumeStats(addr, group, topic string) (*wire.ConsumeStats, error) {
	f := map[string]string{"consumerGroup": group}
	if topic != "" {
		f["topic"] = topic
	}
	resp, err := a.call(addr, wire.GetConsumeStats, f, nil)
	if err != nil {
		return nil, fmt.Errorf("consume stats of group %s on %s: %w", group, addr, err)
	}
	cs, err := wire.DecodeConsumeStats(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("decode consume stats of group %s: %w", group, err)
	}
	return cs, nil
}

// groupBrokers returns the masters that serve a consumer group: those of
// its retry topic's route (what Java tools use), or every master when the
// group has no retry topic yet.
func (a *Admin) groupBrokers(group string) ([]Broker, error) {
	rd, err := a.TopicRoute(RetryPrefix + group)
	if err == nil {
		if bs := routeMasters(rd); len(bs) > 0 {
			return bs, nil
		}
	} else if !IsCode(err, wire.TopicNotExist) {
		return nil, err
	}
	return a.Brokers(Target{})
}

// QueueProgress is a group's position in one queue.
type QueueProgress struct {
	Group          string `json:"group,omitempty"`
	Topic          string `json:"topic"`
	BrokerName     string `json:"brokerName"`
	QueueID        int    `json:"queueId"`
	BrokerOffset   int64  `json:"brokerOffset"`
	ConsumerOffset int64  `json:"consumerOffset"`
	Diff           int64  `json:"diff"`
	// LastTimestamp is the store time of the last consumed message (0: none).
	LastTimestamp int64 `json:"lastTimestamp"`
	// DelaySeconds is how long the oldest unconsumed message has waited
	// (0 when nothing is pending; only GroupProgress fills it).
	DelaySeconds int64 `json:"delaySeconds"`
}

// GroupProgress is a group's backlog on every queue it consumes.
type GroupProgress struct {
	Group      string          `json:"group"`
	ConsumeTPS float64         `json:"consumeTps"`
	DiffTotal  int64           `json:"diffTotal"`
	Queues     []QueueProgress `json:"queues"`
}

// GroupProgress collects a group's progress over every broker that serves
// it, for one topic or all. Each lagging queue costs one extra pull to
// learn the store time of its oldest unconsumed message.
func (a *Admin) GroupProgress(group, topic string) (*GroupProgress, error) {
	brokers, err := a.groupBrokers(group)
	if err != nil {
		return nil, err
	}
	stats := make([]*wire.ConsumeStats, len(brokers))
	err = FanOut(len(brokers), a.parallel, func(i int) (err error) {
		stats[i], err = a.ConsumeStats(brokers[i].Addr, group, topic)
		return err
	})
	if err != nil {
		return nil, err
	}
	gp := &GroupProgress{Group: group, Queues: []QueueProgress{}}
	now := time.Now().UnixMilli()
	// Lagging queues get one pull each to date their oldest pending message.
	type lag struct {
		q    int // in gp.Queues
		addr string
	}
	var lags []lag
	for i, cs := range stats {
		gp.ConsumeTPS += cs.ConsumeTps
		for mq, w := range cs.OffsetTable {
			qp := progressOf(mq, w)
			if qp.Diff > 0 {
				lags = append(lags, lag{len(gp.Queues), brokers[i].Addr})
			}
			gp.DiffTotal += qp.Diff
			gp.Queues = append(gp.Queues, qp)
		}
	}
	err = FanOut(len(lags), a.parallel, func(i int) error {
		qp := &gp.Queues[lags[i].q]
		m, err := a.firstMessageFrom(lags[i].addr, qp.Topic, qp.QueueID, qp.ConsumerOffset)
		if m != nil {
			qp.DelaySeconds = max(now-m.StoreTimestamp, 0) / 1000
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(gp.Queues) == 0 {
		// As Java's examineConsumeStats: an empty table is almost always a
		// misspelt group, not a group without backlog.
		on := ""
		if topic != "" {
			on = " on topic " + topic
		}
		return nil, fmt.Errorf("group %s has no consume progress%s: it has not committed any offset", group, on)
	}
	sortProgress(gp.Queues)
	return gp, nil
}

func progressOf(mq wire.MessageQueue, w wire.OffsetWrapper) QueueProgress {
	return QueueProgress{
		Topic: mq.Topic, BrokerName: mq.BrokerName, QueueID: mq.QueueID,
		BrokerOffset: w.BrokerOffset, ConsumerOffset: w.ConsumerOffset,
		Diff: max(w.BrokerOffset-w.ConsumerOffset, 0), LastTimestamp: w.LastTimestamp,
	}
}

func sortProgress(qs []QueueProgress) {
	sort.Slice(qs, func(i, j int) bool {
		a, b := qs[i], qs[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.BrokerName != b.BrokerName {
			return a.BrokerName < b.BrokerName
		}
		return a.QueueID < b.QueueID
	})
}

// ConsumerConnection describes the online members of a consumer group.
type ConsumerConnection struct {
	Connections      []Connection                     `json:"connections"`
	ConsumeType      string                           `json:"consumeType"`
	MessageModel     string                           `json:"messageModel"`
	ConsumeFromWhere string                           `json:"consumeFromWhere"`
	Subscriptions    map[string]wire.SubscriptionData `json:"subscriptions"`
}

// Connection is one client connection with its version spelled out.
type Connection struct {
	ClientID    string `json:"clientId"`
	ClientAddr  string `json:"clientAddr"`
	Language    string `json:"language"`
	Version     int    `json:"version"`
	VersionDesc string `json:"versionDesc"` // a RocketMQ 5 client's own version, e.g. 5.0.1-rc1
	// Protocol is "remoting", or "grpc" for a RocketMQ 5 client (mqops
	// brokers list those too).
	Protocol string `json:"protocol"`
}

// ConsumerConnection merges the group's connections as seen by every
// broker that serves it (GET_CONSUMER_CONNECTION_LIST, 203). An offline
// group is a ResponseError with CONSUMER_NOT_ONLINE.
func (a *Admin) ConsumerConnection(group string) (*ConsumerConnection, error) {
	brokers, err := a.groupBrokers(group)
	if err != nil {
		return nil, err
	}
	ccs := make([]*wire.ConsumerConnection, len(brokers))
	offlines := make([]error, len(brokers))
	err = FanOut(len(brokers), a.parallel, func(i int) error {
		resp, err := a.call(brokers[i].Addr, wire.GetConsumerConnectionList, map[string]string{"consumerGroup": group}, nil)
		if IsCode(err, wire.ConsumerNotOnline) {
			offlines[i] = err
			return nil
		}
		if err != nil {
			return fmt.Errorf("connections of group %s on %s: %w", group, brokers[i].Addr, err)
		}
		ccs[i] = &wire.ConsumerConnection{}
		return decode(resp, "consumer connections", ccs[i])
	})
	if err != nil {
		return nil, err
	}
	out := &ConsumerConnection{Subscriptions: map[string]wire.SubscriptionData{}}
	conns := map[string]Connection{}
	var offline error
	for i, cc := range ccs {
		if cc == nil {
			offline = offlines[i]
			continue
		}
		addConnections(conns, cc.ConnectionSet)
		out.ConsumeType, out.MessageModel, out.ConsumeFromWhere = cc.ConsumeType, cc.MessageModel, cc.ConsumeFromWhere
		for t, sd := range cc.SubscriptionTable {
			out.Subscriptions[t] = sd
		}
	}
	if len(conns) == 0 {
		if offline == nil {
			offline = &ResponseError{Code: wire.ConsumerNotOnline, Remark: "no broker serves the group"}
		}
		return nil, fmt.Errorf("connections of group %s: %w", group, offline)
	}
	out.Connections = sortedConnections(conns)
	return out, nil
}

// ProducerConnection merges a producer group's connections over every
// master of a topic's route (GET_PRODUCER_CONNECTION_LIST, 204).
func (a *Admin) ProducerConnection(group, topic string) ([]Connection, error) {
	rd, err := a.TopicRoute(topic)
	if err != nil {
		return nil, err
	}
	masters := routeMasters(rd)
	pcs := make([]*wire.ProducerConnection, len(masters))
	unknown := make([]error, len(masters))
	err = FanOut(len(masters), a.parallel, func(i int) error {
		resp, err := a.call(masters[i].Addr, wire.GetProducerConnectionList, map[string]string{"producerGroup": group}, nil)
		if err != nil {
			err = fmt.Errorf("connections of producer group %s on %s: %w", group, masters[i].Addr, err)
		}
		var re *ResponseError
		if errors.As(err, &re) {
			// A broker the group never sent to does not know it.
			unknown[i] = err
			return nil
		}
		if err != nil {
			return err
		}
		pcs[i] = &wire.ProducerConnection{}
		return decode(resp, "producer connections", pcs[i])
	})
	if err != nil {
		return nil, err
	}
	conns := map[string]Connection{}
	var lastErr error
	for i, pc := range pcs {
		if pc == nil {
			lastErr = unknown[i]
			continue
		}
		addConnections(conns, pc.ConnectionSet)
	}
	if len(conns) == 0 && lastErr != nil {
		return nil, lastErr
	}
	return sortedConnections(conns), nil
}

func addConnections(dst map[string]Connection, set []wire.Connection) {
	for _, c := range set {
		conn := Connection{ClientID: c.ClientID, ClientAddr: c.ClientAddr, Language: c.Language, Version: c.Version,
			VersionDesc: VersionDesc(c.Version), Protocol: "remoting"}
		if c.Protocol == "grpc" {
			conn.Protocol = "grpc"
			if c.ClientVersion != "" {
				conn.VersionDesc = c.ClientVersion
			}
		}
		dst[c.ClientID] = conn
	}
}

func sortedConnections(m map[string]Connection) []Connection {
	out := make([]Connection, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

// GroupSummary is one line of the all-groups progress overview.
type GroupSummary struct {
	Group string `json:"group"`
	// Count is the number of online clients; Version is the oldest client
	// version, or OFFLINE.
	Count     int     `json:"count"`
	Version   string  `json:"version"`
	Type      string  `json:"type"`
	Model     string  `json:"model"`
	TPS       float64 `json:"tps"`
	DiffTotal int64   `json:"diffTotal"`
}

// GroupSummaries summarises every group that has a retry topic, the way
// Java's consumerProgress without -g discovers groups.
func (a *Admin) GroupSummaries() ([]GroupSummary, error) {
	topics, err := a.TopicList()
	if err != nil {
		return nil, err
	}
	out := []GroupSummary{}
	for _, t := range topics {
		if len(t) <= len(RetryPrefix) || t[:len(RetryPrefix)] != RetryPrefix {
			continue
		}
		s, err := a.groupSummary(t[len(RetryPrefix):])
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (a *Admin) groupSummary(group string) (GroupSummary, error) {
	s := GroupSummary{Group: group, Version: "OFFLINE"}
	cc, err := a.ConsumerConnection(group)
	switch {
	case IsCode(err, wire.ConsumerNotOnline):
	case err != nil:
		return s, err
	default:
		s.Count = len(cc.Connections)
		minVersion := cc.Connections[0].Version
		for _, c := range cc.Connections {
			minVersion = min(minVersion, c.Version)
		}
		s.Version = VersionDesc(minVersion)
		s.Type = consumeTypeName(cc.ConsumeType)
		s.Model = cc.MessageModel
	}
	brokers, err := a.groupBrokers(group)
	if err != nil {
		return s, err
	}
	stats := make([]*wire.ConsumeStats, len(brokers))
	err = FanOut(len(brokers), a.parallel, func(i int) (err error) {
		stats[i], err = a.ConsumeStats(brokers[i].Addr, group, "")
		return err
	})
	if err != nil {
		return s, err
	}
	for _, cs := range stats {
		s.TPS += cs.ConsumeTps
		for _, w := range cs.OffsetTable {
			s.DiffTotal += max(w.BrokerOffset-w.ConsumerOffset, 0)
		}
	}
	return s, nil
}

// consumeTypeName prints Java's ConsumeType the way consumerProgress does.
func consumeTypeName(t string) string {
	switch t {
	case "CONSUME_PASSIVELY":
		return "PUSH"
	case "CONSUME_ACTIVELY":
		return "PULL"
	}
	return t
}

// BrokerConsumeStats returns every group's progress on one broker
// (GET_BROKER_CONSUME_STATS, 317); isOrder limits it to ordered topics.
func (a *Admin) BrokerConsumeStats(addr string, isOrder bool) (*wire.ConsumeStatsList, error) {
	resp, err := a.call(addr, wire.GetBrokerConsumeStats, map[string]string{"isOrder": fmt.Sprint(isOrder)}, nil)
	if err != nil {
		return nil, fmt.Errorf("broker consume stats of %s: %w", addr, err)
	}
	l, err := wire.DecodeConsumeStatsList(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("decode broker consume stats of %s: %w", addr, err)
	}
	return l, nil
}

// Backlog lists every group's progress on every queue of the brokers t
// selects, sorted by group, topic, broker and queue.
func (a *Admin) Backlog(t Target, isOrder bool) ([]QueueProgress, error) {
	brokers, err := a.Brokers(t)
	if err != nil {
		return nil, err
	}
	lists := make([]*wire.ConsumeStatsList, len(brokers))
	err = FanOut(len(brokers), a.parallel, func(i int) (err error) {
		lists[i], err = a.BrokerConsumeStats(brokers[i].Addr, isOrder)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := []QueueProgress{}
	for _, l := range lists {
		for g, list := range l.Groups {
			for _, cs := range list {
				for mq, w := range cs.OffsetTable {
					qp := progressOf(mq, w)
					qp.Group = g
					out = append(out, qp)
				}
			}
		}
	}
	sortProgress(out)
	return out, nil
}

// GroupBacklog is one group's backlog on one topic summed over queues.
type GroupBacklog struct {
	Group          string `json:"group"`
	Topic          string `json:"topic"`
	Brokers        int    `json:"brokers"`
	Queues         int    `json:"queues"`
	BrokerOffset   int64  `json:"brokerOffset"`
	ConsumerOffset int64  `json:"consumerOffset"`
	Diff           int64  `json:"diff"`
	// LastTimestamp is the newest store time among the last consumed
	// messages of its queues.
	LastTimestamp int64 `json:"lastTimestamp"`
}

// SumBacklog folds per-queue rows into one row per group and topic,
// largest backlog first.
func SumBacklog(qs []QueueProgress) []GroupBacklog {
	type key struct{ g, t string }
	idx := map[key]int{}
	brokers := map[key]map[string]bool{}
	out := []GroupBacklog{}
	for _, q := range qs {
		k := key{q.Group, q.Topic}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			brokers[k] = map[string]bool{}
			out = append(out, GroupBacklog{Group: q.Group, Topic: q.Topic})
		}
		gb := &out[i]
		brokers[k][q.BrokerName] = true
		gb.Brokers = len(brokers[k])
		gb.Queues++
		gb.BrokerOffset += q.BrokerOffset
		gb.ConsumerOffset += q.ConsumerOffset
		gb.Diff += q.Diff
		gb.LastTimestamp = max(gb.LastTimestamp, q.LastTimestamp)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Diff != out[j].Diff {
			return out[i].Diff > out[j].Diff
		}
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Topic < out[j].Topic
	})
	return out
}
