package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// txListener decides by body prefix: commit-, rollback-, and unknown-…
// messages whose check-back answer is in onCheck (Unknown when absent).
type txListener struct {
	mu      sync.Mutex
	checks  map[string]int
	onCheck map[string]primitive.LocalTransactionState
}

func newTxListener() *txListener {
	return &txListener{checks: map[string]int{}, onCheck: map[string]primitive.LocalTransactionState{}}
}

func (l *txListener) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	switch body := string(m.Body); {
	case strings.HasPrefix(body, "commit-"):
		return primitive.CommitMessageState
	case strings.HasPrefix(body, "rollback-"):
		return primitive.RollbackMessageState
	}
	return primitive.UnknowState
}

func (l *txListener) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.checks[string(m.Body)]++
	if s, ok := l.onCheck[string(m.Body)]; ok {
		return s
	}
	return primitive.UnknowState
}

func (l *txListener) checked(body string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.checks[body]
}

func newTxProducer(t *testing.T, ns, group string, l *txListener) rocketmq.TransactionProducer {
	t.Helper()
	p, err := rocketmq.NewTransactionProducer(l, producer.WithNameServer([]string{ns}), producer.WithGroupName(group),
		producer.WithInstanceName(instance("tx")), producer.WithRetry(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// TestTransactions: committed half messages are delivered exactly once,
// rolled-back ones never; undecided ones are checked back after
// transactionTimeOut and follow the producer's answer; one never decided
// is discarded to TRANS_CHECK_MAX_TIME_TOPIC after transactionCheckMax
// checks; a half message pending across a broker restart is still checked
// (by a producer started after it) and delivered once, and nothing decided
// before the restart is asked about or delivered again.
func TestTransactions(t *testing.T) {
	t.Parallel() // waits on client and broker timers, not CPU: run beside the others
	tx := []string{"transactionCheckInterval=1000", "transactionTimeOut=2000", "transactionCheckMax=3"}
	c := startCluster(t, tx...)
	const topic, group = "Payments", "PG_tx"
	createTopic(t, c, topic, 2)
	a := startArrivalConsumer(t, c, "CG_tx", topic)
	l := newTxListener()
	l.onCheck["unknown-commit"] = primitive.CommitMessageState
	l.onCheck["unknown-rollback"] = primitive.RollbackMessageState
	p := newTxProducer(t, c.ns.addr, group, l)

	var bodies []string
	for _, b := range []string{"commit-0", "commit-1", "commit-2", "commit-3", "commit-4", "rollback-0", "rollback-1", "rollback-2",
		"unknown-commit", "unknown-rollback", "never"} {
		bodies = append(bodies, b)
		res, err := p.SendMessageInTransaction(context.Background(), primitive.NewMessage(topic, []byte(b)))
		if err != nil {
			t.Fatalf("send %s: %v", b, err)
		}
		if res.Status != primitive.SendOK {
			t.Fatalf("send %s: status %v", b, res.Status)
		}
	}
	sent := time.Now()
	a.waitFor(t, 10*time.Second, "commit-0", "commit-1", "commit-2", "commit-3", "commit-4")
	a.waitFor(t, 15*time.Second, "unknown-commit")
	if got := a.times("unknown-commit")[0].Sub(sent); got < time.Second {
		t.Fatalf("an undecided message was checked after %v, before transactionTimeOut (2s)", got)
	}
	waitFor(t, 20*time.Second, "three checks of the undecided message", func() bool { return l.checked("never") >= 3 })
	waitFor(t, 10*time.Second, "the discarded message", func() bool { return maxOffset(t, c.broker.addr, "TRANS_CHECK_MAX_TIME_TOPIC", 0) == 1 })
	// One more undecided message, checked once before the restart.
	if _, err := p.SendMessageInTransaction(context.Background(), primitive.NewMessage(topic, []byte("restart-pending"))); err != nil {
		t.Fatal(err)
	}
	bodies = append(bodies, "restart-pending")
	waitFor(t, 10*time.Second, "a check of restart-pending", func() bool { return l.checked("restart-pending") > 0 })
	if m := a.msg("commit-0"); m.TransactionId == "" || m.GetProperty("TRAN_MSG") != "true" {
		t.Fatalf("committed message lacks its transaction id: %+v", m)
	}

	// Restart the broker; the application restarts too, and its new
	// producer commits what was pending.
	c.broker.stop()
	c.broker = restartBroker(t, c, tx...)
	_ = p.Shutdown()
	l2 := newTxListener()
	l2.onCheck["restart-pending"] = primitive.CommitMessageState
	l2.onCheck["never"] = primitive.CommitMessageState // must not be asked again
	p2 := newTxProducer(t, c.ns.addr, group, l2)
	// Its first send finds the route and heartbeats: the broker can ask it.
	if _, err := p2.SendMessageInTransaction(context.Background(), primitive.NewMessage(topic, []byte("commit-after-restart"))); err != nil {
		t.Fatal(err)
	}
	bodies = append(bodies, "commit-after-restart")
	a.waitFor(t, 30*time.Second, "restart-pending", "commit-after-restart")
	time.Sleep(3 * time.Second) // three more check rounds

	for _, b := range bodies {
		want := 0
		if strings.HasPrefix(b, "commit-") || b == "unknown-commit" || b == "restart-pending" {
			want = 1
		}
		if n := len(a.times(b)); n != want {
			t.Errorf("%s delivered %d times, want %d", b, n, want)
		}
		if (strings.HasPrefix(b, "commit-") || strings.HasPrefix(b, "rollback-")) && l.checked(b)+l2.checked(b) != 0 {
			t.Errorf("%s was decided at once but checked back", b)
		}
	}
	if n := l.checked("never") + l2.checked("never"); n != 3 {
		t.Errorf("the never-decided message was checked %d times, want transactionCheckMax (3)", n)
	}
	for _, b := range []string{"unknown-commit", "unknown-rollback"} {
		if n := l2.checked(b); n != 0 {
			t.Errorf("%s decided before the restart was checked %d times after it", b, n)
		}
	}
	if v := brokerStatus(t, c.ns.addr, c.broker.addr)["transactionHalfPending"]; v != "0" {
		t.Errorf("transactionHalfPending %q, want 0", v)
	}
	dead := pullAll(t, c, "CG_trans_max", "TRANS_CHECK_MAX_TIME_TOPIC", 0)
	if len(dead) != 1 || string(dead[0].Body) != "never" {
		t.Fatalf("TRANS_CHECK_MAX_TIME_TOPIC holds %d messages", len(dead))
	}
}
