package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// Java tools serialise Map<MessageQueue,X> with fastjson, which writes each
// key as an unquoted JSON object: {"offsetTable":{{"brokerName":"b",
// "queueId":0,"topic":"T"}:{...}}} (Java's RemotingSerializable, apache/rocketmq
// remoting/src/main/java/org/apache/rocketmq/remoting/protocol/RemotingSerializable.java).
// It is not valid JSON, but it is what mqadmin, the dashboard and the Go
// client read, so bodies carrying such maps are written by hand here, and
// read back after QuoteObjectKeys turns them into valid JSON.

// AppendMQKey appends a MessageQueue as a compact object key in the field
// order Java tools and the Go client's splitter expect.
func AppendMQKey(dst []byte, mq MessageQueue) []byte {
	dst = append(dst, `{"brokerName":`...)
	dst = AppendJSONString(dst, mq.BrokerName)
	dst = append(dst, `,"queueId":`...)
	dst = strconv.AppendInt(dst, int64(mq.QueueID), 10)
	dst = append(dst, `,"topic":`...)
	dst = AppendJSONString(dst, mq.Topic)
	return append(dst, '}')
}

// sortedQueues returns map keys ordered by topic, broker, queue.
func sortedQueues[V any](m map[MessageQueue]V) []MessageQueue {
	keys := make([]MessageQueue, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.BrokerName != b.BrokerName {
			return a.BrokerName < b.BrokerName
		}
		return a.QueueID < b.QueueID
	})
	return keys
}

// appendMQMap appends {<mq>:<value>,…} with values encoded by encoding/json.
func appendMQMap[V any](dst []byte, m map[MessageQueue]V) []byte {
	dst = append(dst, '{')
	for i, mq := range sortedQueues(m) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendMQKey(dst, mq)
		dst = append(dst, ':')
		dst = append(dst, Marshal(m[mq])...)
	}
	return append(dst, '}')
}

// QuoteObjectKeys rewrites fastjson's non-standard keys into strings so
// encoding/json can read the document: object keys become their compact
// JSON text as a string, bare numeric keys become quoted numbers. Valid
// JSON passes through unchanged.
func QuoteObjectKeys(b []byte) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(b) + len(b)/8)
	type frame struct{ object, wantKey bool }
	var stack []frame
	for i := 0; i < len(b); {
		c := b[i]
		top := len(stack) - 1
		if top >= 0 && stack[top].object && stack[top].wantKey {
			switch {
			case c == ' ' || c == '\t' || c == '\r' || c == '\n':
				out.WriteByte(c)
				i++
				continue
			case c == '}':
				stack = stack[:top]
				out.WriteByte(c)
				i++
				continue
			case c == '{' || c == '[':
				end, err := matchClose(b, i)
				if err != nil {
					return nil, err
				}
				var compact bytes.Buffer
				if err := json.Compact(&compact, b[i:end]); err != nil {
					return nil, fmt.Errorf("object key at %d: %w", i, err)
				}
				out.Write(AppendJSONString(nil, compact.Bytes()))
				stack[top].wantKey = false
				i = end
				continue
			case c == '-' || (c >= '0' && c <= '9'):
				j := i
				for j < len(b) && (b[j] == '-' || b[j] == '.' || (b[j] >= '0' && b[j] <= '9')) {
					j++
				}
				out.WriteByte('"')
				out.Write(b[i:j])
				out.WriteByte('"')
				stack[top].wantKey = false
				i = j
				continue
			case c == '"':
				j, err := skipString(b, i)
				if err != nil {
					return nil, err
				}
				out.Write(b[i:j])
				stack[top].wantKey = false
				i = j
				continue
			case c == ',':
				out.WriteByte(c)
				i++
				continue
			}
		}
		switch c {
		case '"':
			j, err := skipString(b, i)
			if err != nil {
				return nil, err
			}
			out.Write(b[i:j])
			i = j
			continue
		case '{':
			stack = append(stack, frame{object: true, wantKey: true})
		case '[':
			stack = append(stack, frame{})
		case '}', ']':
			if top < 0 {
				return nil, fmt.Errorf("unbalanced %q at %d", c, i)
			}
			stack = stack[:top]
		case ',':
			if top >= 0 && stack[top].object {
				stack[top].wantKey = true
			}
		}
		out.WriteByte(c)
		i++
	}
	return out.Bytes(), nil
}

func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string at %d", i)
}

// matchClose returns the index after the bracket that closes b[i].
func matchClose(b []byte, i int) (int, error) {
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			k, err := skipString(b, j)
			if err != nil {
				return 0, err
			}
			j = k - 1
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1, nil
			}
		}
	}
	return 0, fmt.Errorf("unterminated key object at %d", i)
}

// decodeMQMap turns a map keyed by MessageQueue JSON text back into typed keys.
func decodeMQMap[V any](raw map[string]V) (map[MessageQueue]V, error) {
	out := make(map[MessageQueue]V, len(raw))
	for k, v := range raw {
		var mq MessageQueue
		if err := json.Unmarshal([]byte(k), &mq); err != nil {
			return nil, fmt.Errorf("message queue key %q: %w", k, err)
		}
		out[mq] = v
	}
	return out, nil
}

// UnmarshalLenient decodes fastjson output (object and bare numeric keys)
// as well as standard JSON.
func UnmarshalLenient(b []byte, v any) error {
	q, err := QuoteObjectKeys(b)
	if err != nil {
		return err
	}
	return json.Unmarshal(q, v)
}
