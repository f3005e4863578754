package server

import (
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/schedule"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// handleSendBack serves CONSUMER_SEND_MSG_BACK (requests.md §4.9): a
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
	offset, ok := req.GetInt("offset")
	if !ok {
		missing(c, req, "offset")
		return
	}
	delayLevel, ok := req.GetInt("delayLevel")
	if !ok {
		missing(c, req, "delayLevel")
		return
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
	rec, err := b.store.ReadRecord(offset, nil)
	if err != nil {
		c.ReplyCode(req, wire.SystemError, fmt.Sprintf("look message by offset failed, %d: %v", offset, err))
		return
	}
	v := wire.RecordView(rec)
	maxTimes := gc.RetryMaxTimes
	if m, ok := req.GetInt("maxReconsumeTimes"); ok && m > 0 {
		maxTimes = int(m)
	}

	target, queueID := meta.RetryPrefix+group, int32(rand.IntN(gc.RetryQueueNums))
	queues := gc.RetryQueueNums
	dead := int(v.ReconsumeTimes()) >= maxTimes || delayLevel < 0
	if dead {
		target, queueID, queues = meta.DLQPrefix+group, 0, 1
	}
	if _, created, err := b.topics.CreateIfAbsent(wire.TopicConfig{TopicName: target, ReadQueueNums: queues, WriteQueueNums: queues, Perm: 6}); err != nil {
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
	code, remark, stored := b.putStatusCode(r.Status)
	if !stored {
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
