package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// JSON bodies shared by brokers, name servers, clients and tools. Field
// names are the property names of Java's classes under apache/rocketmq
// rocketmq-all-4.9.8 common/src/main/java/org/apache/rocketmq/common;
// encoding/json
// writes them compactly, which the Go client's hand-written parsers need.

// DataVersion versions a broker's topic table (apache/rocketmq
// rocketmq-all-4.9.8 common/src/main/java/org/apache/rocketmq/common/DataVersion.java).
type DataVersion struct {
	// StateVersion (RocketMQ 5) is the master epoch in controller mode: the
	// name server keeps the registration with the higher one when two
	// addresses claim the same id. Absent (0) from 4.x brokers.
	StateVersion int64 `json:"stateVersion,omitempty"`
	Counter      int64 `json:"counter"`
	Timestamp    int64 `json:"timestamp"`
}

// TopicConfig is a broker's definition of one topic.
type TopicConfig struct {
	Order           bool   `json:"order"`
	Perm            int    `json:"perm"`
	ReadQueueNums   int    `json:"readQueueNums"`
	TopicFilterType string `json:"topicFilterType"`
	TopicName       string `json:"topicName"`
	TopicSysFlag    int    `json:"topicSysFlag"`
	WriteQueueNums  int    `json:"writeQueueNums"`
	// Attributes are RocketMQ 5's topic attributes (TopicConfig.attributes),
	// stored without the "+" of the admin syntax; see topicattr.go.
	Attributes map[string]string `json:"attributes,omitempty"`
}

// TopicConfigSerializeWrapper is a broker's whole topic table.
type TopicConfigSerializeWrapper struct {
	DataVersion      DataVersion             `json:"dataVersion"`
	TopicConfigTable map[string]*TopicConfig `json:"topicConfigTable"`
}

// RegisterBrokerBody is the REGISTER_BROKER body of brokers since 3.0.11.
type RegisterBrokerBody struct {
	FilterServerList            []string                    `json:"filterServerList"`
	TopicConfigSerializeWrapper TopicConfigSerializeWrapper `json:"topicConfigSerializeWrapper"`
}

// QueueData is one broker's share of a topic in a route.
type QueueData struct {
	BrokerName     string `json:"brokerName"`
	Perm           int    `json:"perm"`
	ReadQueueNums  int    `json:"readQueueNums"`
	TopicSysFlag   int    `json:"topicSysFlag"`
	WriteQueueNums int    `json:"writeQueueNums"`
}

// BrokerData names a broker group and its addresses by broker id.
type BrokerData struct {
	BrokerAddrs map[int64]string `json:"brokerAddrs"`
	BrokerName  string           `json:"brokerName"`
	Cluster     string           `json:"cluster"`
}

// TopicRouteData answers GET_ROUTEINFO_BY_TOPIC. queueDatas must be an array
// and every brokerAddrs an object, or the Go client fails
// (apache/rocketmq-client-go v2.1.2 internal/route.go TopicRouteData.decode).
type TopicRouteData struct {
	BrokerDatas       []BrokerData        `json:"brokerDatas"`
	FilterServerTable map[string][]string `json:"filterServerTable"`
	OrderTopicConf    string              `json:"orderTopicConf,omitempty"`
	QueueDatas        []QueueData         `json:"queueDatas"`
}

// ClusterInfo answers GET_BROKER_CLUSTER_INFO.
type ClusterInfo struct {
	BrokerAddrTable  map[string]*BrokerData `json:"brokerAddrTable"`
	ClusterAddrTable map[string][]string    `json:"clusterAddrTable"`
}

// KVTable is a flat string map body.
type KVTable struct {
	Table map[string]string `json:"table"`
}

// TopicList is a list of topic names.
type TopicList struct {
	BrokerAddr string   `json:"brokerAddr,omitempty"`
	TopicList  []string `json:"topicList"`
}

// GroupList is a list of group names.
type GroupList struct {
	GroupList []string `json:"groupList"`
}

// MessageQueue identifies one queue of a topic on one broker.
type MessageQueue struct {
	BrokerName string `json:"brokerName"`
	QueueID    int    `json:"queueId"`
	Topic      string `json:"topic"`
}

// FlexInt decodes a JSON number or a numeric string: the Go client writes
// subscription codeSet elements as strings (apache/rocketmq-client-go v2.1.2
// consumer/consumer.go buildSubscriptionData).
type FlexInt int64

// UnmarshalJSON implements json.Unmarshaler.
func (f *FlexInt) UnmarshalJSON(b []byte) error {
	b = bytes.Trim(b, `"`)
	if len(b) == 0 || string(b) == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return err
	}
	*f = FlexInt(n)
	return nil
}

// SubscriptionData is one topic subscription of a consumer group.
type SubscriptionData struct {
	ClassFilterMode bool      `json:"classFilterMode"`
	CodeSet         []FlexInt `json:"codeSet"`
	ExpressionType  string    `json:"expressionType"`
	SubString       string    `json:"subString"`
	SubVersion      int64     `json:"subVersion"`
	TagsSet         []string  `json:"tagsSet"`
	Topic           string    `json:"topic"`
}

// ConsumerData is one consumer group in a heartbeat.
type ConsumerData struct {
	ConsumeFromWhere    string             `json:"consumeFromWhere"`
	ConsumeType         string             `json:"consumeType"`
	GroupName           string             `json:"groupName"`
	MessageModel        string             `json:"messageModel"`
	SubscriptionDataSet []SubscriptionData `json:"subscriptionDataSet"`
	UnitMode            bool               `json:"unitMode"`
}

// ProducerData is one producer group in a heartbeat.
type ProducerData struct {
	GroupName string `json:"groupName"`
}

// HeartbeatData is the HEART_BEAT body; note the key "clientID".
type HeartbeatData struct {
	ClientID        string         `json:"clientID"`
	ConsumerDataSet []ConsumerData `json:"consumerDataSet"`
	ProducerDataSet []ProducerData `json:"producerDataSet"`
}

// SubscriptionGroupConfig is a broker's definition of a consumer group.
type SubscriptionGroupConfig struct {
	BrokerID                       int64  `json:"brokerId"`
	ConsumeBroadcastEnable         bool   `json:"consumeBroadcastEnable"`
	ConsumeEnable                  bool   `json:"consumeEnable"`
	ConsumeFromMinEnable           bool   `json:"consumeFromMinEnable"`
	GroupName                      string `json:"groupName"`
	NotifyConsumerIDsChangedEnable bool   `json:"notifyConsumerIdsChangedEnable"`
	RetryMaxTimes                  int    `json:"retryMaxTimes"`
	RetryQueueNums                 int    `json:"retryQueueNums"`
	WhichBrokerWhenConsumeSlowly   int64  `json:"whichBrokerWhenConsumeSlowly"`
	// ConsumeRateLimit caps the messages per second the broker hands the
	// group (0: unlimited). mqops's own key; Java brokers ignore it.
	ConsumeRateLimit int `json:"consumeRateLimit,omitempty"`
	// ConsumeMessageOrderly and GroupRetryPolicy are RocketMQ 5's
	// (apache/rocketmq remoting/src/main/java/org/apache/rocketmq/remoting/protocol/subscription/SubscriptionGroupConfig.java):
	// 5.x consumers of an orderly group get one message per message group
	// at a time; the retry policy spaces redeliveries. A nil policy is
	// Java's default, CUSTOMIZED with the delay levels.
	ConsumeMessageOrderly bool              `json:"consumeMessageOrderly"`
	GroupRetryPolicy      *GroupRetryPolicy `json:"groupRetryPolicy,omitempty"`
}

// Retry policy types (Java GroupRetryPolicyType).
const (
	RetryPolicyCustomized  = "CUSTOMIZED"
	RetryPolicyExponential = "EXPONENTIAL"
)

// GroupRetryPolicy is Java's GroupRetryPolicy: the type says which of
// the two policies applies.
type GroupRetryPolicy struct {
	Type                   string                  `json:"type"`
	ExponentialRetryPolicy *ExponentialRetryPolicy `json:"exponentialRetryPolicy,omitempty"`
	CustomizedRetryPolicy  *CustomizedRetryPolicy  `json:"customizedRetryPolicy,omitempty"`
}

// ExponentialRetryPolicy waits initial·multiplier^n ms, at most max ms
// (Java's defaults: 5 s, 2 h, 2).
type ExponentialRetryPolicy struct {
	Initial    int64 `json:"initial"`
	Max        int64 `json:"max"`
	Multiplier int64 `json:"multiplier"`
}

// CustomizedRetryPolicy waits next[n] ms before the n-th retry.
type CustomizedRetryPolicy struct {
	Next []int64 `json:"next"`
}

// Check refuses a policy that cannot space retries.
func (p *GroupRetryPolicy) Check() error {
	switch p.Type {
	case RetryPolicyCustomized:
		if c := p.CustomizedRetryPolicy; c != nil {
			for i, n := range c.Next {
				if n < 0 {
					return fmt.Errorf("groupRetryPolicy: customizedRetryPolicy.next[%d] = %d is negative", i, n)
				}
			}
		}
	case RetryPolicyExponential:
		if e := p.ExponentialRetryPolicy; e != nil && (e.Initial <= 0 || e.Max < e.Initial || e.Multiplier < 1) {
			return fmt.Errorf("groupRetryPolicy: exponentialRetryPolicy wants 0 < initial <= max and multiplier >= 1, got %+v", *e)
		}
	default:
		return fmt.Errorf("groupRetryPolicy: type %q is neither %s nor %s", p.Type, RetryPolicyCustomized, RetryPolicyExponential)
	}
	return nil
}

// String is the policy as mqadmin shows it: "CUSTOMIZED" for Java's
// default, else the JSON Java's updateSubGroup -p takes.
func (p *GroupRetryPolicy) String() string {
	if p == nil {
		return RetryPolicyCustomized
	}
	return string(Marshal(p))
}

// NewSubscriptionGroupConfig returns Java's defaults for a group.
func NewSubscriptionGroupConfig(name string) *SubscriptionGroupConfig {
	return &SubscriptionGroupConfig{
		GroupName: name, ConsumeEnable: true, ConsumeFromMinEnable: true, ConsumeBroadcastEnable: true,
		NotifyConsumerIDsChangedEnable: true, RetryMaxTimes: 16, RetryQueueNums: 1, WhichBrokerWhenConsumeSlowly: 1,
	}
}

// UnmarshalJSON fills Java's defaults for keys a peer omits.
func (g *SubscriptionGroupConfig) UnmarshalJSON(b []byte) error {
	type plain SubscriptionGroupConfig
	p := plain(*NewSubscriptionGroupConfig(""))
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*g = SubscriptionGroupConfig(p)
	return nil
}

// SubscriptionGroupWrapper is a broker's whole group table.
type SubscriptionGroupWrapper struct {
	DataVersion            DataVersion                         `json:"dataVersion"`
	SubscriptionGroupTable map[string]*SubscriptionGroupConfig `json:"subscriptionGroupTable"`
}

// LockBatchRequestBody asks for (or releases) queue locks.
type LockBatchRequestBody struct {
	ClientID      string         `json:"clientId"`
	ConsumerGroup string         `json:"consumerGroup"`
	MqSet         []MessageQueue `json:"mqSet"`
}

// LockBatchResponseBody lists the queues the caller holds.
type LockBatchResponseBody struct {
	LockOKMQSet []MessageQueue `json:"lockOKMQSet"`
}

// ConsumerListBody answers GET_CONSUMER_LIST_BY_GROUP.
type ConsumerListBody struct {
	ConsumerIDList []string `json:"consumerIdList"`
}

// Connection describes one client connection.
type Connection struct {
	ClientAddr string `json:"clientAddr"`
	ClientID   string `json:"clientId"`
	Language   string `json:"language"`
	Version    int    `json:"version"`
	// mqops: a RocketMQ 5 (gRPC) client's own version string, e.g.
	// 5.0.1-rc1; its Version is then the broker's, as Java's proxy sets
	// for versions that name no MQVersion (ClientActivity.parseClientVersion).
	ClientVersion string `json:"clientVersion,omitempty"`
	Protocol      string `json:"protocol,omitempty"` // mqops: "grpc" for a RocketMQ 5 client
}

// Marshal encodes v compactly; bodies here never fail to encode.
func Marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("wire: marshal " + err.Error()) // only reachable through a programming error
	}
	return b
}
