// Package probe asks brokers and name servers, over the remoting protocol
// (through mqadmin's library), for what the Zabbix templates watch: a
// broker's health and figures, a name server's view, a cluster's status,
// consumer backlog, business counts summed over a cluster, discovery lists
// and a canary round trip. Each answer is a JSON-ready struct; a peer that
// does not answer is reported in the struct (Up 0 and the error), not as a
// failure, so the items that depend on it show "down" rather than going
// unsupported.
package probe

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/wire"
)

// Timeout bounds each request: the agent's own timeout (Timeout in
// zabbix_agentd.conf, 3 s by default, 30 s at most) covers a whole check.
var Timeout = 3 * time.Second

// AccessKey and SecretKey sign every request, for brokers and name servers
// with aclEnable (mqops-zbx reads MQADMIN_ACCESS_KEY/MQADMIN_SECRET_KEY);
// empty: unsigned.
var AccessKey, SecretKey string

func newAdmin(addr string) (*admin.Admin, error) {
	a, err := admin.New(addr, Timeout)
	if err == nil {
		a.SetCredentials(AccessKey, SecretKey)
	}
	return a, err
}

func newDirect() *admin.Admin {
	a := admin.NewDirect(Timeout)
	a.SetCredentials(AccessKey, SecretKey)
	return a
}

// BrokerStatus is one broker as seen from its own host.
type BrokerStatus struct {
	Up         int    `json:"up"` // 1: the broker answered
	Error      string `json:"error,omitempty"`
	Addr       string `json:"addr"`
	Cluster    string `json:"cluster"`
	BrokerName string `json:"brokerName"`
	BrokerID   int64  `json:"brokerId"`
	Role       string `json:"role"`    // brokerRole: ASYNC_MASTER, SYNC_MASTER or SLAVE
	Version    string `json:"version"` // protocol version, e.g. V4_9_8
	Build      string `json:"build"`   // mqops release
	Uptime     int64  `json:"uptime"`  // seconds
	Permission int    `json:"permission"`
	// Writable is 1 when the broker takes sends: its permission allows
	// writes and its store does not refuse them (StoreState OK or none).
	Writable int `json:"writable"`
	Readable int `json:"readable"`
	// StoreState is the broker's runtime key storeState (OK, DISK_FULL,
	// FAILED, CLOSED; empty from a broker without one, such as Apache
	// RocketMQ), StoreStateCode its number for the templates' value map and
	// StoreError why the store refuses sends.
	StoreState     string `json:"storeState"`
	StoreStateCode int    `json:"storeStateCode"`
	StoreError     string `json:"storeError"`
	// Damaged commit-log data the broker knows of since it started: ranges
	// and bytes, and reads refused because they hit one.
	CorruptRanges  int64 `json:"commitLogCorruptRanges"`
	CorruptBytes   int64 `json:"commitLogCorruptBytes"`
	CorruptSkipped int64 `json:"corruptMessagesSkipped"`
	// Registered counts the name servers (of NamesrvCount) whose routes
	// list this broker under its name and id.
	NamesrvCount   int      `json:"namesrvCount"`
	Registered     int      `json:"registered"`
	RegisteredAddr string   `json:"registeredAddr,omitempty"`
	NamesrvErrors  []string `json:"namesrvErrors,omitempty"`
	CommitLogPused float64  `json:"commitLogPused"`
	ConsumeQPused  float64  `json:"consumeQueuePused"`
	RetentionHours float64  `json:"retentionHours"`
	SendQueueSize  int64    `json:"sendQueueSize"`
	SendQueueWait  int64    `json:"sendQueueWaitMs"`
	PullQueueWait  int64    `json:"pullQueueWaitMs"`
	PageCacheLock  int64    `json:"pageCacheLockMs"`
	PutTPS         float64  `json:"putTps"`
	PutFailed      int64    `json:"putFailed"` // sends the store refused since the broker started
	// FlowRejected counts the sends answered SYSTEM_BUSY by the send
	// admission since the broker started (runtime key flowRejectedTotal),
	// QuotaRejected those a topic's produce quota refused
	// (quotaRejectedTotal; [TOPIC_QUOTA], also counted in FlowRejected).
	FlowRejected  int64 `json:"flowRejected"`
	QuotaRejected int64 `json:"quotaRejected"`
	// FlowRejectedByTag splits FlowRejected by flowcontrol.log tag
	// (runtime keys flowRejected_<TAG>: REJECTREQUEST, OVERLOAD, ...),
	// QuotaRejectedByTopic QuotaRejected by topic (quotaRejectedTotal_<topic>).
	FlowRejectedByTag    map[string]int64 `json:"flowRejectedByTag"`
	QuotaRejectedByTopic map[string]int64 `json:"quotaRejectedByTopic"`
	// AccountQuotaRejected counts the sends an ACL account's produce
	// quota refused ([ACCOUNT_QUOTA]; runtime key
	// accountQuotaRejectedTotal), AccountQuotaRejectedByAccount by
	// AccessKey (accountQuotaRejectedTotal_<ak>), for the accounts that
	// have a quota now; AccountQuotaThrottled the sends it delayed.
	AccountQuotaRejected          int64            `json:"accountQuotaRejected"`
	AccountQuotaThrottled         int64            `json:"accountQuotaThrottled"`
	AccountQuotaRejectedByAccount map[string]int64 `json:"accountQuotaRejectedByAccount"`
	// By AccessKey too: the sends the account's quota delayed
	// (accountQuotaThrottledTotal_<ak>) and the sum of those delays in ms
	// (accountQuotaDelayMsSum_<ak>), for the per-account discovery.
	AccountQuotaThrottledByAccount map[string]int64 `json:"accountQuotaThrottledByAccount"`
	AccountQuotaDelayMsByAccount   map[string]int64 `json:"accountQuotaDelayMsByAccount"`
	// ACL counters since the broker started (aclEnable; 0 without): requests
	// refused (acl_denied_total) and by reason (acl_denied_total.<reason>:
	// signature, topic, admin, ...), admin requests granted
	// (acl_allowed_admin_total), and plain_acl.yml reloads that failed
	// (acl_reload_failures: the file is broken, the previous rules stay).
	ACLDenied         int64            `json:"aclDenied"`
	ACLDeniedByReason map[string]int64 `json:"aclDeniedByReason"`
	ACLAllowedAdmin   int64            `json:"aclAllowedAdmin"`
	ACLReloadFailures int64            `json:"aclReloadFailures"`
	GetTPS            float64          `json:"getTps"`
	PutToday          int64            `json:"putToday"`
	GetToday          int64            `json:"getToday"`
	DispatchBehind    int64            `json:"dispatchBehindBytes"`
	FlushBehind       int64            `json:"flushBehindBytes"`
	CommitLogMax      int64            `json:"commitLogMaxOffset"`
	// Slaves lists the slaves registered under this master's name;
	// SlaveLag is the largest gap (bytes) between this master's commit
	// log and theirs.
	Slaves   int   `json:"slaves"`
	SlaveLag int64 `json:"slaveLagBytes"`
	// The RocketMQ 5 gRPC service (enableProxy): GrpcEnabled is 1 when the
	// broker reports one (runtime key grpcAddr), GrpcUp 1 when its port
	// accepts a connection from here (the host of Addr, the port of
	// grpcAddr); the 5.x clients by kind and their open Telemetry
	// streams; POP leases in flight now and expired since the broker
	// started, over every group.
	GrpcEnabled   int    `json:"grpcEnabled"`
	GrpcUp        int    `json:"grpcUp"`
	GrpcAddr      string `json:"grpcAddr"`
	GrpcError     string `json:"grpcError,omitempty"`
	GrpcClients   int64  `json:"grpcClients"`
	GrpcProducers int64  `json:"grpcProducers"`
	GrpcConsumers int64  `json:"grpcConsumers"`
	GrpcStreams   int64  `json:"grpcStreams"`
	PopInflight   int64  `json:"popInflight"`
	PopExpired    int64  `json:"popExpired"`
	// mqops' connection limits: connections refused at accept and
	// connections paused because their peer leaves its answers unread,
	// since the broker started (runtime keys connectionRefusedTotal,
	// connectionStalledTotal), and those paused now.
	ConnRefused      int64 `json:"connRefused"`
	ConnStalled      int64 `json:"connStalled"`
	ConnStalledTotal int64 `json:"connStalledTotal"`
}

// Store states (StoreStateCode, the templates' value map "Store state").
const (
	StoreOK       = 0
	StoreDiskFull = 1 // sends refused until disk use falls back (README "Durability")
	StoreFailed   = 2 // an fsync failed: sends refused until the broker is restarted
	StoreClosed   = 3 // shutting down
	StoreUnknown  = 4 // the broker did not answer or reports no state this helper knows
)

var storeStates = map[string]int{"OK": StoreOK, "DISK_FULL": StoreDiskFull, "FAILED": StoreFailed, "CLOSED": StoreClosed}

// storeStateCode maps a storeState to its code.
func storeStateCode(state string) int {
	if c, ok := storeStates[state]; ok {
		return c
	}
	return StoreUnknown
}

// Broker asks the broker at addr for its runtime table and settings, and
// each name server (namesrv, or the broker's own namesrvAddr when empty)
// whether it lists the broker.
func Broker(addr, namesrv string) *BrokerStatus {
	st := &BrokerStatus{Addr: addr, StoreStateCode: StoreUnknown}
	// The name-server list is only needed for the registration check; the
	// broker calls go by address.
	a, err := newAdmin(addr)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	defer a.Close()
	rt, err := a.RuntimeInfo(addr)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	cfg, err := a.BrokerConfig(addr)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	st.Up = 1
	st.fill(rt, cfg, time.Now())
	st.grpcPort()
	if namesrv == "" {
		namesrv = cfg["namesrvAddr"]
	}
	st.registration(namesrv)
	return st
}

// accountRejectedPrefix starts the runtime key of each account with a
// produce quota (its refused sends).
const accountRejectedPrefix = "accountQuotaRejectedTotal_"

func num(kv map[string]string, k string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(kv[k]), 10, 64)
	return n
}

// byPrefix collects the counters whose runtime key starts with prefix,
// keyed by the rest; never nil, so the JSON has {} rather than null.
func byPrefix(kv map[string]string, prefix string) map[string]int64 {
	out := map[string]int64{}
	for k := range kv {
		if rest, ok := strings.CutPrefix(k, prefix); ok && rest != "" {
			out[rest] = num(kv, k)
		}
	}
	return out
}

func (st *BrokerStatus) fill(rt, cfg map[string]string, now time.Time) {
	var r admin.BrokerRuntime
	r.Fill(rt, now)
	st.Cluster = cfg["brokerClusterName"]
	st.BrokerName = cfg["brokerName"]
	st.BrokerID = num(cfg, "brokerId")
	st.Role = cfg["brokerRole"]
	st.Version = r.Version
	st.Build = rt["mqopsVersion"]
	if boot := num(rt, "bootTimestamp"); boot > 0 {
		st.Uptime = max(0, now.UnixMilli()-boot) / 1000
	}
	perm := rt["brokerPermission"]
	if perm == "" {
		perm = cfg["brokerPermission"]
	}
	st.Permission, _ = strconv.Atoi(perm)
	st.StoreState, st.StoreError = rt["storeState"], rt["storeError"]
	st.StoreStateCode = storeStateCode(st.StoreState)
	st.CorruptRanges, st.CorruptBytes = num(rt, "commitLogCorruptRanges"), num(rt, "commitLogCorruptBytes")
	st.CorruptSkipped = num(rt, "corruptMessagesSkipped")
	st.Writable = st.Permission >> 1 & 1
	if st.StoreState != "" && st.StoreStateCode != StoreOK {
		st.Writable = 0
	}
	st.Readable = st.Permission >> 2 & 1
	cq, _ := strconv.ParseFloat(rt["consumeQueueDiskRatio"], 64)
	st.CommitLogPused, st.ConsumeQPused = round2(r.Space*100), round2(cq*100)
	st.RetentionHours = round2(r.Hours)
	st.SendQueueSize, st.SendQueueWait = r.SendQueue, r.SendWaitMs
	st.PullQueueWait, st.PageCacheLock = r.PullWaitMs, r.PageCacheMs
	st.PutTPS, st.GetTPS = r.InTPS, r.OutTPS
	st.PutFailed = num(rt, "putMessageFailedTimes")
	st.FlowRejected, st.QuotaRejected = num(rt, "flowRejectedTotal"), num(rt, "quotaRejectedTotal")
	st.FlowRejectedByTag = byPrefix(rt, "flowRejected_")
	st.QuotaRejectedByTopic = byPrefix(rt, "quotaRejectedTotal_")
	st.AccountQuotaRejected, st.AccountQuotaThrottled = num(rt, "accountQuotaRejectedTotal"), num(rt, "accountQuotaThrottledTotal")
	st.AccountQuotaRejectedByAccount = byPrefix(rt, accountRejectedPrefix)
	st.AccountQuotaThrottledByAccount = byPrefix(rt, "accountQuotaThrottledTotal_")
	st.AccountQuotaDelayMsByAccount = byPrefix(rt, "accountQuotaDelayMsSum_")
	st.ACLDenied, st.ACLDeniedByReason = num(rt, "acl_denied_total"), byPrefix(rt, "acl_denied_total.")
	st.ACLAllowedAdmin, st.ACLReloadFailures = num(rt, "acl_allowed_admin_total"), num(rt, "acl_reload_failures")
	st.PutToday, st.GetToday = r.InTotalToday, r.OutTotalToday
	st.DispatchBehind = num(rt, "dispatchBehindBytes")
	st.FlushBehind = num(rt, "remainHowManyDataToFlush")
	st.CommitLogMax = num(rt, "commitLogMaxOffset")
	if st.GrpcAddr = rt["grpcAddr"]; st.GrpcAddr != "" {
		st.GrpcEnabled = 1
	}
	st.GrpcClients, st.GrpcProducers = num(rt, "grpcClients"), num(rt, "grpcProducers")
	st.GrpcConsumers, st.GrpcStreams = num(rt, "grpcConsumers"), num(rt, "grpcStreams")
	st.PopInflight, st.PopExpired = num(rt, "popInflight"), num(rt, "popExpired")
	st.ConnRefused, st.ConnStalled = num(rt, "connectionRefusedTotal"), num(rt, "connectionStalled")
	st.ConnStalledTotal = num(rt, "connectionStalledTotal")
}

// grpcPort checks the gRPC port accepts a connection, on the host the
// agent reaches the broker by: the published address carries brokerIP1,
// which a host-local check need not be able to reach.
func (st *BrokerStatus) grpcPort() {
	if st.GrpcEnabled == 0 {
		return
	}
	_, port, err := net.SplitHostPort(st.GrpcAddr)
	host, _, herr := net.SplitHostPort(st.Addr)
	if err != nil || herr != nil {
		st.GrpcError = fmt.Sprintf("gRPC address %q or broker address %q is not host:port", st.GrpcAddr, st.Addr)
		return
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), Timeout)
	if err != nil {
		st.GrpcError = err.Error()
		return
	}
	c.Close()
	st.GrpcUp = 1
}

// registration counts the name servers listing the broker and, for a
// master, measures its slaves' lag.
func (st *BrokerStatus) registration(namesrv string) {
	addrs := splitList(namesrv)
	st.NamesrvCount = len(addrs)
	infos := make([]*wire.ClusterInfo, len(addrs))
	failures := make([]string, len(addrs))
	_ = admin.FanOut(len(addrs), admin.DefaultParallel, func(i int) error {
		a, err := newAdmin(addrs[i])
		if err != nil {
			failures[i] = err.Error()
			return nil
		}
		defer a.Close()
		if infos[i], err = a.ClusterInfo(); err != nil {
			failures[i] = addrs[i] + ": " + err.Error()
		}
		return nil
	})
	slaves := map[string]bool{}
	for i, ci := range infos {
		if ci == nil {
			st.NamesrvErrors = append(st.NamesrvErrors, failures[i])
			continue
		}
		// By name and id: the agent may reach the broker on 127.0.0.1
		// while it registers brokerIP1.
		bd := ci.BrokerAddrTable[st.BrokerName]
		if bd == nil || bd.BrokerAddrs[st.BrokerID] == "" {
			continue
		}
		st.Registered++
		st.RegisteredAddr = bd.BrokerAddrs[st.BrokerID]
		if st.BrokerID == 0 {
			for id, s := range bd.BrokerAddrs {
				if id != 0 {
					slaves[s] = true
				}
			}
		}
	}
	st.Slaves = len(slaves)
	addrs = slices.Sorted(maps.Keys(slaves))
	lags := make([]int64, len(addrs))
	_ = admin.FanOut(len(addrs), admin.DefaultParallel, func(i int) error {
		a, err := newAdmin(addrs[i])
		if err != nil {
			return nil
		}
		defer a.Close()
		if rt, err := a.RuntimeInfo(addrs[i]); err == nil {
			lags[i] = st.CommitLogMax - num(rt, "commitLogMaxOffset")
		} else {
			lags[i] = st.CommitLogMax // unreachable: behind by everything
		}
		return nil
	})
	for _, lag := range lags {
		st.SlaveLag = max(st.SlaveLag, lag)
	}
}

func splitList(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ";") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func round2(f float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', 2, 64), 64)
	return v
}
