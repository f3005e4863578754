package grpcsvc

import (
	"context"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"

	"github.com/mqops/mqops/wire"
)

// routeTTL is how long a topic's route is reused; clients ask every 30 s
// (Java caches topicRouteServiceCacheRefreshSeconds, 20 s; shorter here
// so a new broker shows up sooner).
const routeTTL = 5 * time.Second

type routeEntry struct {
	queues []*v2.MessageQueue
	at     time.Time
}

type routeCache struct {
	mu sync.Mutex
	m  map[string]routeEntry
}

func (c *routeCache) get(topic string) []*v2.MessageQueue {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[topic]; ok && time.Since(e.at) < routeTTL {
		return e.queues
	}
	return nil
}

func (c *routeCache) put(topic string, q []*v2.MessageQueue) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]routeEntry{}
	}
	if len(c.m) > 10000 { // many topics: start over rather than grow
		clear(c.m)
	}
	c.m[topic] = routeEntry{queues: q, at: time.Now()}
}

// QueryRoute answers with every master's queues of the topic, each
// pointing at that broker's own gRPC address: sends and receives go to
// the broker that owns the queue, with no extra hop (Java's local proxy
// mode, apache/rocketmq
// proxy/src/main/java/org/apache/rocketmq/proxy/grpc/v2/route/RouteActivity.java).
func (s *Server) QueryRoute(ctx context.Context, req *v2.QueryRouteRequest) (*v2.QueryRouteResponse, error) {
	if _, bad := clientOf(ctx); bad != nil {
		return &v2.QueryRouteResponse{Status: bad}, nil
	}
	topic := withNamespace(ctx, req.GetTopic())
	if err := wire.CheckTopic(topic); err != nil {
		return &v2.QueryRouteResponse{Status: st(v2.Code_ILLEGAL_TOPIC, err.Error())}, nil
	}
	if q := s.routes.get(topic); q != nil {
		return &v2.QueryRouteResponse{Status: statusOK(), MessageQueues: q}, nil
	}
	rd, err := s.be.Route(topic)
	if err != nil {
		return &v2.QueryRouteResponse{Status: st(v2.Code_INTERNAL_SERVER_ERROR, "query the route of "+topic+": "+err.Error())}, nil
	}
	if rd == nil {
		return &v2.QueryRouteResponse{Status: st(v2.Code_TOPIC_NOT_FOUND, "topic "+topic+" not found")}, nil
	}
	var masters []string
	for _, bd := range rd.BrokerDatas {
		if a, ok := bd.BrokerAddrs[0]; ok {
			masters = append(masters, a)
		}
	}
	q, guessed := buildQueues(req.GetTopic(), rd, s.be.GrpcAddrs(masters), s.ownPort(), acceptTypes(s.be.TopicMessageType(topic)))
	if len(q) == 0 {
		return &v2.QueryRouteResponse{Status: st(v2.Code_TOPIC_NOT_FOUND, "topic "+topic+" has no master broker serving it")}, nil
	}
	if !guessed {
		// A guessed address is not kept: the broker may publish its own soon.
		s.routes.put(topic, q)
	}
	return &v2.QueryRouteResponse{Status: statusOK(), MessageQueues: q}, nil
}

func (s *Server) ownPort() int {
	if ta, ok := s.lis.Addr().(*net.TCPAddr); ok {
		return ta.Port
	}
	return 0
}

// buildQueues turns a remoting route into 5.x message queues: masters
// only (Go v5.1.2 filters neither role nor permission), sorted by broker
// name and queue id (Go compares routes entry by entry every 30 s), a
// broker's gRPC address from what it published, else its remoting host
// with this broker's gRPC port (Java's rule: every broker uses the same
// port); guessed reports that rule was used.
func buildQueues(topic *v2.Resource, rd *wire.TopicRouteData, grpcAddrs map[string]string, ownPort int, accept []v2.MessageType) (out []*v2.MessageQueue, guessed bool) {
	perms := map[string]wire.QueueData{}
	for _, qd := range rd.QueueDatas {
		perms[qd.BrokerName] = qd
	}
	brokers := append([]wire.BrokerData(nil), rd.BrokerDatas...)
	sort.Slice(brokers, func(i, j int) bool { return brokers[i].BrokerName < brokers[j].BrokerName })
	for _, bd := range brokers {
		master, ok := bd.BrokerAddrs[0]
		qd, hasQueues := perms[bd.BrokerName]
		if !ok || !hasQueues {
			continue
		}
		addr := grpcAddrs[master]
		if addr == "" {
			host, _, err := net.SplitHostPort(master)
			if err != nil {
				continue
			}
			addr, guessed = net.JoinHostPort(host, strconv.Itoa(ownPort)), true
		}
		ep := endpoints(addr)
		if ep == nil {
			continue
		}
		broker := &v2.Broker{Name: bd.BrokerName, Id: 0, Endpoints: ep}
		out = append(out, queuesOf(topic, qd, broker, accept)...)
	}
	return out, guessed
}

// queuesOf splits a broker's queues by permission as Java's
// RouteActivity.genMessageQueueFromQueueData does: read-only, then
// write-only, then read-write ids, counting up from 0.
func queuesOf(topic *v2.Resource, qd wire.QueueData, broker *v2.Broker, accept []v2.MessageType) []*v2.MessageQueue {
	readable, writable := qd.Perm&wire.PermRead != 0, qd.Perm&wire.PermWrite != 0
	var r, w, rw int
	switch {
	case readable && writable:
		rw = min(qd.ReadQueueNums, qd.WriteQueueNums)
		r, w = qd.ReadQueueNums-rw, qd.WriteQueueNums-rw
	case writable:
		w = qd.WriteQueueNums
	case readable:
		r = qd.ReadQueueNums
	}
	var out []*v2.MessageQueue
	id := int32(0)
	add := func(n int, p v2.Permission) {
		for range n {
			out = append(out, &v2.MessageQueue{Topic: topic, Id: id, Permission: p, Broker: broker, AcceptMessageTypes: accept})
			id++
		}
	}
	add(r, v2.Permission_READ)
	add(w, v2.Permission_WRITE)
	add(rw, v2.Permission_READ_WRITE)
	return out
}

// endpoints is one address as a 5.x Endpoints; nil if it does not parse.
func endpoints(addr string) *v2.Endpoints {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 {
		return nil
	}
	scheme := v2.AddressScheme_DOMAIN_NAME
	if ip := net.ParseIP(host); ip != nil {
		scheme = v2.AddressScheme_IPv6
		if ip.To4() != nil {
			scheme = v2.AddressScheme_IPv4
		}
	}
	return &v2.Endpoints{Scheme: scheme, Addresses: []*v2.Address{{Host: host, Port: int32(p)}}}
}
