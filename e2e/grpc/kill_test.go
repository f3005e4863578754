package grpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"github.com/mqops/mqops/e2e/e2ed"
)

// startBrokerAt is startGRPCBroker on fixed remoting, HA and gRPC ports
// (leased with e2ed.LeasePorts, so they stay free between a kill and the
// restart), so that a restarted broker is where the running clients
// expect it.
func startBrokerAt(t *testing.T, namesrv, dir string, ports []int, kv ...string) (*proc, string) {
	t.Helper()
	args := []string{
		"-n", namesrv, "--enable-proxy",
		"-p", fmt.Sprint("listenPort=", ports[0]), "-p", fmt.Sprint("haListenPort=", ports[1]),
		"-p", fmt.Sprint("grpcServerPort=", ports[2]), "-p", "brokerIP1=127.0.0.1",
		"-p", "storePathRootDir=" + filepath.Join(dir, "store"), "-p", "logDir=" + filepath.Join(dir, "logs"),
		"-p", "mappedFileSizeCommitLog=" + fmt.Sprint(16<<20), "-p", "maxHashSlotNum=10000", "-p", "maxIndexNum=40000",
	}
	for _, s := range append(append([]string{}, popKV...), kv...) {
		args = append(args, "-p", s)
	}
	br := start(t, brokerReady, map[string]*regexp.Regexp{"grpc": grpcLine}, "mqbroker", args...)
	if br.extra["grpc"] == "" {
		t.Fatalf("broker printed no gRPC address:\n%s", br.out.String())
	}
	return br, br.extra["grpc"]
}

// TestKill9WithReceiveAck: official v5.1.2 producers and SimpleConsumers
// run while the broker (SYNC_FLUSH: a send is answered SEND_OK once its
// record is fsynced) is killed with SIGKILL and restarted on the same
// ports and store. Every message answered SEND_OK is then received and
// acked, including those whose lease or ack the kill cut short; copies
// are allowed (at-least-once: acks and leases since the last POP state
// save are forgotten, so those messages come again).
//
// What the flush mode promises: SYNC_FLUSH survives losing the machine;
// ASYNC_FLUSH answers before the fsync, which survives a killed process
// (the kernel still has the pages) but not a power cut.
func TestKill9WithReceiveAck(t *testing.T) {
	ns := startNamesrv(t)
	dir := t.TempDir()
	ports := e2ed.LeasePorts(t, 3)
	br, ga := startBrokerAt(t, ns.addr, dir, ports, "flushDiskType=SYNC_FLUSH")
	c := &cluster{ns: ns, broker: br, grpcAddr: ga}
	const topic, group = "KillPop", "KillPopGroup"
	createTopic(t, c, topic, 4)

	var (
		mu     sync.Mutex
		sent   = map[string]bool{} // SEND_OK bodies
		acked  = map[string]int{}  // body → successful acks
		recvd  atomic.Int64
		failed atomic.Int64 // sends, receives and acks refused or cut off
	)
	stopSend := make(chan struct{})
	stopRecv := make(chan struct{})
	var sendWG, recvWG sync.WaitGroup
	for i := range 2 {
		p := newV5Producer(t, c, topic)
		sendWG.Add(1)
		go func() {
			defer sendWG.Done()
			for seq := 0; ; seq++ {
				select {
				case <-stopSend:
					return
				default:
				}
				body := fmt.Sprintf("p%d-%d", i, seq)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := p.Send(ctx, &rmq.Message{Topic: topic, Body: []byte(body)})
				cancel()
				if err != nil {
					failed.Add(1)
					time.Sleep(50 * time.Millisecond)
					continue
				}
				mu.Lock()
				sent[body] = true
				mu.Unlock()
			}
		}()
	}
	for range 2 {
		sc := newV5Consumer(t, ga, group, map[string]*rmq.FilterExpression{topic: rmq.SUB_ALL})
		recvWG.Add(1)
		go func() {
			defer recvWG.Done()
			for {
				select {
				case <-stopRecv:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				mvs, err := sc.Receive(ctx, 16, 3*time.Second)
				cancel()
				if err != nil {
					var rs *rmq.ErrRpcStatus
					if !errors.As(err, &rs) || rs.Code != int32(v2.Code_MESSAGE_NOT_FOUND) {
						failed.Add(1)
						time.Sleep(50 * time.Millisecond)
					}
					continue
				}
				recvd.Add(int64(len(mvs)))
				for _, mv := range mvs {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					err := sc.Ack(ctx, mv)
					cancel()
					if err != nil {
						failed.Add(1) // the lease runs out and the message comes again
						continue
					}
					mu.Lock()
					acked[string(mv.GetBody())]++
					mu.Unlock()
				}
			}
		}()
	}
	count := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return len(sent), len(acked)
	}
	waitFor(t, 60*time.Second, "sends and acks before the kill", func() bool { s, a := count(); return s >= 300 && a >= 200 })
	s0, a0 := count()
	br.kill()
	t.Logf("SIGKILL after %d SEND_OK, %d acked", s0, a0)
	br2, _ := startBrokerAt(t, ns.addr, dir, ports, "flushDiskType=SYNC_FLUSH")
	c.broker = br2
	waitFor(t, 90*time.Second, "sends and acks after the restart", func() bool { s, a := count(); return s >= s0+300 && a >= a0+300 })
	close(stopSend)
	sendWG.Wait()

	// Every SEND_OK message is acked in the end: leases the kill left
	// behind run out (3 s) and their messages come again.
	var missing []string
	waitForQuiet := func() bool {
		mu.Lock()
		defer mu.Unlock()
		missing = missing[:0]
		for b := range sent {
			if acked[b] == 0 {
				missing = append(missing, b)
			}
		}
		return len(missing) == 0
	}
	deadline := time.Now().Add(90 * time.Second)
	for !waitForQuiet() && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if len(missing) == 0 {
		// And the group's committed offsets reach the end of every queue
		// (the main and the POP retry topic): none is stuck behind
		// messages acked before the kill.
		waitFor(t, 60*time.Second, "the group's backlog to reach 0 (mqadmin consumerProgress)", func() bool {
			out, err := mqadmin(t, c, "consumerProgress", "-g", group, "-o", "json")
			var gp struct {
				DiffTotal int64             `json:"diffTotal"`
				Queues    []json.RawMessage `json:"queues"`
			}
			if err != nil || json.Unmarshal([]byte(out), &gp) != nil {
				return false
			}
			return gp.DiffTotal == 0 && len(gp.Queues) >= 4
		})
	}
	close(stopRecv)
	recvWG.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(missing) > 0 {
		t.Fatalf("%d of %d SEND_OK messages never acked after the kill (e.g. %v); %d acked, %d failed calls", len(missing), len(sent), missing[:min(5, len(missing))], len(acked), failed.Load())
	}
	dups := 0
	for _, n := range acked {
		dups += n - 1
	}
	t.Logf("%d SEND_OK messages all acked (%d received, %d acked twice or more: at-least-once), %d sends/receives/acks failed around the kill", len(sent), recvd.Load(), dups, failed.Load())
}
