package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The gRPC modes are a raw client of apache.rocketmq.v2.MessagingService
// that sends what the official 5.x clients send (x-mq-client-id and the
// other x-mq-* headers on every call, a SendMessageRequest of one NORMAL
// message with a unique message id, ReceiveMessage with an invisible
// duration and a long-polling timeout, AckMessage with receipt handles)
// without their per-call bookkeeping (telemetry, tracing, metrics), so the
// shared CPUs go to the broker. Like the official Go client, it keeps one
// HTTP/2 connection per broker unless -conns says otherwise.

// grpcCodec sends pre-encoded []byte requests as they are and hands
// replies to a replyReader, which reads the fields it needs from grpc-go's
// receive buffer in place: the senders patch a message id into a request
// encoded once instead of marshalling each time, and no reply is copied
// or decoded whole (encoding.CodecV2, so grpc-go passes its pooled
// buffers instead of a fresh copy per message). Other messages (acks)
// are protobuf.
type grpcCodec struct{}

// replyReader reads one reply; it must not keep b.
type replyReader interface{ read(b []byte) error }

func (grpcCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.([]byte); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	b, err := proto.Marshal(v.(proto.Message))
	return mem.BufferSlice{mem.SliceBuffer(b)}, err
}

func (grpcCodec) Unmarshal(data mem.BufferSlice, v any) error {
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData() // a message in one frame: read it where it is
	} else {
		buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
		defer buf.Free()
		b = buf.ReadOnlyData()
	}
	if r, ok := v.(replyReader); ok {
		return r.read(b)
	}
	return proto.Unmarshal(b, v.(proto.Message))
}

func (grpcCodec) Name() string { return "proto" }

// statusReply reads a unary reply's Status (field 1 {1 code, 2 message}
// of SendMessageResponse and AckMessageResponse).
type statusReply struct {
	code v2.Code
	msg  string
}

func (r *statusReply) read(b []byte) error {
	st := field(b, 1)
	r.code = v2.Code(varintField(st, 1))
	if r.code != v2.Code_OK {
		r.msg = string(field(st, 2))
	}
	return nil
}

func dialGrpc(o options) ([]*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if o.tls {
		// The broker's self-signed certificate is not verified, as the
		// official clients do not verify it either.
		creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})
	}
	conns := make([]*grpc.ClientConn, max(o.conns, 1))
	for i := range conns {
		cc, err := grpc.NewClient(o.grpc, grpc.WithTransportCredentials(creds), grpc.WithDefaultCallOptions(grpc.ForceCodecV2(grpcCodec{})))
		if err != nil {
			return nil, fmt.Errorf("grpc dial %s: %w", o.grpc, err)
		}
		conns[i] = cc
	}
	return conns, nil
}

// grpcCtx carries the headers the official clients send on every call.
func grpcCtx(parent context.Context, clientID string) context.Context {
	return metadata.AppendToOutgoingContext(parent, "x-mq-client-id", clientID, "x-mq-language", "GO",
		"x-mq-protocol", "v2", "x-mq-client-version", "mqbench")
}

// idWidth is the fixed width of the generated message ids (the official
// clients' ids are 34 hex digits), so each can be written over the last
// one in the encoded request.
const idWidth = 34

func runGrpcSend(o options) error {
	conns, err := dialGrpc(o)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	var sent, failed atomic.Int64
	var firstErr atomic.Value
	lat := &latencies{}
	deadline := time.Now().Add(o.duration)
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < o.conc; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			cc := conns[g%len(conns)]
			req, idAt := grpcSendRequest(o)
			copy(req[idAt:], fmt.Sprintf("%08X%06X", time.Now().Unix(), g))
			var hex []byte
			ctx := grpcCtx(context.Background(), "mqbench-send-"+strconv.Itoa(g))
			ds := make([]time.Duration, 0, 1<<16)
			var resp statusReply
			for seq := 0; time.Now().Before(deadline); seq++ {
				hex = strconv.AppendUint(hex[:0], uint64(seq), 16)
				copy(req[idAt+idWidth-len(hex):], hex)
				t0 := time.Now()
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err := cc.Invoke(cctx, "/apache.rocketmq.v2.MessagingService/SendMessage", req, &resp)
				cancel()
				if err == nil && resp.code != v2.Code_OK {
					err = fmt.Errorf("%v %s", resp.code, resp.msg)
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					time.Sleep(10 * time.Millisecond)
					continue
				}
				ds = append(ds, time.Since(t0))
				sent.Add(1)
			}
			lat.add(ds)
		}(g)
	}
	wg.Wait()
	el := time.Since(start)
	fmt.Printf("mode=grpc-send senders=%d conns=%d tls=%v size=%dB: %d msgs in %v = %.0f msgs/s, %d failed%s; latency per request %s\n",
		o.conc, len(conns), o.tls, o.size, sent.Load(), el.Round(time.Millisecond), float64(sent.Load())/el.Seconds(), failed.Load(), errNote(&firstErr), lat.report())
	return nil
}

// grpcSendRequest is an encoded SendMessageRequest of one NORMAL message of
// o.size bytes to o.topic, and where its idWidth-digit message id starts.
func grpcSendRequest(o options) (req []byte, idAt int) {
	body := make([]byte, o.size)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	tag := "bench"
	placeholder := fmt.Sprintf("%0*d", idWidth, 0)
	req, _ = proto.Marshal(&v2.SendMessageRequest{Messages: []*v2.Message{{
		Topic: &v2.Resource{Name: o.topic},
		SystemProperties: &v2.SystemProperties{
			Tag: &tag, MessageId: placeholder, MessageType: v2.MessageType_NORMAL,
			BodyEncoding: v2.Encoding_IDENTITY, BornTimestamp: timestamppb.Now(), BornHost: "127.0.0.1",
		},
		Body: body,
	}}})
	return req, bytes.Index(req, []byte(placeholder))
}

// writeGrpcRequest writes one SendMessage call's request body as it
// travels in HTTP/2 DATA frames (gRPC's 5-byte prefix: not compressed,
// length), for an external HTTP/2 load generator (scripts/bench.sh runs
// h2load with it). Its message id is fixed: a generator that repeats
// one body sends one id.
func writeGrpcRequest(o options, w io.Writer) error {
	req, idAt := grpcSendRequest(o)
	copy(req[idAt:], fmt.Sprintf("%08X%026X", time.Now().Unix(), 1))
	frame := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(req)))
	if _, err := w.Write(append(frame, req...)); err != nil {
		return fmt.Errorf("write the request: %w", err)
	}
	return nil
}

// runGrpcRecv drains the topic with o.conc consumers of one group: each
// receives batches of o.batch (invisible 60 s) and acks every batch,
// o.ackBatch handles per AckMessage, until a receive finds nothing or
// o.duration passes.
func runGrpcRecv(o options) error {
	conns, err := dialGrpc(o)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	b := newRecvBench(o)
	b.run(func(g int) {
		cc := conns[g%len(conns)]
		ctx := grpcCtx(context.Background(), "mqbench-recv-"+strconv.Itoa(g))
		req, ackHead := b.requests()
		var r receiveReply
		var ack []byte
		var resp statusReply
		for time.Now().Before(b.deadline) {
			r.entries, r.ends = r.entries[:0], r.ends[:0]
			if err := grpcReceive(ctx, cc, req, &r); err != nil {
				b.fail(err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			if len(r.ends) == 0 {
				return // drained
			}
			ack = b.ackAll(&r, ackHead, ack, &resp, func(req []byte) error {
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				return cc.Invoke(cctx, "/apache.rocketmq.v2.MessagingService/AckMessage", req, &resp)
			})
		}
	})
	b.report(fmt.Sprintf("mode=grpc-recv consumers=%d conns=%d tls=%v", o.conc, len(conns), o.tls))
	return nil
}

// recvBench is what the receive modes share: the counters, the requests
// each consumer sends and the acks.
type recvBench struct {
	o                       options
	acked, received, failed atomic.Int64
	lastAck                 atomic.Int64 // ns since start: the run ends at the last ack, not after the final empty long poll
	firstErr                atomic.Value
	start, deadline         time.Time
}

func newRecvBench(o options) *recvBench {
	now := time.Now()
	return &recvBench{o: o, start: now, deadline: now.Add(o.duration)}
}

func (b *recvBench) fail(err error) {
	b.failed.Add(1)
	b.firstErr.CompareAndSwap(nil, err.Error())
}

// run runs consumer(g) for each of the o.conc consumers and waits for all.
func (b *recvBench) run(consumer func(g int)) {
	var wg sync.WaitGroup
	for g := 0; g < b.o.conc; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			consumer(g)
		}(g)
	}
	wg.Wait()
}

// requests are a consumer's ReceiveMessageRequest and the head of its
// AckMessageRequests: their group and topic, encoded once, which the
// received messages' entries follow as the receive wrote them.
func (b *recvBench) requests() (receive, ackHead []byte) {
	group, topic := &v2.Resource{Name: b.o.group}, &v2.Resource{Name: b.o.topic}
	receive, _ = proto.Marshal(&v2.ReceiveMessageRequest{
		Group: group, MessageQueue: &v2.MessageQueue{Topic: topic, Id: -1}, BatchSize: int32(b.o.batch),
		FilterExpression:   &v2.FilterExpression{Type: v2.FilterType_TAG, Expression: "*"},
		InvisibleDuration:  durationpb.New(60 * time.Second),
		LongPollingTimeout: durationpb.New(time.Second),
	})
	ackHead, _ = proto.Marshal(&v2.AckMessageRequest{Group: group, Topic: topic})
	return receive, ackHead
}

// ackAll acks r's messages o.ackBatch at a time: invoke sends one
// AckMessage, built in buf (returned for reuse), whose reply it reads
// into resp.
func (b *recvBench) ackAll(r *receiveReply, ackHead, buf []byte, resp *statusReply, invoke func(req []byte) error) []byte {
	b.received.Add(int64(len(r.ends)))
	for i := 0; i < len(r.ends); {
		n := min(len(r.ends)-i, max(b.o.ackBatch, 1))
		from := 0
		if i > 0 {
			from = r.ends[i-1]
		}
		buf = append(append(buf[:0], ackHead...), r.entries[from:r.ends[i+n-1]]...)
		i += n
		*resp = statusReply{}
		err := invoke(buf)
		if err == nil && resp.code != v2.Code_OK {
			err = fmt.Errorf("ack: %v %s", resp.code, resp.msg)
		}
		if err != nil {
			b.fail(err)
			continue
		}
		b.acked.Add(int64(n))
		b.lastAck.Store(int64(time.Since(b.start)))
	}
	return buf
}

// report prints the run's line, head first.
func (b *recvBench) report(head string) {
	el := max(time.Duration(b.lastAck.Load()), time.Millisecond)
	acked := b.acked.Load()
	fmt.Printf("%s batch=%d ackBatch=%d: %d received, %d acked in %v = %.0f msgs/s received+acked, %d failed calls%s\n",
		head, b.o.batch, b.o.ackBatch, b.received.Load(), acked, el.Round(time.Millisecond), float64(acked)/el.Seconds(), b.failed.Load(), errNote(&b.firstErr))
}

var receiveDesc = &grpc.StreamDesc{StreamName: "ReceiveMessage", ServerStreams: true}

// grpcReceive is one ReceiveMessage: the status, then the messages, each
// read into r.
func grpcReceive(ctx context.Context, cc *grpc.ClientConn, req []byte, r *receiveReply) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cs, err := cc.NewStream(cctx, receiveDesc, "/apache.rocketmq.v2.MessagingService/ReceiveMessage")
	if err != nil {
		return err
	}
	if err := cs.SendMsg(req); err != nil {
		return err
	}
	if err := cs.CloseSend(); err != nil {
		return err
	}
	for {
		err := cs.RecvMsg(r)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// receiveReply reads the ReceiveMessageResponses of one receive: 1 status
// {1 code, 2 message}, 2 message {3 system_properties {3 message_id,
// 12 receipt_handle}}; MESSAGE_NOT_FOUND is an empty result. Like the
// remoting consume mode, which only counts records, it decodes no more of
// a message than it needs to ack it, leaving the CPUs to the broker: each
// message becomes an encoded AckMessageRequest entry (3 {1 message_id,
// 2 receipt_handle}) appended to entries, ending at ends[i].
type receiveReply struct {
	entries []byte
	ends    []int
}

func (r *receiveReply) read(b []byte) error {
	if st := field(b, 1); st != nil {
		if code := v2.Code(varintField(st, 1)); code != v2.Code_OK && code != v2.Code_MESSAGE_NOT_FOUND {
			return fmt.Errorf("receive: %v %s", code, field(st, 2))
		}
		return nil
	}
	m := field(b, 2)
	if m == nil {
		return nil // delivery_timestamp
	}
	sp := field(m, 3)
	id, handle := field(sp, 3), field(sp, 12)
	e := r.entries
	e = protowire.AppendTag(e, 3, protowire.BytesType)
	e = protowire.AppendVarint(e, uint64(protowire.SizeTag(1)*2+protowire.SizeBytes(len(id))+protowire.SizeBytes(len(handle))))
	e = protowire.AppendTag(e, 1, protowire.BytesType)
	e = protowire.AppendBytes(e, id)
	e = protowire.AppendTag(e, 2, protowire.BytesType)
	e = protowire.AppendBytes(e, handle)
	r.entries, r.ends = e, append(r.ends, len(e))
	return nil
}

// field is the last length-delimited field num of an encoded message.
func field(b []byte, num protowire.Number) []byte {
	var v []byte
	for len(b) > 0 {
		n, t, l := protowire.ConsumeTag(b)
		if l < 0 {
			return v
		}
		b = b[l:]
		if n == num && t == protowire.BytesType {
			v, l = protowire.ConsumeBytes(b)
		} else {
			l = protowire.ConsumeFieldValue(n, t, b)
		}
		if l < 0 {
			return v
		}
		b = b[l:]
	}
	return v
}

// varintField is varint field num of an encoded message (0 when absent).
func varintField(b []byte, num protowire.Number) uint64 {
	for len(b) > 0 {
		n, t, l := protowire.ConsumeTag(b)
		if l < 0 {
			return 0
		}
		b = b[l:]
		if n == num && t == protowire.VarintType {
			v, _ := protowire.ConsumeVarint(b)
			return v
		}
		if l = protowire.ConsumeFieldValue(n, t, b); l < 0 {
			return 0
		}
		b = b[l:]
	}
	return 0
}

func closeAll(conns []*grpc.ClientConn) {
	for _, c := range conns {
		_ = c.Close()
	}
}

func errNote(v *atomic.Value) string {
	if s, ok := v.Load().(string); ok {
		return " (first: " + s + ")"
	}
	return ""
}
