package amqpengine

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"github.com/mqops/mqops/wire"
	"sort"
	"strings"
	"sync"
	"time"
)

// Vhost is one virtual host's metadata. Its mutex serialises declares,
// binds and deletes from every gateway (the broker is the single writer);
// routing takes the read lock.
type Vhost struct {
	name string
	id   string
	p    *persister

	mu        sync.RWMutex
	exchanges map[string]*exchange
	queues    map[string]*queue
	bindings  map[bindingID]*binding
	slots     []*queue // queue by slot; nil = free
	free      []int32
	nextID    uint64 // next queue id
	idCeiling uint64 // ids below it are reserved on disk
	version   uint64 // of the last change to durable state
}

func newVhost(name string, p *persister) *Vhost {
	v := &Vhost{name: name, id: VhostID(name), p: p, exchanges: make(map[string]*exchange),
		queues: make(map[string]*queue), bindings: make(map[bindingID]*binding), nextID: 1}
	for _, d := range predeclared {
		x := newExchange(d.name, d.kind, true, false, false, nil)
		x.builtin = true
		v.exchanges[d.name] = x
	}
	return v
}

// Name is the vhost's name ("/" by default).
func (v *Vhost) Name() string { return v.name }

// ID is the vhost's file-system and topic-safe id (VhostID).
func (v *Vhost) ID() string { return v.id }

// Version is the version of the vhost's durable metadata; it grows with
// every change that is written to disk.
func (v *Vhost) Version() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.version
}

// ExchangeDecl is an exchange.declare.
type ExchangeDecl struct {
	Name, Type                             string
	Passive, Durable, AutoDelete, Internal bool
	Args                                   Args
}

// DeclareExchange creates an exchange or checks that an existing one is
// equivalent (rabbit_channel exchange.declare, rabbit_exchange:assert_equivalence).
func (v *Vhost) DeclareExchange(d ExchangeDecl) error {
	if d.Passive {
		if d.Name == "" {
			return defaultExchangeRefused()
		}
		v.mu.RLock()
		defer v.mu.RUnlock()
		if v.exchanges[d.Name] == nil {
			return notFound("exchange", d.Name, v.name)
		}
		return nil
	}
	if !validType(d.Type) {
		return errorf(CommandInvalid, "unknown exchange type '%s'", d.Type)
	}
	if d.Name == "" {
		return defaultExchangeRefused()
	}
	args, err := normalizeArgs(d.Args)
	if err != nil {
		return errorf(PreconditionFailed, "invalid %s: %v", rs("exchange", d.Name, v.name), err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if x := v.exchanges[d.Name]; x != nil {
		return v.exchangeEquivalent(x, d.Type, d.Durable, d.AutoDelete, d.Internal, args)
	}
	if reservedName(d.Name) {
		return errorf(AccessRefused, "exchange name '%s' contains reserved prefix 'amq.*'", d.Name)
	}
	if ae, ok := args["alternate-exchange"]; ok {
		if _, isStr := ae.(string); !isStr {
			return errorf(PreconditionFailed, "invalid type '%s' for arg 'alternate-exchange' in %s", typeName(ae), rs("exchange", d.Name, v.name))
		}
	}
	x := newExchange(d.Name, d.Type, d.Durable, d.AutoDelete, d.Internal, args)
	v.exchanges[d.Name] = x
	if err := v.commit(x.durable); err != nil {
		delete(v.exchanges, d.Name) // not acknowledged: not there
		return err
	}
	return nil
}

func (v *Vhost) exchangeEquivalent(x *exchange, kind string, durable, autoDelete, internal bool, args Args) error {
	name := rs("exchange", x.name, v.name)
	switch {
	case x.kind != kind:
		return inequivalent("type", name, kind, x.kind)
	case x.durable != durable:
		return inequivalent("durable", name, durable, x.durable)
	case x.autoDelete != autoDelete:
		return inequivalent("auto_delete", name, autoDelete, x.autoDelete)
	case x.internal != internal:
		return inequivalent("internal", name, internal, x.internal)
	}
	// RabbitMQ compares only the arguments an exchange type declares.
	return argsEquivalent(name, x.args, args, []string{"alternate-exchange"}, nil)
}

// inequivalent is rabbit_misc:assert_field_equivalence's failure.
func inequivalent(field, name string, received, current any) *Error {
	return errorf(PreconditionFailed, "inequivalent arg '%s' for %s: received '%s' but current is '%s'",
		field, name, formatValue(received), formatValue(current))
}

// argsEquivalent is rabbit_misc:assert_args_equivalence over keys; dflt
// gives the value a missing key counts as (x-queue-type: classic).
func argsEquivalent(name string, current, received Args, keys []string, dflt map[string]any) error {
	for _, k := range keys {
		c, cok := current[k]
		r, rok := received[k]
		cv, cp, rv, rp := c, cok, r, rok
		if d, ok := dflt[k]; ok {
			if !cp {
				cv, cp = d, true
			}
			if !rp {
				rv, rp = d, true
			}
		}
		if !cp && !rp || cp && rp && looseEqual(cv, rv) {
			continue
		}
		if cok && rok {
			return inequivalent(k, name, r, c)
		}
		return errorf(PreconditionFailed, "inequivalent arg '%s' for %s: received %s but current is %s",
			k, name, describeArg(r, rok), describeArg(c, cok))
	}
	return nil
}

func describeArg(v any, present bool) string {
	if !present {
		return "none"
	}
	return fmt.Sprintf("the value '%s' of type '%s'", formatValue(v), typeName(v))
}

// DeleteExchange deletes an exchange and its bindings. A missing exchange
// is not an error (RabbitMQ 3.x); ifUnused refuses one that is the source
// of bindings.
func (v *Vhost) DeleteExchange(name string, ifUnused bool) error {
	if name == "" {
		return defaultExchangeRefused()
	}
	if reservedName(name) {
		return errorf(AccessRefused, "deletion of system %s not allowed", rs("exchange", name, v.name))
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	x := v.exchanges[name]
	if x == nil {
		return nil
	}
	if ifUnused && len(x.out) > 0 {
		return errorf(PreconditionFailed, "%s in use", rs("exchange", name, v.name))
	}
	return v.commit(v.removeExchange(x))
}

// removeExchange drops x, its bindings, and sources auto-deleted by that.
// It reports whether durable state changed.
func (v *Vhost) removeExchange(x *exchange) bool {
	delete(v.exchanges, x.name)
	durable := x.durable
	for len(x.out) > 0 {
		durable = v.removeBinding(x.out[len(x.out)-1]) || durable
	}
	for len(x.in) > 0 {
		durable = v.removeBinding(x.in[len(x.in)-1]) || durable
	}
	return durable
}

// removeBinding drops b; an auto-delete source losing its last binding
// goes too (RabbitMQ's maybe_auto_delete).
func (v *Vhost) removeBinding(b *binding) bool {
	b.unlink()
	delete(v.bindings, b.id())
	durable := b.durable()
	if src := b.src; src.autoDelete && len(src.out) == 0 && v.exchanges[src.name] == src {
		durable = v.removeExchange(src) || durable
	}
	return durable
}

// BindingDecl is a queue.bind/exchange.bind (or unbind). Destination is a
// queue unless ToExchange.
type BindingDecl struct {
	Source, Destination string
	ToExchange          bool
	RoutingKey          string
	Args                Args
}

// Bind adds a binding; binding twice is a no-op. conn is the caller's
// connection, checked against an exclusive destination queue.
func (v *Vhost) Bind(d BindingDecl, conn Owner) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	b, existing, err := v.lookupBinding(d, conn)
	if err != nil || existing != nil {
		return err
	}
	if b.src.kind == Headers {
		if b.match, err = parseHeadersMatch(b.args); err != nil {
			return errorf(PreconditionFailed, "%s", err.Error())
		}
	}
	b.link()
	v.bindings[b.id()] = b
	if err := v.commit(b.durable()); err != nil {
		b.unlink()
		delete(v.bindings, b.id())
		return err
	}
	return nil
}

// Unbind removes a binding; a missing binding is not an error.
func (v *Vhost) Unbind(d BindingDecl, conn Owner) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, existing, err := v.lookupBinding(d, conn)
	if err != nil || existing == nil {
		return err
	}
	return v.commit(v.removeBinding(existing))
}

// lookupBinding resolves d's ends in RabbitMQ's order (default exchange
// 403, source 404, destination 404, exclusive 405) and returns the binding
// d describes and the equal one that exists, if any.
func (v *Vhost) lookupBinding(d BindingDecl, conn Owner) (*binding, *binding, error) {
	if d.Source == "" || d.ToExchange && d.Destination == "" {
		return nil, nil, defaultExchangeRefused()
	}
	args, err := normalizeArgs(d.Args)
	if err != nil {
		return nil, nil, errorf(PreconditionFailed, "invalid binding: %v", err)
	}
	argsKey, err := wire.EncodeAMQPTable(args)
	if err != nil {
		return nil, nil, errorf(PreconditionFailed, "invalid binding: %v", err)
	}
	b := &binding{key: d.RoutingKey, args: args, argsKey: string(argsKey)}
	if b.src = v.exchanges[d.Source]; b.src == nil {
		return nil, nil, notFound("exchange", d.Source, v.name)
	}
	if d.ToExchange {
		if b.x = v.exchanges[d.Destination]; b.x == nil {
			return nil, nil, notFound("exchange", d.Destination, v.name)
		}
	} else {
		if wire.IsAMQPReplyQueue(d.Destination) {
			// rabbit_channel reject_volatile_queue_as_binding_target.
			return nil, nil, errorf(AccessRefused, "cannot bind or unbind to a volatile (direct reply-to) queue")
		}
		if b.q = v.queues[d.Destination]; b.q == nil {
			return nil, nil, notFound("queue", d.Destination, v.name)
		}
		if !b.q.owner.IsZero() && b.q.owner != conn {
			return nil, nil, locked(b.q.name, v.name)
		}
	}
	return b, v.bindings[b.id()], nil
}

// QueueDecl is a queue.declare from connection Conn; ReplyTo asks for a
// new direct reply-to queue of Conn instead (wire.AMQPQueueDeclare).
type QueueDecl struct {
	Name                                    string
	Passive, Durable, Exclusive, AutoDelete bool
	Args                                    Args
	Conn                                    Owner
	ReplyTo                                 bool
}

// Queue types (x-queue-type); both are disk queues here.
var queueTypes = map[string]bool{"classic": true, "quorum": true}

// equivalenceKeys are the queue arguments compared on redeclare: those
// RabbitMQ declares (rabbit_amqqueue:declare_args/0, 3.10) and mqops' own.
// Other arguments are stored and not compared, as RabbitMQ does.
var equivalenceKeys = []string{
	"x-queue-type", "x-expires", "x-message-ttl", "x-dead-letter-exchange", "x-dead-letter-routing-key",
	"x-max-length", "x-max-length-bytes", "x-max-in-memory-length", "x-max-in-memory-bytes",
	"x-max-priority", "x-overflow", "x-queue-mode", "x-queue-version", "x-single-active-consumer",
	"x-quorum-initial-group-size", "x-delivery-limit", "x-dead-letter-strategy",
	"x-queue-leader-locator", "x-queue-master-locator", "x-consumer-timeout",
	"x-mqops-requeue", "x-retry-max-count", "x-retry-delay", "x-retry-delay-multiplier", "x-retry-max-delay",
}

var queueDefaults = map[string]any{"x-queue-type": "classic"}

// DeclareQueue creates a queue or checks an existing one
// (rabbit_channel queue.declare, rabbit_amqqueue:assert_equivalence). An
// empty name gets a server-generated "amq.gen-…" one. Exclusive queues are
// never durable (AMQP 0-9-1 errata §30).
func (v *Vhost) DeclareQueue(d QueueDecl) (QueueInfo, error) {
	if d.Passive {
		v.mu.RLock()
		defer v.mu.RUnlock()
		q := v.queues[d.Name]
		if q == nil {
			return QueueInfo{}, notFound("queue", d.Name, v.name)
		}
		// Anyone may check that a reply-to queue lives (RabbitMQ answers
		// the passive declare of amq.rabbitmq.reply-to.<suffix> to every
		// channel).
		if !q.owner.IsZero() && q.owner != d.Conn && !wire.IsAMQPReplyQueue(q.name) {
			return QueueInfo{}, locked(q.name, v.name)
		}
		return q.info(), nil
	}
	if d.ReplyTo {
		d = QueueDecl{Name: replyQueueName(), Exclusive: true, Conn: d.Conn, ReplyTo: true}
	}
	name := d.Name
	if name == "" {
		name = generateName()
	} else if reservedName(name) && !d.ReplyTo {
		return QueueInfo{}, errorf(AccessRefused, "queue name '%s' contains reserved prefix 'amq.*'", name)
	}
	qname := rs("queue", name, v.name)
	if d.Exclusive && d.Conn.IsZero() {
		// A gateway bug, not the client's: the queue would belong to no one.
		return QueueInfo{}, errorf(InternalError, "exclusive %s declared without an owning connection", qname)
	}
	durable := d.Durable && !d.Exclusive
	var owner Owner
	if d.Exclusive {
		owner = d.Conn
	}
	args, err := normalizeArgs(d.Args)
	if err != nil {
		return QueueInfo{}, errorf(PreconditionFailed, "invalid arg for %s: %v", qname, err)
	}
	if err := checkQueueArgs(qname, args); err != nil {
		return QueueInfo{}, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if q := v.queues[name]; q != nil {
		switch {
		case q.owner != owner:
			return QueueInfo{}, locked(name, v.name)
		case q.durable != durable:
			return QueueInfo{}, inequivalent("durable", qname, durable, q.durable)
		case q.autoDelete != d.AutoDelete:
			return QueueInfo{}, inequivalent("auto_delete", qname, d.AutoDelete, q.autoDelete)
		}
		if err := argsEquivalent(qname, q.args, args, equivalenceKeys, queueDefaults); err != nil {
			return QueueInfo{}, err
		}
		return q.info(), nil
	}
	if t, _ := args["x-queue-type"].(string); t == "quorum" {
		switch {
		case !durable:
			return QueueInfo{}, errorf(PreconditionFailed, "invalid property 'non-durable' for %s", qname)
		case d.AutoDelete:
			return QueueInfo{}, errorf(PreconditionFailed, "invalid property 'auto-delete' for %s", qname)
		}
	}
	ceilingMoved := v.nextID >= v.idCeiling
	if ceilingMoved {
		// Ids are never reused, also across restarts: a reused id would
		// find the old queue's messages in its light queue.
		v.idCeiling = v.nextID + idBlock
	}
	q := &queue{name: name, id: v.nextID, durable: durable, autoDelete: d.AutoDelete, owner: owner,
		args: args, feat: newFeatures(name, args), created: time.Now().UTC().Truncate(time.Millisecond)}
	v.nextID++
	if n := len(v.free); n > 0 {
		q.slot = v.free[n-1]
		v.free = v.free[:n-1]
		v.slots[q.slot] = q
	} else {
		q.slot = int32(len(v.slots))
		v.slots = append(v.slots, q)
	}
	v.queues[name] = q
	if err := v.commit(durable || ceilingMoved); err != nil {
		v.removeQueue(q)
		return QueueInfo{}, err
	}
	return q.info(), nil
}

// replyQueueName is a new direct reply-to queue's name: the prefix and 16
// random bytes, which a responder cannot guess.
func replyQueueName() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return wire.AMQPReplyTo + "." + base64.RawURLEncoding.EncodeToString(b[:])
}

// idBlock is how many queue ids one metadata write reserves.
const idBlock = 1024

// generateName is RabbitMQ's server-named queue: "amq.gen-" and 16 random
// bytes in url-safe base64 (22 characters).
func generateName() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "amq.gen-" + base64.RawURLEncoding.EncodeToString(b[:])
}

// checkQueueArgs validates the arguments RabbitMQ validates
// (rabbit_amqqueue:check_declare_arguments) plus x-queue-type.
func checkQueueArgs(qname string, args Args) error {
	bad := func(k, reason string) error {
		return errorf(PreconditionFailed, "invalid arg '%s' for %s: %s", k, qname, reason)
	}
	// rabbit_channel checks the dead-letter exchange's type before the
	// other arguments, with its own wording.
	if dlx, ok := args["x-dead-letter-exchange"]; ok {
		if _, isStr := dlx.(string); !isStr {
			return errorf(PreconditionFailed, "invalid type '%s' for arg 'x-dead-letter-exchange' in %s", typeName(dlx), qname)
		}
	}
	for k, v := range args {
		switch k {
		case "x-queue-type":
			s, ok := v.(string)
			switch {
			case !ok:
				return bad(k, fmt.Sprintf("{unacceptable_type,%s}", typeName(v)))
			case s == "stream":
				return errorf(PreconditionFailed, "queue type 'stream' is not supported for %s", qname)
			case !queueTypes[s]:
				return bad(k, fmt.Sprintf("\"unsupported queue type '%s'\"", s))
			}
		case "x-expires", "x-message-ttl", "x-max-length", "x-max-length-bytes", "x-max-priority", "x-delivery-limit", "x-consumer-timeout":
			n, ok := asInt(v)
			switch {
			case !ok:
				return bad(k, fmt.Sprintf("{unacceptable_type,%s}", typeName(v)))
			case n < 0:
				return bad(k, fmt.Sprintf("{value_negative,%d}", n))
			case n == 0 && k == "x-expires":
				return bad(k, "{value_zero,0}")
			case k == "x-max-priority" && n > 255:
				return bad(k, fmt.Sprintf("{value_too_large,%d,255}", n))
			}
		case "x-dead-letter-exchange", "x-dead-letter-routing-key":
			if _, ok := v.(string); !ok {
				return bad(k, fmt.Sprintf("{unacceptable_type,%s}", typeName(v)))
			}
			if _, dlx := args["x-dead-letter-exchange"]; k == "x-dead-letter-routing-key" && !dlx {
				return bad(k, "routing_key_but_no_dlx_defined")
			}
		case "x-overflow":
			s, _ := v.(string)
			if s != "drop-head" && s != "reject-publish" && s != "reject-publish-dlx" {
				return bad(k, fmt.Sprintf("{invalid_value,%s}", erlangTerm(v)))
			}
		}
	}
	return nil
}

// Counts reports a queue's ready messages and consumers (for if-empty,
// if-unused and delete-ok); it runs under the vhost lock and must not call
// back into the engine.
type Counts func(id uint64) (messages, consumers uint32)

// DeleteQueue deletes a queue and its bindings and returns what it was
// with its message count. A missing queue is not an error (RabbitMQ 3.x:
// delete-ok with 0, ok=false here).
func (v *Vhost) DeleteQueue(name string, conn Owner, ifUnused, ifEmpty bool, counts Counts) (info QueueInfo, messages uint32, ok bool, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	q := v.queues[name]
	if q == nil {
		return QueueInfo{}, 0, false, nil
	}
	if !q.owner.IsZero() && q.owner != conn {
		return QueueInfo{}, 0, false, locked(name, v.name)
	}
	var consumers uint32
	if counts != nil {
		messages, consumers = counts(q.id)
	}
	if ifUnused && consumers > 0 {
		return QueueInfo{}, 0, false, errorf(PreconditionFailed, "%s in use", rs("queue", name, v.name))
	}
	if ifEmpty && messages > 0 {
		return QueueInfo{}, 0, false, errorf(PreconditionFailed, "%s not empty", rs("queue", name, v.name))
	}
	return q.info(), messages, true, v.commit(v.removeQueue(q))
}

func (v *Vhost) removeQueue(q *queue) bool {
	delete(v.queues, q.name)
	v.slots[q.slot] = nil
	v.free = append(v.free, q.slot)
	durable := q.durable
	for len(q.in) > 0 {
		durable = v.removeBinding(q.in[len(q.in)-1]) || durable
	}
	return durable
}

// DeleteAutoDelete deletes the queue if it is auto-delete; the session
// layer calls it when the queue's last consumer goes.
func (v *Vhost) DeleteAutoDelete(name string) (QueueInfo, bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	q := v.queues[name]
	if q == nil || !q.autoDelete {
		return QueueInfo{}, false, nil
	}
	return q.info(), true, v.commit(v.removeQueue(q))
}

// releaseOwner deletes the exclusive queues owned by connections match
// accepts.
func (v *Vhost) releaseOwner(match func(Owner) bool) ([]QueueInfo, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var gone []QueueInfo
	durable := false
	for _, q := range v.queues {
		if !q.owner.IsZero() && match(q.owner) {
			gone = append(gone, q.info())
			durable = v.removeQueue(q) || durable
		}
	}
	sort.Slice(gone, func(i, j int) bool { return gone[i].Name < gone[j].Name })
	return gone, v.commit(durable)
}

// Purge checks the caller may purge the queue and hands its id to purge,
// which drops the ready messages and returns how many.
func (v *Vhost) Purge(name string, conn Owner, purge func(id uint64) (uint32, error)) (uint32, error) {
	v.mu.RLock()
	q := v.queues[name]
	var id uint64
	var err error
	switch {
	case q == nil:
		err = notFound("queue", name, v.name)
	case !q.owner.IsZero() && q.owner != conn:
		err = locked(name, v.name)
	default:
		id = q.id
	}
	v.mu.RUnlock()
	if err != nil {
		return 0, err
	}
	return purge(id)
}

// Queue looks a queue up by name.
func (v *Vhost) Queue(name string) (QueueInfo, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if q := v.queues[name]; q != nil {
		return q.info(), true
	}
	return QueueInfo{}, false
}

// Listing is a vhost's metadata for mqadmin, sorted by name.
type Listing struct {
	Vhost     string
	Version   uint64
	Exchanges []ExchangeInfo
	Queues    []QueueInfo
	Bindings  []BindingInfo
}

// List returns every exchange, queue and binding, durable or not. The Args
// maps are shared with the engine and must not be modified.
func (v *Vhost) List() Listing {
	v.mu.RLock()
	defer v.mu.RUnlock()
	l := Listing{Vhost: v.name, Version: v.version}
	for _, x := range v.exchanges {
		l.Exchanges = append(l.Exchanges, x.info())
	}
	for _, q := range v.queues {
		l.Queues = append(l.Queues, q.info())
	}
	for _, b := range v.bindings {
		l.Bindings = append(l.Bindings, b.info())
	}
	sort.Slice(l.Exchanges, func(i, j int) bool { return l.Exchanges[i].Name < l.Exchanges[j].Name })
	sort.Slice(l.Queues, func(i, j int) bool { return l.Queues[i].Name < l.Queues[j].Name })
	sort.Slice(l.Bindings, func(i, j int) bool { return bindingLess(l.Bindings[i], l.Bindings[j]) })
	return l
}

func bindingLess(a, b BindingInfo) bool {
	if c := strings.Compare(a.Source, b.Source); c != 0 {
		return c < 0
	}
	if c := strings.Compare(a.Destination, b.Destination); c != 0 {
		return c < 0
	}
	if a.ToExchange != b.ToExchange {
		return !a.ToExchange
	}
	return a.RoutingKey < b.RoutingKey
}

// deleteExpired deletes queue name if it is still the one with id (an
// x-expires deletion decided outside the lock).
func (v *Vhost) deleteExpired(name string, id uint64) (QueueInfo, bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	q := v.queues[name]
	if q == nil || q.id != id {
		return QueueInfo{}, false, nil
	}
	return q.info(), true, v.commit(v.removeQueue(q))
}
