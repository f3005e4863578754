package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mqops/mqops/broker/grpcsvc"
	"github.com/mqops/mqops/wire"
)

// fakePop is a broker behind the real gRPC service: each receive hands
// out the next n deliveries, acks are recorded.
type fakePop struct {
	mu      sync.Mutex
	pending []grpcsvc.Delivery
	n       int
	acked   []string
}

func (f *fakePop) Send(*grpcsvc.Message) grpcsvc.SendResult              { return grpcsvc.SendResult{} }
func (f *fakePop) Route(string) (*wire.TopicRouteData, error)            { return nil, nil }
func (f *fakePop) GrpcAddrs([]string) map[string]string                  { return nil }
func (f *fakePop) TopicMessageType(string) string                        { return wire.MessageTypeNormal }
func (f *fakePop) EndTransaction(string, int64, int64, bool) error       { return nil }
func (f *fakePop) ForwardToDLQ(string, string, string) *grpcsvc.PopError { return nil }
func (f *fakePop) MaxAttempts(string) int32                              { return 17 }
func (f *fakePop) Orderly(string) bool                                   { return false }
func (f *fakePop) ChangeInvisible(string, string, string, time.Duration) (string, *grpcsvc.PopError) {
	return "", nil
}

func (f *fakePop) Receive(_ context.Context, r *grpcsvc.PopRequest) ([]grpcsvc.Delivery, *grpcsvc.PopError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := min(f.n, r.Batch, len(f.pending))
	ds := f.pending[:n]
	f.pending = f.pending[n:]
	return ds, nil
}

func (f *fakePop) Ack(_, _, handle string) *grpcsvc.PopError {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acked = append(f.acked, handle)
	return nil
}

// TestGrpcRecv runs the lean HTTP/2 receiver, and the grpc-go one,
// against the broker's real gRPC service (grpc-go's server): bodies larger
// than a DATA frame (a gRPC message split over frames), several consumers
// on one connection, every delivery acked once with the handle it came
// with; an RPC the server refuses is an error with its grpc-status.
func TestGrpcRecv(t *testing.T) {
	var addr string
	for _, m := range []struct {
		name string
		run  func(options) error
	}{{"grpc-recv-h2", runGrpcRecvH2}, {"grpc-recv", runGrpcRecv}} {
		f := &fakePop{n: 5}
		const total = 57
		for i := range total {
			body := strings.Repeat(strconv.Itoa(i%10), 1000+i*700) // up to ~40 KiB: spans 16 KiB frames
			p := wire.AppendProperty(nil, wire.PropUniqKey, "ID"+strconv.Itoa(i))
			r := wire.Record{Topic: "T", Body: []byte(body), Properties: p, BornHost: wire.HostBytes(&net.TCPAddr{IP: net.IPv4(1, 2, 3, 4), Port: 1}),
				StoreHost: wire.HostBytes(&net.TCPAddr{IP: net.IPv4(1, 2, 3, 4), Port: 2})}
			b := make([]byte, r.Size())
			r.EncodeTo(b)
			f.pending = append(f.pending, grpcsvc.Delivery{Record: b, Topic: "T", Handle: "handle-" + strconv.Itoa(i), DeliveryCount: 1})
		}
		s, err := grpcsvc.Listen(grpcsvc.Config{Addr: "127.0.0.1:0", MaxRecvMsgSize: 1 << 20, TLSMode: grpcsvc.TLSDisabled,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, f)
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = s.Serve() }()
		t.Cleanup(s.Stop)
		addr = s.Addr().String()

		o := options{grpc: addr, topic: "T", group: "G", conc: 4, conns: 1, batch: 32, ackBatch: 3, duration: time.Minute}
		if err := m.run(o); err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		acked := append([]string(nil), f.acked...)
		f.mu.Unlock()
		seen := map[string]bool{}
		for _, h := range acked {
			if seen[h] {
				t.Errorf("%s: %s acked twice", m.name, h)
			}
			seen[h] = true
		}
		if len(seen) != total {
			t.Fatalf("%s: %d of %d deliveries acked: %v", m.name, len(seen), total, acked)
		}
	}

	c, err := dialH2(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.conn.Close()
	req, _ := proto.Marshal(&v2.ReceiveMessageRequest{Group: &v2.Resource{Name: "G"},
		MessageQueue: &v2.MessageQueue{Topic: &v2.Resource{Name: "T"}}, InvisibleDuration: durationpb.New(time.Minute)})
	call := &h2Call{read: func([]byte) error { return nil }, done: make(chan struct{}, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.invoke(ctx, "/apache.rocketmq.v2.MessagingService/PullMessage", []string{"x-mq-client-id", "c"}, req, call)
	if err == nil || !strings.Contains(err.Error(), "grpc-status 12") {
		t.Fatalf("an unimplemented RPC answered %v, want grpc-status 12 (UNIMPLEMENTED)", err)
	}
}
