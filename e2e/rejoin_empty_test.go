package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// Controller mode, two replicas, nothing written yet: kill -9 of the
// master elects the slave, whose first epoch replaces the empty one it had
// recorded from the old master. The old master, restarted on its empty
// log, must follow the new master although their epoch lists share no
// epoch (it used to stop at "no common epoch with the master" forever),
// rejoin the SyncStateSet, and replicate what the v2.1.2 client sends.
func TestControllerModeRejoinEmptyLog(t *testing.T) {
	nss, ctl := startControllerNamesrvs(t, 1)
	ns := nss[0]
	g := startCtlReplicas(t, ctl, ns, 2, append(ctlKeys(ctl), "brokerClusterName=DefaultCluster",
		"controllerHeartBeatTimeoutMills=3000"))
	master := g.waitInSync(60*time.Second, 2)
	slave := 1 - master
	for _, i := range []int{master, slave} {
		if off := commitLogMaxOffset(g.procs[i].addr); off != 0 {
			t.Fatalf("replica %d wrote %d bytes before any send: the log is not empty", i, off)
		}
	}

	g.procs[master].kill()
	g.waitMaster(60*time.Second, slave, "the slave elected master")
	g.restart(master)
	waitFor(t, 60*time.Second, "the old master back in the SyncStateSet as a slave", func() bool {
		h, set := replicaInfo(t, ctl)
		return h.MasterAddress == g.procs[slave].addr && len(set.SyncStateSet) == 2
	})

	topic := fmt.Sprintf("RejoinEmpty%d", time.Now().UnixNano())
	createRoutedTopic(t, ns, g.procs[slave].addr, topic)
	p := newProducer(t, ns)
	sent := map[string]bool{}
	for i := range 50 {
		key := fmt.Sprintf("m-%d", i)
		m := primitive.NewMessage(topic, []byte(key))
		m.WithKeys([]string{key})
		// allAckInSyncStateSet: SEND_OK means the old master holds it too.
		if r, err := p.SendSync(context.Background(), m); err != nil || r.Status != primitive.SendOK {
			t.Fatalf("send %s: %v %v", key, r, err)
		}
		sent[key] = true
	}
	if diff := waitSameCommitLog(g.commitLog(slave), g.commitLog(master), 30*time.Second); diff != "" {
		t.Fatalf("the old master's commit log is not the new master's: %s", diff)
	}
	consumeAll(t, ns, topic, sent)
}
