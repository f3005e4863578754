// Package server is the broker: it wires the message store, the metadata
// tables and the client registry to the remoting server, serves every
// request code, and keeps the broker registered with the name servers.
package server

import (
	"crypto/tls"
	"fmt"
	"github.com/mqops/mqops/broker/amqpengine"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mqops/mqops/amqp/gateway"
	"github.com/mqops/mqops/broker/acl"
	"github.com/mqops/mqops/broker/clients"
	"github.com/mqops/mqops/broker/config"
	"github.com/mqops/mqops/broker/flow"
	"github.com/mqops/mqops/broker/ha"
	"github.com/mqops/mqops/broker/httpgw"
	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/schedule"
	"github.com/mqops/mqops/broker/slavesync"
	"github.com/mqops/mqops/broker/stats"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/broker/transaction"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/tlsconf"
	"github.com/mqops/mqops/wire"
)

// Options are what the daemon hands the broker besides its config.
type Options struct {
	Config   *config.Broker
	Log      *slog.Logger // broker.log
	StoreLog *slog.Logger // store.log; defaults to Log
	StatsOut io.Writer    // stats.log; nil discards the lines
	FlowLog  *slog.Logger // flowcontrol.log; defaults to Log
	// WaterMarkOut gets watermark.log's lines every second; nil: none.
	WaterMarkOut io.Writer
	// AcceptDataLoss starts the store although data that its checkpoint or
	// consume queues vouch for is missing (mqbroker --accept-data-loss;
	// store.Config.AcceptDataLoss). Deliberately not a config key.
	AcceptDataLoss bool
	// ACL checks every request before dispatch (aclEnable); nil serves
	// everyone.
	ACL *acl.Gate

	fsyncFault func(path string) error // tests: store.Config.FsyncFault
}

// Broker is one running broker.
type Broker struct {
	cfg   *config.Broker
	log   *slog.Logger
	store *store.Store
	acl   *acl.Gate // nil when aclEnable is off
	// ackWakes: connections whose SYNC_FLUSH answers the store's
	// goroutines queued without waking their writers (send.go).
	ackWakes ackWakes

	topics  *meta.Topics
	groups  *meta.Groups
	offsets *meta.Offsets
	stats   *stats.Manager
	clients *clients.Manager
	locks   *lockTable
	limiter *groupLimiter
	holds   *pullHolds
	delay   *schedule.Levels
	timers  *schedule.Timers
	tx      *transaction.Service
	amqp    *amqpengine.Engine // AMQP vhost metadata (broker/server/amqp.go)

	haServer   *ha.Server // masters: streams the commit log to slaves
	haClient   *ha.Client // slaves: follows the master
	haAddr     string     // brokerIP2:haListenPort as registered
	syncMaster bool       // SYNC_MASTER: sends wait for a slave's ack
	ctl        *ctlMode   // controller mode (enableControllerMode) instead of the above; nil otherwise

	delayLevels []time.Duration // messageDelayLevel, parsed

	srv       *remoting.Server
	namesrv   *remoting.Client
	addr      string // brokerIP1:port as registered and stored in records
	storeHost []byte
	region    []byte // regionId, answered on every send

	// putFailed counts sends the store refused (runtime key
	// putMessageFailedTimes, as Java's store statistics).
	putFailed atomic.Int64

	flow   *flow.Sends  // send admission (SYSTEM_BUSY answers)
	quotas *flow.Quotas // per-topic produce quotas
	// waterMarkOut is watermark.log (Options.WaterMarkOut).
	waterMarkOut io.Writer
	// acctQuotas are the ACL accounts' produce quotas, synced with
	// quotaRules, the rules they were last read from (syncAccountQuotas).
	acctQuotas  *flow.AccountQuotas
	quotaRules  atomic.Pointer[acl.Snapshot]
	quotaSyncMu sync.Mutex

	// memoryBudget is accessMessageInMemoryMaxRatio % of RAM: data closer
	// than this to the end of the log counts as in the page cache.
	memoryBudget atomic.Int64
	// slaveRead and offsetCheckInSlave are slaveReadEnable and
	// offsetCheckInSlave, which UPDATE_BROKER_CONFIG changes at once.
	slaveRead, offsetCheckInSlave atomic.Bool
	// propertyFilter is enablePropertyFilter, also changed at once.
	propertyFilter atomic.Bool

	role   atomic.Int32 // brokerRole
	master atomic.Value // string: the master's address (slaves; see masterAddr)
	sync   *slavesync.Syncer

	// cfg holds the settings the broker started with; hot paths read it
	// without locks. cfgView adds the updates made since with
	// UPDATE_BROKER_CONFIG (what GET_BROKER_CONFIG shows); of those only
	// liveConfigKeys take effect at once (brokerPermission through perm).
	cfgMu      sync.RWMutex
	cfgView    *config.Broker
	runtimeCfg map[string]string // updates persisted in runtime.properties
	cfgVersion wire.DataVersion
	perm       atomic.Int32
	bootTime   time.Time

	stopMu   sync.RWMutex // stopping is set before waiting for background work
	stopping bool

	tlsServer *tls.Config // the remoting and gRPC ports' certificate; nil when tlsServerMode is disabled

	grpc   *grpcState     // the RocketMQ 5 gRPC service (enableProxy); nil if off
	grpcRR atomic.Uint32  // round robin of gRPC and HTTP gateway sends over write queues
	pop    *popEngine     // POP consumption (enableProxy, enableHttpGateway); nil if off
	httpgw *httpgw.Server // the HTTP/JSON gateway (enableHttpGateway); nil if off
	// The embedded AMQP gateway (enableAmqpGateway), nil if off, and the
	// in-process remoting server its requests to this broker go to.
	amqpgw      *gateway.Server
	amqpDrain   time.Duration // its drainTimeout
	amqpBackend *gateway.Remote
	local       *remoting.Server
	localLn     *localListener

	registerKick chan struct{}
	// registerMu serialises registerAll (Java's registerBrokerAll is
	// synchronized): a registration built before a role change must not
	// reach a name server after the one built after it, or the promoted
	// master's address would move back to its slave id there.
	registerMu sync.Mutex
	stop       chan struct{}
	wg         sync.WaitGroup
}

// New opens the store and metadata and binds the listen port; Start serves.
func New(o Options) (*Broker, error) {
	cfg := o.Config
	b := &Broker{
		cfg: cfg, log: o.Log, acl: o.ACL, clients: clients.NewManager(), locks: newLockTable(), limiter: newGroupLimiter(),
		registerKick: make(chan struct{}, 1), stop: make(chan struct{}), waterMarkOut: o.WaterMarkOut,
		region:   []byte(cfg.RegionID),
		bootTime: time.Now(), cfgVersion: wire.DataVersion{Timestamp: time.Now().UnixMilli()},
	}
	view := *cfg
	b.cfgView = &view
	b.delayLevels = cfg.DelayLevels()
	b.perm.Store(int32(cfg.BrokerPermission))
	b.role.Store(int32(parseRole(cfg.BrokerRole)))
	b.setPullSettings(cfg)
	var err error
	// Certificates first: a bad path fails the start before anything opens.
	if b.tlsServer, err = cfg.TLSConfig("localhost", "127.0.0.1", cfg.BrokerIP1); err != nil {
		return nil, err
	}
	var tlsClient *tls.Config
	if cfg.UseTLS {
		tlsClient, err = tlsconf.Client(tlsconf.ClientOptions{InsecureSkipVerify: !cfg.TLSClientAuthServer,
			CAFile: cfg.TLSClientTrustCertPath, CAFileKey: "tlsClientTrustCertPath"})
		if err != nil {
			return nil, err
		}
	}
	if b.runtimeCfg, _, err = LoadRuntimeConfig(cfg); err != nil { // main reports what it drops
		return nil, err
	}
	cdir := cfg.StorePathRootDir + "/config"
	if b.topics, err = meta.LoadTopics(cdir+"/topics.json", o.Log); err != nil {
		return nil, err
	}
	if b.groups, err = meta.LoadGroups(cdir+"/subscriptionGroup.json", o.Log); err != nil {
		return nil, err
	}
	if b.offsets, err = meta.LoadOffsets(cdir+"/consumerOffset.json", o.Log); err != nil {
		return nil, err
	}
	if b.amqp, err = amqpengine.Open(cdir, o.Log); err != nil {
		return nil, err
	}

	b.srv, err = remoting.ListenTLS(net.JoinHostPort(cfg.BindAddress, strconv.Itoa(cfg.ListenPort)), cfg.TLSServerMode, b.tlsServer, b, o.Log)
	if err != nil {
		return nil, err
	}
	b.srv.SetLimits(cfg.Conn.Remoting())
	port := b.srv.Addr().(*net.TCPAddr).Port
	b.addr = net.JoinHostPort(cfg.BrokerIP1, strconv.Itoa(port))
	ip := net.ParseIP(cfg.BrokerIP1).To4()
	if ip == nil {
		b.srv.Close()
		return nil, fmt.Errorf("brokerIP1 %q is not an IPv4 address: message ids need one", cfg.BrokerIP1)
	}
	b.storeHost = wire.HostBytes(&net.TCPAddr{IP: ip, Port: port})

	slog := o.StoreLog
	if slog == nil {
		slog = o.Log
	}
	sc := store.Config{
		RootDir:               cfg.StorePathRootDir,
		CommitLogDir:          cfg.StorePathCommitLog,
		SegmentSize:           cfg.MappedFileSizeCommitLog,
		CQUnitsPerFile:        int(cfg.MappedFileSizeConsumeQueue / 20),
		FlushInterval:         time.Duration(cfg.FlushIntervalCommitLog) * time.Millisecond,
		CQFlushInterval:       time.Duration(cfg.FlushIntervalConsumeQueue) * time.Millisecond,
		RetentionInterval:     time.Duration(cfg.CleanResourceInterval) * time.Millisecond,
		SyncFlushTimeout:      time.Duration(cfg.SyncFlushTimeout) * time.Millisecond,
		WarmSegments:          cfg.WarmMapedFileEnable,
		FileReservedTime:      time.Duration(cfg.FileReservedTime) * time.Hour,
		DeleteWhen:            cfg.DeleteWhenHours(),
		DiskMaxUsedSpaceRatio: cfg.DiskMaxUsedSpaceRatio,
		MaxMessageSize:        cfg.MaxMessageSize,
		MessageIndexEnable:    &cfg.MessageIndexEnable,
		IndexSlots:            cfg.MaxHashSlotNum,
		IndexEntries:          cfg.MaxIndexNum,
		StoreHost:             b.storeHost,
		Logger:                slog,
		TagsCode:              b.tagsCode,
		AcceptDataLoss:        o.AcceptDataLoss,
		FsyncFault:            o.fsyncFault,
		// Controller mode: consumers see only records the replicas hold.
		ConfirmGate: cfg.EnableControllerMode,
		// Java's diskSpaceWarningLevelRatio, diskSpaceCleanForciblyRatio
		// and cleanFileForciblyEnable (broker/store/retention.go).
		DiskSpaceWarningLevelRatio:  cfg.DiskSpaceWarningLevelRatio,
		DiskSpaceCleanForciblyRatio: cfg.DiskSpaceCleanForciblyRatio,
		CleanFileForcibly:           &cfg.CleanFileForciblyEnable,
		// Java's enableLmq + enableMultiDispatch, maxLmqConsumeQueueNum
		// (broker/store/lmq.go).
		LightQueues:    cfg.EnableLmq && cfg.EnableMultiDispatch,
		MaxLightQueues: cfg.MaxLmqConsumeQueueNum,
	}
	if cfg.FlushDiskType == "SYNC_FLUSH" {
		sc.FlushMode = store.SyncFlush
	}
	if b.store, err = store.Open(sc); err != nil {
		b.srv.Close()
		return nil, fmt.Errorf("open store %s: %w", cfg.StorePathRootDir, err)
	}
	b.store.OnWaitersAnswered(b.ackWakes.wake)
	if b.stats, err = stats.New(stats.Options{Dir: filepath.Join(cdir, "stats"), ClusterName: cfg.BrokerClusterName, Out: o.StatsOut, Log: o.Log}); err != nil {
		b.store.Close()
		b.srv.Close()
		return nil, err
	}
	if b.delay, err = schedule.OpenLevels(b.store, b.delayLevels, cdir+"/delayOffset.json", o.Log); err != nil {
		b.store.Close()
		b.srv.Close()
		return nil, err
	}
	if b.timers, err = schedule.OpenTimers(b.store, filepath.Join(cfg.StorePathRootDir, "timerwheel"), time.Duration(cfg.FileReservedTime)*time.Hour, o.Log); err != nil {
		b.store.Close()
		b.srv.Close()
		return nil, err
	}
	if b.tx, err = transaction.Open(transaction.Options{
		Store: b.store, StateFile: cdir + "/transaction.json", MaxDelay: len(b.delayLevels),
		Timeout:  time.Duration(cfg.TransactionTimeOut) * time.Millisecond,
		Interval: time.Duration(cfg.TransactionCheckInterval) * time.Millisecond,
		CheckMax: cfg.TransactionCheckMax, Check: b.checkTransaction, BeforeDiscard: b.ensureTransMaxTimeTopic, Log: o.Log,
	}); err != nil {
		b.store.Close()
		b.srv.Close()
		return nil, err
	}
	b.delay.DeadLetter, b.timers.DeadLetter = b.deadLetterTopic, b.deadLetterTopic
	if cfg.EnableControllerMode {
		err = b.openController(o.Log, tlsClient)
	} else {
		err = b.openHA(slog)
	}
	if err != nil {
		b.tx.Close()
		b.store.Close()
		b.srv.Close()
		return nil, err
	}
	b.holds = newPullHolds(b)
	flowLog := o.FlowLog
	if flowLog == nil {
		flowLog = o.Log
	}
	b.newFlow(flowLog)
	b.store.OnDispatch(b.dispatched)
	b.amqp.Attach(amqpengine.Backend{Store: b.store, Offsets: b.offsets, EnsureTopic: b.amqpStoreTopic,
		Durable: b.amqpDurable, LightQueues: cfg.EnableLmq && cfg.EnableMultiDispatch, MaxDelayLevel: b.delay.MaxLevel()})
	b.store.SetConsumedOffsets(b.consumedOffset)
	if err := b.createSystemTopics(); err != nil {
		b.store.Close()
		b.srv.Close()
		return nil, err
	}
	if err := b.openGrpc(); err != nil {
		b.store.Close()
		b.srv.Close()
		return nil, err
	}
	if err := b.openAMQPGateway(); err != nil {
		b.closeGrpc()
		b.store.Close()
		b.srv.Close()
		return nil, err
	}
	if err := b.openHTTPGateway(); err != nil {
		b.closeAMQPGateway()
		b.closeGrpc()
		b.store.Close()
		b.srv.Close()
		return nil, err
	}
	// Registrations and a slave's metadata sync from its master go out on
	// this client: with useTLS they need TLS-capable peers (Java's
	// tls.enable does the same).
	b.namesrv = remoting.NewClient(nil, o.Log)
	// Registrations and slave-to-master syncs are signed, for name servers
	// and masters with aclEnable.
	if cr, err := config.ParseCredentials(cfg.InnerClientAuthenticationCredentials); err == nil && !cr.IsEmpty() {
		b.namesrv.SetCredentials(cr)
	}
	b.namesrv.UseTLS(tlsClient)
	b.sync = slavesync.New(slavesync.Options{
		Master: b.masterAddr, Self: b.addr, Client: b.namesrv, Timeout: slaveSyncTimeout,
		Topics: b.topics, Groups: b.groups, Offsets: b.offsets, Delay: b.delay, Timers: b.timers, TopicsChanged: b.kickRegister, Log: o.Log,
	})
	return b, nil
}

// slaveSyncTimeout bounds each of a slave's metadata requests to its master
// (Java's SlaveSynchronize uses 3 s).
const slaveSyncTimeout = 3 * time.Second

// setPullSettings applies the settings pulls read at run time.
func (b *Broker) setPullSettings(cfg *config.Broker) {
	b.propertyFilter.Store(cfg.EnablePropertyFilter)
	b.slaveRead.Store(cfg.SlaveReadEnable)
	b.offsetCheckInSlave.Store(cfg.OffsetCheckInSlave)
	b.memoryBudget.Store(physicalMemory() * int64(cfg.AccessMessageInMemoryMaxRatio) / 100)
}

// Addr is the address the broker registers ("brokerIP1:port").
func (b *Broker) Addr() string { return b.addr }

// ListenAddr is the address the remoting port is bound to.
func (b *Broker) ListenAddr() net.Addr { return b.srv.Addr() }

func (b *Broker) createSystemTopics() error {
	cfg := b.cfg
	// As in Java's TopicConfigManager, the topics named after the cluster
	// and the broker always exist and are inheritable (a producer may name
	// either as its createTopicKey); clusterTopicEnable and
	// brokerTopicEnable make them readable and writable themselves.
	clusterPerm, brokerPerm := wire.PermInherit, wire.PermInherit
	if cfg.ClusterTopicEnable {
		clusterPerm |= wire.PermRead | wire.PermWrite
	}
	if cfg.BrokerTopicEnable {
		brokerPerm |= wire.PermRead | wire.PermWrite
	}
	sys := []wire.TopicConfig{
		{TopicName: meta.TopicSelfTest, ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6},
		{TopicName: meta.TopicBenchmark, ReadQueueNums: 1024, WriteQueueNums: 1024, Perm: 6},
		{TopicName: cfg.BrokerClusterName, ReadQueueNums: 16, WriteQueueNums: 16, Perm: clusterPerm},
		{TopicName: cfg.BrokerName, ReadQueueNums: 1, WriteQueueNums: 1, Perm: brokerPerm},
		{TopicName: meta.TopicOffsetMoved, ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6},
		{TopicName: meta.TopicSchedule, ReadQueueNums: 18, WriteQueueNums: 18, Perm: 6},
		{TopicName: cfg.BrokerClusterName + "_REPLY_TOPIC", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6},
	}
	if cfg.AutoCreateTopicEnable {
		sys = append(sys, wire.TopicConfig{TopicName: meta.TopicAutoCreate, ReadQueueNums: cfg.DefaultTopicQueueNums, WriteQueueNums: cfg.DefaultTopicQueueNums, Perm: 7})
	}
	if cfg.TraceTopicEnable {
		sys = append(sys, wire.TopicConfig{TopicName: cfg.MsgTraceTopicName, ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6})
	}
	for _, tc := range sys {
		if err := b.topics.EnsureSystem(tc); err != nil {
			return fmt.Errorf("create system topic %s: %w", tc.TopicName, err)
		}
	}
	// Java keeps the permission saved in topics.json; here the two keys
	// decide at every start, so turning one off takes effect.
	for _, tc := range sys[2:4] {
		if cur := b.topics.Lookup(tc.TopicName); cur != nil && cur.Perm != tc.Perm {
			next := *cur
			next.Perm = tc.Perm
			if _, err := b.topics.Put(next); err != nil {
				return fmt.Errorf("set permission of system topic %s: %w", tc.TopicName, err)
			}
		}
	}
	for _, g := range []string{"TOOLS_CONSUMER", "FILTERSRV_CONSUMER", "SELF_TEST_C_GROUP", "CID_ONS-HTTP-PROXY", "CID_ONSAPI_PULL", "CID_ONSAPI_PERMISSION", "CID_ONSAPI_OWNER"} {
		if _, _, err := b.groups.Ensure(g); err != nil {
			return fmt.Errorf("create system group %s: %w", g, err)
		}
	}
	return nil
}

// Start serves requests, registers with every name server and starts the
// housekeeping loops.
func (b *Broker) Start() {
	b.wg.Add(2)
	go func() {
		defer b.wg.Done()
		b.flow.Watch(b.stop, b.waterMarkOut)
	}()
	go func() {
		defer b.wg.Done()
		if err := b.srv.Serve(b.onAccept); err != nil {
			b.log.Error("[SERVE] accept loop stopped", "err", err)
		}
	}()
	b.stats.Start()
	if b.ctl != nil {
		// Controller mode switches roles at run time: the metadata sync
		// runs only while a master is known (a slave's); the writing
		// services start when the controller makes this broker master
		// (becomeMaster) and stop when it makes it a slave.
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.sync.Run(b.stop)
		}()
	} else if b.isSlave() {
		// A slave stores nothing of its own: the services that write
		// (delay and timer re-publishing, transaction check-backs) run on
		// the master, whose writes reach the slave by replication. The
		// slave takes its metadata from the master instead.
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.sync.Run(b.stop)
		}()
	} else {
		b.delay.Start()
		b.timers.Start()
		b.tx.Start()
	}
	b.startHA()
	b.startController()
	b.startPop()
	b.startGrpc()
	b.startHTTPGateway()
	b.startAMQPGateway()
	b.registerAll()
	b.wg.Add(3)
	go b.registerLoop()
	go b.housekeepingLoop()
	b.wg.Add(1)
	go b.amqpLoop()
	go b.holds.loop()
}

// Close unregisters from the name servers, stops serving and closes the
// store cleanly (no abort marker left behind).
func (b *Broker) Close() error {
	b.stopMu.Lock()
	b.stopping = true
	b.stopMu.Unlock()
	close(b.stop)
	// The AMQP gateway drains first, while the vhosts' routes still name
	// this broker: its connections' last publishes are stored here.
	b.closeAMQPGateway()
	b.unregisterAll()
	b.srv.Close()
	b.closeGrpc()
	b.closeHTTPGateway()
	b.namesrv.Close()
	b.wg.Wait()
	b.closeController()
	b.closeHA()
	if err := b.tx.Close(); err != nil {
		b.log.Error("[TRANSACTION] saving transaction state failed", "err", err)
	}
	if err := b.timers.Close(); err != nil {
		b.log.Error("[TIMER] closing the timer wheel failed", "err", err)
	}
	if err := b.delay.Close(); err != nil {
		b.log.Error("[DELAY] saving delay progress failed", "err", err)
	}
	if b.pop != nil {
		b.savePopState() // POP commits offsets: before their flush
	}
	b.amqp.Checkpoint() // exact delivered marks, before the last offset flush
	if err := b.offsets.Flush(); err != nil {
		b.log.Error("[OFFSET_FLUSH] failed", "err", err)
	}
	b.flushMeta()
	if err := b.stats.Close(); err != nil {
		b.log.Error("[STATS] saving statistics failed", "err", err)
	}
	return b.store.Close()
}

func (b *Broker) permission() int { return int(b.perm.Load()) }

// ---- connections ----

type connState struct {
	bornHost []byte
	scratch  []byte // property rebuilding; only touched on the read loop
	parked   []byte // properties of a message being parked (delay, transaction)
	items    []store.Message

	// Send admission, touched by the read loop only, except that the
	// goroutine answering a send after its flush or replica wait also
	// decrements sendsInFlight.
	sendsInFlight atomic.Int32
	ticket        flow.Ticket   // the budget of the send being served
	readAt        time.Time     // when it was read
	hold          time.Duration // the send's quota delay, for replySend
	account       *acl.Account  // the send's authenticated ACL account, nil without
	waiter        flow.Waiter
}

func (b *Broker) onAccept(c *remoting.Conn) {
	st := &connState{}
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		st.bornHost = wire.HostBytes(ta)
	} else {
		st.bornHost = make([]byte, 8)
	}
	c.Attachment.Store(st)
	c.OnClose(func(c *remoting.Conn) {
		for _, g := range b.clients.RemoveConn(c) {
			b.log.Info("[CLIENT_CLOSED] consumer left group", "group", g, "remote", c.RemoteAddr().String())
			b.notifyConsumerIDsChanged(g)
		}
	})
}

func stateOf(c *remoting.Conn) *connState {
	st, _ := c.Attachment.Load().(*connState)
	if st == nil {
		st = &connState{bornHost: make([]byte, 8)}
	}
	return st
}

// ServeRequest dispatches one request by code.
func (b *Broker) ServeRequest(c *remoting.Conn, req *wire.Command) {
	var account *acl.Account
	if b.acl != nil {
		var ok bool
		if account, ok = b.acl.AllowAccount(c, req); !ok {
			return
		}
	}
	switch req.Code {
	case wire.SendMessage, wire.SendMessageV2, wire.SendBatchMessage:
		b.handleSend(c, req, account)
	case wire.PullMessage:
		b.handlePull(c, req, true)
	case wire.QueryConsumerOffset:
		b.handleQueryConsumerOffset(c, req)
	case wire.UpdateConsumerOffset:
		b.handleUpdateConsumerOffset(c, req)
	case wire.HeartBeat:
		b.handleHeartbeat(c, req)
	case wire.UnregisterClient:
		b.handleUnregisterClient(c, req)
	case wire.CheckClientConfig:
		b.handleCheckClientConfig(c, req)
	case wire.GetConsumerListByGroup:
		b.handleGetConsumerList(c, req)
	case wire.EndTransaction:
		b.handleEndTransaction(c, req)
	case wire.ConsumerSendMsgBack:
		b.handleSendBack(c, req)
	case wire.SearchOffsetByTimestamp, wire.GetMaxOffset, wire.GetMinOffset, wire.GetEarliestMsgStoreTime:
		b.handleQueueOffsets(c, req)
	case wire.LockBatchMQ:
		b.handleLockBatch(c, req)
	case wire.UnlockBatchMQ:
		b.handleUnlockBatch(c, req)
	case wire.UpdateAndCreateTopic:
		b.handleCreateTopic(c, req)
	case wire.DeleteTopicInBroker:
		b.handleDeleteTopic(c, req)
	case wire.GetAllTopicConfig:
		b.handleGetAllTopicConfig(c, req)
	case wire.UpdateAndCreateSubGroup:
		b.handleCreateSubGroup(c, req)
	case wire.GetAllSubGroupConfig:
		b.handleGetAllSubGroup(c, req)
	case wire.DeleteSubGroup:
		b.handleDeleteSubGroup(c, req)
	case wire.UpdateAndCreateACLConfig, wire.DeleteACLConfig, wire.GetBrokerClusterACLInfo, wire.UpdateGlobalWhiteAddrsConfig, wire.GetBrokerClusterACLConfig:
		b.handleACLAdmin(c, req)
	case wire.GetAllConsumerOffset:
		b.replyBody(c, req, b.offsets.Encode())
	case wire.GetAllDelayOffset:
		b.replyBody(c, req, b.delay.Encode())
	case wire.GetTimerCheckPoint:
		b.replyBody(c, req, b.timers.Checkpoint(b.stateVersion()).Encode())
	case wire.UpdateBrokerConfig:
		b.handleUpdateBrokerConfig(c, req)
	case wire.GetBrokerConfig:
		b.handleGetBrokerConfig(c, req)
	case wire.GetBrokerRuntimeInfo:
		b.handleRuntimeInfo(c, req)
	case wire.GetBrokerHAStatus:
		b.handleHAStatus(c, req)
	case wire.GetTopicStatsInfo:
		b.handleTopicStats(c, req)
	case wire.GetConsumeStats:
		b.handleConsumeStats(c, req)
	case wire.GetBrokerConsumeStats:
		b.handleBrokerConsumeStats(c, req)
	case wire.GetConsumerConnectionList:
		b.handleConsumerConnections(c, req)
	case wire.GetProducerConnectionList:
		b.handleProducerConnections(c, req)
	case wire.QueryTopicConsumeByWho:
		b.handleConsumeByWho(c, req)
	case wire.ViewMessageByID:
		b.handleViewMessage(c, req)
	case wire.QueryMessage:
		b.handleQueryMessage(c, req)
	case wire.InvokeBrokerToResetOffset:
		b.handleResetOffset(c, req)
	case wire.ViewBrokerStatsData:
		b.handleViewStats(c, req)
	case wire.GetConsumerRunningInfo, wire.ConsumeMessageDirectly:
		b.handleConsumerCallback(c, req)
	case wire.MQOpsStatsToday:
		b.handleStatsToday(c, req)
	case wire.MQOpsStatsSeries:
		b.handleStatsSeries(c, req)
	case wire.MQOpsPopStats:
		b.handlePopStats(c, req)
	case wire.AMQPDeclareExchange, wire.AMQPDeleteExchange, wire.AMQPBind, wire.AMQPUnbind,
		wire.AMQPDeclareQueue, wire.AMQPDeleteQueue, wire.AMQPList, wire.AMQPReleaseOwner, wire.AMQPConsume, wire.AMQPCancel, wire.AMQPLease,
		wire.AMQPPublish, wire.AMQPFetch, wire.AMQPSettle, wire.AMQPRelease, wire.AMQPPurge,
		wire.AMQPAddVhost, wire.AMQPDeleteVhost,
		wire.AMQPAuthenticate, wire.AMQPListUsers, wire.AMQPPutUser, wire.AMQPDeleteUser, wire.AMQPSetPermissions,
		wire.AMQPClearPermission:
		b.handleAMQP(c, req, account)
	case wire.NotifyBrokerRoleChanged:
		b.handleNotifyRoleChanged(c, req)
	case wire.GetBrokerEpochCache:
		b.handleEpochCache(c, req)
	default:
		c.ReplyCode(req, wire.RequestCodeNotSupported, fmt.Sprintf(" request type %d not supported", req.Code))
	}
}

// goSafe runs fn on its own goroutine unless the broker is stopping, with
// the same panic safety net the read loop gives handlers, and counts it in
// the broker's wait group so Close waits for it before closing the store.
func (b *Broker) goSafe(what string, c *remoting.Conn, req *wire.Command, fn func()) {
	b.stopMu.RLock()
	defer b.stopMu.RUnlock()
	if b.stopping {
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.serveSafe(what, c, req, fn)
	}()
}

// serveSafe runs fn, answering req SYSTEM_ERROR if it panics.
func (b *Broker) serveSafe(what string, c *remoting.Conn, req *wire.Command, fn func()) {
	defer func() {
		if p := recover(); p != nil {
			b.log.Error("[PANIC] recovered", "in", what, "panic", p, "stack", string(debug.Stack()))
			c.ReplyCode(req, wire.SystemError, fmt.Sprintf("internal error: %v", p))
		}
	}()
	fn()
}

// replyBody answers SUCCESS with a body.
func (b *Broker) replyBody(c *remoting.Conn, req *wire.Command, body []byte) {
	resp := wire.ResponseTo(req, wire.Success, "")
	resp.Body = body
	c.Reply(req, &resp)
}

// missing answers SYSTEM_ERROR for an absent required field, as Java does.
func missing(c *remoting.Conn, req *wire.Command, field string) {
	c.ReplyCode(req, wire.SystemError, fmt.Sprintf("the custom field <%s> is null", field))
}

// badNumber answers SYSTEM_ERROR for a numeric field that is not a number
// of its Java type, as Java's header decoder does: a value out of int32
// range is refused, never wrapped into another queue or flag.
func badNumber(c *remoting.Conn, req *wire.Command, field string) {
	c.ReplyCode(req, wire.SystemError, fmt.Sprintf("the custom field <%s> is not a valid number for its type (int32 fields take -2147483648..2147483647)", field))
}

// knownOrValidGroup reports why a consumer group may not be used, or nil:
// groups already in the table are served whatever their name (earlier
// builds created them); a new name must follow the naming rules.
func (b *Broker) knownOrValidGroup(group string) error {
	if b.groups.Lookup(group) != nil {
		return nil
	}
	return wire.CheckGroup(group)
}

// ---- name-server registration ----

// namesrvAddrs is the name servers the broker registers with now:
// namesrvAddr changes at runtime (a blue-green upgrade adds the new
// cluster's name servers to the old brokers).
func (b *Broker) namesrvAddrs() []string {
	b.cfgMu.RLock()
	list := b.cfgView.NamesrvAddr
	b.cfgMu.RUnlock()
	return splitAddrs(list)
}

func splitAddrs(list string) []string {
	var out []string
	for _, a := range strings.Split(list, ";") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// kickRegister asks the register loop to re-register soon (topic created).
func (b *Broker) kickRegister() {
	select {
	case b.registerKick <- struct{}{}:
	default:
	}
}

func (b *Broker) registerLoop() {
	defer b.wg.Done()
	period := time.Duration(b.cfg.RegisterNameServerPeriod) * time.Millisecond
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		case <-b.registerKick:
		}
		b.registerAll()
	}
}

// registerAll registers with every name server in parallel. When the broker
// lacks read or write permission every topic is registered with the broker's
// permission, which is how clients learn to stay away.
func (b *Broker) registerAll() {
	b.registerMu.Lock()
	defer b.registerMu.Unlock()
	addrs := b.namesrvAddrs()
	if len(addrs) == 0 {
		return
	}
	w := b.topics.Snapshot()
	perm := b.permission()
	if perm&wire.PermRead == 0 || perm&wire.PermWrite == 0 {
		for _, tc := range w.TopicConfigTable {
			tc.Perm = perm
		}
	}
	brokerID := b.cfg.BrokerID
	if b.ctl != nil {
		id, stateVersion, ok := b.ctlRegistration()
		if !ok {
			return // fenced: no role yet
		}
		brokerID = id
		w.DataVersion.StateVersion = stateVersion
	}
	body := wire.Marshal(wire.RegisterBrokerBody{FilterServerList: []string{}, TopicConfigSerializeWrapper: w})
	fields := map[string]string{
		"brokerName": b.cfg.BrokerName, "brokerAddr": b.addr, "clusterName": b.cfg.BrokerClusterName,
		"haServerAddr": b.haAddr,
		"brokerId":     strconv.FormatInt(brokerID, 10), "compressed": "false",
		"bodyCrc32": strconv.FormatInt(int64(crc32.ChecksumIEEE(body)&0x7FFFFFFF), 10), // Java masks the sign bit
	}
	timeout := time.Duration(b.cfg.RegisterBrokerTimeoutMills) * time.Millisecond
	var wg sync.WaitGroup
	for _, a := range addrs {
		wg.Add(1)
		go func(addr string) {
			defer wg.Done()
			resp, err := b.namesrv.Invoke(addr, wire.NewRequest(wire.RegisterBroker, fields, body), timeout)
			switch {
			case err != nil:
				b.log.Warn("[REGISTER_FAILED] register broker to name server failed", "namesrv", addr, "err", err)
			case resp.Code != wire.Success:
				b.log.Warn("[REGISTER_FAILED] name server refused registration", "namesrv", addr, "code", wire.ResponseName(resp.Code), "remark", string(resp.Remark))
			default:
				b.log.Debug("registered to name server", "namesrv", addr)
				if b.ctl != nil {
					b.ctlRegistered(resp)
				} else {
					b.followRegisteredMaster(resp)
					b.noteRegistered(resp)
				}
				b.publishGrpcAddr(addr, timeout)
			}
		}(a)
	}
	wg.Wait()
}

func (b *Broker) unregisterAll() { b.unregister(b.namesrvAddrs()) }

// removedAddrs lists the name servers of list old that list next lacks.
func removedAddrs(old, next string) []string {
	keep := map[string]bool{}
	for _, a := range splitAddrs(next) {
		keep[a] = true
	}
	var out []string
	for _, a := range splitAddrs(old) {
		if !keep[a] {
			out = append(out, a)
		}
	}
	return out
}

func (b *Broker) unregister(addrs []string) {
	brokerID := b.cfg.BrokerID
	if b.ctl != nil {
		id, _, ok := b.ctlRegistration()
		if !ok {
			return
		}
		brokerID = id
	}
	fields := map[string]string{
		"brokerName": b.cfg.BrokerName, "brokerAddr": b.addr, "clusterName": b.cfg.BrokerClusterName,
		"brokerId": strconv.FormatInt(brokerID, 10),
	}
	for _, a := range addrs {
		if _, err := b.namesrv.Invoke(a, wire.NewRequest(wire.UnregisterBroker, fields, nil), 3*time.Second); err != nil {
			b.log.Warn("unregister from name server failed", "namesrv", a, "err", err)
		}
	}
}

// ---- housekeeping ----

// ChannelExpiry drops clients that have not sent a heartbeat for this long.
const ChannelExpiry = 120 * time.Second

// amqpLoop runs the AMQP engine's timers each second: consume timeouts,
// message expiry (dead-lettering writes and may wait for the disk, so not
// on the housekeeping loop) and x-expires. A second is finer than
// RabbitMQ needs, and what 200 ms TTLs and 2 s timeouts in tests need.
func (b *Broker) amqpLoop() {
	defer b.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-b.stop:
			return
		case now := <-tick.C:
			if n := b.amqp.ExpireDeliveries(now); n > 0 {
				b.log.Warn("[AMQP] deliveries past their consume timeout released for redelivery", "count", n)
			}
			b.amqp.SweepExpired(now)
			gone, err := b.amqp.ExpireQueues(now)
			for _, q := range gone {
				b.log.Info("[AMQP] queue deleted after going unused for its x-expires", "queue", q.Name)
			}
			if err != nil {
				b.log.Error("[AMQP] deleting queues past x-expires", "err", err)
			}
		}
	}
}

func (b *Broker) housekeepingLoop() {
	defer b.wg.Done()
	scan := time.NewTicker(10 * time.Second)
	flush := time.NewTicker(time.Duration(b.cfg.FlushConsumerOffsetInterval) * time.Millisecond)
	metaFlush := time.NewTicker(metaFlushInterval)
	leases := time.NewTicker(time.Second)
	defer leases.Stop()
	defer scan.Stop()
	defer flush.Stop()
	defer metaFlush.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-scan.C:
			for _, ch := range b.clients.Expired(time.Now().Add(-ChannelExpiry)) {
				b.log.Warn("[CLIENT_EXPIRED] no heartbeat for 120s, closing", "clientId", ch.ClientID, "remote", ch.Conn.RemoteAddr().String())
				ch.Conn.Close()
			}
			b.locks.expire()
		case <-flush.C:
			if err := b.offsets.Flush(); err != nil {
				b.log.Error("[OFFSET_FLUSH] failed", "err", err)
			}
		case <-metaFlush.C:
			b.flushMeta()
		case <-leases.C:
			b.expireAMQPLeases()
		}
	}
}

// metaFlushInterval bounds how long an auto-created group or retry topic
// waits to be written: they are written together, so n of them cost one
// file write per interval instead of n writes of the whole file.
const metaFlushInterval = 200 * time.Millisecond

// flushMeta writes the topic and group tables if they changed.
func (b *Broker) flushMeta() {
	if err := b.topics.Flush(); err != nil {
		b.log.Error("[CONFIG_FLUSH] writing topics failed, will retry", "err", err)
	}
	if err := b.groups.Flush(); err != nil {
		b.log.Error("[CONFIG_FLUSH] writing subscription groups failed, will retry", "err", err)
	}
}

// physicalMemory is the machine's RAM in bytes (8 GiB if unknown).
func physicalMemory() int64 {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil || si.Totalram == 0 {
		return 8 << 30
	}
	return int64(si.Totalram) * int64(si.Unit)
}

// tagsCode is the consume-queue tags code of a record: for parked
// messages the time they are due, which the delivery loops compare with
// the clock without reading the log; else the tags hash.
func (b *Broker) tagsCode(v wire.RecordView) int64 {
	switch string(v.Topic()) {
	case meta.TopicSchedule:
		return schedule.DeliverAt(b.delayLevels, v)
	case meta.TopicTimer:
		return schedule.TimerOutMs(v)
	}
	return store.DefaultTagsCode(v)
}

// consumedOffset tells store retention how far a queue has been read, so
// disk pressure never deletes unread messages silently (store
// SetConsumedOffsets): the lowest offset committed by the groups
// consuming the topic; for delay levels the next one to deliver. Topics
// no group has read from count as unread from the start, except the
// broker's own bookkeeping topics and dead letters, which no consumer is
// expected to read.
func (b *Broker) consumedOffset(topic string, queueID int32) (int64, bool) {
	if off, ok := b.offsets.MinCommitted(topic, queueID); ok {
		return off, true
	}
	switch {
	case topic == meta.TopicSchedule:
		if p := b.delay.Progress(); int(queueID) < len(p) {
			return p[queueID][0], true
		}
		return 0, false
	case b.topics.IsSystem(topic), strings.HasPrefix(topic, "RMQ_SYS_"), topic == meta.TopicTransMaxTime,
		topic == b.cfg.MsgTraceTopicName, strings.HasPrefix(topic, meta.DLQPrefix):
		return 0, false
	}
	return 0, true
}
