package amqpengine

import (
	"regexp"
	"testing"
)

func TestDeclareExchangeRules(t *testing.T) {
	v := newTestVhost(t)
	must(t, v.DeclareExchange(ExchangeDecl{Name: "logs", Type: Fanout, Durable: true}))
	must(t, v.DeclareExchange(ExchangeDecl{Name: "logs", Type: Fanout, Durable: true}))
	must(t, v.DeclareExchange(ExchangeDecl{Name: "logs", Passive: true}))
	must(t, v.DeclareExchange(ExchangeDecl{Name: "amq.topic", Type: Topic, Durable: true}))
	wantErr(t, v.DeclareExchange(ExchangeDecl{Name: "logs", Type: Direct, Durable: true}), PreconditionFailed,
		"PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'logs' in vhost '/': received 'direct' but current is 'fanout'")
	wantErr(t, v.DeclareExchange(ExchangeDecl{Name: "logs", Type: Fanout}), PreconditionFailed,
		"PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'logs' in vhost '/': received 'false' but current is 'true'")
	wantErr(t, v.DeclareExchange(ExchangeDecl{Name: "logs", Type: Fanout, Durable: true, AutoDelete: true}), PreconditionFailed,
		"PRECONDITION_FAILED - inequivalent arg 'auto_delete' for exchange 'logs' in vhost '/': received 'true' but current is 'false'")
	wantErr(t, v.DeclareExchange(ExchangeDecl{Name: "logs", Type: Fanout, Durable: true, Internal: true}), PreconditionFailed,
		"PRECONDITION_FAILED - inequivalent arg 'internal' for exchange 'logs' in vhost '/': received 'true' but current is 'false'")
	wantErr(t, v.DeclareExchange(ExchangeDecl{Name: "logs", Type: Fanout, Durable: true, Args: Args{"alternate-exchange": "ae"}}), PreconditionFailed,
		"PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange 'logs' in vhost '/': received the value 'ae' of type 'longstr' but current is none")
	// Arguments RabbitMQ does not declare for exchanges are not compared.
	must(t, v.DeclareExchange(ExchangeDecl{Name: "logs", Type: Fanout, Durable: true, Args: Args{"x-custom": int32(1)}}))
	wantErr(t, v.DeclareExchange(ExchangeDecl{Name: "x", Type: "x-delayed-message"}), CommandInvalid,
		"COMMAND_INVALID - unknown exchange type 'x-delayed-message'")
	wantErr(t, v.DeclareExchange(ExchangeDecl{Name: "amq.mine", Type: Direct}), AccessRefused,
		"ACCESS_REFUSED - exchange name 'amq.mine' contains reserved prefix 'amq.*'")
	wantErr(t, v.DeclareExchange(ExchangeDecl{Name: "", Type: Direct}), AccessRefused,
		"ACCESS_REFUSED - operation not permitted on the default exchange")
	wantErr(t, v.DeclareExchange(ExchangeDecl{Name: "", Passive: true}), AccessRefused,
		"ACCESS_REFUSED - operation not permitted on the default exchange")
	wantErr(t, v.DeclareExchange(ExchangeDecl{Name: "nope", Passive: true}), NotFound,
		"NOT_FOUND - no exchange 'nope' in vhost '/'")
	wantErr(t, v.DeclareExchange(ExchangeDecl{Name: "y", Type: Direct, Args: Args{"alternate-exchange": int32(1)}}), PreconditionFailed,
		"PRECONDITION_FAILED - invalid type 'signedint' for arg 'alternate-exchange' in exchange 'y' in vhost '/'")
	if e := (&Error{Code: CommandInvalid}); !e.Hard() {
		t.Fatal("503 must be a connection exception")
	}
}

func TestDeleteExchange(t *testing.T) {
	v := newTestVhost(t)
	must(t, v.DeclareExchange(ExchangeDecl{Name: "x", Type: Direct}))
	declareQ(t, v, "q")
	bindQ(t, v, "x", "q", "k", nil)
	wantErr(t, v.DeleteExchange("x", true), PreconditionFailed, "PRECONDITION_FAILED - exchange 'x' in vhost '/' in use")
	must(t, v.DeleteExchange("x", false))
	must(t, v.DeleteExchange("x", false)) // missing: ok
	if l := v.List(); len(l.Bindings) != 0 {
		t.Fatalf("bindings of a deleted exchange remain: %v", l.Bindings)
	}
	wantErr(t, v.DeleteExchange("", false), AccessRefused, "ACCESS_REFUSED - operation not permitted on the default exchange")
	wantErr(t, v.DeleteExchange("amq.direct", false), AccessRefused,
		"ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed")
}

func TestBindRules(t *testing.T) {
	v := newTestVhost(t)
	declareQ(t, v, "q")
	must(t, v.DeclareExchange(ExchangeDecl{Name: "x", Type: Direct}))
	wantErr(t, v.Bind(BindingDecl{Source: "", Destination: "q", RoutingKey: "q"}, Owner{}), AccessRefused,
		"ACCESS_REFUSED - operation not permitted on the default exchange")
	wantErr(t, v.Bind(BindingDecl{Source: "nox", Destination: "noq"}, Owner{}), NotFound, "NOT_FOUND - no exchange 'nox' in vhost '/'")
	wantErr(t, v.Bind(BindingDecl{Source: "x", Destination: "noq"}, Owner{}), NotFound, "NOT_FOUND - no queue 'noq' in vhost '/'")
	wantErr(t, v.Bind(BindingDecl{Source: "x", Destination: "nox", ToExchange: true}, Owner{}), NotFound, "NOT_FOUND - no exchange 'nox' in vhost '/'")
	bindQ(t, v, "x", "q", "k", nil)
	bindQ(t, v, "x", "q", "k", nil) // idempotent
	bindQ(t, v, "x", "q", "k", Args{"a": int32(1)})
	if n := len(v.List().Bindings); n != 2 {
		t.Fatalf("want 2 bindings (args are part of identity), got %d", n)
	}
	must(t, v.Unbind(BindingDecl{Source: "x", Destination: "q", RoutingKey: "missing"}, Owner{}))
	wantErr(t, v.Unbind(BindingDecl{Source: "x", Destination: "noq"}, Owner{}), NotFound, "NOT_FOUND - no queue 'noq' in vhost '/'")
	must(t, v.Unbind(BindingDecl{Source: "x", Destination: "q", RoutingKey: "k", Args: Args{"a": int32(1)}}, Owner{}))
	if n := len(v.List().Bindings); n != 1 {
		t.Fatalf("want 1 binding left, got %d", n)
	}
}

func TestAutoDeleteExchange(t *testing.T) {
	v := newTestVhost(t)
	must(t, v.DeclareExchange(ExchangeDecl{Name: "ad", Type: Direct, AutoDelete: true}))
	must(t, v.DeclareExchange(ExchangeDecl{Name: "up", Type: Fanout, AutoDelete: true}))
	declareQ(t, v, "q1")
	declareQ(t, v, "q2")
	bindQ(t, v, "ad", "q1", "a", nil)
	bindQ(t, v, "ad", "q2", "b", nil)
	must(t, v.Bind(BindingDecl{Source: "up", Destination: "ad", ToExchange: true}, Owner{}))
	must(t, v.Unbind(BindingDecl{Source: "ad", Destination: "q1", RoutingKey: "a"}, Owner{}))
	must(t, v.DeclareExchange(ExchangeDecl{Name: "ad", Passive: true}))
	// Deleting q2 removes ad's last binding: ad goes, with it the e2e
	// binding from up, which was up's last: up goes too.
	_, _, ok, err := v.DeleteQueue("q2", Owner{}, false, false, nil)
	must(t, err)
	if !ok {
		t.Fatal("q2 not deleted")
	}
	wantErr(t, v.DeclareExchange(ExchangeDecl{Name: "ad", Passive: true}), NotFound, "NOT_FOUND - no exchange 'ad' in vhost '/'")
	wantErr(t, v.DeclareExchange(ExchangeDecl{Name: "up", Passive: true}), NotFound, "NOT_FOUND - no exchange 'up' in vhost '/'")
}

func TestDeclareQueueRules(t *testing.T) {
	v := newTestVhost(t)
	hello := Args{"x-queue-type": "quorum"}
	q, err := v.DeclareQueue(QueueDecl{Name: "hello", Durable: true, Args: hello})
	must(t, err)
	if q.ID == 0 || !q.Durable || q.Created.IsZero() {
		t.Fatalf("bad queue info %+v", q)
	}
	q2, err := v.DeclareQueue(QueueDecl{Name: "hello", Durable: true, Args: Args{"x-queue-type": "quorum"}})
	must(t, err)
	if q2.ID != q.ID {
		t.Fatal("redeclare changed the id")
	}
	_, err = v.DeclareQueue(QueueDecl{Name: "hello", Args: hello})
	wantErr(t, err, PreconditionFailed, "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'hello' in vhost '/': received 'false' but current is 'true'")
	_, err = v.DeclareQueue(QueueDecl{Name: "hello", Durable: true})
	wantErr(t, err, PreconditionFailed, "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'hello' in vhost '/': received none but current is the value 'quorum' of type 'longstr'")
	_, err = v.DeclareQueue(QueueDecl{Name: "hello", Durable: true, AutoDelete: true, Args: hello})
	wantErr(t, err, PreconditionFailed, "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue 'hello' in vhost '/': received 'true' but current is 'false'")

	// A missing x-queue-type is classic.
	declareQ(t, v, "c")
	_, err = v.DeclareQueue(QueueDecl{Name: "c", Args: Args{"x-queue-type": "classic"}})
	must(t, err)
	// Integer arguments of any Go integer type compare by value.
	_, err = v.DeclareQueue(QueueDecl{Name: "ttl", Args: Args{"x-message-ttl": 60000}})
	must(t, err)
	for _, n := range []any{int32(60000), int64(60000), uint32(60000), uint64(60000), uint(60000)} {
		_, err = v.DeclareQueue(QueueDecl{Name: "ttl", Args: Args{"x-message-ttl": n}})
		must(t, err)
	}
	_, err = v.DeclareQueue(QueueDecl{Name: "ttl", Args: Args{"x-message-ttl": int16(5)}})
	wantErr(t, err, PreconditionFailed, "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'ttl' in vhost '/': received '5' but current is '60000'")
	_, err = v.DeclareQueue(QueueDecl{Name: "ttl"})
	wantErr(t, err, PreconditionFailed, "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'ttl' in vhost '/': received none but current is the value '60000' of type 'long'")
	// Unknown arguments are kept but not compared (RabbitMQ).
	_, err = v.DeclareQueue(QueueDecl{Name: "ttl", Args: Args{"x-message-ttl": int32(60000), "x-other": true}})
	must(t, err)

	bad := []struct {
		d    QueueDecl
		code uint16
		text string
	}{
		{QueueDecl{Name: "amq.q"}, AccessRefused, "ACCESS_REFUSED - queue name 'amq.q' contains reserved prefix 'amq.*'"},
		{QueueDecl{Name: "s", Durable: true, Args: Args{"x-queue-type": "stream"}}, PreconditionFailed, "PRECONDITION_FAILED - queue type 'stream' is not supported for queue 's' in vhost '/'"},
		{QueueDecl{Name: "s", Args: Args{"x-queue-type": "lazy"}}, PreconditionFailed, `PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 's' in vhost '/': "unsupported queue type 'lazy'"`},
		{QueueDecl{Name: "s", Args: Args{"x-queue-type": "quorum"}}, PreconditionFailed, "PRECONDITION_FAILED - invalid property 'non-durable' for queue 's' in vhost '/'"},
		{QueueDecl{Name: "s", Exclusive: true, Durable: true, Conn: Owner{"gw", 1}, Args: Args{"x-queue-type": "quorum"}}, PreconditionFailed, "PRECONDITION_FAILED - invalid property 'non-durable' for queue 's' in vhost '/'"},
		{QueueDecl{Name: "s", Args: Args{"x-message-ttl": "10"}}, PreconditionFailed, "PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 's' in vhost '/': {unacceptable_type,longstr}"},
		{QueueDecl{Name: "s", Args: Args{"x-max-length": int8(-1)}}, PreconditionFailed, "PRECONDITION_FAILED - invalid arg 'x-max-length' for queue 's' in vhost '/': {value_negative,-1}"},
		{QueueDecl{Name: "s", Args: Args{"x-expires": 0}}, PreconditionFailed, "PRECONDITION_FAILED - invalid arg 'x-expires' for queue 's' in vhost '/': {value_zero,0}"},
		{QueueDecl{Name: "s", Args: Args{"x-dead-letter-routing-key": "k"}}, PreconditionFailed, "PRECONDITION_FAILED - invalid arg 'x-dead-letter-routing-key' for queue 's' in vhost '/': routing_key_but_no_dlx_defined"},
		{QueueDecl{Name: "s", Args: Args{"x-a": struct{}{}}}, PreconditionFailed, "PRECONDITION_FAILED - invalid arg for queue 's' in vhost '/': argument 'x-a': unsupported value type struct {}"},
		{QueueDecl{Name: "s", Args: Args{"x-dead-letter-exchange": int32(1)}}, PreconditionFailed, "PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 's' in vhost '/'"},
		{QueueDecl{Name: "nope", Passive: true}, NotFound, "NOT_FOUND - no queue 'nope' in vhost '/'"},
	}
	for _, b := range bad {
		_, err := v.DeclareQueue(b.d)
		wantErr(t, err, b.code, b.text)
	}
	if _, ok := v.Queue("s"); ok {
		t.Fatal("a refused declare created the queue")
	}
}

func TestServerNamedAndExclusive(t *testing.T) {
	v := newTestVhost(t)
	c1 := Owner{Gateway: "gw1", Conn: 1}
	c2 := Owner{Gateway: "gw1", Conn: 2}
	// amqplib declares exclusive queues durable: accepted as transient.
	q, err := v.DeclareQueue(QueueDecl{Exclusive: true, Durable: true, Conn: c1})
	must(t, err)
	if !regexp.MustCompile(`^amq\.gen-[A-Za-z0-9_-]{22}$`).MatchString(q.Name) {
		t.Fatalf("server name %q", q.Name)
	}
	if q.Durable || !q.Exclusive || q.Owner != c1 {
		t.Fatalf("bad exclusive queue %+v", q)
	}
	q2, err := v.DeclareQueue(QueueDecl{Exclusive: true, Conn: c1})
	must(t, err)
	if q2.Name == q.Name || q2.ID == q.ID {
		t.Fatal("two server-named queues collide")
	}
	// Redeclaring a server name non-passively hits the reserved prefix, as in RabbitMQ.
	_, err = v.DeclareQueue(QueueDecl{Name: q.Name, Exclusive: true, Conn: c1})
	wantErr(t, err, AccessRefused, "ACCESS_REFUSED - queue name '"+q.Name+"' contains reserved prefix 'amq.*'")
	_, err = v.DeclareQueue(QueueDecl{Name: q.Name, Passive: true, Conn: c1})
	must(t, err)
	lockedText := "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '" + q.Name + "' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."
	_, err = v.DeclareQueue(QueueDecl{Name: q.Name, Passive: true, Conn: c2})
	wantErr(t, err, ResourceLocked, lockedText)
	wantErr(t, v.Bind(BindingDecl{Source: "amq.fanout", Destination: q.Name}, c2), ResourceLocked, lockedText)
	must(t, v.Bind(BindingDecl{Source: "amq.fanout", Destination: q.Name}, c1))
	_, err = v.Purge(q.Name, c2, func(uint64) (uint32, error) { t.Fatal("purge hook called for a foreign connection"); return 0, nil })
	wantErr(t, err, ResourceLocked, lockedText)
	n, err := v.Purge(q.Name, c1, func(id uint64) (uint32, error) {
		if id != q.ID {
			t.Fatalf("purge hook got id %d, want %d", id, q.ID)
		}
		return 3, nil
	})
	must(t, err)
	if n != 3 {
		t.Fatalf("purge returned %d", n)
	}
	_, _, _, err = v.DeleteQueue(q.Name, c2, false, false, nil)
	wantErr(t, err, ResourceLocked, lockedText)

	// Named exclusive: another connection's redeclare is 405; the owner's
	// non-exclusive redeclare too (strict check).
	_, err = v.DeclareQueue(QueueDecl{Name: "mine", Exclusive: true, Conn: c1})
	must(t, err)
	_, err = v.DeclareQueue(QueueDecl{Name: "mine", Exclusive: true, Conn: c2})
	wantErr(t, err, ResourceLocked, "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'mine' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.")
	_, err = v.DeclareQueue(QueueDecl{Name: "mine", Conn: c1})
	wantErr(t, err, ResourceLocked, "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'mine' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.")
	declareQ(t, v, "shared")
	_, err = v.DeclareQueue(QueueDecl{Name: "shared", Exclusive: true, Conn: c1})
	wantErr(t, err, ResourceLocked, "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'shared' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.")

	_, err = v.DeclareQueue(QueueDecl{Name: "orphan", Exclusive: true})
	wantErr(t, err, InternalError, "INTERNAL_ERROR - exclusive queue 'orphan' in vhost '/' declared without an owning connection")

	// Connection 1 closes: its exclusive queues and their bindings go.
	e := &Engine{vhosts: map[string]*Vhost{"/": v}}
	gone, err := e.ReleaseOwner("gw1", 1)
	must(t, err)
	if len(gone) != 3 {
		t.Fatalf("released %d queues, want 3: %+v", len(gone), gone)
	}
	if _, ok := v.Queue(q.Name); ok {
		t.Fatal("exclusive queue survived its connection")
	}
	if l := v.List(); len(l.Bindings) != 0 || len(l.Queues) != 1 {
		t.Fatalf("after release: %+v", l)
	}
}

func TestDeleteQueueChecks(t *testing.T) {
	v := newTestVhost(t)
	q := declareQ(t, v, "q")
	bindQ(t, v, "amq.direct", "q", "k", nil)
	counts := func(msgs, cons uint32) Counts {
		return func(id uint64) (uint32, uint32) {
			if id != q.ID {
				t.Fatalf("counts asked for %d, want %d", id, q.ID)
			}
			return msgs, cons
		}
	}
	_, _, _, err := v.DeleteQueue("q", Owner{}, true, false, counts(0, 2))
	wantErr(t, err, PreconditionFailed, "PRECONDITION_FAILED - queue 'q' in vhost '/' in use")
	_, _, _, err = v.DeleteQueue("q", Owner{}, false, true, counts(5, 0))
	wantErr(t, err, PreconditionFailed, "PRECONDITION_FAILED - queue 'q' in vhost '/' not empty")
	info, msgs, ok, err := v.DeleteQueue("q", Owner{}, true, false, counts(5, 0))
	must(t, err)
	if !ok || msgs != 5 || info.ID != q.ID {
		t.Fatalf("delete: ok=%v msgs=%d info=%+v", ok, msgs, info)
	}
	if _, _, ok, err := v.DeleteQueue("q", Owner{}, false, false, nil); ok || err != nil {
		t.Fatalf("deleting a missing queue: ok=%v err=%v", ok, err)
	}
	if len(v.List().Bindings) != 0 {
		t.Fatal("bindings of a deleted queue remain")
	}
	var r Targets
	must(t, v.Route("amq.direct", "k", nil, &r))
	if len(r.IDs) != 0 {
		t.Fatal("deleted queue still routed")
	}
	// Auto-delete queues go when the session layer reports the last consumer.
	_, err = v.DeclareQueue(QueueDecl{Name: "ad", AutoDelete: true})
	must(t, err)
	if _, ok, _ := v.DeleteAutoDelete("q2"); ok {
		t.Fatal("deleted a missing queue")
	}
	declareQ(t, v, "plain")
	if _, ok, _ := v.DeleteAutoDelete("plain"); ok {
		t.Fatal("deleted a queue that is not auto-delete")
	}
	if _, ok, err := v.DeleteAutoDelete("ad"); !ok || err != nil {
		t.Fatalf("auto-delete: %v %v", ok, err)
	}
	// Slots are reused, ids never.
	q3 := declareQ(t, v, "q3")
	if q3.ID <= q.ID {
		t.Fatalf("id %d reused after %d", q3.ID, q.ID)
	}
}
