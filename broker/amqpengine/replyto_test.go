package amqpengine

import (
	"strings"
	"testing"
)

// A direct reply-to queue: server-named under amq.rabbitmq.reply-to.,
// transient and exclusive to its connection, yet passively declarable by
// anyone while it lives; never a binding target; gone with its connection.
func TestReplyToQueue(t *testing.T) {
	v := newTestVhost(t)
	c1, c2 := Owner{Gateway: "gw1", Conn: 1}, Owner{Gateway: "gw2", Conn: 7}
	q, err := v.DeclareQueue(QueueDecl{Name: "ignored", Durable: true, ReplyTo: true, Conn: c1})
	must(t, err)
	if !strings.HasPrefix(q.Name, "amq.rabbitmq.reply-to.") || len(q.Name) != len("amq.rabbitmq.reply-to.")+22 ||
		q.Durable || q.Owner != c1 {
		t.Fatalf("reply queue %+v", q)
	}
	if _, ok := v.Queue("ignored"); ok {
		t.Fatal("the declare's name was used")
	}
	q2, err := v.DeclareQueue(QueueDecl{ReplyTo: true, Conn: c1})
	must(t, err)
	if q2.Name == q.Name {
		t.Fatal("two reply queues share a name")
	}
	var e *Error
	if _, err := v.DeclareQueue(QueueDecl{ReplyTo: true}); !asError(err, &e) || e.Code != InternalError {
		t.Fatalf("reply queue without a connection: %v", err)
	}

	if got, err := v.DeclareQueue(QueueDecl{Name: q.Name, Passive: true, Conn: c2}); err != nil || got.ID != q.ID {
		t.Fatalf("passive declare from another connection: %+v %v", got, err)
	}
	_, err = v.DeclareQueue(QueueDecl{Name: q.Name, Conn: c1})
	wantErr(t, err, AccessRefused, "ACCESS_REFUSED - queue name '"+q.Name+"' contains reserved prefix 'amq.*'")
	err = v.Bind(BindingDecl{Source: "amq.direct", Destination: q.Name, RoutingKey: "k"}, c1)
	wantErr(t, err, AccessRefused, "ACCESS_REFUSED - cannot bind or unbind to a volatile (direct reply-to) queue")
	var tg Targets
	must(t, v.Route("", q.Name, nil, &tg))
	if len(tg.IDs) != 1 || tg.IDs[0] != q.ID {
		t.Fatalf("default exchange routes %s to %v", q.Name, tg.IDs)
	}

	e2 := &Engine{vhosts: map[string]*Vhost{"/": v}}
	gone, err := e2.ReleaseOwner("gw1", 1)
	must(t, err)
	if len(gone) != 2 {
		t.Fatalf("released %+v, want both reply queues", gone)
	}
	_, err = v.DeclareQueue(QueueDecl{Name: q.Name, Passive: true, Conn: c2})
	wantErr(t, err, NotFound, "NOT_FOUND - no queue '"+q.Name+"' in vhost '/'")
}
