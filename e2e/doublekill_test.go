package e2e

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

// The 2-replica kill loop killing the new master too (issue 12): A is
// master, B in its SyncStateSet; kill -9 of A elects B (SyncStateSet {B});
// B takes writes A never saw and is killed before A returns, so no
// replica is alive. A comes back, possibly behind: it is not in the
// SyncStateSet, and with enableElectUncleanMaster=false the controller
// must not make it master (its own election request, a designated
// electMaster and the controller's scans all fail with
// CONTROLLER_ELECT_MASTER_FAILED, 2012), so the group stays without a
// master rather than lose B's acked messages. When B returns it is
// elected, A follows it and cuts any tail of its own. No SEND_OK message
// is lost; the commit logs end byte-equal. MQOPS_HA_DOUBLE_KILLS sets the
// rounds (default 1).
func TestControllerKillNewMaster(t *testing.T) {
	rounds := 1
	if s := os.Getenv("MQOPS_HA_DOUBLE_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("MQOPS_HA_DOUBLE_KILLS=%q: want a positive number", s)
		}
		rounds = n
	}
	nss, ctl := startControllerNamesrvs(t, 1)
	g := startCtlReplicas(t, ctl, nss[0], 2, haBrokerKeys(ctl))
	all := slices.Clone(g.procs)
	master := g.waitInSync(90*time.Second, 2)
	topic := fmt.Sprintf("KillNew%d", time.Now().UnixNano())
	createRoutedTopic(t, nss[0], g.procs[master].addr, topic)
	l := startLoad(t, nss, topic, 2, 20*time.Millisecond)
	waitFor(t, 60*time.Second, "the first SEND_OKs", func() bool { return l.oks() >= 50 })

	for round := range rounds {
		a, b := master, 1-master
		floor := l.oks() + 100
		waitFor(t, 60*time.Second, "100 SEND_OKs through A", func() bool { return l.oks() >= floor })
		g.procs[a].kill()
		g.waitMaster(60*time.Second, b, "B elected after kill -9 of A")
		// B's SEND_OKs are on B alone: A is dead and out of the set.
		floor = l.oks() + 50
		waitFor(t, 60*time.Second, "50 SEND_OKs through B", func() bool { return l.oks() >= floor })
		g.procs[b].kill()

		// From A's return until B is master again, the controller must
		// never have A as master: watched throughout.
		aAddr := g.procs[a].addr // restart keeps the listen port
		var unclean atomic.Value
		watching := make(chan struct{})
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			for {
				select {
				case <-watching:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if info := syncStateData(ctl); info != nil && info.MasterAddress == aAddr {
					unclean.Store(fmt.Sprintf("%+v", *info))
				}
			}
		}()
		all = append(all, g.restart(a))
		var aID int64 = -1
		waitFor(t, 60*time.Second, "A registered and alive, B dead, no master", func() bool {
			if u := unclean.Load(); u != nil {
				t.Fatalf("round %d: A was elected master while out of the SyncStateSet: %s", round+1, u)
			}
			info := syncStateData(ctl)
			if info == nil {
				return false
			}
			aID = -1
			bAlive := false
			for _, r := range slices.Concat(info.InSyncReplicas, info.NotInSyncReplicas) {
				if r.BrokerAddress == aAddr && r.Alive {
					aID = r.BrokerID
				} else if r.Alive {
					bAlive = true
				}
			}
			return aID >= 0 && !bAlive && info.MasterBrokerID == nil
		})
		if info := syncStateData(ctl); len(info.InSyncReplicas) != 1 || info.InSyncReplicas[0].BrokerAddress == aAddr {
			t.Fatalf("round %d: the SyncStateSet changed while its only member was dead: %+v", round+1, info)
		}
		// An operator's electMaster of A is refused too.
		el := wire.ElectMasterHeader{ClusterName: "DefaultCluster", BrokerName: "broker-a", BrokerID: aID, DesignateElect: true}
		if resp := ctlCall(ctl[0], wire.ControllerElectMaster, el.Fields(), nil); resp == nil || resp.Code != wire.ControllerElectMasterFailed {
			t.Fatalf("round %d: electMaster of A (not in the SyncStateSet, enableElectUncleanMaster=false): %+v", round+1, resp)
		}
		if routeMaster(t, nss[0], topic) == aAddr {
			t.Fatalf("round %d: A routed as id 0 while out of the SyncStateSet", round+1)
		}

		all = append(all, g.restart(b))
		g.waitMaster(60*time.Second, b, "B, the SyncStateSet's only member, elected on its return")
		close(watching)
		<-watched
		if u := unclean.Load(); u != nil {
			t.Fatalf("round %d: A was master while out of the SyncStateSet: %s", round+1, u)
		}
		master = g.waitInSync(120*time.Second, 2)
		if master != b {
			t.Fatalf("round %d: master %d after B's return, want B", round+1, master)
		}
		t.Logf("killnew: round %d: A %s, B %s: A was not elected while alone; B elected on return, A back in sync",
			round+1, g.procs[a].addr, g.procs[b].addr)
	}
	attempted, ok, failed, unique, dups := l.finish(t, 180*time.Second)
	commitLogsEqual(t, g.dirs, master)
	noPanics(t, all)
	t.Logf("killnew: rounds=%d attempted=%d send_ok=%d failed=%d consumed_unique=%d duplicates=%d", rounds, attempted, ok, failed, unique, dups)
}
