package wire

import "sort"

// Bodies of the admin requests mqadmin sends to brokers (Java's apache/rocketmq
// broker/src/main/java/org/apache/rocketmq/broker/processor/AdminBrokerProcessor.java).
// Types holding Map<MessageQueue,X> encode with Encode and decode with
// their Decode function; see fastjson.go.

// TopicOffset is one queue's range in GET_TOPIC_STATS_INFO.
type TopicOffset struct {
	LastUpdateTimestamp int64 `json:"lastUpdateTimestamp"`
	MaxOffset           int64 `json:"maxOffset"`
	MinOffset           int64 `json:"minOffset"`
}

// TopicStatsTable answers GET_TOPIC_STATS_INFO (202).
type TopicStatsTable struct {
	OffsetTable map[MessageQueue]TopicOffset
}

// Encode writes the fastjson form Java tools read.
func (t *TopicStatsTable) Encode() []byte {
	b := []byte(`{"offsetTable":`)
	b = appendMQMap(b, t.OffsetTable)
	return append(b, '}')
}

// DecodeTopicStatsTable reads a TopicStatsTable in either form.
func DecodeTopicStatsTable(b []byte) (*TopicStatsTable, error) {
	var raw struct {
		OffsetTable map[string]TopicOffset `json:"offsetTable"`
	}
	if err := UnmarshalLenient(b, &raw); err != nil {
		return nil, err
	}
	m, err := decodeMQMap(raw.OffsetTable)
	return &TopicStatsTable{OffsetTable: m}, err
}

// OffsetWrapper is one queue's progress in GET_CONSUME_STATS.
type OffsetWrapper struct {
	BrokerOffset   int64 `json:"brokerOffset"`
	ConsumerOffset int64 `json:"consumerOffset"`
	LastTimestamp  int64 `json:"lastTimestamp"`
}

// ConsumeStats answers GET_CONSUME_STATS (208).
type ConsumeStats struct {
	ConsumeTps  float64
	OffsetTable map[MessageQueue]OffsetWrapper
}

// Encode writes the fastjson form Java tools read.
func (c *ConsumeStats) Encode() []byte { return c.appendTo(nil) }

func (c *ConsumeStats) appendTo(b []byte) []byte {
	b = append(b, `{"consumeTps":`...)
	b = append(b, Marshal(c.ConsumeTps)...)
	b = append(b, `,"offsetTable":`...)
	b = appendMQMap(b, c.OffsetTable)
	return append(b, '}')
}

type consumeStatsRaw struct {
	ConsumeTps  float64                  `json:"consumeTps"`
	OffsetTable map[string]OffsetWrapper `json:"offsetTable"`
}

func (r *consumeStatsRaw) typed() (*ConsumeStats, error) {
	m, err := decodeMQMap(r.OffsetTable)
	return &ConsumeStats{ConsumeTps: r.ConsumeTps, OffsetTable: m}, err
}

// DecodeConsumeStats reads a ConsumeStats in either form.
func DecodeConsumeStats(b []byte) (*ConsumeStats, error) {
	var raw consumeStatsRaw
	if err := UnmarshalLenient(b, &raw); err != nil {
		return nil, err
	}
	return raw.typed()
}

// ConsumeStatsList answers GET_BROKER_CONSUME_STATS (317): every group's
// ConsumeStats on one broker.
type ConsumeStatsList struct {
	BrokerAddr string
	// Groups maps a group to its stats, one entry per topic it consumes.
	Groups    map[string][]*ConsumeStats
	TotalDiff int64
}

// Encode writes {"brokerAddr":…,"consumeStatsList":[{group:[…]},…],"totalDiff":…}.
func (l *ConsumeStatsList) Encode() []byte {
	b := []byte(`{"brokerAddr":`)
	b = AppendJSONString(b, l.BrokerAddr)
	b = append(b, `,"consumeStatsList":[`...)
	groups := make([]string, 0, len(l.Groups))
	for g := range l.Groups {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for i, g := range groups {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = AppendJSONString(b, g)
		b = append(b, ":["...)
		for j, cs := range l.Groups[g] {
			if j > 0 {
				b = append(b, ',')
			}
			b = cs.appendTo(b)
		}
		b = append(b, "]}"...)
	}
	b = append(b, `],"totalDiff":`...)
	b = append(b, Marshal(l.TotalDiff)...)
	return append(b, '}')
}

// DecodeConsumeStatsList reads a ConsumeStatsList in either form.
func DecodeConsumeStatsList(b []byte) (*ConsumeStatsList, error) {
	var raw struct {
		BrokerAddr       string                         `json:"brokerAddr"`
		ConsumeStatsList []map[string][]consumeStatsRaw `json:"consumeStatsList"`
		TotalDiff        int64                          `json:"totalDiff"`
	}
	if err := UnmarshalLenient(b, &raw); err != nil {
		return nil, err
	}
	out := &ConsumeStatsList{BrokerAddr: raw.BrokerAddr, TotalDiff: raw.TotalDiff, Groups: map[string][]*ConsumeStats{}}
	for _, m := range raw.ConsumeStatsList {
		for g, list := range m {
			for i := range list {
				cs, err := list[i].typed()
				if err != nil {
					return nil, err
				}
				out.Groups[g] = append(out.Groups[g], cs)
			}
		}
	}
	return out, nil
}

// ResetOffsetBody carries offsets to reset to (220 to clients, 222 answers).
type ResetOffsetBody struct {
	OffsetTable map[MessageQueue]int64
}

// Encode writes the fastjson form; the Go client's parser needs it compact.
func (r *ResetOffsetBody) Encode() []byte {
	b := []byte(`{"offsetTable":`)
	b = appendMQMap(b, r.OffsetTable)
	return append(b, '}')
}

// DecodeResetOffsetBody reads a ResetOffsetBody in either form.
func DecodeResetOffsetBody(b []byte) (*ResetOffsetBody, error) {
	var raw struct {
		OffsetTable map[string]int64 `json:"offsetTable"`
	}
	if err := UnmarshalLenient(b, &raw); err != nil {
		return nil, err
	}
	m, err := decodeMQMap(raw.OffsetTable)
	return &ResetOffsetBody{OffsetTable: m}, err
}

// ConsumerConnection answers GET_CONSUMER_CONNECTION_LIST (203).
type ConsumerConnection struct {
	ConnectionSet     []Connection                `json:"connectionSet"`
	ConsumeFromWhere  string                      `json:"consumeFromWhere"`
	ConsumeType       string                      `json:"consumeType"`
	MessageModel      string                      `json:"messageModel"`
	SubscriptionTable map[string]SubscriptionData `json:"subscriptionTable"`
}

// ProducerConnection answers GET_PRODUCER_CONNECTION_LIST (204).
type ProducerConnection struct {
	ConnectionSet []Connection `json:"connectionSet"`
}

// BrokerStatsItem is one window of a statistic (VIEW_BROKER_STATS_DATA).
type BrokerStatsItem struct {
	Avgpt float64 `json:"avgpt"`
	Sum   int64   `json:"sum"`
	Tps   float64 `json:"tps"`
}

// BrokerStatsData answers VIEW_BROKER_STATS_DATA (315).
type BrokerStatsData struct {
	StatsDay    BrokerStatsItem `json:"statsDay"`
	StatsHour   BrokerStatsItem `json:"statsHour"`
	StatsMinute BrokerStatsItem `json:"statsMinute"`
}

// StatsToday answers MQOPS_STATS_TODAY (10001): messages produced per topic
// and consumed per topic@group since local midnight, up to At (ms).
// Request extFields: `at` (ms, optional; default now).
type StatsToday struct {
	DayStart int64            `json:"dayStart"`
	At       int64            `json:"at"`
	Topics   map[string]int64 `json:"topics"`
	Groups   map[string]int64 `json:"groups"`
}

// StatsPoint is one step of a StatsSeries.
type StatsPoint struct {
	Time  int64 `json:"time"`
	Value int64 `json:"value"`
}

// StatsSeries answers MQOPS_STATS_SERIES (10002): increments per step.
// Request extFields: `kind` ("put" for a topic, "get" for topic@group),
// `key`, `step` ("1m", "1h" or "1d"), `from` and `to` (ms).
type StatsSeries struct {
	Kind   string       `json:"kind"`
	Key    string       `json:"key"`
	Step   string       `json:"step"`
	Points []StatsPoint `json:"points"`
}

// PopGroupStats is one consumer group's POP leases on a broker.
type PopGroupStats struct {
	// Inflight counts deliveries handed out and neither acknowledged nor
	// expired yet (on every topic of the group, retry topic included).
	Inflight int64 `json:"inflight"`
	// Expired counts leases that ran out since the broker started: the
	// message was redelivered (or sent to the dead-letter topic).
	Expired int64 `json:"expired"`
}

// PopStats answers MQOPS_POP_STATS (10003): every group with POP leases
// now or expired leases since the broker started. A broker without the
// gRPC service answers an empty table.
type PopStats struct {
	Groups map[string]PopGroupStats `json:"groups"`
}
