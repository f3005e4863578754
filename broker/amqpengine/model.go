package amqpengine

import (
	"strings"
	"time"
)

// Exchange types (AMQP 0-9-1 §3.1.3; RabbitMQ's four built-ins).
const (
	Direct  = "direct"
	Fanout  = "fanout"
	Topic   = "topic"
	Headers = "headers"
)

// Owner identifies the connection that owns an exclusive queue: the
// gateway's id and its connection id. The zero Owner owns nothing.
type Owner struct {
	Gateway string
	Conn    uint64
}

// IsZero reports the zero Owner (no connection).
func (o Owner) IsZero() bool { return o == Owner{} }

type exchange struct {
	name       string
	kind       string
	durable    bool
	autoDelete bool
	internal   bool
	builtin    bool // predeclared: not persisted, not deletable
	args       Args
	alternate  string // "alternate-exchange" argument

	out []*binding // bindings with this exchange as source
	in  []*binding // e2e bindings with this exchange as destination

	direct map[string][]*binding // direct: routing key → bindings
	topic  *topicNode            // topic: binding-key trie
}

type queue struct {
	name       string
	id         uint64
	slot       int32 // dense index for the router's seen-set
	durable    bool
	autoDelete bool
	owner      Owner
	args       Args
	feat       *features // parsed from args
	created    time.Time
	in         []*binding
}

type binding struct {
	src     *exchange
	q       *queue    // destination queue, or
	x       *exchange // destination exchange
	key     string
	args    Args
	argsKey string // tagged JSON of args: part of the binding's identity
	match   *headersMatch
}

func (b *binding) destName() string {
	if b.q != nil {
		return b.q.name
	}
	return b.x.name
}

func (b *binding) durable() bool {
	if b.q != nil {
		return b.src.durable && b.q.durable
	}
	return b.src.durable && b.x.durable
}

type bindingID struct {
	src, dest string
	toX       bool
	key, args string
}

func (b *binding) id() bindingID {
	return bindingID{src: b.src.name, dest: b.destName(), toX: b.x != nil, key: b.key, args: b.argsKey}
}

// ExchangeInfo describes an exchange (List, DeclareExchange).
type ExchangeInfo struct {
	Name       string
	Type       string
	Durable    bool
	AutoDelete bool
	Internal   bool
	Args       Args
}

// QueueInfo describes a queue.
type QueueInfo struct {
	Name       string
	ID         uint64
	Durable    bool
	Exclusive  bool
	Owner      Owner
	AutoDelete bool
	Args       Args
	Created    time.Time

	feat *features
}

// BindingInfo describes a binding; ToExchange marks an e2e binding.
type BindingInfo struct {
	Source      string
	Destination string
	ToExchange  bool
	RoutingKey  string
	Args        Args
}

func (x *exchange) info() ExchangeInfo {
	return ExchangeInfo{Name: x.name, Type: x.kind, Durable: x.durable, AutoDelete: x.autoDelete, Internal: x.internal, Args: x.args}
}

func (q *queue) info() QueueInfo {
	return QueueInfo{Name: q.name, ID: q.id, Durable: q.durable, Exclusive: !q.owner.IsZero(), Owner: q.owner,
		AutoDelete: q.autoDelete, Args: q.args, Created: q.created, feat: q.feat}
}

func (b *binding) info() BindingInfo {
	return BindingInfo{Source: b.src.name, Destination: b.destName(), ToExchange: b.x != nil, RoutingKey: b.key, Args: b.args}
}

func reservedName(name string) bool { return strings.HasPrefix(name, "amq.") }

func validType(t string) bool {
	switch t {
	case Direct, Fanout, Topic, Headers:
		return true
	}
	return false
}

// predeclared are the exchanges every vhost has (AMQP 0-9-1 errata §20).
var predeclared = []struct{ name, kind string }{
	{"", Direct}, {"amq.direct", Direct}, {"amq.fanout", Fanout},
	{"amq.topic", Topic}, {"amq.headers", Headers}, {"amq.match", Headers},
}

func newExchange(name, kind string, durable, autoDelete, internal bool, args Args) *exchange {
	x := &exchange{name: name, kind: kind, durable: durable, autoDelete: autoDelete, internal: internal, args: args}
	if ae, ok := args["alternate-exchange"].(string); ok {
		x.alternate = ae
	}
	switch kind {
	case Direct:
		x.direct = make(map[string][]*binding)
	case Topic:
		x.topic = &topicNode{}
	}
	return x
}

// link adds b to the indexes of its source and destination.
func (b *binding) link() {
	x := b.src
	x.out = append(x.out, b)
	switch x.kind {
	case Direct:
		x.direct[b.key] = append(x.direct[b.key], b)
	case Topic:
		x.topic.add(b)
	}
	if b.q != nil {
		b.q.in = append(b.q.in, b)
	} else {
		b.x.in = append(b.x.in, b)
	}
}

// unlink removes b from the indexes link added it to.
func (b *binding) unlink() {
	x := b.src
	x.out = without(x.out, b)
	switch x.kind {
	case Direct:
		if l := without(x.direct[b.key], b); len(l) > 0 {
			x.direct[b.key] = l
		} else {
			delete(x.direct, b.key)
		}
	case Topic:
		x.topic.remove(b)
	}
	if b.q != nil {
		b.q.in = without(b.q.in, b)
	} else {
		b.x.in = without(b.x.in, b)
	}
}

// without removes b from l in place (order kept: listings stay stable).
func without(l []*binding, b *binding) []*binding {
	for i, e := range l {
		if e == b {
			copy(l[i:], l[i+1:])
			l[len(l)-1] = nil
			return l[:len(l)-1]
		}
	}
	return l
}
