package server

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/mqops/mqops/broker/ha"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/wire"
)

// Master–slave replication (broker/ha). A master (ASYNC_MASTER or
// SYNC_MASTER) serves its commit log on haListenPort; a SLAVE follows
// haMasterAddress, or else the master's haServerAddr from the name
// servers' registration answers, as Java's BrokerController does
// (apache/rocketmq broker/src/main/java/org/apache/rocketmq/broker/BrokerController.java).

// openHA prepares replication for the configured role; the store is open.
func (b *Broker) openHA(log *slog.Logger) error {
	cfg := b.cfg
	hc := ha.Config{
		HeartbeatInterval:    time.Duration(cfg.HASendHeartbeatInterval) * time.Millisecond,
		HousekeepingInterval: time.Duration(cfg.HAHousekeepingInterval) * time.Millisecond,
		TransferBatchSize:    cfg.HATransferBatchSize,
		FallbehindMax:        cfg.HASlaveFallbehindMax,
		SlaveTimeout:         time.Duration(cfg.SlaveTimeout) * time.Millisecond,
		Log:                  log,
	}
	if cfg.HAFlowControlEnable {
		hc.MaxTransferBytesPerSecond = cfg.MaxHATransferByteInSecond
	}
	if cfg.BrokerRole == "SLAVE" {
		if err := b.store.SetRole(store.RoleSlave); err != nil {
			return fmt.Errorf("make the store a slave's: %w", err)
		}
		b.haClient = ha.NewClient(b.store, hc)
		if len(cfg.HAMasterAddress) >= 6 { // Java's test for "set"
			b.haClient.SetMaster(cfg.HAMasterAddress)
		}
		b.haAddr = net.JoinHostPort(cfg.BrokerIP2, strconv.Itoa(cfg.HAListenPort))
		return nil
	}
	srv, err := ha.Listen(net.JoinHostPort(cfg.BindAddress, strconv.Itoa(cfg.HAListenPort)), b.store, hc)
	if err != nil {
		return err
	}
	b.haServer = srv
	b.syncMaster = cfg.BrokerRole == "SYNC_MASTER"
	b.haAddr = net.JoinHostPort(cfg.BrokerIP2, strconv.Itoa(srv.Addr().(*net.TCPAddr).Port))
	return nil
}

func (b *Broker) startHA() {
	if b.haServer != nil {
		b.haServer.Start()
	}
	if b.haClient != nil {
		b.haClient.Start()
	}
}

// closeHA stops replication; pending SYNC_MASTER sends fail with
// FLUSH_SLAVE_TIMEOUT.
func (b *Broker) closeHA() {
	if b.haServer != nil {
		if err := b.haServer.Close(); err != nil {
			b.log.Warn("[HA] closing the HA server", "err", err)
		}
	}
	if b.haClient != nil {
		b.haClient.Close()
	}
}

// followRegisteredMaster takes the master's HA address from a REGISTER_BROKER
// answer unless haMasterAddress fixes it (Java's
// updateMasterHAServerAddrPeriodically).
func (b *Broker) followRegisteredMaster(resp *wire.Command) {
	if b.haClient == nil || len(b.cfg.HAMasterAddress) >= 6 {
		return
	}
	if addr := resp.GetString("haServerAddr"); addr != "" {
		b.haClient.SetMaster(addr)
	}
}

// HAStatus is the broker's replication state (GET_BROKER_HA_STATUS, lag
// metrics): the slaves a master streams to, or a slave's connection.
type HAStatus struct {
	Role     string
	MaxPhy   int64
	Slaves   []ha.SlaveStatus // master
	Follower *ha.ClientStatus // slave
}

// HAStatus reports replication as this broker sees it.
func (b *Broker) HAStatus() HAStatus {
	st := HAStatus{Role: b.cfg.BrokerRole, MaxPhy: b.store.MaxPhyOffset()}
	if b.haServer != nil {
		st.Slaves = b.haServer.Status()
	}
	if b.haClient != nil {
		cs := b.haClient.Status()
		st.Follower = &cs
	}
	return st
}
