package e2e

import (
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// invoke sends one request with this project's remoting client.
func invoke(t *testing.T, addr string, code int32, fields map[string]string, body []byte) *wire.Command {
	t.Helper()
	return invokeCmd(t, addr, wire.NewRequest(code, fields, body))
}

func invokeCmd(t *testing.T, addr string, req *wire.Command) *wire.Command {
	t.Helper()
	cl := remoting.NewClient(nil, slog.New(slog.DiscardHandler))
	defer cl.Close()
	resp, err := cl.Invoke(addr, req, 5*time.Second)
	if err != nil {
		t.Fatalf("request %d to %s: %v", req.Code, addr, err)
	}
	return resp
}

func searchOffset(t *testing.T, broker, topic string, queue int, ts int64) int64 {
	t.Helper()
	resp := invoke(t, broker, wire.SearchOffsetByTimestamp, map[string]string{"topic": topic, "queueId": strconv.Itoa(queue), "timestamp": strconv.FormatInt(ts, 10)}, nil)
	off, ok := resp.GetInt("offset")
	if resp.Code != wire.Success || !ok {
		t.Fatalf("search offset: code %d remark %s", resp.Code, resp.Remark)
	}
	return off
}

func maxOffset(t *testing.T, broker, topic string, queue int) int64 {
	t.Helper()
	resp := invoke(t, broker, wire.GetMaxOffset, map[string]string{"topic": topic, "queueId": strconv.Itoa(queue)}, nil)
	off, _ := resp.GetInt("offset")
	return off
}

func committedOffset(t *testing.T, broker, group, topic string, queue int) (int64, int32) {
	t.Helper()
	resp := invoke(t, broker, wire.QueryConsumerOffset, map[string]string{"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(queue)}, nil)
	off, _ := resp.GetInt("offset")
	return off, resp.Code
}

// waitDispatched waits until the consume queues of a topic hold n messages:
// a send is acknowledged once it is in the commit log, slightly before the
// dispatcher makes it visible to consumers.
func waitDispatched(t *testing.T, broker, topic string, queues, n int) {
	t.Helper()
	waitFor(t, 10*time.Second, "messages dispatched to consume queues", func() bool {
		total := int64(0)
		for q := 0; q < queues; q++ {
			total += maxOffset(t, broker, topic, q)
		}
		return total >= int64(n)
	})
}

// sameDay skips a test whose "today" counts would straddle local midnight:
// call it at the start, and call the function it returns before asserting.
func sameDay(t *testing.T) func() {
	y, m, d := time.Now().Date()
	return func() {
		t.Helper()
		if y2, m2, d2 := time.Now().Date(); y2 != y || m2 != m || d2 != d {
			t.Skip("the test ran across local midnight: today's counts restarted")
		}
	}
}
