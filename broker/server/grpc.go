package server

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"

	"github.com/mqops/mqops/broker/flow"
	"github.com/mqops/mqops/broker/grpcsvc"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// GrpcEndpointsNamespace is the name servers' KV namespace where each
// broker publishes its gRPC address under its remoting address: Java
// assumes one gRPC port for all brokers, but brokers sharing a host (and
// tests) need their own. Java name servers accept the same KV calls.
const GrpcEndpointsNamespace = "MQOPS_GRPC_ENDPOINTS"

// grpcState is the gRPC service of a broker started with enableProxy.
type grpcState struct {
	srv  *grpcsvc.Server
	addr string // brokerIP1:port, as published

	mu        sync.Mutex
	published map[string]bool // name servers that have our address

	addrsMu sync.Mutex
	addrs   map[string]string
	addrsAt time.Time
}

// grpcAddrsTTL bounds how stale the brokers' published gRPC addresses may be.
const grpcAddrsTTL = 10 * time.Second

// openGrpc binds the gRPC port (enableProxy).
func (b *Broker) openGrpc() error {
	if !b.cfg.EnableProxy {
		return nil
	}
	if err := b.openPop(); err != nil {
		return err
	}
	cfg := b.cfg
	srv, err := grpcsvc.Listen(grpcsvc.Config{
		Addr:           net.JoinHostPort(cfg.BindAddress, strconv.Itoa(cfg.GrpcServerPort)),
		MaxRecvMsgSize: cfg.GrpcMaxInboundMessageSize,
		TLSMode:        cfg.TLSServerMode,
		TLS:            b.tlsServer,
		MaxMessageSize: cfg.MaxMessageSize,
		MaxDelay:       time.Duration(cfg.TimerMaxDelaySec) * time.Second,
		NoTypeCheck:    !cfg.EnableTopicMessageTypeCheck,
		MinInvisible:   time.Duration(cfg.MinInvisibleTimeMillsForRecv) * time.Millisecond,
		ACL:            b.acl,
		Log:            b.log,
	}, grpcBackend{b})
	if err != nil {
		return err
	}
	port := srv.Addr().(*net.TCPAddr).Port
	b.grpc = &grpcState{srv: srv, addr: net.JoinHostPort(cfg.BrokerIP1, strconv.Itoa(port)), published: map[string]bool{}}
	return nil
}

// GrpcAddr is the gRPC address the broker publishes, "" without enableProxy.
func (b *Broker) GrpcAddr() string {
	if b.grpc == nil {
		return ""
	}
	return b.grpc.addr
}

func (b *Broker) startGrpc() {
	if b.grpc == nil {
		return
	}
	b.log.Info("serving the RocketMQ 5 gRPC protocol", "addr", b.grpc.addr, "tlsServerMode", b.cfg.TLSServerMode)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := b.grpc.srv.Serve(); err != nil {
			b.log.Error("[SERVE] gRPC server stopped", "err", err)
		}
	}()
}

func (b *Broker) closeGrpc() {
	if b.grpc != nil {
		b.grpc.srv.Stop()
	}
}

// publishGrpcAddr puts the broker's gRPC address into a name server it
// just registered with, once per name server and run (the name server
// keeps KV entries on disk).
func (b *Broker) publishGrpcAddr(namesrv string, timeout time.Duration) {
	g := b.grpc
	if g == nil {
		return
	}
	g.mu.Lock()
	done := g.published[namesrv]
	g.mu.Unlock()
	if done {
		return
	}
	req := wire.NewRequest(wire.PutKVConfig, map[string]string{"namespace": GrpcEndpointsNamespace, "key": b.addr, "value": g.addr}, nil)
	resp, err := b.namesrv.Invoke(namesrv, req, timeout)
	if err == nil && resp.Code != wire.Success {
		err = fmt.Errorf("%s: %s", wire.ResponseName(resp.Code), resp.Remark)
	}
	if err != nil {
		b.log.Warn("[REGISTER_FAILED] publishing the gRPC address failed, will retry", "namesrv", namesrv, "err", err)
		return
	}
	g.mu.Lock()
	g.published[namesrv] = true
	g.mu.Unlock()
}

// grpcBackend is the broker as the gRPC service sees it.
type grpcBackend struct{ b *Broker }

// Send runs a 5.x message through the remoting send's admission
// (handleSend: budget, append slot), checks (sendTarget), store path and
// acknowledgement rule (ackWaits). A flow-control refusal is code 2, which
// the gRPC service answers TOO_MANY_REQUESTS and the HTTP gateway 429.
func (g grpcBackend) Send(m *grpcsvc.Message) grpcsvc.SendResult {
	b := g.b
	readAt := time.Now()
	// No per-connection cap: the call is the unit here, and the global
	// budgets bound memory.
	t, tag, ok := b.flow.Admit(nil, len(m.Body), readAt)
	if !ok {
		return b.refuseStream(m, tag, 0, -1)
	}
	// Before the answer leaves, as handleSend's.
	defer b.flow.Release(&t)
	tc, code, remark := b.sendTarget([]byte(m.Topic), nil)
	if tc == nil {
		return grpcsvc.SendResult{Code: code, Remark: remark}
	}
	if len(m.Body) > b.cfg.MaxMessageSize {
		return grpcsvc.SendResult{Code: wire.MessageIllegal, Remark: fmt.Sprintf("the message body size %d is larger than maxMessageSize %d", len(m.Body), b.cfg.MaxMessageSize)}
	}
	if b.inSyncShort(true) {
		b.putFailed.Add(1)
		return grpcsvc.SendResult{Code: wire.SystemError, Remark: remarkInSyncNotEnough}
	}
	if remark := b.takeQuotaStream(tc, m.Account, len(m.Body), m.BornHost); remark != "" {
		return grpcsvc.SendResult{Code: wire.SystemBusy, Remark: remark}
	}
	readAt = time.Now() // the queue wait starts after any quota delay, as takeQuota's
	// A FIFO group keeps its queue; other messages go round robin over
	// the write queues, as Java's proxy does
	// (SendMessageActivity.SendMessageQueueSelector).
	var qid int32
	if m.MessageGroup != "" {
		qid = grpcsvc.QueueForGroup(m.MessageGroup, tc.WriteQueueNums)
	} else {
		qid = int32(b.grpcRR.Add(1) % uint32(max(tc.WriteQueueNums, 1)))
	}
	sysFlag := m.SysFlag
	if tc.TopicFilterType == "MULTI_TAG" {
		sysFlag |= wire.SysFlagMultiTags
	}
	sm := store.Message{
		Topic: tc.TopicName, QueueID: qid, SysFlag: sysFlag,
		BornTimestamp: m.BornTimestamp, BornHost: m.BornHost,
		Body: m.Body, Properties: b.storedProperties(nil, m.Properties, nil),
	}
	if code, remark := b.parkTyped(&sm); code != wire.Success {
		return grpcsvc.SendResult{Code: code, Remark: remark}
	}
	var w flow.Waiter
	waited, queue, tag, ok := b.flow.Enter(&w, readAt)
	if !ok {
		return b.refuseStream(m, tag, waited, queue)
	}
	r := b.put(&sm)
	code, remark, ok = b.putStatusCode(r.Status)
	if !ok {
		b.putFailed.Add(1)
		return grpcsvc.SendResult{Code: code, Remark: remark}
	}
	b.stats.TopicPut([]byte(tc.TopicName), 1, int(r.WroteBytes))
	res := grpcsvc.SendResult{Code: code, Remark: remark, QueueID: qid, QueueOffset: r.QueueOffset, PhysOffset: r.PhysicalOffset}
	flush, repl, replCode := b.ackWaits(r.EndOffset)
	done := make(chan struct{})
	b.waitAcks(r.EndOffset, flush, repl, func(flushOK bool, rc int32) {
		if replCode != wire.Success {
			rc = replCode
		}
		switch c, rm, failure := b.ackOutcome(flushOK, rc); {
		case failure != nil:
			res.Code, res.Remark = c, "service not available now: "+failure.Error()+" (this message was written but is not known to be durable)"
		case c != wire.Success:
			res.Code, res.Remark = c, string(rm)
		}
		close(done)
	})
	<-done
	return res
}

// refuseStream is refuseSend for a gRPC or HTTP send.
func (b *Broker) refuseStream(m *grpcsvc.Message, tag flow.Tag, waited time.Duration, queue int64) grpcsvc.SendResult {
	b.flow.Log.Event(tag, wire.HostString(m.BornHost), m.Topic, waited, queue, "")
	return grpcsvc.SendResult{Code: wire.SystemBusy, Remark: flow.Remark(tag, waited, queue)}
}

// Route asks the name servers for a topic's route, as a client would.
func (g grpcBackend) Route(topic string) (*wire.TopicRouteData, error) {
	b := g.b
	var errs []error
	for _, ns := range b.namesrvAddrs() {
		resp, err := b.namesrv.Invoke(ns, wire.NewRequest(wire.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil), 3*time.Second)
		if err != nil {
			errs = append(errs, fmt.Errorf("name server %s: %w", ns, err))
			continue
		}
		if resp.Code == wire.TopicNotExist {
			return nil, nil
		}
		if resp.Code != wire.Success {
			errs = append(errs, fmt.Errorf("name server %s: %s %s", ns, wire.ResponseName(resp.Code), resp.Remark))
			continue
		}
		var rd wire.TopicRouteData
		if err := wire.UnmarshalLenient(resp.Body, &rd); err != nil {
			return nil, fmt.Errorf("decode the route from %s: %w", ns, err)
		}
		return &rd, nil
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("no name server configured (namesrvAddr)")
	}
	return nil, fmt.Errorf("no name server answered: %v", errs)
}

// GrpcAddrs reads the brokers' published gRPC addresses, cached; a
// wanted address missing from the cache refreshes it, at most once a
// second (a broker publishes right after its first registration).
func (g grpcBackend) GrpcAddrs(want []string) map[string]string {
	b := g.b
	s := b.grpc
	s.addrsMu.Lock()
	defer s.addrsMu.Unlock()
	age := time.Since(s.addrsAt)
	fresh := s.addrs != nil && age < grpcAddrsTTL
	if fresh && age >= time.Second {
		for _, a := range want {
			if s.addrs[a] == "" {
				fresh = false
				break
			}
		}
	}
	if fresh {
		return s.addrs
	}
	for _, ns := range b.namesrvAddrs() {
		resp, err := b.namesrv.Invoke(ns, wire.NewRequest(wire.GetKVListByNamespace, map[string]string{"namespace": GrpcEndpointsNamespace}, nil), 3*time.Second)
		if err != nil || (resp.Code != wire.Success && resp.Code != wire.QueryNotFound) {
			continue
		}
		var kv wire.KVTable
		if resp.Code == wire.Success {
			if err := wire.UnmarshalLenient(resp.Body, &kv); err != nil {
				b.log.Warn("decode the published gRPC addresses failed", "namesrv", ns, "err", err)
				continue
			}
		}
		s.addrs, s.addrsAt = kv.Table, time.Now()
		if s.addrs == nil {
			s.addrs = map[string]string{}
		}
		return s.addrs
	}
	return s.addrs // the last known, if any
}

// addGrpcRuntime adds the gRPC service's keys to GET_BROKER_RUNTIME_INFO
// (none without enableProxy): its published address, the 5.x clients by
// kind, their open Telemetry streams, and the POP leases in flight now
// and expired since the start over every group.
func (b *Broker) addGrpcRuntime(kv map[string]string) {
	if b.grpc == nil {
		return
	}
	n := b.grpc.srv.ClientCounts()
	kv["grpcAddr"] = b.grpc.addr
	kv["grpcClients"] = strconv.Itoa(n.Clients)
	kv["grpcProducers"] = strconv.Itoa(n.Producers)
	kv["grpcConsumers"] = strconv.Itoa(n.Consumers)
	kv["grpcStreams"] = strconv.Itoa(n.Streams)
	var inflight, expired int64
	for _, gs := range b.pop.stats() {
		inflight += gs.Inflight
		expired += gs.Expired
	}
	kv["popInflight"] = strconv.FormatInt(inflight, 10)
	kv["popExpired"] = strconv.FormatInt(expired, 10)
}

// handlePopStats answers MQOPS_POP_STATS: every group's POP leases in
// flight and expired (an empty table without enableProxy).
func (b *Broker) handlePopStats(c *remoting.Conn, req *wire.Command) {
	body := wire.PopStats{Groups: map[string]wire.PopGroupStats{}}
	if b.pop != nil {
		body.Groups = b.pop.stats()
	}
	b.replyBody(c, req, wire.Marshal(body))
}

// grpcConsumerDefaults are the consume type, from where and message
// model a group of 5.x clients shows (Java ClientActivity.registerConsumer:
// CLUSTERING, CONSUME_FROM_LAST_OFFSET; SimpleConsumer actively).
func grpcConsumerDefaults(c grpcsvc.ClientInfo) (from, typ, model string) {
	typ = "CONSUME_PASSIVELY"
	if c.Type == v2.ClientType_SIMPLE_CONSUMER {
		typ = "CONSUME_ACTIVELY"
	}
	return "CONSUME_FROM_LAST_OFFSET", typ, "CLUSTERING"
}

// grpcSubscriptions converts a 5.x client's subscriptions to remoting
// SubscriptionData (Java FilterAPI.build), by topic.
func grpcSubscriptions(c grpcsvc.ClientInfo) map[string]wire.SubscriptionData {
	out := make(map[string]wire.SubscriptionData, len(c.Subscriptions))
	for _, e := range c.Subscriptions {
		topic := e.GetTopic().GetName()
		if ns := e.GetTopic().GetResourceNamespace(); ns != "" {
			topic = ns + "%" + topic
		}
		sd := wire.SubscriptionData{Topic: topic, ExpressionType: "TAG", SubString: strings.TrimSpace(e.GetExpression().GetExpression()), TagsSet: []string{}}
		if e.GetExpression().GetType() == v2.FilterType_SQL {
			sd.ExpressionType = "SQL92"
		} else {
			if sd.SubString == "" {
				sd.SubString = "*"
			}
			if sd.SubString != "*" {
				for _, tag := range strings.Split(sd.SubString, "||") {
					if tag = strings.TrimSpace(tag); tag != "" {
						sd.TagsSet = append(sd.TagsSet, tag)
					}
				}
			}
		}
		out[topic] = sd
	}
	return out
}
