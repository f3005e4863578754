// Package config reads and writes the daemons' settings in RocketMQ's own
// properties format, so a Java broker.conf or namesrv.conf loads unchanged.
package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mqops/mqops/wire"
)

// Broker is a broker's configuration. Each field's comment starts with its
// RocketMQ key; defaults are Java's unless noted. Fields are plain data:
// Set is not safe to call while other goroutines read them.
type Broker struct {
	BrokerClusterName string // brokerClusterName
	BrokerName        string // brokerName; Java defaults to the host name, we to "broker-a"
	BrokerID          int64  // brokerId; 0 is the master, and masters always get 0
	// namesrvAddr, "ip:port;ip:port"; may be empty. Defaults to
	// $NAMESRV_ADDR, as in Java.
	NamesrvAddr string
	ListenPort  int // listenPort; 0 binds any free port
	// bindAddress (RocketMQ 5's NettyServerConfig): the address the
	// remoting port listens on; default 0.0.0.0, every interface.
	BindAddress string
	// brokerIP1, the address registered and written into message ids;
	// defaults to bindAddress when that is one IPv4 address, else to the
	// host's first non-loopback IPv4, else 127.0.0.1.
	BrokerIP1 string
	BrokerIP2 string // brokerIP2, the HA address; defaults to brokerIP1
	// haListenPort; defaults to listenPort+1 (0 if listenPort is 0). Java
	// always forces that; we honor an explicit value.
	HAListenPort int
	// haMasterAddress: a slave's fixed master HA address ("ip:port"), used
	// when at least 6 characters long; else the slave follows the
	// haServerAddr the name servers answer its registration with.
	HAMasterAddress         string
	HASendHeartbeatInterval int   // haSendHeartbeatInterval, ms: HA heartbeat and report interval
	HAHousekeepingInterval  int   // haHousekeepingInterval, ms: a silent HA connection is closed after this
	HATransferBatchSize     int   // haTransferBatchSize, bytes per master → slave frame
	HASlaveFallbehindMax    int64 // haSlaveFallbehindMax (RocketMQ 5: haMaxGapNotInSync), bytes a slave may lag and still count
	SlaveTimeout            int64 // slaveTimeout, ms: how long a SYNC_MASTER send waits for a slave
	// haFlowControlEnable: cap each slave connection's transfer at
	// maxHaTransferByteInSecond bytes of log per second.
	HAFlowControlEnable       bool
	MaxHATransferByteInSecond int64

	StorePathRootDir           string // storePathRootDir, default $HOME/store
	StorePathCommitLog         string // storePathCommitLog, default <storePathRootDir>/commitlog
	MappedFileSizeCommitLog    int64  // mappedFileSizeCommitLog (old spelling mapedFileSizeCommitLog), bytes
	MappedFileSizeConsumeQueue int64  // mappedFileSizeConsumeQueue, bytes, a multiple of 20 (one entry)
	MessageIndexEnable         bool   // messageIndexEnable: keep the key index (QUERY_MESSAGE)
	MaxHashSlotNum             int    // maxHashSlotNum: hash slots per index file
	MaxIndexNum                int    // maxIndexNum: entries per index file
	FlushDiskType              string // flushDiskType: ASYNC_FLUSH or SYNC_FLUSH
	FlushIntervalCommitLog     int    // flushIntervalCommitLog, ms
	FlushIntervalConsumeQueue  int    // flushIntervalConsumeQueue, ms
	SyncFlushTimeout           int64  // syncFlushTimeout, ms
	// warmMapedFileEnable: with SYNC_FLUSH, keep the commit log written
	// with zeros ahead of the appends so that an ack's fsync has no block
	// conversion to commit (broker/store/warm.go). Default true here;
	// RocketMQ's (false) zero-fills whole files at creation instead.
	WarmMapedFileEnable bool
	BrokerRole          string // brokerRole: ASYNC_MASTER, SYNC_MASTER or SLAVE
	FileReservedTime    int    // fileReservedTime, hours
	DeleteWhen          string // deleteWhen, hours of day "04" or "04;05"; see DeleteWhenHours
	// diskMaxUsedSpaceRatio, percent; 1..100 accepted, then clamped to
	// 10..95 as Java does.
	DiskMaxUsedSpaceRatio int
	CleanResourceInterval int // cleanResourceInterval, ms: period of the retention pass and the disk-full check
	// diskSpaceWarningLevelRatio (RocketMQ 5's key; 4.9's system property
	// rocketmq.broker.diskSpaceWarningLevelRatio, a fraction, is an alias),
	// percent: above it sends are refused.
	DiskSpaceWarningLevelRatio int
	// diskSpaceCleanForciblyRatio (alias rocketmq.broker.diskSpaceCleanForciblyRatio),
	// percent: sends are accepted again at or below it.
	DiskSpaceCleanForciblyRatio int
	// cleanFileForciblyEnable: whether segments holding unread messages
	// may be deleted when the disk stays full (broker/store/retention.go).
	CleanFileForciblyEnable bool
	MaxMessageSize          int // maxMessageSize, body bytes

	AutoCreateTopicEnable          bool   // autoCreateTopicEnable
	AutoCreateSubscriptionGroup    bool   // autoCreateSubscriptionGroup
	ClusterTopicEnable             bool   // clusterTopicEnable: serve a topic named after the cluster
	BrokerTopicEnable              bool   // brokerTopicEnable: serve a topic named after the broker
	DefaultTopicQueueNums          int    // defaultTopicQueueNums
	BrokerPermission               int    // brokerPermission: bits 4 read, 2 write, 1 inherit
	RegisterNameServerPeriod       int    // registerNameServerPeriod, ms, clamped to 10000..60000 as in Java
	RegisterBrokerTimeoutMills     int    // registerBrokerTimeoutMills, ms
	FlushConsumerOffsetInterval    int    // flushConsumerOffsetInterval, ms
	LongPollingEnable              bool   // longPollingEnable
	ShortPollingTimeMills          int64  // shortPollingTimeMills, ms
	NotifyConsumerIdsChangedEnable bool   // notifyConsumerIdsChangedEnable
	TraceTopicEnable               bool   // traceTopicEnable
	MsgTraceTopicName              string // msgTraceTopicName
	MessageDelayLevel              string // messageDelayLevel, e.g. "1s 5m 2h 1d"; see DelayLevels
	RejectTransactionMessage       bool   // rejectTransactionMessage
	TransactionTimeOut             int64  // transactionTimeOut, ms
	TransactionCheckMax            int    // transactionCheckMax
	TransactionCheckInterval       int64  // transactionCheckInterval, ms
	// timerMaxDelaySec (RocketMQ 5): the longest delay a timer message may
	// ask for; Java defaults to 3 days, we to 30.
	TimerMaxDelaySec int64
	RegionID         string // regionId
	TraceOn          bool   // traceOn
	// configBlackList: keys UPDATE_BROKER_CONFIG refuses besides the ones
	// the broker always refuses, ';'-separated, as in Java.
	ConfigBlackList string
	LogDir          string // logDir (ours, not Java's), default $HOME/logs/rocketmqlogs
	// aclEnable: check every request against the plain ACL rules
	// (plain_acl.yml; see broker/acl).
	AclEnable bool
	// aclFile (ours, not Java's): the rules file, replacing the default
	// $ROCKETMQ_HOME/conf/plain_acl.yml plus conf/acl/*.yml (without
	// ROCKETMQ_HOME: the directory of the config file).
	AclFile string
	// innerClientAuthenticationCredentials (RocketMQ 5): JSON
	// {"accessKey":"…","secretKey":"…"} the broker signs its name-server
	// registrations and slave-to-master syncs with.
	InnerClientAuthenticationCredentials string

	// slaveReadEnable: pull answers may send consumers to a slave
	// (suggestWhichBrokerId); a slave serves pulls either way.
	SlaveReadEnable bool
	// accessMessageInMemoryMaxRatio, percent of RAM: a consumer reading
	// further than this behind the end of the commit log reads from disk,
	// and is sent to the group's whichBrokerWhenConsumeSlowly when
	// slaveReadEnable is on.
	AccessMessageInMemoryMaxRatio int
	// offsetCheckInSlave: a slave corrects out-of-range pull offsets as a
	// master does, instead of keeping the consumer where it is.
	OffsetCheckInSlave bool
	// enablePropertyFilter: serve SQL92 property-filter subscriptions;
	// without it their pulls are refused, as in Java.
	EnablePropertyFilter bool
	// enableLmq and enableMultiDispatch (MessageStoreConfig), both needed:
	// a message whose INNER_MULTI_DISPATCH property lists light message
	// queues (%LMQ%…) is stored once and dispatched into queue 0 of each
	// (broker/store/lmq.go); light queues are served to pulls without a
	// topic config. maxLmqConsumeQueueNum caps how many exist.
	EnableLmq             bool
	EnableMultiDispatch   bool
	MaxLmqConsumeQueueNum int

	// RocketMQ 5 controller mode (BrokerConfig and
	// MessageStoreConfig of apache/rocketmq 5.x). With EnableControllerMode the
	// controller decides the broker's role and id: brokerId and brokerRole in
	// the file are not authoritative (Java's samples say brokerId=-1, SLAVE).
	EnableControllerMode            bool   // enableControllerMode
	ControllerAddr                  string // controllerAddr, "ip:port;ip:port"
	SyncBrokerMetadataPeriod        int    // syncBrokerMetadataPeriod, ms: GET_REPLICA_INFO poll
	CheckSyncStateSetPeriod         int    // checkSyncStateSetPeriod, ms: master's SyncStateSet shrink check
	SyncControllerMetadataPeriod    int    // syncControllerMetadataPeriod, ms: find the controller leader
	BrokerHeartbeatInterval         int    // brokerHeartbeatInterval, ms
	ControllerHeartBeatTimeoutMills int64  // controllerHeartBeatTimeoutMills, ms: sent in each heartbeat
	SendHeartbeatTimeoutMillis      int64  // sendHeartbeatTimeoutMillis, ms
	BrokerElectionPriority          int    // brokerElectionPriority: lower wins ties
	HAMaxTimeSlaveNotCatchup        int64  // haMaxTimeSlaveNotCatchup, ms
	AllAckInSyncStateSet            bool   // allAckInSyncStateSet
	MinInSyncReplicas               int    // minInSyncReplicas: refuse sends below this many in-sync replicas
	InSyncReplicas                  int    // inSyncReplicas: replicas a send needs without allAckInSyncStateSet
	SyncFromLastFile                bool   // syncFromLastFile: an empty replica copies only the master's last file
	AsyncLearner                    bool   // asyncLearner: never join the SyncStateSet
	StorePathEpochFile              string // storePathEpochFile, default <storePathRootDir>/epochFileCheckpoint
	StorePathBrokerIdentity         string // storePathBrokerIdentity, default <storePathRootDir>/brokerIdentity

	// The RocketMQ 5 gRPC service (apache.rocketmq.v2.MessagingService)
	// served from the broker, as Java's proxy in local mode; key names and
	// defaults of apache/rocketmq
	// proxy/src/main/java/org/apache/rocketmq/proxy/config/ProxyConfig.java.
	// enableProxy (mqops; Java's `mqbroker --enable-proxy`, which mqbroker
	// also takes) turns it on.
	EnableProxy bool
	// EnableTopicMessageTypeCheck refuses 5.x messages whose type differs
	// from the topic's message.type (Java ProxyConfig's key of the same name).
	EnableTopicMessageTypeCheck bool

	// Send admission (broker/flow): Java's send thread pool and
	// BrokerFastFailure keys, plus mqops byte, per-connection and quota caps.
	SendAdmission

	GrpcServerPort            int // grpcServerPort; 0 binds any free port
	GrpcMaxInboundMessageSize int // grpcMaxInboundMessageSize, bytes of one request
	// TLS of the remoting port and the gRPC port (ServerTLS): Java
	// reads these from JVM properties or tls.properties, whose dotted
	// names (tls.server.mode, ...) are accepted as aliases.
	ServerTLS
	// useTLS (Java's NettyClientConfig.useTLS, property tls.enable): the
	// broker dials name servers and its master with TLS, needed when they
	// enforce it.
	UseTLS bool
	// tlsClientAuthServer (tls.client.authServer): verify the peer's
	// certificate; false (Java's default) accepts self-signed ones.
	TLSClientAuthServer bool
	// tlsClientTrustCertPath (tls.client.trustCertPath): PEM authorities
	// to verify with instead of the system's.
	TLSClientTrustCertPath string
	// minInvisibleTimeMillsForRecv: the shortest invisible duration a
	// receive may ask for (Java ProxyConfig, 10 s).
	MinInvisibleTimeMillsForRecv int64
	// popInflightMessageThreshold: most leases (received, not acked
	// messages) of one group on this broker; 0 = no limit. Java has it
	// behind enablePopMessageThreshold (off); mqops always applies it.
	PopInflightMessageThreshold int
	// The HTTP/JSON gateway (mqops; Java has no such key): send, receive,
	// ack and change invisibility over plain HTTP on a port of its own.
	// Off unless enableHttpGateway, so a Java broker.conf opens no new port.
	EnableHTTPGateway bool
	HTTPGatewayPort   int // httpGatewayPort; 0 binds any free port
	// The AMQP 0-9-1 gateway inside the broker (mqops): what mqamqp does,
	// with the broker's own requests handed over in process, as RocketMQ
	// 5's proxy in local mode; vhosts homed on other brokers are reached
	// over TCP as mqamqp reaches them. Off unless enableAmqpGateway.
	EnableAMQPGateway bool
	AMQPListenPort    int // amqpListenPort, default 5672; 0 binds any free port
	// amqpGatewayConfig: an amqp.conf (mqamqp's keys) for the embedded
	// gateway's other settings; "" takes mqamqp's defaults. Its
	// listenPort and namesrvAddr are the broker's amqpListenPort and
	// namesrvAddr.
	AMQPGatewayConfig string

	Conn ConnLimits // limits of the remoting port

	kept
}

// LoadBroker reads path (may be "" for defaults only), then applies
// overrides (RocketMQ key names, e.g. from -n), and validates. Warnings name
// unknown keys and keys accepted with no effect; they are not errors.
func LoadBroker(path string, overrides map[string]string) (*Broker, []string, error) {
	b := defaultBroker()
	warnings, err := load(b, path, overrides)
	if err != nil {
		return nil, warnings, err
	}
	return b, warnings, nil
}

// Properties returns every key and its current value, sorted by key, as
// GET_BROKER_CONFIG reports them.
func (b *Broker) Properties() []wire.JavaProperty { return properties(b, false) }

// Set applies one key, as UPDATE_BROKER_CONFIG does, with the same checks as
// LoadBroker. On error b is unchanged. Adjustments Java makes silently, such
// as clamping, are made silently here too.
func (b *Broker) Set(key, value string) error {
	c := *b
	c.kept = b.kept.clone()
	if err := set(&c, key, value); err != nil {
		return err
	}
	*b = c
	return nil
}

// Save writes b to path atomically, keys sorted. Defaulted derived keys such
// as haListenPort are left out so they keep following their source.
func (b *Broker) Save(path string) error { return save(b, path) }

// DeleteWhenHours returns the hours of day of DeleteWhen. It is nil only if
// DeleteWhen was assigned directly and is invalid.
func (b *Broker) DeleteWhenHours() []int {
	hours, _ := parseDeleteWhen(b.DeleteWhen)
	return hours
}

// DelayLevels returns the delays of MessageDelayLevel; level n is
// DelayLevels()[n-1]. It is nil only if MessageDelayLevel was assigned
// directly and is invalid.
func (b *Broker) DelayLevels() []time.Duration {
	levels, _ := parseDelayLevels(b.MessageDelayLevel)
	return levels
}

func defaultBroker() *Broker {
	home := homeDir()
	return &Broker{
		BrokerClusterName:              "DefaultCluster",
		BrokerName:                     "broker-a",
		NamesrvAddr:                    os.Getenv("NAMESRV_ADDR"),
		ListenPort:                     10911,
		BindAddress:                    "0.0.0.0",
		BrokerIP1:                      localIPv4(),
		StorePathRootDir:               underHome(home, "store"),
		MappedFileSizeCommitLog:        1 << 30,
		MappedFileSizeConsumeQueue:     300000 * 20,
		FlushDiskType:                  "ASYNC_FLUSH",
		FlushIntervalCommitLog:         500,
		FlushIntervalConsumeQueue:      1000,
		SyncFlushTimeout:               5000,
		WarmMapedFileEnable:            true,
		HASendHeartbeatInterval:        5000,
		HAHousekeepingInterval:         20000,
		HATransferBatchSize:            32 << 10,
		HASlaveFallbehindMax:           256 << 20,
		SlaveTimeout:                   3000,
		MaxHATransferByteInSecond:      100 << 20,
		BrokerRole:                     "ASYNC_MASTER",
		FileReservedTime:               72,
		DeleteWhen:                     "04",
		DiskMaxUsedSpaceRatio:          75,
		CleanResourceInterval:          10000,
		DiskSpaceWarningLevelRatio:     90,
		DiskSpaceCleanForciblyRatio:    85,
		CleanFileForciblyEnable:        true,
		MaxMessageSize:                 4 << 20,
		MessageIndexEnable:             true,
		MaxHashSlotNum:                 5000000,
		MaxIndexNum:                    20000000,
		AutoCreateTopicEnable:          true,
		AutoCreateSubscriptionGroup:    true,
		ClusterTopicEnable:             true,
		BrokerTopicEnable:              true,
		DefaultTopicQueueNums:          8,
		BrokerPermission:               6,
		RegisterNameServerPeriod:       30000,
		RegisterBrokerTimeoutMills:     6000,
		FlushConsumerOffsetInterval:    5000,
		LongPollingEnable:              true,
		ShortPollingTimeMills:          1000,
		NotifyConsumerIdsChangedEnable: true,
		MsgTraceTopicName:              "RMQ_SYS_TRACE_TOPIC",
		MessageDelayLevel:              "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h",
		TransactionTimeOut:             6000,
		TransactionCheckMax:            15,
		TransactionCheckInterval:       60000,
		TimerMaxDelaySec:               30 * 24 * 3600,
		EnableTopicMessageTypeCheck:    true,
		SendAdmission:                  defaultSendAdmission(),
		RegionID:                       "DefaultRegion",
		TraceOn:                        true,
		ConfigBlackList:                "configBlackList;brokerConfigPath",
		LogDir:                         underHome(home, "logs", "rocketmqlogs"),
		AccessMessageInMemoryMaxRatio:  40,
		MaxLmqConsumeQueueNum:          20000,

		// Controller mode (RocketMQ 5 BrokerConfig, MessageStoreConfig).
		SyncBrokerMetadataPeriod:        5000,
		CheckSyncStateSetPeriod:         5000,
		SyncControllerMetadataPeriod:    10000,
		BrokerHeartbeatInterval:         1000,
		ControllerHeartBeatTimeoutMills: 10000,
		SendHeartbeatTimeoutMillis:      1000,
		BrokerElectionPriority:          math.MaxInt32,
		HAMaxTimeSlaveNotCatchup:        15000,
		MinInSyncReplicas:               1,
		InSyncReplicas:                  1,

		GrpcServerPort:               8081,
		GrpcMaxInboundMessageSize:    130 << 20,
		MinInvisibleTimeMillsForRecv: 10000,
		PopInflightMessageThreshold:  10000,
		HTTPGatewayPort:              8082,
		AMQPListenPort:               5672,
		ServerTLS:                    defaultServerTLS(),
	}
}

func (b *Broker) keys() []key {
	return append([]key{
		str("brokerClusterName", &b.BrokerClusterName, nonEmpty),
		str("brokerName", &b.BrokerName, nonEmpty),
		integer("brokerId", &b.BrokerID, javaLong, atLeast(-1)), // -1: controller mode assigns it
		str("namesrvAddr", &b.NamesrvAddr, addressList),
		integer("listenPort", &b.ListenPort, javaInt, listenPort),
		str("bindAddress", &b.BindAddress, hostOrIP),
		derived(str("brokerIP1", &b.BrokerIP1, ipv4)),
		derived(str("brokerIP2", &b.BrokerIP2, ipv4)),
		derived(integer("haListenPort", &b.HAListenPort, javaInt, listenPort)),
		str("haMasterAddress", &b.HAMasterAddress, nil),
		integer("haSendHeartbeatInterval", &b.HASendHeartbeatInterval, javaInt, positive),
		integer("haHousekeepingInterval", &b.HAHousekeepingInterval, javaInt, positive),
		integer("haTransferBatchSize", &b.HATransferBatchSize, javaInt, between(1, 4<<20-12)),
		integer("haSlaveFallbehindMax", &b.HASlaveFallbehindMax, javaLong, positive),
		integer("slaveTimeout", &b.SlaveTimeout, javaLong, positive),
		boolean("haFlowControlEnable", &b.HAFlowControlEnable),
		integer("maxHaTransferByteInSecond", &b.MaxHATransferByteInSecond, javaLong, positive),
		str("storePathRootDir", &b.StorePathRootDir, nonEmpty),
		derived(str("storePathCommitLog", &b.StorePathCommitLog, nonEmpty)),
		integer("mappedFileSizeCommitLog", &b.MappedFileSizeCommitLog, javaInt, positive),
		integer("mappedFileSizeConsumeQueue", &b.MappedFileSizeConsumeQueue, javaInt, consumeQueueSize),
		boolean("messageIndexEnable", &b.MessageIndexEnable),
		integer("maxHashSlotNum", &b.MaxHashSlotNum, javaInt, positive),
		integer("maxIndexNum", &b.MaxIndexNum, javaInt, atLeast(2)),
		str("flushDiskType", &b.FlushDiskType, oneOf("ASYNC_FLUSH", "SYNC_FLUSH")),
		integer("flushIntervalCommitLog", &b.FlushIntervalCommitLog, javaInt, positive),
		integer("flushIntervalConsumeQueue", &b.FlushIntervalConsumeQueue, javaInt, positive),
		integer("syncFlushTimeout", &b.SyncFlushTimeout, javaInt, positive),
		boolean("warmMapedFileEnable", &b.WarmMapedFileEnable),
		str("brokerRole", &b.BrokerRole, oneOf("ASYNC_MASTER", "SYNC_MASTER", "SLAVE")),
		integer("fileReservedTime", &b.FileReservedTime, javaInt, positive),
		str("deleteWhen", &b.DeleteWhen, func(s string) error { _, err := parseDeleteWhen(s); return err }),
		integer("diskMaxUsedSpaceRatio", &b.DiskMaxUsedSpaceRatio, javaInt, between(1, 100)),
		integer("cleanResourceInterval", &b.CleanResourceInterval, javaInt, positive),
		percentKey("diskSpaceWarningLevelRatio", &b.DiskSpaceWarningLevelRatio),
		percentKey("diskSpaceCleanForciblyRatio", &b.DiskSpaceCleanForciblyRatio),
		boolean("cleanFileForciblyEnable", &b.CleanFileForciblyEnable),
		integer("maxMessageSize", &b.MaxMessageSize, javaInt, positive),
		boolean("autoCreateTopicEnable", &b.AutoCreateTopicEnable),
		boolean("autoCreateSubscriptionGroup", &b.AutoCreateSubscriptionGroup),
		boolean("clusterTopicEnable", &b.ClusterTopicEnable),
		boolean("brokerTopicEnable", &b.BrokerTopicEnable),
		integer("defaultTopicQueueNums", &b.DefaultTopicQueueNums, javaInt, positive),
		integer("brokerPermission", &b.BrokerPermission, javaInt, permission),
		integer("registerNameServerPeriod", &b.RegisterNameServerPeriod, javaInt, nil),
		integer("registerBrokerTimeoutMills", &b.RegisterBrokerTimeoutMills, javaInt, positive),
		integer("flushConsumerOffsetInterval", &b.FlushConsumerOffsetInterval, javaInt, positive),
		boolean("longPollingEnable", &b.LongPollingEnable),
		integer("shortPollingTimeMills", &b.ShortPollingTimeMills, javaLong, positive),
		boolean("notifyConsumerIdsChangedEnable", &b.NotifyConsumerIdsChangedEnable),
		boolean("traceTopicEnable", &b.TraceTopicEnable),
		str("msgTraceTopicName", &b.MsgTraceTopicName, nonEmpty),
		str("messageDelayLevel", &b.MessageDelayLevel, func(s string) error { _, err := parseDelayLevels(s); return err }),
		boolean("rejectTransactionMessage", &b.RejectTransactionMessage),
		integer("transactionTimeOut", &b.TransactionTimeOut, javaLong, positive),
		integer("transactionCheckMax", &b.TransactionCheckMax, javaInt, positive),
		integer("transactionCheckInterval", &b.TransactionCheckInterval, javaLong, positive),
		integer("timerMaxDelaySec", &b.TimerMaxDelaySec, javaLong, positive),
		str("regionId", &b.RegionID, nonEmpty),
		boolean("traceOn", &b.TraceOn),
		str("configBlackList", &b.ConfigBlackList, nil),
		str("logDir", &b.LogDir, nonEmpty),
		boolean("aclEnable", &b.AclEnable),
		str("aclFile", &b.AclFile, nil),
		credentials("innerClientAuthenticationCredentials", &b.InnerClientAuthenticationCredentials),
		boolean("slaveReadEnable", &b.SlaveReadEnable),
		boolean("enablePropertyFilter", &b.EnablePropertyFilter),
		boolean("enableLmq", &b.EnableLmq),
		boolean("enableMultiDispatch", &b.EnableMultiDispatch),
		integer("maxLmqConsumeQueueNum", &b.MaxLmqConsumeQueueNum, javaInt, positive),
		integer("accessMessageInMemoryMaxRatio", &b.AccessMessageInMemoryMaxRatio, javaInt, between(0, 100)),
		boolean("offsetCheckInSlave", &b.OffsetCheckInSlave),
		boolean("enableControllerMode", &b.EnableControllerMode),
		str("controllerAddr", &b.ControllerAddr, addressList),
		integer("syncBrokerMetadataPeriod", &b.SyncBrokerMetadataPeriod, javaInt, positive),
		integer("checkSyncStateSetPeriod", &b.CheckSyncStateSetPeriod, javaInt, positive),
		integer("syncControllerMetadataPeriod", &b.SyncControllerMetadataPeriod, javaInt, positive),
		integer("brokerHeartbeatInterval", &b.BrokerHeartbeatInterval, javaInt, positive),
		integer("controllerHeartBeatTimeoutMills", &b.ControllerHeartBeatTimeoutMills, javaLong, positive),
		integer("sendHeartbeatTimeoutMillis", &b.SendHeartbeatTimeoutMillis, javaLong, positive),
		integer("brokerElectionPriority", &b.BrokerElectionPriority, javaInt, nil),
		integer("haMaxTimeSlaveNotCatchup", &b.HAMaxTimeSlaveNotCatchup, javaLong, positive),
		boolean("allAckInSyncStateSet", &b.AllAckInSyncStateSet),
		integer("minInSyncReplicas", &b.MinInSyncReplicas, javaInt, positive),
		integer("inSyncReplicas", &b.InSyncReplicas, javaInt, positive),
		boolean("syncFromLastFile", &b.SyncFromLastFile),
		boolean("asyncLearner", &b.AsyncLearner),
		derived(str("storePathEpochFile", &b.StorePathEpochFile, nonEmpty)),
		derived(str("storePathBrokerIdentity", &b.StorePathBrokerIdentity, nonEmpty)),
		boolean("enableProxy", &b.EnableProxy),
		boolean("enableTopicMessageTypeCheck", &b.EnableTopicMessageTypeCheck),
		integer("grpcServerPort", &b.GrpcServerPort, javaInt, listenPort),
		integer("grpcMaxInboundMessageSize", &b.GrpcMaxInboundMessageSize, javaInt, positive),
		integer("minInvisibleTimeMillsForRecv", &b.MinInvisibleTimeMillsForRecv, javaLong, positive),
		integer("popInflightMessageThreshold", &b.PopInflightMessageThreshold, javaInt, atLeast(0)),
		boolean("enableHttpGateway", &b.EnableHTTPGateway),
		integer("httpGatewayPort", &b.HTTPGatewayPort, javaInt, listenPort),
		boolean("enableAmqpGateway", &b.EnableAMQPGateway),
		integer("amqpListenPort", &b.AMQPListenPort, javaInt, listenPort),
		str("amqpGatewayConfig", &b.AMQPGatewayConfig, nil),
		boolean("useTLS", &b.UseTLS),
		boolean("tlsClientAuthServer", &b.TLSClientAuthServer),
		str("tlsClientTrustCertPath", &b.TLSClientTrustCertPath, nil),
	}, slices.Concat(b.SendAdmission.keys(), b.ServerTLS.keys(), b.Conn.keys())...)
}

func (b *Broker) schema() schema { return brokerSchema }
func (b *Broker) state() *kept   { return &b.kept }

func (b *Broker) finish() ([]string, error) {
	if !b.explicit["storePathCommitLog"] {
		b.StorePathCommitLog = filepath.Join(b.StorePathRootDir, "commitlog")
	}
	if ip := net.ParseIP(b.BindAddress).To4(); ip != nil && !ip.IsUnspecified() && !b.explicit["brokerIP1"] {
		b.BrokerIP1 = ip.String() // the one address clients can reach
	}
	if !b.explicit["storePathEpochFile"] {
		b.StorePathEpochFile = filepath.Join(b.StorePathRootDir, "epochFileCheckpoint")
	}
	if !b.explicit["storePathBrokerIdentity"] {
		b.StorePathBrokerIdentity = filepath.Join(b.StorePathRootDir, "brokerIdentity")
	}
	if !b.explicit["brokerIP2"] {
		b.BrokerIP2 = b.BrokerIP1
	}
	if !b.explicit["haListenPort"] {
		b.HAListenPort = b.ListenPort + 1
		if b.ListenPort == 0 {
			b.HAListenPort = 0 // a free port as well, not port 1
		}
	}
	warnings := clamp("registerNameServerPeriod", &b.RegisterNameServerPeriod, 10000, 60000)
	warnings = append(warnings, clamp("diskMaxUsedSpaceRatio", &b.DiskMaxUsedSpaceRatio, 10, 95)...)
	if b.DiskSpaceCleanForciblyRatio > b.DiskSpaceWarningLevelRatio {
		// Java then marks the disk OK again only at or below the warning level.
		warnings = append(warnings, fmt.Sprintf("diskSpaceCleanForciblyRatio = %d: above diskSpaceWarningLevelRatio = %d, using %d",
			b.DiskSpaceCleanForciblyRatio, b.DiskSpaceWarningLevelRatio, b.DiskSpaceWarningLevelRatio))
		b.DiskSpaceCleanForciblyRatio = b.DiskSpaceWarningLevelRatio
	}
	if err := validate(b.keys()); err != nil {
		return warnings, err
	}
	if b.EnableLmq != b.EnableMultiDispatch {
		warnings = append(warnings, fmt.Sprintf("enableLmq = %t, enableMultiDispatch = %t: light message queues need both; multi-dispatch is off",
			b.EnableLmq, b.EnableMultiDispatch))
	}
	if b.HAListenPort == b.ListenPort && b.ListenPort != 0 {
		return warnings, fmt.Errorf("haListenPort = %d: same as listenPort", b.HAListenPort)
	}
	if b.EnableProxy && b.GrpcServerPort != 0 && (b.GrpcServerPort == b.ListenPort || b.GrpcServerPort == b.HAListenPort) {
		return warnings, fmt.Errorf("grpcServerPort = %d: same as listenPort or haListenPort", b.GrpcServerPort)
	}
	if b.EnableHTTPGateway && b.HTTPGatewayPort != 0 && (b.HTTPGatewayPort == b.ListenPort || b.HTTPGatewayPort == b.HAListenPort ||
		b.EnableProxy && b.HTTPGatewayPort == b.GrpcServerPort) {
		return warnings, fmt.Errorf("httpGatewayPort = %d: same as listenPort, haListenPort or grpcServerPort", b.HTTPGatewayPort)
	}
	if b.EnableAMQPGateway && b.AMQPListenPort != 0 && (b.AMQPListenPort == b.ListenPort || b.AMQPListenPort == b.HAListenPort ||
		b.EnableProxy && b.AMQPListenPort == b.GrpcServerPort || b.EnableHTTPGateway && b.AMQPListenPort == b.HTTPGatewayPort) {
		return warnings, fmt.Errorf("amqpListenPort = %d: same as another port of the broker (listenPort, haListenPort, grpcServerPort, httpGatewayPort)", b.AMQPListenPort)
	}
	if err := b.ServerTLS.check(b.compat); err != nil {
		return warnings, err
	}
	// Accepted keys (compat.go) whose true value mqops cannot honour.
	if v, _ := strconv.ParseBool(strings.TrimSpace(b.compat["enableDLegerCommitLog"])); v {
		// Java 5 exits with -4 when both are set; mqops has no DLedger log.
		return warnings, errors.New("enableDLegerCommitLog = true: the DLedger commit log is not supported; " +
			"use controller mode (enableControllerMode=true) for automatic failover")
	}
	if b.EnableControllerMode {
		if b.ControllerAddr == "" {
			return warnings, errors.New("enableControllerMode = true needs controllerAddr")
		}
		if v, _ := strconv.ParseBool(strings.TrimSpace(b.compat["fetchControllerAddrByDnsLookup"])); v {
			return warnings, errors.New("fetchControllerAddrByDnsLookup = true is not supported: list the controllers in controllerAddr")
		}
		// The controller assigns id and role; the file's are ignored.
		return warnings, nil
	}
	if b.BrokerID < 0 {
		return warnings, fmt.Errorf("brokerId = %d: only controller mode (enableControllerMode=true) lets the controller assign it", b.BrokerID)
	}
	// Java's BrokerStartup makes the same two decisions.
	if b.BrokerRole == "SLAVE" {
		if b.BrokerID <= 0 {
			return warnings, fmt.Errorf("brokerRole SLAVE needs brokerId > 0, have %d", b.BrokerID)
		}
	} else if b.BrokerID != 0 {
		warnings = append(warnings, fmt.Sprintf("brokerId = %d: a master's brokerId is 0, using 0 as RocketMQ does", b.BrokerID))
		b.BrokerID = 0
	}
	return warnings, nil
}

// parseDeleteWhen reads Java's "04;05": hours of day split by ';'.
// Trailing separators are dropped, as Java's String.split does.
func parseDeleteWhen(s string) ([]int, error) {
	var hours []int
	for _, h := range strings.Split(strings.TrimRight(s, ";"), ";") {
		n, err := strconv.Atoi(strings.TrimSpace(h))
		if err != nil || n < 0 || n > 23 {
			return nil, errors.New("want hours 0..23 separated by ';'")
		}
		hours = append(hours, n)
	}
	return hours, nil
}

// parseDelayLevels reads Java's "1s 5s 10s 30s 1m ... 2h".
func parseDelayLevels(s string) ([]time.Duration, error) {
	units := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}
	var levels []time.Duration
	for _, f := range strings.Fields(s) {
		unit, ok := units[f[len(f)-1]]
		n, err := strconv.ParseInt(f[:len(f)-1], 10, 32)
		if !ok || err != nil || n <= 0 {
			return nil, fmt.Errorf("level %q: want a positive number followed by s, m, h or d", f)
		}
		levels = append(levels, time.Duration(n)*unit)
	}
	if len(levels) == 0 {
		return nil, errors.New("want at least one level")
	}
	return levels, nil
}

// addressList checks namesrvAddr the way Java's BrokerStartup does: each
// ';'-separated entry is host:port.
func addressList(s string) error {
	if s == "" {
		return nil
	}
	for _, a := range strings.Split(strings.TrimRight(s, ";"), ";") {
		host, p, err := net.SplitHostPort(strings.TrimSpace(a))
		if err == nil && host != "" {
			var n int
			if n, err = strconv.Atoi(p); err == nil {
				err = port(int64(n))
			}
		}
		if err != nil || host == "" {
			return fmt.Errorf("address %q: want host:port, several split by ';'", a)
		}
	}
	return nil
}

// hostOrIP checks bindAddress: Java takes a host name, IPv4 or IPv6.
func hostOrIP(s string) error {
	if net.ParseIP(s) != nil {
		return nil
	}
	if s == "" || len(s) > 253 || strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != "" {
		return errors.New("want an IP address or a host name")
	}
	return nil
}

// ipv4 is required because message ids embed the broker's IPv4 address.
func ipv4(s string) error {
	if ip := net.ParseIP(s); ip == nil || ip.To4() == nil {
		return errors.New("want an IPv4 address")
	}
	return nil
}

func consumeQueueSize(n int64) error {
	if n <= 0 || n%20 != 0 {
		return errors.New("want a positive multiple of 20, the size of one entry")
	}
	return nil
}

func permission(n int64) error {
	if n&^7 != 0 {
		return errors.New("want bits 4 (read), 2 (write) and 1 (inherit) only")
	}
	return nil
}

// homeDir is Java's user.home. Unknown, path defaults stay empty and fail
// validation unless the file sets them.
func homeDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return home
}

func underHome(home string, elem ...string) string {
	if home == "" {
		return ""
	}
	return filepath.Join(append([]string{home}, elem...)...)
}

// localIPv4 returns the host's first non-loopback IPv4 address on an
// interface that is up, else 127.0.0.1.
func localIPv4() string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return "127.0.0.1"
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip := n.IP.To4(); ip != nil && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
				return ip.String()
			}
		}
	}
	return "127.0.0.1"
}
