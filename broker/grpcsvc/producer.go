package grpcsvc

import (
	"strconv"
	"strings"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"

	"github.com/mqops/mqops/wire"
)

// producerBackend is what FIFO, delay and transactional sends need from
// the broker beyond Send.
type producerBackend interface {
	// TopicMessageType is the topic's message.type attribute (NORMAL when
	// unset), "" for a topic this broker does not have.
	TopicMessageType(topic string) string
	// EndTransaction commits or rolls back the half message at commit log
	// offset phys, half-queue offset halfOffset, of producer group group;
	// a refusal is a *transaction.Refused (transaction.Service.End's, or
	// SLAVE_NOT_AVAILABLE on a slave).
	EndTransaction(group string, halfOffset, phys int64, commit bool) error
}

// propShardingKey carries a FIFO message's group (Java
// MessageConst.PROPERTY_SHARDING_KEY).
const propShardingKey = "__SHARDINGKEY"

// maxMessageGroupLen is Java ProxyConfig's maxMessageGroupSize.
const maxMessageGroupLen = 64

// acceptTypes are the message types a topic's queues accept in a route
// (Java RouteActivity.parseTopicMessageType).
func acceptTypes(topicType string) []v2.MessageType {
	switch topicType {
	case wire.MessageTypeNormal:
		return []v2.MessageType{v2.MessageType_NORMAL}
	case wire.MessageTypeFIFO:
		return []v2.MessageType{v2.MessageType_FIFO}
	case wire.MessageTypeDelay:
		return []v2.MessageType{v2.MessageType_DELAY}
	case wire.MessageTypeTransaction:
		return []v2.MessageType{v2.MessageType_TRANSACTION}
	case wire.MessageTypeMixed:
		return []v2.MessageType{v2.MessageType_NORMAL, v2.MessageType_FIFO, v2.MessageType_DELAY, v2.MessageType_TRANSACTION}
	}
	return []v2.MessageType{v2.MessageType_MESSAGE_TYPE_UNSPECIFIED}
}

// typeName is a 5.x message type as the topic attribute spells it.
func typeName(t v2.MessageType) string {
	switch t {
	case v2.MessageType_NORMAL:
		return wire.MessageTypeNormal
	case v2.MessageType_FIFO:
		return wire.MessageTypeFIFO
	case v2.MessageType_DELAY:
		return wire.MessageTypeDelay
	case v2.MessageType_TRANSACTION:
		return wire.MessageTypeTransaction
	}
	return wire.MessageTypeUnspecified
}

// storedType is the type a message has once stored, from what it
// carries, in the order of Java's TopicMessageType.parseFromMessageProperty:
// transactional, then timed, then grouped.
func storedType(sp *v2.SystemProperties) v2.MessageType {
	switch {
	case sp.GetMessageType() == v2.MessageType_TRANSACTION:
		return v2.MessageType_TRANSACTION
	case sp.DeliveryTimestamp != nil:
		return v2.MessageType_DELAY
	case sp.MessageGroup != nil:
		return v2.MessageType_FIFO
	}
	return v2.MessageType_NORMAL
}

// checkType refuses a message whose type the topic does not take (Java
// DefaultTopicMessageTypeValidator; retry and DLQ topics are exempt). A
// topic this broker lacks is left to Send (TOPIC_NOT_FOUND).
func (s *Server) checkType(topic string, sp *v2.SystemProperties) *sendError {
	declared, stored := sp.GetMessageType(), storedType(sp)
	if declared != stored {
		return refuse(v2.Code_MESSAGE_PROPERTY_CONFLICT_WITH_TYPE, "the message is declared %s but carries the properties of a %s message", declared, stored)
	}
	if s.cfg.NoTypeCheck || strings.HasPrefix(topic, "%RETRY%") || strings.HasPrefix(topic, "%DLQ%") {
		return nil
	}
	tt := s.be.TopicMessageType(topic)
	if tt == "" || tt == wire.MessageTypeMixed || tt == typeName(stored) {
		return nil
	}
	return refuse(v2.Code_MESSAGE_PROPERTY_CONFLICT_WITH_TYPE, "current message type %s does not match topic %s's message.type %s", typeName(stored), topic, tt)
}

// typedProperties appends the properties of FIFO, delay and transactional
// messages (Java SendMessageActivity.buildMessageProperty) and returns
// the message group ("" if none).
func (s *Server) typedProperties(props []byte, sp *v2.SystemProperties) ([]byte, string, *sendError) {
	var group string
	if sp.MessageGroup != nil {
		group = sp.GetMessageGroup()
		if strings.TrimSpace(group) == "" || len(group) > maxMessageGroupLen || hasControl(group) {
			return nil, "", refuse(v2.Code_ILLEGAL_MESSAGE_GROUP, "message group %q is blank, longer than %d bytes or contains a control character", group, maxMessageGroupLen)
		}
		props = wire.AppendProperty(props, propShardingKey, group)
	}
	if ts := sp.GetDeliveryTimestamp(); ts != nil {
		at := ts.AsTime()
		if err := ts.CheckValid(); err != nil {
			return nil, "", refuse(v2.Code_ILLEGAL_DELIVERY_TIME, "delivery timestamp: %v", err)
		}
		if s.cfg.MaxDelay > 0 && time.Until(at) > s.cfg.MaxDelay {
			return nil, "", refuse(v2.Code_ILLEGAL_DELIVERY_TIME, "delivery time %s is more than the maximum delay %s away", at.UTC().Format(time.RFC3339), s.cfg.MaxDelay)
		}
		props = wire.AppendProperty(props, wire.PropTimerDeliverMs, strconv.FormatInt(at.UnixMilli(), 10))
	}
	if sp.GetMessageType() == v2.MessageType_TRANSACTION {
		props = wire.AppendProperty(props, wire.PropTranMsg, "true")
		if d := sp.GetOrphanedTransactionRecoveryDuration(); d != nil && d.AsDuration() >= time.Second {
			props = wire.AppendProperty(props, wire.PropCheckImmunityTime, strconv.FormatInt(int64(d.AsDuration()/time.Second), 10))
		}
	}
	return props, group, nil
}

// QueueForGroup is the write queue of a FIFO message group: Guava's
// Hashing.consistentHash(messageGroup.hashCode(), queues), as Java's proxy
// chooses it (SendMessageActivity.SendMessageQueueSelector), so a group
// keeps its queue while the queue count stays.
func QueueForGroup(group string, queues int) int32 {
	if queues <= 1 {
		return 0
	}
	return int32(consistentHash(int64(javaStringHash(group)), queues))
}

// javaStringHash is Java's String.hashCode over UTF-16 code units.
func javaStringHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}

// consistentHash is Guava's Hashing.consistentHash(long, int) with its
// LinearCongruentialGenerator.
func consistentHash(input int64, buckets int) int {
	state := input
	candidate := 0
	for {
		state = 2862933555777941757*state + 1
		d := float64(int32(uint64(state)>>33)+1) / float64(1<<31)
		next := int((float64(candidate + 1)) / d)
		if next >= 0 && next < buckets {
			candidate = next
		} else {
			return candidate
		}
	}
}
