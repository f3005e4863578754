package gateway

import (
	"regexp"

	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/wire/amqp"
)

// amqpDefaultVhost is "/": its broker keeps the user database.
const amqpDefaultVhost = "/"

// permission is a user's configure/write/read expressions in the
// connection's vhost, compiled once at connection.open. Results are
// cached by resource name (publishing checks write on every message), and
// only the connection's read loop uses it, so the caches need no lock.
type permission struct {
	configure, write, read *regexp.Regexp
	cache                  map[permKey]bool
}

type permKey struct {
	what byte // 'c', 'w', 'r'
	kind byte // 'q' queue, 'e' exchange
	name string
}

// maxPermCache bounds the cache: a connection that touches many names
// (server-named queues) starts it over rather than grow it without end.
const maxPermCache = 1024

func compilePermission(p wire.AMQPPermission) (*permission, error) {
	var out permission
	for _, x := range []struct {
		re  string
		dst **regexp.Regexp
	}{{p.Configure, &out.configure}, {p.Write, &out.write}, {p.Read, &out.read}} {
		// RabbitMQ matches the whole expression anywhere in the name
		// (re:run), and "" matches nothing.
		if x.re == "" {
			continue
		}
		re, err := regexp.Compile(x.re)
		if err != nil {
			return nil, err
		}
		*x.dst = re
	}
	out.cache = make(map[permKey]bool)
	return &out, nil
}

// check is rabbit_access_control:check_resource_access: 403 on the
// channel, "access to queue 'q' in vhost '/' refused for user 'u'".
func (c *conn) check(what, kind byte, name string) error {
	p := c.perm
	k := permKey{what, kind, name}
	ok, seen := p.cache[k]
	if !seen {
		re := p.read
		switch what {
		case 'c':
			re = p.configure
		case 'w':
			re = p.write
		}
		ok = re != nil && re.MatchString(name)
		if len(p.cache) >= maxPermCache {
			clear(p.cache)
		}
		p.cache[k] = ok
	}
	if ok {
		return nil
	}
	kindName := "queue"
	if kind == 'e' {
		kindName = "exchange"
	}
	return amqp.Errorf(amqp.AccessRefused, "access to %s '%s' in vhost '%s' refused for user '%s'", kindName, name, c.vhost, c.user)
}

// exchangeResource is the name permissions see for an exchange: the
// default exchange is "amq.default" (rabbit_misc:r/3 via rabbit_channel).
func exchangeResource(name string) string {
	if name == "" {
		return "amq.default"
	}
	return name
}

// serverNamedQueue stands for a queue the gateway will name "amq.gen-…"
// when a declare's configure permission is checked before it exists.
const serverNamedQueue = "amq.gen-0000000000000000000000"

// authorize checks m against the user's permissions in the vhost, as
// rabbit_channel does before each method: configure to declare or delete,
// write on the destination and read on the source to bind, write on the
// exchange to publish, read on the queue to consume, get or purge. Passive
// declares need none.
func (ch *channel) authorize(m amqp.Method) error {
	c := ch.c
	if c.perm == nil {
		return nil
	}
	queue := func(q string) (string, error) { return ch.queueName(q) }
	switch m := m.(type) {
	case *amqp.ExchangeDeclare:
		if !m.Passive {
			return c.check('c', 'e', exchangeResource(m.Exchange))
		}
	case *amqp.ExchangeDelete:
		return c.check('c', 'e', exchangeResource(m.Exchange))
	case *amqp.ExchangeBind:
		return c.checkBind(m.Source, m.Destination)
	case *amqp.ExchangeUnbind:
		return c.checkBind(m.Source, m.Destination)
	case *amqp.QueueDeclare:
		if m.Passive {
			return nil
		}
		name := m.Queue
		if name == "" {
			name = serverNamedQueue
		}
		return c.check('c', 'q', name)
	case *amqp.QueueDelete:
		q, err := queue(m.Queue)
		if err != nil {
			return nil // the method itself answers 404
		}
		return c.check('c', 'q', q)
	case *amqp.QueueBind, *amqp.QueueUnbind:
		var qn, ex string
		if b, ok := m.(*amqp.QueueBind); ok {
			qn, ex = b.Queue, b.Exchange
		} else {
			u := m.(*amqp.QueueUnbind)
			qn, ex = u.Queue, u.Exchange
		}
		q, err := queue(qn)
		if err != nil {
			return nil
		}
		if err := c.check('w', 'q', q); err != nil {
			return err
		}
		return c.check('r', 'e', exchangeResource(ex))
	case *amqp.QueuePurge:
		q, err := queue(m.Queue)
		if err != nil {
			return nil
		}
		return c.check('r', 'q', q)
	case *amqp.BasicPublish:
		return c.check('w', 'e', exchangeResource(m.Exchange))
	case *amqp.BasicGet:
		q, err := queue(m.Queue)
		if err != nil {
			return nil
		}
		return c.check('r', 'q', q)
	case *amqp.BasicConsume:
		q, err := queue(m.Queue)
		if err != nil {
			return nil
		}
		return c.check('r', 'q', q)
	}
	return nil
}

// checkBind: write on the destination exchange, read on the source.
func (c *conn) checkBind(src, dst string) error {
	if err := c.check('w', 'e', exchangeResource(dst)); err != nil {
		return err
	}
	return c.check('r', 'e', exchangeResource(src))
}
