// Command loadclient is the application the Ansible scenarios keep running
// while they restart or replace brokers: an unchanged rocketmq-client-go
// v2.1.2 producer and push consumer, as a user's service would run them.
//
//	loadclient -dir DIR -topic T -group G (-n "ip:port;…" | -domain URL) [-rate N]
//
// The producer sends synchronously (two retries, as the client defaults)
// at about -rate messages a second and appends every acknowledged message
// to DIR/acked (id, broker name and ack time in Unix ms: the file is
// written about once a second, so a scenario dates an ack by its field,
// not by when its line appears) and every send that failed after the
// client's retries to DIR/failed. The push consumer (clustering, from the first offset)
// appends every message id it receives to DIR/received. Creating DIR/stop
// stops the producer; the consumer then keeps running until it has
// received every acknowledged message or -drain passes, and the client
// writes DIR/summary.json and exits 0 (1 when messages are missing), so
// the scenario's checks read one file.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
)

// Summary is DIR/summary.json.
type Summary struct {
	Acked     int            `json:"acked"`
	Failed    int            `json:"failed"`
	Received  int            `json:"received"` // distinct acknowledged ids received
	Dups      int            `json:"duplicates"`
	PerBroker map[string]int `json:"ackedPerBroker"`
	Missing   []string       `json:"missing,omitempty"`
}

// ledger is the client's record of what it sent and received, mirrored to
// files as it goes so that a scenario can watch progress.
type ledger struct {
	mu        sync.Mutex
	acked     map[string]bool
	received  map[string]int
	failed    int
	perBroker map[string]int
	ackedF    *bufio.Writer
	recvF     *bufio.Writer
	failF     *bufio.Writer
	files     []*os.File
}

func openLedger(dir string) (*ledger, error) {
	l := &ledger{acked: map[string]bool{}, received: map[string]int{}, perBroker: map[string]int{}}
	for _, x := range []struct {
		name string
		w    **bufio.Writer
	}{{"acked", &l.ackedF}, {"received", &l.recvF}, {"failed", &l.failF}} {
		f, err := os.OpenFile(filepath.Join(dir, x.name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open ledger: %w", err)
		}
		l.files = append(l.files, f)
		*x.w = bufio.NewWriter(f)
	}
	return l, nil
}

func (l *ledger) ack(id, broker string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked[id] = true
	l.perBroker[broker]++
	fmt.Fprintf(l.ackedF, "%s %s %d\n", id, broker, time.Now().UnixMilli())
}

func (l *ledger) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed++
	fmt.Fprintf(l.failF, "%s %s\n", time.Now().Format("15:04:05.000"), strings.ReplaceAll(err.Error(), "\n", " "))
}

func (l *ledger) receive(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.received[id]++
	fmt.Fprintln(l.recvF, id)
}

// missing lists acknowledged ids not received yet.
func (l *ledger) missing() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for id := range l.acked {
		if l.received[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

func (l *ledger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range []*bufio.Writer{l.ackedF, l.recvF, l.failF} {
		_ = w.Flush()
	}
}

func (l *ledger) summary() Summary {
	miss := l.missing()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Summary{Acked: len(l.acked), Failed: l.failed, PerBroker: l.perBroker, Missing: miss}
	for id, n := range l.received {
		if l.acked[id] {
			s.Received++
		}
		if n > 1 {
			s.Dups += n - 1
		}
	}
	return s
}

func main() {
	dir := flag.String("dir", "", "directory for acked, received, failed, summary.json and the stop file")
	topic := flag.String("topic", "", "topic to send to and consume")
	group := flag.String("group", "", "consumer group")
	ns := flag.String("n", "", "name servers, ip:port;ip:port")
	domain := flag.String("domain", "", "name-server address endpoint URL, polled by the client (instead of -n)")
	rate := flag.Int("rate", 100, "messages a second")
	drain := flag.Duration("drain", 2*time.Minute, "how long the consumer may take to catch up after the stop file")
	flag.Parse()
	if *dir == "" || *topic == "" || *group == "" || (*ns == "") == (*domain == "") {
		fmt.Fprintln(os.Stderr, "loadclient: -dir, -topic, -group and one of -n or -domain are required")
		os.Exit(2)
	}
	if err := run(*dir, *topic, *group, *ns, *domain, *rate, *drain); err != nil {
		fmt.Fprintln(os.Stderr, "loadclient:", err)
		os.Exit(1)
	}
}

func run(dir, topic, group, ns, domain string, rate int, drain time.Duration) error {
	if err := rlog.SetOutputPath(filepath.Join(dir, "client.log")); err != nil {
		return fmt.Errorf("client log: %w", err)
	}
	rlog.SetLogLevel("warn")
	l, err := openLedger(dir)
	if err != nil {
		return err
	}
	defer func() {
		for _, f := range l.files {
			_ = f.Close()
		}
	}()

	popts := []producer.Option{producer.WithGroupName(group + "_P"), producer.WithRetry(2),
		producer.WithInstanceName("loadclient-p")}
	copts := []consumer.Option{consumer.WithGroupName(group), consumer.WithInstance("loadclient-c"),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset)}
	if domain != "" {
		popts = append(popts, producer.WithNameServerDomain(domain))
		copts = append(copts, consumer.WithNameServerDomain(domain))
	} else {
		popts = append(popts, producer.WithNameServer(strings.Split(ns, ";")))
		copts = append(copts, consumer.WithNameServer(strings.Split(ns, ";")))
	}

	c, err := rocketmq.NewPushConsumer(copts...)
	if err != nil {
		return fmt.Errorf("create consumer: %w", err)
	}
	err = c.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			l.receive(m.MsgId)
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", topic, err)
	}
	if err := c.Start(); err != nil {
		return fmt.Errorf("start consumer: %w", err)
	}
	defer func() { _ = c.Shutdown() }()

	p, err := rocketmq.NewProducer(popts...)
	if err != nil {
		return fmt.Errorf("create producer: %w", err)
	}
	if err := p.Start(); err != nil {
		return fmt.Errorf("start producer: %w", err)
	}

	stop := filepath.Join(dir, "stop")
	stopped := func() bool { _, err := os.Stat(stop); return err == nil }
	tick := time.NewTicker(time.Second / time.Duration(rate))
	flushed := time.Now()
	for seq := 0; !stopped(); seq++ {
		<-tick.C
		msg := primitive.NewMessage(topic, []byte(fmt.Sprintf("load %d %s", seq, time.Now().Format(time.RFC3339Nano))))
		msg.WithKeys([]string{fmt.Sprintf("load-%d", seq)})
		r, err := p.SendSync(context.Background(), msg)
		switch {
		case err != nil:
			l.fail(err)
		case r.Status != primitive.SendOK:
			l.fail(fmt.Errorf("send status %d on %s", r.Status, r.MessageQueue.BrokerName))
		default:
			l.ack(r.MsgID, r.MessageQueue.BrokerName)
		}
		if time.Since(flushed) > time.Second {
			l.flush()
			flushed = time.Now()
		}
	}
	tick.Stop()
	_ = p.Shutdown()

	deadline := time.Now().Add(drain)
	for len(l.missing()) > 0 && time.Now().Before(deadline) {
		l.flush()
		time.Sleep(500 * time.Millisecond)
	}
	l.flush()
	s := l.summary()
	b, _ := json.MarshalIndent(s, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "summary.json"), b, 0o644); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	if len(s.Missing) > 0 {
		return fmt.Errorf("%d of %d acknowledged messages not received within %s", len(s.Missing), s.Acked, drain)
	}
	return nil
}
