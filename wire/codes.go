package wire

import "strconv"

// Request codes (apache/rocketmq rocketmq-all-4.9.8
// common/src/main/java/org/apache/rocketmq/common/protocol/RequestCode.java).
// Only codes this project serves or sends are named.
const (
	SendMessage                  int32 = 10
	PullMessage                  int32 = 11
	QueryMessage                 int32 = 12
	QueryConsumerOffset          int32 = 14
	UpdateConsumerOffset         int32 = 15
	UpdateAndCreateTopic         int32 = 17
	GetAllTopicConfig            int32 = 21
	UpdateBrokerConfig           int32 = 25
	GetBrokerConfig              int32 = 26
	GetBrokerRuntimeInfo         int32 = 28
	SearchOffsetByTimestamp      int32 = 29
	GetMaxOffset                 int32 = 30
	GetMinOffset                 int32 = 31
	GetEarliestMsgStoreTime      int32 = 32
	ViewMessageByID              int32 = 33
	HeartBeat                    int32 = 34
	UnregisterClient             int32 = 35
	ConsumerSendMsgBack          int32 = 36
	EndTransaction               int32 = 37
	GetConsumerListByGroup       int32 = 38
	CheckTransactionState        int32 = 39
	NotifyConsumerIDsChanged     int32 = 40
	LockBatchMQ                  int32 = 41
	UnlockBatchMQ                int32 = 42
	GetAllConsumerOffset         int32 = 43
	GetAllDelayOffset            int32 = 45
	CheckClientConfig            int32 = 46
	UpdateAndCreateACLConfig     int32 = 50
	DeleteACLConfig              int32 = 51
	GetBrokerClusterACLInfo      int32 = 52
	UpdateGlobalWhiteAddrsConfig int32 = 53
	GetBrokerClusterACLConfig    int32 = 54 // 4.9.0-4.9.7; 4.9.8 dropped it
	GetTimerCheckPoint           int32 = 60 // RocketMQ 5
	PutKVConfig                  int32 = 100
	GetKVConfig                  int32 = 101
	DeleteKVConfig               int32 = 102
	RegisterBroker               int32 = 103
	UnregisterBroker             int32 = 104
	GetRouteInfoByTopic          int32 = 105
	GetBrokerClusterInfo         int32 = 106
	UpdateAndCreateSubGroup      int32 = 200
	GetAllSubGroupConfig         int32 = 201
	GetTopicStatsInfo            int32 = 202
	GetConsumerConnectionList    int32 = 203
	GetProducerConnectionList    int32 = 204
	WipeWritePermOfBroker        int32 = 205
	GetAllTopicListFromNamesrv   int32 = 206
	DeleteSubGroup               int32 = 207
	GetConsumeStats              int32 = 208
	DeleteTopicInBroker          int32 = 215
	DeleteTopicInNamesrv         int32 = 216
	GetKVListByNamespace         int32 = 219
	ResetConsumerClientOffset    int32 = 220
	GetConsumerStatusFromClient  int32 = 221
	InvokeBrokerToResetOffset    int32 = 222
	InvokeBrokerToGetConsumerSts int32 = 223
	GetTopicsByCluster           int32 = 224
	QueryTopicConsumeByWho       int32 = 300
	ViewBrokerStatsData          int32 = 315
	GetBrokerConsumeStats        int32 = 317
	GetSystemTopicListFromNs     int32 = 304
	GetConsumerRunningInfo       int32 = 307
	ConsumeMessageDirectly       int32 = 309
	SendMessageV2                int32 = 310
	UpdateNamesrvConfig          int32 = 318
	GetNamesrvConfig             int32 = 319
	SendBatchMessage             int32 = 320
	QueryDataVersion             int32 = 322
	SendReplyMessage             int32 = 324
	AddWritePermOfBroker         int32 = 327

	// Requests of mqops' own, outside RocketMQ's code space: business
	// statistics Java brokers do not keep (they answer 3).
	MQOpsStatsToday  int32 = 10001
	MQOpsStatsSeries int32 = 10002
	// POP leases per consumer group (RocketMQ 5 consumers), for monitoring.
	MQOpsPopStats int32 = 10003
	// 9100–9199 belong to the AMQP engine (wire/amqpmeta.go).
)

// Response codes (apache/rocketmq rocketmq-all-4.9.8
// common/src/main/java/org/apache/rocketmq/common/protocol/ResponseCode.java,
// which extends remoting/src/main/java/org/apache/rocketmq/remoting/protocol/RemotingSysResponseCode.java).
const (
	Success                   int32 = 0
	SystemError               int32 = 1
	SystemBusy                int32 = 2
	RequestCodeNotSupported   int32 = 3
	FlushDiskTimeout          int32 = 10
	SlaveNotAvailable         int32 = 11
	FlushSlaveTimeout         int32 = 12
	MessageIllegal            int32 = 13
	ServiceNotAvailable       int32 = 14
	VersionNotSupported       int32 = 15
	NoPermission              int32 = 16
	TopicNotExist             int32 = 17
	TopicExistAlready         int32 = 18
	PullNotFound              int32 = 19
	PullRetryImmediately      int32 = 20
	PullOffsetMoved           int32 = 21
	QueryNotFound             int32 = 22
	SubscriptionParseFailed   int32 = 23
	SubscriptionNotExist      int32 = 24
	SubscriptionNotLatest     int32 = 25
	SubscriptionGroupNotExist int32 = 26
	ConsumerNotOnline         int32 = 206
	ConsumeMsgTimeout         int32 = 207

	UpdateAndCreateACLConfigFailed     int32 = 209
	DeleteACLConfigFailed              int32 = 210
	UpdateGlobalWhiteAddrsConfigFailed int32 = 211
)

var responseNames = map[int32]string{
	Success: "SUCCESS", SystemError: "SYSTEM_ERROR", SystemBusy: "SYSTEM_BUSY",
	RequestCodeNotSupported: "REQUEST_CODE_NOT_SUPPORTED", FlushDiskTimeout: "FLUSH_DISK_TIMEOUT",
	SlaveNotAvailable: "SLAVE_NOT_AVAILABLE", FlushSlaveTimeout: "FLUSH_SLAVE_TIMEOUT",
	MessageIllegal: "MESSAGE_ILLEGAL", ServiceNotAvailable: "SERVICE_NOT_AVAILABLE",
	VersionNotSupported: "VERSION_NOT_SUPPORTED", NoPermission: "NO_PERMISSION",
	TopicNotExist: "TOPIC_NOT_EXIST", TopicExistAlready: "TOPIC_EXIST_ALREADY",
	PullNotFound: "PULL_NOT_FOUND", PullRetryImmediately: "PULL_RETRY_IMMEDIATELY",
	PullOffsetMoved: "PULL_OFFSET_MOVED", QueryNotFound: "QUERY_NOT_FOUND",
	SubscriptionParseFailed: "SUBSCRIPTION_PARSE_FAILED", SubscriptionNotExist: "SUBSCRIPTION_NOT_EXIST",
	SubscriptionNotLatest: "SUBSCRIPTION_NOT_LATEST", SubscriptionGroupNotExist: "SUBSCRIPTION_GROUP_NOT_EXIST",
	ConsumerNotOnline: "CONSUMER_NOT_ONLINE", ConsumeMsgTimeout: "CONSUME_MSG_TIMEOUT",
	UpdateAndCreateACLConfigFailed:     "UPDATE_AND_CREATE_ACL_CONFIG_FAILED",
	DeleteACLConfigFailed:              "DELETE_ACL_CONFIG_FAILED",
	UpdateGlobalWhiteAddrsConfigFailed: "UPDATE_GLOBAL_WHITE_ADDRS_CONFIG_FAILED",
}

// ResponseName is the Java ResponseCode name of code, for error messages.
func ResponseName(code int32) string {
	if n, ok := responseNames[code]; ok {
		return n
	}
	return "CODE_" + strconv.Itoa(int(code))
}

// Permission bits of topics and brokers (apache/rocketmq
// common/src/main/java/org/apache/rocketmq/common/constant/PermName.java).
const (
	PermPriority = 8
	PermRead     = 4
	PermWrite    = 2
	PermInherit  = 1
)

// Version is the MQVersion ordinal this project advertises (V4_9_8 in apache/rocketmq
// common/src/main/java/org/apache/rocketmq/common/MQVersion.java).
const Version = 409

// Language codes (apache/rocketmq
// remoting/src/main/java/org/apache/rocketmq/remoting/protocol/LanguageCode.java;
// NODE_JS is 5.x's).
var languageNames = [...]string{"JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER", "HTTP", "GO", "PHP", "OMS", "RUST", "NODE_JS"}

// LanguageGo is the code this project sends.
const LanguageGo byte = 9

// LanguageName returns the enum name for a binary language code.
func LanguageName(b byte) string {
	if int(b) < len(languageNames) {
		return languageNames[b]
	}
	return "OTHER"
}

// LanguageCode returns the binary code for an enum name (OTHER when unknown).
func LanguageCode(name []byte) byte {
	for i, n := range languageNames {
		if string(name) == n {
			return byte(i)
		}
	}
	return 7
}
