package amqpengine

import (
	"slices"
	"sync"
)

// The queues' consumers, as the gateways register them (AMQP_CONSUME,
// AMQP_CANCEL): what basic.consume's exclusive flag, queue.declare-ok's
// consumer-count, queue.delete's if-unused and auto-delete need to see
// across gateways. They live in memory: a restart forgets them, and the
// gateways register theirs again when the engine's Epoch in their lease
// answers changes (amqp/gateway/reregister.go).

// consumerKey names one consumer: a gateway channel's session and its tag.
type consumerKey struct{ session, tag string }

type queueKey struct {
	vhost string
	id    uint64
}

type consumerSet struct {
	name      string // the queue's name, for auto-delete
	owners    map[consumerKey]Owner
	exclusive bool // its one consumer asked for exclusive access
}

type consumers struct {
	mu      sync.Mutex
	byQueue map[queueKey]*consumerSet
}

// Consume registers consumer (session, tag) of connection conn on queue
// after the queue checks of a passive declare (404, 405): 403 when the
// queue has an exclusive consumer, or consumers and exclusive is asked
// (rabbit_channel: "in exclusive use"). It returns the queue's consumers.
func (e *Engine) Consume(vhost, queue, session, tag string, conn Owner, exclusive bool) (uint32, error) {
	v, err := e.Vhost(vhost)
	if err != nil {
		return 0, err
	}
	q, err := v.DeclareQueue(QueueDecl{Name: queue, Passive: true, Conn: conn})
	if err != nil {
		return 0, err
	}
	c := &e.cons
	c.mu.Lock()
	defer c.mu.Unlock()
	k := queueKey{vhost, q.ID}
	s := c.byQueue[k]
	if s != nil && len(s.owners) > 0 && (s.exclusive || exclusive) {
		return 0, errorf(AccessRefused, "%s in exclusive use", rs("queue", queue, vhost))
	}
	if s == nil {
		if c.byQueue == nil {
			c.byQueue = map[queueKey]*consumerSet{}
		}
		s = &consumerSet{name: q.Name, owners: map[consumerKey]Owner{}}
		c.byQueue[k] = s
	}
	s.owners[consumerKey{session, tag}] = conn
	s.exclusive = exclusive
	return uint32(len(s.owners)), nil
}

// Cancel removes the consumers of session (all of them when tag is "")
// and deletes the auto-delete queues whose last consumer that was (and
// their light queues), returning them.
func (e *Engine) Cancel(vhost, session, tag string) ([]QueueInfo, error) {
	return e.dropConsumers(func(k queueKey, ck consumerKey, _ Owner) bool {
		return k.vhost == vhost && ck.session == session && (tag == "" || ck.tag == tag)
	})
}

// CancelOwners removes the consumers of the connections match accepts (a
// closed connection, a gateway whose lease expired), with Cancel's
// auto-delete.
func (e *Engine) CancelOwners(match func(Owner) bool) ([]QueueInfo, error) {
	return e.dropConsumers(func(_ queueKey, _ consumerKey, o Owner) bool { return match(o) })
}

func (e *Engine) dropConsumers(match func(queueKey, consumerKey, Owner) bool) ([]QueueInfo, error) {
	c := &e.cons
	var emptied []queueKey
	var names []string
	type sessionQueue struct {
		k       queueKey
		session string
	}
	var stops []sessionQueue
	c.mu.Lock()
	for k, s := range c.byQueue {
		n := len(s.owners)
		var dropped []string
		for ck, o := range s.owners {
			if match(k, ck, o) {
				delete(s.owners, ck)
				dropped = append(dropped, ck.session)
			}
		}
		for _, sess := range dropped {
			left := false
			for ck := range s.owners {
				if ck.session == sess {
					left = true
					break
				}
			}
			if !left && !slices.Contains(stops, sessionQueue{k, sess}) {
				stops = append(stops, sessionQueue{k, sess})
			}
		}
		if len(s.owners) == 0 {
			delete(c.byQueue, k)
			if n > 0 {
				emptied = append(emptied, k)
				names = append(names, s.name)
			}
		}
	}
	c.mu.Unlock()
	if d, err := e.path(); err == nil {
		for _, st := range stops {
			d.queue(st.k.vhost, st.k.id, nil).stopSession(st.session)
		}
	}
	var gone []QueueInfo
	var firstErr error
	for i, k := range emptied {
		v, err := e.Vhost(k.vhost)
		if err != nil {
			continue // the vhost went
		}
		q, deleted, err := v.DeleteAutoDelete(names[i])
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if deleted {
			gone = append(gone, q)
			e.forgetDeleted(k.vhost, q)
		}
	}
	return gone, firstErr
}

// ConsumerCount is the number of consumers of queue id of vhost.
func (e *Engine) ConsumerCount(vhost string, id uint64) uint32 {
	c := &e.cons
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.byQueue[queueKey{vhost, id}]; s != nil {
		return uint32(len(s.owners))
	}
	return 0
}

// ForgetConsumers drops a deleted queue's consumers.
func (e *Engine) ForgetConsumers(vhost string, id uint64) {
	c := &e.cons
	c.mu.Lock()
	delete(c.byQueue, queueKey{vhost, id})
	c.mu.Unlock()
}

// forgetDeleted drops what a queue the engine deleted by itself (auto-delete,
// exclusive owner gone) left: its consumers, and its light queue and
// offsets once the message path has a store.
func (e *Engine) forgetDeleted(vhost string, q QueueInfo) {
	e.ForgetConsumers(vhost, q.ID)
	e.mu.RLock()
	attached := e.d != nil
	e.mu.RUnlock()
	if !attached {
		return
	}
	if err := e.ForgetQueue(vhost, q.ID); err != nil {
		e.log.Error("[AMQP] dropping a deleted queue's light queue failed", "vhost", vhost, "queue", q.Name, "err", err)
	}
}
