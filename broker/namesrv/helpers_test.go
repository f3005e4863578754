package namesrv

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

const (
	cluster  = "DefaultCluster"
	addrA0   = "10.0.0.1:10911"
	addrA1   = "10.0.0.2:10911"
	addrB0   = "10.0.0.3:10911"
	haA0     = "10.0.0.1:10912"
	haA1     = "10.0.0.2:10912"
	haB0     = "10.0.0.3:10912"
	callWait = 3 * time.Second
)

// syncBuffer collects log output from server goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	*Server
	addr string
	logs *syncBuffer
}

// startServer runs a name server on a random port; o.KVConfigPath defaults
// to a fresh temp file.
func startServer(t *testing.T, o Options) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	o.ListenAddr = "127.0.0.1:0"
	if o.KVConfigPath == "" {
		o.KVConfigPath = filepath.Join(t.TempDir(), "kvConfig.json")
	}
	o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Close)
	return &testServer{Server: s, addr: s.Addr().String(), logs: logs}
}

// testClient is one connection to the name server, like one broker process.
type testClient struct {
	t    *testing.T
	cl   *remoting.Client
	addr string
}

func newClient(t *testing.T, addr string) *testClient {
	t.Helper()
	cl := remoting.NewClient(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(cl.Close)
	return &testClient{t: t, cl: cl, addr: addr}
}

func (c *testClient) send(req *wire.Command) *wire.Command {
	c.t.Helper()
	resp, err := c.cl.Invoke(c.addr, req, callWait)
	if err != nil {
		c.t.Fatalf("code %d: %v", req.Code, err)
	}
	return resp
}

func (c *testClient) call(code int32, fields map[string]string, body []byte) *wire.Command {
	c.t.Helper()
	return c.send(wire.NewRequest(code, fields, body))
}

// ok calls and requires SUCCESS.
func (c *testClient) ok(code int32, fields map[string]string, body []byte) *wire.Command {
	c.t.Helper()
	resp := c.call(code, fields, body)
	if resp.Code != wire.Success {
		c.t.Fatalf("code %d: got response %d %q", code, resp.Code, resp.Remark)
	}
	return resp
}

// expectCode calls and requires the given response code.
func (c *testClient) expectCode(want int32, code int32, fields map[string]string, body []byte) *wire.Command {
	c.t.Helper()
	resp := c.call(code, fields, body)
	if resp.Code != want {
		c.t.Fatalf("code %d: got response %d %q, want %d", code, resp.Code, resp.Remark, want)
	}
	return resp
}

// broker describes one registration.
type broker struct {
	cluster, name, addr, ha string
	id                      int64
	counter                 int64
	stateVersion            int64 // RocketMQ 5: master epoch in controller mode
	topics                  []*wire.TopicConfig
}

func topic(name string, queues, perm int) *wire.TopicConfig {
	return &wire.TopicConfig{
		TopicName: name, ReadQueueNums: queues, WriteQueueNums: queues, Perm: perm, TopicFilterType: "SINGLE_TAG",
	}
}

func (b *broker) fields() map[string]string {
	return map[string]string{
		"brokerName": b.name, "brokerAddr": b.addr, "clusterName": b.cluster, "haServerAddr": b.ha,
		"brokerId": strconv.FormatInt(b.id, 10), "compressed": "false", "bodyCrc32": "0",
	}
}

func (b *broker) wrapper() wire.TopicConfigSerializeWrapper {
	w := wire.TopicConfigSerializeWrapper{
		DataVersion:      wire.DataVersion{StateVersion: b.stateVersion, Counter: b.counter, Timestamp: 1700000000000 + b.counter},
		TopicConfigTable: map[string]*wire.TopicConfig{},
	}
	for _, tc := range b.topics {
		w.TopicConfigTable[tc.TopicName] = tc
	}
	return w
}

func (b *broker) body() []byte {
	return wire.Marshal(wire.RegisterBrokerBody{FilterServerList: []string{}, TopicConfigSerializeWrapper: b.wrapper()})
}

func (c *testClient) register(b *broker) *wire.Command {
	c.t.Helper()
	return c.ok(wire.RegisterBroker, b.fields(), b.body())
}

func (b *broker) unregisterFields() map[string]string {
	return map[string]string{"brokerName": b.name, "brokerAddr": b.addr, "clusterName": b.cluster, "brokerId": strconv.FormatInt(b.id, 10)}
}

func (c *testClient) route(topic string) (*wire.Command, wire.TopicRouteData) {
	c.t.Helper()
	resp := c.call(wire.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil)
	var rd wire.TopicRouteData
	if resp.Code == wire.Success {
		if err := json.Unmarshal(resp.Body, &rd); err != nil {
			c.t.Fatalf("route %s: %v: %s", topic, err, resp.Body)
		}
	}
	return resp, rd
}

func (c *testClient) topicList(code int32, fields map[string]string) wire.TopicList {
	c.t.Helper()
	resp := c.ok(code, fields, nil)
	var tl wire.TopicList
	if err := json.Unmarshal(resp.Body, &tl); err != nil {
		c.t.Fatalf("code %d: %v: %s", code, err, resp.Body)
	}
	return tl
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// goClientRoute decodes a route exactly as rocketmq-client-go v2.1.2's
// TopicRouteData.decode does (internal/route.go): queueDatas as a JSON
// array, each brokerAddrs taken as raw text, outer braces stripped, split on
// ',' and then at the first ':', quotes removed.
type goClientBroker struct {
	name, cluster string
	addrs         map[int64]string
}

func goClientRoute(t *testing.T, body []byte) ([]wire.QueueData, []goClientBroker) {
	t.Helper()
	var top struct {
		QueueDatas  json.RawMessage   `json:"queueDatas"`
		BrokerDatas []json.RawMessage `json:"brokerDatas"`
	}
	if err := json.Unmarshal(body, &top); err != nil {
		t.Fatalf("route JSON: %v", err)
	}
	var qds []wire.QueueData
	if err := json.Unmarshal(top.QueueDatas, &qds); err != nil || top.QueueDatas[0] != '[' {
		t.Fatalf("queueDatas is not an array: %s", top.QueueDatas)
	}
	var out []goClientBroker
	for _, raw := range top.BrokerDatas {
		var bd struct {
			BrokerName  string          `json:"brokerName"`
			Cluster     string          `json:"cluster"`
			BrokerAddrs json.RawMessage `json:"brokerAddrs"`
		}
		if err := json.Unmarshal(raw, &bd); err != nil {
			t.Fatalf("brokerData: %v", err)
		}
		addrs := string(bd.BrokerAddrs)
		if len(addrs) < 2 || addrs[0] != '{' {
			t.Fatalf("brokerAddrs %q would crash the Go client", addrs)
		}
		g := goClientBroker{name: bd.BrokerName, cluster: bd.Cluster, addrs: map[int64]string{}}
		for _, part := range strings.Split(addrs[1:len(addrs)-1], ",") {
			i := strings.Index(part, ":")
			if i < 0 {
				continue
			}
			id, err := strconv.ParseInt(strings.ReplaceAll(part[:i], `"`, ""), 10, 64)
			if err != nil {
				t.Fatalf("brokerAddrs key %q: %v", part[:i], err)
			}
			g.addrs[id] = strings.ReplaceAll(part[i+1:], `"`, "")
		}
		out = append(out, g)
	}
	return qds, out
}
