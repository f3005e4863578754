package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// mqops-private request codes of the AMQP engine in the broker (9100–9199;
// RocketMQ's own codes stay below 1000, mqops' statistics use 10001+). The
// gateway (mqamqp) and mqadmin send them; bodies are JSON (below).
const (
	AMQPDeclareExchange int32 = 9100 // AMQP_DECLARE_EXCHANGE: AMQPExchangeDeclare → empty
	AMQPDeleteExchange  int32 = 9101 // AMQP_DELETE_EXCHANGE: AMQPExchangeDelete → empty
	AMQPBind            int32 = 9102 // AMQP_BIND: AMQPBinding → empty
	AMQPUnbind          int32 = 9103 // AMQP_UNBIND: AMQPBinding → empty
	AMQPDeclareQueue    int32 = 9104 // AMQP_DECLARE_QUEUE: AMQPQueueDeclare → AMQPQueueDeclareOk
	AMQPDeleteQueue     int32 = 9105 // AMQP_DELETE_QUEUE: AMQPQueueDelete → AMQPQueueDeleteOk
	AMQPList            int32 = 9106 // AMQP_LIST: AMQPListRequest → AMQPListing
	AMQPReleaseOwner    int32 = 9107 // AMQP_RELEASE_OWNER: AMQPOwner → empty; a gateway connection closed
	AMQPAddVhost        int32 = 9108 // AMQP_ADD_VHOST: AMQPVhostRequest → empty; creates the vhost and its store topic
	AMQPDeleteVhost     int32 = 9109 // AMQP_DELETE_VHOST: AMQPVhostRequest → empty; drops it, its queues and its store topic
	AMQPConsume         int32 = 9116 // AMQP_CONSUME: AMQPConsumer → AMQPConsumeOk; basic.consume registered
	AMQPCancel          int32 = 9117 // AMQP_CANCEL: AMQPConsumer → AMQPCancelOk; basic.cancel, channel closed
	AMQPLease           int32 = 9115 // AMQP_LEASE: AMQPLeaseRequest → AMQPLeaseOk; a gateway is alive (9110–9114: amqpmsg.go, 9120–9125: users)

	// AMQPException answers a request the engine refused as AMQP would:
	// the remark is the reply text ("NOT_FOUND - no queue 'q' in vhost '/'")
	// and extField AMQPReplyCodeField the reply code (404), which the
	// gateway sends on in channel.close or connection.close.
	AMQPException int32 = 9190
)

// AMQPReplyCodeField is the extField of an AMQPException answer holding
// the AMQP reply code.
const AMQPReplyCodeField = "replyCode"

// AMQPOwner is a gateway connection: exclusive queues belong to one.
type AMQPOwner struct {
	Gateway string `json:"gateway"`
	Conn    uint64 `json:"conn"`
}

// AMQPExchangeDeclare is exchange.declare.
type AMQPExchangeDeclare struct {
	Vhost      string    `json:"vhost"`
	Exchange   string    `json:"exchange"`
	Type       string    `json:"type"`
	Passive    bool      `json:"passive,omitempty"`
	Durable    bool      `json:"durable,omitempty"`
	AutoDelete bool      `json:"autoDelete,omitempty"`
	Internal   bool      `json:"internal,omitempty"`
	Arguments  AMQPTable `json:"arguments,omitempty"`
}

// AMQPExchangeDelete is exchange.delete.
type AMQPExchangeDelete struct {
	Vhost    string `json:"vhost"`
	Exchange string `json:"exchange"`
	IfUnused bool   `json:"ifUnused,omitempty"`
}

// AMQPBinding is queue.bind/unbind (destination a queue) or
// exchange.bind/unbind (ToExchange), from connection Owner.
type AMQPBinding struct {
	Vhost       string    `json:"vhost"`
	Source      string    `json:"source"`
	Destination string    `json:"destination"`
	ToExchange  bool      `json:"toExchange,omitempty"`
	RoutingKey  string    `json:"routingKey"`
	Arguments   AMQPTable `json:"arguments,omitempty"`
	Owner       AMQPOwner `json:"owner"`
}

// AMQPQueueDeclare is queue.declare from connection Owner. ReplyTo asks
// instead for a new direct reply-to queue of Owner (the other fields but
// Vhost are ignored): named AMQPReplyTo + "." + a random suffix, transient
// and exclusive, so the default exchange routes replies to it from any
// gateway and it goes with its connection.
type AMQPQueueDeclare struct {
	Vhost      string    `json:"vhost"`
	Queue      string    `json:"queue"`
	Passive    bool      `json:"passive,omitempty"`
	Durable    bool      `json:"durable,omitempty"`
	Exclusive  bool      `json:"exclusive,omitempty"`
	AutoDelete bool      `json:"autoDelete,omitempty"`
	Arguments  AMQPTable `json:"arguments,omitempty"`
	Owner      AMQPOwner `json:"owner"`
	ReplyTo    bool      `json:"replyTo,omitempty"`
}

// AMQPReplyTo is RabbitMQ's direct reply-to pseudo-queue
// (https://www.rabbitmq.com/docs/direct-reply-to); the queues replies
// travel through are named with it, a dot and a suffix.
const AMQPReplyTo = "amq.rabbitmq.reply-to"

// IsAMQPReplyQueue reports a direct reply-to queue's name
// (AMQPReplyTo + "." + suffix).
func IsAMQPReplyQueue(name string) bool {
	return len(name) > len(AMQPReplyTo)+1 && name[:len(AMQPReplyTo)+1] == AMQPReplyTo+"."
}

// AMQPQueueDeclareOk answers AMQPQueueDeclare: the queue's name (server
// generated for an empty one), its numeric id, and the counts of
// queue.declare-ok.
type AMQPQueueDeclareOk struct {
	Queue         string `json:"queue"`
	ID            uint64 `json:"id"`
	MessageCount  uint32 `json:"messageCount"`
	ConsumerCount uint32 `json:"consumerCount"`
}

// AMQPConsumer is basic.consume (AMQP_CONSUME) of consumer Tag on the
// gateway channel Session of connection Owner, or its end (AMQP_CANCEL; an
// empty Tag ends every consumer of Session, Queue unused).
type AMQPConsumer struct {
	Vhost     string    `json:"vhost"`
	Queue     string    `json:"queue,omitempty"`
	Session   string    `json:"session"`
	Tag       string    `json:"tag,omitempty"`
	Exclusive bool      `json:"exclusive,omitempty"`
	Owner     AMQPOwner `json:"owner"`
}

// AMQPLeaseRequest renews gateway Gateway's lease with the broker. When it runs
// out (AMQPLeaseOk.TTLMillis after the last renewal) the broker ends what
// the gateway's connections held: consumers, exclusive queues, in-flight
// deliveries.
type AMQPLeaseRequest struct {
	Gateway string `json:"gateway"`
}

// AMQPLeaseOk answers AMQP_LEASE.
type AMQPLeaseOk struct {
	TTLMillis int64 `json:"ttlMillis"`
	// Epoch names the answering engine's life: it changes when the broker
	// restarts (or the vhost's home moves), which forgot the gateway's
	// consumers; the gateway then registers them again. 0 from a broker
	// without it.
	Epoch int64 `json:"epoch,omitempty"`
}

// AMQPConsumeOk answers AMQP_CONSUME: the queue's consumers now.
type AMQPConsumeOk struct {
	ConsumerCount uint32 `json:"consumerCount"`
	Epoch         int64  `json:"epoch,omitempty"` // as AMQPLeaseOk's
}

// AMQPCancelOk answers AMQP_CANCEL: the auto-delete queues deleted as
// their last consumer went.
type AMQPCancelOk struct {
	Deleted []string `json:"deleted,omitempty"`
}

// AMQPQueueDelete is queue.delete from connection Owner.
type AMQPQueueDelete struct {
	Vhost    string    `json:"vhost"`
	Queue    string    `json:"queue"`
	IfUnused bool      `json:"ifUnused,omitempty"`
	IfEmpty  bool      `json:"ifEmpty,omitempty"`
	Owner    AMQPOwner `json:"owner"`
}

// AMQPQueueDeleteOk answers AMQPQueueDelete (queue.delete-ok).
type AMQPQueueDeleteOk struct {
	MessageCount uint32 `json:"messageCount"`
}

// AMQPListRequest asks for one vhost's metadata; an empty Vhost lists the
// vhost names only.
type AMQPListRequest struct {
	Vhost string `json:"vhost,omitempty"`
}

// AMQPListing answers AMQP_LIST.
type AMQPListing struct {
	Vhosts    []string           `json:"vhosts,omitempty"`
	Vhost     string             `json:"vhost,omitempty"`
	Version   uint64             `json:"version,omitempty"`
	Exchanges []AMQPExchangeInfo `json:"exchanges,omitempty"`
	Queues    []AMQPQueueInfo    `json:"queues,omitempty"`
	Bindings  []AMQPBindingInfo  `json:"bindings,omitempty"`
}

// AMQPExchangeInfo is one exchange in a listing.
type AMQPExchangeInfo struct {
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	Durable    bool      `json:"durable"`
	AutoDelete bool      `json:"autoDelete"`
	Internal   bool      `json:"internal"`
	Arguments  AMQPTable `json:"arguments,omitempty"`
}

// AMQPQueueInfo is one queue in a listing; Owner is set for exclusive
// queues. The rest is the queue's state on its broker: where its messages
// are (light queue LMQ, consumer group Group, whose consumeEnable and
// consumeRateLimit pause and cap its deliveries), its counts, and running
// totals for rates.
type AMQPQueueInfo struct {
	Name          string     `json:"name"`
	ID            uint64     `json:"id"`
	Durable       bool       `json:"durable"`
	AutoDelete    bool       `json:"autoDelete"`
	Owner         *AMQPOwner `json:"owner,omitempty"`
	Arguments     AMQPTable  `json:"arguments,omitempty"`
	CreatedMillis int64      `json:"createdMillis"`

	LMQ   string `json:"lmq,omitempty"`
	Group string `json:"group,omitempty"`
	// Paused is the group's consumeEnable=false; RateLimit its
	// consumeRateLimit (deliveries per second, 0: none).
	Paused    bool   `json:"paused"`
	RateLimit int    `json:"rateLimit,omitempty"`
	Ready     uint32 `json:"ready"`
	Unacked   uint32 `json:"unacked"`
	// Consumers counts the gateway channels consuming the queue: those
	// that asked for messages within the last 30 s or hold unacked ones.
	Consumers uint32 `json:"consumers"`
	// Published counts the messages ever stored for the queue (its light
	// queue's end offset: requeued copies count again); Delivered (of
	// which Redelivered were marked redelivered) and Acked count since
	// the broker started.
	Published   uint64 `json:"published"`
	Delivered   uint64 `json:"delivered"`
	Redelivered uint64 `json:"redelivered"`
	Acked       uint64 `json:"acked"`
}

// AMQPVhostRequest names a vhost to add or delete.
type AMQPVhostRequest struct {
	Vhost string `json:"vhost"`
}

// AMQPBindingInfo is one binding in a listing.
type AMQPBindingInfo struct {
	Source      string    `json:"source"`
	Destination string    `json:"destination"`
	ToExchange  bool      `json:"toExchange"`
	RoutingKey  string    `json:"routingKey"`
	Arguments   AMQPTable `json:"arguments,omitempty"`
}

// AMQPTable is an AMQP field table as the codec decodes it (bool, int8,
// uint8, int16, uint16, int32, uint32, int64, float32, float64, string,
// []byte, []any, time.Time, map[string]any, nil). In JSON it takes the
// tagged form below, so that it arrives with the same Go types.
type AMQPTable map[string]any

// MarshalJSON writes the tagged form.
func (t AMQPTable) MarshalJSON() ([]byte, error) { return EncodeAMQPTable(t) }

// UnmarshalJSON reads the tagged form.
func (t *AMQPTable) UnmarshalJSON(b []byte) error {
	m, err := DecodeAMQPTable(b)
	*t = m
	return err
}

// Tagged JSON: each value is a two-element array [tag, value] where tag is
// the AMQP field-type letter (AMQP 0-9-1 errata field table), so that a
// table read back from disk has the same Go types as the one declared.
// Floats are strings (exact, and NaN/Inf survive); timestamps RFC 3339.

// EncodeAMQPTable returns the tagged JSON form of a table; keys are sorted, so
// equal tables encode to equal bytes.
func EncodeAMQPTable(a map[string]any) (json.RawMessage, error) {
	if len(a) == 0 {
		return json.RawMessage("{}"), nil
	}
	var b bytes.Buffer
	if err := encodeTable(&b, a); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func encodeTable(b *bytes.Buffer, a map[string]any) error {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(b, k)
		b.WriteByte(':')
		if err := encodeValue(b, a[k]); err != nil {
			return fmt.Errorf("argument '%s': %w", k, err)
		}
	}
	b.WriteByte('}')
	return nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	j, _ := json.Marshal(s) // a string always marshals
	b.Write(j)
}

func encodeValue(b *bytes.Buffer, v any) error {
	tagged := func(tag, val string) {
		b.WriteString(`["`)
		b.WriteString(tag)
		b.WriteString(`",`)
		b.WriteString(val)
		b.WriteByte(']')
	}
	quoted := func(s string) string {
		j, _ := json.Marshal(s)
		return string(j)
	}
	switch x := v.(type) {
	case nil:
		b.WriteString(`["V"]`)
	case bool:
		tagged("t", strconv.FormatBool(x))
	case int8:
		tagged("b", strconv.FormatInt(int64(x), 10))
	case uint8:
		tagged("B", strconv.FormatUint(uint64(x), 10))
	case int16:
		tagged("s", strconv.FormatInt(int64(x), 10))
	case uint16:
		tagged("u", strconv.FormatUint(uint64(x), 10))
	case int32:
		tagged("I", strconv.FormatInt(int64(x), 10))
	case uint32:
		tagged("i", strconv.FormatUint(uint64(x), 10))
	case int64:
		tagged("l", strconv.FormatInt(x, 10))
	case float32:
		tagged("f", quoted(strconv.FormatFloat(float64(x), 'g', -1, 32)))
	case float64:
		tagged("d", quoted(strconv.FormatFloat(x, 'g', -1, 64)))
	case string:
		tagged("S", quoted(x))
	case []byte:
		tagged("x", quoted(base64.StdEncoding.EncodeToString(x)))
	case time.Time:
		tagged("T", quoted(x.Format(time.RFC3339Nano)))
	case []any:
		b.WriteString(`["A",[`)
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := encodeValue(b, e); err != nil {
				return err
			}
		}
		b.WriteString(`]]`)
	case map[string]any:
		b.WriteString(`["F",`)
		if err := encodeTable(b, x); err != nil {
			return err
		}
		b.WriteByte(']')
	default:
		return fmt.Errorf("unsupported value type %T", v)
	}
	return nil
}

// DecodeAMQPTable parses the tagged JSON form; an empty table decodes to nil.
func DecodeAMQPTable(raw []byte) (map[string]any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("arguments: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[string]any, len(m))
	for k, r := range m {
		v, err := decodeValue(r)
		if err != nil {
			return nil, fmt.Errorf("argument '%s': %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

func decodeValue(raw json.RawMessage) (any, error) {
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil || len(parts) == 0 {
		return nil, fmt.Errorf("value %s is not a [type, value] pair", raw)
	}
	var tag string
	if err := json.Unmarshal(parts[0], &tag); err != nil {
		return nil, fmt.Errorf("value %s: type tag: %w", raw, err)
	}
	if tag == "V" {
		if len(parts) != 1 {
			return nil, fmt.Errorf("void value %s carries a value", raw)
		}
		return nil, nil
	}
	if len(parts) != 2 {
		return nil, fmt.Errorf("value %s is not a [type, value] pair", raw)
	}
	p := parts[1]
	str := func() (string, error) {
		var s string
		err := json.Unmarshal(p, &s)
		return s, err
	}
	integer := func(bits int) (int64, error) { return strconv.ParseInt(string(p), 10, bits) }
	unsigned := func(bits int) (uint64, error) { return strconv.ParseUint(string(p), 10, bits) }
	var v any
	var err error
	switch tag {
	case "t":
		var x bool
		err = json.Unmarshal(p, &x)
		v = x
	case "b":
		var n int64
		n, err = integer(8)
		v = int8(n)
	case "B":
		var n uint64
		n, err = unsigned(8)
		v = uint8(n)
	case "s":
		var n int64
		n, err = integer(16)
		v = int16(n)
	case "u":
		var n uint64
		n, err = unsigned(16)
		v = uint16(n)
	case "I":
		var n int64
		n, err = integer(32)
		v = int32(n)
	case "i":
		var n uint64
		n, err = unsigned(32)
		v = uint32(n)
	case "l":
		v, err = integer(64)
	case "f", "d":
		var s string
		if s, err = str(); err == nil {
			bits := 64
			if tag == "f" {
				bits = 32
			}
			var f float64
			if f, err = strconv.ParseFloat(s, bits); err == nil {
				if tag == "f" {
					v = float32(f)
				} else {
					v = f
				}
			}
		}
	case "S":
		v, err = str()
	case "x":
		var s string
		if s, err = str(); err == nil {
			v, err = base64.StdEncoding.DecodeString(s)
		}
	case "T":
		var s string
		if s, err = str(); err == nil {
			v, err = time.Parse(time.RFC3339Nano, s)
		}
	case "A":
		var elems []json.RawMessage
		if err = json.Unmarshal(p, &elems); err == nil {
			arr := make([]any, len(elems))
			for i, e := range elems {
				if arr[i], err = decodeValue(e); err != nil {
					break
				}
			}
			v = arr
		}
	case "F":
		var t map[string]any
		if t, err = DecodeAMQPTable(p); err == nil {
			if t == nil {
				t = map[string]any{}
			}
			v = t
		}
	default:
		return nil, fmt.Errorf("value %s: unknown type tag %q", raw, tag)
	}
	if err != nil {
		return nil, fmt.Errorf("value %s: %w", raw, err)
	}
	return v, nil
}

// AMQPStoreTopic is the store topic of a vhost, "<ns>%AMQP_STORE": its
// name-server route names the vhost's home broker. Vhost "/" has no
// namespace; another name keeps [A-Za-z0-9_-], turns other bytes into '_'
// and, when it had to change anything, gets the first 6 hex digits of the
// name's SHA-256 so that two names cannot fold into one namespace.
func AMQPStoreTopic(vhost string) string {
	const store = "AMQP_STORE"
	if vhost == "/" {
		return store
	}
	ns := []byte(vhost)
	altered := len(ns) == 0
	for i, c := range ns {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			ns[i], altered = '_', true
		}
	}
	if altered {
		sum := sha256.Sum256([]byte(vhost))
		ns = fmt.Appendf(ns, "_%x", sum[:3])
	}
	return string(ns) + "%" + store
}

// AMQP users and their vhost permissions (RabbitMQ's internal user
// database), kept by the engine of the default vhost's home broker: the
// gateway checks each login there, mqadmin manages them.
const (
	AMQPAuthenticate    int32 = 9120 // AMQP_AUTHENTICATE: AMQPLogin → AMQPUserAccess; 403 for a bad login
	AMQPListUsers       int32 = 9121 // AMQP_LIST_USERS: AMQPUserListRequest (or empty) → AMQPUserList
	AMQPPutUser         int32 = 9122 // AMQP_PUT_USER: AMQPUserPut → empty (add, or change password/tags)
	AMQPDeleteUser      int32 = 9123 // AMQP_DELETE_USER: AMQPUserRef → empty
	AMQPSetPermissions  int32 = 9124 // AMQP_SET_PERMISSIONS: AMQPPermissionSet → empty
	AMQPClearPermission int32 = 9125 // AMQP_CLEAR_PERMISSIONS: AMQPPermissionSet (user, vhost) → empty
)

// AMQPLogin is a login the gateway received (PLAIN or AMQPLAIN).
type AMQPLogin struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// AMQPPermission is one vhost's configure, write and read regular
// expressions (RabbitMQ's set_permissions; "" matches nothing).
type AMQPPermission struct {
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

// AMQPUserAccess is what a login may do: its tags and, per vhost, its
// permissions (no entry: no access to that vhost).
type AMQPUserAccess struct {
	User        string                    `json:"user"`
	Tags        []string                  `json:"tags,omitempty"`
	Permissions map[string]AMQPPermission `json:"permissions,omitempty"`
	// PasswordHash is set in AMQP_LIST_USERS answers to requests that ask
	// for it (a definitions export), never at login.
	PasswordHash string `json:"passwordHash,omitempty"`
}

// AMQPUserListRequest is AMQP_LIST_USERS: PasswordHashes asks for each
// user's RabbitMQ-format hash too (an admin's definitions export; the
// code is admin-only under ACL). An empty body asks for none.
type AMQPUserListRequest struct {
	PasswordHashes bool `json:"passwordHashes,omitempty"`
}

// AMQPUserList lists the users, with their password hashes only when
// asked.
type AMQPUserList struct {
	Users []AMQPUserAccess `json:"users"`
}

// AMQPUserPut adds a user or changes one: Password set changes it
// (PasswordHash, RabbitMQ's SHA-256 definition format, instead imports
// one); Tags replace the user's tags.
type AMQPUserPut struct {
	User         string   `json:"user"`
	Password     string   `json:"password,omitempty"`
	PasswordHash string   `json:"passwordHash,omitempty"`
	Tags         []string `json:"tags,omitempty"`
}

// AMQPUserRef names a user.
type AMQPUserRef struct {
	User string `json:"user"`
}

// AMQPPermissionSet sets (or, for AMQP_CLEAR_PERMISSIONS, clears) one
// user's permissions in one vhost.
type AMQPPermissionSet struct {
	User  string `json:"user"`
	Vhost string `json:"vhost"`
	AMQPPermission
}
