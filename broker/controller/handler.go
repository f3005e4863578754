package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/version"
	"github.com/mqops/mqops/wire"
)

// ServeRequest implements remoting.Handler (ControllerRequestProcessor).
// Writes block only the requesting connection, for one Raft round trip.
func (c *Controller) ServeRequest(conn *remoting.Conn, req *wire.Command) {
	if c.opts.ACL != nil && !c.opts.ACL.Allow(conn, req) {
		return
	}
	res := c.handle(conn, req)
	if req.IsOneway() {
		return
	}
	resp := wire.ResponseTo(req, res.Code, res.Remark)
	for _, k := range slices.Sorted(maps.Keys(res.Fields)) {
		resp.Ext = append(resp.Ext, wire.KV{Key: []byte(k), Value: []byte(res.Fields[k])})
	}
	resp.Body = res.Body
	conn.Reply(req, &resp)
}

// Handle serves one request without a connection (tests, and the name
// server when it embeds the controller).
func (c *Controller) Handle(req *wire.Command) (code int32, remark string, fields map[string]string, body []byte) {
	res := c.handle(nil, req)
	return res.Code, res.Remark, res.Fields, res.Body
}

func (c *Controller) handle(conn *remoting.Conn, req *wire.Command) *result {
	res, err := c.dispatch(conn, req)
	if err != nil {
		var he *wire.HeaderError
		if !errors.As(err, &he) {
			c.log.Warn("[CONTROLLER] request failed", "code", req.Code, "err", err)
		}
		return fail(wire.SystemError, "%v", err)
	}
	return res
}

func (c *Controller) dispatch(conn *remoting.Conn, req *wire.Command) (*result, error) {
	switch req.Code {
	case wire.BrokerHeartbeat:
		h, err := wire.ParseBrokerHeartbeatHeader(req)
		if err != nil {
			return nil, err
		}
		if !h.HasBrokerID {
			return fail(wire.ControllerInvalidRequest, "Heart beat with empty brokerId"), nil
		}
		c.live.heartbeat(h, conn)
		return &result{Remark: "Heart beat success"}, nil
	case wire.ControllerGetMetadataInfo:
		return c.metadata(), nil
	case wire.GetControllerConfig:
		return &result{Body: c.configText()}, nil
	case wire.UpdateControllerConfig:
		return c.updateConfig(req.Body), nil
	case wire.GetBrokerRuntimeInfo:
		return &result{Body: wire.Marshal(wire.KVTable{Table: c.runtimeInfo()})}, nil
	}
	if !c.ready.Load() {
		return c.notLeader(), nil
	}
	switch req.Code {
	case wire.ControllerAlterSyncStateSet:
		h, err := wire.ParseAlterSyncStateSetHeader(req)
		if err != nil {
			return nil, err
		}
		var body wire.SyncStateSet
		if err := wire.UnmarshalLenient(req.Body, &body); err != nil {
			return nil, fmt.Errorf("decode SyncStateSet body: %w", err)
		}
		set := c.fsm.get(h.BrokerName)
		var alive []liveInfo
		if set != nil {
			alive = c.live.aliveIn(set.ClusterName, h.BrokerName)
		}
		return c.propose(&command{Op: opAlterSyncSet, Name: h.BrokerName, ID: h.MasterBrokerID, MasterEpoch: h.MasterEpoch,
			SSEpoch: body.SyncStateSetEpoch, Set: body.SyncStateSet, Alive: alive}), nil
	case wire.ControllerElectMaster:
		h, err := wire.ParseElectMasterHeader(req)
		if err != nil {
			return nil, err
		}
		res := c.electMaster(h.BrokerName, h.BrokerID, h.DesignateElect)
		return res, nil
	case wire.ControllerRegisterBroker:
		h, err := wire.ParseRegisterBrokerToControllerHeader(req)
		if err != nil {
			return nil, err
		}
		return c.propose(&command{Op: opRegister, Cluster: h.ClusterName, Name: h.BrokerName, ID: h.BrokerID, Addr: h.BrokerAddress,
			Alive: c.live.aliveIn(h.ClusterName, h.BrokerName)}), nil
	case wire.ControllerGetReplicaInfo:
		name, err := wire.ParseBrokerNameHeader(req)
		if err != nil {
			return nil, err
		}
		return c.replicaInfo(name), nil
	case wire.ControllerGetSyncStateData:
		var names []string
		if len(req.Body) > 0 {
			if err := json.Unmarshal(req.Body, &names); err != nil {
				return nil, fmt.Errorf("decode broker name list: %w", err)
			}
		}
		return c.syncStateData(names), nil
	case wire.ControllerGetNextBrokerID:
		h, err := wire.ParseBrokerSetHeader(req)
		if err != nil {
			return nil, err
		}
		next := wire.FirstBrokerControllerID
		if b := c.fsm.get(h.BrokerName); b != nil {
			next = b.NextBrokerID
		}
		r := wire.GetNextBrokerIDResponseHeader{ClusterName: h.ClusterName, BrokerName: h.BrokerName, NextBrokerID: next}
		return &result{Fields: r.Fields()}, nil
	case wire.ControllerApplyBrokerID:
		h, err := wire.ParseApplyBrokerIDHeader(req)
		if err != nil {
			return nil, err
		}
		return c.propose(&command{Op: opApplyBrokerID, Cluster: h.ClusterName, Name: h.BrokerName, ID: h.AppliedBrokerID, Code: h.RegisterCheckCode}), nil
	case wire.CleanBrokerData:
		h, err := wire.ParseCleanBrokerDataHeader(req)
		if err != nil {
			return nil, err
		}
		var ids []int64
		for s := range strings.SplitSeq(h.IDsToClean, ";") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			id, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fail(wire.ControllerInvalidCleanBrokerMetadata, "Please set the option <brokerControllerIdsToClean> according to the format, exception: %v", err), nil
			}
			ids = append(ids, id)
		}
		return c.propose(&command{Op: opCleanBroker, Cluster: h.ClusterName, Name: h.BrokerName, IDs: ids, CleanLiving: h.CleanLivingBroker,
			Alive: c.live.aliveIn(h.ClusterName, h.BrokerName)}), nil
	}
	return fail(wire.RequestCodeNotSupported, " request type %d not supported", req.Code), nil
}

// electMaster proposes an election for a set with this node's liveness
// view and, on success, tells the set's live replicas.
func (c *Controller) electMaster(name string, brokerID int64, designate bool) *result {
	cluster := ""
	if b := c.fsm.get(name); b != nil {
		cluster = b.ClusterName
	}
	res := c.propose(&command{Op: opElectMaster, Name: name, ID: brokerID, Designate: designate,
		Unclean: c.unclean.Load(), Alive: c.live.aliveIn(cluster, name)})
	if res.Elected != nil {
		c.log.Info("[CONTROLLER] elected master", "brokerName", name, "masterBrokerId", *res.Elected.MasterID,
			"masterEpoch", res.Elected.MasterEpoch, "requestedBy", brokerID)
		if c.notify.Load() {
			c.notifyRoleChanged(res.Elected)
		}
	}
	return res
}

// notifyRoleChanged sends NOTIFY_BROKER_ROLE_CHANGED to every live replica
// of the set over its heartbeat connection, without waiting: a broker that
// misses it learns the change from its GET_REPLICA_INFO poll. It is signed
// with the inner credential, so a broker with aclEnable serves it without
// white-listing the controllers.
func (c *Controller) notifyRoleChanged(b *brokerSet) {
	h := wire.MasterInfoHeader{HasMaster: true, MasterBrokerID: *b.MasterID, MasterAddress: b.addr(b.MasterID),
		MasterEpoch: b.MasterEpoch, SyncStateSetEpoch: b.SyncStateSetEpoch, HasSyncStateSetEpoch: true}
	body := syncStateBody(b)
	for _, conn := range c.live.conns(b.ClusterName, b.BrokerName) {
		req := wire.NewRequest(wire.NotifyBrokerRoleChanged, h.Fields(), body)
		if cr := c.opts.Credentials; !cr.IsEmpty() {
			wire.Sign(req, cr.AccessKey, cr.SecretKey, "")
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			resp, err := conn.Invoke(req, 3*time.Second)
			switch {
			case err != nil:
				c.log.Warn("[CONTROLLER] notify role change failed", "broker", conn.RemoteAddr().String(), "err", err)
			case resp.Code != wire.Success:
				c.log.Warn("[CONTROLLER] broker refused the role change notification; it will learn it by polling", "broker", conn.RemoteAddr().String(),
					"code", wire.ResponseName(resp.Code), "remark", string(resp.Remark))
			default:
				c.log.Info("[CONTROLLER] broker notified of the role change", "broker", conn.RemoteAddr().String(), "masterEpoch", h.MasterEpoch)
			}
		}()
	}
}

// replicaInfo is CONTROLLER_GET_REPLICA_INFO, read on the leader.
func (c *Controller) replicaInfo(name string) *result {
	b := c.fsm.get(name)
	if b == nil {
		return fail(wire.ControllerBrokerMetadataNotExist, "Broker metadata is not existed")
	}
	h := wire.MasterInfoHeader{MasterEpoch: b.MasterEpoch}
	fields := map[string]string{"masterEpoch": strconv.Itoa(int(b.MasterEpoch))}
	if b.MasterID != nil {
		h.HasMaster, h.MasterBrokerID, h.MasterAddress = true, *b.MasterID, b.addr(b.MasterID)
		fields = h.Fields()
	}
	return &result{Fields: fields, Body: syncStateBody(b)}
}

// syncStateData is CONTROLLER_GET_SYNC_STATE_DATA for admin tools.
func (c *Controller) syncStateData(names []string) *result {
	out := wire.BrokerReplicasInfo{ReplicasInfoTable: map[string]*wire.ReplicasInfo{}}
	for _, name := range names {
		b := c.fsm.get(name)
		if b == nil {
			continue
		}
		alive := c.live.aliveIn(b.ClusterName, name)
		info := &wire.ReplicasInfo{MasterBrokerID: b.MasterID, MasterAddress: b.addr(b.MasterID), MasterEpoch: b.MasterEpoch,
			SyncStateSetEpoch: b.SyncStateSetEpoch, InSyncReplicas: []wire.ReplicaIdentity{}, NotInSyncReplicas: []wire.ReplicaIdentity{}}
		for _, id := range slices.Sorted(maps.Keys(b.Replicas)) {
			r := wire.ReplicaIdentity{BrokerName: name, BrokerID: id, BrokerAddress: b.Replicas[id].Addr, Alive: slices.ContainsFunc(alive, func(l liveInfo) bool { return l.ID == id })}
			if b.inSync(id) {
				info.InSyncReplicas = append(info.InSyncReplicas, r)
			} else {
				info.NotInSyncReplicas = append(info.NotInSyncReplicas, r)
			}
		}
		out.ReplicasInfoTable[name] = info
	}
	return &result{Body: wire.Marshal(&out)}
}

// metadata is CONTROLLER_GET_METADATA_INFO, served by every node.
func (c *Controller) metadata() *result {
	id, addr := c.leader()
	var peers strings.Builder
	for _, p := range c.opts.Peers {
		peers.WriteString(p.ID + ":" + p.Addr + ";")
	}
	h := wire.GetMetaDataResponseHeader{Group: c.opts.Group, ControllerLeaderID: id, ControllerLeaderAddress: addr,
		IsLeader: c.ready.Load(), Peers: peers.String()}
	return &result{Fields: h.Fields()}
}

// runtimeInfo answers GET_BROKER_RUNTIME_INFO on a controller, an mqops
// extension (Java's controller does not serve code 28): the node's
// identity and role, and with aclEnable its ACL counters under the
// broker's keys (acl_denied_total, acl_denied_total.<reason>,
// acl_allowed_admin_total, acl_reload_failures), so the Zabbix helper
// and mqadmin brokerStatus read a controller as they read a broker.
func (c *Controller) runtimeInfo() map[string]string {
	kv := map[string]string{
		"controllerGroup":  c.opts.Group,
		"controllerSelfId": c.opts.SelfID,
		"isLeader":         strconv.FormatBool(c.ready.Load()),
		"aclEnable":        strconv.FormatBool(c.opts.ACL != nil),
		"mqopsVersion":     version.Version,
	}
	if c.opts.ACL != nil {
		maps.Copy(kv, c.opts.ACL.Stats.Snapshot())
	}
	return kv
}
