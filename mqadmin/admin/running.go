package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mqops/mqops/wire"
)

// callbackWait is how long a broker waits for a client to answer a request
// it relays (GET_CONSUMER_RUNNING_INFO, CONSUME_MESSAGE_DIRECTLY); admin
// calls of that kind wait this much longer than others.
const callbackWait = 10 * time.Second

// ConsumerRunningInfo is one consumer client's own account of its state
// (GET_CONSUMER_RUNNING_INFO, 307): its settings, subscriptions, consume
// rates per topic and the process queue of every queue it holds.
type ConsumerRunningInfo struct {
	ClientID string `json:"clientId"`
	// Properties are the client's PROP_* keys (and, from Java clients, the
	// consumer's settings).
	Properties    map[string]string        `json:"properties"`
	Subscriptions []wire.SubscriptionData  `json:"subscriptions"`
	StatusTable   map[string]ConsumeStatus `json:"statusTable"`
	Queues        []ProcessQueue           `json:"queues"`
	// JStack is the client's thread (goroutine) dump, when asked for.
	JStack string `json:"jstack,omitempty"`
}

// ConsumeStatus is a client's pull and consume figures for one topic.
type ConsumeStatus struct {
	PullRT           float64 `json:"pullRT"`
	PullTPS          float64 `json:"pullTPS"`
	ConsumeRT        float64 `json:"consumeRT"`
	ConsumeOKTPS     float64 `json:"consumeOKTPS"`
	ConsumeFailedTPS float64 `json:"consumeFailedTPS"`
	// ConsumeFailedMsgs counts failures over the last hour.
	ConsumeFailedMsgs int64 `json:"consumeFailedMsgs"`
}

// ProcessQueue is a client's local state of one queue it holds.
type ProcessQueue struct {
	Topic      string `json:"topic"`
	BrokerName string `json:"brokerName"`
	QueueID    int    `json:"queueId"`
	// CommitOffset is the client's consume offset (committed or about to be).
	CommitOffset            int64 `json:"commitOffset"`
	CachedMsgMinOffset      int64 `json:"cachedMsgMinOffset"`
	CachedMsgMaxOffset      int64 `json:"cachedMsgMaxOffset"`
	CachedMsgCount          int64 `json:"cachedMsgCount"`
	CachedMsgSizeInMiB      int64 `json:"cachedMsgSizeInMiB"`
	TransactionMsgMinOffset int64 `json:"transactionMsgMinOffset"`
	TransactionMsgMaxOffset int64 `json:"transactionMsgMaxOffset"`
	TransactionMsgCount     int64 `json:"transactionMsgCount"`
	Locked                  bool  `json:"locked"`
	TryUnlockTimes          int64 `json:"tryUnlockTimes"`
	LastLockTimestamp       int64 `json:"lastLockTimestamp"`
	Dropped                 bool  `json:"dropped"`
	LastPullTimestamp       int64 `json:"lastPullTimestamp"`
	LastConsumeTimestamp    int64 `json:"lastConsumeTimestamp"`
}

// Well-known running-info properties.
const (
	PropClientVersion  = "PROP_CLIENT_VERSION"
	PropConsumeType    = "PROP_CONSUME_TYPE"
	PropConsumeOrderly = "PROP_CONSUMEORDERLY"
	PropThreadPoolCore = "PROP_THREADPOOL_CORE_SIZE"
	PropConsumerStart  = "PROP_CONSUMER_START_TIMESTAMP"
	PropNamesrvAddr    = "PROP_NAMESERVER_ADDR"
)

const (
	jstackKey            = `"jstack":"`
	runningInfoBadPrefix = "decode running info"
)

// ParseConsumerRunningInfo reads a running-info body as Java (fastjson:
// message queues as object keys) and Go clients (the same, plus a goroutine
// dump pasted into "jstack" without JSON escaping: apache/rocketmq-client-go
// v2.1.2 internal/model.go ConsumerRunningInfo.Encode) write it.
func ParseConsumerRunningInfo(body []byte) (*ConsumerRunningInfo, error) {
	var raw struct {
		Properties      map[string]json.RawMessage `json:"properties"`
		SubscriptionSet []wire.SubscriptionData    `json:"subscriptionSet"`
		StatusTable     map[string]ConsumeStatus   `json:"statusTable"`
		MQTable         map[string]json.RawMessage `json:"mqTable"`
		JStack          string                     `json:"jstack"`
	}
	err := wire.UnmarshalLenient(body, &raw)
	if err != nil {
		// The Go client ends its body with , "jstack":"<raw dump>" }: cut
		// the dump off and read the rest.
		i := bytes.Index(body, []byte(jstackKey))
		j := bytes.LastIndexByte(body, '"')
		if i < 0 || j < i+len(jstackKey) {
			return nil, fmt.Errorf("%s: %w", runningInfoBadPrefix, err)
		}
		rest := append(bytes.TrimRight(bytes.TrimSpace(body[:i]), ","), '}')
		if err2 := wire.UnmarshalLenient(rest, &raw); err2 != nil {
			return nil, fmt.Errorf("%s: %w", runningInfoBadPrefix, err)
		}
		raw.JStack = string(body[i+len(jstackKey) : j])
	}
	info := &ConsumerRunningInfo{
		Properties: map[string]string{}, Subscriptions: raw.SubscriptionSet, StatusTable: raw.StatusTable,
		Queues: []ProcessQueue{}, JStack: raw.JStack,
	}
	if info.Subscriptions == nil {
		info.Subscriptions = []wire.SubscriptionData{}
	}
	if info.StatusTable == nil {
		info.StatusTable = map[string]ConsumeStatus{}
	}
	for k, v := range raw.Properties {
		var s string
		if json.Unmarshal(v, &s) != nil {
			s = string(v) // a number or boolean
		}
		info.Properties[k] = s
	}
	for k, v := range raw.MQTable {
		var mq wire.MessageQueue
		if err := json.Unmarshal([]byte(k), &mq); err != nil {
			return nil, fmt.Errorf("%s: message queue key %q: %w", runningInfoBadPrefix, k, err)
		}
		var pq struct {
			ProcessQueue
			Droped bool `json:"droped"` // Java's spelling
		}
		if err := json.Unmarshal(v, &pq); err != nil {
			return nil, fmt.Errorf("%s: process queue of %s: %w", runningInfoBadPrefix, k, err)
		}
		q := pq.ProcessQueue
		q.Topic, q.BrokerName, q.QueueID = mq.Topic, mq.BrokerName, mq.QueueID
		q.Dropped = q.Dropped || pq.Droped
		info.Queues = append(info.Queues, q)
	}
	sort.Slice(info.Subscriptions, func(i, j int) bool { return info.Subscriptions[i].Topic < info.Subscriptions[j].Topic })
	sort.Slice(info.Queues, func(i, j int) bool {
		a, b := info.Queues[i], info.Queues[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.BrokerName != b.BrokerName {
			return a.BrokerName < b.BrokerName
		}
		return a.QueueID < b.QueueID
	})
	return info, nil
}

// RunningInfo asks one client of a group for its running info through a
// broker (an address, or "" for the brokers serving the group, tried in
// turn until one has the client connected). The broker relays the request
// and passes the client's answer back (GET_CONSUMER_RUNNING_INFO, 307).
func (a *Admin) RunningInfo(broker, group, clientID string, jstack bool) (*ConsumerRunningInfo, error) {
	addrs, err := a.relayBrokers(broker, group)
	if err != nil {
		return nil, err
	}
	f := map[string]string{"consumerGroup": group, "clientId": clientID, "jstackEnable": fmt.Sprint(jstack)}
	var lastErr error
	for _, addr := range addrs {
		resp, err := a.callTimeout(addr, wire.GetConsumerRunningInfo, f, nil, a.timeout+callbackWait)
		// v2.1.2 answers SUCCESS with no body when its JSON encoding fails
		// (internal/client.go; e.g. a NaN rate in its status table): the
		// figures move, so ask again a few times before giving up.
		for try := 0; err == nil && len(resp.Body) == 0 && try < 3; try++ {
			time.Sleep(200 * time.Millisecond)
			resp, err = a.callTimeout(addr, wire.GetConsumerRunningInfo, f, nil, a.timeout+callbackWait)
		}
		if err == nil && len(resp.Body) == 0 {
			return nil, fmt.Errorf("running info of client %s of group %s: the client answered without a body (remark %q)", clientID, group, resp.Remark)
		}
		if err != nil {
			lastErr = fmt.Errorf("running info of client %s of group %s on %s: %w", clientID, group, addr, err)
			if notOnline(err) {
				continue // maybe connected to another broker
			}
			return nil, lastErr
		}
		info, err := ParseConsumerRunningInfo(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("running info of client %s of group %s: %w", clientID, group, err)
		}
		info.ClientID = clientID
		return info, nil
	}
	return nil, lastErr
}

// GroupRunningInfo asks every online remoting client of a group for its
// running info (GET_CONSUMER_CONNECTION_LIST, then 307 per client), by
// client id. RocketMQ 5 (gRPC) clients are left out: the broker cannot
// relay 307 to them.
func (a *Admin) GroupRunningInfo(broker, group string, jstack bool) ([]*ConsumerRunningInfo, error) {
	cc, err := a.ConsumerConnection(group)
	if err != nil {
		return nil, err
	}
	var conns []Connection
	for _, c := range cc.Connections {
		if c.Protocol != "grpc" {
			conns = append(conns, c)
		}
	}
	out := make([]*ConsumerRunningInfo, len(conns))
	err = FanOut(len(out), a.parallel, func(i int) (err error) {
		out[i], err = a.RunningInfo(broker, group, conns[i].ClientID, jstack)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// relayBrokers returns the broker given, or the masters serving a group.
func (a *Admin) relayBrokers(broker, group string) ([]string, error) {
	var bs []Broker
	var err error
	if broker != "" {
		bs, err = a.Brokers(Target{Broker: broker})
	} else {
		bs, err = a.groupBrokers(group)
	}
	if err != nil {
		return nil, err
	}
	addrs := make([]string, len(bs))
	for i, b := range bs {
		addrs[i] = b.Addr
	}
	return addrs, nil
}

// notOnline reports a broker's "The Consumer <g> <c> not online" answer.
func notOnline(err error) bool {
	var re *ResponseError
	return errors.As(err, &re) && (re.Code == wire.ConsumerNotOnline || strings.Contains(re.Remark, "not online"))
}

// RunningInfoAnalysis is what Java's consumerStatus checks across the
// clients of a group.
type RunningInfoAnalysis struct {
	// SubscriptionsConsistent is false when clients subscribe differently
	// (a frequent cause of messages never being consumed).
	SubscriptionsConsistent bool `json:"subscriptionsConsistent"`
	// SharedQueues are queues held by more than one client at once.
	SharedQueues []string `json:"sharedQueues"`
}

// AnalyzeRunningInfo compares the clients' subscriptions and queue sets.
func AnalyzeRunningInfo(infos []*ConsumerRunningInfo) RunningInfoAnalysis {
	out := RunningInfoAnalysis{SubscriptionsConsistent: true, SharedQueues: []string{}}
	subKey := func(info *ConsumerRunningInfo) string {
		var parts []string
		for _, s := range info.Subscriptions {
			parts = append(parts, s.Topic+"\x00"+s.ExpressionType+"\x00"+s.SubString)
		}
		return strings.Join(parts, "\x01")
	}
	holders := map[string]int{}
	for i, info := range infos {
		if i > 0 && subKey(info) != subKey(infos[0]) {
			out.SubscriptionsConsistent = false
		}
		for _, q := range info.Queues {
			if !q.Dropped {
				holders[fmt.Sprintf("%s@%s:%d", q.Topic, q.BrokerName, q.QueueID)]++
			}
		}
	}
	for _, k := range sortedKeys(holders) {
		if holders[k] > 1 {
			out.SharedQueues = append(out.SharedQueues, k)
		}
	}
	return out
}

// Consume results by ordinal, as Java's CMResult names them.
var consumeResults = []string{"CR_SUCCESS", "CR_LATER", "CR_ROLLBACK", "CR_COMMIT", "CR_THROW_EXCEPTION", "CR_RETURN_NULL"}

// ConsumeSuccess is the consume result of a message the listener accepted.
const ConsumeSuccess = "CR_SUCCESS"

// DirectResult is a client's answer to CONSUME_MESSAGE_DIRECTLY: what its
// listener returned for the message and how long it took.
type DirectResult struct {
	MsgID       string `json:"msgId"`
	OffsetMsgID string `json:"offsetMsgId"`
	Topic       string `json:"topic"`
	BrokerName  string `json:"brokerName,omitempty"`
	Group       string `json:"group"`
	// ClientID is the client asked, empty when the broker picked one.
	ClientID      string `json:"clientId,omitempty"`
	Order         bool   `json:"order"`
	AutoCommit    bool   `json:"autoCommit"`
	ConsumeResult string `json:"consumeResult"`
	Remark        string `json:"remark,omitempty"`
	SpentTimeMs   int64  `json:"spentTimeMills"`
}

// ParseDirectResult reads a ConsumeMessageDirectlyResult body; consumeResult
// is an ordinal from Go clients and a name from Java ones.
func ParseDirectResult(body []byte) (*DirectResult, error) {
	var raw struct {
		Order          bool            `json:"order"`
		AutoCommit     bool            `json:"autoCommit"`
		ConsumeResult  json.RawMessage `json:"consumeResult"`
		Remark         *string         `json:"remark"`
		SpentTimeMills int64           `json:"spentTimeMills"`
	}
	if err := wire.UnmarshalLenient(body, &raw); err != nil {
		return nil, fmt.Errorf("decode consume result: %w", err)
	}
	r := &DirectResult{Order: raw.Order, AutoCommit: raw.AutoCommit, SpentTimeMs: raw.SpentTimeMills}
	if raw.Remark != nil {
		r.Remark = *raw.Remark
	}
	var n int
	var s string
	switch {
	case json.Unmarshal(raw.ConsumeResult, &n) == nil:
		if n >= 0 && n < len(consumeResults) {
			r.ConsumeResult = consumeResults[n]
		} else {
			r.ConsumeResult = fmt.Sprint(n)
		}
	case json.Unmarshal(raw.ConsumeResult, &s) == nil:
		r.ConsumeResult = s
	default:
		return nil, fmt.Errorf("decode consume result: consumeResult %s", raw.ConsumeResult)
	}
	return r, nil
}

// ConsumeDirectly has a consumer of group run its listener on a stored
// message (CONSUME_MESSAGE_DIRECTLY, 309), sent to the broker that stores
// it, which reads the record and relays it to clientID or, when that is
// empty, to any live client of the group. A listener that rejects the
// message is not an error here: see DirectResult.ConsumeResult.
func (a *Admin) ConsumeDirectly(group, clientID string, m *Message) (*DirectResult, error) {
	addr, _, ok := offsetIDAddr(m.OffsetMsgID)
	if !ok {
		return nil, fmt.Errorf("message %s has no usable store host", m.MsgID)
	}
	f := map[string]string{"consumerGroup": group, "msgId": m.OffsetMsgID}
	if clientID != "" {
		f["clientId"] = clientID
	}
	if m.BrokerName != "" {
		f["brokerName"] = m.BrokerName
	}
	who := "group " + group
	if clientID != "" {
		who = "client " + clientID + " of group " + group
	}
	resp, err := a.callTimeout(addr, wire.ConsumeMessageDirectly, f, nil, a.timeout+callbackWait)
	if err != nil {
		return nil, fmt.Errorf("consume message %s directly by %s on %s: %w", m.OffsetMsgID, who, addr, err)
	}
	r, err := ParseDirectResult(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("consume message %s directly by %s: %w", m.OffsetMsgID, who, err)
	}
	r.MsgID, r.OffsetMsgID, r.Topic, r.BrokerName, r.Group, r.ClientID = m.MsgID, m.OffsetMsgID, m.Topic, m.BrokerName, group, clientID
	return r, nil
}
