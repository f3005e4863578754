package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/flow"
	"github.com/mqops/mqops/broker/grpcsvc"
	"github.com/mqops/mqops/wire"
)

// syncBuffer is a log destination tests read while the broker writes.
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

// stallBroker is a broker whose commit-log fsyncs (segments, and the
// directory when a segment is created) block while stall is set, until
// the test ends: a disk that stopped answering. entered receives the path
// of each stalled fsync.
type stallBroker struct {
	*Broker
	stall     atomic.Bool
	entered   chan string
	flowLog   *syncBuffer
	waterMark *syncBuffer
}

func startStallBroker(t *testing.T, overrides map[string]string) *stallBroker {
	t.Helper()
	o := map[string]string{
		"mappedFileSizeCommitLog": strconv.Itoa(1 << 20),
		// No background flush: a stall must hit what the test drives
		// (stallInAppend wants the append's fsync, not the flusher's).
		"flushIntervalCommitLog": "600000",
	}
	for k, v := range overrides {
		o[k] = v
	}
	sb := &stallBroker{entered: make(chan string, 16), flowLog: &syncBuffer{}, waterMark: &syncBuffer{}}
	release := make(chan struct{})
	sb.Broker = startBroker(t, o, func(opts *Options) {
		clog := filepath.Join(opts.Config.StorePathRootDir, "commitlog")
		opts.fsyncFault = func(path string) error {
			if sb.stall.Load() && strings.HasPrefix(path, clog) {
				select {
				case sb.entered <- path:
				default:
				}
				<-release
			}
			return nil
		}
		opts.FlowLog = slog.New(slog.NewTextHandler(sb.flowLog, nil))
		opts.WaterMarkOut = sb.waterMark
	})
	t.Cleanup(func() { close(release) }) // runs before the broker's Close
	return sb
}

// sendReq is a SEND_MESSAGE_V2 request with opaque op.
func sendReq(topic string, body []byte, op int32) *wire.Command {
	req := wire.NewRequest(wire.SendMessageV2, sendFields(topic, 0, ""), body)
	req.Opaque = op
	return req
}

func expectBusy(t *testing.T, r *wire.Command, op int32, prefix string) {
	t.Helper()
	if r.Opaque != op || r.Code != wire.SystemBusy || !strings.HasPrefix(string(r.Remark), prefix) {
		t.Fatalf("answer to %d: opaque %d code %d %q, want code 2 %q...", op, r.Opaque, r.Code, r.Remark, prefix)
	}
}

// TestSendOverload: sends waiting for their group commit hold the send
// budget; past it (per connection, in number, in bytes) a send is
// answered SYSTEM_BUSY [OVERLOAD] at once, while the waiting ones are
// answered SUCCESS once the disk answers.
func TestSendOverload(t *testing.T) {
	for _, tc := range []struct {
		name     string
		conf     map[string]string
		sameConn bool
	}{
		{"per connection", map[string]string{"sendInflightPerConnection": "1"}, true},
		{"count", map[string]string{"sendThreadPoolQueueCapacity": "1"}, false},
		{"bytes", map[string]string{"sendInflightMaxBytes": "1000"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := map[string]string{"flushDiskType": "SYNC_FLUSH", "osPageCacheBusyTimeOutMills": "600000"}
			for k, v := range tc.conf {
				conf[k] = v
			}
			b := startStallBroker(t, conf)
			nc1, r1 := rawConn(t, b.Broker)
			writeFrame(t, nc1, sendReq("OverTopic", make([]byte, 800), 1))
			if r := readResponse(t, nc1, r1); r.Code != wire.Success {
				t.Fatalf("first send: %d %s", r.Code, r.Remark)
			}
			b.stall.Store(true)
			writeFrame(t, nc1, sendReq("OverTopic", make([]byte, 800), 2)) // waits for the stalled fsync
			<-b.entered
			nc2, r2 := nc1, r1
			if !tc.sameConn {
				nc2, r2 = rawConn(t, b.Broker)
			}
			writeFrame(t, nc2, sendReq("OverTopic", make([]byte, 800), 3))
			expectBusy(t, readResponse(t, nc2, r2), 3, "[OVERLOAD]system busy, start flow control for a while")
			if n := b.flow.Rejected(flow.Overload); n != 1 {
				t.Errorf("OVERLOAD counter %d, want 1", n)
			}
			if log := b.flowLog.String(); !strings.Contains(log, "[OVERLOAD]") || !strings.Contains(log, "code=2") {
				t.Errorf("flow log lacks the refusal: %q", log)
			}
			b.stall.Store(false)
		})
	}
}

// TestSendRejectRequestWhileStoreBusy: once the commit-log sync in
// progress has run past osPageCacheBusyTimeOutMills, sends are refused
// [REJECTREQUEST] before their header is even decoded (a send without a
// topic gets the same answer), and the store stays untouched.
func TestSendRejectRequestWhileStoreBusy(t *testing.T) {
	b := startStallBroker(t, map[string]string{"flushDiskType": "SYNC_FLUSH", "osPageCacheBusyTimeOutMills": "50"})
	nc1, r1 := rawConn(t, b.Broker)
	writeFrame(t, nc1, sendReq("BusyTopic", []byte("one"), 1))
	if r := readResponse(t, nc1, r1); r.Code != wire.Success {
		t.Fatalf("first send: %d %s", r.Code, r.Remark)
	}
	b.stall.Store(true)
	writeFrame(t, nc1, sendReq("BusyTopic", []byte("two"), 2))
	<-b.entered
	waitFor(t, func() bool { return b.store.Busy(time.Now()) > 50*time.Millisecond })
	before := b.store.MaxPhyOffset()
	nc2, r2 := rawConn(t, b.Broker)
	writeFrame(t, nc2, sendReq("BusyTopic", []byte("three"), 3))
	expectBusy(t, readResponse(t, nc2, r2), 3, "[REJECTREQUEST]system busy, start flow control for a while")
	broken := wire.NewRequest(wire.SendMessageV2, map[string]string{"a": "PG"}, []byte("four"))
	broken.Opaque = 4
	writeFrame(t, nc2, broken)
	expectBusy(t, readResponse(t, nc2, r2), 4, "[REJECTREQUEST]")
	if after := b.store.MaxPhyOffset(); after != before {
		t.Errorf("refused sends reached the log: %d -> %d", before, after)
	}
	if n := b.flow.Rejected(flow.RejectRequest); n != 2 {
		t.Errorf("REJECTREQUEST counter %d, want 2", n)
	}
	b.stall.Store(false)
}

// stallInAppend makes conn 1's send stall inside the store's append (a
// segment roll whose directory fsync hangs), holding the only append
// slot; it returns a second connection. Its broker runs with one append at a
// time and flushIntervalCommitLog long: a periodic flush of the first
// send's segment would stall first and leave the append slot free.
func stallInAppend(t *testing.T, b *stallBroker) (net.Conn, func() *wire.Command) {
	t.Helper()
	nc1, r1 := rawConn(t, b.Broker)
	writeFrame(t, nc1, sendReq("SlowTopic", make([]byte, 600<<10), 1))
	if r := readResponse(t, nc1, r1); r.Code != wire.Success {
		t.Fatalf("first send: %d %s", r.Code, r.Remark)
	}
	b.stall.Store(true)
	writeFrame(t, nc1, sendReq("SlowTopic", make([]byte, 600<<10), 2)) // rolls to a new 1 MiB segment
	if p := <-b.entered; p != filepath.Join(b.cfg.StorePathRootDir, "commitlog") {
		t.Fatalf("stalled in %s, want the directory sync of a new segment", p)
	}
	nc2, r2 := rawConn(t, b.Broker)
	return nc2, func() *wire.Command { return readResponse(t, nc2, r2) }
}

// TestSendTimeoutCleanQueue: a send that cannot reach the store within
// waitTimeMillsInSendQueue (the append slot is held by a stalled append)
// is answered [TIMEOUT_CLEAN_QUEUE] with its wait and the queue size.
func TestSendTimeoutCleanQueue(t *testing.T) {
	b := startStallBroker(t, map[string]string{"sendMessageThreadPoolNums": "1", "flushIntervalCommitLog": "600000",
		"waitTimeMillsInSendQueue": "100", "osPageCacheBusyTimeOutMills": "600000"})
	nc2, read2 := stallInAppend(t, b)
	writeFrame(t, nc2, sendReq("SlowTopic", []byte("three"), 3))
	r := read2()
	expectBusy(t, r, 3, "[TIMEOUT_CLEAN_QUEUE]broker busy, start flow control for a while, period in queue: ")
	if !strings.HasSuffix(string(r.Remark), "ms, size of queue: 1") {
		t.Errorf("remark %q", r.Remark)
	}
	if n := b.flow.Rejected(flow.TimeoutCleanQueue); n != 1 {
		t.Errorf("TIMEOUT_CLEAN_QUEUE counter %d, want 1", n)
	}
	b.stall.Store(false)
}

// TestSendPCBusyCleanQueue: sends queued for the store are failed
// [PCBUSY_CLEAN_QUEUE] as soon as the append in progress runs past
// osPageCacheBusyTimeOutMills, rather than aging out.
func TestSendPCBusyCleanQueue(t *testing.T) {
	b := startStallBroker(t, map[string]string{"sendMessageThreadPoolNums": "1", "flushIntervalCommitLog": "600000",
		"waitTimeMillsInSendQueue": "600000", "osPageCacheBusyTimeOutMills": "1000"})
	nc2, read2 := stallInAppend(t, b)
	writeFrame(t, nc2, sendReq("SlowTopic", []byte("three"), 3))
	r := read2()
	if strings.HasPrefix(string(r.Remark), "[REJECTREQUEST]") {
		t.Fatalf("the send arrived after the store already counted as busy (the machine stalled for 1 s): %q", r.Remark)
	}
	expectBusy(t, r, 3, "[PCBUSY_CLEAN_QUEUE]broker busy, start flow control for a while, period in queue: ")
	if n := b.flow.Rejected(flow.PCBusyCleanQueue); n != 1 {
		t.Errorf("PCBUSY_CLEAN_QUEUE counter %d, want 1", n)
	}
	b.stall.Store(false)
}

// TestFlowRuntimeInfo: the runtime info (mqadmin brokerStatus, the Zabbix
// probe) carries the send budget and the refusal counters.
func TestFlowRuntimeInfo(t *testing.T) {
	b := startStallBroker(t, map[string]string{"sendThreadPoolQueueCapacity": "77"})
	p := newPeer(t, b.Broker, nil)
	resp := p.call(wire.GetBrokerRuntimeInfo, nil, nil)
	var kv wire.KVTable
	if err := json.Unmarshal(resp.Body, &kv); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"sendThreadPoolQueueCapacity": "77", "flowRejected_OVERLOAD": "0", "flowRejectedTotal": "0", "quotaRejectedTotal": "0"} {
		if kv.Table[k] != want {
			t.Errorf("%s = %q, want %q", k, kv.Table[k], want)
		}
	}
}

// TestTopicQuotaGrpcSend: a topic's produce quota holds for sends through
// the gRPC service and the HTTP gateway too (both go through
// grpcBackend.Send), answered SYSTEM_BUSY [TOPIC_QUOTA] past the longest
// delay, and counted.
func TestTopicQuotaGrpcSend(t *testing.T) {
	b := startStallBroker(t, nil)
	if _, err := b.topics.Put(wire.TopicConfig{TopicName: "QG", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6,
		Attributes: map[string]string{wire.AttrProduceTPS: "1"}}); err != nil {
		t.Fatal(err)
	}
	be := grpcBackend{b.Broker}
	msg := &grpcsvc.Message{Topic: "QG", Body: []byte("q"), Properties: wire.AppendProperty(nil, wire.PropUniqKey, "01ABC"), BornHost: make([]byte, 8)}
	if r := be.Send(msg); r.Code != wire.Success {
		t.Fatalf("first send: %d %s", r.Code, r.Remark)
	}
	// The second within the second would wait 1 s, past the 500 ms limit.
	r := be.Send(msg)
	if r.Code != wire.SystemBusy || r.Remark != "[TOPIC_QUOTA]topic QG exceeds produce quota on broker-a (1 msg/s), start flow control for a while" {
		t.Fatalf("second send: %d %q", r.Code, r.Remark)
	}
	if b.flow.Rejected(flow.TopicQuota) != 1 {
		t.Errorf("TOPIC_QUOTA counter %d", b.flow.Rejected(flow.TopicQuota))
	}
}

// TestQuotaDelayHoldsOnlyItsAnswer: a send delayed by its topic's quota
// holds its own answer and the reading of its connection, not the answers
// of earlier sends on that connection. Pipelined on one connection with
// SYNC_FLUSH: A (no quota), B (a 4 s deficit on QB's byte quota), C (a
// runtime-info request). A's answer arrives while B's hold still pauses
// the connection; C, read only after the hold, is answered after B.
func TestQuotaDelayHoldsOnlyItsAnswer(t *testing.T) {
	b := startStallBroker(t, map[string]string{"flushDiskType": "SYNC_FLUSH", "topicQuotaMaxDelayMills": "20000"})
	for _, tc := range []wire.TopicConfig{
		{TopicName: "QA", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6},
		{TopicName: "QB", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6, Attributes: map[string]string{wire.AttrProduceBPS: "100"}},
	} {
		if _, err := b.topics.Put(tc); err != nil {
			t.Fatal(err)
		}
	}
	nc, r := rawConn(t, b.Broker)
	c := wire.NewRequest(wire.GetBrokerRuntimeInfo, nil, nil)
	c.Opaque = 3
	var frames []byte
	for _, req := range []*wire.Command{sendReq("QA", []byte("a"), 1), sendReq("QB", make([]byte, 500), 2), c} {
		frames = wire.AppendFrame(frames, req)
	}
	if _, err := nc.Write(frames); err != nil {
		t.Fatal(err)
	}
	if resp := readResponse(t, nc, r); resp.Opaque != 1 || resp.Code != wire.Success {
		t.Fatalf("first answer: opaque %d code %d %s, want A's success", resp.Opaque, resp.Code, resp.Remark)
	}
	if st := b.srv.Stats(); st.Paused != 1 {
		t.Fatalf("when A's answer arrived the connection was not paused for B: %+v", st)
	}
	for _, op := range []int32{2, 3} {
		if resp := readResponse(t, nc, r); resp.Opaque != op || resp.Code != wire.Success {
			t.Fatalf("answer opaque %d code %d %s, want %d's success", resp.Opaque, resp.Code, resp.Remark, op)
		}
	}
	if st := b.srv.Stats(); st.Paused != 0 || st.PausedTotal != 1 {
		t.Fatalf("after the hold: %+v", st)
	}
	var kv wire.KVTable
	p := newPeer(t, b.Broker, nil)
	if err := json.Unmarshal(p.call(wire.GetBrokerRuntimeInfo, nil, nil).Body, &kv); err != nil {
		t.Fatal(err)
	}
	if kv.Table["quotaThrottledTotal_QB"] != "1" || kv.Table["connectionPausedTotal"] != "1" {
		t.Errorf("runtime info: quotaThrottledTotal_QB %q, connectionPausedTotal %q", kv.Table["quotaThrottledTotal_QB"], kv.Table["connectionPausedTotal"])
	}
}
