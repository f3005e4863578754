package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mqops/mqops/broker/flow"
	"github.com/mqops/mqops/wire"
)

func oneway(req *wire.Command) *wire.Command {
	req.Flag |= wire.FlagOneway
	return req
}

// TestOnewaySendRefusals: as Java (NettyRemotingAbstract.processRequestCommand,
// RequestTask.returnResponse), a refused oneway send is answered when it
// is refused before it runs ([REJECTREQUEST]) or cleaned from the queue
// ([TIMEOUT_CLEAN_QUEUE]), and not when the budget is full ([OVERLOAD]).
func TestOnewaySendRefusals(t *testing.T) {
	t.Run("REJECTREQUEST answered", func(t *testing.T) {
		b := startStallBroker(t, map[string]string{"flushDiskType": "SYNC_FLUSH", "osPageCacheBusyTimeOutMills": "50"})
		nc1, r1 := rawConn(t, b.Broker)
		writeFrame(t, nc1, sendReq("OnewayTopic", []byte("one"), 1))
		if r := readResponse(t, nc1, r1); r.Code != wire.Success {
			t.Fatalf("first send: %d %s", r.Code, r.Remark)
		}
		b.stall.Store(true)
		writeFrame(t, nc1, sendReq("OnewayTopic", []byte("two"), 2))
		<-b.entered
		waitFor(t, func() bool { return b.store.Busy(time.Now()) > 50*time.Millisecond })
		nc2, r2 := rawConn(t, b.Broker)
		writeFrame(t, nc2, oneway(sendReq("OnewayTopic", []byte("three"), 3)))
		r := readResponse(t, nc2, r2)
		expectBusy(t, r, 3, "[REJECTREQUEST]system busy, start flow control for a while")
		if r.Flag&wire.FlagResponse == 0 {
			t.Errorf("answer flag %d is not a response", r.Flag)
		}
		b.stall.Store(false)
	})
	t.Run("TIMEOUT_CLEAN_QUEUE answered", func(t *testing.T) {
		b := startStallBroker(t, map[string]string{"sendMessageThreadPoolNums": "1", "waitTimeMillsInSendQueue": "100", "osPageCacheBusyTimeOutMills": "600000"})
		nc2, read2 := stallInAppend(t, b)
		writeFrame(t, nc2, oneway(sendReq("SlowTopic", []byte("three"), 3)))
		expectBusy(t, read2(), 3, "[TIMEOUT_CLEAN_QUEUE]broker busy, start flow control for a while, period in queue: ")
		b.stall.Store(false)
	})
	t.Run("OVERLOAD silent", func(t *testing.T) {
		b := startStallBroker(t, map[string]string{"flushDiskType": "SYNC_FLUSH", "osPageCacheBusyTimeOutMills": "600000", "sendInflightPerConnection": "1"})
		nc1, r1 := rawConn(t, b.Broker)
		writeFrame(t, nc1, sendReq("OnewayTopic", []byte("one"), 1))
		if r := readResponse(t, nc1, r1); r.Code != wire.Success {
			t.Fatalf("first send: %d %s", r.Code, r.Remark)
		}
		b.stall.Store(true)
		writeFrame(t, nc1, sendReq("OnewayTopic", []byte("two"), 2)) // waits for the stalled fsync
		<-b.entered
		writeFrame(t, nc1, oneway(sendReq("OnewayTopic", []byte("three"), 3)))
		info := wire.NewRequest(wire.GetBrokerRuntimeInfo, nil, nil)
		info.Opaque = 4
		writeFrame(t, nc1, info)
		// Answers leave in order: an answer to 3 would come first.
		if r := readResponse(t, nc1, r1); r.Opaque != 4 || r.Code != wire.Success {
			t.Fatalf("first answer after the oneway send: opaque %d code %d %q, want the runtime info (4)", r.Opaque, r.Code, r.Remark)
		}
		if n := b.flow.Rejected(flow.Overload); n != 1 {
			t.Errorf("OVERLOAD counter %d, want 1 (the oneway send was not refused)", n)
		}
		b.stall.Store(false)
	})
}

// TestEndTransactionTimeoutCleanQueue: an END_TRANSACTION whose commit
// cannot get an append slot (held by a stalled append) within
// waitTimeMillsInTransactionQueue is answered [TIMEOUT_CLEAN_QUEUE],
// although the Go client sends it oneway, as Java's BrokerFastFailure
// answers from its end-transaction queue.
func TestEndTransactionTimeoutCleanQueue(t *testing.T) {
	b := startStallBroker(t, map[string]string{"sendMessageThreadPoolNums": "1", "waitTimeMillsInSendQueue": "600000",
		"waitTimeMillsInTransactionQueue": "100", "osPageCacheBusyTimeOutMills": "600000",
		"enableProxy": "true", "grpcServerPort": "0"})
	nc2, read2 := stallInAppend(t, b)
	end := wire.NewRequest(wire.EndTransaction, map[string]string{"producerGroup": "PG", "tranStateTableOffset": "0",
		"commitLogOffset": "0", "commitOrRollback": "8", "fromTransactionCheck": "false", "msgId": "X"}, nil)
	end.Opaque = 7
	writeFrame(t, nc2, oneway(end))
	r := read2()
	expectBusy(t, r, 7, "[TIMEOUT_CLEAN_QUEUE]broker busy, start flow control for a while, period in queue: ")
	if !strings.HasSuffix(string(r.Remark), "ms, size of queue: 1") {
		t.Errorf("remark %q", r.Remark)
	}
	if n := b.flow.Rejected(flow.TimeoutCleanQueue); n != 1 {
		t.Errorf("TIMEOUT_CLEAN_QUEUE counter %d, want 1", n)
	}
	if log := b.flowLog.String(); !strings.Contains(log, "[TIMEOUT_CLEAN_QUEUE]") {
		t.Errorf("flow log lacks the refusal: %q", log)
	}

	// A 5.x producer's decision waits for the same slot.
	cl, ctx := grpcClient(t, b.GrpcAddr())
	resp, err := cl.EndTransaction(ctx, &v2.EndTransactionRequest{Topic: &v2.Resource{Name: "TxTopic"}, MessageId: "01TX",
		TransactionId: "0-0", Resolution: v2.TransactionResolution_COMMIT, Source: v2.TransactionSource_SOURCE_CLIENT})
	if err != nil {
		t.Fatal(err)
	}
	if st := resp.GetStatus(); st.GetCode() != v2.Code_TOO_MANY_REQUESTS || !strings.HasPrefix(st.GetMessage(), "[TIMEOUT_CLEAN_QUEUE]broker busy") {
		t.Errorf("gRPC end transaction: %v", st)
	}
	if n := b.flow.Rejected(flow.TimeoutCleanQueue); n != 2 {
		t.Errorf("TIMEOUT_CLEAN_QUEUE counter %d, want 2", n)
	}
	b.stall.Store(false)
}

// TestWaterMarkLog: watermark.log gets Java's four lines every second,
// with the sends in flight and how long the oldest waiting one has
// waited while the store stalls.
func TestWaterMarkLog(t *testing.T) {
	b := startStallBroker(t, map[string]string{"sendMessageThreadPoolNums": "1", "waitTimeMillsInSendQueue": "600000", "osPageCacheBusyTimeOutMills": "600000"})
	waitFor(t, func() bool {
		return strings.Contains(b.waterMark.String(), " - [WATERMARK] Transaction Queue Size: 0 SlowTimeMills: 0\n")
	})
	for _, want := range []string{"[WATERMARK] Send Queue Size: 0 SlowTimeMills: 0", "[WATERMARK] Pull Queue Size: 0 SlowTimeMills: 0", "[WATERMARK] Query Queue Size: 0 SlowTimeMills: 0"} {
		if !strings.Contains(b.waterMark.String(), want) {
			t.Errorf("watermark.log lacks %q: %q", want, b.waterMark.String())
		}
	}
	nc2, _ := stallInAppend(t, b)
	writeFrame(t, nc2, sendReq("SlowTopic", []byte("three"), 3)) // waits for the slot
	waitFor(t, func() bool {
		out := b.waterMark.String()
		i := strings.LastIndex(out, "[WATERMARK] Send Queue Size: 2 SlowTimeMills: ")
		return i >= 0 && !strings.HasPrefix(out[i:], "[WATERMARK] Send Queue Size: 2 SlowTimeMills: 0\n")
	})
	b.stall.Store(false)
}

// grpcClient is a raw RocketMQ 5 client of addr, and the context its
// calls need (a client id).
func grpcClient(t *testing.T, addr string) (v2.MessagingServiceClient, context.Context) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return v2.NewMessagingServiceClient(conn), metadata.AppendToOutgoingContext(ctx, "x-mq-client-id", "flow-test", "x-mq-language", "GO")
}

// TestStreamSendOverload: the send budget covers gRPC SendMessage and the
// HTTP gateway's sends: while a remoting send holds the whole budget, they
// are answered TOO_MANY_REQUESTS (42900) and HTTP 429 with [OVERLOAD].
func TestStreamSendOverload(t *testing.T) {
	b := startStallBroker(t, map[string]string{"flushDiskType": "SYNC_FLUSH", "osPageCacheBusyTimeOutMills": "600000", "sendThreadPoolQueueCapacity": "1",
		"enableProxy": "true", "grpcServerPort": "0", "enableHttpGateway": "true", "httpGatewayPort": "0"})
	if _, err := b.topics.Put(wire.TopicConfig{TopicName: "StreamTopic", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}); err != nil {
		t.Fatal(err)
	}
	cl, ctx := grpcClient(t, b.GrpcAddr())
	send := func(id string) *v2.SendMessageResponse {
		t.Helper()
		resp, err := cl.SendMessage(ctx, &v2.SendMessageRequest{Messages: []*v2.Message{{
			Topic: &v2.Resource{Name: "StreamTopic"}, Body: []byte("g"),
			SystemProperties: &v2.SystemProperties{MessageId: id, MessageType: v2.MessageType_NORMAL, BodyEncoding: v2.Encoding_IDENTITY, BornTimestamp: timestamppb.Now()},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if r := send("01FLOW00000000000000000000000001"); r.GetStatus().GetCode() != v2.Code_OK {
		t.Fatalf("gRPC send before the stall: %v", r.GetStatus())
	}
	post := func() (int, map[string]any) {
		t.Helper()
		resp, err := http.Post("http://"+b.HTTPGatewayAddr()+"/v1/topics/StreamTopic/messages", "application/json", strings.NewReader(`{"body":"h"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, out
	}
	if code, out := post(); code != http.StatusCreated {
		t.Fatalf("HTTP send before the stall: %d %v", code, out)
	}

	b.stall.Store(true)
	nc, _ := rawConn(t, b.Broker)
	writeFrame(t, nc, sendReq("StreamTopic", []byte("r"), 1)) // holds the budget, waiting for the stalled fsync
	<-b.entered
	r := send("01FLOW00000000000000000000000002")
	if st := r.GetStatus(); st.GetCode() != v2.Code_TOO_MANY_REQUESTS || st.GetMessage() != "[OVERLOAD]system busy, start flow control for a while" {
		t.Errorf("gRPC send over budget: %v", st)
	}
	code, out := post()
	if code != http.StatusTooManyRequests || out["code"] != float64(v2.Code_TOO_MANY_REQUESTS) || out["message"] != "[OVERLOAD]system busy, start flow control for a while" {
		t.Errorf("HTTP send over budget: %d %v", code, out)
	}
	if n := b.flow.Rejected(flow.Overload); n != 2 {
		t.Errorf("OVERLOAD counter %d, want 2", n)
	}
	if n, _ := b.flow.InFlight(); n != 1 {
		t.Errorf("%d sends in flight, want the remoting one (refused calls gave their budget back)", n)
	}
	b.stall.Store(false)
}
