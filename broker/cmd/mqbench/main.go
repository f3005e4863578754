// Command mqbench is the load generator behind `make bench`: a lean client
// on this repo's wire package (sync sends at a given concurrency, batched
// sends, an offered-rate latency run, draining consumers), one mode on
// the official rocketmq-client-go for realism, and a raw client of the
// RocketMQ 5 gRPC service (grpc.go); and, with RabbitMQ's amqp091-go, AMQP
// 0-9-1 publishers with confirms and consumers with a prefetch (amqp.go),
// against the mqamqp gateway or RabbitMQ alike. It prints msgs/s and
// latency percentiles.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

type options struct {
	broker, namesrv, topic, mode string
	slave                        string
	grpc, group                  string
	tls                          bool
	ackBatch                     int
	conc, size, queues, batch    int
	conns                        int
	duration                     time.Duration
	rate                         int
	accessKey, secretKey         string
	cpuProfile, memProfile       string
	url, queue, queueType        string
	window, prefetch             int
	count                        int64
	keep                         bool
	idle                         time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.broker, "broker", "127.0.0.1:10911", "broker address")
	flag.StringVar(&o.namesrv, "namesrv", "127.0.0.1:9876", "name server (official mode)")
	flag.StringVar(&o.topic, "topic", "BenchTopic", "topic (must exist)")
	flag.StringVar(&o.mode, "mode", "send", "send | batch | rate | consume | official | official-batch | catchup | lag | grpc-send | grpc-recv | grpc-recv-h2 | grpc-request | amqp-publish | amqp-consume")
	flag.StringVar(&o.grpc, "grpc", "127.0.0.1:8081", "broker's gRPC address (grpc-send, grpc-recv)")
	flag.StringVar(&o.group, "group", "BENCH_POP", "consumer group (grpc-recv)")
	flag.BoolVar(&o.tls, "tls", false, "gRPC over TLS (the official Go client's default) instead of plaintext")
	flag.IntVar(&o.ackBatch, "ackbatch", 32, "receipt handles per AckMessage (grpc-recv); deliveries per multiple basic.ack (amqp-consume)")
	flag.StringVar(&o.slave, "slave", "", "slave broker address (catchup and lag modes: -broker is its master)")
	flag.IntVar(&o.conc, "c", 16, "concurrent synchronous senders (amqp-publish: publishers, each on its own connection)")
	flag.IntVar(&o.conns, "conns", 8, "TCP connections the lean client spreads senders over")
	flag.IntVar(&o.size, "size", 1024, "message body bytes")
	flag.IntVar(&o.queues, "queues", 8, "queues of the topic")
	flag.IntVar(&o.batch, "batch", 32, "messages per batch (batch mode), per receive (grpc-recv)")
	flag.IntVar(&o.rate, "rate", 10000, "offered msgs/s (rate mode)")
	flag.DurationVar(&o.duration, "d", 10*time.Second, "run time")
	flag.StringVar(&o.accessKey, "access-key", "", "plain-ACL account: the lean sends (send, batch, rate) sign each request, and so does the official client (official, official-batch)")
	flag.StringVar(&o.secretKey, "secret-key", "", "the account's secret")
	flag.StringVar(&o.url, "url", "amqp://guest:guest@127.0.0.1:5672/", "AMQP server (amqp-publish, amqp-consume)")
	flag.StringVar(&o.queue, "queue", "bench", "durable AMQP queue, declared if missing (amqp-publish, amqp-consume)")
	flag.StringVar(&o.queueType, "queue-type", "", "the queue's x-queue-type argument, e.g. classic or quorum (RabbitMQ); empty: none")
	flag.IntVar(&o.window, "window", 1, "unconfirmed messages per publisher (amqp-publish; 1: wait for each confirm)")
	flag.BoolVar(&o.keep, "keep", false, "keep the queue and its messages after amqp-publish (a backlog for amqp-consume)")
	flag.IntVar(&o.prefetch, "prefetch", 500, "basic.qos prefetch count (amqp-consume)")
	flag.Int64Var(&o.count, "count", 0, "messages to consume (amqp-consume: the backlog amqp-publish -keep confirmed)")
	flag.DurationVar(&o.idle, "idle", 15*time.Second, "longest wait for a delivery before amqp-consume gives up")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write the generator's CPU profile to this file")
	flag.StringVar(&o.memProfile, "memprofile", "", "write the generator's allocation profile to this file at the end")
	flag.Parse()
	rlog.SetLogLevel("error")
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "mqbench: cpu profile:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}

	var err error
	switch o.mode {
	case "send", "batch", "rate":
		err = runSend(o)
	case "consume":
		err = runConsume(o)
	case "official", "official-batch":
		err = runOfficial(o)
	case "catchup":
		err = runCatchup(o)
	case "lag":
		err = runLag(o)
	case "grpc-send":
		err = runGrpcSend(o)
	case "grpc-recv":
		err = runGrpcRecv(o)
	case "grpc-recv-h2":
		err = runGrpcRecvH2(o)
	case "grpc-request":
		err = writeGrpcRequest(o, os.Stdout)
	case "amqp-publish":
		err = runAMQPPublish(o)
	case "amqp-consume":
		err = runAMQPConsume(o)
	default:
		err = fmt.Errorf("unknown mode %q", o.mode)
	}
	if o.memProfile != "" {
		if f, perr := os.Create(o.memProfile); perr == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			_ = f.Close()
		}
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "mqbench:", err)
		os.Exit(1)
	}
}

// latencies collects per-request durations from many goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(ds []time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, ds...)
	l.mu.Unlock()
}

func (l *latencies) report() string {
	if len(l.d) == 0 {
		return "no samples"
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	q := func(p float64) time.Duration { return l.d[min(len(l.d)-1, int(float64(len(l.d))*p))] }
	return fmt.Sprintf("p50 %v  p99 %v  p999 %v  max %v", q(0.50).Round(time.Microsecond), q(0.99).Round(time.Microsecond), q(0.999).Round(time.Microsecond), l.d[len(l.d)-1].Round(time.Microsecond))
}

func sendRequest(o options, queue int, body []byte, batch bool) *wire.Command {
	f := map[string]string{
		"a": "BENCH_PG", "b": o.topic, "c": "TBW102", "d": "8", "e": strconv.Itoa(queue),
		"f": "0", "g": strconv.FormatInt(time.Now().UnixMilli(), 10), "h": "0",
		"i": "TAGS\x01bench\x02", "j": "0", "k": "false",
	}
	code := wire.SendMessageV2
	if batch {
		f["m"] = "true"
		code = wire.SendBatchMessage
	}
	return sortFields(wire.NewRequest(code, f, body))
}

// sortFields puts c's extFields in key order, the order rocketmq-client-go
// v2.1.2 sends them in (encoding/json writes a map's keys sorted), signed
// ones included.
func sortFields(c *wire.Command) *wire.Command {
	slices.SortFunc(c.Ext, func(a, b wire.KV) int { return bytes.Compare(a.Key, b.Key) })
	return c
}

// batchBody encodes n messages in the SEND_BATCH_MESSAGE item layout.
func batchBody(n int, body []byte) []byte {
	props := []byte("TAGS\x01bench\x02")
	var out []byte
	for i := 0; i < n; i++ {
		total := 20 + len(body) + 2 + len(props)
		out = binary.BigEndian.AppendUint32(out, uint32(total))
		out = binary.BigEndian.AppendUint32(out, 0)
		out = binary.BigEndian.AppendUint32(out, 0)
		out = binary.BigEndian.AppendUint32(out, 0)
		out = binary.BigEndian.AppendUint32(out, uint32(len(body)))
		out = append(out, body...)
		out = binary.BigEndian.AppendUint16(out, uint16(len(props)))
		out = append(out, props...)
	}
	return out
}

func runSend(o options) error {
	conns := make([]*leanConn, o.conns)
	perConn := (o.conc + o.conns - 1) / o.conns
	for i := range conns {
		lc, err := dialLean(o.broker, perConn)
		if err != nil {
			return err
		}
		defer lc.nc.Close()
		conns[i] = lc
	}
	body := make([]byte, o.size)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	perReq := 1
	if o.mode == "batch" {
		perReq = o.batch
		body = batchBody(o.batch, body)
	}
	var interval time.Duration
	if o.mode == "rate" {
		interval = time.Duration(float64(time.Second) * float64(o.conc) / float64(o.rate))
	}
	var sent, failed atomic.Int64
	lat := &latencies{}
	deadline := time.Now().Add(o.duration)
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < o.conc; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			lc, slot := conns[g%len(conns)], g/len(conns)
			req := sendRequest(o, g%o.queues, body, o.mode == "batch")
			var signer *wire.Signer
			if o.accessKey != "" {
				signer = wire.NewSigner(o.accessKey, o.secretKey, "")
				signer.Sign(req)
				sortFields(req)
			}
			frame := leanRequest(req, slot)
			var sig []byte // the Signature value inside frame
			if signer != nil {
				sig = frame[signatureAt(frame, req.Get(wire.ExtSignature)):][:wire.SignatureLen]
			}
			ds := make([]time.Duration, 0, 1<<16)
			next := time.Now()
			for time.Now().Before(deadline) {
				if interval > 0 {
					next = next.Add(interval)
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					}
				}
				t0 := time.Now()
				if signer != nil {
					// Signed again each time, as a client signs each send:
					// the generator pays the HMAC per request as well.
					signer.Signature(req, sig)
				}
				code, err := lc.call(slot, frame, 5*time.Second)
				if err != nil || code != wire.Success {
					failed.Add(1)
					if err != nil {
						time.Sleep(10 * time.Millisecond)
					}
					continue
				}
				ds = append(ds, time.Since(t0))
				sent.Add(int64(perReq))
			}
			lat.add(ds)
		}(g)
	}
	wg.Wait()
	el := time.Since(start)
	fmt.Printf("mode=%s senders=%d conns=%d size=%dB batch=%d: %d msgs in %v = %.0f msgs/s, %d failed requests; latency per request %s\n",
		o.mode, o.conc, o.conns, o.size, perReq, sent.Load(), el.Round(time.Millisecond), float64(sent.Load())/el.Seconds(), failed.Load(), lat.report())
	return nil
}

// runConsume drains every queue from offset 0 with one puller per queue.
func runConsume(o options) error {
	log := slog.New(slog.DiscardHandler)
	var total, bytes atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, o.queues)
	for q := 0; q < o.queues; q++ {
		wg.Add(1)
		go func(q int) {
			defer wg.Done()
			cl := remoting.NewClient(nil, log)
			defer cl.Close()
			offset := int64(0)
			for {
				req := wire.NewRequest(wire.PullMessage, map[string]string{
					"consumerGroup": "BENCH_CG", "topic": o.topic, "queueId": strconv.Itoa(q),
					"queueOffset": strconv.FormatInt(offset, 10), "maxMsgNums": "32", "sysFlag": "4",
					"commitOffset": "0", "suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0", "expressionType": "TAG",
				}, nil)
				resp, err := cl.Invoke(o.broker, req, 10*time.Second)
				if err != nil {
					errs <- err
					return
				}
				if resp.Code != wire.Success {
					return // drained
				}
				n := 0
				for p := 0; p+4 <= len(resp.Body); {
					p += int(binary.BigEndian.Uint32(resp.Body[p:]))
					n++
				}
				total.Add(int64(n))
				bytes.Add(int64(len(resp.Body)))
				next, _ := resp.GetInt("nextBeginOffset")
				offset = next
			}
		}(q)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Printf("mode=consume queues=%d: %d msgs (%d MiB) in %v = %.0f msgs/s\n", o.queues, total.Load(), bytes.Load()>>20, el.Round(time.Millisecond), float64(total.Load())/el.Seconds())
	return nil
}

// runOfficial sends with rocketmq-client-go v2.1.2, as applications do;
// official-batch passes -batch messages to each SendSync, which the client
// sends as one SEND_BATCH_MESSAGE.
func runOfficial(o options) error {
	perReq := 1
	if o.mode == "official-batch" {
		perReq = o.batch
	}
	opts := []producer.Option{producer.WithNameServer([]string{o.namesrv}), producer.WithGroupName("BENCH_OFFICIAL"), producer.WithRetry(2)}
	if o.accessKey != "" {
		// The client's ACL hook signs every request, as applications' do.
		opts = append(opts, producer.WithCredentials(primitive.Credentials{AccessKey: o.accessKey, SecretKey: o.secretKey}))
	}
	p, err := rocketmq.NewProducer(opts...)
	if err != nil {
		return err
	}
	if err := p.Start(); err != nil {
		return err
	}
	defer p.Shutdown()
	body := make([]byte, o.size)
	var sent, failed atomic.Int64
	lat := &latencies{}
	deadline := time.Now().Add(o.duration)
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < o.conc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ds []time.Duration
			for time.Now().Before(deadline) {
				t0 := time.Now()
				// New messages each time, as an application makes them.
				msgs := make([]*primitive.Message, perReq)
				for i := range msgs {
					msgs[i] = primitive.NewMessage(o.topic, body)
				}
				if _, err := p.SendSync(context.Background(), msgs...); err != nil {
					failed.Add(1)
					continue
				}
				ds = append(ds, time.Since(t0))
				sent.Add(int64(perReq))
			}
			lat.add(ds)
		}()
	}
	wg.Wait()
	el := time.Since(start)
	fmt.Printf("mode=%s senders=%d size=%dB batch=%d: %d msgs in %v = %.0f msgs/s, %d failed; latency %s\n",
		o.mode, o.conc, o.size, perReq, sent.Load(), el.Round(time.Millisecond), float64(sent.Load())/el.Seconds(), failed.Load(), lat.report())
	return nil
}
