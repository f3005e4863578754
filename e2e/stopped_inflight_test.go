package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"

	"github.com/mqops/mqops/wire"
)

// TestControllerModeStoppedMasterInFlight: sends written to a master while
// it is stopped (SIGSTOP, a partition) wait in its socket. Resumed after
// the controller elected the slave, it answers none of them SEND_OK: the
// new master never received them and the old one cuts them when it turns
// slave, so a SEND_OK would be a lost message. (apache/rocketmq answers
// FLUSH_SLAVE_TIMEOUT, 12, or, once it is a slave, SERVICE_NOT_AVAILABLE,
// 14.)
func TestControllerModeStoppedMasterInFlight(t *testing.T) {
	nss, ctl := startControllerNamesrvs(t, 1)
	ns := nss[0]
	keys := []string{"brokerName=broker-a", "brokerId=-1", "brokerRole=SLAVE", "enableControllerMode=true",
		"controllerAddr=" + ctl[0], "allAckInSyncStateSet=true",
		"syncBrokerMetadataPeriod=1000", "checkSyncStateSetPeriod=1000", "brokerHeartbeatInterval=500",
		"controllerHeartBeatTimeoutMills=3000"}
	procs := []*proc{startBroker(t, newBrokerDir(t), ns, keys...), startBroker(t, newBrokerDir(t), ns, keys...)}
	master := -1
	waitFor(t, 60*time.Second, "a master with both replicas in the SyncStateSet", func() bool {
		h, set := replicaInfo(t, ctl)
		master = -1
		for i, p := range procs {
			if p.addr == h.MasterAddress {
				master = i
			}
		}
		return master >= 0 && len(set.SyncStateSet) == 2
	})
	slave := 1 - master
	topic := fmt.Sprintf("InFlight%d", time.Now().UnixNano())
	createTopicOn(t, procs[master].addr, topic)

	nc := rawConn(t, procs[master].addr)
	r := bufio.NewReader(nc)
	send := func(opaque int32, body string) {
		t.Helper()
		req := wire.NewRequest(wire.SendMessage, sendFields(topic, "0"), []byte(body))
		req.Opaque = opaque
		if _, err := nc.Write(wire.AppendFrame(nil, req)); err != nil {
			t.Fatal(err)
		}
	}
	// read returns the next response, nil once the connection is closed.
	read := func() *wire.Command {
		t.Helper()
		for {
			cmd, err := wire.ReadCommand(r)
			switch {
			case errors.Is(err, wire.ErrBadFrame) || errors.Is(err, wire.ErrFrameTooLarge) || errors.Is(err, wire.ErrBadHeader):
				t.Fatal(err)
			case err != nil:
				return nil
			case cmd.IsResponse():
				return cmd
			}
		}
	}
	_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	send(1, "before")
	if resp := read(); resp == nil || resp.Code != wire.Success {
		t.Fatalf("a send before the stop: %+v", resp)
	}

	_ = procs[master].cmd.Process.Signal(syscall.SIGSTOP)
	const n = 20
	for i := range n {
		send(int32(100+i), fmt.Sprintf("inflight-%d", i))
	}
	stopped := time.Now()
	waitFor(t, 60*time.Second, "the slave elected while the master is stopped", func() bool {
		h, _ := replicaInfo(t, ctl)
		return h.MasterAddress == procs[slave].addr
	})
	// Registered as id 0: the new master has stopped following the old one.
	waitFor(t, 30*time.Second, "the route to the new master", func() bool { return routeMaster(t, ns, topic) == procs[slave].addr })
	t.Logf("slave elected and in the route %v after SIGSTOP", time.Since(stopped).Round(time.Millisecond))
	_ = procs[master].cmd.Process.Signal(syscall.SIGCONT)

	_ = nc.SetReadDeadline(time.Now().Add(60 * time.Second))
	codes := map[string]int{}
	answered := 0
	var acked []string
	for answered < n {
		resp := read()
		if resp == nil {
			break // closed: those sends have no SEND_OK either
		}
		if resp.Opaque < 100 || resp.Opaque >= 100+n {
			t.Fatalf("answer to opaque %d", resp.Opaque)
		}
		answered++
		codes[wire.ResponseName(resp.Code)]++
		if resp.Code == wire.Success {
			acked = append(acked, fmt.Sprintf("inflight-%d", resp.Opaque-100))
		}
	}
	var summary []string
	for c, k := range codes {
		summary = append(summary, fmt.Sprintf("%s×%d", c, k))
	}
	t.Logf("%d in-flight sends: %d answered (%s), %d unanswered (connection closed)", n, answered, strings.Join(summary, " "), n-answered)
	// The group goes on: a write on the new master (the old one expands
	// the set again once it has caught up with one).
	createTopicOn(t, procs[slave].addr, topic)
	if resp := invoke(t, procs[slave].addr, wire.SendMessage, sendFields(topic, "0"), []byte("after")); resp.Code != wire.Success {
		t.Fatalf("a send to the new master: %s %s", wire.ResponseName(resp.Code), resp.Remark)
	}
	waitFor(t, 60*time.Second, "the old master back in the SyncStateSet as a slave", func() bool {
		h, set := replicaInfo(t, ctl)
		return h.MasterAddress == procs[slave].addr && len(set.SyncStateSet) == 2
	})
	if len(acked) == 0 {
		return
	}
	// A SUCCESS is a lie unless the new master holds the message.
	col := newCollector()
	newPushConsumer(t, ns, instance("CG"), topic, consumer.MessageSelector{}, col,
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	var lost []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		lost = lost[:0]
		col.mu.Lock()
		for _, b := range append([]string{"before"}, acked...) {
			if col.msgs[b] == nil {
				lost = append(lost, b)
			}
		}
		col.mu.Unlock()
		if len(lost) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(lost) > 0 {
		t.Errorf("%d in-flight sends answered SUCCESS by the stopped master after the slave was elected; %d of them (and of 'before') are not on the new master: %v",
			len(acked), len(lost), lost)
	}
	t.Logf("all %d SUCCESS answers of the stopped master are on the new master", len(acked))
}
