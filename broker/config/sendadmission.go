package config

import "runtime"

// SendAdmission is how much a broker's sends may hold at once and how long
// one may wait (broker/flow): Java's send thread pool and BrokerFastFailure
// keys (apache/rocketmq common/src/main/java/org/apache/rocketmq/common/BrokerConfig.java,
// store/src/main/java/org/apache/rocketmq/store/config/MessageStoreConfig.java),
// plus mqops byte, per-connection and quota caps.
type SendAdmission struct {
	SendMessageThreadPoolNums   int   // sendMessageThreadPoolNums: sends appending at once
	SendThreadPoolQueueCapacity int   // sendThreadPoolQueueCapacity: sends read and not yet answered
	SendInflightMaxBytes        int64 // sendInflightMaxBytes (mqops): their body bytes
	SendInflightPerConnection   int   // sendInflightPerConnection (mqops): of them, per connection
	WaitTimeMillsInSendQueue    int64 // waitTimeMillsInSendQueue, ms
	OSPageCacheBusyTimeOutMills int64 // osPageCacheBusyTimeOutMills, ms
	BrokerFastFailureEnable     bool  // brokerFastFailureEnable
	// waitTimeMillsInTransactionQueue, ms: END_TRANSACTION's longest
	// wait for an append slot.
	WaitTimeMillsInTransactionQueue int64
	// topicQuotaMaxDelayMills (mqops): a send over its topic's produce
	// quota is delayed up to this long, refused beyond.
	TopicQuotaMaxDelayMills int64
}

func defaultSendAdmission() SendAdmission {
	return SendAdmission{
		SendMessageThreadPoolNums:       min(runtime.NumCPU(), 4),
		SendThreadPoolQueueCapacity:     10000,
		SendInflightMaxBytes:            256 << 20,
		SendInflightPerConnection:       1024,
		WaitTimeMillsInSendQueue:        200,
		OSPageCacheBusyTimeOutMills:     1000,
		BrokerFastFailureEnable:         true,
		WaitTimeMillsInTransactionQueue: 3000,
		TopicQuotaMaxDelayMills:         500,
	}
}

func (s *SendAdmission) keys() []key {
	return []key{
		integer("sendMessageThreadPoolNums", &s.SendMessageThreadPoolNums, javaInt, positive),
		integer("sendThreadPoolQueueCapacity", &s.SendThreadPoolQueueCapacity, javaInt, positive),
		integer("sendInflightMaxBytes", &s.SendInflightMaxBytes, javaLong, positive),
		integer("sendInflightPerConnection", &s.SendInflightPerConnection, javaInt, positive),
		integer("waitTimeMillsInSendQueue", &s.WaitTimeMillsInSendQueue, javaLong, positive),
		integer("waitTimeMillsInTransactionQueue", &s.WaitTimeMillsInTransactionQueue, javaLong, positive),
		integer("osPageCacheBusyTimeOutMills", &s.OSPageCacheBusyTimeOutMills, javaLong, positive),
		boolean("brokerFastFailureEnable", &s.BrokerFastFailureEnable),
		integer("topicQuotaMaxDelayMills", &s.TopicQuotaMaxDelayMills, javaLong, atLeast(0)),
	}
}
