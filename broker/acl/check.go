package acl

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mqops/mqops/wire"
)

// TraceTopic is the message-trace topic, which any correctly signed
// account may publish to (Java's PlainPermissionManager.validate).
const TraceTopic = "RMQ_SYS_TRACE_TOPIC"

const retryPrefix = "%RETRY%"

// Reason classifies a refusal; it labels acl_denied_total.
type Reason uint8

// Refusal reasons.
const (
	ReasonNone Reason = iota
	ReasonNoAccessKey
	ReasonUnknownAccount
	ReasonSignature
	ReasonAdmin
	ReasonTopic
	ReasonGroup
	ReasonBadBody
	numReasons
)

var reasonNames = [numReasons]string{"", "no_access_key", "unknown_account", "signature", "admin", "topic", "group", "bad_body"}

func (r Reason) String() string { return reasonNames[r] }

// Decision is the outcome of one check. Remark, Resource and Need are set
// only on refusals, so that an allowed request costs no allocation.
type Decision struct {
	OK       bool
	Admin    bool // allowed because the account is admin for an admin-only code
	Reason   Reason
	Remark   string
	Resource string
	Need     Perm
	// Account is the authenticated account of an allowed request; nil
	// when none was needed (open codes, the global white list).
	Account *Account
}

// scratch is a check's reusable state, from one pool for all accounts
// (so a check allocates nothing once the pool is warm, reloads included):
// the signature's hashes and buffers, the last account found and the last
// topic allowed. A connection sends as one account, mostly to one topic:
// the cache turns two map lookups into two byte comparisons. The account
// is the snapshot's, and the allowed topic is tied to the account pointer,
// so a reload (new snapshot, new accounts) misses.
type scratch struct {
	st *wire.SignState

	snap *Snapshot
	acct *Account
	ak   []byte

	topicAcct *Account
	topicNeed Perm
	topic     []byte
}

// maxCachedName bounds what scratch copies: longer names are looked up.
const maxCachedName = 128

var scratches = sync.Pool{New: func() any {
	return &scratch{st: wire.NewSignState(), ak: make([]byte, 0, maxCachedName), topic: make([]byte, 0, maxCachedName)}
}}

// account is s.Accounts[ak] through the cache.
func (sc *scratch) account(s *Snapshot, ak []byte) *Account {
	if sc.snap == s && string(sc.ak) == string(ak) {
		return sc.acct
	}
	a := s.Accounts[string(ak)]
	if a != nil && len(ak) <= maxCachedName {
		sc.snap, sc.acct, sc.ak = s, a, append(sc.ak[:0], ak...)
	}
	return a
}

// checkTopic is the package's checkTopic through the cache, which keeps
// only an allowed topic (a refusal builds its remark anyway).
func (sc *scratch) checkTopic(a *Account, topic []byte, need Perm) Decision {
	if sc == nil {
		return checkTopic(a, topic, need)
	}
	if sc.topicAcct == a && sc.topicNeed == need && string(sc.topic) == string(topic) {
		return Decision{OK: true}
	}
	d := checkTopic(a, topic, need)
	if d.OK && len(topic) <= maxCachedName {
		sc.topicAcct, sc.topicNeed, sc.topic = a, need, append(sc.topic[:0], topic...)
	}
	return d
}

// verifySignature recomputes a request's signature with the account's
// secret: Java's bytes first (SecurityToken signed), then, when a token is
// present, rocketmq-client-go v2.1.2's, which leave the token out.
// _UNIQUE_KEY_QUERY is left out for clients of version <= 399 (V4_9_3), as
// RocketMQ 5 does. Two fields with one key are refused.
func (a *Account) verifySignature(st *wire.SignState, req *wire.Command, sig []byte) bool {
	return len(sig) == wire.SignatureLen && !st.Sort(req) && a.verifySorted(st, req, sig)
}

func (a *Account) verifySorted(st *wire.SignState, req *wire.Command, sig []byte) bool {
	flags := 0
	if req.Version <= 399 {
		flags |= wire.SignSkipUniqueKeyQuery
	}
	if st.Verify(&a.key, req, flags, sig) {
		return true
	}
	return req.Has(wire.ExtSecurityToken) && st.Verify(&a.key, req, flags|wire.SignSkipToken, sig)
}

// perm is the account's permission on a topic or, for a %RETRY% topic, on
// its group.
func (a *Account) topicPerm(topic []byte) (Perm, bool) {
	if g, ok := retryGroup(topic); ok {
		return a.groupPerm(g), false
	}
	if p, ok := a.Topics[string(topic)]; ok {
		return p, true
	}
	return a.DefaultTopic, true
}

func (a *Account) groupPerm(group []byte) Perm {
	if p, ok := a.Groups[string(group)]; ok {
		return p
	}
	return a.DefaultGroup
}

func retryGroup(topic []byte) ([]byte, bool) {
	if len(topic) > len(retryPrefix) && string(topic[:len(retryPrefix)]) == retryPrefix {
		return topic[len(retryPrefix):], true
	}
	return nil, false
}

// Counters are the checks' totals for the stats surface.
type Counters struct {
	denied       [numReasons]atomic.Int64
	allowedAdmin atomic.Int64
	reloadFail   atomic.Int64
}

// Snapshot returns the counters as runtime-info keys: acl_denied_total
// (all reasons) and acl_denied_total.<reason>, acl_allowed_admin_total,
// acl_reload_failures.
func (c *Counters) Snapshot() map[string]string {
	out := map[string]string{}
	var total int64
	for r := ReasonNoAccessKey; r < numReasons; r++ {
		n := c.denied[r].Load()
		total += n
		out["acl_denied_total."+r.String()] = strconv.FormatInt(n, 10)
	}
	out["acl_denied_total"] = strconv.FormatInt(total, 10)
	out["acl_allowed_admin_total"] = strconv.FormatInt(c.allowedAdmin.Load(), 10)
	out["acl_reload_failures"] = strconv.FormatInt(c.reloadFail.Load(), 10)
	return out
}

// Denied is the number of refusals for one reason.
func (c *Counters) Denied(r Reason) int64 { return c.denied[r].Load() }

// Checker decides requests against the current snapshot of rules.
type Checker struct {
	table *Table
	snap  atomic.Pointer[Snapshot]
	Stats Counters
}

// NewChecker returns a checker for one daemon's table with s as its rules.
func NewChecker(t *Table, s *Snapshot) *Checker {
	c := &Checker{table: t}
	c.snap.Store(s)
	return c
}

// Rules is the snapshot in force.
func (c *Checker) Rules() *Snapshot { return c.snap.Load() }

// Swap puts s in force; requests already being checked finish on the old
// snapshot.
func (c *Checker) Swap(s *Snapshot) { c.snap.Store(s) }

// Table is the checker's code table.
func (c *Checker) Table() *Table { return c.table }

// RemoteIP is a peer's IP as the white lists compare it.
func RemoteIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	if a == nil {
		return netip.Addr{}
	}
	// Java: everything before the last ':'.
	s := a.String()
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	ip, _ := netip.ParseAddr(strings.Trim(s, "[]"))
	return ip.Unmap()
}

// Check decides one request (never a response) from ip, in Java's order:
// global white list, AccessKey, account, account white list or signature,
// admin-only codes, then the resources the code names.
func (c *Checker) Check(ip netip.Addr, req *wire.Command) Decision {
	r := c.table.lookup(req.Code)
	if r.kind == open {
		return Decision{OK: true}
	}
	s := c.snap.Load()
	for _, p := range s.GlobalWhite {
		if p.match(ip) {
			return Decision{OK: true}
		}
	}
	sc := scratches.Get().(*scratch)
	a, why := c.authenticate(sc, s, ip, req)
	var d Decision
	if why != ReasonNone {
		d = refused(why, a, req)
	} else if d = c.permit(sc, a, r, req); d.OK {
		d.Account = a
	}
	scratches.Put(sc)
	return d
}

// permit decides a request of authenticated account a; sc (nil: none)
// caches the topic allowed.
func (c *Checker) permit(sc *scratch, a *Account, r *rule, req *wire.Command) Decision {
	switch r.kind {
	case adminOnly:
		if !a.Admin {
			return deny(ReasonAdmin, fmt.Sprintf("Need admin permission for request code=%d, but accessKey=%s is not", req.Code, a.AccessKey), "", 0)
		}
		return Decision{OK: true, Admin: true}
	case authOnly, afterLookup:
		return Decision{OK: true}
	}
	if a.Admin {
		return Decision{OK: true}
	}
	switch r.kind {
	case sendTopic:
		if t := req.Get(r.topicField); len(t) > 0 {
			if string(t) == TraceTopic {
				return Decision{OK: true}
			}
			return sc.checkTopic(a, t, Pub)
		}
	case subTopic:
		if t := req.Get(r.topicField); len(t) > 0 {
			return sc.checkTopic(a, t, Sub)
		}
	case subGroup:
		if g := req.Get(r.groupField); len(g) > 0 {
			return checkGroup(a, g)
		}
	case subTopicGroup:
		if t := req.Get(r.topicField); len(t) > 0 {
			if _, retry := retryGroup(t); !retry {
				if d := sc.checkTopic(a, t, Sub); !d.OK {
					return d
				}
			}
		}
		if g := req.Get(r.groupField); len(g) > 0 {
			return checkGroup(a, g)
		}
	case amqpPub, amqpSub, amqpConf:
		v := req.Get(r.topicField)
		if v == nil {
			return deny(ReasonBadBody, fmt.Sprintf("request code=%d names no vhost (extField %s)", req.Code, r.topicField), "", 0)
		}
		topic := []byte(wire.AMQPStoreTopic(string(v)))
		if r.kind != amqpSub {
			if d := sc.checkTopic(a, topic, Pub); !d.OK {
				return d
			}
		}
		if r.kind != amqpPub {
			return sc.checkTopic(a, topic, Sub)
		}
		return Decision{OK: true}
	case heartbeat:
		return checkHeartbeat(a, req.Body)
	case lockBatch:
		return checkLockBatch(a, req.Body)
	}
	return Decision{OK: true}
}

// authenticate finds the account and checks the signature, or the
// account's white list instead of it. Unlike 4.9, a white-listed account
// keeps its permissions: the address only replaces the signature. A
// refusal is its reason alone (refused builds the decision), so that an
// allowed request does not carry a Decision through.
func (c *Checker) authenticate(sc *scratch, s *Snapshot, ip netip.Addr, req *wire.Command) (*Account, Reason) {
	ak := req.Get(wire.ExtAccessKey)
	if len(ak) == 0 {
		return nil, ReasonNoAccessKey
	}
	a := sc.account(s, ak)
	if a == nil {
		return nil, ReasonUnknownAccount
	}
	if !a.white.match(ip) && !a.verifySignature(sc.st, req, req.Get(wire.ExtSignature)) {
		return a, ReasonSignature
	}
	return a, ReasonNone
}

// refused is the decision of authenticate's refusal r of req (a: the
// account found, if any).
func refused(r Reason, a *Account, req *wire.Command) Decision {
	switch r {
	case ReasonNoAccessKey:
		return deny(r, "No accessKey is configured", "", 0)
	case ReasonUnknownAccount:
		return deny(r, "No acl config for "+string(req.Get(wire.ExtAccessKey)), "", 0)
	}
	return deny(r, "Check signature failed for accessKey="+a.AccessKey, "", 0)
}

// Authorize checks need on a topic a handler found by lookup (the stored
// message of VIEW_MESSAGE_BY_ID, the half message of END_TRANSACTION).
// The request passed Check before dispatch, so only the resource is new.
func (c *Checker) Authorize(ip netip.Addr, req *wire.Command, topic string, need Perm) Decision {
	s := c.snap.Load()
	for _, p := range s.GlobalWhite {
		if p.match(ip) {
			return Decision{OK: true}
		}
	}
	sc := scratches.Get().(*scratch)
	a, why := c.authenticate(sc, s, ip, req)
	scratches.Put(sc)
	if why != ReasonNone {
		return refused(why, a, req)
	}
	if a.Admin || (need == Pub && topic == TraceTopic) {
		return Decision{OK: true}
	}
	return checkTopic(a, []byte(topic), need)
}

func deny(r Reason, remark, resource string, need Perm) Decision {
	return Decision{Reason: r, Remark: remark, Resource: resource, Need: need}
}

func checkTopic(a *Account, topic []byte, need Perm) Decision {
	p, isTopic := a.topicPerm(topic)
	if !isTopic { // a retry topic is its group's
		if p.allows(Sub) {
			return Decision{OK: true}
		}
		g, _ := retryGroup(topic)
		return deny(ReasonGroup, "No default permission for group:"+string(g), "group:"+string(g), Sub)
	}
	if p.allows(need) {
		return Decision{OK: true}
	}
	return deny(ReasonTopic, "No default permission for topic:"+string(topic), "topic:"+string(topic), need)
}

func checkGroup(a *Account, group []byte) Decision {
	if g, ok := retryGroup(group); ok {
		group = g
	}
	if a.groupPerm(group).allows(Sub) {
		return Decision{OK: true}
	}
	return deny(ReasonGroup, "No default permission for group:"+string(group), "group:"+string(group), Sub)
}

// checkHeartbeat: each consumer group needs SUB, and so does each topic it
// subscribes to; producer entries name no resource.
func checkHeartbeat(a *Account, body []byte) Decision {
	var hb wire.HeartbeatData
	if err := json.Unmarshal(body, &hb); err != nil {
		return deny(ReasonBadBody, "Heartbeat body is not valid JSON: "+err.Error(), "", 0)
	}
	for _, cd := range hb.ConsumerDataSet {
		if d := checkGroup(a, []byte(cd.GroupName)); !d.OK {
			return d
		}
		for _, sd := range cd.SubscriptionDataSet {
			if _, retry := retryGroup([]byte(sd.Topic)); retry {
				continue // its group was checked
			}
			if d := checkTopic(a, []byte(sd.Topic), Sub); !d.OK {
				return d
			}
		}
	}
	return Decision{OK: true}
}

func checkLockBatch(a *Account, body []byte) Decision {
	var lb wire.LockBatchRequestBody
	if err := json.Unmarshal(body, &lb); err != nil {
		return deny(ReasonBadBody, "Lock body is not valid JSON: "+err.Error(), "", 0)
	}
	if d := checkGroup(a, []byte(lb.ConsumerGroup)); !d.OK {
		return d
	}
	for _, mq := range lb.MqSet {
		if d := checkTopic(a, []byte(mq.Topic), Sub); !d.OK {
			return d
		}
	}
	return Decision{OK: true}
}
