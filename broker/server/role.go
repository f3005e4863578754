package server

import (
	"fmt"
	"path/filepath"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// Slave behaviour (apache/rocketmq rocketmq-all-4.9.8: SendMessageProcessor,
// AdminBrokerProcessor.validateSlave, EndTransactionProcessor,
// PullMessageProcessor under broker/src/main/java/org/apache/rocketmq/broker/processor).
// The role is read at run time, not from the config: controller mode
// switches it while the broker runs.

// brokerRole is brokerRole's value at run time.
type brokerRole int32

const (
	roleAsyncMaster brokerRole = iota
	roleSyncMaster
	roleSlave
)

func parseRole(s string) brokerRole {
	switch s {
	case "SLAVE":
		return roleSlave
	case "SYNC_MASTER":
		return roleSyncMaster
	}
	return roleAsyncMaster
}

func (b *Broker) isSlave() bool { return brokerRole(b.role.Load()) == roleSlave }

// notWritableRemark is Java's remark for a send the store refuses
// (SendMessageProcessor.handlePutMessageResult, SERVICE_NOT_AVAILABLE): a
// slave's answer, and a full disk's. It lists the possible causes with the
// commit-log, consume-queue and index disk ratios.
func (b *Broker) notWritableRemark() string {
	return "service not available now. It may be caused by one of the following reasons: " +
		"the broker's disk is full [" + b.diskUtil() + "], messages are put to the slave, message store has been shut down, etc."
}

// diskUtil is Java's SendMessageProcessor.diskUtil: the used fraction of
// the filesystems of the commit log, consume queues and index.
func (b *Broker) diskUtil() string {
	ratio := func(path string) float64 {
		r, _, _, ok := diskUsage(path)
		if !ok {
			return -1
		}
		return r
	}
	return fmt.Sprintf("CL: %5.2f CQ: %5.2f INDEX: %5.2f", ratio(b.cfg.StorePathCommitLog),
		ratio(filepath.Join(b.cfg.StorePathRootDir, "consumequeue")), ratio(filepath.Join(b.cfg.StorePathRootDir, "index")))
}

// slaveRefusesAdmin answers topic and group changes on a slave: they are
// made on the master and reach the slave with the metadata sync.
func slaveRefusesAdmin(c *remoting.Conn, req *wire.Command) {
	c.ReplyCode(req, wire.SystemError, "Can't modify topic or subscription group from slave broker, please execute it from master broker.")
}

// masterAddr is the master's listen address the name servers named in
// their last registration answer; "" when none did (no master
// registered).
func (b *Broker) masterAddr() string {
	s, _ := b.master.Load().(string)
	return s
}

// noteRegistered takes the master's address from a REGISTER_BROKER answer
// (Java's BrokerController.doRegisterBrokerAll sets SlaveSynchronize's
// masterAddr from every answer, null included).
func (b *Broker) noteRegistered(resp *wire.Command) {
	if b.cfg.BrokerID == 0 {
		return
	}
	addr := resp.GetString("masterAddr")
	if old := b.masterAddr(); old != addr {
		b.master.Store(addr)
		b.log.Info("[SLAVE_SYNC] master address from the name server", "from", old, "to", addr)
	}
}
