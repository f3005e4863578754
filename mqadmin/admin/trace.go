package admin

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// DefaultTraceTopic is where clients send trace data unless told otherwise.
const DefaultTraceTopic = "RMQ_SYS_TRACE_TOPIC"

// Trace record types (apache/rocketmq
// client/src/main/java/org/apache/rocketmq/client/trace/TraceType.java).
const (
	TracePub            = "Pub"
	TraceSubBefore      = "SubBefore"
	TraceSubAfter       = "SubAfter"
	TraceEndTransaction = "EndTransaction"
)

// Trace data separators: fields end with \x01, records with \x02.
const (
	traceFieldSep  = "\x01"
	traceRecordSep = "\x02"
)

// traceMsgTypes are Java's MessageType names by ordinal.
var traceMsgTypes = []string{"Normal_Msg", "Trans_Msg_Half", "Trans_msg_Commit", "Delay_Msg"}

// TraceRecord is one hop of a message as a client reported it: its send
// (Pub), the start (SubBefore) and end (SubAfter) of one consume attempt,
// or a transaction's end. Fields a record type does not carry stay empty.
type TraceRecord struct {
	Type string `json:"type"`
	// Timestamp (ms) is when the client wrote the record: after the send,
	// before and after the listener ran.
	Timestamp int64  `json:"timestamp"`
	RegionID  string `json:"regionId,omitempty"`
	Group     string `json:"group"`
	// Topic is the message's topic; consume records do not carry it, so
	// they get the topic of the message's Pub record when there is one.
	Topic string `json:"topic,omitempty"`
	// MsgID is the client message id (UNIQ_KEY).
	MsgID       string `json:"msgId"`
	OffsetMsgID string `json:"offsetMsgId,omitempty"`
	Tags        string `json:"tags,omitempty"`
	Keys        string `json:"keys,omitempty"`
	StoreHost   string `json:"storeHost,omitempty"`
	// ClientHost is the reporting client's IP (from the record, else the
	// matching SubBefore, else the trace message's born host).
	ClientHost string `json:"clientHost,omitempty"`
	BodyLength int    `json:"bodyLength,omitempty"`
	// CostTime (ms) is how long the send or the listener took.
	CostTime int64  `json:"costTime"`
	MsgType  string `json:"msgType,omitempty"`
	// Success is absent on SubBefore records, which have no outcome.
	Success *bool `json:"success,omitempty"`
	// RequestID pairs a SubBefore with its SubAfter.
	RequestID  string `json:"requestId,omitempty"`
	RetryTimes int    `json:"retryTimes"`
	// ContextCode is the consume outcome's ordinal: 0 SUCCESS, 1 TIME_OUT,
	// 2 EXCEPTION, 3 RETURNNULL, 4 FAILED.
	ContextCode          int    `json:"contextCode,omitempty"`
	TransactionID        string `json:"transactionId,omitempty"`
	TransactionState     string `json:"transactionState,omitempty"`
	FromTransactionCheck bool   `json:"fromTransactionCheck,omitempty"`
}

// ParseTraceRecords decodes a trace message body. It is lenient: records
// of unknown types are skipped, numbers that do not parse are 0, and the
// Go client's extra trailing clientHost field is read when present.
func ParseTraceRecords(body []byte) []TraceRecord {
	var out []TraceRecord
	for _, rec := range strings.Split(string(body), traceRecordSep) {
		f := strings.Split(rec, traceFieldSep)
		at := func(i int) string {
			if i < len(f) {
				return f[i]
			}
			return ""
		}
		i64 := func(i int) int64 {
			n, _ := strconv.ParseInt(strings.TrimSpace(at(i)), 10, 64)
			return n
		}
		success := func(i int) *bool {
			if i >= len(f) {
				return nil
			}
			b := strings.EqualFold(strings.TrimSpace(f[i]), "true")
			return &b
		}
		r := TraceRecord{Type: strings.TrimSpace(at(0))}
		switch r.Type {
		case TracePub:
			if len(f) < 12 {
				continue
			}
			r.Timestamp, r.RegionID, r.Group, r.Topic, r.MsgID = i64(1), at(2), at(3), at(4), at(5)
			r.Tags, r.Keys, r.StoreHost, r.BodyLength, r.CostTime = at(6), at(7), at(8), int(i64(9)), i64(10)
			r.MsgType = msgTypeName(i64(11))
			switch {
			case len(f) == 13: // before offsetMsgId was added
				r.Success = success(12)
			case len(f) >= 14:
				r.OffsetMsgID, r.Success, r.ClientHost = at(12), success(13), at(14)
			}
		case TraceSubBefore:
			if len(f) < 8 {
				continue
			}
			r.Timestamp, r.RegionID, r.Group, r.RequestID, r.MsgID = i64(1), at(2), at(3), at(4), at(5)
			r.RetryTimes, r.Keys, r.ClientHost = int(i64(6)), nullEmpty(at(7)), at(8)
		case TraceSubAfter:
			if len(f) < 6 {
				continue
			}
			r.RequestID, r.MsgID, r.CostTime, r.Success, r.Keys = at(1), at(2), i64(3), success(4), nullEmpty(at(5))
			r.ContextCode = int(i64(6))
			r.Timestamp, r.Group = i64(7), at(8)
		case TraceEndTransaction:
			if len(f) < 13 {
				continue
			}
			r.Timestamp, r.RegionID, r.Group, r.Topic, r.MsgID = i64(1), at(2), at(3), at(4), at(5)
			r.Tags, r.Keys, r.StoreHost, r.MsgType = at(6), at(7), at(8), msgTypeName(i64(9))
			r.TransactionID, r.TransactionState = at(10), at(11)
			r.FromTransactionCheck = strings.EqualFold(at(12), "true")
		default:
			continue
		}
		out = append(out, r)
	}
	return out
}

func msgTypeName(n int64) string {
	if n >= 0 && n < int64(len(traceMsgTypes)) {
		return traceMsgTypes[n]
	}
	return strconv.FormatInt(n, 10)
}

// nullEmpty undoes the "null" clients write for empty keys.
func nullEmpty(s string) string {
	if s == "null" {
		return ""
	}
	return s
}

// MessageTrace finds the trace of a message by its client id (UNIQ_KEY,
// what SendResult.MsgID shows): the trace messages of traceTopic whose
// KEYS hold the id, through the brokers' index (at most max of them,
// stored between begin and end), decoded and reduced to the records of
// that id, sorted by time.
func (a *Admin) MessageTrace(traceTopic, msgID string, begin, end int64, max int) ([]TraceRecord, error) {
	if traceTopic == "" {
		traceTopic = DefaultTraceTopic
	}
	ms, err := a.QueryMessages(traceTopic, msgID, begin, end, max)
	if err != nil {
		return nil, fmt.Errorf("trace of message %s: %w", msgID, err)
	}
	out := []TraceRecord{}
	var born []*Message // the trace message each record came from
	for _, m := range ms {
		for _, r := range ParseTraceRecords(m.Body) {
			if r.MsgID == msgID { // a batch of trace data covers many messages
				out = append(out, r)
				born = append(born, m)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("trace of message %s: no trace data in topic %s (are the clients sending traces, and is %s the message's client id?)", msgID, traceTopic, msgID)
	}
	joinTrace(out)
	for i := range out {
		// Java's tools take what a record lacks from the trace message.
		r, m := &out[i], born[i]
		if r.ClientHost == "" {
			r.ClientHost = m.BornHost
			if h, _, err := net.SplitHostPort(m.BornHost); err == nil {
				r.ClientHost = h
			}
		}
		if r.Timestamp == 0 {
			r.Timestamp = m.BornTimestamp
		}
	}
	sortTrace(out)
	return out, nil
}

// joinTrace completes consume records from their SubBefore (client,
// retry count, group and, for old records without one, the time) and
// from the message's Pub record (topic).
func joinTrace(rs []TraceRecord) {
	before := map[string]TraceRecord{}
	topic := ""
	for _, r := range rs {
		switch r.Type {
		case TraceSubBefore:
			before[r.RequestID] = r
		case TracePub:
			topic = r.Topic
		}
	}
	for i := range rs {
		r := &rs[i]
		if r.Type == TraceSubAfter {
			if b, ok := before[r.RequestID]; ok {
				r.RetryTimes = b.RetryTimes
				r.ClientHost = b.ClientHost
				if r.Group == "" {
					r.Group = b.Group
				}
				r.RegionID = b.RegionID
				if r.Timestamp == 0 && b.Timestamp != 0 {
					r.Timestamp = b.Timestamp + r.CostTime
				}
			}
		}
		if (r.Type == TraceSubBefore || r.Type == TraceSubAfter) && r.Topic == "" {
			r.Topic = topic
		}
	}
}

// sortTrace orders records by time, and Pub, SubBefore, SubAfter on ties.
func sortTrace(rs []TraceRecord) {
	order := map[string]int{TracePub: 0, TraceEndTransaction: 1, TraceSubBefore: 2, TraceSubAfter: 3}
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].Timestamp != rs[j].Timestamp {
			return rs[i].Timestamp < rs[j].Timestamp
		}
		return order[rs[i].Type] < order[rs[j].Type]
	})
}
