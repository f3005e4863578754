package wire

import (
	"fmt"
	"math"
	"slices"
	"strconv"
)

// RocketMQ 5 controller mode: request codes, response codes, the extFields of
// every header and the JSON bodies exchanged by brokers, controllers and admin
// tools (apache/rocketmq 5.x
// remoting/src/main/java/org/apache/rocketmq/remoting/protocol/RequestCode.java,
// ResponseCode.java, header/controller/**, header/namesrv/BrokerHeartbeatRequestHeader.java,
// header/NotifyBrokerRoleChangedRequestHeader.java and body/{SyncStateSet,
// ElectMasterResponseBody,BrokerMemberGroup,BrokerReplicasInfo,EpochEntryCache,
// HARuntimeInfo}.java).

// Controller request codes.
const (
	BrokerHeartbeat             int32 = 904
	GetBrokerHAStatus           int32 = 907
	ControllerAlterSyncStateSet int32 = 1001
	ControllerElectMaster       int32 = 1002
	ControllerRegisterBroker    int32 = 1003
	ControllerGetReplicaInfo    int32 = 1004
	ControllerGetMetadataInfo   int32 = 1005
	ControllerGetSyncStateData  int32 = 1006
	GetBrokerEpochCache         int32 = 1007
	NotifyBrokerRoleChanged     int32 = 1008
	UpdateControllerConfig      int32 = 1009
	GetControllerConfig         int32 = 1010
	CleanBrokerData             int32 = 1011
	ControllerGetNextBrokerID   int32 = 1012
	ControllerApplyBrokerID     int32 = 1013
)

// Controller response codes.
const (
	ControllerFencedMasterEpoch          int32 = 2000
	ControllerFencedSyncStateSetEpoch    int32 = 2001
	ControllerInvalidMaster              int32 = 2002
	ControllerInvalidReplicas            int32 = 2003
	ControllerMasterNotAvailable         int32 = 2004
	ControllerInvalidRequest             int32 = 2005
	ControllerBrokerNotAlive             int32 = 2006
	ControllerNotLeader                  int32 = 2007
	ControllerBrokerMetadataNotExist     int32 = 2008
	ControllerInvalidCleanBrokerMetadata int32 = 2009
	ControllerBrokerNeedToBeRegistered   int32 = 2010
	ControllerMasterStillExist           int32 = 2011
	ControllerElectMasterFailed          int32 = 2012
	ControllerAlterSyncStateSetFailed    int32 = 2013
	ControllerBrokerIDInvalid            int32 = 2014
	ControllerJRaftInternalError         int32 = 2015
	ControllerBrokerLiveInfoNotExists    int32 = 2016
)

func init() {
	for code, name := range map[int32]string{
		ControllerFencedMasterEpoch:          "CONTROLLER_FENCED_MASTER_EPOCH",
		ControllerFencedSyncStateSetEpoch:    "CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH",
		ControllerInvalidMaster:              "CONTROLLER_INVALID_MASTER",
		ControllerInvalidReplicas:            "CONTROLLER_INVALID_REPLICAS",
		ControllerMasterNotAvailable:         "CONTROLLER_MASTER_NOT_AVAILABLE",
		ControllerInvalidRequest:             "CONTROLLER_INVALID_REQUEST",
		ControllerBrokerNotAlive:             "CONTROLLER_BROKER_NOT_ALIVE",
		ControllerNotLeader:                  "CONTROLLER_NOT_LEADER",
		ControllerBrokerMetadataNotExist:     "CONTROLLER_BROKER_METADATA_NOT_EXIST",
		ControllerInvalidCleanBrokerMetadata: "CONTROLLER_INVALID_CLEAN_BROKER_METADATA",
		ControllerBrokerNeedToBeRegistered:   "CONTROLLER_BROKER_NEED_TO_BE_REGISTERED",
		ControllerMasterStillExist:           "CONTROLLER_MASTER_STILL_EXIST",
		ControllerElectMasterFailed:          "CONTROLLER_ELECT_MASTER_FAILED",
		ControllerAlterSyncStateSetFailed:    "CONTROLLER_ALTER_SYNC_STATE_SET_FAILED",
		ControllerBrokerIDInvalid:            "CONTROLLER_BROKER_ID_INVALID",
		ControllerJRaftInternalError:         "CONTROLLER_JRAFT_INTERNAL_ERROR",
		ControllerBrokerLiveInfoNotExists:    "CONTROLLER_BROKER_LIVE_INFO_NOT_EXISTS",
	} {
		responseNames[code] = name
	}
}

// FirstBrokerControllerID is the id the controller gives the first replica
// of a broker set (MixAll.FIRST_BROKER_CONTROLLER_ID).
const FirstBrokerControllerID int64 = 1

// DefaultBrokerHeartbeatTimeout applies when a heartbeat carries no
// heartbeatTimeoutMills (BrokerHeartbeatManager.DEFAULT_BROKER_CHANNEL_EXPIRED_TIME).
const DefaultBrokerHeartbeatTimeout int64 = 10_000

// HeaderError is a missing or malformed extField. Java's header decoder
// fails the same way and the request is answered with SYSTEM_ERROR and this
// text.
type HeaderError struct {
	Field string
	Value string // the malformed value; empty when the field is missing
}

func (e *HeaderError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("the custom field <%s> is null", e.Field)
	}
	return fmt.Sprintf("the custom field <%s> is not a valid value: %q", e.Field, e.Value)
}

// headerReader decodes one header, remembering the first error.
type headerReader struct {
	c   *Command
	err error
}

func (r *headerReader) str(name string, required bool) string {
	if required && !r.c.Has(name) && r.err == nil {
		r.err = &HeaderError{Field: name}
	}
	return r.c.GetString(name)
}

// int parses an integer field within [lo, hi]; absent fields give def
// (or an error when required).
func (r *headerReader) int(name string, required bool, def, lo, hi int64) (int64, bool) {
	if !r.c.Has(name) {
		if required && r.err == nil {
			r.err = &HeaderError{Field: name}
		}
		return def, false
	}
	v, ok := r.c.GetInt(name)
	if !ok || v < lo || v > hi {
		if r.err == nil {
			r.err = &HeaderError{Field: name, Value: r.c.GetString(name)}
		}
		return def, false
	}
	return v, true
}

func (r *headerReader) i64(name string, required bool, def int64) (int64, bool) {
	return r.int(name, required, def, math.MinInt64, math.MaxInt64)
}

func (r *headerReader) i32(name string, required bool, def int32) (int32, bool) {
	v, ok := r.int(name, required, int64(def), math.MinInt32, math.MaxInt32)
	return int32(v), ok
}

func (r *headerReader) boolean(name string, required bool) bool {
	if required && !r.c.Has(name) && r.err == nil {
		r.err = &HeaderError{Field: name}
	}
	return r.c.GetBool(name)
}

func i64s(v int64) string { return strconv.FormatInt(v, 10) }

// BrokerHeartbeatHeader is BROKER_HEARTBEAT (904), sent oneway by every
// replica to every controller. Absent optional fields take Java's defaults
// (DefaultBrokerHeartbeatManager.onBrokerHeartbeat): epoch, maxOffset and
// confirmOffset -1, timeout DefaultBrokerHeartbeatTimeout, priority MaxInt32.
type BrokerHeartbeatHeader struct {
	ClusterName, BrokerAddr, BrokerName string
	BrokerID                            int64
	HasBrokerID                         bool // false: the controller answers 2005
	Epoch                               int32
	MaxOffset, ConfirmOffset            int64
	HeartbeatTimeoutMillis              int64
	ElectionPriority                    int32
}

// Fields returns the extFields.
func (h *BrokerHeartbeatHeader) Fields() map[string]string {
	m := map[string]string{
		"clusterName": h.ClusterName, "brokerAddr": h.BrokerAddr, "brokerName": h.BrokerName,
		"epoch": strconv.Itoa(int(h.Epoch)), "maxOffset": i64s(h.MaxOffset), "confirmOffset": i64s(h.ConfirmOffset),
		"heartbeatTimeoutMills": i64s(h.HeartbeatTimeoutMillis), "electionPriority": strconv.Itoa(int(h.ElectionPriority)),
	}
	if h.HasBrokerID {
		m["brokerId"] = i64s(h.BrokerID)
	}
	return m
}

// ParseBrokerHeartbeatHeader decodes a 904 request.
func ParseBrokerHeartbeatHeader(c *Command) (*BrokerHeartbeatHeader, error) {
	r := headerReader{c: c}
	h := &BrokerHeartbeatHeader{
		ClusterName: r.str("clusterName", true),
		BrokerAddr:  r.str("brokerAddr", true),
		BrokerName:  r.str("brokerName", true),
	}
	h.BrokerID, h.HasBrokerID = r.i64("brokerId", false, -1)
	h.Epoch, _ = r.i32("epoch", false, -1)
	h.MaxOffset, _ = r.i64("maxOffset", false, -1)
	h.ConfirmOffset, _ = r.i64("confirmOffset", false, -1)
	h.HeartbeatTimeoutMillis, _ = r.i64("heartbeatTimeoutMills", false, DefaultBrokerHeartbeatTimeout)
	h.ElectionPriority, _ = r.i32("electionPriority", false, math.MaxInt32)
	return h, r.err
}

// AlterSyncStateSetHeader is CONTROLLER_ALTER_SYNC_STATE_SET (1001); the
// body is a SyncStateSet holding the proposed set and the current
// syncStateSetEpoch.
type AlterSyncStateSetHeader struct {
	BrokerName     string
	MasterBrokerID int64
	MasterEpoch    int32
	InvokeTime     int64
}

// Fields returns the extFields.
func (h *AlterSyncStateSetHeader) Fields() map[string]string {
	return map[string]string{
		"brokerName": h.BrokerName, "masterBrokerId": i64s(h.MasterBrokerID),
		"masterEpoch": strconv.Itoa(int(h.MasterEpoch)), "invokeTime": i64s(h.InvokeTime),
	}
}

// ParseAlterSyncStateSetHeader decodes a 1001 request. Java dereferences
// masterBrokerId and masterEpoch, so both are required here.
func ParseAlterSyncStateSetHeader(c *Command) (*AlterSyncStateSetHeader, error) {
	r := headerReader{c: c}
	h := &AlterSyncStateSetHeader{BrokerName: r.str("brokerName", true)}
	h.MasterBrokerID, _ = r.i64("masterBrokerId", true, 0)
	h.MasterEpoch, _ = r.i32("masterEpoch", true, 0)
	h.InvokeTime, _ = r.i64("invokeTime", false, 0)
	return h, r.err
}

// AlterSyncStateSetResponseHeader answers 1001.
type AlterSyncStateSetResponseHeader struct {
	NewSyncStateSetEpoch int32
}

// Fields returns the extFields.
func (h *AlterSyncStateSetResponseHeader) Fields() map[string]string {
	return map[string]string{"newSyncStateSetEpoch": strconv.Itoa(int(h.NewSyncStateSetEpoch))}
}

// ElectMasterHeader is CONTROLLER_ELECT_MASTER (1002). BrokerID -1 means
// the controller itself asks; DesignateElect makes BrokerID the only
// acceptable candidate (mqadmin electMaster).
type ElectMasterHeader struct {
	ClusterName, BrokerName string
	BrokerID                int64
	DesignateElect          bool
	InvokeTime              int64
}

// Fields returns the extFields.
func (h *ElectMasterHeader) Fields() map[string]string {
	return map[string]string{
		"clusterName": h.ClusterName, "brokerName": h.BrokerName, "brokerId": i64s(h.BrokerID),
		"designateElect": strconv.FormatBool(h.DesignateElect), "invokeTime": i64s(h.InvokeTime),
	}
}

// ParseElectMasterHeader decodes a 1002 request.
func ParseElectMasterHeader(c *Command) (*ElectMasterHeader, error) {
	r := headerReader{c: c}
	h := &ElectMasterHeader{ClusterName: r.str("clusterName", false), BrokerName: r.str("brokerName", true)}
	h.BrokerID, _ = r.i64("brokerId", true, -1)
	h.DesignateElect = r.boolean("designateElect", true)
	h.InvokeTime, _ = r.i64("invokeTime", false, 0)
	return h, r.err
}

// MasterInfoHeader is the answer header of 1002 (ElectMasterResponseHeader),
// 1003 (RegisterBrokerToControllerResponseHeader, with ClusterName and
// BrokerName) and 1004 (GetReplicaInfoResponseHeader, without
// SyncStateSetEpoch), and the request header of NOTIFY_BROKER_ROLE_CHANGED
// (1008). HasMaster false leaves the master fields out, as Java's null
// masterBrokerId does.
type MasterInfoHeader struct {
	ClusterName, BrokerName string // 1003 only
	HasMaster               bool
	MasterBrokerID          int64
	MasterAddress           string
	MasterEpoch             int32
	SyncStateSetEpoch       int32
	HasSyncStateSetEpoch    bool
}

// Fields returns the extFields.
func (h *MasterInfoHeader) Fields() map[string]string {
	m := map[string]string{}
	if h.ClusterName != "" {
		m["clusterName"] = h.ClusterName
	}
	if h.BrokerName != "" {
		m["brokerName"] = h.BrokerName
	}
	if h.HasMaster {
		m["masterBrokerId"] = i64s(h.MasterBrokerID)
		m["masterAddress"] = h.MasterAddress
		m["masterEpoch"] = strconv.Itoa(int(h.MasterEpoch))
		if h.HasSyncStateSetEpoch {
			m["syncStateSetEpoch"] = strconv.Itoa(int(h.SyncStateSetEpoch))
		}
	}
	return m
}

// ParseMasterInfoHeader decodes any of the headers MasterInfoHeader stands for.
func ParseMasterInfoHeader(c *Command) (*MasterInfoHeader, error) {
	r := headerReader{c: c}
	h := &MasterInfoHeader{ClusterName: r.str("clusterName", false), BrokerName: r.str("brokerName", false)}
	h.MasterBrokerID, h.HasMaster = r.i64("masterBrokerId", false, -1)
	h.MasterAddress = r.str("masterAddress", false)
	h.MasterEpoch, _ = r.i32("masterEpoch", false, 0)
	h.SyncStateSetEpoch, h.HasSyncStateSetEpoch = r.i32("syncStateSetEpoch", false, 0)
	return h, r.err
}

// RegisterBrokerToControllerHeader is CONTROLLER_REGISTER_BROKER (1003).
type RegisterBrokerToControllerHeader struct {
	ClusterName, BrokerName string
	BrokerID                int64
	BrokerAddress           string
	InvokeTime              int64
}

// Fields returns the extFields.
func (h *RegisterBrokerToControllerHeader) Fields() map[string]string {
	return map[string]string{
		"clusterName": h.ClusterName, "brokerName": h.BrokerName, "brokerId": i64s(h.BrokerID),
		"brokerAddress": h.BrokerAddress, "invokeTime": i64s(h.InvokeTime),
	}
}

// ParseRegisterBrokerToControllerHeader decodes a 1003 request.
func ParseRegisterBrokerToControllerHeader(c *Command) (*RegisterBrokerToControllerHeader, error) {
	r := headerReader{c: c}
	h := &RegisterBrokerToControllerHeader{
		ClusterName: r.str("clusterName", false), BrokerName: r.str("brokerName", true),
		BrokerAddress: r.str("brokerAddress", true),
	}
	h.BrokerID, _ = r.i64("brokerId", true, 0)
	h.InvokeTime, _ = r.i64("invokeTime", false, 0)
	return h, r.err
}

// ParseBrokerNameHeader decodes CONTROLLER_GET_REPLICA_INFO (1004), whose
// only field is brokerName.
func ParseBrokerNameHeader(c *Command) (string, error) {
	r := headerReader{c: c}
	n := r.str("brokerName", true)
	return n, r.err
}

// GetMetaDataResponseHeader answers CONTROLLER_GET_METADATA_INFO (1005) on
// every controller. Peers is "id:addr;" per peer, trailing ';' included.
type GetMetaDataResponseHeader struct {
	Group                   string
	ControllerLeaderID      string
	ControllerLeaderAddress string
	IsLeader                bool
	Peers                   string
}

// Fields returns the extFields.
func (h *GetMetaDataResponseHeader) Fields() map[string]string {
	return map[string]string{
		"group": h.Group, "controllerLeaderId": h.ControllerLeaderID,
		"controllerLeaderAddress": h.ControllerLeaderAddress, "isLeader": strconv.FormatBool(h.IsLeader),
		"peers": h.Peers,
	}
}

// ParseGetMetaDataResponseHeader decodes a 1005 answer.
func ParseGetMetaDataResponseHeader(c *Command) *GetMetaDataResponseHeader {
	return &GetMetaDataResponseHeader{
		Group: c.GetString("group"), ControllerLeaderID: c.GetString("controllerLeaderId"),
		ControllerLeaderAddress: c.GetString("controllerLeaderAddress"), IsLeader: c.GetBool("isLeader"),
		Peers: c.GetString("peers"),
	}
}

// CleanBrokerDataHeader is CLEAN_BROKER_DATA (1011). IDsToClean is
// ';'-separated controller broker ids; empty cleans the whole set.
type CleanBrokerDataHeader struct {
	ClusterName, BrokerName string
	IDsToClean              string
	CleanLivingBroker       bool
	InvokeTime              int64
}

// Fields returns the extFields.
func (h *CleanBrokerDataHeader) Fields() map[string]string {
	return map[string]string{
		"clusterName": h.ClusterName, "brokerName": h.BrokerName,
		"brokerControllerIdsToClean": h.IDsToClean, "isCleanLivingBroker": strconv.FormatBool(h.CleanLivingBroker),
		"invokeTime": i64s(h.InvokeTime),
	}
}

// ParseCleanBrokerDataHeader decodes a 1011 request.
func ParseCleanBrokerDataHeader(c *Command) (*CleanBrokerDataHeader, error) {
	r := headerReader{c: c}
	h := &CleanBrokerDataHeader{
		ClusterName: r.str("clusterName", false), BrokerName: r.str("brokerName", true),
		IDsToClean: r.str("brokerControllerIdsToClean", false), CleanLivingBroker: r.boolean("isCleanLivingBroker", false),
	}
	h.InvokeTime, _ = r.i64("invokeTime", false, 0)
	return h, r.err
}

// BrokerSetHeader is CONTROLLER_GET_NEXT_BROKER_ID (1012) and the answer
// header of CONTROLLER_APPLY_BROKER_ID (1013).
type BrokerSetHeader struct {
	ClusterName, BrokerName string
}

// Fields returns the extFields.
func (h *BrokerSetHeader) Fields() map[string]string {
	return map[string]string{"clusterName": h.ClusterName, "brokerName": h.BrokerName}
}

// ParseBrokerSetHeader decodes a 1012 request.
func ParseBrokerSetHeader(c *Command) (*BrokerSetHeader, error) {
	r := headerReader{c: c}
	h := &BrokerSetHeader{ClusterName: r.str("clusterName", false), BrokerName: r.str("brokerName", true)}
	return h, r.err
}

// GetNextBrokerIDResponseHeader answers 1012.
type GetNextBrokerIDResponseHeader struct {
	ClusterName, BrokerName string
	NextBrokerID            int64
}

// Fields returns the extFields.
func (h *GetNextBrokerIDResponseHeader) Fields() map[string]string {
	return map[string]string{"clusterName": h.ClusterName, "brokerName": h.BrokerName, "nextBrokerId": i64s(h.NextBrokerID)}
}

// ApplyBrokerIDHeader is CONTROLLER_APPLY_BROKER_ID (1013). RegisterCheckCode
// is "brokerAddr;timestampMillis".
type ApplyBrokerIDHeader struct {
	ClusterName, BrokerName string
	AppliedBrokerID         int64
	RegisterCheckCode       string
}

// Fields returns the extFields.
func (h *ApplyBrokerIDHeader) Fields() map[string]string {
	return map[string]string{
		"clusterName": h.ClusterName, "brokerName": h.BrokerName,
		"appliedBrokerId": i64s(h.AppliedBrokerID), "registerCheckCode": h.RegisterCheckCode,
	}
}

// ParseApplyBrokerIDHeader decodes a 1013 request.
func ParseApplyBrokerIDHeader(c *Command) (*ApplyBrokerIDHeader, error) {
	r := headerReader{c: c}
	h := &ApplyBrokerIDHeader{
		ClusterName: r.str("clusterName", false), BrokerName: r.str("brokerName", true),
		RegisterCheckCode: r.str("registerCheckCode", true),
	}
	h.AppliedBrokerID, _ = r.i64("appliedBrokerId", true, 0)
	return h, r.err
}

// SyncStateSet is the body of 1001 (both ways), 1003, 1004 and 1008.
type SyncStateSet struct {
	SyncStateSet      []int64 `json:"syncStateSet"`
	SyncStateSetEpoch int32   `json:"syncStateSetEpoch"`
}

// BrokerMemberGroup lists a broker set's replicas by controller id.
type BrokerMemberGroup struct {
	BrokerAddrs map[int64]string `json:"brokerAddrs"`
	BrokerName  string           `json:"brokerName"`
	Cluster     string           `json:"cluster"`
}

// ElectMasterResponseBody is the body of a 1002 answer.
type ElectMasterResponseBody struct {
	BrokerMemberGroup *BrokerMemberGroup `json:"brokerMemberGroup,omitempty"`
	SyncStateSet      []int64            `json:"syncStateSet"`
}

// ReplicaIdentity is one replica in BrokerReplicasInfo.
type ReplicaIdentity struct {
	Alive         bool   `json:"alive"`
	BrokerAddress string `json:"brokerAddress"`
	BrokerID      int64  `json:"brokerId"`
	BrokerName    string `json:"brokerName"`
}

// ReplicasInfo is one broker set in BrokerReplicasInfo; MasterBrokerID is
// nil while the set has no master.
type ReplicasInfo struct {
	InSyncReplicas    []ReplicaIdentity `json:"inSyncReplicas"`
	MasterAddress     string            `json:"masterAddress,omitempty"`
	MasterBrokerID    *int64            `json:"masterBrokerId,omitempty"`
	MasterEpoch       int32             `json:"masterEpoch"`
	NotInSyncReplicas []ReplicaIdentity `json:"notInSyncReplicas"`
	SyncStateSetEpoch int32             `json:"syncStateSetEpoch"`
}

// BrokerReplicasInfo answers CONTROLLER_GET_SYNC_STATE_DATA (1006), whose
// request body is a JSON array of broker names.
type BrokerReplicasInfo struct {
	ReplicasInfoTable map[string]*ReplicasInfo `json:"replicasInfoTable"`
}

// EpochEntry is one master epoch of a broker's epoch file. EndOffset is
// math.MaxInt64 for the open last entry, as Java's default.
type EpochEntry struct {
	EndOffset   int64 `json:"endOffset"`
	Epoch       int32 `json:"epoch"`
	StartOffset int64 `json:"startOffset"`
}

// EpochEntryCache answers GET_BROKER_EPOCH_CACHE (1007).
type EpochEntryCache struct {
	BrokerID    int64        `json:"brokerId"`
	BrokerName  string       `json:"brokerName"`
	ClusterName string       `json:"clusterName"`
	EpochList   []EpochEntry `json:"epochList"`
	MaxOffset   int64        `json:"maxOffset"`
}

// HAConnectionRuntimeInfo is one slave connection on a master in
// HARuntimeInfo.
type HAConnectionRuntimeInfo struct {
	Addr                    string `json:"addr"`
	Diff                    int64  `json:"diff"`
	InSync                  bool   `json:"inSync"`
	SlaveAckOffset          int64  `json:"slaveAckOffset"`
	TransferFromWhere       int64  `json:"transferFromWhere"`
	TransferredByteInSecond int64  `json:"transferredByteInSecond"`
}

// HAClientRuntimeInfo is a slave's HA client in HARuntimeInfo. Java has an
// isActivated field without a getter, so fastjson never writes it.
type HAClientRuntimeInfo struct {
	LastReadTimestamp       int64  `json:"lastReadTimestamp"`
	LastWriteTimestamp      int64  `json:"lastWriteTimestamp"`
	MasterAddr              string `json:"masterAddr"`
	MasterFlushOffset       int64  `json:"masterFlushOffset"`
	MaxOffset               int64  `json:"maxOffset"`
	TransferredByteInSecond int64  `json:"transferredByteInSecond"`
}

// HARuntimeInfo answers GET_BROKER_HA_STATUS (907).
type HARuntimeInfo struct {
	HAClientRuntimeInfo      HAClientRuntimeInfo       `json:"haClientRuntimeInfo"`
	HAConnectionInfo         []HAConnectionRuntimeInfo `json:"haConnectionInfo"`
	InSyncSlaveNums          int32                     `json:"inSyncSlaveNums"`
	Master                   bool                      `json:"master"`
	MasterCommitLogMaxOffset int64                     `json:"masterCommitLogMaxOffset"`
}

// SortedIDs returns the members of a set of broker ids in ascending order,
// so encoded bodies are deterministic.
func SortedIDs(set map[int64]struct{}) []int64 {
	out := make([]int64, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}
