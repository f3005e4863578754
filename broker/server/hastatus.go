package server

import (
	"strconv"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// haRuntimeInfo is GET_BROKER_HA_STATUS's answer in Java's HARuntimeInfo
// shape (apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/ha/DefaultHAService.java,
// getRuntimeInfo): a master lists its slave connections, a slave its link
// to the master. A slave is in sync once it has reported and is less than
// haSlaveFallbehindMax (RocketMQ 5: haMaxGapNotInSync) bytes behind; Java
// also counts a slave that has not reported yet when the log is small.
func (b *Broker) haRuntimeInfo() *wire.HARuntimeInfo {
	st := b.HAStatus()
	info := &wire.HARuntimeInfo{HAConnectionInfo: []wire.HAConnectionRuntimeInfo{}}
	if f := st.Follower; f != nil {
		info.HAClientRuntimeInfo = wire.HAClientRuntimeInfo{MasterAddr: f.Master, MaxOffset: f.MaxOffset}
		if !f.LastRead.IsZero() {
			info.HAClientRuntimeInfo.LastReadTimestamp = f.LastRead.UnixMilli()
		}
		return info
	}
	info.Master = true
	info.MasterCommitLogMaxOffset = st.MaxPhy
	for _, s := range st.Slaves {
		inSync := s.AckOffset >= 0 && s.Lag < b.cfg.HASlaveFallbehindMax
		if inSync {
			info.InSyncSlaveNums++
		}
		info.HAConnectionInfo = append(info.HAConnectionInfo, wire.HAConnectionRuntimeInfo{Addr: s.Addr, SlaveAckOffset: s.AckOffset,
			Diff: s.Lag, InSync: inSync, TransferredByteInSecond: s.BytesPerSecond, TransferFromWhere: s.NextOffset})
	}
	return info
}

// handleHAStatus answers GET_BROKER_HA_STATUS (907; mqadmin haStatus).
func (b *Broker) handleHAStatus(c *remoting.Conn, req *wire.Command) {
	b.replyBody(c, req, wire.Marshal(b.haRuntimeInfo()))
}

// addHARuntime puts replication into the runtime table (no Java broker
// reports it there; the names follow mqadmin haStatus's columns): on a
// master the slave count, how many are in sync and the largest lag in
// bytes; on a slave its master and when it last heard from it.
func (b *Broker) addHARuntime(kv map[string]string) {
	info := b.haRuntimeInfo()
	if !info.Master {
		c := info.HAClientRuntimeInfo
		kv["haMasterAddr"] = c.MasterAddr
		kv["haLastReadTimestamp"] = strconv.FormatInt(c.LastReadTimestamp, 10)
		return
	}
	var worst int64
	for _, c := range info.HAConnectionInfo {
		worst = max(worst, c.Diff)
	}
	kv["haSlaveNum"] = strconv.Itoa(len(info.HAConnectionInfo))
	kv["haInSyncSlaveNum"] = strconv.Itoa(int(info.InSyncSlaveNums))
	kv["haMaxSlaveDiff"] = strconv.FormatInt(worst, 10)
}
