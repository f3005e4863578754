package pop

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// RetryTopic is the group's pop retry topic for topic. Java's v2 naming
// (enableRetryTopicV2, apache/rocketmq
// common/src/main/java/org/apache/rocketmq/common/KeyBuilder.java
// buildPopRetryTopicV2): '+' cannot occur in topic or group names, so the
// name splits back unambiguously. It is not %RETRY%<group>, which remoting
// consumers of the group subscribe to.
func RetryTopic(group, topic string) string { return "%RETRY%" + group + "+" + topic }

// OriginalTopic is the topic a pop retry topic of group stands for, or
// "" when retry is not one.
func OriginalTopic(group, retry string) string {
	t, ok := strings.CutPrefix(retry, "%RETRY%"+group+"+")
	if !ok {
		return ""
	}
	return t
}

// Kinds of the queue a handle names (Java ReceiptHandle topicType).
const (
	KindNormal = 0
	KindRetry  = 2 // the pop retry topic (Java: retry v2)
)

// handleVersion is the first field of every handle this broker makes.
const handleVersion = "v1"

// Handle is a receipt handle: which delivery a client acknowledges.
// Clients treat it as opaque, so the format is this broker's own:
// space-separated like Java's (common/consumer/ReceiptHandle.java) after a
// version field:
//
//	v1 popTime visibleAt kind brokerName queueId queueOffset commitLogOffset
type Handle struct {
	PopTime   int64
	VisibleAt int64 // a hint: the lease decides
	Kind      int
	Broker    string
	Queue     int32
	Offset    int64
	PhyOffset int64
}

// ErrBadHandle is a handle this broker cannot have made.
var ErrBadHandle = errors.New("malformed receipt handle")

// String encodes the handle. One allocation: it is made for every
// delivery (a receive appends its batch's handles with Append and makes
// one string of them instead).
func (h Handle) String() string {
	return string(h.Append(make([]byte, 0, 96)))
}

// Append appends the encoded handle to b.
func (h Handle) Append(b []byte) []byte {
	b = append(b, handleVersion...)
	for _, n := range [...]int64{h.PopTime, h.VisibleAt, int64(h.Kind)} {
		b = strconv.AppendInt(append(b, ' '), n, 10)
	}
	b = append(append(b, ' '), h.Broker...)
	for _, n := range [...]int64{int64(h.Queue), h.Offset, h.PhyOffset} {
		b = strconv.AppendInt(append(b, ' '), n, 10)
	}
	return b
}

// ParseHandle decodes a handle made by String.
func ParseHandle(s string) (Handle, error) {
	var f [8]string // without strings.Split's allocation: it runs for every ack
	n := 0
	for rest, more := s, true; more; n++ {
		if n == len(f) {
			n++ // too many fields
			break
		}
		f[n], rest, more = strings.Cut(rest, " ")
	}
	if n != len(f) || f[0] != handleVersion {
		return Handle{}, fmt.Errorf("%w: want 8 fields starting %q", ErrBadHandle, handleVersion)
	}
	var h Handle
	var err error
	num := func(i int) int64 {
		if err != nil {
			return 0
		}
		var n int64
		if n, err = strconv.ParseInt(f[i], 10, 64); err == nil && n < 0 {
			err = fmt.Errorf("negative field %d", i)
		}
		return n
	}
	h.PopTime, h.VisibleAt = num(1), num(2)
	kind := num(3)
	h.Broker = f[4]
	q := num(5)
	h.Offset, h.PhyOffset = num(6), num(7)
	if err != nil {
		return Handle{}, fmt.Errorf("%w: %v", ErrBadHandle, err)
	}
	if kind != KindNormal && kind != KindRetry || q > 1<<30 || h.Broker == "" {
		return Handle{}, fmt.Errorf("%w: bad kind, queue or broker", ErrBadHandle)
	}
	h.Kind, h.Queue = int(kind), int32(q)
	return h, nil
}
