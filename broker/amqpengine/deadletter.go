package amqpengine

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/wire/amqp"
)

// Dead-lettering (https://www.rabbitmq.com/docs/dlx): a message a queue
// rejects, expires, trims or gives up redelivering is republished through
// the router to the queue's x-dead-letter-exchange as a new record, with
// its x-death history extended and its expiration cleared. Messages of a
// queue without a dead-letter exchange are dropped.

// deadLetter dead-letters q's message at off for reason.
func (d *delivery) deadLetter(q *qstate, off int64, reason string) error {
	f := q.feat.Load()
	if f == nil || !f.hasDLX {
		return nil
	}
	s := d.be.Store
	u, ok := s.UnitAt(q.lmq, wire.LMQQueueID, off)
	if !ok {
		return nil // gone from the log
	}
	rec, err := s.ReadRecord(u.Phys, nil)
	if err != nil {
		return internalError(fmt.Errorf("dead-letter %s offset %d: %w", q.lmq, off, err))
	}
	return d.deadLetterRecord(q, f, wire.RecordView(rec), reason)
}

// deadLetterRecord republishes v, a message of q, to q's dead-letter
// exchange.
func (d *delivery) deadLetterRecord(q *qstate, f *features, v wire.RecordView, reason string) error {
	if f == nil || !f.hasDLX {
		return nil
	}
	rp := v.Properties()
	raw, err := base64.StdEncoding.DecodeString(string(wire.PropertyValue(rp, PropAMQP)))
	if err != nil {
		return nil // not written by Publish: nothing to dead-letter
	}
	return d.deadLetterMsg(q.vhost, f, raw, UnescapeProp(string(wire.PropertyValue(rp, PropExchange))),
		UnescapeProp(string(wire.PropertyValue(rp, PropRoutingKey))), v.Body(), v.BornTimestamp(), reason)
}

// deadLetterMsg republishes a message of the queue with features f,
// published to exchange with routing key rk with AMQP properties raw
// (flags word first), to its dead-letter exchange.
func (d *delivery) deadLetterMsg(vhost string, f *features, raw []byte, exchange, rk string, body []byte, born int64, reason string) error {
	var p amqp.Properties
	if len(raw) >= 2 {
		h := amqp.ContentHeader{Flags: uint16(raw[0])<<8 | uint16(raw[1]), Props: raw[2:]}
		if err := h.Properties(&p); err != nil {
			return nil // Publish stored only properties that decode
		}
	}
	keys := []any{rk}
	if cc, ok := p.Headers["CC"].([]any); ok {
		keys = append(keys, cc...)
	}
	p.Headers = addDeath(p.Headers, f.queue, reason, exchange, keys, p.Expiration, time.Now())
	p.Expiration = ""
	props, err := encodeProperties(&p)
	if err != nil {
		return internalError(fmt.Errorf("dead-letter from %s: re-encode properties: %w", f.queue, err))
	}
	key := rk
	if f.hasDLRK {
		key = f.dlrk
	}
	vh, err := d.e.Vhost(vhost)
	if err != nil {
		return nil // the vhost is gone
	}
	var t Targets
	if err := vh.Route(f.dlx, key, p.Headers, &t); err != nil {
		// A missing dead-letter exchange drops the message, as RabbitMQ
		// does (rabbit_dead_letter logs and drops).
		return nil
	}
	if reason != ReasonRejected {
		dropCycles(&t, p.Headers["x-death"].([]any))
	}
	if len(t.IDs) == 0 {
		return nil
	}
	persistent := p.DeliveryMode == 2
	sp, _ := recordProps(nil, nil, vhost, f.dlx, key, props, p.MessageID, t.IDs, persistent)
	m := store.Message{Topic: StoreTopic(vhost), BornTimestamp: born, Body: body, Properties: sp}
	r := d.be.Store.Put(&m)
	if r.Status != store.PutOK {
		return internalError(fmt.Errorf("dead-letter from %s: store refused the message: %s", f.queue, r.Status))
	}
	if persistent {
		if err := d.be.Durable(r.EndOffset); err != nil {
			return internalError(fmt.Errorf("dead-letter from %s: %w", f.queue, err))
		}
	}
	// In the dead-letter queues before the reject is answered, as a
	// publish is before its confirm.
	d.waitDispatched(r.EndOffset)
	for j, id := range t.IDs {
		if tf := t.feats[j]; tf.limited() && !tf.rejectPublish {
			d.trimHead(d.queue(vhost, id, tf))
		}
	}
	return nil
}

// encodeProperties encodes p as Publish stores it: the flags word, then
// the property list.
func encodeProperties(p *amqp.Properties) ([]byte, error) {
	flags, out, err := amqp.AppendProperties([]byte{0, 0}, p)
	if err != nil {
		return nil, err
	}
	out[0], out[1] = byte(flags>>8), byte(flags)
	return out, nil
}

// addDeath extends a dead-lettered message's x-death history as RabbitMQ
// 3.x does (rabbit_dead_letter:update_x_death_header): the entry of the
// same queue and reason counts up and moves to the front, else a new one
// goes there; x-first-death-* are set once, x-last-death-* every time.
func addDeath(h amqp.Table, queue, reason, exchange string, keys []any, expiration string, now time.Time) amqp.Table {
	if h == nil {
		h = amqp.Table{}
	}
	old, _ := h["x-death"].([]any)
	deaths := make([]any, 1, len(old)+1)
	var hit map[string]any
	for _, e := range old {
		if t, ok := e.(map[string]any); ok && hit == nil && t["queue"] == queue && t["reason"] == reason {
			hit = t
			continue
		}
		deaths = append(deaths, e)
	}
	if hit != nil {
		n, _ := asInt(hit["count"])
		hit["count"] = n + 1
	} else {
		hit = map[string]any{"count": int64(1), "reason": reason, "queue": queue,
			"time": now.UTC().Truncate(time.Second), "exchange": exchange, "routing-keys": keys}
		if expiration != "" {
			hit["original-expiration"] = expiration
		}
	}
	deaths[0] = hit
	h["x-death"] = deaths
	if _, ok := h["x-first-death-reason"]; !ok {
		h["x-first-death-reason"] = reason
		h["x-first-death-queue"] = queue
		h["x-first-death-exchange"] = exchange
	}
	h["x-last-death-reason"] = reason
	h["x-last-death-queue"] = queue
	h["x-last-death-exchange"] = exchange
	return h
}

// dropCycles removes the targets a message dead-lettered without a
// rejection would cycle back into (rabbit_dead_letter:detect_cycles): a
// target queue that is in the history with no rejection since. deaths is
// the history, newest first.
func dropCycles(t *Targets, deaths []any) {
	k := 0
	for i, id := range t.IDs {
		if f := t.feats[i]; f != nil && cycles(deaths, f.queue) {
			continue
		}
		t.IDs[k], t.feats[k] = id, t.feats[i]
		k++
	}
	t.IDs, t.feats = t.IDs[:k], t.feats[:k]
}

func cycles(deaths []any, queue string) bool {
	for _, e := range deaths {
		t, _ := e.(map[string]any)
		if t["reason"] == ReasonRejected {
			return false
		}
		if t["queue"] == queue {
			return true
		}
	}
	return false
}

// recordProps appends the stored properties of a message published to
// exchange with routing key rk: the AMQP ones (props, flags word first),
// the message id as KEYS, the routing key as TAGS, the light queues of
// target queues ids to dispatch into, and whether the send waits for the
// flush. list is scratch space for the dispatch list; it returns both.
func recordProps(dst, list []byte, vhost, exchange, rk string, props []byte, msgID string, ids []uint64, persistent bool) ([]byte, []byte) {
	list = list[:0]
	for j, id := range ids {
		if j > 0 {
			list = append(list, ',')
		}
		list = append(list, QueueLMQ(vhost, id)...)
	}
	rk = EscapeProp(rk)
	dst = wire.AppendProperty(dst, PropExchange, EscapeProp(exchange))
	dst = wire.AppendProperty(dst, PropRoutingKey, rk)
	// Encoded in place: a base64 string per message was an allocation.
	dst = base64.StdEncoding.AppendEncode(wire.AppendProperty(dst, PropAMQP, ""), props)
	if msgID != "" {
		dst = wire.AppendProperty(dst, wire.PropKeys, EscapeProp(msgID))
	}
	if rk != "" {
		dst = wire.AppendProperty(dst, wire.PropTags, rk)
	}
	dst = wire.AppendProperty(dst, wire.PropInnerMultiDispatch, list)
	return wire.AppendProperty(dst, wire.PropWait, strconv.FormatBool(persistent)), list
}

// messageExpired reports whether a message stored at storeMs (Unix ms)
// with AMQP properties raw (flags word first) is past its deadline at
// nowMs: store time plus the lesser of the queue's TTL and its own
// expiration.
func messageExpired(f *features, raw []byte, storeMs, nowMs int64) bool {
	ttl := int64(-1)
	if f != nil {
		ttl = f.ttl
	}
	if len(raw) >= 2 && raw[0]&byte(amqp.FlagExpiration>>8) != 0 {
		h := amqp.ContentHeader{Flags: uint16(raw[0])<<8 | uint16(raw[1]), Props: raw[2:]}
		if e, ok := h.Lookup(amqp.FlagExpiration); ok {
			if n, err := strconv.ParseInt(string(e), 10, 64); err == nil && n >= 0 && (ttl < 0 || n < ttl) {
				ttl = n
			}
		}
	}
	return ttl >= 0 && nowMs > storeMs+ttl
}

// bury dead-letters (or drops) the messages q holds under the dead
// handles hs, then settles them; one that cannot be dead-lettered now
// goes back to the head for a later try.
func (d *delivery) bury(q *qstate, hs []uint64, reason string) error {
	var first error
	for _, h := range hs {
		q.mu.Lock()
		f := q.inflight[h]
		q.mu.Unlock()
		if f == nil {
			continue
		}
		err := d.deadLetter(q, f.off, reason)
		q.mu.Lock()
		delete(q.inflight, h)
		if err != nil {
			q.releaseLocked(d.be.Store, f.off)
			slices.Sort(q.released)
			if first == nil {
				first = err
			}
		}
		q.commitLocked(d.be.Offsets)
		q.mu.Unlock()
	}
	return first
}
