package admin

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/mqops/mqops/wire"
)

// Message is a stored message decoded from a PULL, QUERY_MESSAGE or
// VIEW_MESSAGE_BY_ID body (apache/rocketmq
// common/src/main/java/org/apache/rocketmq/common/message/MessageDecoder.java).
type Message struct {
	Topic string `json:"topic"`
	// MsgID is the client's UNIQ_KEY, or the offset id when it has none,
	// which is what producers and consumers show as the message id.
	MsgID           string            `json:"msgId"`
	OffsetMsgID     string            `json:"offsetMsgId"`
	BrokerName      string            `json:"brokerName,omitempty"`
	QueueID         int               `json:"queueId"`
	QueueOffset     int64             `json:"queueOffset"`
	CommitLogOffset int64             `json:"commitLogOffset"`
	Tags            string            `json:"tags,omitempty"`
	Keys            []string          `json:"keys,omitempty"`
	ReconsumeTimes  int               `json:"reconsumeTimes"`
	BornTimestamp   int64             `json:"bornTimestamp"`
	StoreTimestamp  int64             `json:"storeTimestamp"`
	BornHost        string            `json:"bornHost"`
	StoreHost       string            `json:"storeHost"`
	SysFlag         int               `json:"sysFlag"`
	Flag            int               `json:"flag"`
	Properties      map[string]string `json:"properties"`
	// Body is uncompressed when the record was compressed.
	Body []byte `json:"-"`
}

// DecodeMessages decodes back-to-back stored records.
func DecodeMessages(b []byte) ([]*Message, error) {
	var out []*Message
	for len(b) > 0 {
		n, err := wire.CheckRecord(b)
		if err != nil {
			return out, fmt.Errorf("decode message %d: %w", len(out)+1, err)
		}
		out = append(out, decodeMessage(wire.RecordView(b[:n])))
		b = b[n:]
	}
	return out, nil
}

func decodeMessage(v wire.RecordView) *Message {
	m := &Message{
		Topic: string(v.Topic()), QueueID: int(v.QueueID()), QueueOffset: v.QueueOffset(),
		CommitLogOffset: v.PhysicalOffset(), ReconsumeTimes: int(v.ReconsumeTimes()),
		BornTimestamp: v.BornTimestamp(), StoreTimestamp: v.StoreTimestamp(),
		BornHost: wire.HostString(v.BornHost()), StoreHost: wire.HostString(v.StoreHost()),
		SysFlag: int(v.SysFlag()), Flag: int(v.Flag()),
		Properties:  wire.ParseProperties(v.Properties()),
		OffsetMsgID: wire.OffsetMsgID(v.StoreHost(), v.PhysicalOffset()),
		Body:        bytes.Clone(v.Body()),
	}
	if v.SysFlag()&wire.SysFlagCompressed != 0 {
		// Clients compress with zlib; keep the stored bytes if that fails,
		// as the Go client does.
		if zr, err := zlib.NewReader(bytes.NewReader(m.Body)); err == nil {
			if plain, err := io.ReadAll(zr); err == nil {
				m.Body = plain
			}
		}
	}
	m.Tags = m.Properties[wire.PropTags]
	m.Keys = strings.Fields(m.Properties[wire.PropKeys])
	m.MsgID = m.Properties[wire.PropUniqKey]
	if m.MsgID == "" {
		m.MsgID = m.OffsetMsgID
	}
	return m
}

// ViewMessage reads the record at a commit-log offset (VIEW_MESSAGE_BY_ID, 33).
func (a *Admin) ViewMessage(addr string, offset int64) (*Message, error) {
	resp, err := a.call(addr, wire.ViewMessageByID, map[string]string{"offset": itoa(offset)}, nil)
	if err != nil {
		return nil, fmt.Errorf("view message at offset %d on %s: %w", offset, addr, err)
	}
	ms, err := DecodeMessages(resp.Body)
	if err != nil {
		return nil, err
	}
	if len(ms) != 1 {
		return nil, fmt.Errorf("view message at offset %d on %s: %d records in the answer", offset, addr, len(ms))
	}
	return ms[0], nil
}

// offsetIDAddr decodes an offsetMsgId into the address of the broker that
// stored it and the commit-log offset. Client ids (UNIQ_KEY) have the same
// length but a pid where the port would be, which puts the port out of
// range: ok is false for them.
func offsetIDAddr(id string) (addr string, offset int64, ok bool) {
	ip, port, off, err := wire.ParseOffsetMsgID(id)
	if err != nil || port <= 0 || port > math.MaxUint16 {
		return "", 0, false
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(port)), off, true
}

// MessageByID finds a message by offset id or, failing that and with a
// topic, by unique key (as Java 5's queryMsgById does).
func (a *Admin) MessageByID(topic, id string) ([]*Message, error) {
	if addr, off, ok := offsetIDAddr(id); ok {
		m, err := a.ViewMessage(addr, off)
		if err == nil {
			a.nameBroker(m, addr)
			return []*Message{m}, nil
		}
		if topic == "" {
			return nil, err
		}
	} else if topic == "" {
		return nil, fmt.Errorf("%s is not an offset message id; give the topic to look it up as a unique key", id)
	}
	return a.MessageByUniqueKey(topic, id)
}

// nameBroker fills BrokerName from the cluster info, best effort: the
// message is worth showing even if the name server is gone.
func (a *Admin) nameBroker(m *Message, addr string) {
	if bs, err := a.Brokers(Target{Broker: addr}); err == nil {
		m.BrokerName = bs[0].Name
	}
}

// QueryMessages searches the brokers' index for a topic's messages whose
// KEYS contain key, stored between begin and end (ms), at most max of them
// (QUERY_MESSAGE, 12). Index hits are verified: the index keeps hashes only.
func (a *Admin) QueryMessages(topic, key string, begin, end int64, max int) ([]*Message, error) {
	return a.queryIndex(topic, key, false, begin, end, max)
}

// MessageByUniqueKey finds a topic's messages by client id (UNIQ_KEY); a
// retried message is stored more than once under the same id.
func (a *Admin) MessageByUniqueKey(topic, key string) ([]*Message, error) {
	ms, err := a.queryIndex(topic, key, true, 0, math.MaxInt64, 32)
	if err == nil && len(ms) == 0 {
		err = fmt.Errorf("message %s not found in topic %s", key, topic)
	}
	return ms, err
}

func (a *Admin) queryIndex(topic, key string, unique bool, begin, end int64, max int) ([]*Message, error) {
	rd, err := a.TopicRoute(topic)
	if err != nil {
		return nil, err
	}
	f := map[string]string{
		"topic": topic, "key": key, "maxNum": itoa(max),
		"beginTimestamp": itoa(begin), "endTimestamp": itoa(end),
	}
	if unique {
		f["_UNIQUE_KEY_QUERY"] = "true"
	}
	masters := routeMasters(rd)
	found := make([][]*Message, len(masters))
	err = FanOut(len(masters), a.parallel, func(i int) error {
		b := masters[i]
		resp, err := a.call(b.Addr, wire.QueryMessage, f, nil)
		if IsCode(err, wire.QueryNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("query message %s in topic %s on %s: %w", key, topic, b.Addr, err)
		}
		ms, err := DecodeMessages(resp.Body)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.Topic != topic || m.StoreTimestamp < begin || m.StoreTimestamp > end {
				continue
			}
			if unique && m.Properties[wire.PropUniqKey] != key || !unique && !hasKey(m.Keys, key) {
				continue
			}
			m.BrokerName = b.Name
			found[i] = append(found[i], m)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []*Message
	for _, ms := range found {
		out = append(out, ms...)
	}
	sortMessages(out)
	if len(out) > max {
		out = out[:max]
	}
	return out, nil
}

func hasKey(keys []string, k string) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

func sortMessages(ms []*Message) {
	sort.SliceStable(ms, func(i, j int) bool {
		if ms[i].StoreTimestamp != ms[j].StoreTimestamp {
			return ms[i].StoreTimestamp < ms[j].StoreTimestamp
		}
		if ms[i].BrokerName != ms[j].BrokerName {
			return ms[i].BrokerName < ms[j].BrokerName
		}
		if ms[i].QueueID != ms[j].QueueID {
			return ms[i].QueueID < ms[j].QueueID
		}
		return ms[i].QueueOffset < ms[j].QueueOffset
	})
}

// ToolsGroup is the built-in group every broker creates for admin tools;
// pulls made with it leave no trace in real groups' offsets.
const ToolsGroup = "TOOLS_CONSUMER"

// pullResult is one PULL_MESSAGE answer.
type pullResult struct {
	code            int32
	nextBeginOffset int64
	minOffset       int64
	maxOffset       int64
	msgs            []*Message
}

// pull reads up to n messages of one queue from offset, filtered by a tag
// expression ("*" for all). It neither commits an offset nor waits for new
// messages: sysFlag carries only the subscription bit (apache/rocketmq
// common/src/main/java/org/apache/rocketmq/common/sysflag/PullSysFlag.java).
func (a *Admin) pull(addr, topic string, queueID int, offset int64, n int, sub string) (*pullResult, error) {
	f := map[string]string{
		"consumerGroup": ToolsGroup, "topic": topic, "queueId": itoa(queueID), "queueOffset": itoa(offset),
		"maxMsgNums": itoa(n), "sysFlag": "4", "commitOffset": "0", "suspendTimeoutMillis": "0",
		"subscription": sub, "subVersion": "0", "expressionType": "TAG",
	}
	resp, err := a.call(addr, wire.PullMessage, f, nil)
	var re *ResponseError
	if err != nil && !errors.As(err, &re) {
		return nil, fmt.Errorf("pull %s queue %d offset %d from %s: %w", topic, queueID, offset, addr, err)
	}
	r := &pullResult{code: resp.Code}
	switch resp.Code {
	case wire.Success:
		if r.msgs, err = DecodeMessages(resp.Body); err != nil {
			return nil, err
		}
	case wire.PullNotFound, wire.PullRetryImmediately, wire.PullOffsetMoved:
	default:
		return nil, fmt.Errorf("pull %s queue %d offset %d from %s: %w", topic, queueID, offset, addr, err)
	}
	r.nextBeginOffset, _ = resp.GetInt("nextBeginOffset")
	r.minOffset, _ = resp.GetInt("minOffset")
	r.maxOffset, _ = resp.GetInt("maxOffset")
	return r, nil
}

// firstMessageFrom returns the first message at or after offset in a
// queue, nil if there is none.
func (a *Admin) firstMessageFrom(addr, topic string, queueID int, offset int64) (*Message, error) {
	// A moved offset (older messages deleted) is retried once from where
	// the broker says the queue now starts.
	for range 2 {
		r, err := a.pull(addr, topic, queueID, offset, 1, "*")
		if err != nil {
			return nil, err
		}
		if len(r.msgs) > 0 {
			return r.msgs[0], nil
		}
		if r.code != wire.PullOffsetMoved || r.nextBeginOffset == offset {
			return nil, nil
		}
		offset = r.nextBeginOffset
	}
	return nil, nil
}

// MessageAt reads the message at a queue offset of a broker group's master.
func (a *Admin) MessageAt(topic, brokerName string, queueID int, offset int64) (*Message, error) {
	rd, err := a.TopicRoute(topic)
	if err != nil {
		return nil, err
	}
	for _, b := range routeMasters(rd) {
		if b.Name != brokerName {
			continue
		}
		r, err := a.pull(b.Addr, topic, queueID, offset, 1, "*")
		if err != nil {
			return nil, err
		}
		if len(r.msgs) == 0 || r.msgs[0].QueueOffset != offset {
			return nil, fmt.Errorf("no message at offset %d of %s queue %d on %s (queue holds %d..%d)",
				offset, topic, queueID, brokerName, r.minOffset, r.maxOffset-1)
		}
		r.msgs[0].BrokerName = brokerName
		return r.msgs[0], nil
	}
	return nil, fmt.Errorf("topic %s has no master on broker %s", topic, brokerName)
}

// ScanProgress reports a scan's position: queues done out of all.
type ScanProgress func(done, total int)

// ScanByTag reads a topic's messages stored between begin and end (ms)
// whose tag matches expr ("TagA || TagB", or "*" for every message, tagged
// or not), at most max of them. Tags are not indexed, so every queue is
// scanned from the offset of begin to that of end: the broker filters by
// tag hash, this side by the tag itself (hashes collide). Pulls use the
// built-in TOOLS_CONSUMER group.
func (a *Admin) ScanByTag(topic, expr string, begin, end int64, max int, progress ScanProgress) ([]*Message, error) {
	if max < 1 {
		return nil, fmt.Errorf("the result limit must be at least 1, got %d", max)
	}
	tags := map[string]bool{}
	for _, t := range strings.Split(expr, "||") {
		if t = strings.TrimSpace(t); t != "" {
			tags[t] = true
		}
	}
	if len(tags) == 0 {
		return nil, fmt.Errorf("empty tag expression %q", expr)
	}
	all := tags["*"]
	rd, err := a.TopicRoute(topic)
	if err != nil {
		return nil, err
	}
	type queue struct {
		b  Broker
		id int
	}
	var queues []queue
	for _, b := range routeMasters(rd) {
		if qd, ok := queueData(rd, b.Name); ok {
			for id := 0; id < qd.ReadQueueNums; id++ {
				queues = append(queues, queue{b, id})
			}
		}
	}
	var out []*Message
	for i, q := range queues {
		if progress != nil {
			progress(i, len(queues))
		}
		from, err := a.SearchOffset(q.b.Addr, topic, q.id, begin)
		if err != nil {
			return nil, err
		}
		// Stop at the offset nearest end (one past it, since the search
		// answers the nearest message), so a scan that matches nothing still
		// ends at the time range instead of the queue's end.
		to, err := a.SearchOffset(q.b.Addr, topic, q.id, end)
		if err != nil {
			return nil, err
		}
		to++
		for off := from; off < to && len(out) < max; {
			r, err := a.pull(q.b.Addr, topic, q.id, off, 32, expr)
			if err != nil {
				return nil, err
			}
			if r.nextBeginOffset <= off {
				break // nothing more this queue can give
			}
			past := false
			for _, m := range r.msgs {
				if m.StoreTimestamp > end {
					past = true // store times only grow within a queue
					break
				}
				if m.StoreTimestamp >= begin && (all || tags[m.Tags]) && len(out) < max {
					m.BrokerName = q.b.Name
					out = append(out, m)
				}
			}
			if past {
				break
			}
			off = r.nextBeginOffset
		}
	}
	if progress != nil {
		progress(len(queues), len(queues))
	}
	sortMessages(out)
	return out, nil
}

// Track says whether one consumer group has consumed a message.
type Track struct {
	Group string `json:"group"`
	// Type is Java's TrackType: CONSUMED, CONSUMED_BUT_FILTERED,
	// NOT_CONSUME_YET, CONSUME_BROADCASTING or UNKNOWN.
	Type   string `json:"trackType"`
	Online bool   `json:"online"`
	Detail string `json:"detail,omitempty"`
}

// MessageTracks tells, for every group that consumes the message's topic
// on its broker (QUERY_TOPIC_CONSUME_BY_WHO), whether the group's committed
// offset on the message's queue is past it (GET_CONSUME_STATS).
func (a *Admin) MessageTracks(m *Message) ([]Track, error) {
	addr, _, ok := offsetIDAddr(m.OffsetMsgID)
	if !ok {
		return nil, fmt.Errorf("message %s has no usable store host", m.MsgID)
	}
	groups, err := a.TopicConsumers(addr, m.Topic)
	if err != nil {
		return nil, err
	}
	out := []Track{}
	for _, g := range groups {
		out = append(out, a.track(addr, g, m))
	}
	return out, nil
}

func (a *Admin) track(addr, group string, m *Message) Track {
	t := Track{Group: group}
	cc, err := a.ConsumerConnection(group)
	switch {
	case IsCode(err, wire.ConsumerNotOnline):
	case err != nil:
		return Track{Group: group, Type: "UNKNOWN", Detail: err.Error()}
	default:
		t.Online = true
		if cc.MessageModel == "BROADCASTING" {
			// Broadcast consumers keep offsets locally: the broker cannot tell.
			t.Type = "CONSUME_BROADCASTING"
			return t
		}
	}
	cs, err := a.ConsumeStats(addr, group, m.Topic)
	if err != nil {
		t.Type, t.Detail = "UNKNOWN", err.Error()
		return t
	}
	for mq, w := range cs.OffsetTable {
		if mq.Topic != m.Topic || mq.QueueID != m.QueueID || (m.BrokerName != "" && mq.BrokerName != m.BrokerName) {
			continue
		}
		if w.ConsumerOffset <= m.QueueOffset {
			t.Type = "NOT_CONSUME_YET"
			return t
		}
		t.Type = "CONSUMED"
		if cc != nil && !subscribes(cc.Subscriptions[m.Topic], m.Tags) {
			t.Type = "CONSUMED_BUT_FILTERED"
		}
		return t
	}
	t.Type = "NOT_CONSUME_YET"
	return t
}

// subscribes reports whether a TAG subscription accepts a tag.
func subscribes(sd wire.SubscriptionData, tag string) bool {
	if sd.SubString == "" || sd.SubString == "*" || sd.ExpressionType != "" && sd.ExpressionType != "TAG" {
		return true
	}
	for _, t := range sd.TagsSet {
		if t == tag {
			return true
		}
	}
	return false
}

// PendingSince returns the store time (ms) of the oldest message at or
// after offset in a queue of the broker at addr — for a consumer offset,
// how long the group's next message has waited — or 0 when there is none.
func (a *Admin) PendingSince(addr, topic string, queueID int, offset int64) (int64, error) {
	m, err := a.firstMessageFrom(addr, topic, queueID, offset)
	if err != nil || m == nil {
		return 0, err
	}
	return m.StoreTimestamp, nil
}
