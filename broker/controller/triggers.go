package controller

import (
	"time"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// scanLoop expires silent replicas every ScanNotActiveBroker and, on the
// leader, re-elects sets whose master is gone every ScanInactiveMaster
// (DefaultBrokerHeartbeatManager.scanNotActiveBroker and
// ControllerManager's inactive-master scan).
func (c *Controller) scanLoop() {
	defer c.wg.Done()
	expiry := time.NewTicker(c.opts.ScanNotActiveBroker)
	defer expiry.Stop()
	inactive := time.NewTicker(c.opts.ScanInactiveMaster)
	defer inactive.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-expiry.C:
			c.expireScan()
		case <-inactive.C:
			c.inactiveMasterScan()
		}
	}
}

// expireScan drops replicas whose heartbeats stopped and re-elects the
// groups whose master was among them.
func (c *Controller) expireScan() {
	gone := c.live.expire()
	for _, k := range gone {
		c.log.Info("[CONTROLLER] broker heartbeat expired", "cluster", k.cluster, "brokerName", k.name, "brokerId", k.id)
	}
	c.mastersGone(gone, false)
}

// inactiveMasterScan re-elects, on the leader, every group whose master is
// not alive while another replica is (ReplicasInfoManager.scanNeedReelectBrokerSets).
func (c *Controller) inactiveMasterScan() {
	if !c.ready.Load() || c.inGrace() {
		return
	}
	for _, b := range c.fsm.all() {
		if b.MasterID == nil {
			continue
		}
		alive := c.live.aliveIn(b.ClusterName, b.BrokerName)
		if len(alive) > 0 && !isAliveIn(alive, *b.MasterID) {
			c.triggerElect(b.BrokerName)
		}
	}
}

// onConnClose runs when any controller connection closes: a broker whose
// heartbeat connection it was is gone at once (BrokerHousekeepingService).
func (c *Controller) onConnClose(conn *remoting.Conn) {
	gone := c.live.closed(conn)
	for _, k := range gone {
		c.log.Info("[CONTROLLER] broker connection closed", "cluster", k.cluster, "brokerName", k.name, "brokerId", k.id)
	}
	c.mastersGone(gone, true)
}

// mastersGone triggers an election for every set whose master is among
// gone. Right after a leader change the heartbeat table may be incomplete,
// so only a closed connection, which is certain, triggers one then.
func (c *Controller) mastersGone(gone []replicaKey, certain bool) {
	if len(gone) == 0 || !c.ready.Load() || (!certain && c.inGrace()) {
		return
	}
	for _, k := range gone {
		b := c.fsm.get(k.name)
		if b != nil && b.MasterID != nil && *b.MasterID == k.id {
			c.triggerElect(k.name)
		}
	}
}

func (c *Controller) inGrace() bool {
	return c.live.now().Sub(time.Unix(0, c.leaderSince.Load())) < c.opts.LeaderGrace
}

// triggerElect runs a controller-initiated election (brokerId -1) in the
// background, retrying up to ElectMaxRetry times while the log write fails;
// one per set at a time.
func (c *Controller) triggerElect(name string) {
	if _, busy := c.electing.LoadOrStore(name, struct{}{}); busy {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.electing.Delete(name)
		for try := 1; try <= c.opts.ElectMaxRetry; try++ {
			res := c.electMaster(name, -1, false)
			switch res.Code {
			case wire.Success, wire.ControllerMasterStillExist, wire.ControllerMasterNotAvailable, wire.ControllerBrokerNeedToBeRegistered:
				if res.Code == wire.ControllerMasterNotAvailable {
					c.log.Warn("[CONTROLLER] master gone and no replica can take over", "brokerName", name)
				}
				return
			}
			c.log.Warn("[CONTROLLER] controller-triggered election failed", "brokerName", name, "try", try, "code", res.Code, "remark", res.Remark)
			select {
			case <-c.stop:
				return
			case <-time.After(electRetryDelay):
			}
		}
	}()
}
