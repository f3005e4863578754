package probe

import (
	"maps"
	"net"
	"testing"
	"time"
)

// runtime is a broker's runtime table as GET_BROKER_RUNTIME_INFO answers
// it (broker/server/admin.go), with the keys fill reads.
func runtime(kv ...string) map[string]string {
	rt := map[string]string{"brokerPermission": "6", "commitLogCorruptRanges": "0", "commitLogCorruptBytes": "0",
		"corruptMessagesSkipped": "0", "storeState": "OK"}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(rt, kv[i])
			continue
		}
		rt[kv[i]] = kv[i+1]
	}
	return rt
}

func TestFillStoreState(t *testing.T) {
	const failed = "store failed: fsync of /s/commitlog/00000000000000000000 failed at commit-log offset 99: input/output error; restart the broker to recover"
	for _, c := range []struct {
		name       string
		rt         map[string]string
		state      string
		code, writ int
		err        string
	}{
		{"healthy", runtime(), "OK", StoreOK, 1, ""},
		{"failed fsync", runtime("storeState", "FAILED", "storeError", failed), "FAILED", StoreFailed, 0, failed},
		{"disk full", runtime("storeState", "DISK_FULL", "storeError", "disk full: disk usage 86.5%"), "DISK_FULL", StoreDiskFull, 0, "disk full: disk usage 86.5%"},
		{"shutting down", runtime("storeState", "CLOSED", "storeError", "store closed"), "CLOSED", StoreClosed, 0, "store closed"},
		// A state this helper does not know still means the store refuses.
		{"unknown state", runtime("storeState", "READ_ONLY"), "READ_ONLY", StoreUnknown, 0, ""},
		// Apache RocketMQ reports no store state: writable by permission.
		{"no state", runtime("storeState", ""), "", StoreUnknown, 1, ""},
		{"read-only permission", runtime("brokerPermission", "4"), "OK", StoreOK, 0, ""},
	} {
		var st BrokerStatus
		st.fill(c.rt, map[string]string{}, time.Now())
		if st.StoreState != c.state || st.StoreStateCode != c.code || st.Writable != c.writ || st.StoreError != c.err {
			t.Errorf("%s: state %q code %d writable %d error %q; want %q %d %d %q", c.name,
				st.StoreState, st.StoreStateCode, st.Writable, st.StoreError, c.state, c.code, c.writ, c.err)
		}
	}
}

func TestFillCorruption(t *testing.T) {
	var st BrokerStatus
	st.fill(runtime("commitLogCorruptRanges", "2", "commitLogCorruptBytes", "1268", "corruptMessagesSkipped", "5"), map[string]string{}, time.Now())
	if st.CorruptRanges != 2 || st.CorruptBytes != 1268 || st.CorruptSkipped != 5 {
		t.Errorf("corruption: ranges %d bytes %d skipped %d, want 2 1268 5", st.CorruptRanges, st.CorruptBytes, st.CorruptSkipped)
	}
}

// A broker that does not answer has no known store state (not "OK").
func TestBrokerDownStoreUnknown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	st := Broker(addr, addr)
	if st.Up != 0 || st.Error == "" || st.StoreStateCode != StoreUnknown || st.Writable != 0 {
		t.Errorf("broker down: %+v", st)
	}
}

// A master whose store refuses sends is not a writable master, and the
// cluster's reasons say why.
func TestClusterMasterSendProblem(t *testing.T) {
	for _, c := range []struct {
		rt   map[string]string
		want string
	}{
		{runtime(), ""},
		{runtime("storeState", ""), ""},
		{runtime("brokerPermission", "4"), "is not writable"},
		{runtime("storeState", "FAILED", "storeError", "store failed: fsync of f failed"), "refuses sends: store FAILED: store failed: fsync of f failed"},
		{runtime("storeState", "DISK_FULL", "storeError", "disk full: 86.5%", "brokerPermission", "4"), "is not writable"},
	} {
		var s BrokerStatus
		s.fill(c.rt, map[string]string{}, time.Now())
		b := ClusterBroker{Up: 1, Permission: s.Permission, Writable: s.Writable, StoreState: s.StoreState, StoreError: s.StoreError}
		if got := b.sendProblem(); got != c.want {
			t.Errorf("%v: %q, want %q", c.rt, got, c.want)
		}
	}
}

// The gRPC port is checked on the host the broker is reached by, at the
// port of the address the broker publishes; without grpcAddr there is no
// service to check.
func TestGrpcPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	var st BrokerStatus
	st.Addr = "127.0.0.1:10911"
	st.fill(runtime("grpcAddr", "192.0.2.1:"+port, "grpcClients", "3", "grpcConsumers", "2", "grpcProducers", "1", "grpcStreams", "3",
		"popInflight", "7", "popExpired", "4", "connectionRefusedTotal", "9", "connectionStalled", "1", "connectionStalledTotal", "5"), map[string]string{}, time.Now())
	st.grpcPort()
	if st.GrpcEnabled != 1 || st.GrpcUp != 1 || st.GrpcError != "" || st.GrpcClients != 3 || st.GrpcConsumers != 2 || st.GrpcProducers != 1 ||
		st.GrpcStreams != 3 || st.PopInflight != 7 || st.PopExpired != 4 || st.ConnRefused != 9 || st.ConnStalled != 1 || st.ConnStalledTotal != 5 {
		t.Errorf("gRPC port open: %+v", st)
	}
	l.Close()
	st.GrpcUp = 0
	st.grpcPort()
	if st.GrpcUp != 0 || st.GrpcError == "" {
		t.Errorf("gRPC port closed: up %d error %q", st.GrpcUp, st.GrpcError)
	}
	var off BrokerStatus
	off.Addr = st.Addr
	off.fill(runtime(), map[string]string{}, time.Now())
	off.grpcPort()
	if off.GrpcEnabled != 0 || off.GrpcUp != 0 || off.GrpcError != "" {
		t.Errorf("no gRPC service: %+v", off)
	}
}

// The ACL and flow-control counters come from the runtime keys
// broker/acl Counters.Snapshot and broker/server addFlowRuntime write.
func TestFillRefusalCounters(t *testing.T) {
	var st BrokerStatus
	st.fill(runtime("acl_denied_total", "7", "acl_denied_total.signature", "4", "acl_denied_total.topic", "3",
		"acl_denied_total.admin", "0", "acl_allowed_admin_total", "2", "acl_reload_failures", "1",
		"flowRejectedTotal", "9", "flowRejected_OVERLOAD", "5", "flowRejected_TOPIC_QUOTA", "4",
		"quotaRejectedTotal", "4", "quotaRejectedTotal_orders", "4", "quotaThrottledTotal_orders", "8"), map[string]string{}, time.Now())
	if st.ACLDenied != 7 || st.ACLAllowedAdmin != 2 || st.ACLReloadFailures != 1 || st.FlowRejected != 9 || st.QuotaRejected != 4 {
		t.Errorf("totals: denied %d admin %d reload %d flow %d quota %d, want 7 2 1 9 4",
			st.ACLDenied, st.ACLAllowedAdmin, st.ACLReloadFailures, st.FlowRejected, st.QuotaRejected)
	}
	for name, c := range map[string]struct{ got, want map[string]int64 }{
		"by reason": {st.ACLDeniedByReason, map[string]int64{"signature": 4, "topic": 3, "admin": 0}},
		"by tag":    {st.FlowRejectedByTag, map[string]int64{"OVERLOAD": 5, "TOPIC_QUOTA": 4}},
		"by topic":  {st.QuotaRejectedByTopic, map[string]int64{"orders": 4}},
	} {
		if !maps.Equal(c.got, c.want) {
			t.Errorf("%s: %v, want %v", name, c.got, c.want)
		}
	}
	// A broker without ACL or quotas: zeros and empty objects, not null.
	var plain BrokerStatus
	plain.fill(runtime(), map[string]string{}, time.Now())
	if plain.ACLDenied != 0 || plain.ACLDeniedByReason == nil || len(plain.QuotaRejectedByTopic) != 0 || plain.FlowRejectedByTag == nil {
		t.Errorf("plain broker: %+v", plain)
	}
}
