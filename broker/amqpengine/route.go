package amqpengine

import (
	"fmt"
	"strings"
)

// topicNode is one level of a topic exchange's binding-key trie (as
// RabbitMQ's rabbit_exchange_type_topic and cloudamqp/lavinmq
// src/lavinmq/amqp/exchange/topic.cr keep one): a key is split on '.', '*'
// matches one word, '#' zero or more.
type topicNode struct {
	words    map[string]*topicNode
	star     *topicNode
	hash     *topicNode
	bindings []*binding
}

// topicWords splits a binding or routing key; "" has no words (RabbitMQ's
// split_topic_key(<<>>) = []), so "#" matches it and "*" does not.
func topicWords(key string) []string {
	if key == "" {
		return nil
	}
	return strings.Split(key, ".")
}

func (n *topicNode) child(w string, create bool) *topicNode {
	switch w {
	case "*":
		if n.star == nil && create {
			n.star = &topicNode{}
		}
		return n.star
	case "#":
		if n.hash == nil && create {
			n.hash = &topicNode{}
		}
		return n.hash
	}
	c := n.words[w]
	if c == nil && create {
		if n.words == nil {
			n.words = make(map[string]*topicNode)
		}
		c = &topicNode{}
		n.words[w] = c
	}
	return c
}

func (n *topicNode) add(b *binding) {
	for _, w := range topicWords(b.key) {
		n = n.child(w, true)
	}
	n.bindings = append(n.bindings, b)
}

func (n *topicNode) empty() bool {
	return len(n.bindings) == 0 && len(n.words) == 0 && n.star == nil && n.hash == nil
}

// remove drops b and prunes the nodes left empty.
func (n *topicNode) remove(b *binding) {
	n.removePath(topicWords(b.key), b)
}

func (n *topicNode) removePath(words []string, b *binding) {
	if len(words) == 0 {
		n.bindings = without(n.bindings, b)
		return
	}
	c := n.child(words[0], false)
	if c == nil {
		return
	}
	c.removePath(words[1:], b)
	if !c.empty() {
		return
	}
	switch words[0] {
	case "*":
		n.star = nil
	case "#":
		n.hash = nil
	default:
		delete(n.words, words[0])
	}
}

// nextWord returns the word of key starting at pos and where the next one
// starts (-1: none left).
func nextWord(key string, pos int) (string, int) {
	if i := strings.IndexByte(key[pos:], '.'); i >= 0 {
		return key[pos : pos+i], pos + i + 1
	}
	return key[pos:], -1
}

// matchTopic collects the bindings of n's subtree that match the words of
// key from pos on (-1: no words left).
func (r *Targets) matchTopic(n *topicNode, key string, pos int) {
	if n.hash != nil {
		// '#' absorbs zero words, then one more at a time.
		for p := pos; ; {
			r.matchTopic(n.hash, key, p)
			if p < 0 {
				break
			}
			_, p = nextWord(key, p)
		}
	}
	if pos < 0 {
		r.addAll(n.bindings)
		return
	}
	w, next := nextWord(key, pos)
	if c := n.words[w]; c != nil {
		r.matchTopic(c, key, next)
	}
	if n.star != nil {
		r.matchTopic(n.star, key, next)
	}
}

// headersMatch is a headers-exchange binding's parsed arguments.
type headersMatch struct {
	any   bool
	pairs []headerPair
}

type headerPair struct {
	key   string
	value any
}

// parseHeadersMatch reads x-match (all, any, all-with-x, any-with-x;
// default all) and the pairs to compare: keys starting "x-" only for the
// *-with-x modes (rabbit_exchange_type_headers).
func parseHeadersMatch(args Args) (*headersMatch, error) {
	m := &headersMatch{}
	withX := false
	if v, ok := args["x-match"]; ok {
		s, _ := v.(string)
		switch s {
		case "all":
		case "any":
			m.any = true
		case "all-with-x":
			withX = true
		case "any-with-x":
			m.any, withX = true, true
		default:
			//lint:ignore ST1005 RabbitMQ's reply text, which applications match on
			return nil, fmt.Errorf("Invalid x-match field value %s; expected all, any, all-with-x, or any-with-x", erlangTerm(v))
		}
	}
	for k, v := range args {
		if k == "x-match" || !withX && strings.HasPrefix(k, "x-") {
			continue
		}
		m.pairs = append(m.pairs, headerPair{k, v})
	}
	return m, nil
}

// erlangTerm prints a value roughly as Erlang's ~tp would (binaries as <<"…">>).
func erlangTerm(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("<<%q>>", x)
	case []byte:
		return fmt.Sprintf("<<%q>>", x)
	}
	return formatValue(v)
}

// matches applies the binding to a message's headers. A void binding value
// matches the key's presence; other values match by type class and value.
func (m *headersMatch) matches(h map[string]any) bool {
	for _, p := range m.pairs {
		v, ok := h[p.key]
		hit := ok && (p.value == nil || looseEqual(p.value, v))
		if m.any && hit {
			return true
		}
		if !m.any && !hit {
			return false
		}
	}
	return !m.any
}

// Targets receives a routing result. Keep one per goroutine and reuse it:
// after the first few messages routing allocates nothing.
type Targets struct {
	// IDs are the target queues' ids, each once, in match order.
	IDs []uint64
	// feats are the target queues' features, beside IDs.
	feats []*features

	seen    []uint32 // by queue slot: == gen when already in IDs
	gen     uint32
	visited []*exchange
	hits    int // destinations the exchange being routed matched
}

func (r *Targets) reset(slots int) {
	r.IDs = r.IDs[:0]
	r.feats = r.feats[:0]
	r.visited = r.visited[:0]
	if len(r.seen) < slots {
		r.seen = append(r.seen, make([]uint32, slots-len(r.seen))...)
	}
	r.gen++
	if r.gen == 0 { // wrapped: old marks could collide
		clear(r.seen)
		r.gen = 1
	}
}

func (r *Targets) addQueue(q *queue) {
	r.hits++
	if r.seen[q.slot] != r.gen {
		r.seen[q.slot] = r.gen
		r.IDs = append(r.IDs, q.id)
		r.feats = append(r.feats, q.feat)
	}
}

func (r *Targets) addAll(bs []*binding) {
	for _, b := range bs {
		r.add(b)
	}
}

func (r *Targets) add(b *binding) {
	if b.q != nil {
		r.addQueue(b.q)
		return
	}
	r.hits++
	r.pushExchange(b.x)
}

// pushExchange queues x for routing unless it was visited (e2e cycles).
func (r *Targets) pushExchange(x *exchange) {
	for _, v := range r.visited {
		if v == x {
			return
		}
	}
	r.visited = append(r.visited, x)
}

// Route computes the queues a message published to exchange with
// routingKey and headers goes to, into t.IDs (empty: unroutable). It
// follows e2e bindings (each exchange once), an exchange's
// alternate-exchange when the exchange itself matched nothing, and the CC
// and BCC headers' extra routing keys. A missing exchange is 404; an
// internal one 403.
func (v *Vhost) Route(exchangeName, routingKey string, headers map[string]any, t *Targets) error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	x := v.exchanges[exchangeName]
	if x == nil {
		return notFound("exchange", exchangeName, v.name)
	}
	if x.internal {
		return errorf(AccessRefused, "cannot publish to internal %s", rs("exchange", x.name, v.name))
	}
	t.reset(len(v.slots))
	t.visited = append(t.visited, x)
	cc, _ := headers["CC"].([]any)
	bcc, _ := headers["BCC"].([]any)
	// visited doubles as the work list: exchanges are routed in the order
	// they were reached.
	for i := 0; i < len(t.visited); i++ {
		x := t.visited[i]
		t.hits = 0
		switch x.kind {
		case Fanout:
			t.addAll(x.out)
		case Headers:
			for _, b := range x.out {
				if b.match.matches(headers) {
					t.add(b)
				}
			}
		default:
			v.routeKey(x, routingKey, t)
			for _, k := range cc {
				if s, ok := k.(string); ok {
					v.routeKey(x, s, t)
				}
			}
			for _, k := range bcc {
				if s, ok := k.(string); ok {
					v.routeKey(x, s, t)
				}
			}
		}
		if t.hits == 0 && x.alternate != "" {
			if ae := v.exchanges[x.alternate]; ae != nil {
				t.pushExchange(ae)
			}
		}
	}
	return nil
}

// routeKey matches one routing key against a direct or topic exchange.
func (v *Vhost) routeKey(x *exchange, key string, t *Targets) {
	if x.kind == Topic {
		pos := 0
		if key == "" {
			pos = -1
		}
		t.matchTopic(x.topic, key, pos)
		return
	}
	if x.name == "" {
		// Every queue is bound to the default exchange by its name.
		if q := v.queues[key]; q != nil {
			t.addQueue(q)
		}
		return
	}
	t.addAll(x.direct[key])
}
