package server

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mqops/mqops/atomicfile"
	"github.com/mqops/mqops/broker/acl"
	"github.com/mqops/mqops/broker/clients"
	"github.com/mqops/mqops/broker/config"
	"github.com/mqops/mqops/broker/grpcsvc"
	"github.com/mqops/mqops/broker/pop"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/version"
	"github.com/mqops/mqops/wire"
)

// Admin requests from mqadmin and the dashboard (Java's apache/rocketmq
// broker/src/main/java/org/apache/rocketmq/broker/processor/AdminBrokerProcessor.java).

// runtimeConfigFile holds the settings changed with UPDATE_BROKER_CONFIG.
// They are kept apart from the operator's broker.conf, which stays as
// written, and applied over it at the next start (command-line -p flags
// still win).
const runtimeConfigFile = "runtime.properties"

// RuntimeConfigPath is where a broker with this config keeps its runtime
// config updates.
func RuntimeConfigPath(cfg *config.Broker) string {
	return filepath.Join(cfg.StorePathRootDir, "config", runtimeConfigFile)
}

// LoadRuntimeConfig reads the runtime config updates of a broker; a missing
// file is no updates. Keys that cannot change at run time are dropped with a
// warning: an older broker saved them, and honouring them would move the
// store, the address or the identity behind the operator's back.
func LoadRuntimeConfig(cfg *config.Broker) (map[string]string, []string, error) {
	p := RuntimeConfigPath(cfg)
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", p, err)
	}
	m, err := wire.ParseJavaProperties(string(b))
	if err != nil {
		return nil, nil, fmt.Errorf("parse %s: %w", p, err)
	}
	var warnings []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if why := runtimeFixed(cfg, k); why != "" {
			warnings = append(warnings, fmt.Sprintf("%s: %s = %q ignored: %s cannot change at run time (%s); set it in the broker's config file", p, k, m[k], k, why))
			delete(m, k)
		}
	}
	return m, warnings, nil
}

// fixedKeys are the keys UPDATE_BROKER_CONFIG refuses, and why. Java refuses
// brokerConfigPath, rocketmqHome and configBlackList plus the configBlackList
// setting (AdminBrokerProcessor.initConfigBlackList) and saves the rest into
// broker.conf for the next start. Updates here are saved too
// (runtime.properties), so a key the running broker cannot honour would act
// only at the next start, by surprise: a new storePathRootDir starts on an
// empty store, a new listenPort or brokerName is another broker.
var fixedKeys = map[string]string{
	"brokerConfigPath": "it names the config file itself",
	"rocketmqHome":     "it names the installation",
	"configBlackList":  "the black list cannot unlock itself",

	"storePathRootDir":   "the store is opened at start-up; a new path would make the next start serve an empty store",
	"storePathCommitLog": "the commit log is opened at start-up; a new path would make the next start serve an empty log",
	"logDir":             "log files are opened at start-up",

	"listenPort":   "the port is bound and registered at start-up",
	"bindAddress":  "the port is bound at start-up",
	"haListenPort": "the HA address is registered at start-up",
	"brokerIP1":    "the address is registered and written into every message id",
	"brokerIP2":    "the HA address is registered at start-up",

	"brokerClusterName": "it is the broker's identity in routes and statistics",
	"brokerName":        "it is the broker's identity in routes, offsets and message queues",
	"brokerId":          "it is the broker's identity in routes",
	"brokerRole":        "the role is decided at start-up",

	"mappedFileSizeCommitLog":    "existing commit-log segments have their size",
	"mapedFileSizeCommitLog":     "existing commit-log segments have their size",
	"mappedFileSizeConsumeQueue": "existing consume-queue files have their size",
	"mapedFileSizeConsumeQueue":  "existing consume-queue files have their size",
	"maxHashSlotNum":             "existing index files have their layout",
	"maxIndexNum":                "existing index files have their layout",
}

// runtimeFixed says why key cannot change at run time, "" if it can.
func runtimeFixed(cfg *config.Broker, key string) string {
	if why := fixedKeys[key]; why != "" {
		return why
	}
	for _, k := range strings.Split(cfg.ConfigBlackList, ";") {
		if strings.TrimSpace(k) == key {
			return "listed in configBlackList"
		}
	}
	return ""
}

// liveConfigKeys take effect at once; every other key is persisted and
// applies from the next start.
var liveConfigKeys = map[string]bool{
	"brokerPermission": true,
	// Retention, so that an operator can free disk without a restart.
	"fileReservedTime": true, "deleteWhen": true, "diskMaxUsedSpaceRatio": true,
	// Name servers, so that a blue-green upgrade can register the old
	// brokers with the new cluster's name servers while they serve.
	"namesrvAddr": true,
	// Where consumers read, applied at once as in Java.
	"slaveReadEnable": true, "accessMessageInMemoryMaxRatio": true, "offsetCheckInSlave": true,
	// Read by every pull, as in Java.
	"enablePropertyFilter": true,
}

// handleUpdateBrokerConfig applies UPDATE_BROKER_CONFIG all or nothing: a
// key that cannot change at run time, an unknown key or a bad value refuses
// the whole request, and nothing is saved or applied.
func (b *Broker) handleUpdateBrokerConfig(c *remoting.Conn, req *wire.Command) {
	kv, err := wire.ParseJavaProperties(string(req.Body))
	if err != nil {
		c.ReplyCode(req, wire.SystemError, "malformed properties body: "+err.Error())
		return
	}
	if len(kv) == 0 {
		c.ReplyCode(req, wire.SystemError, "no key=value in the request body")
		return
	}
	keys := slices.Sorted(maps.Keys(kv))
	var fixed []string
	for _, k := range keys {
		if why := runtimeFixed(b.cfg, k); why != "" {
			fixed = append(fixed, fmt.Sprintf("%s (%s)", k, why))
		}
	}
	if len(fixed) > 0 {
		// Java's remark starts the same way; tools match on it.
		c.ReplyCode(req, wire.NoPermission, "Can not update config in black list: "+strings.Join(fixed, "; ")+
			". Nothing was changed: set it in the broker's config file and restart")
		return
	}

	b.cfgMu.Lock()
	next := *b.cfgView
	var unknown, pending, noEffect []string
	for _, k := range keys {
		err := next.Set(k, kv[k])
		switch {
		case errors.Is(err, config.ErrUnknownKey):
			unknown = append(unknown, k)
		case err != nil:
			b.cfgMu.Unlock()
			c.ReplyCode(req, wire.SystemError, err.Error()+". Nothing was changed")
			return
		case config.NotImplemented(k):
			noEffect = append(noEffect, k)
		case !liveConfigKeys[k]:
			pending = append(pending, k)
		}
	}
	if len(unknown) > 0 {
		b.cfgMu.Unlock()
		c.ReplyCode(req, wire.SystemError, fmt.Sprintf("unknown broker config key %s (keys are case-sensitive). Nothing was changed", strings.Join(unknown, ", ")))
		return
	}
	updates := make(map[string]string, len(b.runtimeCfg)+len(kv))
	for k, v := range b.runtimeCfg {
		updates[k] = v
	}
	for k, v := range kv {
		updates[k] = v
	}
	kvs := make([]wire.JavaProperty, 0, len(updates))
	for _, k := range slices.Sorted(maps.Keys(updates)) {
		kvs = append(kvs, wire.JavaProperty{Key: k, Value: updates[k]})
	}
	if err := atomicfile.Write(RuntimeConfigPath(b.cfg), wire.FormatJavaProperties(kvs), atomicfile.Options{Backup: true}); err != nil {
		b.cfgMu.Unlock()
		c.ReplyCode(req, wire.SystemError, "persist config: "+err.Error())
		return
	}
	oldNamesrv := b.cfgView.NamesrvAddr
	b.cfgView, b.runtimeCfg = &next, updates
	b.cfgVersion = wire.DataVersion{Counter: b.cfgVersion.Counter + 1, Timestamp: time.Now().UnixMilli()}
	oldPerm := int(b.perm.Load())
	b.perm.Store(int32(next.BrokerPermission))
	b.store.SetRetention(time.Duration(next.FileReservedTime)*time.Hour, next.DeleteWhenHours(), next.DiskMaxUsedSpaceRatio)
	b.setPullSettings(&next)
	b.cfgMu.Unlock()

	for _, k := range keys {
		when := "from the next start"
		switch {
		case liveConfigKeys[k]:
			when = "now"
		case config.NotImplemented(k):
			when = "never: accepted for compatibility, not implemented"
		}
		b.log.Info("[CONFIG_UPDATE] broker config updated", "key", k, "value", kv[k], "effective", when, "remote", c.RemoteAddr().String())
	}
	if next.NamesrvAddr != oldNamesrv {
		// Dropped name servers forget the broker now rather than after
		// their 120 s expiry; added ones learn it before the reply.
		b.log.Warn("[NAMESRV_CHANGED] name servers changed", "from", oldNamesrv, "to", next.NamesrvAddr)
		b.unregister(removedAddrs(oldNamesrv, next.NamesrvAddr))
	}
	switch {
	case next.BrokerPermission != oldPerm:
		// Clients learn the new permission from the routes; the broker
		// enforces it on every send and pull regardless.
		b.log.Warn("[PERMISSION_CHANGED] broker permission changed", "from", oldPerm, "to", next.BrokerPermission)
		b.topics.Bump()
		b.registerAll()
	case next.NamesrvAddr != oldNamesrv:
		b.registerAll()
	}
	// The remark tells the operator what did not take effect yet.
	var remark []string
	if len(pending) > 0 {
		remark = append(remark, "saved, effective after a restart: "+strings.Join(pending, ", "))
	}
	if len(noEffect) > 0 {
		remark = append(remark, "saved, accepted for compatibility but not implemented: "+strings.Join(noEffect, ", "))
	}
	c.ReplyCode(req, wire.Success, strings.Join(remark, "; "))
}

// handleGetBrokerConfig answers with the settings in force: the ones the
// broker started with plus the live keys as changed since. Updates that
// wait for a restart are in runtime.properties, not shown here.
func (b *Broker) handleGetBrokerConfig(c *remoting.Conn, req *wire.Command) {
	b.cfgMu.RLock()
	effective := *b.cfg
	view := map[string]string{}
	for _, kv := range b.cfgView.Properties() {
		view[kv.Key] = kv.Value
	}
	for k := range liveConfigKeys {
		_ = effective.Set(k, view[k]) // valid: cfgView accepted it
	}
	body := wire.FormatJavaProperties(effective.Properties())
	version := wire.Marshal(b.cfgVersion)
	b.cfgMu.RUnlock()
	resp := wire.ResponseTo(req, wire.Success, "")
	resp.Set("version", string(version))
	resp.Body = body
	c.Reply(req, &resp)
}

// handleRuntimeInfo answers GET_BROKER_RUNTIME_INFO (28) with the keys
// mqadmin brokerStatus and clusterList print (Java's
// AdminBrokerProcessor.prepareRuntimeInfo).
func (b *Broker) handleRuntimeInfo(c *remoting.Conn, req *wire.Command) {
	s := b.store
	now := time.Now()
	kv := map[string]string{
		"brokerVersion":                         strconv.Itoa(wire.Version),
		"brokerVersionDesc":                     version.Protocol,
		"mqopsVersion":                          version.Version,
		"bootTimestamp":                         strconv.FormatInt(b.bootTime.UnixMilli(), 10),
		"runtime":                               runtimeString(now.Sub(b.bootTime)),
		"brokerActive":                          "true",
		"brokerPermission":                      strconv.Itoa(b.permission()),
		"commitLogMinOffset":                    strconv.FormatInt(s.MinPhyOffset(), 10),
		"commitLogMaxOffset":                    strconv.FormatInt(s.MaxPhyOffset(), 10),
		"dispatchBehindBytes":                   strconv.FormatInt(s.DispatchBehind(), 10),
		"remainHowManyDataToFlush":              strconv.FormatInt(s.MaxPhyOffset()-s.FlushedOffset(), 10),
		"startAcceptSendRequestTimeStamp":       "0",
		"pullThreadPoolQueueSize":               "0",
		"pullThreadPoolQueueCapacity":           "100000",
		"queryThreadPoolQueueSize":              "0",
		"queryThreadPoolQueueCapacity":          "20000",
		"EndTransactionThreadPoolQueueCapacity": "100000",
		"pullThreadPoolQueueHeadWaitTimeMills":  "0",
		"queryThreadPoolQueueHeadWaitTimeMills": "0",
		"remainTransientStoreBufferNumbs":       "0",
		"earliestMessageTimeStamp":              strconv.FormatInt(b.earliestMessageTime(), 10),
		"putMessageFailedTimes":                 strconv.FormatInt(b.putFailed.Load(), 10),
		"storeState":                            "OK",
	}
	// ACL refusals and admin grants, for Zabbix (acl_denied_total...).
	if b.acl != nil {
		maps.Copy(kv, b.acl.Stats.Snapshot())
	}
	// mqops' connection limits (remoting.ServerStats).
	cs := b.srv.Stats()
	kv["connectionCount"] = strconv.Itoa(cs.Conns)
	kv["connectionRefusedTotal"] = strconv.FormatUint(cs.Refused, 10)
	kv["connectionStalled"] = strconv.FormatInt(cs.Stalled, 10)
	kv["connectionStalledTotal"] = strconv.FormatUint(cs.StalledTotal, 10)
	kv["connectionPaused"] = strconv.FormatInt(cs.Paused, 10)
	kv["connectionPausedTotal"] = strconv.FormatUint(cs.PausedTotal, 10)
	kv["frameMemoryInUse"] = strconv.FormatInt(cs.FrameBytes, 10)
	// brokerRole is Java's config key and values (no Java broker reports
	// its role at run time); the run-time role wins over the configured
	// one (controller mode promotes a "SLAVE" to SYNC_MASTER), and the
	// store's role over both.
	kv["brokerRole"] = [...]string{roleAsyncMaster: "ASYNC_MASTER", roleSyncMaster: "SYNC_MASTER", roleSlave: "SLAVE"}[b.role.Load()]
	if s.Role() == store.RoleSlave {
		kv["brokerRole"] = "SLAVE"
	}
	if b.ctl != nil {
		kv["masterEpoch"] = strconv.Itoa(int(b.ctl.mgr.State().MasterEpoch))
	}
	// A slave's store refuses messages by design: that is no store state.
	if err := s.NotWritable(); err != nil && !errors.Is(err, store.ErrSlave) {
		kv["storeState"], kv["storeError"] = storeState(err), err.Error()
	}
	ranges, size, skipped := s.Corruption()
	kv["commitLogCorruptRanges"] = strconv.Itoa(ranges)
	kv["commitLogCorruptBytes"] = strconv.FormatInt(size, 10)
	kv["corruptMessagesSkipped"] = strconv.FormatInt(skipped, 10)
	for path, key := range map[string]string{b.cfg.StorePathCommitLog: "commitLogDiskRatio", b.cfg.StorePathRootDir: "consumeQueueDiskRatio"} {
		if ratio, total, free, ok := diskUsage(path); ok {
			kv[key] = strconv.FormatFloat(ratio, 'f', 4, 64)
			if key == "commitLogDiskRatio" {
				kv["commitLogDiskRatio_"+path] = kv[key]
				kv["commitLogDirCapacity"] = fmt.Sprintf("Total : %s, Free : %s.", humanBytes(total), humanBytes(free))
			}
		}
	}
	for i, p := range b.delay.Progress() {
		if p[1] > 0 {
			kv["scheduleMessageOffset_"+strconv.Itoa(i+1)] = strconv.FormatInt(p[0], 10) + "," + strconv.FormatInt(p[1], 10)
		}
	}
	kv["timerMessagePending"] = strconv.FormatInt(b.timers.Pending(), 10)
	kv["transactionHalfPending"] = strconv.FormatInt(b.tx.Pending(), 10)
	b.addStatsRuntime(kv)
	b.addFlowRuntime(kv)
	b.addHARuntime(kv)
	b.addGrpcRuntime(kv)
	b.replyBody(c, req, wire.Marshal(wire.KVTable{Table: kv}))
}

// storeState names why the store refuses appends (runtime key storeState,
// with the details in storeError): FAILED after a failed fsync (restart
// the broker), DISK_FULL under disk pressure, CLOSED while shutting down.
func storeState(err error) string {
	switch {
	case errors.Is(err, store.ErrFailed):
		return "FAILED"
	case errors.Is(err, store.ErrDiskFull):
		return "DISK_FULL"
	default:
		return "CLOSED"
	}
}

// earliestMessageTime is the store time of the oldest retained message, 0
// when the log is empty.
func (b *Broker) earliestMessageTime() int64 {
	rec, err := b.store.ReadRecord(b.store.MinPhyOffset(), nil)
	if err != nil {
		return 0
	}
	return wire.RecordView(rec).StoreTimestamp()
}

// diskUsage reports the used fraction of the filesystem holding path.
func diskUsage(path string) (ratio float64, total, free uint64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, 0, false
	}
	total = st.Blocks * uint64(st.Bsize)
	free = st.Bavail * uint64(st.Bsize)
	if total == 0 {
		return 0, 0, 0, false
	}
	return float64(total-free) / float64(total), total, free, true
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.2f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// runtimeString renders an uptime the way Java's broker does.
func runtimeString(d time.Duration) string {
	s := int64(d / time.Second)
	return fmt.Sprintf("[ %d days, %d hours, %d minutes, %d seconds ]", s/86400, s%86400/3600, s%3600/60, s%60)
}

// handleTopicStats answers GET_TOPIC_STATS_INFO (202).
func (b *Broker) handleTopicStats(c *remoting.Conn, req *wire.Command) {
	topic := req.GetString("topic")
	tc := b.topics.Lookup(topic)
	if tc == nil {
		c.ReplyCode(req, wire.TopicNotExist, fmt.Sprintf("topic[%s] not exist", topic))
		return
	}
	t := wire.TopicStatsTable{OffsetTable: map[wire.MessageQueue]wire.TopicOffset{}}
	for q := int32(0); q < int32(tc.WriteQueueNums); q++ {
		off := wire.TopicOffset{MinOffset: max(b.store.MinOffset(topic, q), 0), MaxOffset: b.store.MaxOffset(topic, q)}
		if off.MaxOffset > 0 {
			off.LastUpdateTimestamp, _ = b.store.StoreTimeAt(topic, q, off.MaxOffset-1)
		}
		t.OffsetTable[wire.MessageQueue{Topic: topic, BrokerName: b.cfg.BrokerName, QueueID: int(q)}] = off
	}
	b.replyBody(c, req, t.Encode())
}

// consumeStats computes a group's progress on one topic.
func (b *Broker) consumeStats(group, topic string) *wire.ConsumeStats {
	cs := &wire.ConsumeStats{OffsetTable: map[wire.MessageQueue]wire.OffsetWrapper{}, ConsumeTps: b.groupTps(topic, group)}
	tc := b.topics.Lookup(topic)
	if tc == nil {
		return cs
	}
	for q := int32(0); q < int32(tc.ReadQueueNums); q++ {
		w := wire.OffsetWrapper{BrokerOffset: b.store.MaxOffset(topic, q)}
		if off, ok := b.offsets.Query(group, topic, q); ok && off > 0 {
			w.ConsumerOffset = off
		}
		if w.ConsumerOffset > 0 {
			w.LastTimestamp, _ = b.store.StoreTimeAt(topic, q, w.ConsumerOffset-1)
		}
		cs.OffsetTable[wire.MessageQueue{Topic: topic, BrokerName: b.cfg.BrokerName, QueueID: int(q)}] = w
	}
	return cs
}

// consumedTopics lists the topics a group's stats cover: those it has
// offsets for, minus those an online group no longer subscribes to.
func (b *Broker) consumedTopics(group string) []string {
	topics := b.offsets.TopicsOf(group)
	gi, online := b.clients.Consumer(group)
	if !online || len(gi.Subscriptions) == 0 {
		return topics
	}
	out := topics[:0]
	for _, t := range topics {
		if _, ok := gi.Subscriptions[t]; ok {
			out = append(out, t)
		}
	}
	return out
}

// handleConsumeStats answers GET_CONSUME_STATS (208).
func (b *Broker) handleConsumeStats(c *remoting.Conn, req *wire.Command) {
	group := req.GetString("consumerGroup")
	if group == "" {
		missing(c, req, "consumerGroup")
		return
	}
	topics := []string{req.GetString("topic")}
	if topics[0] == "" {
		topics = b.consumedTopics(group)
	}
	all := &wire.ConsumeStats{OffsetTable: map[wire.MessageQueue]wire.OffsetWrapper{}}
	for _, t := range topics {
		cs := b.consumeStats(group, t)
		all.ConsumeTps += cs.ConsumeTps
		for mq, w := range cs.OffsetTable {
			all.OffsetTable[mq] = w
		}
	}
	b.replyBody(c, req, all.Encode())
}

// handleBrokerConsumeStats answers GET_BROKER_CONSUME_STATS (317): every
// group's progress on every topic it consumes on this broker.
func (b *Broker) handleBrokerConsumeStats(c *remoting.Conn, req *wire.Command) {
	groups := map[string]bool{}
	for _, g := range b.offsets.Groups() {
		groups[g] = true
	}
	for _, g := range b.clients.ConsumerGroups() {
		groups[g] = true
	}
	onlyOrdered := req.GetBool("isOrder")
	list := wire.ConsumeStatsList{BrokerAddr: b.addr, Groups: map[string][]*wire.ConsumeStats{}}
	for g := range groups {
		for _, t := range b.consumedTopics(g) {
			if tc := b.topics.Lookup(t); onlyOrdered && (tc == nil || !tc.Order) {
				continue
			}
			cs := b.consumeStats(g, t)
			for _, w := range cs.OffsetTable {
				list.TotalDiff += max(w.BrokerOffset-w.ConsumerOffset, 0)
			}
			list.Groups[g] = append(list.Groups[g], cs)
		}
	}
	b.replyBody(c, req, list.Encode())
}

func connectionOf(ch clients.Channel) wire.Connection {
	return wire.Connection{ClientID: ch.ClientID, ClientAddr: ch.Conn.RemoteAddr().String(), Language: ch.Language, Version: ch.Version}
}

// handleConsumerConnections answers GET_CONSUMER_CONNECTION_LIST (203):
// the group's remoting clients and its RocketMQ 5 (gRPC) clients, as
// Java's broker lists both once its proxy registered them.
func (b *Broker) handleConsumerConnections(c *remoting.Conn, req *wire.Command) {
	group := req.GetString("consumerGroup")
	gi, ok := b.clients.Consumer(group)
	var grpcClients []grpcsvc.ClientInfo
	if b.grpc != nil {
		grpcClients = b.grpc.srv.Consumers(group)
	}
	if !ok && len(grpcClients) == 0 {
		c.ReplyCode(req, wire.ConsumerNotOnline, fmt.Sprintf("the consumer group[%s] not online", group))
		return
	}
	cc := wire.ConsumerConnection{ConnectionSet: []wire.Connection{}, SubscriptionTable: map[string]wire.SubscriptionData{}}
	if ok {
		cc.ConsumeFromWhere, cc.ConsumeType, cc.MessageModel, cc.SubscriptionTable = gi.ConsumeFromWhere, gi.ConsumeType, gi.MessageModel, gi.Subscriptions
		for _, ch := range gi.Channels {
			cc.ConnectionSet = append(cc.ConnectionSet, connectionOf(ch))
		}
	} else {
		cc.ConsumeFromWhere, cc.ConsumeType, cc.MessageModel = grpcConsumerDefaults(grpcClients[0])
	}
	for _, gc := range grpcClients {
		cc.ConnectionSet = append(cc.ConnectionSet, wire.Connection{ClientID: gc.ClientID, ClientAddr: gc.Addr, Language: gc.Language,
			Version: wire.Version, ClientVersion: gc.Version, Protocol: "grpc"})
		for topic, sd := range grpcSubscriptions(gc) {
			if _, dup := cc.SubscriptionTable[topic]; !dup {
				cc.SubscriptionTable[topic] = sd
			}
		}
	}
	b.replyBody(c, req, wire.Marshal(cc))
}

// handleProducerConnections answers GET_PRODUCER_CONNECTION_LIST (204).
func (b *Broker) handleProducerConnections(c *remoting.Conn, req *wire.Command) {
	group := req.GetString("producerGroup")
	chs := b.clients.Producer(group)
	if len(chs) == 0 {
		c.ReplyCode(req, wire.SystemError, fmt.Sprintf("the producer group[%s] not exist", group))
		return
	}
	pc := wire.ProducerConnection{ConnectionSet: []wire.Connection{}}
	for _, ch := range chs {
		pc.ConnectionSet = append(pc.ConnectionSet, connectionOf(ch))
	}
	b.replyBody(c, req, wire.Marshal(pc))
}

// handleConsumeByWho answers QUERY_TOPIC_CONSUME_BY_WHO (300): groups
// subscribed now plus groups holding offsets for the topic.
func (b *Broker) handleConsumeByWho(c *remoting.Conn, req *wire.Command) {
	topic := req.GetString("topic")
	set := map[string]bool{}
	for _, g := range b.clients.GroupsSubscribing(topic) {
		set[g] = true
	}
	for _, g := range b.offsets.GroupsOf(topic) {
		set[g] = true
	}
	gl := wire.GroupList{GroupList: make([]string, 0, len(set))}
	for g := range set {
		gl.GroupList = append(gl.GroupList, g)
	}
	sort.Strings(gl.GroupList)
	b.replyBody(c, req, wire.Marshal(gl))
}

// handleViewMessage answers VIEW_MESSAGE_BY_ID (33): the stored record at a
// commit-log offset, unchanged.
func (b *Broker) handleViewMessage(c *remoting.Conn, req *wire.Command) {
	off, ok := req.GetInt("offset")
	if !ok {
		missing(c, req, "offset")
		return
	}
	rec, err := b.store.ReadRecord(off, nil)
	if err != nil {
		c.ReplyCode(req, wire.SystemError, fmt.Sprintf("can not find message by the offset, %d", off))
		return
	}
	// The request names no topic: ACL checks the stored message's.
	if b.acl != nil && !b.acl.AllowTopic(c, req, string(wire.RecordView(rec).Topic()), acl.Sub) {
		return
	}
	b.replyBody(c, req, rec)
}

// handleResetOffset answers INVOKE_BROKER_TO_RESET_OFFSET (222): compute
// the offsets for a time (or the end) and tell every consumer of the group
// to move there; the consumers commit them (Java's Broker2Client.resetOffset,
// apache/rocketmq
// broker/src/main/java/org/apache/rocketmq/broker/client/net/Broker2Client.java).
func (b *Broker) handleResetOffset(c *remoting.Conn, req *wire.Command) {
	topic, group := req.GetString("topic"), req.GetString("group")
	ts, ok := req.GetInt("timestamp")
	if !ok {
		missing(c, req, "timestamp")
		return
	}
	force := req.GetBool("isForce")
	tc := b.topics.Lookup(topic)
	if tc == nil {
		c.ReplyCode(req, wire.SystemError, fmt.Sprintf("[reset-offset] topic %s not exist", topic))
		return
	}
	body := wire.ResetOffsetBody{OffsetTable: map[wire.MessageQueue]int64{}}
	for q := int32(0); q < int32(tc.WriteQueueNums); q++ {
		committed, ok := b.offsets.Query(group, topic, q)
		if !ok {
			c.ReplyCode(req, wire.SystemError, fmt.Sprintf("THe consumer group <%s> not exist", group))
			return
		}
		target := b.store.MaxOffset(topic, q)
		if ts >= 0 {
			target = b.store.OffsetByTime(topic, q, ts)
		}
		if !force && target >= committed {
			target = committed
		}
		body.OffsetTable[wire.MessageQueue{Topic: topic, BrokerName: b.cfg.BrokerName, QueueID: int(q)}] = target
	}
	// POP consumers keep their position on the broker, so the broker
	// moves it itself (backwards too); remoting consumers are told below.
	popped := b.pop != nil && b.pop.state.Active(group, topic)
	if popped {
		for mq, off := range body.OffsetTable {
			b.pop.state.Reset(pop.Key{Group: group, Topic: topic, Queue: int32(mq.QueueID)}, off)
		}
		b.pop.notify(topic) // FIFO batches of these queues are gone: waiting receives read again
		if err := b.persistPopReset(); err != nil {
			b.log.Error("[RESET_OFFSET] POP offsets reset but not saved", "group", group, "topic", topic, "err", err)
			c.ReplyCode(req, wire.SystemError, fmt.Sprintf("[reset-offset] POP offsets reset but not saved: %v", err))
			return
		}
		b.log.Info("[RESET_OFFSET] POP offsets reset", "group", group, "topic", topic, "timestamp", ts, "remote", c.RemoteAddr().String())
	}
	conns := b.clients.ConsumerConns(group)
	if len(conns) == 0 && popped {
		b.replyBody(c, req, body.Encode())
		return
	}
	if len(conns) == 0 {
		c.ReplyCode(req, wire.ConsumerNotOnline, fmt.Sprintf("Consumer not online, so can not reset offset, Group: %s Topic: %s Timestamp: %d", group, topic, ts))
		return
	}
	encoded := body.Encode()
	for _, conn := range conns {
		r := wire.NewRequest(wire.ResetConsumerClientOffset, map[string]string{
			"topic": topic, "group": group, "timestamp": strconv.FormatInt(ts, 10), "isForce": strconv.FormatBool(force),
		}, encoded)
		if err := conn.InvokeOneway(r); err != nil {
			b.log.Warn("reset offset notification failed", "group", group, "remote", conn.RemoteAddr().String(), "err", err)
		}
	}
	b.log.Info("[RESET_OFFSET] consumers told to reset offsets", "group", group, "topic", topic, "timestamp", ts, "clients", len(conns), "remote", c.RemoteAddr().String())
	b.replyBody(c, req, encoded)
}

// uniqueKeyQueryMax bounds unique-key lookups (Java's defaultQueryMaxNum).
const uniqueKeyQueryMax = 32

// handleQueryMessage answers QUERY_MESSAGE (12): messages of a topic whose
// KEYS (or, with _UNIQUE_KEY_QUERY, UNIQ_KEY) hold a key, stored within a
// time range, found through the index. The index matches by hash; records
// are checked here so clients get no false positives.
func (b *Broker) handleQueryMessage(c *remoting.Conn, req *wire.Command) {
	topic, key := req.GetString("topic"), req.GetString("key")
	if topic == "" || key == "" {
		missing(c, req, "topic/key")
		return
	}
	maxNum, _ := req.GetInt("maxNum")
	begin, _ := req.GetInt("beginTimestamp")
	end, ok := req.GetInt("endTimestamp")
	if !ok || end <= 0 {
		end = 1<<63 - 1
	}
	unique := req.GetBool("_UNIQUE_KEY_QUERY")
	if unique {
		maxNum = uniqueKeyQueryMax
	}
	offsets, lastTs, lastPhy := b.store.QueryIndex(topic, key, int(max(maxNum, 1)), begin, end)
	var body []byte
	for _, off := range offsets {
		start := len(body)
		rec, err := b.store.ReadRecord(off, body)
		if err != nil {
			continue // removed by retention since it was indexed
		}
		v := wire.RecordView(rec[start:])
		if string(v.Topic()) != topic || !recordHasKey(v.Properties(), key, unique) {
			body = rec[:start]
			continue
		}
		body = rec
	}
	resp := wire.ResponseTo(req, wire.Success, "")
	resp.SetInt("indexLastUpdateTimestamp", lastTs)
	resp.SetInt("indexLastUpdatePhyoffset", lastPhy)
	if len(body) == 0 {
		resp.Code = wire.QueryNotFound
		resp.Remark = []byte("can not find message, maybe time range not correct")
	}
	resp.Body = body
	c.Reply(req, &resp)
}

// recordHasKey reports whether properties carry key as UNIQ_KEY or, unless
// only unique keys count, among the space-separated KEYS.
func recordHasKey(props []byte, key string, uniqueOnly bool) bool {
	if string(wire.PropertyValue(props, wire.PropUniqKey)) == key {
		return true
	}
	if uniqueOnly {
		return false
	}
	for _, k := range strings.Fields(string(wire.PropertyValue(props, wire.PropKeys))) {
		if k == key {
			return true
		}
	}
	return false
}
