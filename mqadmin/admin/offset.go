package admin

import (
	"fmt"
	"sort"

	"github.com/mqops/mqops/wire"
)

func (a *Admin) queueOffset(code int32, what, addr, topic string, queueID int, extra map[string]string) (int64, error) {
	f := map[string]string{"topic": topic, "queueId": itoa(queueID)}
	for k, v := range extra {
		f[k] = v
	}
	resp, err := a.call(addr, code, f, nil)
	if err != nil {
		return 0, fmt.Errorf("%s of %s queue %d on %s: %w", what, topic, queueID, addr, err)
	}
	off, ok := resp.GetInt("offset")
	if !ok {
		return 0, fmt.Errorf("%s of %s queue %d on %s: no offset in the answer", what, topic, queueID, addr)
	}
	return off, nil
}

// MaxOffset returns the next offset a queue will assign (GET_MAX_OFFSET, 30).
func (a *Admin) MaxOffset(addr, topic string, queueID int) (int64, error) {
	return a.queueOffset(wire.GetMaxOffset, "max offset", addr, topic, queueID, nil)
}

// SearchOffset returns the offset of the message stored nearest timestamp
// (ms), as RocketMQ brokers answer SEARCH_OFFSET_BY_TIMESTAMP (29): an
// exact match, else the closer neighbour, the first message when all are
// later and the last one when all are earlier.
func (a *Admin) SearchOffset(addr, topic string, queueID int, timestamp int64) (int64, error) {
	return a.queueOffset(wire.SearchOffsetByTimestamp, "offset by time", addr, topic, queueID, map[string]string{"timestamp": itoa(timestamp)})
}

// UpdateConsumerOffset commits a group's offset on one queue
// (UPDATE_CONSUMER_OFFSET, 15).
func (a *Admin) UpdateConsumerOffset(addr, group, topic string, queueID int, offset int64) error {
	f := map[string]string{"consumerGroup": group, "topic": topic, "queueId": itoa(queueID), "commitOffset": itoa(offset)}
	if _, err := a.call(addr, wire.UpdateConsumerOffset, f, nil); err != nil {
		return fmt.Errorf("commit offset %d for group %s on %s queue %d at %s: %w", offset, group, topic, queueID, addr, err)
	}
	return nil
}

// ResetLatest as a reset timestamp means "the end of every queue".
const ResetLatest int64 = -1

// ResetQueue is the outcome of a reset on one queue. The broker, consumer
// and timestamp offsets are known only when the offsets were committed
// directly (the group was offline).
type ResetQueue struct {
	BrokerName      string `json:"brokerName"`
	QueueID         int    `json:"queueId"`
	BrokerOffset    int64  `json:"brokerOffset,omitempty"`
	ConsumerOffset  int64  `json:"consumerOffset,omitempty"`
	TimestampOffset int64  `json:"timestampOffset,omitempty"`
	Offset          int64  `json:"offset"`
}

// ResetResult says how a reset was done and where every queue now starts.
type ResetResult struct {
	// Online is true when the brokers told the group's clients to move
	// (they commit the new offsets themselves); false when the group was
	// offline and the offsets were committed directly.
	Online bool         `json:"online"`
	Queues []ResetQueue `json:"queues"`
}

// ResetOffset moves a group's offsets on a topic to the message stored
// nearest timestamp (ms, see SearchOffset), or to the end with ResetLatest.
// Without force a queue is only moved backwards. An online group is reset
// through its clients (INVOKE_BROKER_TO_RESET_OFFSET, 222). An offline
// group's offsets are committed directly, like Java's resetOffsetByTimeOld;
// unlike Java this is decided before asking the brokers, which refuse a
// group without committed offsets before they look for its clients, so a
// new group can be positioned before it first starts.
func (a *Admin) ResetOffset(group, topic string, timestamp int64, force bool) (*ResetResult, error) {
	rd, err := a.TopicRoute(topic)
	if err != nil {
		return nil, err
	}
	masters := routeMasters(rd)
	if _, err := a.ConsumerConnection(group); IsCode(err, wire.ConsumerNotOnline) {
		return a.resetOffline(rd, masters, group, topic, timestamp, force)
	} else if err != nil {
		return nil, err
	}
	res := &ResetResult{Online: true, Queues: []ResetQueue{}}
	f := map[string]string{"topic": topic, "group": group, "timestamp": itoa(timestamp), "isForce": fmt.Sprint(force)}
	for _, b := range masters {
		resp, err := a.call(b.Addr, wire.InvokeBrokerToResetOffset, f, nil)
		if IsCode(err, wire.ConsumerNotOnline) { // went offline meanwhile
			return a.resetOffline(rd, masters, group, topic, timestamp, force)
		}
		if err != nil {
			return nil, fmt.Errorf("reset offset of group %s on %s at %s: %w", group, topic, b.Addr, err)
		}
		body, err := wire.DecodeResetOffsetBody(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("decode reset answer of %s: %w", b.Addr, err)
		}
		for mq, off := range body.OffsetTable {
			if mq.Topic == topic {
				res.Queues = append(res.Queues, ResetQueue{BrokerName: mq.BrokerName, QueueID: mq.QueueID, Offset: off})
			}
		}
	}
	sortResetQueues(res.Queues)
	return res, nil
}

// resetOffline commits the offsets itself: each queue the group has on the
// topic (every queue of the topic when it has none yet) moves to the
// offset of timestamp when forced or when that is behind the group.
func (a *Admin) resetOffline(rd *wire.TopicRouteData, masters []Broker, group, topic string, timestamp int64, force bool) (*ResetResult, error) {
	res := &ResetResult{Queues: []ResetQueue{}}
	for _, b := range masters {
		// Committing offsets for a group the broker does not know would
		// create one (a typo then shows up with a backlog forever).
		if err := a.requireGroup(b, group); err != nil {
			return nil, err
		}
		cs, err := a.ConsumeStats(b.Addr, group, topic)
		if err != nil {
			return nil, err
		}
		current := map[int]wire.OffsetWrapper{}
		for mq, w := range cs.OffsetTable {
			if mq.Topic == topic {
				current[mq.QueueID] = w
			}
		}
		if len(current) == 0 {
			st, err := a.TopicStats(b.Addr, topic)
			if err != nil {
				return nil, err
			}
			qd, _ := queueData(rd, b.Name)
			for mq, o := range st.OffsetTable {
				if mq.QueueID < qd.ReadQueueNums {
					current[mq.QueueID] = wire.OffsetWrapper{BrokerOffset: o.MaxOffset, ConsumerOffset: o.MinOffset}
				}
			}
		}
		for q, w := range current {
			target, err := a.offsetFor(b.Addr, topic, q, timestamp)
			if err != nil {
				return nil, err
			}
			rq := ResetQueue{BrokerName: b.Name, QueueID: q, BrokerOffset: w.BrokerOffset, ConsumerOffset: w.ConsumerOffset, TimestampOffset: target, Offset: w.ConsumerOffset}
			if force || target <= w.ConsumerOffset {
				if err := a.UpdateConsumerOffset(b.Addr, group, topic, q, target); err != nil {
					return nil, err
				}
				rq.Offset = target
			}
			res.Queues = append(res.Queues, rq)
		}
	}
	sortResetQueues(res.Queues)
	return res, nil
}

func (a *Admin) offsetFor(addr, topic string, q int, timestamp int64) (int64, error) {
	if timestamp == ResetLatest {
		return a.MaxOffset(addr, topic, q)
	}
	return a.SearchOffset(addr, topic, q, timestamp)
}

func sortResetQueues(qs []ResetQueue) {
	sort.Slice(qs, func(i, j int) bool {
		if qs[i].BrokerName != qs[j].BrokerName {
			return qs[i].BrokerName < qs[j].BrokerName
		}
		return qs[i].QueueID < qs[j].QueueID
	})
}

// requireGroup fails unless group is a subscription group of broker b.
func (a *Admin) requireGroup(b Broker, group string) error {
	groups, err := a.Groups(Target{Broker: b.Addr})
	if err != nil {
		return err
	}
	for _, g := range groups {
		if g.Config.GroupName == group {
			return nil
		}
	}
	return fmt.Errorf("consumer group %s does not exist on %s (%s): create it first with 'mqadmin group create'", group, b.Name, b.Addr)
}
