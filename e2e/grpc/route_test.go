package grpc

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	rmq "github.com/apache/rocketmq-clients/golang/v5"
	"github.com/apache/rocketmq-clients/golang/v5/credentials"
	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
)

// TestTwoBrokersRoute: two brokers on one host, each with its own gRPC
// port. Either one answers QueryRoute for both, each entry with that
// broker's own published gRPC address, and the official producer given
// only broker-a's address sends to both brokers directly.
func TestTwoBrokersRoute(t *testing.T) {
	ns := startNamesrv(t)
	a, aGrpc := startBroker(t, ns.addr, "brokerName=broker-a")
	b, bGrpc := startBroker(t, ns.addr, "brokerName=broker-b")
	const topic = "GrpcTwoBrokers"
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{ns.addr})))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	for _, br := range []*proc{a, b} {
		if err := adm.CreateTopic(context.Background(), admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(br.addr),
			admin.WithReadQueueNums(2), admin.WithWriteQueueNums(2)); err != nil {
			t.Fatal(err)
		}
	}

	want := map[string]string{"broker-a": aGrpc, "broker-b": bGrpc}
	for _, access := range []string{aGrpc, bGrpc} {
		cl, _ := dial(t, access, true)
		waitFor(t, 30*time.Second, "both brokers in the route from "+access, func() bool {
			r, err := cl.QueryRoute(withClient("route-test"), &v2.QueryRouteRequest{Topic: &v2.Resource{Name: topic}})
			if err != nil || r.Status.Code != v2.Code_OK || len(r.MessageQueues) != 4 {
				return false
			}
			for i, q := range r.MessageQueues {
				ad := q.Broker.Endpoints.Addresses[0]
				wantName := "broker-a"
				if i >= 2 {
					wantName = "broker-b" // sorted by broker name, then queue id
				}
				if q.Broker.Name != wantName || q.Id != int32(i%2) || ad.Host+":"+strconv.Itoa(int(ad.Port)) != want[q.Broker.Name] {
					return false
				}
			}
			return true
		})
	}

	p, err := rmq.NewProducer(&rmq.Config{Endpoint: aGrpc, Credentials: &credentials.SessionCredentials{}}, rmq.WithTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.GracefulStop()
	perBroker := map[string]int{}
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := p.Send(ctx, &rmq.Message{Topic: topic, Body: []byte(fmt.Sprint("m-", i))})
		cancel()
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		ad := r[0].Endpoints.Addresses[0]
		perBroker[ad.Host+":"+strconv.Itoa(int(ad.Port))]++
	}
	if perBroker[aGrpc] == 0 || perBroker[bGrpc] == 0 || len(perBroker) != 2 {
		t.Errorf("sends per gRPC endpoint %v, want both %s and %s", perBroker, aGrpc, bGrpc)
	}
}
