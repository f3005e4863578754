// Package clients tracks the producers and consumers connected to a broker:
// which connection belongs to which group, the subscriptions each consumer
// group declared in its heartbeats, and when each was last heard from.
package clients

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mqops/mqops/broker/sql92"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// Channel is one client connection registered in a group.
type Channel struct {
	Conn       *remoting.Conn
	ClientID   string
	Language   string
	Version    int
	LastUpdate time.Time
}

// Subscription is a consumer group's subscription to one topic, with tag
// codes recomputed by the broker (the Go client hashes UTF-8 bytes, Java
// hashes UTF-16 units; the broker's own hash is what the consume queue holds).
type Subscription struct {
	Data  wire.SubscriptionData
	All   bool
	Codes map[int64]struct{}
	Tags  map[string]struct{}
	// A property-filter subscription (expression type other than TAG) has
	// Selector, or FilterErr when its expression does not compile; the
	// broker refuses the pulls of the latter.
	Selector  *sql92.Selector
	FilterErr error
}

// IsTagType is Java's ExpressionType.isTagType: no type or TAG.
func IsTagType(expressionType string) bool { return expressionType == "" || expressionType == "TAG" }

// NewSubscription builds a subscription from a pull's own expression: tags
// such as "TagA || TagB" or "*", or an SQL92 expression.
func NewSubscription(topic, expr, expressionType string, version int64) *Subscription {
	if expressionType == "" {
		expressionType = "TAG"
	}
	s := &Subscription{Data: wire.SubscriptionData{Topic: topic, SubString: expr, ExpressionType: expressionType, SubVersion: version}}
	if IsTagType(expressionType) {
		s.fill(splitTags(expr))
	} else {
		s.compile()
	}
	return s
}

// selectors keeps parsed expressions, as Java's SelectorParser keeps a
// cache of 100: pulls carrying their own SQL92 expression do not parse it
// each time.
var selectors = sql92.NewCache(100)

func (s *Subscription) compile() {
	if s.Data.ExpressionType != "SQL92" {
		s.FilterErr = fmt.Errorf("expression type %q is not supported: use TAG or SQL92", s.Data.ExpressionType)
		return
	}
	s.Selector, s.FilterErr = selectors.Parse(s.Data.SubString)
}

func splitTags(expr string) []string {
	expr = strings.TrimSpace(expr)
	if expr == "" || expr == "*" {
		return nil
	}
	var tags []string
	for _, t := range strings.Split(expr, "||") {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, t)
		}
	}
	return tags
}

func (s *Subscription) fill(tags []string) {
	if len(tags) == 0 {
		s.All = true
		return
	}
	s.Codes = make(map[int64]struct{}, len(tags))
	s.Tags = make(map[string]struct{}, len(tags))
	for _, t := range tags {
		s.Tags[t] = struct{}{}
		s.Codes[int64(int32(wire.TagsHashCode([]byte(t))))] = struct{}{}
	}
}

// MatchCode is the consume-queue filter: tag-less messages only match "*".
// A property filter does not filter there.
func (s *Subscription) MatchCode(code int64) bool {
	if s.All || s.Selector != nil {
		return true
	}
	_, ok := s.Codes[int64(int32(code))]
	return ok
}

// MatchRecord is the exact tag check against a stored record.
func (s *Subscription) MatchRecord(rec []byte) bool {
	if s.All {
		return true
	}
	if s.Selector != nil {
		return s.Selector.Match(wire.RecordView(rec).Properties())
	}
	tag := wire.PropertyValue(wire.RecordView(rec).Properties(), wire.PropTags)
	_, ok := s.Tags[string(tag)]
	return ok
}

// ConsumerGroup is what the broker knows of one consumer group.
type ConsumerGroup struct {
	Name             string
	ConsumeType      string
	MessageModel     string
	ConsumeFromWhere string
	channels         map[*remoting.Conn]*Channel
	subs             map[string]*Subscription
}

// Manager holds every group; it is safe for concurrent use.
type Manager struct {
	mu        sync.RWMutex
	consumers map[string]*ConsumerGroup
	producers map[string]map[*remoting.Conn]*Channel
}

// NewManager returns an empty manager.
func NewManager() *Manager {
	return &Manager{consumers: map[string]*ConsumerGroup{}, producers: map[string]map[*remoting.Conn]*Channel{}}
}

// RegisterProducer records a producer heartbeat.
func (m *Manager) RegisterProducer(group string, ch Channel) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if closed(ch.Conn) {
		return
	}
	g := m.producers[group]
	if g == nil {
		g = map[*remoting.Conn]*Channel{}
		m.producers[group] = g
	}
	cp := ch
	g[ch.Conn] = &cp
}

// closed reports whether a connection is already closed. Checked under the
// manager's lock: Close closes Done before it runs the removal callback, so
// a heartbeat racing a close can never re-register a dead connection.
func closed(c *remoting.Conn) bool {
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}

// RegisterConsumer records a consumer heartbeat and reports whether the
// group's membership or subscriptions changed (consumers must then be told
// to rebalance).
func (m *Manager) RegisterConsumer(cd *wire.ConsumerData, ch Channel) (changed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if closed(ch.Conn) {
		return false
	}
	g := m.consumers[cd.GroupName]
	if g == nil {
		g = &ConsumerGroup{Name: cd.GroupName, channels: map[*remoting.Conn]*Channel{}, subs: map[string]*Subscription{}}
		m.consumers[cd.GroupName] = g
	}
	g.ConsumeType, g.MessageModel, g.ConsumeFromWhere = cd.ConsumeType, cd.MessageModel, cd.ConsumeFromWhere
	if old, ok := g.channels[ch.Conn]; !ok || old.ClientID != ch.ClientID {
		changed = true
	}
	cp := ch
	g.channels[ch.Conn] = &cp

	seen := make(map[string]bool, len(cd.SubscriptionDataSet))
	for _, sd := range cd.SubscriptionDataSet {
		seen[sd.Topic] = true
		old := g.subs[sd.Topic]
		if old != nil && old.Data.SubVersion >= sd.SubVersion {
			continue
		}
		if old == nil || old.Data.SubString != sd.SubString || old.Data.ExpressionType != sd.ExpressionType {
			changed = true
		}
		s := &Subscription{Data: sd}
		if IsTagType(sd.ExpressionType) {
			tags := sd.TagsSet
			if len(tags) == 0 {
				tags = splitTags(sd.SubString)
			}
			s.fill(tags)
		} else {
			s.compile() // once per subscription version
		}
		g.subs[sd.Topic] = s
	}
	// Topics absent from this heartbeat are dropped, as Java does.
	for t := range g.subs {
		if !seen[t] {
			delete(g.subs, t)
			changed = true
		}
	}
	return changed
}

// Unregister removes a connection from the named groups (UNREGISTER_CLIENT).
// It returns the consumer groups whose membership changed.
func (m *Manager) Unregister(c *remoting.Conn, producerGroup, consumerGroup string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if g := m.producers[producerGroup]; g != nil {
		delete(g, c)
		if len(g) == 0 {
			delete(m.producers, producerGroup)
		}
	}
	if g := m.consumers[consumerGroup]; g != nil {
		if _, ok := g.channels[c]; ok {
			m.removeChannelLocked(g, c)
			return []string{consumerGroup}
		}
	}
	return nil
}

// RemoveConn drops a closed connection from every group and returns the
// consumer groups it left.
func (m *Manager) RemoveConn(c *remoting.Conn) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, g := range m.producers {
		delete(g, c)
		if len(g) == 0 {
			delete(m.producers, name)
		}
	}
	var left []string
	for name, g := range m.consumers {
		if _, ok := g.channels[c]; ok {
			m.removeChannelLocked(g, c)
			left = append(left, name)
		}
	}
	return left
}

func (m *Manager) removeChannelLocked(g *ConsumerGroup, c *remoting.Conn) {
	delete(g.channels, c)
	if len(g.channels) == 0 {
		delete(m.consumers, g.Name)
	}
}

// Expired returns connections not heard from since cutoff.
func (m *Manager) Expired(cutoff time.Time) []*Channel {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []*Channel
	seen := map[*remoting.Conn]bool{}
	add := func(ch *Channel) {
		if ch.LastUpdate.Before(cutoff) && !seen[ch.Conn] {
			seen[ch.Conn] = true
			out = append(out, ch)
		}
	}
	for _, g := range m.producers {
		for _, ch := range g {
			add(ch)
		}
	}
	for _, g := range m.consumers {
		for _, ch := range g.channels {
			add(ch)
		}
	}
	return out
}

// Subscription returns a group's subscription to a topic, nil when none.
// groupKnown reports whether the group has any live consumer. The group
// name is a []byte so the pull path does not allocate.
func (m *Manager) Subscription(group []byte, topic string) (s *Subscription, groupKnown bool, model string) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	g := m.consumers[string(group)]
	if g == nil {
		return nil, false, ""
	}
	return g.subs[topic], true, g.MessageModel
}

// ConsumerConns returns the live connections of a consumer group.
func (m *Manager) ConsumerConns(group string) []*remoting.Conn {
	m.mu.RLock()
	defer m.mu.RUnlock()
	g := m.consumers[group]
	if g == nil {
		return nil
	}
	out := make([]*remoting.Conn, 0, len(g.channels))
	for c := range g.channels {
		out = append(out, c)
	}
	return out
}

// ConsumerIDs returns the sorted client ids of a consumer group.
func (m *Manager) ConsumerIDs(group string) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	g := m.consumers[group]
	if g == nil {
		return nil
	}
	ids := make([]string, 0, len(g.channels))
	for _, ch := range g.channels {
		ids = append(ids, ch.ClientID)
	}
	sort.Strings(ids)
	return ids
}

// GroupInfo is a snapshot of one consumer group for admin answers.
type GroupInfo struct {
	Name, ConsumeType, MessageModel, ConsumeFromWhere string
	Channels                                          []Channel
	Subscriptions                                     map[string]wire.SubscriptionData
}

// Consumer returns a snapshot of a consumer group; ok is false when no
// consumer of it is connected.
func (m *Manager) Consumer(group string) (GroupInfo, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	g := m.consumers[group]
	if g == nil {
		return GroupInfo{}, false
	}
	gi := GroupInfo{Name: g.Name, ConsumeType: g.ConsumeType, MessageModel: g.MessageModel, ConsumeFromWhere: g.ConsumeFromWhere,
		Subscriptions: make(map[string]wire.SubscriptionData, len(g.subs))}
	for _, ch := range g.channels {
		gi.Channels = append(gi.Channels, *ch)
	}
	sort.Slice(gi.Channels, func(i, j int) bool { return gi.Channels[i].ClientID < gi.Channels[j].ClientID })
	for t, s := range g.subs {
		gi.Subscriptions[t] = s.Data
	}
	return gi, true
}

// Producer returns the connected channels of a producer group.
func (m *Manager) Producer(group string) []Channel {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Channel, 0, len(m.producers[group]))
	for _, ch := range m.producers[group] {
		out = append(out, *ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out
}

// ConsumerGroups lists the groups with a connected consumer, sorted.
func (m *Manager) ConsumerGroups() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(m.consumers))
	for g := range m.consumers {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}

// GroupsSubscribing lists connected groups subscribed to a topic, sorted.
func (m *Manager) GroupsSubscribing(topic string) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []string
	for name, g := range m.consumers {
		if _, ok := g.subs[topic]; ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
