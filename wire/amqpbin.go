package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A binary form of the AMQP message-path bodies: AMQP_PUBLISH's request
// and answer and AMQP_FETCH's answer. In JSON every
// body and property list is base64 inside a string that the decoder scans
// twice; measured on the broker with 16 publishers confirming 1 KiB
// messages, decoding the publish JSON was a third of its CPU. The binary
// form is length-prefixed fields read in place (the decoded slices alias
// the input). It starts with AMQPBinaryMark, which no JSON body does, so a
// broker takes either form and a gateway of an older build keeps working;
// a fetch or publish is answered in binary only when its request carries
// the extField AMQPBinaryField. (The publish answer is small, but decoding
// it with encoding/json was a tenth of the gateway's CPU with 16
// confirming publishers.)
//
// Layout (big endian): mark, then
//
//	publish request: str16 vhost, str16 exchange, u32 n, n × (str16
//	routing key, u8 flags (1 mandatory, 2 persistent), bytes32
//	properties, bytes32 body)
//	fetch answer: u32 ready, i64 timeoutMillis, u32 n, n × (u64 handle,
//	u8 flags (1 redelivered), str16 exchange, str16 routing key,
//	bytes32 properties, bytes32 body)
//	publish answer: u32 n, n × (u8 status (0 stored, 1 unroutable,
//	2 failed), u16 code, str16 text)
const AMQPBinaryMark = 0x01

// AMQPBinaryField is the extField of an AMQP_FETCH or AMQP_PUBLISH
// request that asks for the binary answer.
const AMQPBinaryField = "bin"

// IsAMQPBinary reports whether body is in the binary form.
func IsAMQPBinary(body []byte) bool { return len(body) > 0 && body[0] == AMQPBinaryMark }

var errAMQPBinaryShort = errors.New("binary AMQP body truncated")

func appendStr16(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendBytes32(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// binReader reads the layout above; the first error sticks.
type binReader struct {
	b   []byte
	err error
}

func (r *binReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = errAMQPBinaryShort
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *binReader) u8() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *binReader) u16() int {
	if v := r.take(2); v != nil {
		return int(binary.BigEndian.Uint16(v))
	}
	return 0
}

func (r *binReader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *binReader) u64() uint64 {
	if v := r.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (r *binReader) str16() string   { return string(r.take(r.u16())) }
func (r *binReader) bytes32() []byte { return r.take(int(r.u32())) }

// count reads an element count and checks it against what is left, each
// element taking at least min bytes, so a bad count cannot allocate much.
func (r *binReader) count(min int) int {
	n := r.u32()
	if r.err == nil && uint64(n)*uint64(min) > uint64(len(r.b)) {
		r.err = errAMQPBinaryShort
		return 0
	}
	return int(n)
}

func (r *binReader) start(b []byte) {
	r.b = b
	if !IsAMQPBinary(b) {
		r.err = errors.New("not a binary AMQP body")
		return
	}
	r.b = b[1:]
}

func (r *binReader) end(what string) error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d bytes after the binary AMQP body", len(r.b))
	}
	if r.err != nil {
		return fmt.Errorf("%s: %w", what, r.err)
	}
	return nil
}

// MarshalBinary encodes the request in the binary form.
func (p AMQPPublishRequest) MarshalBinary() ([]byte, error) {
	if len(p.Vhost) > 0xFFFF || len(p.Exchange) > 0xFFFF {
		return nil, errors.New("vhost or exchange name longer than 65535 bytes")
	}
	n := 1 + 2 + len(p.Vhost) + 2 + len(p.Exchange) + 4
	for i := range p.Messages {
		m := &p.Messages[i]
		n += 2 + len(m.RoutingKey) + 1 + 4 + len(m.Properties) + 4 + len(m.Body)
	}
	b := make([]byte, 0, n)
	b = append(b, AMQPBinaryMark)
	b = appendStr16(b, p.Vhost)
	b = appendStr16(b, p.Exchange)
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.Messages)))
	for i := range p.Messages {
		m := &p.Messages[i]
		if len(m.RoutingKey) > 0xFFFF {
			return nil, fmt.Errorf("routing key of %d bytes", len(m.RoutingKey))
		}
		b = appendStr16(b, m.RoutingKey)
		var f byte
		if m.Mandatory {
			f |= 1
		}
		if m.Persistent {
			f |= 2
		}
		b = append(b, f)
		b = appendBytes32(b, m.Properties)
		b = appendBytes32(b, m.Body)
	}
	return b, nil
}

// UnmarshalBinary decodes the binary form; Properties and Body alias b.
func (p *AMQPPublishRequest) UnmarshalBinary(b []byte) error {
	var r binReader
	r.start(b)
	p.Vhost = r.str16()
	p.Exchange = r.str16()
	n := r.count(2 + 1 + 4 + 4)
	p.Messages = make([]AMQPPublishMessage, n)
	for i := range n {
		m := &p.Messages[i]
		m.RoutingKey = r.str16()
		f := r.u8()
		if f&^3 != 0 && r.err == nil {
			r.err = fmt.Errorf("unknown message flags %#x", f)
		}
		m.Mandatory, m.Persistent = f&1 != 0, f&2 != 0
		m.Properties = r.bytes32()
		m.Body = r.bytes32()
	}
	return r.end("AMQP_PUBLISH")
}

// MarshalBinary encodes the answer in the binary form.
func (f AMQPFetchResponse) MarshalBinary() ([]byte, error) {
	n := 1 + 4 + 8 + 4
	for i := range f.Deliveries {
		d := &f.Deliveries[i]
		n += 8 + 1 + 2 + len(d.Exchange) + 2 + len(d.RoutingKey) + 4 + len(d.Properties) + 4 + len(d.Body)
	}
	b := make([]byte, 0, n)
	b = append(b, AMQPBinaryMark)
	b = binary.BigEndian.AppendUint32(b, f.Ready)
	b = binary.BigEndian.AppendUint64(b, uint64(f.TimeoutMillis))
	b = binary.BigEndian.AppendUint32(b, uint32(len(f.Deliveries)))
	for i := range f.Deliveries {
		d := &f.Deliveries[i]
		if len(d.Exchange) > 0xFFFF || len(d.RoutingKey) > 0xFFFF {
			return nil, errors.New("exchange or routing key longer than 65535 bytes")
		}
		b = binary.BigEndian.AppendUint64(b, d.Handle)
		var fl byte
		if d.Redelivered {
			fl = 1
		}
		b = append(b, fl)
		b = appendStr16(b, d.Exchange)
		b = appendStr16(b, d.RoutingKey)
		b = appendBytes32(b, d.Properties)
		b = appendBytes32(b, d.Body)
	}
	return b, nil
}

// UnmarshalBinary decodes the binary form; Properties and Body alias b.
func (f *AMQPFetchResponse) UnmarshalBinary(b []byte) error {
	var r binReader
	r.start(b)
	f.Ready = r.u32()
	f.TimeoutMillis = int64(r.u64())
	n := r.count(8 + 1 + 2 + 2 + 4 + 4)
	f.Deliveries = make([]AMQPDelivery, n)
	for i := range n {
		d := &f.Deliveries[i]
		d.Handle = r.u64()
		fl := r.u8()
		if fl&^1 != 0 && r.err == nil {
			r.err = fmt.Errorf("unknown delivery flags %#x", fl)
		}
		d.Redelivered = fl&1 != 0
		d.Exchange = r.str16()
		d.RoutingKey = r.str16()
		d.Properties = r.bytes32()
		d.Body = r.bytes32()
	}
	return r.end("AMQP_FETCH answer")
}

// amqpStatuses are the publish statuses by their binary number.
var amqpStatuses = [...]string{AMQPStored, AMQPUnroutable, AMQPFailed}

// AppendAMQPPublishResults appends the binary publish answer of res.
func AppendAMQPPublishResults(b []byte, res []AMQPPublishResult) ([]byte, error) {
	b = append(b, AMQPBinaryMark)
	b = binary.BigEndian.AppendUint32(b, uint32(len(res)))
	for i := range res {
		r := &res[i]
		st := -1
		for k, v := range amqpStatuses {
			if r.Status == v {
				st = k
			}
		}
		if st < 0 {
			return nil, fmt.Errorf("unknown publish status %q", r.Status)
		}
		text := r.Text
		if len(text) > 0xFFFF {
			text = text[:0xFFFF] // the gateway clips it to a shortstr anyway
		}
		b = append(b, byte(st))
		b = binary.BigEndian.AppendUint16(b, r.Code)
		b = appendStr16(b, text)
	}
	return b, nil
}

// MarshalBinary encodes the answer in the binary form.
func (p AMQPPublishResponse) MarshalBinary() ([]byte, error) {
	return AppendAMQPPublishResults(make([]byte, 0, 5+5*len(p.Results)), p.Results)
}

// UnmarshalBinary decodes the binary form.
func (p *AMQPPublishResponse) UnmarshalBinary(b []byte) error {
	var r binReader
	r.start(b)
	n := r.count(1 + 2 + 2)
	p.Results = make([]AMQPPublishResult, n)
	for i := range n {
		st := int(r.u8())
		if st >= len(amqpStatuses) && r.err == nil {
			r.err = fmt.Errorf("unknown publish status %d", st)
		}
		if r.err != nil {
			break
		}
		p.Results[i] = AMQPPublishResult{Status: amqpStatuses[st], Code: uint16(r.u16()), Text: r.str16()}
	}
	return r.end("AMQP_PUBLISH answer")
}
