package acl

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/mqops/mqops/wire"
)

// kind says what a request code needs besides a valid signature.
type kind uint8

const (
	authOnly      kind = iota // a valid signature (and account) is enough
	open                      // no check at all: name-server reads
	adminOnly                 // an admin account
	sendTopic                 // PUB on topicField; a %RETRY% topic needs SUB on its group
	subTopic                  // SUB on topicField
	subGroup                  // SUB on groupField (skipped when the field is absent)
	subTopicGroup             // SUB on topicField (skipped for retry topics) and groupField
	heartbeat                 // per consumer group in the body: SUB group and each subscribed topic
	lockBatch                 // body consumerGroup and each queue's topic: SUB
	afterLookup               // authenticated here; the handler authorizes the looked-up topic
	amqpPub                   // PUB on the store topic of the vhost in topicField (AMQP publish)
	amqpSub                   // SUB on it (AMQP fetch, settle, release, list)
	amqpConf                  // PUB and SUB on it (AMQP declare, delete, bind, purge: RabbitMQ's configure)
)

var kindNames = [...]string{"authenticate", "open", "admin", "PUB topic", "SUB topic", "SUB group", "SUB topic+group", "SUB groups+topics (body)", "SUB group+topics (body)", "after lookup (handler)", "PUB vhost store topic", "SUB vhost store topic", "PUB+SUB vhost store topic"}

// rule is one row of a daemon's table.
type rule struct {
	name       string
	kind       kind
	topicField string
	groupField string
}

// Table maps request codes to what they need. Codes not listed need a
// valid signature only (authOnly) on a broker, nothing on a name server.
type Table struct {
	role     string
	rules    map[int32]rule
	fallback kind
	// index is rules by pointer, so that a request's check copies no
	// rule: low codes (all but the AMQP ones) in a slice, unlisted ones
	// pointing at other; the rest in a map. Built by init.
	index struct {
		low   []*rule
		high  map[int32]*rule
		other rule
	}
}

// lowCodes bounds the codes the index holds in a slice.
const lowCodes = 1024

func init() {
	for _, t := range []*Table{BrokerTable, NamesrvTable, ControllerTable} {
		t.buildIndex()
	}
}

func (t *Table) buildIndex() {
	ix := &t.index
	ix.other = rule{kind: t.fallback}
	ix.high = map[int32]*rule{}
	ix.low = make([]*rule, lowCodes)
	for i := range ix.low {
		ix.low[i] = &ix.other
	}
	for code, r := range t.rules {
		if code >= 0 && code < lowCodes {
			ix.low[code] = &r
		} else {
			ix.high[code] = &r
		}
	}
}

// BrokerTable is the broker's table: RocketMQ 4.9's
// PlainAccessValidator.parse (apache/rocketmq acl/src/main/java/org/apache/
// rocketmq/acl/plain/PlainAccessValidator.java) extended to the codes it
// leaves unchecked (batch sends, replies, offsets, locks, transactions),
// and an admin-only set that also covers offset resets, ACL changes and
// write-permission changes, which 4.9 lets any signed account do.
var BrokerTable = &Table{role: "broker", fallback: authOnly, rules: map[int32]rule{
	10:  {"SEND_MESSAGE", sendTopic, "topic", ""},
	310: {"SEND_MESSAGE_V2", sendTopic, "b", ""},
	320: {"SEND_BATCH_MESSAGE", sendTopic, "b", ""},
	324: {"SEND_REPLY_MESSAGE", sendTopic, "topic", ""},
	325: {"SEND_REPLY_MESSAGE_V2", sendTopic, "b", ""},
	36:  {"CONSUMER_SEND_MSG_BACK", subGroup, "", "group"},
	11:  {"PULL_MESSAGE", subTopicGroup, "topic", "consumerGroup"},
	12:  {"QUERY_MESSAGE", subTopic, "topic", ""},
	33:  {"VIEW_MESSAGE_BY_ID", afterLookup, "", ""},
	34:  {"HEART_BEAT", heartbeat, "", ""},
	35:  {"UNREGISTER_CLIENT", subGroup, "", "consumerGroup"},
	38:  {"GET_CONSUMER_LIST_BY_GROUP", subGroup, "", "consumerGroup"},
	14:  {"QUERY_CONSUMER_OFFSET", subTopicGroup, "topic", "consumerGroup"},
	15:  {"UPDATE_CONSUMER_OFFSET", subTopicGroup, "topic", "consumerGroup"},
	29:  {"SEARCH_OFFSET_BY_TIMESTAMP", subTopic, "topic", ""},
	30:  {"GET_MAX_OFFSET", subTopic, "topic", ""},
	31:  {"GET_MIN_OFFSET", subTopic, "topic", ""},
	32:  {"GET_EARLIEST_MSG_STORETIME", subTopic, "topic", ""},
	41:  {"LOCK_BATCH_MQ", lockBatch, "", ""},
	42:  {"UNLOCK_BATCH_MQ", lockBatch, "", ""},
	37:  {"END_TRANSACTION", afterLookup, "", ""},
	17:  {"UPDATE_AND_CREATE_TOPIC", adminOnly, "", ""},
	18:  {"UPDATE_AND_CREATE_TOPIC_LIST", adminOnly, "", ""},
	25:  {"UPDATE_BROKER_CONFIG", adminOnly, "", ""},
	200: {"UPDATE_AND_CREATE_SUBSCRIPTIONGROUP", adminOnly, "", ""},
	225: {"UPDATE_AND_CREATE_SUBSCRIPTIONGROUP_LIST", adminOnly, "", ""},
	207: {"DELETE_SUBSCRIPTIONGROUP", adminOnly, "", ""},
	215: {"DELETE_TOPIC_IN_BROKER", adminOnly, "", ""},
	50:  {"UPDATE_AND_CREATE_ACL_CONFIG", adminOnly, "", ""},
	51:  {"DELETE_ACL_CONFIG", adminOnly, "", ""},
	52:  {"GET_BROKER_CLUSTER_ACL_INFO", adminOnly, "", ""},
	53:  {"UPDATE_GLOBAL_WHITE_ADDRS_CONFIG", adminOnly, "", ""},
	54:  {"GET_BROKER_CLUSTER_ACL_CONFIG", adminOnly, "", ""},
	212: {"CLONE_GROUP_OFFSET", adminOnly, "", ""},
	222: {"INVOKE_BROKER_TO_RESET_OFFSET", adminOnly, "", ""},
	306: {"UPDATE_CONSUME_OFFSET_FROM_BROKER", adminOnly, "", ""},
	314: {"RESUME_CHECK_HALF_MESSAGE", adminOnly, "", ""},
	316: {"CLEAN_UNUSED_TOPIC", adminOnly, "", ""},
	323: {"CLEAN_EXPIRED_CONSUMEQUEUE", adminOnly, "", ""},
	329: {"UPDATE_AND_GET_GROUP_FORBIDDEN", adminOnly, "", ""},
	// Vhosts are created and dropped by operators (mqadmin amqp vhost).
	9108: {"AMQP_ADD_VHOST", adminOnly, "", ""},
	9109: {"AMQP_DELETE_VHOST", adminOnly, "", ""},
	// AMQP users are managed by operators; a gateway's login check
	// (AMQP_AUTHENTICATE, 9120) needs only a signed account.
	9121: {"AMQP_LIST_USERS", adminOnly, "", ""},
	9122: {"AMQP_PUT_USER", adminOnly, "", ""},
	9123: {"AMQP_DELETE_USER", adminOnly, "", ""},
	9124: {"AMQP_SET_PERMISSIONS", adminOnly, "", ""},
	9125: {"AMQP_CLEAR_PERMISSIONS", adminOnly, "", ""},
	// A forged role change would turn a master into a slave; controllers
	// sign it with their inner credential.
	1008: {"NOTIFY_BROKER_ROLE_CHANGED", adminOnly, "", ""},
	// The AMQP engine (wire/amqpmeta.go, wire/amqpmsg.go), signed by the
	// gateway's account with the vhost in an extField: an account's
	// permission on a vhost is its permission on the vhost's store topic
	// ("AMQP_STORE" for "/", "<ns>%AMQP_STORE" otherwise). Changing the
	// topology needs both, as RabbitMQ's configure permission is separate
	// from write and read.
	9100: {"AMQP_DECLARE_EXCHANGE", amqpConf, "vhost", ""},
	9101: {"AMQP_DELETE_EXCHANGE", amqpConf, "vhost", ""},
	9102: {"AMQP_BIND", amqpConf, "vhost", ""},
	9103: {"AMQP_UNBIND", amqpConf, "vhost", ""},
	9104: {"AMQP_DECLARE_QUEUE", amqpConf, "vhost", ""},
	9105: {"AMQP_DELETE_QUEUE", amqpConf, "vhost", ""},
	9106: {"AMQP_LIST", amqpSub, "vhost", ""},
	9107: {"AMQP_RELEASE_OWNER", amqpSub, "vhost", ""}, // ends what the connection held, consumers included
	9116: {"AMQP_CONSUME", amqpSub, "vhost", ""},
	9117: {"AMQP_CANCEL", amqpSub, "vhost", ""},
	9110: {"AMQP_PUBLISH", amqpPub, "vhost", ""},
	9111: {"AMQP_FETCH", amqpSub, "vhost", ""},
	9112: {"AMQP_SETTLE", amqpSub, "vhost", ""},
	9113: {"AMQP_RELEASE", amqpSub, "vhost", ""},
	9114: {"AMQP_PURGE", amqpConf, "vhost", ""},
	9115: {"AMQP_LEASE", amqpSub, "vhost", ""},
}}

// NamesrvTable is the name server's: RocketMQ's name server checks
// nothing; here route and cluster reads stay open (rocketmq-client-go
// v2.1.2's pull consumer and admin client never sign them) and every code
// that changes routes or settings needs an admin account.
var NamesrvTable = &Table{role: "namesrv", fallback: open, rules: map[int32]rule{
	100: {"PUT_KV_CONFIG", adminOnly, "", ""},
	102: {"DELETE_KV_CONFIG", adminOnly, "", ""},
	103: {"REGISTER_BROKER", adminOnly, "", ""},
	104: {"UNREGISTER_BROKER", adminOnly, "", ""},
	205: {"WIPE_WRITE_PERM_OF_BROKER", adminOnly, "", ""},
	216: {"DELETE_TOPIC_IN_NAMESRV", adminOnly, "", ""},
	217: {"REGISTER_TOPIC_IN_NAMESRV", adminOnly, "", ""},
	318: {"UPDATE_NAMESRV_CONFIG", adminOnly, "", ""},
	327: {"ADD_WRITE_PERM_OF_BROKER", adminOnly, "", ""},
}}

// ControllerTable is a controller's (mqcontroller with aclEnable):
// RocketMQ 5's controller checks nothing. Reads stay open, as on the name
// server (mqadmin's ha and controller reads); every code that changes the
// replicated state, a broker's liveness or the node's settings needs an
// admin account, so brokers sign them with innerClientAuthenticationCredentials.
// A forged heartbeat keeps a dead master alive or wins an election.
var ControllerTable = &Table{role: "controller", fallback: open, rules: map[int32]rule{
	904:  {"BROKER_HEARTBEAT", adminOnly, "", ""},
	1001: {"CONTROLLER_ALTER_SYNC_STATE_SET", adminOnly, "", ""},
	1002: {"CONTROLLER_ELECT_MASTER", adminOnly, "", ""},
	1003: {"CONTROLLER_REGISTER_BROKER", adminOnly, "", ""},
	1009: {"UPDATE_CONTROLLER_CONFIG", adminOnly, "", ""},
	1011: {"CLEAN_BROKER_DATA", adminOnly, "", ""},
	1013: {"CONTROLLER_APPLY_BROKER_ID", adminOnly, "", ""},
}}

func (t *Table) lookup(code int32) *rule {
	if uint32(code) < lowCodes {
		return t.index.low[code]
	}
	if r := t.index.high[code]; r != nil {
		return r
	}
	return &t.index.other
}

// Name is a code's RocketMQ name when the table lists it.
func (t *Table) Name(code int32) string {
	if r, ok := t.rules[code]; ok {
		return r.name
	}
	return "CODE_" + fmt.Sprint(code)
}

// Print writes the table, one code per line, and what other codes need.
func (t *Table) Print(w io.Writer) {
	codes := make([]int32, 0, len(t.rules))
	for c := range t.rules {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "CODE\tREQUEST\tNEEDS (%s)\n", t.role)
	for _, c := range codes {
		r := t.rules[c]
		fmt.Fprintf(tw, "%d\t%s\t%s\n", c, r.name, kindNames[r.kind])
	}
	fmt.Fprintf(tw, "*\tother codes\t%s\n", kindNames[t.fallback])
	_ = tw.Flush()
}

// SampleRequest builds a request of code naming topic and group where the
// code's rule reads them (header fields, or the body for heartbeats and
// queue locks), for checking a decision offline (mqadmin acl check).
func (t *Table) SampleRequest(code int32, topic, group string) *wire.Command {
	r := t.lookup(code)
	fields := map[string]string{}
	var body []byte
	switch r.kind {
	case heartbeat:
		hb := wire.HeartbeatData{ClientID: "acl-check"}
		if group != "" {
			cd := wire.ConsumerData{GroupName: group}
			if topic != "" {
				cd.SubscriptionDataSet = []wire.SubscriptionData{{Topic: topic}}
			}
			hb.ConsumerDataSet = []wire.ConsumerData{cd}
		}
		body, _ = json.Marshal(hb)
	case lockBatch:
		lb := wire.LockBatchRequestBody{ClientID: "acl-check", ConsumerGroup: group}
		if topic != "" {
			lb.MqSet = []wire.MessageQueue{{Topic: topic}}
		}
		body, _ = json.Marshal(lb)
	default:
		if r.topicField != "" && topic != "" {
			fields[r.topicField] = topic
		}
		if r.groupField != "" && group != "" {
			fields[r.groupField] = group
		}
	}
	return wire.NewRequest(code, fields, body)
}

// Needs says what code needs besides a valid signature, in words.
func (t *Table) Needs(code int32) string { return kindNames[t.lookup(code).kind] }

// Decide is Check for account ak with its signature taken as valid and no
// white list: the decision mqadmin acl check prints from a rules file.
func (c *Checker) Decide(ak string, req *wire.Command) Decision {
	r := c.table.lookup(req.Code)
	if r.kind == open {
		return Decision{OK: true}
	}
	a := c.snap.Load().Accounts[ak]
	if a == nil {
		return deny(ReasonUnknownAccount, "No acl config for "+ak, "", 0)
	}
	return c.permit(nil, a, r, req)
}
