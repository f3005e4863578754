package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
)

// ctlKeys are the broker.conf keys every controller-mode replica of
// broker-a in these tests has (ha.md Appendix A's broker-n0.conf with
// short periods); tests append their own, a later key winning.
func ctlKeys(ctl []string) []string {
	return []string{"brokerName=broker-a", "brokerId=-1", "brokerRole=SLAVE", "enableControllerMode=true",
		"controllerAddr=" + strings.Join(ctl, ";"), "allAckInSyncStateSet=true",
		"syncBrokerMetadataPeriod=1000", "checkSyncStateSetPeriod=1000", "brokerHeartbeatInterval=500"}
}

// ctlGroup is a test's controller-mode broker set broker-a: its replicas'
// directories and processes, started with the same keys.
type ctlGroup struct {
	t      *testing.T
	ctl    []string
	nsList string // the name servers the replicas register with
	keys   []string
	dirs   []brokerDir
	procs  []*proc
}

// startCtlReplicas starts n replicas of broker-a with keys.
func startCtlReplicas(t *testing.T, ctl []string, nsList string, n int, keys []string) *ctlGroup {
	t.Helper()
	g := &ctlGroup{t: t, ctl: ctl, nsList: nsList, keys: keys}
	for range n {
		d := newBrokerDir(t)
		g.dirs = append(g.dirs, d)
		g.procs = append(g.procs, startBroker(t, d, nsList, keys...))
	}
	return g
}

// index is the replica listening on addr, or -1.
func (g *ctlGroup) index(addr string) int {
	return slices.IndexFunc(g.procs, func(p *proc) bool { return addr != "" && p.addr == addr })
}

// waitInSync waits until the controller (GET_REPLICA_INFO) has one of the
// replicas as master and inSync replicas in the SyncStateSet; it returns
// the master's index.
func (g *ctlGroup) waitInSync(timeout time.Duration, inSync int) int {
	g.t.Helper()
	master := -1
	waitFor(g.t, timeout, fmt.Sprintf("a master with %d replicas in the SyncStateSet", inSync), func() bool {
		h, set := replicaInfo(g.t, g.ctl)
		master = g.index(h.MasterAddress)
		return master >= 0 && len(set.SyncStateSet) == inSync
	})
	return master
}

// waitMaster waits until the controller has replica i as master.
func (g *ctlGroup) waitMaster(timeout time.Duration, i int, what string) {
	g.t.Helper()
	waitFor(g.t, timeout, what, func() bool {
		h, _ := replicaInfo(g.t, g.ctl)
		return h.MasterAddress == g.procs[i].addr
	})
}

// restart starts replica i again on its directory and ports.
func (g *ctlGroup) restart(i int, extra ...string) *proc {
	g.t.Helper()
	keys := append(slices.Clone(g.keys), g.procs[i].samePorts()...)
	g.procs[i] = startBroker(g.t, g.dirs[i], g.nsList, append(keys, extra...)...)
	return g.procs[i]
}

// commitLog is replica i's commit-log directory.
func (g *ctlGroup) commitLog(i int) string {
	return filepath.Join(string(g.dirs[i]), "store", "commitlog")
}

// waitSameCommitLog waits up to timeout for the commit logs in dirs a and
// b to be byte-equal; it returns "" or their last difference.
func waitSameCommitLog(a, b string, timeout time.Duration) string {
	diff := sameCommitLog(a, b)
	for deadline := time.Now().Add(timeout); diff != "" && time.Now().Before(deadline); diff = sameCommitLog(a, b) {
		time.Sleep(100 * time.Millisecond)
	}
	return diff
}

// createRoutedTopic creates topic on the broker at addr and waits until
// the name server routes it there as broker-a's id 0.
func createRoutedTopic(t *testing.T, ns, addr, topic string) {
	t.Helper()
	createTopicOn(t, addr, topic)
	// The creation registers at once; in a loaded CI run the route once
	// took longer than 30 s, the periodic registration's period: wait past
	// one more of those.
	waitFor(t, 75*time.Second, "the topic's route", func() bool { return routeMaster(t, ns, topic) == addr })
}

// consumeAll consumes topic from the first offset with a new push-consumer
// group until every key of sent has arrived, and fails t with the missing
// keys otherwise. It returns what the consumer got.
func consumeAll(t *testing.T, ns, topic string, sent map[string]bool) *collector {
	t.Helper()
	col := newCollector()
	newPushConsumer(t, ns, instance("CG"), topic, consumer.MessageSelector{}, col,
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	missing := func() []string {
		col.mu.Lock()
		defer col.mu.Unlock()
		var out []string
		for k := range sent {
			if col.msgs[k] == nil {
				out = append(out, k)
			}
		}
		slices.Sort(out)
		return out
	}
	deadline := time.Now().Add(90 * time.Second)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if lost := missing(); len(lost) > 0 {
		t.Fatalf("%d SEND_OK messages lost: %s", len(lost), strings.Join(lost[:min(10, len(lost))], ", "))
	}
	return col
}
