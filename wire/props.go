package wire

import (
	"bytes"
	"slices"
	"unicode/utf8"
)

// Properties string separators (Java's MessageDecoder.NAME_VALUE_SEPARATOR and
// PROPERTY_SEPARATOR, apache/rocketmq
// common/src/main/java/org/apache/rocketmq/common/message/MessageDecoder.java).
const (
	NameValueSep = 0x01
	PropertySep  = 0x02
)

// Property names (Java MessageConst, plus the Go client's own keys).
const (
	PropKeys                  = "KEYS"
	PropTags                  = "TAGS"
	PropWait                  = "WAIT"
	PropDelay                 = "DELAY"
	PropRetryTopic            = "RETRY_TOPIC"
	PropRealTopic             = "REAL_TOPIC"
	PropRealQueueID           = "REAL_QID"
	PropTranMsg               = "TRAN_MSG"
	PropProducerGroup         = "PGROUP"
	PropMinOffset             = "MIN_OFFSET"
	PropMaxOffset             = "MAX_OFFSET"
	PropBuyerID               = "BUYER_ID"
	PropOriginMessageID       = "ORIGIN_MESSAGE_ID"
	PropTransferFlag          = "TRANSFER_FLAG"
	PropCorrectionFlag        = "CORRECTION_FLAG"
	PropMQ2Flag               = "MQ2_FLAG"
	PropReconsumeTime         = "RECONSUME_TIME"
	PropMsgRegion             = "MSG_REGION"
	PropTraceSwitch           = "TRACE_ON"
	PropUniqKey               = "UNIQ_KEY"
	PropMaxReconsumeTimes     = "MAX_RECONSUME_TIMES"
	PropConsumeStartTime      = "CONSUME_START_TIME"
	PropTranPreparedQueueOff  = "TRAN_PREPARED_QUEUE_OFFSET"
	PropTransactionCheckTimes = "TRANSACTION_CHECK_TIMES"
	PropCheckImmunityTime     = "CHECK_IMMUNITY_TIME_IN_SECONDS"
	PropInstanceID            = "INSTANCE_ID"
	PropCorrelationID         = "CORRELATION_ID"
	PropReplyToClient         = "REPLY_TO_CLIENT"
	PropTTL                   = "TTL"
	PropArriveTime            = "ARRIVE_TIME"
	PropPushReplyTime         = "PUSH_REPLY_TIME"
	PropCluster               = "CLUSTER"
	PropMsgType               = "MSG_TYPE"
	PropInnerMultiDispatch    = "INNER_MULTI_DISPATCH"
	PropInnerMultiQueueOffset = "INNER_MULTI_QUEUE_OFFSET"
	PropShardingKey           = "SHARDING_KEY"
	PropTransactionID         = "__transactionId__"

	// RocketMQ 5 timer messages: an absolute delivery time in ms, or a
	// delay from now; TIMER_OUT_MS is the absolute time the broker stores.
	PropTimerDeliverMs = "TIMER_DELIVER_MS"
	PropTimerDelaySec  = "TIMER_DELAY_SEC"
	PropTimerDelayMs   = "TIMER_DELAY_MS"
	PropTimerOutMs     = "TIMER_OUT_MS"
)

// Light message queues (RIP-28; apache/rocketmq
// common/src/main/java/org/apache/rocketmq/common/MixAll.java LMQ_PREFIX,
// MULTI_DISPATCH_QUEUE_SPLITTER, LMQ_QUEUE_ID): INNER_MULTI_DISPATCH
// lists the queues a message is dispatched into besides its own, joined by
// MultiDispatchSep; INNER_MULTI_QUEUE_OFFSET, written by the store, holds
// each one's queue offset in the same order. A light queue is a topic
// named LMQPrefix+…, with the one queue LMQQueueID.
const (
	LMQPrefix        = "%LMQ%"
	MultiDispatchSep = ','
	LMQQueueID       = 0
)

// IsLMQ reports whether a topic names a light message queue (Java's
// MixAll.isLmq).
func IsLMQ[T ~string | ~[]byte](topic T) bool {
	return len(topic) >= len(LMQPrefix) && string(topic[:len(LMQPrefix)]) == LMQPrefix
}

// NextProperty splits the first fragment off props and returns its key and
// value. ok is false for fragments Java's parser ignores: no separator, an
// empty key or an empty value. The value may contain NameValueSep (Java
// splits at the first one only).
func NextProperty(props []byte) (key, value, rest []byte, ok bool) {
	item := props
	if i := bytes.IndexByte(props, PropertySep); i >= 0 {
		item, rest = props[:i], props[i+1:]
	}
	k := bytes.IndexByte(item, NameValueSep)
	if k <= 0 || k == len(item)-1 {
		return nil, nil, rest, false
	}
	return item[:k], item[k+1 : len(item) : len(item)], rest, true
}

// PropertyValue returns the value of property name in a serialised
// properties string, or nil. It accepts Java (no trailing separator) and Go
// (trailing separator) forms, skips malformed fragments like Java, and for a
// repeated key returns the last value as Java's map would. No allocation.
func PropertyValue(props []byte, name string) []byte {
	var found []byte
	for len(props) > 0 {
		k, v, rest, ok := NextProperty(props)
		props = rest
		if ok && string(k) == name {
			found = v
		}
	}
	return found
}

// ParseProperties decodes a properties string into a map (Java semantics,
// see PropertyValue).
func ParseProperties(props []byte) map[string]string {
	m := make(map[string]string)
	for len(props) > 0 {
		k, v, rest, ok := NextProperty(props)
		props = rest
		if ok {
			m[string(k)] = string(v)
		}
	}
	return m
}

// AppendProperty appends name=value to the properties string in dst, adding
// a PropertySep first unless dst is empty or already ends with one. dst must
// hold only a properties string.
func AppendProperty[T ~string | ~[]byte](dst []byte, name string, value T) []byte {
	if len(dst) > 0 && dst[len(dst)-1] != PropertySep {
		dst = append(dst, PropertySep)
	}
	dst = append(dst, name...)
	dst = append(dst, NameValueSep)
	return append(dst, value...)
}

// AppendProperties appends every pair of m with AppendProperty, in key order
// so the output is deterministic.
func AppendProperties(dst []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		dst = AppendProperty(dst, k, m[k])
	}
	return dst
}

// RemoveProperty appends props to dst without any fragment whose key is
// name. Other fragments, malformed ones included, are kept in order, joined
// by PropertySep without a trailing separator; empty fragments are dropped.
func RemoveProperty(dst, props []byte, name string) []byte {
	first := true
	for len(props) > 0 {
		item := props
		props = nil
		if i := bytes.IndexByte(item, PropertySep); i >= 0 {
			item, props = item[:i], item[i+1:]
		}
		if len(item) == 0 {
			continue
		}
		key := item
		if k := bytes.IndexByte(item, NameValueSep); k >= 0 {
			key = item[:k]
		}
		if string(key) == name {
			continue
		}
		if !first {
			dst = append(dst, PropertySep)
		}
		first = false
		dst = append(dst, item...)
	}
	return dst
}

// TagsHashCode returns the consume-queue tags code of a TAGS value: Java's
// String.hashCode (h = 31*h + c over UTF-16 code units, int32 overflow) of
// the UTF-8 decoded string, sign-extended to int64. Invalid UTF-8 bytes
// count as U+FFFD, as Java's decoder replaces them.
func TagsHashCode(tag []byte) int64 {
	var h int32
	for len(tag) > 0 {
		r, n := utf8.DecodeRune(tag)
		tag = tag[n:]
		if r >= 0x10000 {
			// Supplementary rune: Java sees a surrogate pair.
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return int64(h)
}
