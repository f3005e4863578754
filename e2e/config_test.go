package e2e

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// Configuration keys the daemons used to accept without acting on them.

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBrokerRoleWarnings: replication is not implemented, so a SLAVE (and
// a SYNC_MASTER, whose acknowledgements would wait for a slave) says so at
// start-up on stderr and in broker.log; a plain master says nothing.
func TestBrokerRoleWarnings(t *testing.T) {
	ns := startNamesrv(t)
	for _, c := range []struct {
		extra []string
		want  string
	}{
		{[]string{"brokerRole=SLAVE", "brokerId=1"}, "brokerRole = SLAVE: replication is not implemented yet; this broker does not copy the commit log of broker-a's master"},
		{[]string{"brokerRole=SYNC_MASTER", "brokerName=broker-b"}, "brokerRole = SYNC_MASTER: replication is not implemented yet"},
		{[]string{"brokerName=broker-c"}, ""},
	} {
		dir := newBrokerDir(t)
		p := startBroker(t, dir, ns.addr, c.extra...)
		log := string(readFile(t, filepath.Join(string(dir), "logs", "broker.log")))
		if c.want == "" {
			if strings.Contains(p.out.String(), "replication") || strings.Contains(log, "replication") {
				t.Errorf("%v: unexpected replication warning:\n%s", c.extra, p.out.String())
			}
			continue
		}
		if !strings.Contains(p.out.String(), "mqbroker: warning: "+c.want) {
			t.Errorf("%v: no warning %q on stderr:\n%s", c.extra, c.want, p.out.String())
		}
		if !strings.Contains(log, "[CONFIG] "+c.want) {
			t.Errorf("%v: no warning %q in broker.log:\n%s", c.extra, c.want, log)
		}
	}
}

// TestClusterAndBrokerTopicEnable: as in Java, the topics named after the
// cluster and the broker are inheritable (perm 1) and readable and writable
// only with clusterTopicEnable / brokerTopicEnable (both true by default);
// turning one off takes effect on a broker that already saved the topic.
func TestClusterAndBrokerTopicEnable(t *testing.T) {
	c := startCluster(t)
	perms := func() (int, int) {
		cl, code1 := route(t, c.ns.addr, "DefaultCluster")
		br, code2 := route(t, c.ns.addr, "broker-a")
		if code1 != wire.Success || code2 != wire.Success || len(cl.QueueDatas) != 1 || len(br.QueueDatas) != 1 {
			t.Fatalf("routes: %d %v, %d %v", code1, cl.QueueDatas, code2, br.QueueDatas)
		}
		return cl.QueueDatas[0].Perm, br.QueueDatas[0].Perm
	}
	if cl, br := perms(); cl != 7 || br != 7 {
		t.Fatalf("by default: cluster topic perm %d, broker topic perm %d, want 7 and 7", cl, br)
	}
	c.broker.stop()
	c.broker = restartBroker(t, c, "clusterTopicEnable=false", "brokerTopicEnable=false")
	if cl, br := perms(); cl != wire.PermInherit || br != wire.PermInherit {
		t.Fatalf("disabled: cluster topic perm %d, broker topic perm %d, want 1 and 1", cl, br)
	}
	for _, topic := range []string{"DefaultCluster", "broker-a"} {
		if resp := invoke(t, c.broker.addr, wire.SendMessage, sendFields(topic, "0"), []byte("x")); resp.Code != wire.NoPermission {
			t.Errorf("send to %s answered %s, want NO_PERMISSION", topic, wire.ResponseName(resp.Code))
		}
	}
}

// TestNotifyConsumerIdsChangedEnable: with the key false the broker sends
// no NOTIFY_CONSUMER_IDS_CHANGED when a group's members change (clients then
// rebalance on their own timer); by default it does. Raw connections: a
// notification to A is queued before the answer to A's next request, so
// once that answer is in, every notification A will get has arrived.
func TestNotifyConsumerIdsChangedEnable(t *testing.T) {
	ns := startNamesrv(t)
	for _, enabled := range []bool{true, false} {
		dir := newBrokerDir(t)
		broker := startBroker(t, dir, ns.addr, fmt.Sprintf("notifyConsumerIdsChangedEnable=%v", enabled), fmt.Sprintf("brokerName=b-%v", enabled))
		var notified atomic.Int32
		a := remoting.NewClient(remoting.HandlerFunc(func(c *remoting.Conn, req *wire.Command) {
			if req.Code == wire.NotifyConsumerIDsChanged {
				notified.Add(1)
			}
		}), slog.New(slog.DiscardHandler))
		defer a.Close()
		b := remoting.NewClient(nil, slog.New(slog.DiscardHandler))
		defer b.Close()
		heartbeat := func(cl *remoting.Client, id string) {
			hb := wire.NewRequest(wire.HeartBeat, nil, wire.Marshal(wire.HeartbeatData{
				ClientID: id,
				ConsumerDataSet: []wire.ConsumerData{{GroupName: "CG_notify", ConsumeType: "CONSUME_PASSIVELY", MessageModel: "CLUSTERING",
					ConsumeFromWhere: "CONSUME_FROM_LAST_OFFSET", SubscriptionDataSet: []wire.SubscriptionData{{Topic: "T", SubString: "*", ExpressionType: "TAG"}}}},
			}))
			if resp, err := cl.Invoke(broker.addr, hb, 5*time.Second); err != nil || resp.Code != wire.Success {
				t.Fatalf("heartbeat %s: %v %v", id, err, resp)
			}
		}
		heartbeat(a, "client-a")
		heartbeat(b, "client-b")
		list := wire.NewRequest(wire.GetConsumerListByGroup, map[string]string{"consumerGroup": "CG_notify"}, nil)
		resp, err := a.Invoke(broker.addr, list, 5*time.Second)
		if err != nil || resp.Code != wire.Success || !bytes.Contains(resp.Body, []byte("client-b")) {
			t.Fatalf("consumer list: %v %v", err, resp)
		}
		// A saw its own join and B's.
		if got := notified.Load(); enabled && got != 2 || !enabled && got != 0 {
			t.Errorf("notifyConsumerIdsChangedEnable=%v: client A got %d notifications", enabled, got)
		}
	}
}
