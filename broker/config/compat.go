package config

import "maps"

// Keys RocketMQ 4.9.x reads (the setters of its config classes, which is how
// Java maps properties to fields) that we take without acting on them yet.
// A key moves out of these lists when it gets a field.

var brokerConfigKeys = []string{
	"adminBrokerThreadPoolNums", "autoDeleteUnusedStats",
	"clientManageThreadPoolNums", "clientManagerThreadPoolQueueCapacity", "commercialBaseCount",
	"commercialBigCount", "commercialEnable", "commercialTimerCount", "commercialTransCount",
	"compressedRegister", "consumerFallbehindThreshold",
	"consumerManageThreadPoolNums", "consumerManagerThreadPoolQueueCapacity",
	"disableConsumeIfConsumerReadSlowly", "enableCalcFilterBitMap", "enableDetailStat",
	"endTransactionPoolQueueCapacity", "endTransactionThreadPoolNums",
	"expectConsumerNumUseFilter", "fetchNamesrvAddrByAddressServer", "filterDataCleanTimeSpan",
	"filterServerNums", "filterSupportRetry", "flushConsumerOffsetHistoryInterval", "forceRegister",
	"heartbeatThreadPoolNums", "heartbeatThreadPoolQueueCapacity", "highSpeedMode", "isolateLogEnable",
	"maxDelayTime", "maxErrorRateOfBloomFilter", "messageStorePlugIn",
	"processReplyMessageThreadPoolNums", "pullMessageThreadPoolNums", "pullThreadPoolQueueCapacity",
	"putMessageFutureThreadPoolNums", "putThreadPoolQueueCapacity", "queryMessageThreadPoolNums",
	"queryThreadPoolQueueCapacity", "replyThreadPoolQueueCapacity", "rocketmqHome",
	"startAcceptSendRequestTimeStamp",
	"storeReplyMessageEnable", "transferMsgByHeap",
	// Nothing waits in these queues: a pull or a heartbeat is handled as
	// soon as its frame is read, and neither waits for the store.
	"waitTimeMillsInHeartbeatQueue", "waitTimeMillsInPullQueue",
	// BrokerStartup copies these two into system properties.
	"rmqAddressServerDomain", "rmqAddressServerSubGroup",
	// RocketMQ 5 controller mode: true is refused (Broker.finish).
	"fetchControllerAddrByDnsLookup",
}

var messageStoreConfigKeys = []string{
	"bitMapLengthConsumeQueueExt", "checkCRCOnRecover",
	"commitCommitLogLeastPages", "commitCommitLogThoroughInterval",
	"commitIntervalCommitLog", "dLegerGroup", "dLegerPeers", "dLegerSelfId", "debugLockEnable",
	"defaultQueryMaxNum", "deleteCommitLogFilesInterval", "deleteConsumeQueueFilesInterval",
	"destroyMapedFileIntervalForcibly", "diskFallRecorded", "duplicationEnable", "enableBatchPush",
	"enableConsumeQueueExt", "enableDLegerCommitLog",
	"enableScheduleAsyncDeliver", "enableScheduleMessageStats", "fastFailIfNoBufferInStorePool",
	"flushCommitLogLeastPages", "flushCommitLogThoroughInterval", "flushCommitLogTimed",
	"flushConsumeQueueLeastPages", "flushConsumeQueueThoroughInterval", "flushDelayOffsetInterval",
	"flushLeastPagesWhenWarmMapedFile",
	"mappedFileSizeConsumeQueueExt",
	"maxMsgsNumBatch", "maxTransferBytesOnMessageInDisk", "maxTransferBytesOnMessageInMemory",
	"maxTransferCountOnMessageInDisk", "maxTransferCountOnMessageInMemory",
	"messageIndexSafe", "preferredLeaderId",
	"putMsgIndexHightWater", "readOnlyCommitLogStorePaths", "redeleteHangedFileInterval",
	"scheduleAsyncDeliverMaxPendingLimit", "scheduleAsyncDeliverMaxResendNum2Blocked",
	"storePathDLedgerCommitLog", "transientStorePoolEnable", "transientStorePoolSize",
	"useReentrantLockWhenPutMessage",
}

var nettyServerConfigKeys = []string{
	"serverAsyncSemaphoreValue", "serverCallbackExecutorThreads", "serverChannelMaxIdleTimeSeconds",
	"serverOnewaySemaphoreValue", "serverPooledByteBufAllocatorEnable", "serverSelectorThreads",
	"serverSocketBacklog", "serverSocketRcvBufSize", "serverSocketSndBufSize", "serverWorkerThreads",
	"useEpollNativeSelector", "writeBufferHighWaterMark", "writeBufferLowWaterMark",
}

var nettyClientConfigKeys = []string{
	"channelNotActiveInterval", "clientAsyncSemaphoreValue", "clientCallbackExecutorThreads",
	"clientChannelMaxIdleTimeSeconds", "clientCloseSocketIfTimeout", "clientOnewaySemaphoreValue",
	"clientPooledByteBufAllocatorEnable", "clientSocketRcvBufSize", "clientSocketSndBufSize",
	"clientWorkerThreads", "connectTimeoutMillis",
}

var namesrvConfigKeys = []string{
	"clusterTest", "configBlackList", "productEnvName", "rocketmqHome",
	// Where Java saves UPDATE_NAMESRV_CONFIG; ours applies updates in
	// memory only.
	"configStorePath",
}

// NotImplemented reports whether a broker key is one RocketMQ has that
// mqops accepts without acting on it (yet).
func NotImplemented(key string) bool {
	if to, ok := brokerSchema.aliases[key]; ok {
		key = to
	}
	return brokerSchema.accepted[key]
}

var brokerSchema = schema{
	accepted: setOf(brokerConfigKeys, messageStoreConfigKeys, nettyServerConfigKeys, nettyClientConfigKeys, tlsRefusedKeyNames()),
	// Spellings of RocketMQ up to 4.5.1.
	aliases: withAliases(tlsAliases, map[string]string{
		"mapedFileSizeCommitLog":    "mappedFileSizeCommitLog",
		"mapedFileSizeConsumeQueue": "mappedFileSizeConsumeQueue",
		// RocketMQ 5's name (MessageStoreConfig.haMaxGapNotInSync).
		"haMaxGapNotInSync": "haSlaveFallbehindMax",
		// Java's TLS client properties (tls.go has the server's).
		"tls.enable":               "useTLS",
		"tls.client.authServer":    "tlsClientAuthServer",
		"tls.client.trustCertPath": "tlsClientTrustCertPath",
		// RocketMQ 4.9 reads these two as system properties (-D, fractions
		// such as 0.90; MessageStoreConfig), RocketMQ 5 as broker keys
		// (percent): either form is taken (percentKey).
		"rocketmq.broker.diskSpaceWarningLevelRatio":  "diskSpaceWarningLevelRatio",
		"rocketmq.broker.diskSpaceCleanForciblyRatio": "diskSpaceCleanForciblyRatio",
	}),
}

func withAliases(a, b map[string]string) map[string]string {
	m := maps.Clone(b)
	maps.Copy(m, a)
	return m
}

var namesrvSchema = schema{
	accepted: setOf(namesrvConfigKeys, nettyServerConfigKeys, namesrvControllerKeys(), tlsRefusedKeyNames()),
	aliases:  tlsAliases,
}

// namesrvControllerKeys are the accepted controller keys a name server's
// file may carry (listenPort is the name server's own).
func namesrvControllerKeys() []string {
	var out []string
	for _, k := range controllerConfigKeys {
		if k != "listenPort" && k != "configBlackList" && k != "configStorePath" && k != "rocketmqHome" {
			out = append(out, k)
		}
	}
	return out
}

func setOf(lists ...[]string) map[string]bool {
	m := map[string]bool{}
	for _, l := range lists {
		for _, k := range l {
			m[k] = true
		}
	}
	return m
}
