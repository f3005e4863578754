package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mqops/mqops/broker/clients"
	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/pop"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// queueArgs reads the (group, topic, queueId) triple most offset requests carry.
func queueArgs(c *remoting.Conn, req *wire.Command, needGroup bool) (group, topic string, queueID int32, ok bool) {
	if needGroup {
		if group = req.GetString("consumerGroup"); group == "" {
			missing(c, req, "consumerGroup")
			return
		}
	}
	if topic = req.GetString("topic"); topic == "" {
		missing(c, req, "topic")
		return
	}
	if !req.Has("queueId") {
		missing(c, req, "queueId")
		return
	}
	q, qok := req.GetInt32("queueId")
	if !qok {
		badNumber(c, req, "queueId")
		return
	}
	return group, topic, q, true
}

func (b *Broker) handleQueryConsumerOffset(c *remoting.Conn, req *wire.Command) {
	group, topic, q, ok := queueArgs(c, req, true)
	if !ok {
		return
	}
	off, found := b.offsets.Query(group, topic, q)
	if !found {
		// A group that never committed starts a young queue from 0, which
		// is why CONSUME_FROM_LAST_OFFSET still reads a new topic from its
		// beginning (Java's ConsumerManageProcessor.queryConsumerOffset,
		// apache/rocketmq broker/src/main/java/org/apache/rocketmq/broker/processor/ConsumerManageProcessor.java):
		// only while offset 0 is retained and
		// still "in memory", within 40 % of RAM of the log's end. Otherwise
		// the client applies its ConsumeFromWhere.
		if !b.youngQueue(topic, q) {
			c.ReplyCode(req, wire.QueryNotFound, "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first")
			return
		}
		off = 0
	}
	resp := wire.ResponseTo(req, wire.Success, "")
	resp.SetInt("offset", off)
	c.Reply(req, &resp)
}

// youngQueue reports whether a queue still holds its first message close
// enough to the end of the log to be in the page cache.
func (b *Broker) youngQueue(topic string, q int32) bool {
	if b.store.MinOffset(topic, q) > 0 {
		return false
	}
	phy, ok := b.store.PhyOffsetAt(topic, q, 0)
	if !ok {
		return true // an empty or unknown queue: nothing to skip
	}
	return b.store.MaxPhyOffset()-phy < b.memoryBudget.Load()
}

// handleUpdateConsumerOffset stores a committed offset. Java stores
// whatever arrives; offsets for queues that do not exist, or negative
// ones, would only be wrong answers later, so they are refused here.
func (b *Broker) handleUpdateConsumerOffset(c *remoting.Conn, req *wire.Command) {
	group, topic, q, ok := queueArgs(c, req, true)
	if !ok {
		return
	}
	if !req.Has("commitOffset") {
		missing(c, req, "commitOffset")
		return
	}
	off, ok := req.GetInt("commitOffset")
	if !ok {
		badNumber(c, req, "commitOffset")
		return
	}
	if code, remark := b.checkOffsetCommit(group, topic, q, off); code != wire.Success {
		c.ReplyCode(req, code, remark)
		return
	}
	if b.pop != nil {
		// A commit behind a POP consumer (mqadmin's offline reset) must
		// rewind its POP state too.
		if b.pop.state.Commit(pop.Key{Group: group, Topic: topic, Queue: q}, off) {
			if err := b.persistPopReset(); err != nil {
				b.log.Error("[RESET_OFFSET] POP offset reset but not saved", "group", group, "topic", topic, "queueId", q, "err", err)
				c.ReplyCode(req, wire.SystemError, fmt.Sprintf("POP offset reset but not saved: %v", err))
				return
			}
		}
	} else {
		b.offsets.Commit(group, topic, q, off)
	}
	c.ReplyCode(req, wire.Success, "")
}

// checkOffsetCommit says why an offset may not be committed, or SUCCESS.
func (b *Broker) checkOffsetCommit(group, topic string, q int32, off int64) (int32, string) {
	if err := b.knownOrValidGroup(group); err != nil {
		return wire.SubscriptionGroupNotExist, fmt.Sprintf("subscription group [%s] does not exist: %v", group, err)
	}
	tc := b.topics.Lookup(topic)
	if tc == nil {
		tc = b.lmqTopic(topic)
	}
	switch {
	case tc == nil:
		return wire.TopicNotExist, fmt.Sprintf("topic[%s] not exist, apply first please!", topic)
	case q < 0 || int(q) >= tc.ReadQueueNums:
		return wire.SystemError, fmt.Sprintf("queueId[%d] is illegal, topic:[%s] topicConfig.readQueueNums:[%d]", q, topic, tc.ReadQueueNums)
	case off < 0:
		return wire.SystemError, fmt.Sprintf("commitOffset %d is negative", off)
	}
	return wire.Success, ""
}

func (b *Broker) handleQueueOffsets(c *remoting.Conn, req *wire.Command) {
	_, topic, q, ok := queueArgs(c, req, false)
	if !ok {
		return
	}
	resp := wire.ResponseTo(req, wire.Success, "")
	switch req.Code {
	case wire.GetMaxOffset:
		resp.SetInt("offset", b.store.MaxOffset(topic, q))
	case wire.GetMinOffset:
		resp.SetInt("offset", b.store.MinOffset(topic, q))
	case wire.GetEarliestMsgStoreTime:
		ts := int64(-1)
		if min := b.store.MinOffset(topic, q); min >= 0 {
			if t, ok := b.store.StoreTimeAt(topic, q, min); ok {
				ts = t
			}
		}
		resp.SetInt("timestamp", ts)
	case wire.SearchOffsetByTimestamp:
		ts, ok := req.GetInt("timestamp")
		if !ok {
			if req.Has("timestamp") {
				badNumber(c, req, "timestamp")
			} else {
				missing(c, req, "timestamp")
			}
			return
		}
		resp.SetInt("offset", b.store.OffsetByTime(topic, q, ts))
	}
	c.Reply(req, &resp)
}

// handleHeartbeat registers producers and consumers of one client. New
// consumer groups get their subscription group and retry topic at once.
func (b *Broker) handleHeartbeat(c *remoting.Conn, req *wire.Command) {
	var hb wire.HeartbeatData
	if err := json.Unmarshal(req.Body, &hb); err != nil {
		c.ReplyCode(req, wire.SystemError, "malformed heartbeat body: "+err.Error())
		return
	}
	ch := clients.Channel{Conn: c, ClientID: hb.ClientID, Language: wire.LanguageName(req.Language), Version: int(req.Version), LastUpdate: time.Now()}
	newTopic := false
	var refused []string
	for i := range hb.ConsumerDataSet {
		cd := &hb.ConsumerDataSet[i]
		if cd.GroupName == "" {
			continue
		}
		gc := b.groups.Lookup(cd.GroupName)
		if gc == nil {
			// Java 5 skips such a group too (SubscriptionGroupManager
			// findSubscriptionGroupConfig); the rest of the heartbeat counts.
			if err := wire.CheckGroup(cd.GroupName); err != nil {
				b.log.Warn("[HEARTBEAT] consumer group refused", "clientId", hb.ClientID, "remote", c.RemoteAddr().String(), "err", err)
				refused = append(refused, err.Error())
				continue
			}
			if b.cfg.AutoCreateSubscriptionGroup {
				var err error
				if gc, _, err = b.groups.Ensure(cd.GroupName); err != nil {
					b.log.Error("create subscription group failed", "group", cd.GroupName, "err", err)
				}
			}
		}
		retry := meta.RetryPrefix + cd.GroupName
		if gc != nil && gc.RetryQueueNums > 0 && wire.StorableTopic(retry) {
			// Written by the next flush: the next heartbeat creates it again.
			_, created, err := b.topics.CreateIfAbsent(wire.TopicConfig{TopicName: retry, ReadQueueNums: gc.RetryQueueNums, WriteQueueNums: gc.RetryQueueNums, Perm: 6}, false)
			if err != nil {
				b.log.Error("create retry topic failed", "group", cd.GroupName, "err", err)
			}
			newTopic = newTopic || created
		}
		changed := b.clients.RegisterConsumer(cd, ch)
		if changed {
			b.log.Info("[CONSUMER_CHANGED] consumer group membership or subscription changed", "group", cd.GroupName, "clientId", hb.ClientID)
			if gc == nil || gc.NotifyConsumerIDsChangedEnable {
				b.notifyConsumerIDsChanged(cd.GroupName)
			}
		}
		for _, sd := range cd.SubscriptionDataSet {
			if why := b.filterProblem(cd.GroupName, sd.Topic); why != "" {
				// Registered all the same, as Java does; its pulls are refused.
				if changed {
					b.log.Warn("[HEARTBEAT] property filter subscription will not be served", "group", cd.GroupName, "topic", sd.Topic, "clientId", hb.ClientID, "why", why)
				}
				refused = append(refused, fmt.Sprintf("group %s topic %s: %s", cd.GroupName, sd.Topic, why))
			}
		}
	}
	for _, pd := range hb.ProducerDataSet {
		if pd.GroupName != "" {
			b.clients.RegisterProducer(pd.GroupName, ch)
		}
	}
	if newTopic {
		b.kickRegister()
	}
	// SUCCESS as Java answers, so that the client's valid groups and
	// producers stay registered; the remark says what was not.
	c.ReplyCode(req, wire.Success, strings.Join(refused, "; "))
}

// notifyConsumerIDsChanged tells every member of a group to rebalance now.
func (b *Broker) notifyConsumerIDsChanged(group string) {
	if !b.cfg.NotifyConsumerIdsChangedEnable {
		return // clients then rebalance on their own 20 s timer
	}
	for _, conn := range b.clients.ConsumerConns(group) {
		n := wire.NewRequest(wire.NotifyConsumerIDsChanged, map[string]string{"consumerGroup": group}, nil)
		_ = conn.InvokeOneway(n)
	}
}

func (b *Broker) handleUnregisterClient(c *remoting.Conn, req *wire.Command) {
	for _, g := range b.clients.Unregister(c, req.GetString("producerGroup"), req.GetString("consumerGroup")) {
		b.notifyConsumerIDsChanged(g)
	}
	c.ReplyCode(req, wire.Success, "")
}

func (b *Broker) handleGetConsumerList(c *remoting.Conn, req *wire.Command) {
	group := req.GetString("consumerGroup")
	if group == "" {
		missing(c, req, "consumerGroup")
		return
	}
	ids := b.clients.ConsumerIDs(group)
	if len(ids) == 0 {
		c.ReplyCode(req, wire.SystemError, "no consumer for this group, "+group)
		return
	}
	b.replyBody(c, req, wire.Marshal(wire.ConsumerListBody{ConsumerIDList: ids}))
}

// ---- admin: topics and groups ----

func (b *Broker) handleCreateTopic(c *remoting.Conn, req *wire.Command) {
	if b.isSlave() {
		slaveRefusesAdmin(c, req)
		return
	}
	topic := req.GetString("topic")
	if err := wire.CheckTopic(topic); err != nil {
		c.ReplyCode(req, wire.SystemError, err.Error())
		return
	}
	if b.topics.IsSystem(topic) {
		c.ReplyCode(req, wire.SystemError, fmt.Sprintf("The topic[%s] is conflict with system topic.", topic))
		return
	}
	tc := wire.TopicConfig{TopicName: topic, TopicFilterType: req.GetString("topicFilterType"), Order: req.GetBool("order")}
	for _, f := range []struct {
		key string
		dst *int
	}{{"readQueueNums", &tc.ReadQueueNums}, {"writeQueueNums", &tc.WriteQueueNums}, {"perm", &tc.Perm}} {
		v, ok := req.GetInt(f.key)
		if !ok {
			missing(c, req, f.key)
			return
		}
		*f.dst = int(v)
	}
	if v, ok := req.GetInt("topicSysFlag"); ok {
		tc.TopicSysFlag = int(v)
	}
	if tc.ReadQueueNums <= 0 || tc.WriteQueueNums <= 0 || tc.ReadQueueNums > 1024 || tc.WriteQueueNums > 1024 {
		c.ReplyCode(req, wire.SystemError, fmt.Sprintf("queue numbers must be within 1..1024, got read %d write %d", tc.ReadQueueNums, tc.WriteQueueNums))
		return
	}
	if tc.Perm&^(wire.PermRead|wire.PermWrite|wire.PermInherit) != 0 {
		c.ReplyCode(req, wire.SystemError, fmt.Sprintf("perm %d is not a combination of 4 (read), 2 (write) and 1 (inherit)", tc.Perm))
		return
	}
	if tc.TopicFilterType != "" && tc.TopicFilterType != "SINGLE_TAG" && tc.TopicFilterType != "MULTI_TAG" {
		c.ReplyCode(req, wire.SystemError, fmt.Sprintf("topicFilterType %q must be SINGLE_TAG or MULTI_TAG", tc.TopicFilterType))
		return
	}
	// RocketMQ 5's attributes ("+message.type=FIFO"); a request without
	// them (4.x tools) keeps the topic's current ones, as Java's
	// TopicConfigManager.updateTopicConfig does.
	changes, err := wire.ParseAttributes(req.GetString("attributes"))
	if err != nil {
		c.ReplyCode(req, wire.SystemError, err.Error())
		return
	}
	old := b.topics.Lookup(topic)
	var current map[string]string
	if old != nil {
		current = old.Attributes
	}
	if tc.Attributes, err = wire.AlterTopicAttributes(old == nil, current, changes); err != nil {
		c.ReplyCode(req, wire.SystemError, err.Error())
		return
	}
	changed, err := b.topics.Put(tc)
	if err != nil {
		c.ReplyCode(req, wire.SystemError, "persist topic config: "+err.Error())
		return
	}
	if changed {
		b.log.Info("[TOPIC_CREATE] topic created or updated", "topic", topic, "read", tc.ReadQueueNums, "write", tc.WriteQueueNums, "perm", tc.Perm, "attributes", tc.Attributes, "remote", c.RemoteAddr().String())
		b.registerAll()
	}
	c.ReplyCode(req, wire.Success, "")
}

func (b *Broker) handleDeleteTopic(c *remoting.Conn, req *wire.Command) {
	if b.isSlave() {
		slaveRefusesAdmin(c, req)
		return
	}
	topic := req.GetString("topic")
	// A topic an earlier build let in under a name that breaks the rules
	// (%RETRY%a/b) must stay deletable.
	if err := wire.CheckTopic(topic); err != nil && b.topics.Lookup(topic) == nil {
		c.ReplyCode(req, wire.SystemError, err.Error())
		return
	}
	if b.topics.IsSystem(topic) {
		c.ReplyCode(req, wire.SystemError, fmt.Sprintf("The topic[%s] is conflict with system topic.", topic))
		return
	}
	if b.topics.Lookup(topic) == nil && b.lmqTopic(topic) != nil {
		// A light queue has no topic config: only its consume queue goes
		// (Java's AdminBrokerProcessor.deleteTopic → cleanUnusedLmqTopic).
		if err := b.store.DeleteLMQ(topic); err != nil {
			c.ReplyCode(req, wire.SystemError, "delete light message queue: "+err.Error())
			return
		}
		b.log.Info("[TOPIC_DELETE] light message queue deleted", "topic", topic, "remote", c.RemoteAddr().String())
		c.ReplyCode(req, wire.Success, "")
		return
	}
	if _, err := b.topics.Delete(topic); err != nil {
		c.ReplyCode(req, wire.SystemError, "persist topic config: "+err.Error())
		return
	}
	// The store never held a name it cannot store, and such a name must
	// not become a path (a/.., ..) under the consume-queue directory.
	if !wire.StorableTopic(topic) {
		b.log.Warn("[TOPIC_DELETE] topic name cannot be a directory; no consume queues to remove", "topic", topic)
	} else if err := b.store.DeleteTopic(topic); err != nil {
		b.log.Error("delete consume queues failed", "topic", topic, "err", err)
	}
	b.log.Info("[TOPIC_DELETE] topic deleted", "topic", topic, "remote", c.RemoteAddr().String())
	c.ReplyCode(req, wire.Success, "")
}

func (b *Broker) handleGetAllTopicConfig(c *remoting.Conn, req *wire.Command) {
	b.replyBody(c, req, wire.Marshal(b.topics.Snapshot()))
}

func (b *Broker) handleCreateSubGroup(c *remoting.Conn, req *wire.Command) {
	if b.isSlave() {
		slaveRefusesAdmin(c, req)
		return
	}
	var g wire.SubscriptionGroupConfig
	if err := json.Unmarshal(req.Body, &g); err != nil {
		c.ReplyCode(req, wire.SystemError, "malformed subscription group body: "+err.Error())
		return
	}
	if err := wire.CheckGroup(g.GroupName); err != nil {
		c.ReplyCode(req, wire.SystemError, err.Error())
		return
	}
	if err := meta.CheckGroupConfig(&g); err != nil {
		c.ReplyCode(req, wire.SystemError, fmt.Sprintf("group %s: %v", g.GroupName, err))
		return
	}
	if err := b.groups.Put(g); err != nil {
		c.ReplyCode(req, wire.SystemError, err.Error())
		return
	}
	b.log.Info("[GROUP_UPDATE] subscription group created or updated", "group", g.GroupName)
	c.ReplyCode(req, wire.Success, "")
}

func (b *Broker) handleGetAllSubGroup(c *remoting.Conn, req *wire.Command) {
	b.replyBody(c, req, wire.Marshal(b.groups.Snapshot()))
}

func (b *Broker) handleDeleteSubGroup(c *remoting.Conn, req *wire.Command) {
	if b.isSlave() {
		slaveRefusesAdmin(c, req)
		return
	}
	name := req.GetString("groupName")
	if name == "" {
		missing(c, req, "groupName")
		return
	}
	if _, err := b.groups.Delete(name); err != nil {
		c.ReplyCode(req, wire.SystemError, err.Error())
		return
	}
	if req.GetBool("removeOffset") {
		b.offsets.DeleteGroup(name)
	}
	b.log.Info("[GROUP_DELETE] subscription group deleted", "group", name)
	c.ReplyCode(req, wire.Success, "")
}

// ---- queue locks for orderly consumers ----

// lockMaxLive is how long a lock lives without renewal (Java's 60 s).
const lockMaxLive = 60 * time.Second

type lockEntry struct {
	clientID string
	renewed  time.Time
}

// lockTable grants each queue of a group to one orderly consumer at a time.
type lockTable struct {
	mu    sync.Mutex
	locks map[string]map[wire.MessageQueue]*lockEntry // group → queue → holder
}

func newLockTable() *lockTable {
	return &lockTable{locks: map[string]map[wire.MessageQueue]*lockEntry{}}
}

func (t *lockTable) lock(group, clientID string, mqs []wire.MessageQueue) []wire.MessageQueue {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.locks[group]
	if g == nil {
		g = map[wire.MessageQueue]*lockEntry{}
		t.locks[group] = g
	}
	out := []wire.MessageQueue{}
	for _, mq := range mqs {
		e := g[mq]
		if e == nil || e.clientID == clientID || now.Sub(e.renewed) > lockMaxLive {
			g[mq] = &lockEntry{clientID: clientID, renewed: now}
			out = append(out, mq)
		}
	}
	return out
}

func (t *lockTable) unlock(group, clientID string, mqs []wire.MessageQueue) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.locks[group]
	for _, mq := range mqs {
		if e := g[mq]; e != nil && e.clientID == clientID {
			delete(g, mq)
		}
	}
}

func (t *lockTable) expire() {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for name, g := range t.locks {
		for mq, e := range g {
			if now.Sub(e.renewed) > lockMaxLive {
				delete(g, mq)
			}
		}
		if len(g) == 0 {
			delete(t.locks, name)
		}
	}
}

func (b *Broker) handleLockBatch(c *remoting.Conn, req *wire.Command) {
	var body wire.LockBatchRequestBody
	if err := json.Unmarshal(req.Body, &body); err != nil {
		c.ReplyCode(req, wire.SystemError, "malformed lock body: "+err.Error())
		return
	}
	if err := b.knownOrValidGroup(body.ConsumerGroup); err != nil {
		c.ReplyCode(req, wire.SubscriptionGroupNotExist, fmt.Sprintf("subscription group [%s] does not exist: %v", body.ConsumerGroup, err))
		return
	}
	got := b.locks.lock(body.ConsumerGroup, body.ClientID, body.MqSet)
	b.replyBody(c, req, wire.Marshal(wire.LockBatchResponseBody{LockOKMQSet: got}))
}

func (b *Broker) handleUnlockBatch(c *remoting.Conn, req *wire.Command) {
	var body wire.LockBatchRequestBody
	if err := json.Unmarshal(req.Body, &body); err != nil {
		c.ReplyCode(req, wire.SystemError, "malformed unlock body: "+err.Error())
		return
	}
	b.locks.unlock(body.ConsumerGroup, body.ClientID, body.MqSet)
	c.ReplyCode(req, wire.Success, "")
}

// filterProblem says why a group's property-filter subscription to a topic
// cannot be served, "" when it can or is a tag subscription.
func (b *Broker) filterProblem(group, topic string) string {
	s, _, _ := b.clients.Subscription([]byte(group), topic)
	switch {
	case s == nil || clients.IsTagType(s.Data.ExpressionType):
		return ""
	case s.FilterErr != nil:
		return s.FilterErr.Error()
	case !b.propertyFilter.Load():
		return "filtering by " + s.Data.ExpressionType + " is disabled (enablePropertyFilter=false)"
	}
	return ""
}

// handleCheckClientConfig answers the check Java clients make at start-up
// for each filter subscription (ClientManageProcessor.checkClientConfig,
// apache/rocketmq broker/src/main/java/org/apache/rocketmq/broker/processor/
// ClientManageProcessor.java): their start fails with our answer.
func (b *Broker) handleCheckClientConfig(c *remoting.Conn, req *wire.Command) {
	var body struct {
		ClientID         string                 `json:"clientId"`
		Group            string                 `json:"group"`
		SubscriptionData *wire.SubscriptionData `json:"subscriptionData"`
	}
	if len(req.Body) > 0 {
		if err := json.Unmarshal(req.Body, &body); err != nil {
			c.ReplyCode(req, wire.SystemError, "malformed CHECK_CLIENT_CONFIG body: "+err.Error())
			return
		}
	}
	sd := body.SubscriptionData
	switch {
	case sd == nil || clients.IsTagType(sd.ExpressionType):
	case !b.propertyFilter.Load():
		c.ReplyCode(req, wire.SystemError, "The broker does not support consumer to filter message by "+sd.ExpressionType+
			" (set enablePropertyFilter=true)")
		return
	default:
		if s := clients.NewSubscription(sd.Topic, sd.SubString, sd.ExpressionType, sd.SubVersion); s.FilterErr != nil {
			c.ReplyCode(req, wire.SubscriptionParseFailed, s.FilterErr.Error())
			return
		}
	}
	c.ReplyCode(req, wire.Success, "")
}
