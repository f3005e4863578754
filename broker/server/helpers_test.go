package server

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/config"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
	"golang.org/x/sys/unix"
)

// peer is one client process talking to an in-process broker over one
// remoting connection. Requests the broker sends it (notifications,
// transaction checks, forwarded admin calls) go to calls; answer, when
// set, returns the response to send (nil: none).
type peer struct {
	t      *testing.T
	addr   string
	cl     *remoting.Client
	calls  chan *wire.Command
	answer func(req *wire.Command) *wire.Command
}

func newPeer(t *testing.T, b *Broker, answer func(req *wire.Command) *wire.Command) *peer {
	t.Helper()
	p := &peer{t: t, addr: b.srv.Addr().String(), calls: make(chan *wire.Command, 64), answer: answer}
	p.cl = remoting.NewClient(remoting.HandlerFunc(func(c *remoting.Conn, req *wire.Command) {
		req = req.Clone()
		p.calls <- req
		if p.answer != nil {
			if resp := p.answer(req); resp != nil {
				c.Reply(req, resp)
			}
		}
	}), slog.New(slog.DiscardHandler))
	t.Cleanup(p.cl.Close)
	return p
}

// call sends a request and waits for its answer.
func (p *peer) call(code int32, fields map[string]string, body []byte) *wire.Command {
	p.t.Helper()
	return p.invoke(wire.NewRequest(code, fields, body))
}

func (p *peer) invoke(req *wire.Command) *wire.Command {
	p.t.Helper()
	resp, err := p.cl.Invoke(p.addr, req, waitTimeout)
	if err != nil {
		p.t.Fatalf("request %d: %v", req.Code, err)
	}
	return resp
}

// expect calls and requires a response code and a remark containing remark.
func (p *peer) expect(want int32, remark string, code int32, fields map[string]string, body []byte) *wire.Command {
	p.t.Helper()
	resp := p.call(code, fields, body)
	if resp.Code != want || !strings.Contains(string(resp.Remark), remark) {
		p.t.Fatalf("request %d answered %s %q, want %s containing %q", code, wire.ResponseName(resp.Code), resp.Remark, wire.ResponseName(want), remark)
	}
	return resp
}

// nextCall waits for a request from the broker.
func (p *peer) nextCall(what string) *wire.Command {
	p.t.Helper()
	select {
	case req := <-p.calls:
		return req
	case <-time.After(waitTimeout):
		p.t.Fatalf("no %s from the broker", what)
		return nil
	}
}

// heartbeat registers the peer as client id with a consumer group (when
// group is set) subscribed to topics, and a producer group (when set).
func (p *peer) heartbeat(clientID, group, producerGroup string, subs map[string]string) {
	p.t.Helper()
	hb := wire.HeartbeatData{ClientID: clientID, ConsumerDataSet: []wire.ConsumerData{}, ProducerDataSet: []wire.ProducerData{}}
	if group != "" {
		cd := wire.ConsumerData{GroupName: group, ConsumeType: "CONSUME_PASSIVELY", MessageModel: "CLUSTERING", ConsumeFromWhere: "CONSUME_FROM_LAST_OFFSET"}
		for topic, expr := range subs {
			cd.SubscriptionDataSet = append(cd.SubscriptionDataSet, wire.SubscriptionData{Topic: topic, SubString: expr, ExpressionType: "TAG", SubVersion: 1})
		}
		hb.ConsumerDataSet = append(hb.ConsumerDataSet, cd)
	}
	if producerGroup != "" {
		hb.ProducerDataSet = append(hb.ProducerDataSet, wire.ProducerData{GroupName: producerGroup})
	}
	p.expect(wire.Success, "", wire.HeartBeat, nil, wire.Marshal(hb))
}

// createTopic creates a topic with n read and write queues.
func (p *peer) createTopic(topic string, n int) {
	p.t.Helper()
	p.expect(wire.Success, "", wire.UpdateAndCreateTopic, map[string]string{
		"topic": topic, "readQueueNums": strconv.Itoa(n), "writeQueueNums": strconv.Itoa(n), "perm": "6", "topicFilterType": "SINGLE_TAG",
	}, nil)
}

// sendFields is a SEND_MESSAGE_V2 header with the given properties.
func sendFields(topic string, queue int, props string) map[string]string {
	return map[string]string{
		"a": "PG", "b": topic, "c": "TBW102", "d": "4", "e": strconv.Itoa(queue), "f": "0",
		"g": strconv.FormatInt(time.Now().UnixMilli(), 10), "h": "0", "i": props, "j": "0", "k": "false",
	}
}

// send stores one message and returns its queue offset.
func (p *peer) send(topic string, queue int, props string, body string) int64 {
	p.t.Helper()
	resp := p.expect(wire.Success, "", wire.SendMessageV2, sendFields(topic, queue, props), []byte(body))
	off, ok := resp.GetInt("queueOffset")
	if !ok {
		p.t.Fatalf("send answer without queueOffset: %v", resp.Fields())
	}
	return off
}

// pullFields is a PULL_MESSAGE header using the heartbeat's subscription.
func pullFields(group, topic string, queue int, offset int64, suspend time.Duration) map[string]string {
	return map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(queue), "queueOffset": strconv.FormatInt(offset, 10),
		"maxMsgNums": "32", "sysFlag": strconv.Itoa(pullSuspend), "commitOffset": "0",
		"suspendTimeoutMillis": strconv.FormatInt(suspend.Milliseconds(), 10), "subVersion": "0",
	}
}

// records splits a pull answer's body into stored records.
func records(t testing.TB, body []byte) []wire.RecordView {
	t.Helper()
	var out []wire.RecordView
	for p := 0; p < len(body); {
		v := wire.RecordView(body[p:])
		n := int(v.TotalSize())
		if n <= 0 || n > len(body)-p {
			t.Fatalf("pull body: bad record size %d at %d of %d", n, p, len(body))
		}
		out = append(out, wire.RecordView(body[p:p+n]))
		p += n
	}
	return out
}

// startBroker runs a broker in this process with no name server, closed
// when the test ends. opts adjust its Options (fault hooks, ACL, logs)
// once Config is set.
func startBroker(tb testing.TB, overrides map[string]string, opts ...func(*Options)) *Broker {
	tb.Helper()
	return startBrokerIn(tb, tb.TempDir(), overrides, opts...)
}

// startBrokerIn is startBroker on store directory dir.
func startBrokerIn(tb testing.TB, dir string, overrides map[string]string, opts ...func(*Options)) *Broker {
	tb.Helper()
	b := openBroker(tb, dir, overrides, opts...)
	b.Start()
	tb.Cleanup(func() { _ = b.Close() })
	return b
}

// openBroker opens a broker in this process with no name server on store
// directory dir and a random port; the caller starts and closes it.
func openBroker(tb testing.TB, dir string, overrides map[string]string, opts ...func(*Options)) *Broker {
	tb.Helper()
	o := map[string]string{
		"listenPort": "0", "brokerIP1": "127.0.0.1", "namesrvAddr": "",
		"storePathRootDir": dir, "logDir": dir + "/logs", "mappedFileSizeCommitLog": strconv.Itoa(64 << 20),
		"maxHashSlotNum": "10000", "maxIndexNum": "40000",
	}
	for k, v := range overrides {
		o[k] = v
	}
	cfg, _, err := config.LoadBroker("", o)
	if err != nil {
		tb.Fatal(err)
	}
	o2 := Options{Config: cfg, Log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o2)
	}
	b, err := New(o2)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// failCommitLogFsync is an Options hook failing the first commit-log
// fsync (EIO) of a broker on store directory dir after armed is set.
func failCommitLogFsync(dir string, armed *atomic.Bool) func(*Options) {
	clog := commitLogDir(dir)
	return func(o *Options) {
		o.fsyncFault = func(path string) error {
			if strings.HasPrefix(path, clog) && armed.CompareAndSwap(true, false) {
				return unix.EIO
			}
			return nil
		}
	}
}

// commitLogDir is the commit-log directory of store directory dir, with
// its trailing separator.
func commitLogDir(dir string) string {
	return filepath.Join(dir, "commitlog") + string(filepath.Separator)
}

// sendBench sends frame to br on a new connection once (the first send
// may create the topic: kept out of the measurement), then b.N times
// pipelined.
func sendBench(b *testing.B, br *Broker, frame []byte) {
	b.Helper()
	conn, _ := rawConn(b, br)
	roundTrip(b, conn, frame)
	pipeline(b, conn, frame, 1024)
}

// atMostOneAlloc runs bench and fails t when what (the op: a message, a
// request) allocates more than once.
func atMostOneAlloc(t *testing.T, what string, bench func(*testing.B)) {
	t.Helper()
	// testing.Benchmark counts the whole process's allocations: on a loaded
	// machine an op can take milliseconds (CI saw 12 ms), and the broker's
	// timers allocate meanwhile. That noise only adds, so the fewest of
	// three runs is the path's own figure; a path that allocates shows it
	// in every run.
	var best int64 = -1
	for i := 0; i < 3; i++ {
		res := testing.Benchmark(bench)
		if res.N == 0 {
			t.Fatal("benchmark did not run")
		}
		t.Logf("%s: %s, %d allocs/op", what, res, res.AllocsPerOp())
		if a := res.AllocsPerOp(); best < 0 || a < best {
			best = a
		}
		if best <= 1 {
			return
		}
	}
	t.Fatalf("%s allocates %d times", what, best)
}

// rawConn is a plain TCP connection to the broker for frame-level tests.
func rawConn(t testing.TB, b *Broker) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", b.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return nc, bufio.NewReader(nc)
}

func writeFrame(t testing.TB, nc net.Conn, cmd *wire.Command) {
	t.Helper()
	if _, err := nc.Write(wire.AppendFrame(nil, cmd)); err != nil {
		t.Fatal(err)
	}
}

// readResponse reads frames until a response, skipping the broker's own
// requests.
func readResponse(t testing.TB, nc net.Conn, r *bufio.Reader) *wire.Command {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(waitTimeout))
	for {
		cmd, err := wire.ReadCommand(r)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if cmd.IsResponse() {
			return cmd
		}
	}
}

// consumerIDs asks the broker for a group's client ids; nil when none.
func (p *peer) consumerIDs(group string) []string {
	p.t.Helper()
	resp := p.call(wire.GetConsumerListByGroup, map[string]string{"consumerGroup": group}, nil)
	if resp.Code != wire.Success {
		return nil
	}
	var body wire.ConsumerListBody
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		p.t.Fatalf("consumer list %q: %v", resp.Body, err)
	}
	return body.ConsumerIDList
}

// projectGoroutines lists goroutines running this module's code, other
// than test goroutines.
func projectGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "testing.tRunner") {
			continue
		}
		for _, line := range strings.Split(g, "\n") {
			if !strings.HasPrefix(line, "created by") && strings.Contains(line, "github.com/mqops/mqops/") && !strings.Contains(line, "_test.") {
				out = append(out, g)
				break
			}
		}
	}
	return strings.Join(out, "\n\n")
}
