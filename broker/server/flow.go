package server

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/mqops/mqops/broker/acl"
	"github.com/mqops/mqops/broker/flow"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// newFlow builds the send budget and quotas from the config; flowLog is
// flowcontrol.log.
func (b *Broker) newFlow(flowLog *slog.Logger) {
	cfg := b.cfg
	b.flow = flow.NewSends(flow.Config{
		Threads:     cfg.SendMessageThreadPoolNums,
		Capacity:    cfg.SendThreadPoolQueueCapacity,
		MaxBytes:    cfg.SendInflightMaxBytes,
		PerConn:     cfg.SendInflightPerConnection,
		WaitInQueue: time.Duration(cfg.WaitTimeMillsInSendQueue) * time.Millisecond,
		BusyTimeout: time.Duration(cfg.OSPageCacheBusyTimeOutMills) * time.Millisecond,
		FastFailure: cfg.BrokerFastFailureEnable,

		WaitInTransactionQueue: time.Duration(cfg.WaitTimeMillsInTransactionQueue) * time.Millisecond,
	}, b.store.Busy, flow.NewLog(flowLog))
	b.quotas = flow.NewQuotas()
	b.acctQuotas = flow.NewAccountQuotas()
}

// handleSend admits a send before any work (Java's rejectRequest and the
// send pool's bounded queue) and holds its budget until it is answered:
// here, or when its flush or replica wait ends (replyAfterWait). account
// is the ACL account the send was authenticated as (nil without ACL).
func (b *Broker) handleSend(c *remoting.Conn, req *wire.Command, account *acl.Account) {
	st := stateOf(c)
	st.readAt = time.Now()
	st.hold, st.account = 0, account
	t, tag, ok := b.flow.Admit(&st.sendsInFlight, len(req.Body), st.readAt)
	if !ok {
		b.refuseSend(c, req, tag, nil, 0, -1, "")
		return
	}
	st.ticket = t
	// Deferred: a handler panic (answered SYSTEM_ERROR by the read loop)
	// must not leak the budget.
	defer b.flow.Release(&st.ticket)
	b.serveSend(c, req, st)
}

// refuseSend answers SYSTEM_BUSY with tag's remark (remark overrides it),
// a oneway request too when Java does (Tag.AnswersOneway), and logs the
// refusal to flowcontrol.log.
func (b *Broker) refuseSend(c *remoting.Conn, req *wire.Command, tag flow.Tag, topic []byte, waited time.Duration, queue int64, remark string) {
	remark = b.logRefusal(tag, c.RemoteAddr().String(), string(topic), waited, queue, remark)
	resp := wire.ResponseTo(req, wire.SystemBusy, remark)
	if req.IsOneway() && tag.AnswersOneway() {
		_ = c.Send(&resp)
	} else {
		c.Reply(req, &resp)
	}
}

// logRefusal records a send or publish refused for flow control in the
// flow log and returns the remark its answer carries: remark, or the
// tag's own when remark is "".
func (b *Broker) logRefusal(tag flow.Tag, remote, topic string, waited time.Duration, queue int64, remark string) string {
	if remark == "" {
		remark = flow.Remark(tag, waited, queue)
	}
	limit := ""
	if tag == flow.TopicQuota || tag == flow.AccountQuota {
		limit = remark
	}
	b.flow.Log.Event(tag, remote, topic, waited, queue, limit)
	return remark
}

// enterStore takes an append slot for the send st is serving, or answers
// SYSTEM_BUSY when it waited too long or the store turned busy; on true
// the caller appends and then calls b.flow.Leave.
func (b *Broker) enterStore(c *remoting.Conn, req *wire.Command, st *connState, topic []byte) bool {
	waited, queue, tag, ok := b.flow.Enter(&st.waiter, st.readAt)
	if !ok {
		b.refuseSend(c, req, tag, topic, waited, queue, "")
	}
	return ok
}

// put appends m in the slot enterStore took, freeing the slot even if the
// append panics.
func (b *Broker) put(m *store.Message) store.PutResult {
	defer b.flow.Leave()
	return b.store.PutDispatch(m)
}

// putBatch is put for a batch.
func (b *Broker) putBatch(ms []store.Message) (store.PutResult, []int64) {
	defer b.flow.Leave()
	return b.store.PutBatch(ms)
}

// takeQuota applies tc's produce quota and the sending account's to n
// messages of size body bytes (quotaWait) on a remoting connection. A
// delay is not slept here, on the read loop, where it would hold back the
// answers of this connection's earlier sends too: it is left in st.hold,
// and replySend stops reading the connection and holds this send's answer
// for it (Kafka's quota design: the producer slows down, an async flood
// meets TCP backpressure). A refusal is answered here; then it returns
// false.
func (b *Broker) takeQuota(c *remoting.Conn, req *wire.Command, st *connState, tc *wire.TopicConfig, n, size int) bool {
	wait, tag, remark := b.quotaWait(tc, st.account, n, size)
	if remark != "" {
		b.refuseSend(c, req, tag, []byte(tc.TopicName), 0, -1, remark)
		return false
	}
	st.hold = wait
	return true
}

// takeQuotaStream is takeQuota for a send through the gRPC service or the
// HTTP gateway, charged to tc's quota and to the quota of the account the
// call was authenticated as (nil: none): the wait delays that call's
// answer; the refusal's remark is returned (the gRPC service answers it
// TOO_MANY_REQUESTS, the HTTP gateway 429).
func (b *Broker) takeQuotaStream(tc *wire.TopicConfig, account *acl.Account, size int, bornHost []byte) (remark string) {
	wait, tag, remark := b.quotaWait(tc, account, 1, size)
	if remark != "" {
		b.flow.Log.Event(tag, wire.HostString(bornHost), tc.TopicName, 0, -1, remark)
		return remark
	}
	if wait > 0 {
		time.Sleep(wait)
	}
	return ""
}

// quotaWait takes tokens from tc's produce quota and from account's (the
// send pays both, or neither when one refuses): how long the send must
// wait (at most topicQuotaMaxDelayMills), or the tag and remark refusing
// it, [TOPIC_QUOTA] or [ACCOUNT_QUOTA]. Code 2 rather than 1 or 14: the
// v2.1.2 Go client and Java 4.x producers return it at once instead of
// resending three more times, and Java 5 producers retry it on another
// broker, which is what a per-broker quota wants.
func (b *Broker) quotaWait(tc *wire.TopicConfig, account *acl.Account, n, size int) (time.Duration, flow.Tag, string) {
	var topicB, acctB *flow.Bucket
	var now time.Time
	if len(tc.Attributes) > 0 {
		now = time.Now()
		topicB = b.quotas.For(tc, now)
	}
	if account != nil {
		acctB = b.accountBucket(account)
	}
	if topicB == nil && acctB == nil {
		return 0, 0, "" // the common case, without reading the clock
	}
	if now.IsZero() {
		now = time.Now()
	}
	wait, by := flow.TakeBoth(now, n, size, time.Duration(b.cfg.TopicQuotaMaxDelayMills)*time.Millisecond, topicB, acctB)
	switch {
	case by == nil:
		return wait, 0, ""
	case by == topicB:
		b.flow.CountQuota(flow.TopicQuota)
		return 0, flow.TopicQuota, "[TOPIC_QUOTA]topic " + tc.TopicName + " exceeds produce quota on " + b.cfg.BrokerName + " (" + by.Quota().String() + "), start flow control for a while"
	default:
		b.flow.CountQuota(flow.AccountQuota)
		return 0, flow.AccountQuota, "[ACCOUNT_QUOTA]accessKey " + account.AccessKey + " exceeds produce quota on " + b.cfg.BrokerName + " (" + by.Quota().String() + "), start flow control for a while"
	}
}

// accountBucket is the produce-quota bucket of an authenticated account,
// nil when it has none. The buckets follow the ACL rules in force: a
// reloaded file (a new snapshot) is synced on the next send or runtime
// info request.
func (b *Broker) accountBucket(a *acl.Account) *flow.Bucket {
	if b.acl.Rules() != b.quotaRules.Load() {
		b.syncAccountQuotas()
	}
	if a.ProduceTPS == 0 && a.ProduceBPS == 0 {
		return nil
	}
	return b.acctQuotas.For(a.AccessKey)
}

// syncAccountQuotas reads the accounts' quotas of the rules in force into
// their buckets: new quotas, changed ones resized, those of accounts gone
// from the file dropped.
func (b *Broker) syncAccountQuotas() {
	b.quotaSyncMu.Lock()
	defer b.quotaSyncMu.Unlock()
	s := b.acl.Rules()
	if s == b.quotaRules.Load() {
		return
	}
	qs := map[string]flow.Quota{}
	for ak, a := range s.Accounts {
		if a.ProduceTPS > 0 || a.ProduceBPS > 0 {
			qs[ak] = flow.Quota{TPS: a.ProduceTPS, BPS: a.ProduceBPS}
		}
	}
	b.acctQuotas.Sync(qs, time.Now())
	b.quotaRules.Store(s)
}

// addFlowRuntime adds the send budget's state and counters to the runtime
// info (mqadmin brokerStatus, the Zabbix probe): Java's send-pool keys
// with their mqops meaning, and per-tag refusal counters.
func (b *Broker) addFlowRuntime(kv map[string]string) {
	n, bytes := b.flow.InFlight()
	kv["sendThreadPoolQueueSize"] = strconv.FormatInt(n, 10)
	kv["sendThreadPoolQueueCapacity"] = strconv.Itoa(b.flow.Capacity())
	kv["sendInflightBytes"] = strconv.FormatInt(bytes, 10)
	kv["sendQueuedForStore"] = strconv.FormatInt(b.flow.Queued(flow.SendQueue), 10)
	kv["sendThreadPoolQueueHeadWaitTimeMills"] = strconv.FormatInt(b.flow.HeadWait(flow.SendQueue, time.Now()).Milliseconds(), 10)
	kv["EndTransactionQueueSize"] = strconv.FormatInt(b.flow.Queued(flow.TransactionQueue), 10)
	kv["pageCacheLockTimeMills"] = strconv.FormatInt(b.flow.Busy(time.Now()).Milliseconds(), 10)
	var total int64
	for tag := flow.Tag(0); tag < flow.NumTags; tag++ {
		r := b.flow.Rejected(tag)
		total += r
		kv["flowRejected_"+tag.String()] = strconv.FormatInt(r, 10)
	}
	kv["flowRejectedTotal"] = strconv.FormatInt(total, 10)
	var throttled, rejected, delay int64
	b.quotas.Each(func(topic string, bk *flow.Bucket) {
		t, r, d := bk.Counters()
		throttled, rejected, delay = throttled+t, rejected+r, delay+d
	})
	b.quotas.Each(func(topic string, bk *flow.Bucket) {
		t, r, d := bk.Counters()
		kv["quotaThrottledTotal_"+topic] = strconv.FormatInt(t, 10)
		kv["quotaRejectedTotal_"+topic] = strconv.FormatInt(r, 10)
		kv["quotaDelayMsSum_"+topic] = strconv.FormatInt(d, 10)
	})
	kv["quotaThrottledTotal"] = strconv.FormatInt(throttled, 10)
	kv["quotaRejectedTotal"] = strconv.FormatInt(rejected, 10)
	kv["quotaDelayMsSum"] = strconv.FormatInt(delay, 10)
	// The accounts' quotas (ACL on), by AccessKey, and their sums: an
	// account deleted from the rules drops its counters with its bucket.
	if b.acl == nil {
		return
	}
	b.syncAccountQuotas()
	throttled, rejected, delay = 0, 0, 0
	b.acctQuotas.Each(func(ak string, bk *flow.Bucket) {
		t, r, d := bk.Counters()
		throttled, rejected, delay = throttled+t, rejected+r, delay+d
		kv["accountQuotaThrottledTotal_"+ak] = strconv.FormatInt(t, 10)
		kv["accountQuotaRejectedTotal_"+ak] = strconv.FormatInt(r, 10)
		kv["accountQuotaDelayMsSum_"+ak] = strconv.FormatInt(d, 10)
	})
	kv["accountQuotaThrottledTotal"] = strconv.FormatInt(throttled, 10)
	kv["accountQuotaRejectedTotal"] = strconv.FormatInt(rejected, 10)
	kv["accountQuotaDelayMsSum"] = strconv.FormatInt(delay, 10)
}
