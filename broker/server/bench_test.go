package server

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

// sendFrame is a SEND_MESSAGE_V2 frame as a Java producer writes it.
func sendFrame(topic string, body []byte) []byte {
	return wire.AppendFrame(nil, sendRequest(topic, body))
}

// sendRequest is sendFrame's request.
func sendRequest(topic string, body []byte) *wire.Command {
	req := wire.NewRequest(wire.SendMessageV2, map[string]string{
		"a": "PG", "b": topic, "c": "TBW102", "d": "4", "e": "0", "f": "0",
		"g": strconv.FormatInt(time.Now().UnixMilli(), 10), "h": "0",
		"i": "TAGS\x01TagA\x02UNIQ_KEY\x017F0000010001000000001A2B3C4D0001\x02", "j": "0", "k": "false",
	}, body)
	req.Opaque = 1
	return req
}

// BenchmarkSendPipelined measures the broker's send path: one connection,
// frames written back to back, responses drained. allocs/op counts every
// allocation in the process per message (the client side allocates none).
func BenchmarkSendPipelined(b *testing.B) {
	sendBench(b, startBroker(b, nil), sendFrame("BenchSend", make([]byte, 1024)))
}

// BenchmarkSendPipelinedSyncFlush is BenchmarkSendPipelined with
// flushDiskType=SYNC_FLUSH: every answer waits for its group commit (the
// waiting send, sendWait, is shared with SYNC_MASTER's wait for a slave).
//
// At most syncFlushWindow sends are unanswered at once, as a producer's
// in-flight limit does: unbounded, all b.N sends may wait for one slow
// fsync together, and the run measured (testing's last, with the largest
// b.N) would count each send beyond the previous runs' peak allocating
// its wait and answer buffer (about 7 allocations) for the free list.
// That is a one-off warm-up, proportional to how slow the fsync was under
// the machine's load, not a per-message cost.
func BenchmarkSendPipelinedSyncFlush(b *testing.B) {
	// The pipeline has every message of the run in flight at once: past
	// the default send budget these would be answered [OVERLOAD].
	br := startBroker(b, map[string]string{"flushDiskType": "SYNC_FLUSH",
		"sendThreadPoolQueueCapacity": "100000000", "sendInflightPerConnection": "100000000", "sendInflightMaxBytes": "1000000000000"})
	conn, err := net.Dial("tcp", br.srv.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	frame := sendFrame("BenchSend", make([]byte, 1024))
	roundTrip(b, conn, frame)
	pipelineWindow(b, conn, frame, 1024, syncFlushWindow)
}

// syncFlushWindow is BenchmarkSendPipelinedSyncFlush's bound on
// unanswered sends.
const syncFlushWindow = 1024

// pipeline writes frame b.N times back to back while another goroutine
// drains the answers; the timed part of the benchmarks.
func pipeline(b *testing.B, conn net.Conn, frame []byte, bytesPerOp int64) {
	pipelineWindow(b, conn, frame, bytesPerOp, 0)
}

// pipelineWindow is pipeline with at most window (> 0) requests
// unanswered at once. It first sends 4*window requests untimed, so that
// the timed ones find the broker's per-request state at its steady size.
func pipelineWindow(b *testing.B, conn net.Conn, frame []byte, bytesPerOp int64, window int) {
	if window > 0 {
		if err := pipelined(conn, frame, 4*window, window); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.SetBytes(bytesPerOp)
	b.ResetTimer()
	if err := pipelined(conn, frame, b.N, window); err != nil {
		b.Fatal(err)
	}
}

// pipelined writes frame n times while another goroutine drains the
// answers, with at most window (0: any number) unanswered.
func pipelined(conn net.Conn, frame []byte, n, window int) error {
	var credits chan struct{} // one per unanswered request
	if window > 0 {
		credits = make(chan struct{}, window)
	}
	done := make(chan error, 1)
	go func() { done <- drain(conn, n, credits) }()
	w := bufio.NewWriterSize(conn, 256<<10)
	for i := 0; i < n; i++ {
		if credits != nil {
			select {
			case credits <- struct{}{}:
			default:
				// The window is full: what is buffered must reach the
				// broker before waiting for its answers.
				if err := w.Flush(); err != nil {
					return err
				}
				select {
				case credits <- struct{}{}:
				case err := <-done:
					return fmt.Errorf("answers ended after %d of %d requests: %v", i, n, err)
				}
			}
		}
		if _, err := w.Write(frame); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return <-done
}

func roundTrip(tb testing.TB, conn net.Conn, frame []byte) {
	tb.Helper()
	if _, err := conn.Write(frame); err != nil {
		tb.Fatal(err)
	}
	if err := drain(conn, 1, nil); err != nil {
		tb.Fatal(err)
	}
}

// drain reads n response frames and fails on any non-success code,
// taking one token from credits (when not nil) for each.
// Requests the broker sends (NOTIFY_CONSUMER_IDS_CHANGED) are skipped.
func drain(conn net.Conn, n int, credits chan struct{}) error {
	r := bufio.NewReaderSize(conn, 256<<10)
	var prefix [4]byte
	buf := make([]byte, 0, 4096)
	var cmd wire.Command
	for i := 0; i < n; i++ {
		if _, err := io.ReadFull(r, prefix[:]); err != nil {
			return err
		}
		l := int(binary.BigEndian.Uint32(prefix[:]))
		if cap(buf) < l {
			buf = make([]byte, l)
		}
		buf = buf[:l]
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		if err := wire.DecodeFrame(buf, &cmd); err != nil {
			return err
		}
		if !cmd.IsResponse() {
			i--
			continue
		}
		if cmd.Code != wire.Success {
			return &codeError{cmd.Code, string(cmd.Remark)}
		}
		if credits != nil {
			<-credits
		}
	}
	return nil
}

type codeError struct {
	code   int32
	remark string
}

func (e *codeError) Error() string { return wire.ResponseName(e.code) + ": " + e.remark }

// TestSendPathAllocations keeps the per-message allocation count of the
// send path from creeping up unnoticed.
func TestSendPathAllocations(t *testing.T) {
	atMostOneAlloc(t, "a message on the send path", BenchmarkSendPipelined)
	// A send that waits (SYNC_FLUSH here; SYNC_MASTER uses the same wait).
	// The per-send wait cost 8 allocations before it was recycled; once
	// warm (see the benchmark's window), none.
	atMostOneAlloc(t, "a message on the SYNC_FLUSH send path", BenchmarkSendPipelinedSyncFlush)
}

// BenchmarkPullPipelined measures the pull path the way push consumers use
// it (subscription from the heartbeat): 32 stored 1 KiB records per
// response, read from the log and written back without re-encoding.
func BenchmarkPullPipelined(b *testing.B) {
	br := startBroker(b, nil)
	conn, err := net.Dial("tcp", br.srv.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	send := sendFrame("BenchPull", make([]byte, 1024))
	for i := 0; i < 32; i++ {
		roundTrip(b, conn, send)
	}
	benchPull(b, br, conn)
}

// BenchmarkPullPipelinedUnverified is BenchmarkPullPipelined on records an
// earlier run wrote, in a segment the restart's recovery did not walk and
// the scrub (a minute after start) has not reached: the pull path checks
// every record's CRC.
func BenchmarkPullPipelinedUnverified(b *testing.B) {
	dir := b.TempDir()
	small := map[string]string{"mappedFileSizeCommitLog": strconv.Itoa(1 << 20)}
	first := openBroker(b, dir, small)
	first.Start()
	conn, err := net.Dial("tcp", first.srv.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	send := sendFrame("BenchPull", make([]byte, 1024))
	for i := 0; i < 32; i++ {
		roundTrip(b, conn, send)
	}
	// Roll to a second segment: the checkpoint, and recovery's walk, start there.
	fill := sendFrame("BenchFill", make([]byte, 1024))
	for first.store.MaxPhyOffset() < 1<<20 {
		roundTrip(b, conn, fill)
	}
	conn.Close()
	if err := first.Close(); err != nil {
		b.Fatal(err)
	}

	br := openBroker(b, dir, small)
	br.Start()
	b.Cleanup(func() { _ = br.Close() })
	if conn, err = net.Dial("tcp", br.srv.Addr().String()); err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	benchPull(b, br, conn)
}

// pullBench subscribes consumer group CG to sub (as a push consumer's
// heartbeat does), waits until queue 0 of sub.Topic holds stored records,
// and measures pulling up to 32 of them from offset 0 again and again;
// bytesPerOp is the payload one pull returns.
func pullBench(b *testing.B, br *Broker, conn net.Conn, sub wire.SubscriptionData, stored, bytesPerOp int64) {
	sub.SubVersion = 1
	hb := wire.NewRequest(wire.HeartBeat, nil, wire.Marshal(wire.HeartbeatData{
		ClientID: "bench@1",
		ConsumerDataSet: []wire.ConsumerData{{GroupName: "CG", ConsumeType: "CONSUME_PASSIVELY", MessageModel: "CLUSTERING",
			SubscriptionDataSet: []wire.SubscriptionData{sub}}},
	}))
	roundTrip(b, conn, wire.AppendFrame(nil, hb))
	waitFor(b, func() bool { return br.store.MaxOffset(sub.Topic, 0) == stored })
	pull := wire.NewRequest(wire.PullMessage, map[string]string{
		"consumerGroup": "CG", "topic": sub.Topic, "queueId": "0", "queueOffset": "0", "maxMsgNums": "32",
		"sysFlag": "0", "commitOffset": "0", "suspendTimeoutMillis": "0", "subVersion": "0",
	}, nil)
	pipeline(b, conn, wire.AppendFrame(nil, pull), bytesPerOp)
}

// benchPull is pullBench on BenchPull's 32 records of 1 KiB, every tag.
func benchPull(b *testing.B, br *Broker, conn net.Conn) {
	pullBench(b, br, conn, wire.SubscriptionData{Topic: "BenchPull", SubString: "*", ExpressionType: "TAG"}, 32, 32*1024)
}

// waitTimeout bounds every wait for a condition; generous because other
// work may load the machine, and no test asserts a duration.
const waitTimeout = 30 * time.Second

func waitFor(tb testing.TB, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(waitTimeout); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	tb.Fatal("condition not reached")
}

// TestPullPathAllocations: see TestSendPathAllocations.
func TestPullPathAllocations(t *testing.T) {
	atMostOneAlloc(t, "a request on the pull path", BenchmarkPullPipelined)
}
