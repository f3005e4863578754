package admin

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// BrokerRuntime is one line of cluster list: a broker and the figures
// Java's clusterList derives from its GET_BROKER_RUNTIME_INFO table.
type BrokerRuntime struct {
	Broker
	Version string  `json:"version"`
	InTPS   float64 `json:"inTps"`  // putTps, 10 s window
	OutTPS  float64 `json:"outTps"` // getTransferedTps, 10 s window
	// Send and pull queue depth and head wait, the "(LOAD)" of the TPS columns.
	SendQueue    int64 `json:"sendQueue"`
	SendWaitMs   int64 `json:"sendWaitMs"`
	PullQueue    int64 `json:"pullQueue"`
	PullWaitMs   int64 `json:"pullWaitMs"`
	PageCacheMs  int64 `json:"pageCacheLockMs"`
	InTotalYest  int64 `json:"inTotalYesterday"`
	OutTotalYest int64 `json:"outTotalYesterday"`
	// Today's totals count from the broker's local midnight.
	InTotalToday  int64 `json:"inTotalToday"`
	OutTotalToday int64 `json:"outTotalToday"`
	// Hours since the oldest retained message was stored.
	Hours float64 `json:"hours"`
	// Space is the commit log's disk usage ratio, 0 to 1.
	Space float64 `json:"space"`
	// BrokerRole is the broker's own brokerRole (ASYNC_MASTER, SYNC_MASTER
	// or SLAVE) where it reports one; Role() otherwise.
	BrokerRole         string `json:"brokerRole,omitempty"`
	CommitLogMaxOffset int64  `json:"commitLogMaxOffset"`
	// MasterEpoch is reported by brokers in controller mode.
	MasterEpoch *int64 `json:"masterEpoch,omitempty"`
	// LagBytes is, on a slave's row, how far its commit log is behind its
	// master's, both read in the same listing (known only when the master
	// answered too).
	LagBytes *int64            `json:"replicationLagBytes,omitempty"`
	Runtime  map[string]string `json:"runtime,omitempty"`
	// Error says why a broker has no figures; the others are still listed.
	Error string `json:"error,omitempty"`
}

// ClusterRuntime reads the runtime table of every broker, masters and
// slaves, of one cluster or (cluster "") all. Brokers that do not answer
// are listed with their error, and err then names the first of them.
func (a *Admin) ClusterRuntime(cluster string) ([]BrokerRuntime, error) {
	brokers, err := a.Brokers(Target{Cluster: cluster, WithSlaves: true})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]BrokerRuntime, len(brokers))
	_ = FanOut(len(brokers), a.parallel, func(i int) error {
		out[i] = BrokerRuntime{Broker: brokers[i]}
		kv, err := a.RuntimeInfo(brokers[i].Addr)
		if err != nil {
			out[i].Error = err.Error()
			return nil // reported on its row; the others still count
		}
		out[i].Fill(kv, now)
		return nil
	})
	setLag(out)
	var failed []string
	for _, r := range out {
		if r.Error != "" {
			failed = append(failed, r.Error)
		}
	}
	if len(failed) > 0 {
		return out, fmt.Errorf("%d of %d brokers did not answer: %s", len(failed), len(out), failed[0])
	}
	return out, nil
}

// setLag fills each answering slave's lag behind the master (id 0) of its
// set: the difference of their commit-log max offsets, never below 0 (the
// two are read a moment apart).
func setLag(rs []BrokerRuntime) {
	master := map[[2]string]*BrokerRuntime{}
	for i := range rs {
		if rs[i].ID == 0 && rs[i].Error == "" {
			master[[2]string{rs[i].Cluster, rs[i].Name}] = &rs[i]
		}
	}
	for i := range rs {
		r := &rs[i]
		if m := master[[2]string{r.Cluster, r.Name}]; m != nil && r.ID != 0 && r.Error == "" {
			lag := max(0, m.CommitLogMaxOffset-r.CommitLogMaxOffset)
			r.LagBytes = &lag
		}
	}
}

// ReplicaRole is the broker's brokerRole where known, else MASTER or SLAVE
// by its id.
func (r *BrokerRuntime) ReplicaRole() string {
	if r.BrokerRole != "" {
		return r.BrokerRole
	}
	return r.Role()
}

// Fill derives the figures from a GET_BROKER_RUNTIME_INFO table read at
// now; the Zabbix helper shares it.
func (r *BrokerRuntime) Fill(kv map[string]string, now time.Time) {
	num := func(k string) int64 {
		n, _ := strconv.ParseInt(strings.TrimSpace(kv[k]), 10, 64)
		return n
	}
	// TPS values are "10s 60s 600s" triplets; clusterList shows the first.
	tps := func(k string) float64 {
		f, _ := strconv.ParseFloat(strings.SplitN(strings.TrimSpace(kv[k]), " ", 2)[0], 64)
		return f
	}
	r.Runtime = kv
	r.Version = kv["brokerVersionDesc"]
	r.InTPS, r.OutTPS = tps("putTps"), tps("getTransferedTps")
	r.SendQueue, r.SendWaitMs = num("sendThreadPoolQueueSize"), num("sendThreadPoolQueueHeadWaitTimeMills")
	r.PullQueue, r.PullWaitMs = num("pullThreadPoolQueueSize"), num("pullThreadPoolQueueHeadWaitTimeMills")
	r.PageCacheMs = num("pageCacheLockTimeMills")
	r.InTotalYest = num("msgPutTotalTodayMorning") - num("msgPutTotalYesterdayMorning")
	r.OutTotalYest = num("msgGetTotalTodayMorning") - num("msgGetTotalYesterdayMorning")
	r.InTotalToday = num("msgPutTotalTodayNow") - num("msgPutTotalTodayMorning")
	r.OutTotalToday = num("msgGetTotalTodayNow") - num("msgGetTotalTodayMorning")
	if e := num("earliestMessageTimeStamp"); e > 0 {
		r.Hours = float64(now.UnixMilli()-e) / float64(time.Hour/time.Millisecond)
	}
	r.Space, _ = strconv.ParseFloat(kv["commitLogDiskRatio"], 64)
	r.BrokerRole = kv["brokerRole"]
	r.CommitLogMaxOffset = num("commitLogMaxOffset")
	if e, err := strconv.ParseInt(strings.TrimSpace(kv["masterEpoch"]), 10, 64); err == nil {
		r.MasterEpoch = &e
	}
}
