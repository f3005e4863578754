// Package wire holds every byte format mqops shares with RocketMQ peers: the
// remoting frame and its two header serializations, request and response
// codes, the stored-record layout, and the JSON bodies exchanged by brokers,
// name servers, clients and admin tools.
package wire

import (
	"math"
	"strconv"
)

// Header serialization types (apache/rocketmq
// remoting/src/main/java/org/apache/rocketmq/remoting/protocol/SerializeType.java).
const (
	SerializeJSON     byte = 0
	SerializeRocketMQ byte = 1
)

// Flag bits (RPC_TYPE and RPC_ONEWAY of Java's apache/rocketmq
// remoting/src/main/java/org/apache/rocketmq/remoting/protocol/RemotingCommand.java).
const (
	FlagResponse int32 = 1
	FlagOneway   int32 = 2
)

// MaxFrameSize is the largest frame accepted, as in Java's frame decoder.
const MaxFrameSize = 16 << 20

// KV is one extFields entry. Decoded commands point into the frame buffer.
type KV struct {
	Key, Value []byte
}

// Command is one remoting frame. A decoded Command aliases the buffer it was
// decoded from: handlers that keep it past the call must Clone it.
type Command struct {
	Code          int32
	Language      byte
	Version       int32
	Opaque        int32
	Flag          int32
	Remark        []byte
	Ext           []KV
	Body          []byte
	SerializeType byte
}

// IsResponse reports whether the frame answers a request.
func (c *Command) IsResponse() bool { return c.Flag&FlagResponse != 0 }

// IsOneway reports whether the sender asked for no answer.
func (c *Command) IsOneway() bool { return c.Flag&FlagOneway != 0 }

// Get returns the value of an extField, nil when absent.
func (c *Command) Get(key string) []byte {
	for i := range c.Ext {
		if string(c.Ext[i].Key) == key {
			return c.Ext[i].Value
		}
	}
	return nil
}

// Has reports whether an extField is present.
func (c *Command) Has(key string) bool {
	for i := range c.Ext {
		if string(c.Ext[i].Key) == key {
			return true
		}
	}
	return false
}

// GetString returns an extField as a new string.
func (c *Command) GetString(key string) string { return string(c.Get(key)) }

// GetInt parses an integer extField; ok is false when it is absent or not a number.
func (c *Command) GetInt(key string) (v int64, ok bool) {
	b := c.Get(key)
	if len(b) == 0 {
		return 0, false
	}
	return ParseInt(b)
}

// GetInt32 parses an int extField (Java Integer); ok is false when it is
// absent, not a number or outside int32, which Java's header decoder
// refuses too (NumberFormatException) instead of wrapping.
func (c *Command) GetInt32(key string) (v int32, ok bool) {
	return ParseInt32(c.Get(key))
}

// ParseInt32 parses a decimal int32 without allocating; values outside
// int32 are not numbers.
func ParseInt32(b []byte) (int32, bool) {
	n, ok := ParseInt(b)
	if !ok || n < math.MinInt32 || n > math.MaxInt32 {
		return 0, false
	}
	return int32(n), true
}

// GetBool parses a boolean extField the way Java does (true only for "true").
func (c *Command) GetBool(key string) bool {
	b := c.Get(key)
	return len(b) == 4 && (b[0]|0x20) == 't' && (b[1]|0x20) == 'r' && (b[2]|0x20) == 'u' && (b[3]|0x20) == 'e'
}

// ParseInt parses a decimal int64 without allocating.
func ParseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	neg := false
	i := 0
	if b[0] == '-' || b[0] == '+' {
		neg = b[0] == '-'
		i = 1
		if len(b) == 1 {
			return 0, false
		}
	}
	var n uint64
	for ; i < len(b); i++ {
		d := b[i] - '0'
		if d > 9 {
			return 0, false
		}
		if n > (1<<63)/10 {
			return 0, false
		}
		n = n*10 + uint64(d)
	}
	if neg {
		if n > 1<<63 {
			return 0, false
		}
		return -int64(n), true
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}

// Set adds or replaces an extField. It allocates; hot paths build Ext directly.
func (c *Command) Set(key, value string) {
	for i := range c.Ext {
		if string(c.Ext[i].Key) == key {
			c.Ext[i].Value = []byte(value)
			return
		}
	}
	c.Ext = append(c.Ext, KV{Key: []byte(key), Value: []byte(value)})
}

// SetInt adds an integer extField.
func (c *Command) SetInt(key string, v int64) { c.Set(key, strconv.FormatInt(v, 10)) }

// SetBool adds a boolean extField.
func (c *Command) SetBool(key string, v bool) { c.Set(key, strconv.FormatBool(v)) }

// Fields returns the extFields as a map (admin paths and tests).
func (c *Command) Fields() map[string]string {
	m := make(map[string]string, len(c.Ext))
	for _, kv := range c.Ext {
		m[string(kv.Key)] = string(kv.Value)
	}
	return m
}

// Clone deep-copies c so that it no longer aliases a frame buffer.
func (c *Command) Clone() *Command {
	n := 0
	for _, kv := range c.Ext {
		n += len(kv.Key) + len(kv.Value)
	}
	buf := make([]byte, 0, n+len(c.Remark)+len(c.Body))
	cp := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		start := len(buf)
		buf = append(buf, b...)
		return buf[start:len(buf):len(buf)]
	}
	out := *c
	out.Remark = cp(c.Remark)
	out.Body = cp(c.Body)
	out.Ext = make([]KV, len(c.Ext))
	for i, kv := range c.Ext {
		out.Ext[i] = KV{Key: cp(kv.Key), Value: cp(kv.Value)}
	}
	return &out
}

// NewRequest builds a request command with this project's language and version.
func NewRequest(code int32, fields map[string]string, body []byte) *Command {
	c := &Command{Code: code, Language: LanguageGo, Version: Version, Body: body}
	for k, v := range fields {
		c.Ext = append(c.Ext, KV{Key: []byte(k), Value: []byte(v)})
	}
	return c
}

// ResponseTo builds the skeleton of a response to req: same opaque and
// serialize type, the response flag, this project's language and version.
func ResponseTo(req *Command, code int32, remark string) Command {
	r := Command{
		Code:          code,
		Language:      LanguageGo,
		Version:       Version,
		Opaque:        req.Opaque,
		Flag:          FlagResponse,
		SerializeType: req.SerializeType,
	}
	if remark != "" {
		r.Remark = []byte(remark)
	}
	return r
}
