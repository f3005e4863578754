package wire

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Topic attributes of RocketMQ 5 (apache/rocketmq
// common/src/main/java/org/apache/rocketmq/common/attribute/TopicMessageType.java,
// common/src/main/java/org/apache/rocketmq/common/TopicAttributes.java).
const (
	AttrMessageType = "message.type"

	// Per-topic produce quotas on this broker, messages and body bytes
	// per second (mqops attributes; RocketMQ has none).
	AttrProduceTPS = "produce.tps"
	AttrProduceBPS = "produce.bps"

	MessageTypeUnspecified = "UNSPECIFIED"
	MessageTypeNormal      = "NORMAL"
	MessageTypeFIFO        = "FIFO"
	MessageTypeDelay       = "DELAY"
	MessageTypeTransaction = "TRANSACTION"
	MessageTypeMixed       = "MIXED"
)

// messageTypes are the values message.type may take (TopicMessageType).
var messageTypes = []string{MessageTypeUnspecified, MessageTypeNormal, MessageTypeFIFO, MessageTypeDelay, MessageTypeTransaction, MessageTypeMixed}

// MessageType is the topic's message.type, NORMAL when unset (Java
// TopicConfig.getTopicMessageType).
func (tc *TopicConfig) MessageType() string {
	if v := tc.Attributes[AttrMessageType]; v != "" {
		return v
	}
	return MessageTypeNormal
}

// ProduceQuota is the topic's produce quota on its broker
// (+produce.tps, +produce.bps), 0 for no limit; AlterTopicAttributes
// admits only positive whole numbers.
func (tc *TopicConfig) ProduceQuota() (tps, bps int64) {
	if len(tc.Attributes) == 0 {
		return 0, 0
	}
	tps, _ = strconv.ParseInt(tc.Attributes[AttrProduceTPS], 10, 64)
	bps, _ = strconv.ParseInt(tc.Attributes[AttrProduceBPS], 10, 64)
	return tps, bps
}

// FormatProduceQuota shows a produce quota: "200 msg/s, 8388608 B/s",
// "" for none.
func FormatProduceQuota(tps, bps int64) string {
	var parts []string
	if tps > 0 {
		parts = append(parts, strconv.FormatInt(tps, 10)+" msg/s")
	}
	if bps > 0 {
		parts = append(parts, strconv.FormatInt(bps, 10)+" B/s")
	}
	return strings.Join(parts, ", ")
}

// Equal compares two topic configs field by field, attributes included.
func (tc *TopicConfig) Equal(o *TopicConfig) bool {
	return tc.Order == o.Order && tc.Perm == o.Perm && tc.ReadQueueNums == o.ReadQueueNums &&
		tc.TopicFilterType == o.TopicFilterType && tc.TopicName == o.TopicName && tc.TopicSysFlag == o.TopicSysFlag &&
		tc.WriteQueueNums == o.WriteQueueNums && maps.Equal(tc.Attributes, o.Attributes)
}

// ParseAttributes reads the admin syntax of attribute changes,
// "+a=b,+c=d,-e" (Java AttributeParser.parseToMap): "+" sets a key, "-"
// removes one; the map holds "+a"→"b" and "-e"→"".
func ParseAttributes(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		switch {
		case strings.HasPrefix(kv, "+"):
			k, v, ok := strings.Cut(kv, "=")
			if !ok || len(k) < 2 || v == "" {
				return nil, fmt.Errorf("attribute %q: want +key=value", kv)
			}
			out[k] = v
		case strings.HasPrefix(kv, "-"):
			if len(kv) < 2 || strings.Contains(kv, "=") {
				return nil, fmt.Errorf("attribute %q: want -key", kv)
			}
			out[kv] = ""
		default:
			return nil, fmt.Errorf("attribute %q must start with + (set) or - (remove)", kv)
		}
		if k := strings.TrimLeft(strings.SplitN(kv, "=", 2)[0], "+-"); k == "" {
			return nil, fmt.Errorf("attribute %q has no key", kv)
		}
	}
	return out, nil
}

// FormatAttributes is the admin syntax of attribute changes, sorted:
// the inverse of ParseAttributes.
func FormatAttributes(changes map[string]string) string {
	keys := slices.Sorted(maps.Keys(changes))
	parts := make([]string, len(keys))
	for i, k := range keys {
		if strings.HasPrefix(k, "-") {
			parts[i] = k
		} else {
			parts[i] = k + "=" + changes[k]
		}
	}
	return strings.Join(parts, ",")
}

// AlterTopicAttributes applies changes (ParseAttributes) to a topic's
// current attributes, as Java's AttributeUtil.alterCurrentAttributes does
// for TopicAttributes.ALL: only known keys with allowed values; a new
// topic (create) may only set keys, an existing one may also remove them.
// The result is nil when no attribute remains.
func AlterTopicAttributes(create bool, current, changes map[string]string) (map[string]string, error) {
	out := maps.Clone(current)
	if out == nil {
		out = map[string]string{}
	}
	for _, ck := range slices.Sorted(maps.Keys(changes)) {
		key := ck[1:]
		if key != AttrMessageType && key != AttrProduceTPS && key != AttrProduceBPS {
			return nil, fmt.Errorf("unsupported topic attribute %q: this broker knows %s, %s, %s", key, AttrMessageType, AttrProduceTPS, AttrProduceBPS)
		}
		if ck[0] == '-' {
			if create {
				return nil, fmt.Errorf("only adding attributes is allowed when creating a topic: %q", ck)
			}
			if _, ok := out[key]; !ok {
				return nil, fmt.Errorf("attempt to delete a nonexistent attribute %q", key)
			}
			delete(out, key)
			continue
		}
		v := changes[ck]
		if key != AttrMessageType {
			if n, err := strconv.ParseInt(v, 10, 64); err != nil || n <= 0 {
				return nil, fmt.Errorf("value %q of %s is not a positive whole number (per second on this broker; remove the attribute with -%s for no limit)", v, key, key)
			}
			out[key] = v
			continue
		}
		if !slices.Contains(messageTypes, v) {
			return nil, fmt.Errorf("value %q of %s is not one of %s", v, key, strings.Join(messageTypes, ", "))
		}
		out[key] = v
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}
