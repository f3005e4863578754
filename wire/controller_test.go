package wire

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
)

// The numbers are RocketMQ 5's (remoting/.../protocol/RequestCode.java and
// ResponseCode.java): a typo here would make mqops talk past Java brokers.
func TestControllerCodes(t *testing.T) {
	req := map[int32]int32{
		BrokerHeartbeat: 904, GetBrokerHAStatus: 907, ControllerAlterSyncStateSet: 1001,
		ControllerElectMaster: 1002, ControllerRegisterBroker: 1003, ControllerGetReplicaInfo: 1004,
		ControllerGetMetadataInfo: 1005, ControllerGetSyncStateData: 1006, GetBrokerEpochCache: 1007,
		NotifyBrokerRoleChanged: 1008, UpdateControllerConfig: 1009, GetControllerConfig: 1010,
		CleanBrokerData: 1011, ControllerGetNextBrokerID: 1012, ControllerApplyBrokerID: 1013,
	}
	for got, want := range req {
		if got != want {
			t.Errorf("request code %d, want %d", got, want)
		}
	}
	names := map[int32]string{
		2000: "CONTROLLER_FENCED_MASTER_EPOCH", 2001: "CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH",
		2002: "CONTROLLER_INVALID_MASTER", 2003: "CONTROLLER_INVALID_REPLICAS",
		2004: "CONTROLLER_MASTER_NOT_AVAILABLE", 2005: "CONTROLLER_INVALID_REQUEST",
		2006: "CONTROLLER_BROKER_NOT_ALIVE", 2007: "CONTROLLER_NOT_LEADER",
		2008: "CONTROLLER_BROKER_METADATA_NOT_EXIST", 2009: "CONTROLLER_INVALID_CLEAN_BROKER_METADATA",
		2010: "CONTROLLER_BROKER_NEED_TO_BE_REGISTERED", 2011: "CONTROLLER_MASTER_STILL_EXIST",
		2012: "CONTROLLER_ELECT_MASTER_FAILED", 2013: "CONTROLLER_ALTER_SYNC_STATE_SET_FAILED",
		2014: "CONTROLLER_BROKER_ID_INVALID", 2015: "CONTROLLER_JRAFT_INTERNAL_ERROR",
		2016: "CONTROLLER_BROKER_LIVE_INFO_NOT_EXISTS",
	}
	for code, name := range names {
		if got := ResponseName(code); got != name {
			t.Errorf("ResponseName(%d) = %s, want %s", code, got, name)
		}
	}
	if ControllerFencedMasterEpoch != 2000 || ControllerNotLeader != 2007 || ControllerAlterSyncStateSetFailed != 2013 ||
		ControllerBrokerLiveInfoNotExists != 2016 {
		t.Fatal("response code constants drifted")
	}
}

// decode round-trips a header through a real frame so field names and
// values survive the codec.
func decodeFrame(t *testing.T, code int32, fields map[string]string) *Command {
	t.Helper()
	frame := AppendFrame(nil, NewRequest(code, fields, nil))
	var c Command
	if err := DecodeFrame(frame[4:], &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func TestControllerHeadersRoundTrip(t *testing.T) {
	hb := &BrokerHeartbeatHeader{ClusterName: "c", BrokerAddr: "127.0.0.1:30911", BrokerName: "broker-a",
		BrokerID: 2, HasBrokerID: true, Epoch: 3, MaxOffset: 4096, ConfirmOffset: 4000,
		HeartbeatTimeoutMillis: 10000, ElectionPriority: 7}
	c := decodeFrame(t, BrokerHeartbeat, hb.Fields())
	for _, k := range []string{"clusterName", "brokerAddr", "brokerName", "brokerId", "epoch", "maxOffset", "confirmOffset", "heartbeatTimeoutMills", "electionPriority"} {
		if !c.Has(k) {
			t.Errorf("heartbeat lacks extField %s", k)
		}
	}
	back, err := ParseBrokerHeartbeatHeader(c)
	if err != nil || *back != *hb {
		t.Fatalf("heartbeat %+v %v", back, err)
	}

	as := &AlterSyncStateSetHeader{BrokerName: "broker-a", MasterBrokerID: 1, MasterEpoch: 5, InvokeTime: 99}
	asBack, err := ParseAlterSyncStateSetHeader(decodeFrame(t, ControllerAlterSyncStateSet, as.Fields()))
	if err != nil || *asBack != *as {
		t.Fatalf("alter %+v %v", asBack, err)
	}
	em := &ElectMasterHeader{ClusterName: "c", BrokerName: "broker-a", BrokerID: 2, DesignateElect: true, InvokeTime: 1}
	emBack, err := ParseElectMasterHeader(decodeFrame(t, ControllerElectMaster, em.Fields()))
	if err != nil || *emBack != *em {
		t.Fatalf("elect %+v %v", emBack, err)
	}
	rb := &RegisterBrokerToControllerHeader{ClusterName: "c", BrokerName: "broker-a", BrokerID: 1, BrokerAddress: "a:1", InvokeTime: 2}
	rbBack, err := ParseRegisterBrokerToControllerHeader(decodeFrame(t, ControllerRegisterBroker, rb.Fields()))
	if err != nil || *rbBack != *rb {
		t.Fatalf("register %+v %v", rbBack, err)
	}
	ap := &ApplyBrokerIDHeader{ClusterName: "c", BrokerName: "broker-a", AppliedBrokerID: 2, RegisterCheckCode: "a:1;1733480000000"}
	apBack, err := ParseApplyBrokerIDHeader(decodeFrame(t, ControllerApplyBrokerID, ap.Fields()))
	if err != nil || *apBack != *ap {
		t.Fatalf("apply %+v %v", apBack, err)
	}
	cl := &CleanBrokerDataHeader{ClusterName: "c", BrokerName: "b", IDsToClean: "1;2", CleanLivingBroker: true, InvokeTime: 3}
	clBack, err := ParseCleanBrokerDataHeader(decodeFrame(t, CleanBrokerData, cl.Fields()))
	if err != nil || *clBack != *cl {
		t.Fatalf("clean %+v %v", clBack, err)
	}
	mi := &MasterInfoHeader{HasMaster: true, MasterBrokerID: 1, MasterAddress: "a:1", MasterEpoch: 2, SyncStateSetEpoch: 3, HasSyncStateSetEpoch: true}
	miBack, err := ParseMasterInfoHeader(decodeFrame(t, NotifyBrokerRoleChanged, mi.Fields()))
	if err != nil || *miBack != *mi {
		t.Fatalf("master info %+v %v", miBack, err)
	}
	if f := (&MasterInfoHeader{ClusterName: "c", BrokerName: "b"}).Fields(); len(f) != 2 {
		t.Fatalf("no master must leave master fields out: %v", f)
	}
	md := &GetMetaDataResponseHeader{Group: "group1", ControllerLeaderID: "n0", ControllerLeaderAddress: "127.0.0.1:9878", IsLeader: true, Peers: "n0:127.0.0.1:9878;"}
	if f := md.Fields(); f["isLeader"] != "true" || f["controllerLeaderId"] != "n0" {
		t.Fatalf("metadata fields %v", f)
	}
	if back := ParseGetMetaDataResponseHeader(decodeFrame(t, 0, md.Fields())); *back != *md {
		t.Fatalf("metadata %+v", back)
	}
}

func TestControllerHeaderDefaultsAndErrors(t *testing.T) {
	// A heartbeat from an old broker without the optional fields gets
	// Java's defaults; a missing brokerId is reported, not guessed.
	hb, err := ParseBrokerHeartbeatHeader(decodeFrame(t, BrokerHeartbeat, map[string]string{"clusterName": "c", "brokerAddr": "a", "brokerName": "b"}))
	if err != nil {
		t.Fatal(err)
	}
	if hb.HasBrokerID || hb.Epoch != -1 || hb.MaxOffset != -1 || hb.HeartbeatTimeoutMillis != 10000 || hb.ElectionPriority != math.MaxInt32 {
		t.Fatalf("defaults %+v", hb)
	}
	var he *HeaderError
	if _, err := ParseBrokerHeartbeatHeader(decodeFrame(t, BrokerHeartbeat, map[string]string{"clusterName": "c", "brokerAddr": "a"})); !errors.As(err, &he) || he.Field != "brokerName" {
		t.Fatalf("missing brokerName: %v", err)
	}
	if _, err := ParseElectMasterHeader(decodeFrame(t, ControllerElectMaster, map[string]string{"brokerName": "b", "brokerId": "x1", "designateElect": "false"})); !errors.As(err, &he) || he.Field != "brokerId" {
		t.Fatalf("bad brokerId: %v", err)
	}
	if _, err := ParseAlterSyncStateSetHeader(decodeFrame(t, ControllerAlterSyncStateSet, map[string]string{"brokerName": "b", "masterBrokerId": "1", "masterEpoch": "4294967296"})); !errors.As(err, &he) || he.Field != "masterEpoch" {
		t.Fatalf("masterEpoch beyond int32: %v", err)
	}
}

// Bodies use Java's property names; Java's fastjson writes Map<Long,String>
// keys bare, which UnmarshalLenient reads.
func TestControllerBodies(t *testing.T) {
	b := Marshal(&SyncStateSet{SyncStateSet: []int64{1, 2}, SyncStateSetEpoch: 3})
	if string(b) != `{"syncStateSet":[1,2],"syncStateSetEpoch":3}` {
		t.Fatalf("SyncStateSet %s", b)
	}
	var em ElectMasterResponseBody
	java := `{"brokerMemberGroup":{"brokerAddrs":{1:"127.0.0.1:30911",2:"127.0.0.1:30921"},"brokerName":"broker-a","cluster":"DefaultCluster"},"syncStateSet":[2]}`
	if err := UnmarshalLenient([]byte(java), &em); err != nil {
		t.Fatal(err)
	}
	if em.BrokerMemberGroup.BrokerAddrs[2] != "127.0.0.1:30921" || em.SyncStateSet[0] != 2 {
		t.Fatalf("elect body %+v", em)
	}
	id := int64(1)
	info := &BrokerReplicasInfo{ReplicasInfoTable: map[string]*ReplicasInfo{"broker-a": {
		MasterBrokerID: &id, MasterAddress: "a:1", MasterEpoch: 2, SyncStateSetEpoch: 3,
		InSyncReplicas:    []ReplicaIdentity{{BrokerName: "broker-a", BrokerID: 1, BrokerAddress: "a:1", Alive: true}},
		NotInSyncReplicas: []ReplicaIdentity{},
	}}}
	want := `{"replicasInfoTable":{"broker-a":{"inSyncReplicas":[{"alive":true,"brokerAddress":"a:1","brokerId":1,"brokerName":"broker-a"}],"masterAddress":"a:1","masterBrokerId":1,"masterEpoch":2,"notInSyncReplicas":[],"syncStateSetEpoch":3}}}`
	if got := string(Marshal(info)); got != want {
		t.Fatalf("BrokerReplicasInfo\n%s\nwant\n%s", got, want)
	}
	var cache EpochEntryCache
	if err := json.Unmarshal([]byte(`{"brokerId":2,"brokerName":"broker-a","clusterName":"c","epochList":[{"endOffset":4096,"epoch":1,"startOffset":0},{"endOffset":9223372036854775807,"epoch":2,"startOffset":4096}],"maxOffset":8192}`), &cache); err != nil {
		t.Fatal(err)
	}
	if len(cache.EpochList) != 2 || cache.EpochList[1].EndOffset != math.MaxInt64 || cache.MaxOffset != 8192 {
		t.Fatalf("epoch cache %+v", cache)
	}
	var ha HARuntimeInfo
	if err := json.Unmarshal([]byte(`{"haClientRuntimeInfo":{"lastReadTimestamp":0,"lastWriteTimestamp":0,"masterAddr":"","masterFlushOffset":0,"maxOffset":0,"transferredByteInSecond":0},"haConnectionInfo":[{"addr":"127.0.0.1:40000","diff":10,"inSync":true,"slaveAckOffset":90,"transferFromWhere":100,"transferredByteInSecond":5}],"inSyncSlaveNums":1,"master":true,"masterCommitLogMaxOffset":100}`), &ha); err != nil {
		t.Fatal(err)
	}
	if !ha.Master || ha.HAConnectionInfo[0].Diff != 10 || !ha.HAConnectionInfo[0].InSync {
		t.Fatalf("ha status %+v", ha)
	}
	if got := SortedIDs(map[int64]struct{}{3: {}, 1: {}}); len(got) != 2 || got[0] != 1 {
		t.Fatalf("SortedIDs %v", got)
	}
}
