package server

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/schedule"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// handleSendBack serves CONSUMER_SEND_MSG_BACK (Java's
// SendMessageProcessor.asyncConsumerSendMsgBack, apache/rocketmq
// broker/src/main/java/org/apache/rocketmq/broker/processor/SendMessageProcessor.java): a
// message the consumer failed is stored again in the group's retry topic
// after a graded delay (level 3 + reconsume times unless the client names
// one), or in its dead-letter topic once it has been retried
// maxReconsumeTimes. The Go client treats any answer as success and drops
// its copy, so the message must be stored before this answers 0.
func (b *Broker) handleSendBack(c *remoting.Conn, req *wire.Command) {
	group := req.GetString("group")
	if group == "" {
		missing(c, req, "group")
		return
	}
	if !req.Has("offset") {
		missing(c, req, "offset")
		return
	}
	offset, ok := req.GetInt("offset")
	if !ok {
		badNumber(c, req, "offset")
		return
	}
	if !req.Has("delayLevel") {
		missing(c, req, "delayLevel")
		return
	}
	delayLevel, ok := req.GetInt32("delayLevel")
	if !ok {
		badNumber(c, req, "delayLevel")
		return
	}
	// The group names the retry and dead-letter topics the message is
	// stored in: a name that cannot make them would park the message in
	// SCHEDULE_TOPIC_XXXX for a delivery that can never happen.
	if err := b.knownOrValidGroup(group); err != nil {
		c.ReplyCode(req, wire.SubscriptionGroupNotExist, fmt.Sprintf("subscription group [%s] does not exist: %v", group, err))
		return
	}
	for _, t := range []string{meta.RetryPrefix + group, meta.DLQPrefix + group} {
		if !wire.StorableTopic(t) {
			c.ReplyCode(req, wire.SystemError, fmt.Sprintf("the group [%s] cannot take messages back: its topic %q cannot be stored", group, t))
			return
		}
	}
	gc := b.groups.Lookup(group)
	if gc == nil {
		if !b.cfg.AutoCreateSubscriptionGroup {
			c.ReplyCode(req, wire.SubscriptionGroupNotExist, fmt.Sprintf("subscription group not exist, %s", group))
			return
		}
		var err error
		if gc, _, err = b.groups.Ensure(group); err != nil {
			c.ReplyCode(req, wire.SystemError, err.Error())
			return
		}
	}
	if b.permission()&wire.PermWrite == 0 {
		c.ReplyCode(req, wire.NoPermission, fmt.Sprintf("the broker[%s] sending message is forbidden", b.addr))
		return
	}
	if gc.RetryQueueNums <= 0 {
		c.ReplyCode(req, wire.Success, "") // the group asked for no retries
		return
	}
	if b.isSlave() {
		// Java's answer when the store refuses the retry copy: the
		// status's name. The Go client sends these to the master only.
		c.ReplyCode(req, wire.SystemError, "SERVICE_NOT_AVAILABLE")
		return
	}
	rec, err := b.store.ReadRecord(offset, nil)
	if err != nil {
		c.ReplyCode(req, wire.SystemError, fmt.Sprintf("look message by offset failed, %d: %v", offset, err))
		return
	}
	v := wire.RecordView(rec)
	maxTimes := gc.RetryMaxTimes
	if m, ok := req.GetInt32("maxReconsumeTimes"); ok && m > 0 {
		maxTimes = int(m)
	}

	target, queueID := meta.RetryPrefix+group, int32(rand.IntN(gc.RetryQueueNums))
	queues := gc.RetryQueueNums
	dead := int(v.ReconsumeTimes()) >= maxTimes || delayLevel < 0
	if dead {
		target, queueID, queues = meta.DLQPrefix+group, 0, 1
	}
	// Durable: the message acknowledged next is delivered into it.
	if _, created, err := b.topics.CreateIfAbsent(wire.TopicConfig{TopicName: target, ReadQueueNums: queues, WriteQueueNums: queues, Perm: 6}, true); err != nil {
		c.ReplyCode(req, wire.SystemError, "create "+target+": "+err.Error())
		return
	} else if created {
		b.kickRegister()
	}

	props := append([]byte(nil), v.Properties()...)
	if len(wire.PropertyValue(props, wire.PropRetryTopic)) == 0 {
		props = wire.AppendProperty(props, wire.PropRetryTopic, v.Topic())
	}
	if len(wire.PropertyValue(props, wire.PropOriginMessageID)) == 0 {
		props = wire.AppendProperty(props, wire.PropOriginMessageID, wire.OffsetMsgID(v.StoreHost(), v.PhysicalOffset()))
	}
	props = wire.RemoveProperty(props[:0], props, wire.PropDelay)
	level := 0
	if !dead {
		level = int(delayLevel)
		if level == 0 {
			level = 3 + int(v.ReconsumeTimes())
		}
		level = min(level, b.delay.MaxLevel())
		props = wire.AppendProperty(props, wire.PropDelay, strconv.Itoa(level))
	}
	m := store.Message{
		Topic: target, QueueID: queueID, Flag: v.Flag(), SysFlag: v.SysFlag(),
		BornTimestamp: v.BornTimestamp(), BornHost: v.BornHost(), ReconsumeTimes: v.ReconsumeTimes() + 1,
		Body: v.Body(), Properties: props,
	}
	if level > 0 {
		schedule.Park(nil, &m, level)
	}
	r := b.store.Put(&m)
	if !dead && schedule.Permanent(r.Status) {
		// The retry copy can never be stored (its parking properties take
		// it over a limit). The client drops its copy on any answer, so
		// the dead-letter topic, without them, is the message's last chance.
		b.log.Error("[DLQ] the store refused a sent-back message for good; trying its dead-letter topic", "group", group, "offset", offset, "topic", target, "reason", r.Status.String())
		if dlq, ok := b.deadLetterTopic(&store.Message{Topic: target}); ok {
			m.Topic, m.QueueID, m.Properties = dlq, 0, wire.RemoveProperty(nil, props, wire.PropDelay)
			r, dead = b.store.Put(&m), true
		}
	}
	code, remark, stored := b.putStatusCode(r.Status)
	if !stored {
		if schedule.Permanent(r.Status) {
			b.log.Error("[DLQ] the store refused a sent-back message for good; not stored", "group", group, "offset", offset, "topic", m.Topic, "reason", r.Status.String())
		}
		c.ReplyCode(req, code, remark)
		return
	}
	// Send-backs count against the topic the message was first sent to,
	// as Java keys them (topic@group).
	b.stats.SendBack(wire.PropertyValue(props, wire.PropRetryTopic), []byte(group))
	if dead {
		b.log.Warn("[DLQ] message moved to dead-letter queue", "group", group, "topic", string(wire.PropertyValue(props, wire.PropRetryTopic)), "reconsumeTimes", v.ReconsumeTimes(), "offsetMsgId", wire.OffsetMsgID(v.StoreHost(), v.PhysicalOffset()))
	}
	c.ReplyCode(req, wire.Success, "")
}

// deadLetterTopic is where the delay and timer services put a due message
// its retry topic refused for good: the group's %DLQ% topic, created if
// needed. Other topics have no dead-letter topic.
func (b *Broker) deadLetterTopic(m *store.Message) (string, bool) {
	group, ok := strings.CutPrefix(m.Topic, meta.RetryPrefix)
	dlq := meta.DLQPrefix + group
	if !ok || !wire.StorableTopic(dlq) {
		return "", false
	}
	_, created, err := b.topics.CreateIfAbsent(wire.TopicConfig{TopicName: dlq, ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}, true)
	if err != nil {
		// The store takes the message anyway; the topic is written later.
		b.log.Error("[DLQ] writing the dead-letter topic failed", "topic", dlq, "err", err)
	}
	if created {
		b.kickRegister()
	}
	return dlq, true
}
