package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/mqops/mqops/wire"
)

func route(t *testing.T, ns, topic string) (wire.TopicRouteData, int32) {
	t.Helper()
	resp := invoke(t, ns, wire.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil)
	var rd wire.TopicRouteData
	if resp.Code == wire.Success {
		if err := json.Unmarshal(resp.Body, &rd); err != nil {
			t.Fatalf("route body: %v", err)
		}
	}
	return rd, resp.Code
}

// TestClientsSurviveNameServersDown: the broker registers with every name
// server; once clients have routes they keep working with all of them gone.
func TestClientsSurviveNameServersDown(t *testing.T) {
	ns1, ns2 := startNamesrv(t), startNamesrv(t)
	dir := newBrokerDir(t)
	both := ns1.addr + ";" + ns2.addr
	c := &cluster{ns: ns1, dir: dir, broker: startBroker(t, dir, both)}
	const topic = "NsDown"
	createTopic(t, c, topic, 2)
	for _, ns := range []*proc{ns1, ns2} {
		waitFor(t, 10*time.Second, "route on "+ns.addr, func() bool { _, code := route(t, ns.addr, topic); return code == wire.Success })
	}
	p := newProducer(t, ns1.addr, producer.WithNameServer([]string{ns1.addr, ns2.addr}))
	col := newCollector()
	newPushConsumer(t, ns1.addr, "CG_nsdown", topic, consumer.MessageSelector{}, col,
		consumer.WithNameServer([]string{ns1.addr, ns2.addr}), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	sendN(t, p, topic, "before", 10)
	waitFor(t, 30*time.Second, "10 messages", func() bool { return col.count() == 10 })

	ns1.kill()
	ns2.kill()
	sendN(t, p, topic, "after", 20)
	waitFor(t, 30*time.Second, "20 more messages with no name server", func() bool { return col.count() == 30 })
}

// TestTwoBrokerGroups: a cluster of two broker groups; the route lists both
// and producers spread a topic's messages over them.
func TestTwoBrokerGroups(t *testing.T) {
	ns := startNamesrv(t)
	a := &cluster{ns: ns, dir: newBrokerDir(t)}
	a.broker = startBroker(t, a.dir, ns.addr)
	b := &cluster{ns: ns, dir: newBrokerDir(t)}
	b.broker = startBroker(t, b.dir, ns.addr, "brokerName=broker-b")
	const topic = "TwoGroups"
	createTopic(t, a, topic, 2)
	createTopic(t, b, topic, 2)
	waitFor(t, 10*time.Second, "route with both groups", func() bool {
		rd, code := route(t, ns.addr, topic)
		return code == wire.Success && len(rd.QueueDatas) == 2 && len(rd.BrokerDatas) == 2
	})
	resp := invoke(t, ns.addr, wire.GetBrokerClusterInfo, nil, nil)
	var ci wire.ClusterInfo
	if err := json.Unmarshal(resp.Body, &ci); err != nil || len(ci.ClusterAddrTable["DefaultCluster"]) != 2 {
		t.Fatalf("cluster info: %v %s", err, resp.Body)
	}

	p := newProducer(t, ns.addr)
	perBroker := map[string]int{}
	for i := 0; i < 40; i++ {
		r, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(fmt.Sprintf("g-%d", i))))
		if err != nil {
			t.Fatal(err)
		}
		perBroker[r.MessageQueue.BrokerName]++
	}
	if perBroker["broker-a"] == 0 || perBroker["broker-b"] == 0 {
		t.Fatalf("messages per broker %v: both groups must take traffic", perBroker)
	}
	col := newCollector()
	newPushConsumer(t, ns.addr, "CG_two", topic, consumer.MessageSelector{}, col, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	waitFor(t, 30*time.Second, "40 messages from both groups", func() bool { return col.count() == 40 })

	// A broker that stops unregisters at once; its queues leave the route.
	b.broker.stop()
	waitFor(t, 10*time.Second, "broker-b gone from the route", func() bool {
		rd, code := route(t, ns.addr, topic)
		return code == wire.Success && len(rd.QueueDatas) == 1 && rd.QueueDatas[0].BrokerName == "broker-a"
	})
}

// TestAutoCreateTopic: a producer sending to an unknown topic goes through
// TBW102; the broker creates the topic and registers it.
func TestAutoCreateTopic(t *testing.T) {
	c := startCluster(t)
	p := newProducer(t, c.ns.addr)
	r, err := p.SendSync(context.Background(), primitive.NewMessage("AutoCreated", []byte("hello")))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != primitive.SendOK {
		t.Fatalf("send: %+v", r)
	}
	waitFor(t, 10*time.Second, "auto-created topic in the route", func() bool {
		rd, code := route(t, c.ns.addr, "AutoCreated")
		return code == wire.Success && len(rd.QueueDatas) == 1 && rd.QueueDatas[0].WriteQueueNums == 4 && rd.QueueDatas[0].Perm == 6
	})
}
