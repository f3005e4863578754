package e2e

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/wire"
)

// twoBrokers is a name server with two broker groups in DefaultCluster.
type twoBrokers struct {
	ns   *proc
	a, b *cluster
}

func startTwoBrokers(t *testing.T) *twoBrokers {
	ns := startNamesrv(t)
	a := &cluster{ns: ns, dir: newBrokerDir(t)}
	a.broker = startBroker(t, a.dir, ns.addr)
	b := &cluster{ns: ns, dir: newBrokerDir(t)}
	b.broker = startBroker(t, b.dir, ns.addr, "brokerName=broker-b")
	return &twoBrokers{ns: ns, a: a, b: b}
}

// waitRoute waits until mqadmin sees a route of topic with n broker groups.
func waitRoute(t *testing.T, ns, topic string, n int) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("route of %s on %d brokers", topic, n), func() bool {
		r := runCLI(t, nil, "topic", "route", "-t", topic, "-o", "json", "-n", ns)
		return r.code == 0 && strings.Count(r.stdout, `"brokerName"`) == 2*n
	})
}

// TestMqadminTopicLifecycle is use case 1: create a topic with N queues
// on a cluster and on one broker, list it, show its route and per-queue
// status after traffic, delete it; and the one-line failures.
func TestMqadminTopicLifecycle(t *testing.T) {
	c := startTwoBrokers(t)
	ns := c.ns.addr

	created := tableOf(t, cli(t, ns, "topic", "create", "-t", "UC1", "-c", "DefaultCluster", "--queues", "4"))
	created.wantHeader(t, "Broker Name", "Broker Addr", "Topic", "Read Queues", "Write Queues", "Perm", "Order")
	if len(created.rows) != 2 {
		t.Fatalf("created on %v, want both masters", created.rows)
	}
	for name, addr := range map[string]string{"broker-a": c.a.broker.addr, "broker-b": c.b.broker.addr} {
		r := created.one(t, "Broker Name", name)
		if r["Broker Addr"] != addr || r["Read Queues"] != "4" || r["Write Queues"] != "4" || r["Perm"] != "6" {
			t.Fatalf("created row %v", r)
		}
	}
	// One broker, chosen by name, with separate read and write counts.
	var one struct {
		Topic   wire.TopicConfig `json:"topicConfig"`
		Brokers []admin.Broker   `json:"brokers"`
	}
	cliJSON(t, ns, &one, "topic", "create", "-t", "UC1One", "-b", "broker-b", "-r", "2", "-w", "3", "-p", "4")
	if len(one.Brokers) != 1 || one.Brokers[0].Addr != c.b.broker.addr || one.Topic.ReadQueueNums != 2 || one.Topic.WriteQueueNums != 3 {
		t.Fatalf("create on one broker: %+v", one)
	}
	waitRoute(t, ns, "UC1", 2)
	waitRoute(t, ns, "UC1One", 1)

	list := tableOf(t, cli(t, ns, "topic", "list"))
	list.wantHeader(t, "Topic", "Message Type")
	if list.one(t, "Topic", "UC1")["Message Type"] != "NORMAL" || list.one(t, "Topic", "UC1One")["Message Type"] != "NORMAL" {
		t.Fatalf("topic list rows %v", list.rows)
	}
	var topics []string
	cliJSON(t, ns, &topics, "topic", "list")
	if !contains(topics, "UC1") || !contains(topics, "UC1One") || !contains(topics, "DefaultCluster") {
		t.Fatalf("topic list json %v", topics)
	}

	routeOut := cli(t, ns, "topic", "route", "-t", "UC1")
	rt := tableOf(t, routeOut)
	rt.wantHeader(t, "ClusterName", "BrokerName", "BrokerAddrs", "ReadQueue", "WriteQueue", "Perm", "MessageType", "ProduceQuota")
	if r := rt.one(t, "BrokerName", "broker-a"); r["ClusterName"] != "DefaultCluster" || r["BrokerAddrs"] != "0="+c.a.broker.addr || r["ReadQueue"] != "4" || r["WriteQueue"] != "4" || r["Perm"] != "6" ||
		r["MessageType"] != "NORMAL" || r["ProduceQuota"] != "-" {
		t.Fatalf("route row %v", r)
	}
	if !strings.Contains(routeOut, "\nTotal: 2 brokers, 8 read queues, 8 write queues\n") {
		t.Fatalf("route footer missing:\n%s", routeOut)
	}
	var rd wire.TopicRouteData
	cliJSON(t, ns, &rd, "topic", "route", "-t", "UC1One")
	if len(rd.QueueDatas) != 1 || rd.QueueDatas[0].BrokerName != "broker-b" || rd.QueueDatas[0].WriteQueueNums != 3 || rd.QueueDatas[0].Perm != 4 {
		t.Fatalf("route json %+v", rd)
	}

	// Traffic, then status: max offset per queue equals what was sent there.
	before := time.Now().UnixMilli()
	p := newProducer(t, ns)
	sent := map[string]int64{}
	for _, r := range sendN(t, p, "UC1", "uc1", 40) {
		sent[fmt.Sprintf("%s/%d", r.MessageQueue.BrokerName, r.MessageQueue.QueueId)]++
	}
	after := time.Now().UnixMilli()
	waitDispatched(t, c.a.broker.addr, "UC1", 4, int(sent["broker-a/0"]+sent["broker-a/1"]+sent["broker-a/2"]+sent["broker-a/3"]))
	waitDispatched(t, c.b.broker.addr, "UC1", 4, int(sent["broker-b/0"]+sent["broker-b/1"]+sent["broker-b/2"]+sent["broker-b/3"]))

	st := tableOf(t, cli(t, ns, "topic", "status", "-t", "UC1"))
	st.wantHeader(t, "Broker Name", "QID", "Min Offset", "Max Offset", "Last Updated", "Message Type")
	if len(st.rows) != 8 {
		t.Fatalf("status rows %v", st.rows)
	}
	for _, r := range st.rows {
		n := sent[r["Broker Name"]+"/"+r["QID"]]
		if r["Min Offset"] != "0" || r["Max Offset"] != strconv.FormatInt(n, 10) || (n > 0) != (r["Last Updated"] != "-") || r["Message Type"] != "NORMAL" {
			t.Fatalf("status row %v, sent %d", r, n)
		}
	}
	var qs []admin.QueueStatus
	cliJSON(t, ns, &qs, "topic", "status", "-t", "UC1")
	for _, q := range qs {
		n := sent[fmt.Sprintf("%s/%d", q.BrokerName, q.QueueID)]
		if q.MaxOffset != n || (n > 0 && (q.LastUpdateTimestamp < before || q.LastUpdateTimestamp > after)) || (n == 0 && q.LastUpdateTimestamp != 0) {
			t.Fatalf("status json %+v, sent %d in [%d, %d]", q, n, before, after)
		}
	}

	del := tableOf(t, cli(t, ns, "topic", "delete", "-t", "UC1"))
	del.wantHeader(t, "Deleted From", "Broker Name", "Addr")
	if len(del.where("Deleted From", "broker")) != 2 || del.one(t, "Deleted From", "namesrv")["Addr"] != ns {
		t.Fatalf("delete rows %v", del.rows)
	}
	if msg := cliFail(t, ns, "topic", "route", "-t", "UC1"); !strings.Contains(msg, "route of topic UC1: TOPIC_NOT_EXIST: ") {
		t.Fatalf("route after delete: %s", msg)
	}
	list = tableOf(t, cli(t, ns, "topic", "list"))
	if len(list.where("Topic", "UC1")) != 0 {
		t.Fatalf("UC1 still listed")
	}

	// Failures: a broker refusal names the broker and the code.
	msg := cliFail(t, ns, "topic", "create", "-t", "TBW102", "-b", c.a.broker.addr)
	if want := "mqadmin: create topic TBW102 on " + c.a.broker.addr + ": SYSTEM_ERROR: "; !strings.HasPrefix(msg, want) {
		t.Fatalf("system topic: %q, want prefix %q", msg, want)
	}
	if msg := cliFail(t, ns, "topic", "status", "-t", "NoSuchTopic"); !strings.Contains(msg, "TOPIC_NOT_EXIST") {
		t.Fatalf("unknown topic: %s", msg)
	}
	if msg := cliFail(t, ns, "topic", "create", "-t", "X", "-c", "NoCluster"); !strings.Contains(msg, "cluster NoCluster not found (known: DefaultCluster)") {
		t.Fatalf("unknown cluster: %s", msg)
	}
	if msg := cliFail(t, ns, "topic", "create", "-t", "X"); !strings.Contains(msg, "exactly one of a broker (-b) or a cluster (-c)") {
		t.Fatalf("no target: %s", msg)
	}
	dead := closedAddr(t)
	if msg := cliFail(t, dead, "topic", "list"); !strings.Contains(msg, "no name server reachable") || !strings.Contains(msg, dead) {
		t.Fatalf("dead name server: %s", msg)
	}
	if msg := cliFail(t, "", "topic", "list"); !strings.Contains(msg, "no name server: use -n/--namesrv, NAMESRV_ADDR or a context") {
		t.Fatalf("no name server: %s", msg)
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
