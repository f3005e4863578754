package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/zabbix/probe"
)

// procStatus reads the kB figures of /proc/<pid>/status.
func procStatus(t *testing.T, pid int) map[string]int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
			out[k] = n << 10
		}
	}
	return out
}

// TestSendSaturationShedsLoad (§B.7.3 of the design): 64 goroutines flood
// a broker with a small send budget through v2.1.2's SendAsync (64 KiB
// bodies, 20 000 messages, SYNC_FLUSH so that stored sends wait for their
// group commit and stay in flight). Every callback gets SEND_OK or
// CODE: 2; the broker counts refusals (else the load did not saturate
// it and the test proves nothing); its memory stays bounded; afterwards a
// SendSync succeeds.
//
// The bound is on VmHWM, which also counts the commit log's mapped pages
// (RssFile, logged with the sampled anonymous peak to tell the two apart).
//
// It runs on the plain build only (needNoRace): besides its RSS bound, a
// race-built broker on a loaded CI machine can leave a SYNC_FLUSH send
// unanswered past v2.1.2's fixed 3 s async timeout, and v2.1.2 then
// dereferences the missing response (internal/client.go
// ProcessSendResponse) and kills the whole test binary.
func TestSendSaturationShedsLoad(t *testing.T) {
	needNoRace(t)
	const budget = 4 << 20
	// syncFlushTimeout below v2.1.2's 3 s async timeout: on a CI machine
	// whose disk other jobs load, a slow fsync is answered
	// FLUSH_DISK_TIMEOUT instead of leaving v2.1.2 to time out and panic.
	c := startCluster(t, "flushDiskType=SYNC_FLUSH", "syncFlushTimeout=2000", "sendThreadPoolQueueCapacity=32",
		fmt.Sprintf("sendInflightMaxBytes=%d", budget), "sendInflightPerConnection=64")
	pid := c.broker.cmd.Process.Pid
	cli(t, c.ns.addr, "updateTopic", "-b", c.broker.addr, "-t", "FloodTopic")
	p := newProducer(t, c.ns.addr, producer.WithSendMsgTimeout(10*time.Second))
	if _, err := p.SendSync(context.Background(), primitive.NewMessage("FloodTopic", []byte("warm-up"))); err != nil {
		t.Fatalf("warm-up send: %v", err)
	}
	base := procStatus(t, pid)

	var peakAnon atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if st := procStatus(t, pid); st["RssAnon"] > peakAnon.Load() {
				peakAnon.Store(st["RssAnon"])
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()

	const total, workers = 20000, 64
	body := make([]byte, 64<<10)
	var ok, busy, slowDisk, next atomic.Int64
	var mu sync.Mutex
	var others []string
	var wg, callbacks sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= total {
				callbacks.Add(1)
				var once sync.Once // v2.1.2 may call back twice on a transport error
				err := p.SendAsync(context.Background(), func(_ context.Context, r *primitive.SendResult, err error) {
					once.Do(func() {
						defer callbacks.Done()
						switch {
						case err == nil && r != nil && r.Status == primitive.SendOK:
							ok.Add(1)
						case err != nil && strings.Contains(err.Error(), "CODE: 2,"):
							busy.Add(1)
						case err == nil && r != nil && r.Status == primitive.SendFlushDiskTimeout:
							slowDisk.Add(1) // stored, not yet durable: the disk, not the budget
						default:
							mu.Lock()
							others = append(others, fmt.Sprintf("result %v, error %v", r, err))
							mu.Unlock()
						}
					})
				}, primitive.NewMessage("FloodTopic", body))
				if err != nil {
					once.Do(callbacks.Done)
					mu.Lock()
					others = append(others, "SendAsync: "+err.Error())
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	waitCallbacks := make(chan struct{})
	go func() { callbacks.Wait(); close(waitCallbacks) }()
	select {
	case <-waitCallbacks:
	case <-time.After(2 * time.Minute):
		t.Fatalf("callbacks missing after 2 min: %d OK, %d busy", ok.Load(), busy.Load())
	}
	close(stopSampling)
	<-sampled
	end := procStatus(t, pid)

	st := brokerStatus(t, c.ns.addr, c.broker.addr)
	t.Logf("%d SEND_OK, %d CODE: 2, %d FLUSH_DISK_TIMEOUT, %d other; broker flowRejectedTotal %s (OVERLOAD %s, TIMEOUT_CLEAN_QUEUE %s, REJECTREQUEST %s, PCBUSY_CLEAN_QUEUE %s)",
		ok.Load(), busy.Load(), slowDisk.Load(), len(others), st["flowRejectedTotal"], st["flowRejected_OVERLOAD"], st["flowRejected_TIMEOUT_CLEAN_QUEUE"],
		st["flowRejected_REJECTREQUEST"], st["flowRejected_PCBUSY_CLEAN_QUEUE"])
	t.Logf("broker memory: RssAnon %d MiB before, peak %d MiB sampled; VmHWM %d MiB (RssFile %d MiB: mapped commit log)",
		base["RssAnon"]>>20, peakAnon.Load()>>20, end["VmHWM"]>>20, end["RssFile"]>>20)
	if len(others) > 0 {
		t.Errorf("%d callbacks neither SEND_OK nor CODE: 2, e.g. %s", len(others), others[0])
	}
	if rejected, _ := strconv.ParseInt(st["flowRejectedTotal"], 10, 64); rejected == 0 || busy.Load() == 0 {
		t.Fatalf("inconclusive: the flood did not saturate the send budget (broker refusals %q, client CODE: 2 %d)", st["flowRejectedTotal"], busy.Load())
	}
	limit := int64(budget + 64<<20)
	if raceBuilt(t) {
		// The race detector's shadow memory is a multiple of the heap
		// (measured: 65 MiB anonymous at rest, VmHWM 99 MiB after the flood).
		limit = base["VmRSS"] + 2*limit
	}
	if hwm := end["VmHWM"]; hwm > limit {
		t.Errorf("broker peak RSS (VmHWM) %d MiB, over the bound of %d MiB (budget + 64 MiB)", hwm>>20, limit>>20)
	}
	if _, err := p.SendSync(context.Background(), primitive.NewMessage("FloodTopic", []byte("after the flood"))); err != nil {
		t.Fatalf("SendSync after the flood: %v", err)
	}
	logPath := filepath.Join(string(c.dir), "logs", "flowcontrol.log")
	data, err := os.ReadFile(logPath)
	if err != nil || !strings.Contains(string(data), "[FLOW] [") || !strings.Contains(string(data), "code=2") {
		t.Errorf("%s: %v\n%s", logPath, err, data)
	} else {
		first, _, _ := strings.Cut(string(data), "\n")
		t.Logf("flowcontrol.log: %d lines for %d refusals, the first: %s", strings.Count(string(data), "\n"), busy.Load(), first)
	}
}

// sendLoop sends SendSync to topic from p until stop, counting answers.
type sendCounts struct {
	ok, quota atomic.Int64
	mu        sync.Mutex
	others    []string
}

// sendLoop sends to topic until the deadline, counting successes and
// code-2 refusals carrying tag ([TOPIC_QUOTA], [ACCOUNT_QUOTA]).
func sendLoop(p interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
}, topic, tag string, until time.Time, n *sendCounts) {
	for time.Now().Before(until) {
		r, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("quota")))
		switch {
		case err == nil && r.Status == primitive.SendOK:
			n.ok.Add(1)
		case err != nil && strings.Contains(err.Error(), "CODE: 2,") && strings.Contains(err.Error(), tag):
			n.quota.Add(1)
		default:
			n.mu.Lock()
			n.others = append(n.others, fmt.Sprintf("%s: result %v, error %v", topic, r, err))
			n.mu.Unlock()
		}
	}
}

// TestTopicProduceQuota (§B.7.4): +produce.tps=200 on TopicQ. Eight sync
// producers hammer it, four more an unlimited topic, for about 3 s. The
// messages TopicQ accepted stay under the quota's upper bound (one second
// of burst plus the rate over the elapsed time, 10 % slack, and one
// in-flight send per producer); at least one send was delayed or refused
// [TOPIC_QUOTA]; the other topic never saw code 2. mqadmin shows the
// quota.
func TestTopicProduceQuota(t *testing.T) {
	c := startCluster(t)
	cli(t, c.ns.addr, "updateTopic", "-b", c.broker.addr, "-t", "TopicQ", "-a", "+produce.tps=200")
	cli(t, c.ns.addr, "updateTopic", "-b", c.broker.addr, "-t", "TopicF")
	if out := cli(t, c.ns.addr, "topic", "status", "-t", "TopicQ"); !strings.Contains(out, "200 msg/s") {
		t.Errorf("topic status does not show the quota:\n%s", out)
	}
	var route struct {
		ProduceQuotas       map[string]string `json:"produceQuotas"`
		ClusterProduceQuota string            `json:"clusterProduceQuota"`
	}
	cliJSON(t, c.ns.addr, &route, "topic", "route", "-t", "TopicQ")
	if route.ClusterProduceQuota != "200 msg/s" {
		t.Errorf("topic route: %+v", route)
	}

	var q, f sendCounts
	var wg sync.WaitGroup
	prods := map[string]int{"TopicQ": 8, "TopicF": 4}
	ps := map[string][]interface {
		SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
	}{}
	for topic, n := range prods {
		for range n {
			p := newProducer(t, c.ns.addr, producer.WithRetry(0))
			// Route and connection before the clock starts.
			if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("warm-up"))); err != nil && topic == "TopicF" {
				t.Fatalf("warm-up: %v", err)
			}
			ps[topic] = append(ps[topic], p)
		}
	}
	before := brokerStatus(t, c.ns.addr, c.broker.addr)
	start := time.Now()
	until := start.Add(3 * time.Second)
	for topic, list := range ps {
		counts := &q
		if topic == "TopicF" {
			counts = &f
		}
		for _, p := range list {
			wg.Add(1)
			go func() { defer wg.Done(); sendLoop(p, topic, "[TOPIC_QUOTA]", until, counts) }()
		}
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	after := brokerStatus(t, c.ns.addr, c.broker.addr)
	delta := func(k string) int64 {
		a, _ := strconv.ParseInt(after[k], 10, 64)
		b, _ := strconv.ParseInt(before[k], 10, 64)
		return a - b
	}
	bound := 200 + 200*elapsed*1.1 + 16
	t.Logf("TopicQ: %d accepted, %d [TOPIC_QUOTA] in %.2fs (bound %.0f); TopicF: %d accepted; broker: %d delayed (%d ms in all), %d refused",
		q.ok.Load(), q.quota.Load(), elapsed, bound, f.ok.Load(), delta("quotaThrottledTotal_TopicQ"), delta("quotaDelayMsSum_TopicQ"), delta("quotaRejectedTotal_TopicQ"))
	if float64(q.ok.Load()) > bound {
		t.Errorf("TopicQ accepted %d messages in %.2fs, over the quota's bound %.0f", q.ok.Load(), elapsed, bound)
	}
	if delta("quotaThrottledTotal_TopicQ")+q.quota.Load() == 0 {
		t.Errorf("no send to TopicQ was delayed or refused")
	}
	for _, list := range [][]string{q.others, f.others} {
		if len(list) > 0 {
			t.Errorf("%d unexpected answers, e.g. %s", len(list), list[0])
		}
	}
	if f.ok.Load() == 0 {
		t.Errorf("TopicF accepted nothing")
	}
}

// TestTopicProduceQuotaUpdate: a quota is refused past its longest delay
// with [TOPIC_QUOTA]; raising it with mqadmin updateTopic takes effect at
// once, without a restart, and survives one.
func TestTopicProduceQuotaUpdate(t *testing.T) {
	c := startCluster(t)
	cli(t, c.ns.addr, "updateTopic", "-b", c.broker.addr, "-t", "TopicR", "-a", "+produce.tps=1")
	p := newProducer(t, c.ns.addr, producer.WithRetry(0))
	// One token a second, and a second send would wait 1 s, beyond
	// topicQuotaMaxDelayMills (500): refused at once.
	var refusal error
	for i := 0; i < 20 && refusal == nil; i++ {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage("TopicR", []byte("slow"))); err != nil {
			refusal = err
		}
	}
	if refusal == nil || !strings.Contains(refusal.Error(), "CODE: 2,") ||
		!strings.Contains(refusal.Error(), "[TOPIC_QUOTA]topic TopicR exceeds produce quota on broker-a (1 msg/s), start flow control for a while") {
		t.Fatalf("want a [TOPIC_QUOTA] refusal, got %v", refusal)
	}
	// Zabbix sees the refusal under the topic (a per-topic trigger).
	var st probe.BrokerStatus
	mqopsZbx(t, &st, "broker", "--addr", c.broker.addr, "--namesrv", c.ns.addr)
	if st.QuotaRejectedByTopic["TopicR"] < 1 || st.QuotaRejected < st.QuotaRejectedByTopic["TopicR"] {
		t.Errorf("mqops-zbx broker: quota rejections %d, by topic %v", st.QuotaRejected, st.QuotaRejectedByTopic)
	}
	cli(t, c.ns.addr, "updateTopic", "-b", c.broker.addr, "-t", "TopicR", "-a", "+produce.tps=100000")
	for i := range 50 {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage("TopicR", []byte("fast"))); err != nil {
			t.Fatalf("send %d after raising the quota: %v", i, err)
		}
	}
	c.broker.stop()
	c.broker = restartBroker(t, c)
	var route struct {
		ProduceQuotas map[string]string `json:"produceQuotas"`
	}
	cliJSON(t, c.ns.addr, &route, "topic", "route", "-t", "TopicR")
	if route.ProduceQuotas["broker-a"] != "100000 msg/s" {
		t.Errorf("after a restart: %+v", route)
	}
}

// aclRuntime is the broker's runtime info, asked as the admin account.
func aclRuntime(t *testing.T, c *aclCluster) map[string]string {
	t.Helper()
	resp := aclCall(t, c.broker.addr, aclAdmin, wire.GetBrokerRuntimeInfo, nil, nil)
	var kv wire.KVTable
	if err := json.Unmarshal(resp.Body, &kv); resp.Code != wire.Success || err != nil {
		t.Fatalf("runtime info: %d %s %v", resp.Code, resp.Remark, err)
	}
	return kv.Table
}

// accountQuotaRules are the ACL test accounts with producerA allowed on
// TopicA and TopicB under produceTps tps.
func accountQuotaRules(tps int) string {
	return fmt.Sprintf("accounts:\n- accessKey: producerA\n  secretKey: secretProdA\n  produceTps: %d\n  topicPerms:\n  - TopicA=PUB\n  - TopicB=PUB\n", tps) + aclRulesTail
}

// TestAccountProduceQuota: an ACL account's produceTps, with the real
// v2.1.2 producer. At 1 msg/s a send that would wait past
// topicQuotaMaxDelayMills is refused with code 2 and a remark naming the
// account, which Zabbix counts; editing the file to 100 msg/s takes
// effect without a restart; then eight sync producers signing as that
// account, over two topics without a topic quota, for about 3 s, get no
// more accepted than the quota's upper bound (one second of burst plus
// the rate over the elapsed time, 10 % slack, one in-flight send per
// producer), and clearly more than the old rate allowed.
func TestAccountProduceQuota(t *testing.T) {
	c := startACLCluster(t, accountQuotaRules(1))
	aclCreateTopic(t, c, "TopicA")
	aclCreateTopic(t, c, "TopicB")
	waitFor(t, 30*time.Second, "routes", func() bool { return routed(t, c, "TopicA") && routed(t, c, "TopicB") })

	p := newProducer(t, c.ns.addr, producer.WithCredentials(aclProducer), producer.WithRetry(0))
	var refusal error
	for i := 0; i < 20 && refusal == nil; i++ {
		refusal = aclSend(p, "TopicA", "slow")
	}
	want := "[ACCOUNT_QUOTA]accessKey producerA exceeds produce quota on broker-a (1 msg/s), start flow control for a while"
	if refusal == nil || !strings.Contains(refusal.Error(), "CODE: 2,") || !strings.Contains(refusal.Error(), want) {
		t.Fatalf("want a code 2 %q refusal, got %v", want, refusal)
	}
	if st, out := aclProbe(t, c, "MQADMIN_ACCESS_KEY="+aclAdmin.AccessKey, "MQADMIN_SECRET_KEY="+aclAdmin.SecretKey); st.AccountQuotaRejected < 1 ||
		st.AccountQuotaRejectedByAccount["producerA"] != st.AccountQuotaRejected || st.FlowRejectedByTag["ACCOUNT_QUOTA"] < 1 {
		t.Errorf("mqops-zbx broker: account quota rejections %d, by account %v, by tag %v\n%s", st.AccountQuotaRejected, st.AccountQuotaRejectedByAccount, st.FlowRejectedByTag, out)
	}

	// Raised in the file, no restart: five sends in a row pass.
	writeRules(t, c.rules, accountQuotaRules(100))
	waitFor(t, 20*time.Second, "the raised quota", func() bool {
		for range 5 {
			if aclSend(p, "TopicA", "fast") != nil {
				return false
			}
		}
		return true
	})

	var n sendCounts
	var ps []interface {
		SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
	}
	topics := []string{"TopicA", "TopicB"}
	for i := range 8 {
		q := newProducer(t, c.ns.addr, producer.WithCredentials(aclProducer), producer.WithRetry(0))
		// Route and connection before the clock starts.
		_ = aclSend(q, topics[i%2], "warm-up")
		ps = append(ps, q)
	}
	before := aclRuntime(t, c)
	start := time.Now()
	until := start.Add(3 * time.Second)
	var wg sync.WaitGroup
	for i, q := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); sendLoop(q, topics[i%2], "[ACCOUNT_QUOTA]", until, &n) }()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	after := aclRuntime(t, c)
	delta := func(k string) int64 {
		a, _ := strconv.ParseInt(after[k], 10, 64)
		b, _ := strconv.ParseInt(before[k], 10, 64)
		return a - b
	}
	bound := 100 + 100*elapsed*1.1 + 8
	t.Logf("producerA: %d accepted (%.0f msg/s), %d [ACCOUNT_QUOTA] in %.2fs (bound %.0f); broker: %d delayed (%d ms in all), %d refused",
		n.ok.Load(), float64(n.ok.Load())/elapsed, n.quota.Load(), elapsed, bound, delta("accountQuotaThrottledTotal_producerA"),
		delta("accountQuotaDelayMsSum_producerA"), delta("accountQuotaRejectedTotal_producerA"))
	if float64(n.ok.Load()) > bound {
		t.Errorf("producerA got %d messages accepted in %.2fs, over the quota's bound %.0f", n.ok.Load(), elapsed, bound)
	}
	if float64(n.ok.Load()) <= 1+1*elapsed*1.1+8 {
		t.Errorf("producerA got only %d messages accepted in %.2fs: the raised quota is not in force", n.ok.Load(), elapsed)
	}
	if delta("accountQuotaThrottledTotal_producerA")+n.quota.Load() == 0 {
		t.Errorf("no send of producerA was delayed or refused")
	}
	if len(n.others) > 0 {
		t.Errorf("%d unexpected answers, e.g. %s", len(n.others), n.others[0])
	}
}

// TestWaterMarkLog: mqbroker writes watermark.log with Java's four
// [WATERMARK] lines (BrokerController.printWaterMark) every second.
func TestWaterMarkLog(t *testing.T) {
	c := startCluster(t)
	path := filepath.Join(string(c.dir), "logs", "watermark.log")
	var data []byte
	waitFor(t, 30*time.Second, "two seconds of watermark.log", func() bool {
		data, _ = os.ReadFile(path)
		return strings.Count(string(data), "[WATERMARK] Transaction Queue Size: ") >= 2
	})
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for i, queue := range []string{"Send", "Pull", "Query", "Transaction"} {
		line := lines[i]
		_, msg, ok := strings.Cut(line, " - ")
		if _, err := time.Parse("2006-01-02 15:04:05 -0700", strings.TrimSuffix(line, " - "+msg)); !ok || err != nil ||
			!strings.HasPrefix(msg, "[WATERMARK] "+queue+" Queue Size: ") || !strings.Contains(msg, " SlowTimeMills: ") {
			t.Errorf("line %d %q: want <time> - [WATERMARK] %s Queue Size: N SlowTimeMills: N (%v)", i, line, queue, err)
		}
	}
}
