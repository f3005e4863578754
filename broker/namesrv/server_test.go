package namesrv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

// threeBrokers is the usual fixture: broker-a master and slave, broker-b
// master, one cluster. TopicTest spans both groups, OnlyA lives on a.
func threeBrokers() (a0, a1, b0 *broker) {
	a0 = &broker{cluster: cluster, name: "broker-a", addr: addrA0, ha: haA0, id: 0, counter: 1,
		topics: []*wire.TopicConfig{topic("TopicTest", 4, 6), topic("OnlyA", 2, 6), topic("TBW102", 8, 7)}}
	// A slave's table is ignored by the name server; SlaveOnly proves it.
	a1 = &broker{cluster: cluster, name: "broker-a", addr: addrA1, ha: haA1, id: 1, counter: 1,
		topics: []*wire.TopicConfig{topic("TopicTest", 4, 6), topic("SlaveOnly", 1, 6)}}
	b0 = &broker{cluster: cluster, name: "broker-b", addr: addrB0, ha: haB0, id: 0, counter: 1,
		topics: []*wire.TopicConfig{topic("TopicTest", 8, 6), topic("TBW102", 8, 7)}}
	return a0, a1, b0
}

func TestRegisterAndRoute(t *testing.T) {
	s := startServer(t, Options{})
	c := newClient(t, s.addr)
	a0, a1, b0 := threeBrokers()

	// A slave registering before its master learns nothing about it.
	if r := c.register(a1); r.Has("masterAddr") || r.Has("haServerAddr") {
		t.Fatalf("slave without master got %v", r.Fields())
	}
	if r := c.register(a0); len(r.Ext) != 0 || r.Body != nil {
		t.Fatalf("master response: ext %v body %q, want neither", r.Fields(), r.Body)
	}
	c.register(b0)
	r := c.register(a1)
	if got := r.Fields(); got["masterAddr"] != addrA0 || got["haServerAddr"] != haA0 {
		t.Fatalf("slave response ext %v, want masterAddr %s haServerAddr %s", got, addrA0, haA0)
	}

	resp, _ := c.route("TopicTest")
	want := `{"brokerDatas":[` +
		`{"brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"},` +
		`{"brokerAddrs":{"0":"10.0.0.3:10911"},"brokerName":"broker-b","cluster":"DefaultCluster"}],` +
		`"filterServerTable":{},` +
		`"queueDatas":[` +
		`{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4},` +
		`{"brokerName":"broker-b","perm":6,"readQueueNums":8,"topicSysFlag":0,"writeQueueNums":8}]}`
	if resp.Code != wire.Success || string(resp.Body) != want {
		t.Fatalf("route TopicTest: code %d\n got %s\nwant %s", resp.Code, resp.Body, want)
	}
	if bytes.ContainsAny(resp.Body, " \t\r\n") {
		t.Fatalf("route JSON has whitespace: %s", resp.Body)
	}

	// Parsed the way the Go client parses it.
	qds, bds := goClientRoute(t, resp.Body)
	if len(qds) != 2 || len(bds) != 2 {
		t.Fatalf("go-client view: %d queueDatas, %d brokerDatas", len(qds), len(bds))
	}
	if bds[0].name != "broker-a" || bds[0].cluster != cluster || bds[0].addrs[0] != addrA0 || bds[0].addrs[1] != addrA1 {
		t.Fatalf("go-client view of broker-a: %+v", bds[0])
	}
	if bds[1].addrs[0] != addrB0 || len(bds[1].addrs) != 1 {
		t.Fatalf("go-client view of broker-b: %+v", bds[1])
	}

	_, onlyA := c.route("OnlyA")
	if len(onlyA.BrokerDatas) != 1 || onlyA.BrokerDatas[0].BrokerName != "broker-a" || len(onlyA.QueueDatas) != 1 {
		t.Fatalf("route OnlyA: %+v", onlyA)
	}

	for _, unknown := range []string{"SlaveOnly", "NoSuchTopic"} {
		resp, _ := c.route(unknown)
		wantRemark := "No topic route info in name server for the topic: " + unknown + "\nSee http://rocketmq.apache.org/docs/faq/ for further details."
		if resp.Code != wire.TopicNotExist || string(resp.Remark) != wantRemark {
			t.Fatalf("route %s: %d %q", unknown, resp.Code, resp.Remark)
		}
	}
	if !strings.Contains(s.logs.String(), "[BROKER_REGISTERED]") {
		t.Fatalf("registration not logged:\n%s", s.logs)
	}
}

func TestClusterInfo(t *testing.T) {
	s := startServer(t, Options{})
	c := newClient(t, s.addr)
	a0, a1, b0 := threeBrokers()
	other := &broker{cluster: "OtherCluster", name: "broker-c", addr: "10.0.1.1:10911", ha: "10.0.1.1:10912"}
	for _, b := range []*broker{a0, a1, b0, other} {
		c.register(b)
	}
	resp := c.ok(wire.GetBrokerClusterInfo, nil, nil)
	want := `{"brokerAddrTable":{` +
		`"broker-a":{"brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"},` +
		`"broker-b":{"brokerAddrs":{"0":"10.0.0.3:10911"},"brokerName":"broker-b","cluster":"DefaultCluster"},` +
		`"broker-c":{"brokerAddrs":{"0":"10.0.1.1:10911"},"brokerName":"broker-c","cluster":"OtherCluster"}},` +
		`"clusterAddrTable":{"DefaultCluster":["broker-a","broker-b"],"OtherCluster":["broker-c"]}}`
	if string(resp.Body) != want {
		t.Fatalf("cluster info\n got %s\nwant %s", resp.Body, want)
	}
}

func TestDataVersionAndWritePerm(t *testing.T) {
	s := startServer(t, Options{})
	c := newClient(t, s.addr)
	a0, a1, b0 := threeBrokers()
	for _, b := range []*broker{a0, a1, b0} {
		c.register(b)
	}
	perms := func(topic string) map[string]int {
		t.Helper()
		_, rd := c.route(topic)
		m := map[string]int{}
		for _, qd := range rd.QueueDatas {
			m[qd.BrokerName] = qd.Perm
		}
		return m
	}

	r := c.ok(wire.WipeWritePermOfBroker, map[string]string{"brokerName": "broker-a"}, nil)
	if got := r.GetString("wipeTopicCount"); got != "3" {
		t.Fatalf("wipeTopicCount %q, want 3 (TopicTest, OnlyA, TBW102)", got)
	}
	if p := perms("TopicTest"); p["broker-a"] != 4 || p["broker-b"] != 6 {
		t.Fatalf("after wipe: %v", p)
	}
	if p := perms("TBW102"); p["broker-a"] != 5 {
		t.Fatalf("TBW102 after wipe: %v, want perm 5 (7 without W)", p)
	}

	// Same DataVersion: the re-registration is a heartbeat only, the wipe stays.
	c.register(a0)
	if p := perms("TopicTest"); p["broker-a"] != 4 {
		t.Fatalf("re-registration with unchanged DataVersion overwrote the wipe: %v", p)
	}

	r = c.ok(wire.AddWritePermOfBroker, map[string]string{"brokerName": "broker-a"}, nil)
	if got := r.GetString("addTopicCount"); got != "3" {
		t.Fatalf("addTopicCount %q, want 3", got)
	}
	if p := perms("TBW102"); p["broker-a"] != 6 {
		t.Fatalf("TBW102 after add: %v, want 6", p)
	}

	// A changed DataVersion rewrites the queue data from the broker's table.
	c.ok(wire.WipeWritePermOfBroker, map[string]string{"brokerName": "broker-a"}, nil)
	a0.counter++
	a0.topics[0].WriteQueueNums = 2
	c.register(a0)
	_, rd := c.route("TopicTest")
	if rd.QueueDatas[0].Perm != 6 || rd.QueueDatas[0].WriteQueueNums != 2 {
		t.Fatalf("after DataVersion change: %+v", rd.QueueDatas[0])
	}
	if r := c.ok(wire.WipeWritePermOfBroker, map[string]string{"brokerName": "nobody"}, nil); r.GetString("wipeTopicCount") != "0" {
		t.Fatalf("wipe of unknown broker: %v", r.Fields())
	}

	// QUERY_DATA_VERSION compares with the registered version.
	dv := func(counter int64) []byte {
		return wire.Marshal(wire.DataVersion{Counter: counter, Timestamp: 1700000000000 + counter})
	}
	q := c.ok(wire.QueryDataVersion, a0.unregisterFields(), dv(a0.counter))
	if q.GetString("changed") != "false" || string(q.Body) != string(dv(a0.counter)) {
		t.Fatalf("query same version: %v %s", q.Fields(), q.Body)
	}
	q = c.ok(wire.QueryDataVersion, a0.unregisterFields(), dv(a0.counter+1))
	if q.GetString("changed") != "true" {
		t.Fatalf("query newer version: %v", q.Fields())
	}
	unknown := &broker{cluster: cluster, name: "x", addr: "10.9.9.9:1"}
	q = c.ok(wire.QueryDataVersion, unknown.unregisterFields(), dv(1))
	if q.GetString("changed") != "true" || q.Body != nil {
		t.Fatalf("query unknown broker: %v %s", q.Fields(), q.Body)
	}
}

func TestSlavePromotion(t *testing.T) {
	s := startServer(t, Options{})
	c := newClient(t, s.addr)
	a0, a1, _ := threeBrokers()
	c.register(a0)
	c.register(a1)
	// The master dies; the slave's address re-registers as id 0.
	c.ok(wire.UnregisterBroker, a0.unregisterFields(), nil)
	promoted := *a0
	promoted.addr, promoted.ha = addrA1, haA1
	c.register(&promoted)
	_, rd := c.route("TopicTest")
	if got := rd.BrokerDatas[0].BrokerAddrs; len(got) != 1 || got[0] != addrA1 {
		t.Fatalf("brokerAddrs after promotion: %v, want only 0 → %s", got, addrA1)
	}
}

func TestUnregister(t *testing.T) {
	s := startServer(t, Options{})
	c := newClient(t, s.addr)
	a0, a1, b0 := threeBrokers()
	for _, b := range []*broker{a0, a1, b0} {
		c.register(b)
	}
	// A slave leaving touches no topic.
	c.ok(wire.UnregisterBroker, a1.unregisterFields(), nil)
	_, rd := c.route("TopicTest")
	if len(rd.QueueDatas) != 2 || len(rd.BrokerDatas[0].BrokerAddrs) != 1 {
		t.Fatalf("after slave unregister: %+v", rd)
	}
	// The last address of broker-b leaving removes the group and its queue data.
	c.ok(wire.UnregisterBroker, b0.unregisterFields(), nil)
	_, rd = c.route("TopicTest")
	if len(rd.QueueDatas) != 1 || rd.QueueDatas[0].BrokerName != "broker-a" || len(rd.BrokerDatas) != 1 {
		t.Fatalf("after broker-b unregister: %+v", rd)
	}
	// broker-a's master leaving removes broker-a: OnlyA and TopicTest vanish.
	c.ok(wire.UnregisterBroker, a0.unregisterFields(), nil)
	for _, tp := range []string{"TopicTest", "OnlyA", "TBW102"} {
		if resp, _ := c.route(tp); resp.Code != wire.TopicNotExist {
			t.Fatalf("route %s after all brokers left: %d", tp, resp.Code)
		}
	}
	if tl := c.topicList(wire.GetAllTopicListFromNamesrv, nil); len(tl.TopicList) != 0 {
		t.Fatalf("topics left: %v", tl.TopicList)
	}
	ci := c.ok(wire.GetBrokerClusterInfo, nil, nil)
	if string(ci.Body) != `{"brokerAddrTable":{},"clusterAddrTable":{}}` {
		t.Fatalf("cluster info after all left: %s", ci.Body)
	}
}

func TestMasterGoneSlaveStays(t *testing.T) {
	s := startServer(t, Options{})
	c := newClient(t, s.addr)
	a0, a1, _ := threeBrokers()
	c.register(a0)
	c.register(a1)
	c.ok(wire.UnregisterBroker, a0.unregisterFields(), nil)
	// Topics stay readable through the slave but have no master to write to.
	resp, rd := c.route("TopicTest")
	if resp.Code != wire.Success || len(rd.QueueDatas) != 1 {
		t.Fatalf("route with slave only: %d %s", resp.Code, resp.Body)
	}
	if addrs := rd.BrokerDatas[0].BrokerAddrs; len(addrs) != 1 || addrs[1] != addrA1 {
		t.Fatalf("brokerAddrs with slave only: %v", addrs)
	}
}

func TestDeleteTopic(t *testing.T) {
	s := startServer(t, Options{})
	c := newClient(t, s.addr)
	a0, _, b0 := threeBrokers()
	c3 := &broker{cluster: "OtherCluster", name: "broker-c", addr: "10.0.1.1:10911", ha: "10.0.1.1:10912", counter: 1,
		topics: []*wire.TopicConfig{topic("TopicTest", 4, 6)}}
	for _, b := range []*broker{a0, b0, c3} {
		c.register(b)
	}

	// With a cluster, only that cluster's queue data goes.
	c.ok(wire.DeleteTopicInNamesrv, map[string]string{"topic": "TopicTest", "clusterName": cluster}, nil)
	_, rd := c.route("TopicTest")
	if len(rd.QueueDatas) != 1 || rd.QueueDatas[0].BrokerName != "broker-c" {
		t.Fatalf("after delete in %s: %+v", cluster, rd)
	}
	c.ok(wire.DeleteTopicInNamesrv, map[string]string{"topic": "TopicTest", "clusterName": "OtherCluster"}, nil)
	if resp, _ := c.route("TopicTest"); resp.Code != wire.TopicNotExist {
		t.Fatalf("TopicTest survived deletion in both clusters: %d", resp.Code)
	}

	// Without a cluster (an empty one, as the Go admin sends), the topic goes.
	c.ok(wire.DeleteTopicInNamesrv, map[string]string{"topic": "OnlyA", "clusterName": ""}, nil)
	if resp, _ := c.route("OnlyA"); resp.Code != wire.TopicNotExist {
		t.Fatalf("OnlyA survived deletion: %d", resp.Code)
	}
	c.ok(wire.DeleteTopicInNamesrv, map[string]string{"topic": "TBW102"}, nil)
	if tl := c.topicList(wire.GetAllTopicListFromNamesrv, nil); len(tl.TopicList) != 0 {
		t.Fatalf("topics left: %v", tl.TopicList)
	}
	// Unchanged DataVersion: the deleted topics do not come back.
	c.register(a0)
	if tl := c.topicList(wire.GetAllTopicListFromNamesrv, nil); len(tl.TopicList) != 0 {
		t.Fatalf("re-registration resurrected %v", tl.TopicList)
	}
}

func TestTopicLists(t *testing.T) {
	s := startServer(t, Options{})
	c := newClient(t, s.addr)
	a0, a1, b0 := threeBrokers()
	a0.topics = append(a0.topics,
		&wire.TopicConfig{TopicName: "Unit", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6, TopicSysFlag: sysFlagUnit},
		&wire.TopicConfig{TopicName: "UnitSub", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6, TopicSysFlag: sysFlagUnitSub},
		&wire.TopicConfig{TopicName: "Both", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6, TopicSysFlag: sysFlagUnit | sysFlagUnitSub})
	other := &broker{cluster: "OtherCluster", name: "broker-c", addr: "10.0.1.1:10911", ha: "10.0.1.1:10912", counter: 1,
		topics: []*wire.TopicConfig{topic("OnlyC", 4, 6)}}
	for _, b := range []*broker{a0, a1, b0, other} {
		c.register(b)
	}
	check := func(what string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Fatalf("%s: got %v, want %v", what, got, want)
		}
	}
	check("all topics", c.topicList(wire.GetAllTopicListFromNamesrv, nil).TopicList,
		[]string{"Both", "OnlyA", "OnlyC", "TBW102", "TopicTest", "Unit", "UnitSub"})
	check("topics of DefaultCluster", c.topicList(wire.GetTopicsByCluster, map[string]string{"cluster": cluster}).TopicList,
		[]string{"Both", "OnlyA", "TBW102", "TopicTest", "Unit", "UnitSub"})
	check("topics of OtherCluster", c.topicList(wire.GetTopicsByCluster, map[string]string{"cluster": "OtherCluster"}).TopicList,
		[]string{"OnlyC"})
	check("topics of unknown cluster", c.topicList(wire.GetTopicsByCluster, map[string]string{"cluster": "nope"}).TopicList,
		[]string{})
	sys := c.topicList(wire.GetSystemTopicListFromNs, nil)
	check("system topics", sys.TopicList, []string{"DefaultCluster", "OtherCluster", "broker-a", "broker-b", "broker-c"})
	if sys.BrokerAddr != addrA0 {
		t.Fatalf("system topic list brokerAddr %q, want %s", sys.BrokerAddr, addrA0)
	}
	check("unit topics", c.topicList(getUnitTopicList, nil).TopicList, []string{"Both", "Unit"})
	check("has unit sub", c.topicList(getHasUnitSubTopicList, nil).TopicList, []string{"Both", "UnitSub"})
	check("has unit sub, not unit", c.topicList(getHasUnitSubUnUnitTopicList, nil).TopicList, []string{"UnitSub"})

	empty := startServer(t, Options{})
	resp := newClient(t, empty.addr).ok(wire.GetAllTopicListFromNamesrv, nil, nil)
	if string(resp.Body) != `{"topicList":[]}` {
		t.Fatalf("empty topic list: %s", resp.Body)
	}
}

func TestKVConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "kvConfig.json")
	s := startServer(t, Options{KVConfigPath: path})
	c := newClient(t, s.addr)
	kv := func(ns, k string) map[string]string { return map[string]string{"namespace": ns, "key": k} }

	c.expectCode(wire.QueryNotFound, wire.GetKVConfig, kv(orderTopicNamespace, "TopicTest"), nil)
	r := c.expectCode(wire.QueryNotFound, wire.GetKVListByNamespace, map[string]string{"namespace": orderTopicNamespace}, nil)
	if string(r.Remark) != "No config item, Namespace: ORDER_TOPIC_CONFIG" {
		t.Fatalf("remark %q", r.Remark)
	}

	put := kv(orderTopicNamespace, "TopicTest")
	put["value"] = "broker-a:4;broker-b:8"
	c.ok(wire.PutKVConfig, put, nil)
	c.ok(wire.PutKVConfig, map[string]string{"namespace": "other", "key": "k", "value": "v"}, nil)
	if got := c.ok(wire.GetKVConfig, kv(orderTopicNamespace, "TopicTest"), nil).GetString("value"); got != "broker-a:4;broker-b:8" {
		t.Fatalf("get: %q", got)
	}
	list := c.ok(wire.GetKVListByNamespace, map[string]string{"namespace": orderTopicNamespace}, nil)
	if string(list.Body) != `{"table":{"TopicTest":"broker-a:4;broker-b:8"}}` {
		t.Fatalf("list: %s", list.Body)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"configTable":{"ORDER_TOPIC_CONFIG":{"TopicTest":"broker-a:4;broker-b:8"},"other":{"k":"v"}}}`; string(file) != want {
		t.Fatalf("kvConfig.json\n got %s\nwant %s", file, want)
	}

	// Brokers receive the order-topic namespace on registration.
	a0, _, _ := threeBrokers()
	if r := c.register(a0); string(r.Body) != `{"table":{"TopicTest":"broker-a:4;broker-b:8"}}` {
		t.Fatalf("register response body: %s", r.Body)
	}
	// Routes carry orderTopicConf only when orderMessageEnable is on.
	if resp, _ := c.route("TopicTest"); bytes.Contains(resp.Body, []byte("orderTopicConf")) {
		t.Fatalf("orderTopicConf without orderMessageEnable: %s", resp.Body)
	}

	// Persistence across a restart.
	s.Close()
	s2 := startServer(t, Options{KVConfigPath: path, OrderMessageEnable: true})
	c2 := newClient(t, s2.addr)
	if got := c2.ok(wire.GetKVConfig, kv("other", "k"), nil).GetString("value"); got != "v" {
		t.Fatalf("after restart: %q", got)
	}
	c2.register(a0)
	if _, rd := c2.route("TopicTest"); rd.OrderTopicConf != "broker-a:4;broker-b:8" {
		t.Fatalf("orderTopicConf with orderMessageEnable: %q", rd.OrderTopicConf)
	}

	c2.ok(wire.DeleteKVConfig, kv(orderTopicNamespace, "TopicTest"), nil)
	c2.ok(wire.DeleteKVConfig, kv(orderTopicNamespace, "absent"), nil)
	c2.expectCode(wire.QueryNotFound, wire.GetKVConfig, kv(orderTopicNamespace, "TopicTest"), nil)
	// An emptied namespace still answers, so brokers clear their order flags.
	if r := c2.register(a0); string(r.Body) != `{"table":{}}` {
		t.Fatalf("register response after delete: %s", r.Body)
	}
	file, _ = os.ReadFile(path)
	if want := `{"configTable":{"ORDER_TOPIC_CONFIG":{},"other":{"k":"v"}}}`; string(file) != want {
		t.Fatalf("kvConfig.json after delete\n got %s\nwant %s", file, want)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}

	c2.expectCode(wire.SystemError, wire.PutKVConfig, kv("ns", "k"), nil) // no value
}

func TestKVConfigCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kvConfig.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{KVConfigPath: path}); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("New with corrupt kv file: %v", err)
	}
}

func TestExpiry(t *testing.T) {
	s := startServer(t, Options{ScanInterval: 20 * time.Millisecond, BrokerExpiry: 300 * time.Millisecond})
	a0, a1, b0 := threeBrokers()
	ca := newClient(t, s.addr) // broker-a's master and slave share a connection here
	cb := newClient(t, s.addr)
	ca.register(a0)
	ca.register(a1)
	connA, err := ca.cl.Conn(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	// A silent broker sharing broker-b's connection expires too, but the
	// connection stays: broker-b is alive on it.
	silent := &broker{cluster: cluster, name: "broker-s", addr: "10.0.0.6:10911", ha: "10.0.0.6:10912"}
	cb.register(silent)
	connB, err := cb.cl.Conn(s.addr)
	if err != nil {
		t.Fatal(err)
	}

	// broker-b keeps registering; broker-a goes silent.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := cb.cl.Invoke(s.addr, wire.NewRequest(wire.RegisterBroker, b0.fields(), b0.body()), callWait); err != nil {
				return
			}
		}
	}()
	cb.register(b0)
	// broker-s registered after broker-a, so it may expire one scan later.
	waitFor(t, "broker-a and silent broker-s to expire", func() bool {
		resp, _ := cb.route("OnlyA")
		ci := cb.ok(wire.GetBrokerClusterInfo, nil, nil)
		return resp.Code == wire.TopicNotExist && !strings.Contains(string(ci.Body), "broker-s")
	})
	close(stop)
	<-done

	_, rd := cb.route("TopicTest")
	if len(rd.BrokerDatas) != 1 || rd.BrokerDatas[0].BrokerName != "broker-b" {
		t.Fatalf("after broker-a expired: %+v", rd)
	}
	select {
	case <-connB.Done():
		t.Fatal("connection of live broker-b was closed")
	default:
	}
	select {
	case <-connA.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("connection of the expired brokers was not closed")
	}
	logs := s.logs.String()
	for _, addr := range []string{addrA0, addrA1} {
		if !strings.Contains(logs, "[BROKER_EXPIRED]") || !strings.Contains(logs, addr) {
			t.Fatalf("expiry of %s not logged:\n%s", addr, logs)
		}
	}
}

func TestConnectionClose(t *testing.T) {
	s := startServer(t, Options{})
	a0, a1, b0 := threeBrokers()
	bc := &broker{cluster: cluster, name: "broker-c", addr: "10.0.0.9:10911", ha: "10.0.0.9:10912", counter: 1,
		topics: []*wire.TopicConfig{topic("OnlyC", 4, 6)}}
	x := newClient(t, s.addr)
	y := newClient(t, s.addr)
	z := newClient(t, s.addr)
	x.register(a0)
	x.register(a1)
	x.register(bc)
	y.register(b0)
	// broker-c reconnects: its registration now belongs to connection z.
	z.register(bc)

	x.cl.Close()
	waitFor(t, "broker-a removal", func() bool {
		resp, _ := y.route("OnlyA")
		return resp.Code == wire.TopicNotExist
	})
	_, rd := y.route("TopicTest")
	if len(rd.BrokerDatas) != 1 || rd.BrokerDatas[0].BrokerName != "broker-b" {
		t.Fatalf("after close: %+v", rd)
	}
	if resp, _ := y.route("OnlyC"); resp.Code != wire.Success {
		t.Fatalf("broker-c, re-registered over another connection, was removed: %d", resp.Code)
	}
	logs := s.logs.String()
	if !strings.Contains(logs, "[BROKER_CHANNEL_CLOSED]") || strings.Contains(logs, "brokerAddr=10.0.0.9:10911 brokerName=broker-c") {
		t.Fatalf("close logging:\n%s", logs)
	}
}

func TestCompressedAndLegacyBodies(t *testing.T) {
	s := startServer(t, Options{})
	c := newClient(t, s.addr)
	a0, _, b0 := threeBrokers()

	body := javaCompressedBody(t, a0.wrapper(), nil)
	f := a0.fields()
	f["compressed"] = "true"
	f["bodyCrc32"] = fmt.Sprint(bodyCRC32(body))
	c.ok(wire.RegisterBroker, f, body)
	_, rd := c.route("TopicTest")
	if len(rd.QueueDatas) != 1 || rd.QueueDatas[0].ReadQueueNums != 4 || rd.QueueDatas[0].Perm != 6 {
		t.Fatalf("route after compressed registration: %+v", rd)
	}

	f["bodyCrc32"] = fmt.Sprint(bodyCRC32(body) ^ 1)
	if r := c.expectCode(wire.SystemError, wire.RegisterBroker, f, body); string(r.Remark) != "crc32 not match" {
		t.Fatalf("crc mismatch remark %q", r.Remark)
	}

	// Brokers older than 3.0.11 send a bare TopicConfigSerializeWrapper.
	req := wire.NewRequest(wire.RegisterBroker, b0.fields(), wire.Marshal(b0.wrapper()))
	req.Version = versionRegisterBody - 1
	if r := c.send(req); r.Code != wire.Success {
		t.Fatalf("legacy registration: %d %q", r.Code, r.Remark)
	}
	if _, rd := c.route("TopicTest"); len(rd.QueueDatas) != 2 {
		t.Fatalf("route after legacy registration: %+v", rd)
	}

	// No body: an empty table, still a registration.
	empty := &broker{cluster: cluster, name: "broker-e", addr: "10.0.0.8:10911", ha: "10.0.0.8:10912"}
	c.ok(wire.RegisterBroker, empty.fields(), nil)
	if !strings.Contains(string(c.ok(wire.GetBrokerClusterInfo, nil, nil).Body), "broker-e") {
		t.Fatal("registration without body was not recorded")
	}

	// 5.x brokers add keys the name server must ignore.
	v5 := `{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":3,"stateVersion":0,"timestamp":1},` +
		`"topicConfigTable":{"V5":{"attributes":{},"order":false,"perm":6,"readQueueNums":2,"topicFilterType":"SINGLE_TAG","topicName":"V5","topicSysFlag":0,"writeQueueNums":2}},` +
		`"topicQueueMappingInfoMap":{}},"topicQueueMappingDetailMap":{}}`
	v := &broker{cluster: cluster, name: "broker-v", addr: "10.0.0.7:10911", ha: "10.0.0.7:10912"}
	c.ok(wire.RegisterBroker, v.fields(), []byte(v5))
	if resp, _ := c.route("V5"); resp.Code != wire.Success {
		t.Fatalf("route of a 5.x broker's topic: %d", resp.Code)
	}
}

func TestBadRequests(t *testing.T) {
	s := startServer(t, Options{})
	c := newClient(t, s.addr)
	a0, _, _ := threeBrokers()

	r := c.expectCode(wire.RequestCodeNotSupported, 9999, nil, nil)
	if string(r.Remark) != " request type 9999 not supported" {
		t.Fatalf("unknown code remark %q", r.Remark)
	}

	r = c.expectCode(wire.SystemError, wire.RegisterBroker, a0.fields(), []byte(`{"topicConfigSerializeWrapper":`))
	if !strings.HasPrefix(string(r.Remark), "Failed to decode RegisterBrokerBody") {
		t.Fatalf("malformed body remark %q", r.Remark)
	}
	f := a0.fields()
	f["compressed"] = "true"
	c.expectCode(wire.SystemError, wire.RegisterBroker, f, []byte("not zlib"))
	f["compressed"] = "false"
	delete(f, "brokerAddr")
	if r := c.expectCode(wire.SystemError, wire.RegisterBroker, f, a0.body()); string(r.Remark) != "the custom field <brokerAddr> is null" {
		t.Fatalf("missing field remark %q", r.Remark)
	}
	f = a0.fields()
	f["brokerId"] = "zero"
	c.expectCode(wire.SystemError, wire.RegisterBroker, f, a0.body())
	c.expectCode(wire.SystemError, wire.QueryDataVersion, a0.unregisterFields(), []byte("[1,2"))
	c.expectCode(wire.SystemError, wire.GetRouteInfoByTopic, nil, nil)
	c.expectCode(wire.SystemError, wire.WipeWritePermOfBroker, nil, nil)
	c.expectCode(wire.SystemError, wire.UnregisterBroker, map[string]string{"brokerName": "x"}, nil)

	// The server still serves, and nothing half-registered.
	if tl := c.topicList(wire.GetAllTopicListFromNamesrv, nil); len(tl.TopicList) != 0 {
		t.Fatalf("failed registrations left topics: %v", tl.TopicList)
	}
	c.register(a0)
	if resp, _ := c.route("TopicTest"); resp.Code != wire.Success {
		t.Fatalf("server unusable after bad requests: %d", resp.Code)
	}
}

func TestOnewayGetsNoAnswer(t *testing.T) {
	s := startServer(t, Options{})
	c := newClient(t, s.addr)
	a0, _, _ := threeBrokers()
	conn, err := c.cl.Conn(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	// Brokers register oneway right after creating a topic.
	if err := conn.InvokeOneway(wire.NewRequest(wire.RegisterBroker, a0.fields(), a0.body())); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "oneway registration", func() bool {
		resp, _ := c.route("TopicTest")
		return resp.Code == wire.Success
	})
}

func TestNamesrvConfig(t *testing.T) {
	s := startServer(t, Options{KVConfigPath: filepath.Join(t.TempDir(), "kv.json")})
	c := newClient(t, s.addr)
	props := func() map[string]string {
		t.Helper()
		p, err := wire.ParseJavaProperties(string(c.ok(wire.GetNamesrvConfig, nil, nil).Body))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	got := props()
	want := map[string]string{
		"brokerChannelExpiredTime":    "120000",
		"configBlackList":             "configBlackList;configStorePath;kvConfigPath",
		"kvConfigPath":                s.kv.path,
		"listenPort":                  portOf(s.addr),
		"orderMessageEnable":          "false",
		"scanNotActiveBrokerInterval": "10000",
	}
	if !maps.Equal(got, want) {
		t.Fatalf("config\n got %v\nwant %v", got, want)
	}

	c.ok(wire.UpdateNamesrvConfig, nil, []byte("# set by test\norderMessageEnable=true\nbrokerChannelExpiredTime = 60000\nunknownKey=1\n"))
	got = props()
	if got["orderMessageEnable"] != "true" || got["brokerChannelExpiredTime"] != "60000" || got["unknownKey"] != "" {
		t.Fatalf("after update: %v", got)
	}
	r := c.expectCode(wire.NoPermission, wire.UpdateNamesrvConfig, nil, []byte("kvConfigPath=/etc/passwd\norderMessageEnable=false"))
	if !strings.Contains(string(r.Remark), "black list") {
		t.Fatalf("black list remark %q", r.Remark)
	}
	r = c.expectCode(wire.SystemError, wire.UpdateNamesrvConfig, nil, []byte("orderMessageEnable=false\nscanNotActiveBrokerInterval=soon"))
	if !strings.Contains(string(r.Remark), "scanNotActiveBrokerInterval") || !strings.Contains(string(r.Remark), "soon") {
		t.Fatalf("invalid value remark %q", r.Remark)
	}
	if props()["orderMessageEnable"] != "true" {
		t.Fatal("a rejected update was partly applied")
	}
	c.expectCode(wire.SystemError, wire.UpdateNamesrvConfig, nil, []byte("=novalue"))

	// orderMessageEnable switched on at run time shows in routes.
	c.ok(wire.PutKVConfig, map[string]string{"namespace": orderTopicNamespace, "key": "TopicTest", "value": "broker-a:4"}, nil)
	a0, _, _ := threeBrokers()
	c.register(a0)
	if _, rd := c.route("TopicTest"); rd.OrderTopicConf != "broker-a:4" {
		t.Fatalf("orderTopicConf %q", rd.OrderTopicConf)
	}
}

func TestRouteJSONShapes(t *testing.T) {
	s := startServer(t, Options{})
	c := newClient(t, s.addr)
	a0, _, _ := threeBrokers()
	body := wire.Marshal(wire.RegisterBrokerBody{
		FilterServerList:            []string{"10.0.0.1:30000"},
		TopicConfigSerializeWrapper: a0.wrapper(),
	})
	c.ok(wire.RegisterBroker, a0.fields(), body)
	resp, _ := c.route("TopicTest")
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(resp.Body, &raw); err != nil {
		t.Fatal(err)
	}
	if got := string(raw["filterServerTable"]); got != `{"10.0.0.1:10911":["10.0.0.1:30000"]}` {
		t.Fatalf("filterServerTable %s", got)
	}
	// Registering again with no filter servers clears them.
	c.register(a0)
	resp, _ = c.route("TopicTest")
	if !bytes.Contains(resp.Body, []byte(`"filterServerTable":{}`)) {
		t.Fatalf("filter servers not cleared: %s", resp.Body)
	}
}

// RocketMQ 5 fencing at the name server: an id held by a live address with
// a higher stateVersion (master epoch) ignores a registration from another
// address with a lower one; a higher one takes the id over.
func TestStateVersionFencesStaleMaster(t *testing.T) {
	s := startServer(t, Options{})
	c := newClient(t, s.addr)
	newMaster := &broker{cluster: cluster, name: "broker-a", addr: addrA1, ha: haA1, id: 0, counter: 1, stateVersion: 2,
		topics: []*wire.TopicConfig{topic("TopicTest", 4, 6)}}
	oldMaster := &broker{cluster: cluster, name: "broker-a", addr: addrA0, ha: haA0, id: 0, counter: 5, stateVersion: 1,
		topics: []*wire.TopicConfig{topic("TopicTest", 4, 6)}}
	c.register(newMaster)
	c.register(oldMaster) // stale: ignored
	_, rd := c.route("TopicTest")
	if len(rd.BrokerDatas) != 1 || rd.BrokerDatas[0].BrokerAddrs[0] != addrA1 || len(rd.BrokerDatas[0].BrokerAddrs) != 1 {
		t.Fatalf("route after a stale id-0 registration: %+v", rd.BrokerDatas)
	}
	// The old master, now a slave of epoch 3, registers under its own id.
	oldMaster.id, oldMaster.stateVersion = 2, 3
	c.register(oldMaster)
	// A newer master epoch on the old address takes id 0 back.
	oldMaster.id, oldMaster.stateVersion = 0, 4
	c.register(oldMaster)
	_, rd = c.route("TopicTest")
	if got := rd.BrokerDatas[0].BrokerAddrs; got[0] != addrA0 {
		t.Fatalf("route after a newer epoch's registration: %v", got)
	}
	// Equal or absent stateVersions (4.x brokers) keep the old behaviour:
	// the last registration wins.
	newMaster.stateVersion = 4
	c.register(newMaster)
	_, rd = c.route("TopicTest")
	if got := rd.BrokerDatas[0].BrokerAddrs; got[0] != addrA1 {
		t.Fatalf("equal stateVersion: %v", got)
	}
}
