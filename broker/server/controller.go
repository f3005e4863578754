package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/broker/config"
	"github.com/mqops/mqops/broker/ha/autoswitch"
	"github.com/mqops/mqops/broker/ha/epoch"
	"github.com/mqops/mqops/broker/replicas"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// Controller mode (enableControllerMode, RocketMQ 5): the controller
// decides which replica of the group is master (apache/rocketmq
// broker/src/main/java/org/apache/rocketmq/broker/controller/ReplicasManager.java).
// The broker starts fenced: a slave store, not registered with the name
// servers, until the controller names a role; then it registers with the
// controller-assigned id (0 as master) and stateVersion = master epoch, so
// a name server prefers the newest master (broker/namesrv).
type ctlMode struct {
	ha  *autoswitch.Service
	mgr *replicas.Manager

	id           atomic.Int64 // id registered with the name servers, -1 while fenced
	stateVersion atomic.Int64 // master epoch
	masterAddr   atomic.Pointer[string]
	haKnown      atomic.Bool // the slave follows the master's HA address
	learnedHA    atomic.Pointer[learnedHA]
}

// learnedHA is a master's HA address as a name server's answer gave it.
type learnedHA struct{ master, ha string }

// knownHA is the HA address learned for the master at masterAddr, or "".
// The replicas manager creates (or resets) the HA client after the role
// hook, and the registration the hook triggers may answer before that:
// the address must survive until the client asks for it.
func (c *ctlMode) knownHA(masterAddr string) string {
	if l := c.learnedHA.Load(); l != nil && l.master == masterAddr {
		return l.ha
	}
	return ""
}

// openController prepares controller mode; the store is open.
// tlsClient is the useTLS client configuration, nil without useTLS.
func (b *Broker) openController(log *slog.Logger, tlsClient *tls.Config) error {
	cfg := b.cfg
	// Fenced until the controller decides.
	b.role.Store(int32(roleSlave))
	if err := b.store.SetRole(store.RoleSlave); err != nil {
		return fmt.Errorf("fence the store: %w", err)
	}
	b.store.EnableConfirmGate(true)
	eps, err := epoch.Open(cfg.StorePathEpochFile)
	if err != nil {
		return err
	}
	ctl := &ctlMode{}
	ctl.id.Store(-1)
	var maxRate int64
	if cfg.HAFlowControlEnable {
		maxRate = cfg.MaxHATransferByteInSecond
	}
	ctl.ha, err = autoswitch.Listen(net.JoinHostPort(cfg.BindAddress, strconv.Itoa(cfg.HAListenPort)), b.store, eps, autoswitch.Config{
		HeartbeatInterval:         time.Duration(cfg.HASendHeartbeatInterval) * time.Millisecond,
		HousekeepingInterval:      time.Duration(cfg.HAHousekeepingInterval) * time.Millisecond,
		TransferBatchSize:         cfg.HATransferBatchSize,
		SlaveTimeout:              time.Duration(cfg.SlaveTimeout) * time.Millisecond,
		MaxTransferBytesPerSecond: maxRate,
		AllAckInSyncStateSet:      cfg.AllAckInSyncStateSet,
		InSyncReplicas:            cfg.InSyncReplicas,
		MaxTimeSlaveNotCatchup:    time.Duration(cfg.HAMaxTimeSlaveNotCatchup) * time.Millisecond,
		SyncFromLastFile:          cfg.SyncFromLastFile,
		AsyncLearner:              cfg.AsyncLearner,
		OnExpand:                  func(set []int64) { ctl.mgr.AlterSyncStateSet(set) },
		Log:                       log,
	})
	if err != nil {
		return err
	}
	b.haAddr = net.JoinHostPort(cfg.BrokerIP2, strconv.Itoa(ctl.ha.Addr().(*net.TCPAddr).Port))
	// The controller calls are signed like the name-server registrations.
	inner, err := config.ParseCredentials(cfg.InnerClientAuthenticationCredentials)
	if err != nil {
		return fmt.Errorf("innerClientAuthenticationCredentials: %w", err)
	}
	ctl.mgr = replicas.New(replicas.Config{
		Cluster: cfg.BrokerClusterName, Name: cfg.BrokerName, Addr: b.addr,
		Controllers: replicas.ParseControllers(cfg.ControllerAddr), IdentityPath: cfg.StorePathBrokerIdentity,
		SyncBrokerMetadataPeriod:     time.Duration(cfg.SyncBrokerMetadataPeriod) * time.Millisecond,
		CheckSyncStateSetPeriod:      time.Duration(cfg.CheckSyncStateSetPeriod) * time.Millisecond,
		SyncControllerMetadataPeriod: time.Duration(cfg.SyncControllerMetadataPeriod) * time.Millisecond,
		HeartbeatInterval:            time.Duration(cfg.BrokerHeartbeatInterval) * time.Millisecond,
		HeartbeatTimeout:             time.Duration(cfg.ControllerHeartBeatTimeoutMills) * time.Millisecond,
		RequestTimeout:               max(time.Duration(cfg.SendHeartbeatTimeoutMillis)*time.Millisecond, 3*time.Second),
		ElectionPriority:             int32(cfg.BrokerElectionPriority),
		Log:                          log,
		Credentials:                  inner,
		TLS:                          tlsClient,
		Handler:                      b,
	}, ctl.ha, replicas.Hooks{
		ToMaster:      b.becomeMaster,
		ToSlave:       b.becomeSlave,
		MasterHA:      ctl.knownHA, // learned from the name servers' answer
		MaxPhyOffset:  b.store.MaxPhyOffset,
		ConfirmOffset: b.store.ConfirmOffset,
	})
	b.ctl = ctl
	return nil
}

func (b *Broker) startController() {
	if b.ctl == nil {
		return
	}
	b.ctl.ha.Start()
	b.ctl.mgr.Start()
}

func (b *Broker) closeController() {
	if b.ctl == nil {
		return
	}
	b.ctl.mgr.Close()
	if err := b.ctl.ha.Close(); err != nil {
		b.log.Warn("[HA] closing the HA service", "err", err)
	}
}

// becomeMaster: writes are accepted once the dispatcher covers the log;
// consumers see only what the SyncStateSet holds when allAckInSyncStateSet.
func (b *Broker) becomeMaster(epoch int32) error {
	if err := b.store.SetRole(store.RoleMaster); err != nil {
		return err
	}
	b.store.SetConfirmOffset(b.store.MaxPhyOffset())
	b.store.EnableConfirmGate(b.cfg.AllAckInSyncStateSet)
	b.ctl.stateVersion.Store(int64(epoch))
	b.ctl.id.Store(0)
	b.ctl.masterAddr.Store(nil)
	b.master.Store("") // no metadata sync on a master
	b.role.Store(int32(roleSyncMaster))
	b.setSpecialServices(true)
	b.log.Info("[CONTROLLER] this broker is the master now", "epoch", epoch)
	b.kickRegister()
	return nil
}

// becomeSlave: writes are refused, consumers see what the master confirmed.
func (b *Broker) becomeSlave(masterAddr string, localID int64, epoch int32) error {
	// Stopped before the store refuses writes, so none of them retries
	// refused puts.
	b.setSpecialServices(false)
	if err := b.store.SetRole(store.RoleSlave); err != nil {
		return err
	}
	// The new master's timer checkpoint refills the wheel (Follow): this
	// broker's log may be cut back, so what its wheel read may be gone.
	if err := b.timers.Reset(); err != nil {
		b.log.Error("[TIMER] emptying the timer wheel failed; a promotion would deliver again what it holds", "err", err)
	}
	b.store.EnableConfirmGate(true)
	b.ctl.stateVersion.Store(int64(epoch))
	b.ctl.id.Store(localID)
	b.ctl.masterAddr.Store(&masterAddr)
	b.ctl.haKnown.Store(false)
	b.ctl.learnedHA.Store(nil)
	b.role.Store(int32(roleSlave))
	b.master.Store(masterAddr) // metadata sync from the controller's master
	b.log.Info("[CONTROLLER] this broker is a slave now", "epoch", epoch, "master", masterAddr, "brokerId", localID)
	b.kickRegister()
	return nil
}

// setSpecialServices starts or stops the services that write on their own
// (delay levels, timer delivery, transaction check-backs), as Java's
// BrokerController.changeSpecialServiceStatus (apache/rocketmq
// broker/src/main/java/org/apache/rocketmq/broker/BrokerController.java).
// A start resumes from what reached this broker as a slave: delay progress
// from the metadata sync, timer and transaction state from the replicated
// timer queue and op records.
func (b *Broker) setSpecialServices(on bool) {
	if on {
		b.delay.Start()
		b.timers.Start()
		b.tx.Start()
		return
	}
	if err := b.delay.Stop(); err != nil {
		b.log.Error("[DELAY] saving delay progress failed", "err", err)
	}
	if err := b.timers.Stop(); err != nil {
		b.log.Error("[TIMER] flushing the timer wheel failed", "err", err)
	}
	if err := b.tx.Stop(); err != nil {
		b.log.Error("[TRANSACTION] saving transaction state failed", "err", err)
	}
}

// stateVersion is the master epoch in controller mode, else 0.
func (b *Broker) stateVersion() int64 {
	if b.ctl == nil {
		return 0
	}
	return b.ctl.stateVersion.Load()
}

// ctlRegistration is the id and stateVersion to register with; ok is
// false while fenced (no registration, as Java's isolated broker).
func (b *Broker) ctlRegistration() (id, stateVersion int64, ok bool) {
	id = b.ctl.id.Load()
	return id, b.ctl.stateVersion.Load(), id >= 0
}

// ctlRegistered takes the master's HA address from a name server's answer
// once the answer names the master the controller announced; until then
// it registers again every second (the new master may not have registered
// yet). Every matching answer hands the address to the HA client again: a
// client created or reset after an earlier answer would otherwise follow
// nobody.
func (b *Broker) ctlRegistered(resp *wire.Command) {
	want := b.ctl.masterAddr.Load()
	if want == nil {
		return
	}
	if ha := resp.GetString("haServerAddr"); ha != "" && resp.GetString("masterAddr") == *want {
		b.ctl.learnedHA.Store(&learnedHA{master: *want, ha: ha})
		b.ctl.haKnown.Store(true)
		b.ctl.ha.SetMasterHA(ha)
		return
	}
	if !b.ctl.haKnown.Load() {
		time.AfterFunc(time.Second, b.kickRegister)
	}
}

// inSyncNotEnough refuses a send that would need more in-sync replicas
// than the group has (minInSyncReplicas; Java's IN_SYNC_REPLICAS_NOT_ENOUGH).
func (b *Broker) inSyncNotEnough(c *remoting.Conn, req *wire.Command, wait bool) bool {
	if !b.inSyncShort(wait) {
		return false
	}
	b.putFailed.Add(1)
	c.ReplyCode(req, wire.SystemError, remarkInSyncNotEnough)
	return true
}

const remarkInSyncNotEnough = "in-sync replicas not enough"

// inSyncShort reports a controller-mode master with fewer in-sync
// replicas than minInSyncReplicas, which refuses sends that wait.
func (b *Broker) inSyncShort(wait bool) bool {
	if b.ctl == nil || !wait || !b.ctl.ha.IsMaster() || b.cfg.MinInSyncReplicas <= 1 {
		return false
	}
	return b.ctl.ha.InSyncReplicas() < b.cfg.MinInSyncReplicas
}

// handleNotifyRoleChanged serves NOTIFY_BROKER_ROLE_CHANGED from a controller.
func (b *Broker) handleNotifyRoleChanged(c *remoting.Conn, req *wire.Command) {
	if b.ctl == nil {
		c.ReplyCode(req, wire.RequestCodeNotSupported, "this broker is not in controller mode (enableControllerMode=false)")
		return
	}
	if err := b.ctl.mgr.HandleNotify(req); err != nil {
		c.ReplyCode(req, wire.SystemError, err.Error())
		return
	}
	c.ReplyCode(req, wire.Success, "")
}

// handleEpochCache serves GET_BROKER_EPOCH_CACHE (1007, mqadmin
// getBrokerEpoch): the epoch file with each entry's end offset, the last
// one open (Long.MAX_VALUE, as Java's AdminBrokerProcessor answers).
func (b *Broker) handleEpochCache(c *remoting.Conn, req *wire.Command) {
	if b.ctl == nil {
		c.ReplyCode(req, wire.SystemError, "this request only for controllerMode ")
		return
	}
	entries := b.ctl.ha.Epochs().Entries()
	list := make([]wire.EpochEntry, len(entries))
	for i, e := range entries {
		end := int64(math.MaxInt64)
		if i+1 < len(entries) {
			end = entries[i+1].StartOffset
		}
		list[i] = wire.EpochEntry{Epoch: e.Epoch, StartOffset: e.StartOffset, EndOffset: end}
	}
	id, _, _ := b.ctlRegistration()
	b.replyBody(c, req, wire.Marshal(wire.EpochEntryCache{ClusterName: b.cfg.BrokerClusterName, BrokerName: b.cfg.BrokerName,
		BrokerID: id, EpochList: list, MaxOffset: b.store.MaxPhyOffset()}))
}

// ctlRuntimeInfo is GET_BROKER_HA_STATUS in controller mode (apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/ha/autoswitch/AutoSwitchHAService.java,
// getRuntimeInfo): a replica is in sync when it is in the SyncStateSet.
func (b *Broker) ctlRuntimeInfo() *wire.HARuntimeInfo {
	info := &wire.HARuntimeInfo{HAConnectionInfo: []wire.HAConnectionRuntimeInfo{}}
	maxPhy := b.store.MaxPhyOffset()
	if !b.ctl.ha.IsMaster() {
		info.HAClientRuntimeInfo.MaxOffset = maxPhy
		if cs, ok := b.ctl.ha.ClientStatus(); ok {
			info.HAClientRuntimeInfo.MasterAddr = cs.Master
			if !cs.LastRead.IsZero() {
				info.HAClientRuntimeInfo.LastReadTimestamp = cs.LastRead.UnixMilli()
			}
		}
		return info
	}
	info.Master = true
	info.MasterCommitLogMaxOffset = maxPhy
	for _, s := range b.ctl.ha.Status() {
		if s.InSync {
			info.InSyncSlaveNums++
		}
		info.HAConnectionInfo = append(info.HAConnectionInfo, wire.HAConnectionRuntimeInfo{Addr: s.Addr,
			SlaveAckOffset: s.AckOffset, Diff: maxPhy - s.AckOffset, InSync: s.InSync, TransferFromWhere: s.NextOffset})
	}
	return info
}
