package grpcsvc

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"

	"github.com/mqops/mqops/wire"
)

// The send rules both front ends apply: this service's SendMessage and the
// HTTP gateway (broker/httpgw). They check a message as Java's proxy
// checks a 5.x one (apache/rocketmq
// proxy/src/main/java/org/apache/rocketmq/proxy/grpc/v2/common/GrpcValidator.java,
// proxy/src/main/java/org/apache/rocketmq/proxy/grpc/v2/producer/SendMessageActivity.java);
// each front end reads its own protocol's fields, calls them in its own
// order and maps a Refusal to its own error form.

// Limits of a message (Java ProxyConfig userPropertyMaxNum,
// maxUserPropertySize, maxMessageGroupSize).
const (
	maxUserProperties    = 128
	maxUserPropertyBytes = 16 << 10
	maxMessageGroupLen   = 64
)

// Refusal is a message refused before it reaches the broker: its 5.x code
// and why.
type Refusal struct {
	Code v2.Code
	Msg  string
}

func refuse(code v2.Code, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// CheckMessageID refuses a blank message id or one with a space or a
// control character (they would break the stored properties and the
// keys of the index).
func CheckMessageID(id string) *Refusal {
	if strings.TrimSpace(id) == "" {
		return refuse(v2.Code_ILLEGAL_MESSAGE_ID, "the message id is blank")
	}
	if hasControl(id) || strings.Contains(id, " ") {
		return refuse(v2.Code_ILLEGAL_MESSAGE_ID, "the message id contains a space or control character")
	}
	return nil
}

// TopicTypes tells a topic's message.type (NORMAL when unset), "" for a
// topic this broker does not have.
type TopicTypes interface {
	TopicMessageType(topic string) string
}

// CheckTopicType refuses a message of type typ (a wire.MessageType*) that
// the topic does not take (Java DefaultTopicMessageTypeValidator; retry
// and DLQ topics are exempt); off is enableTopicMessageTypeCheck=false. A
// topic this broker lacks is left to Send (TOPIC_NOT_FOUND).
func CheckTopicType(tt TopicTypes, off bool, topic, typ string) *Refusal {
	if off || strings.HasPrefix(topic, "%RETRY%") || strings.HasPrefix(topic, "%DLQ%") {
		return nil
	}
	topicType := tt.TopicMessageType(topic)
	if topicType == "" || topicType == wire.MessageTypeMixed || topicType == typ {
		return nil
	}
	return refuse(v2.Code_MESSAGE_PROPERTY_CONFLICT_WITH_TYPE, "current message type %s does not match topic %s's message.type %s", typ, topic, topicType)
}

// Outgoing builds the stored form of one message. Set the fields, call
// User, then Group and DeliverAt for a FIFO or DELAY message, then
// Message: the steps append the properties in the order Java's
// SendMessageActivity.buildMessageProperty stores them.
type Outgoing struct {
	Topic         string
	Body          []byte
	SysFlag       int32
	ID            string // UNIQ_KEY, checked by the caller
	TraceContext  string // a 5.x client's trace context, if any
	BornTimestamp int64  // epoch ms, 0 if unknown
	BornHostName  string // as the client names its host; "" takes BornHost's IP
	BornHost      *net.TCPAddr

	props []byte
	size  int // bytes of tag, keys and user properties
	group string
}

// User checks and adds the tag, the keys and the user properties.
func (o *Outgoing) User(tag *string, keys []string, props map[string]string) *Refusal {
	if tag != nil {
		t := *tag
		if strings.TrimSpace(t) == "" || strings.Contains(t, "|") || hasControl(t) {
			return refuse(v2.Code_ILLEGAL_MESSAGE_TAG, "tag %q is blank or contains '|' or a control character", t)
		}
		o.props = wire.AppendProperty(o.props, wire.PropTags, t)
		o.size += len(wire.PropTags) + len(t)
	}
	if len(keys) > 0 {
		for _, k := range keys {
			if strings.TrimSpace(k) == "" || hasControl(k) {
				return refuse(v2.Code_ILLEGAL_MESSAGE_KEY, "key %q is blank or contains a control character", k)
			}
		}
		joined := strings.Join(keys, " ") // MessageConst.KEY_SEPARATOR
		o.props = wire.AppendProperty(o.props, wire.PropKeys, joined)
		o.size += len(wire.PropKeys) + len(joined)
	}
	if len(props) > maxUserProperties {
		return refuse(v2.Code_MESSAGE_PROPERTIES_TOO_LARGE, "%d user properties, at most %d", len(props), maxUserProperties)
	}
	for k, v := range props {
		if k == "" || reserved[k] || hasControl(k) {
			return refuse(v2.Code_ILLEGAL_MESSAGE_PROPERTY_KEY, "property name %q is empty, reserved or contains a control character", k)
		}
		if hasControl(v) {
			// \x01 and \x02 separate stored properties.
			return refuse(v2.Code_BAD_REQUEST, "the value of property %q contains a control character", k)
		}
		o.size += len(k) + len(v)
	}
	if o.size > maxUserPropertyBytes {
		return refuse(v2.Code_MESSAGE_PROPERTIES_TOO_LARGE, "properties take %d bytes, at most %d", o.size, maxUserPropertyBytes)
	}
	o.props = wire.AppendProperties(o.props, props)
	return nil
}

// Group checks and adds a FIFO message's group.
func (o *Outgoing) Group(group string) *Refusal {
	if strings.TrimSpace(group) == "" || len(group) > maxMessageGroupLen || hasControl(group) {
		return refuse(v2.Code_ILLEGAL_MESSAGE_GROUP, "message group %q is blank, longer than %d bytes or contains a control character", group, maxMessageGroupLen)
	}
	o.group = group
	o.props = wire.AppendProperty(o.props, propShardingKey, group)
	return nil
}

// DeliverAt checks and adds a DELAY message's delivery time: at most
// maxDelay (timerMaxDelaySec, 0: no limit) after now. A time in the past
// delivers at once, as the timing wheel does.
func (o *Outgoing) DeliverAt(at, now time.Time, maxDelay time.Duration) *Refusal {
	if maxDelay > 0 && at.Sub(now) > maxDelay {
		return refuse(v2.Code_ILLEGAL_DELIVERY_TIME, "delivery time %s is more than the maximum delay %s away", at.UTC().Format(time.RFC3339), maxDelay)
	}
	o.props = wire.AppendProperty(o.props, wire.PropTimerDeliverMs, strconv.FormatInt(at.UnixMilli(), 10))
	return nil
}

// Message adds the properties the proxy adds to every message and returns
// the stored form. The proxy uses the topic as the producer group
// (SendMessageActivity): a transaction's check-backs go to the topic's
// producers.
func (o *Outgoing) Message() *Message {
	props := wire.AppendProperty(o.props, wire.PropUniqKey, o.ID)
	props = wire.AppendProperty(props, wire.PropProducerGroup, o.Topic)
	if o.TraceContext != "" && !hasControl(o.TraceContext) {
		props = wire.AppendProperty(props, propTraceContext, o.TraceContext)
	}
	host := o.BornHostName
	if host == "" && o.BornHost != nil {
		host = o.BornHost.IP.String()
	}
	if host != "" && !hasControl(host) {
		props = wire.AppendProperty(props, propBornHost, host)
	}
	return &Message{
		Topic: o.Topic, Body: o.Body, Properties: props, SysFlag: o.SysFlag,
		BornTimestamp: o.BornTimestamp, BornHost: wire.HostBytes(o.BornHost), MessageGroup: o.group,
	}
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}
