package probe

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/wire"
)

// maxLagLookups bounds the pulls one Backlog makes to date the oldest
// pending message of lagging queues; past it, LagTruncated is set and lag
// figures cover the queues looked at.
const maxLagLookups = 256

// GroupBacklog is a consumer group's state over the whole cluster.
type GroupBacklog struct {
	// Backlog is messages stored but not consumed on the group's normal
	// topics; RetryBacklog on its %RETRY% topic.
	Backlog      int64 `json:"backlog"`
	RetryBacklog int64 `json:"retryBacklog"`
	// DLQ is the number of messages in the group's %DLQ% topic.
	DLQ int64 `json:"dlq"`
	// LagSeconds is how long the oldest unconsumed message has waited.
	LagSeconds int64   `json:"lagSeconds"`
	Clients    int     `json:"clients"` // online consumer instances, RocketMQ 5 (gRPC) clients included
	ConsumeTPS float64 `json:"consumeTps"`
	Topics     int     `json:"topics"`
	// POP (RocketMQ 5 consumers) leases over the masters: in flight now,
	// the most on one master (a broker refuses receives past its
	// popInflightMessageThreshold), and expired since the brokers started.
	PopInflight    int64 `json:"popInflight"`
	PopInflightMax int64 `json:"popInflightMax"`
	PopExpired     int64 `json:"popExpired"`
}

// PairBacklog is a group's state on one topic.
type PairBacklog struct {
	Backlog    int64 `json:"backlog"`
	LagSeconds int64 `json:"lagSeconds"`
}

// Backlog is what `mqops-zbx backlog` prints.
type Backlog struct {
	Up           int                      `json:"up"`
	Error        string                   `json:"error,omitempty"`
	Total        int64                    `json:"total"`
	Groups       map[string]*GroupBacklog `json:"groups"`
	Pairs        map[string]*PairBacklog  `json:"pairs"` // by topic@group
	LagTruncated bool                     `json:"lagTruncated,omitempty"`
}

// ClusterBacklog sums every group's progress over the masters of cluster.
func ClusterBacklog(namesrv, cluster string) *Backlog {
	out := &Backlog{Groups: map[string]*GroupBacklog{}, Pairs: map[string]*PairBacklog{}}
	a, err := newAdmin(namesrv)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	defer a.Close()
	masters, err := a.Brokers(admin.Target{Cluster: cluster})
	if err != nil {
		out.Error = err.Error()
		return out
	}
	lists := make([]*wire.ConsumeStatsList, len(masters))
	err = admin.FanOut(len(masters), a.Parallel(), func(i int) (err error) {
		lists[i], err = a.BrokerConsumeStats(masters[i].Addr, false)
		return err
	})
	if err != nil {
		out.Error = err.Error()
		return out
	}
	// A lagging queue is dated by one pull (below) of its oldest pending
	// message; its lag counts for its group and, unless it is the group's
	// retry queue, for its topic@group pair.
	type lagging struct {
		addr, topic string
		queue       int
		offset      int64
		gb          *GroupBacklog
		p           *PairBacklog
		lag         int64
	}
	var lags []lagging
	for i, l := range lists {
		for g, list := range l.Groups {
			gb := out.group(g)
			for _, cs := range list {
				gb.ConsumeTPS += cs.ConsumeTps
				for mq, w := range cs.OffsetTable {
					diff := max(w.BrokerOffset-w.ConsumerOffset, 0)
					var p *PairBacklog
					if strings.HasPrefix(mq.Topic, admin.RetryPrefix) {
						gb.RetryBacklog += diff
					} else {
						gb.Backlog += diff
						out.Total += diff
						if p = out.Pairs[mq.Topic+"@"+g]; p == nil {
							p = &PairBacklog{}
							out.Pairs[mq.Topic+"@"+g] = p
							gb.Topics++
						}
						p.Backlog += diff
					}
					if diff > 0 {
						if len(lags) < maxLagLookups {
							lags = append(lags, lagging{addr: masters[i].Addr, topic: mq.Topic, queue: mq.QueueID, offset: w.ConsumerOffset, gb: gb, p: p})
						} else {
							out.LagTruncated = true
						}
					}
				}
			}
		}
	}
	now := time.Now().UnixMilli()
	_ = admin.FanOut(len(lags), a.Parallel(), func(i int) error {
		l := &lags[i]
		if at, err := a.PendingSince(l.addr, l.topic, l.queue, l.offset); err == nil && at > 0 {
			l.lag = max(now-at, 0) / 1000
		}
		return nil // an undated queue only lacks a lag
	})
	for _, l := range lags {
		l.gb.LagSeconds = max(l.gb.LagSeconds, l.lag)
		if l.p != nil {
			l.p.LagSeconds = max(l.p.LagSeconds, l.lag)
		}
	}
	// POP leases: a master that does not keep them (Java) adds nothing.
	pops := make([]*wire.PopStats, len(masters))
	_ = admin.FanOut(len(masters), a.Parallel(), func(i int) error {
		pops[i], _ = a.PopStats(masters[i].Addr)
		return nil
	})
	for _, ps := range pops {
		if ps == nil {
			continue
		}
		for g, s := range ps.Groups {
			gb := out.group(g)
			gb.PopInflight += s.Inflight
			gb.PopInflightMax = max(gb.PopInflightMax, s.Inflight)
			gb.PopExpired += s.Expired
		}
	}
	for g, gb := range out.Groups {
		gb.DLQ = dlqSize(a, masters, g)
		cc, err := a.ConsumerConnection(g)
		if err == nil {
			gb.Clients = len(cc.Connections)
		}
	}
	out.Up = 1
	return out
}

func (b *Backlog) group(g string) *GroupBacklog {
	gb := b.Groups[g]
	if gb == nil {
		gb = &GroupBacklog{}
		b.Groups[g] = gb
	}
	return gb
}

// dlqSize counts the messages retained in a group's dead-letter topic.
func dlqSize(a *admin.Admin, masters []admin.Broker, group string) int64 {
	sizes := make([]int64, len(masters))
	_ = admin.FanOut(len(masters), a.Parallel(), func(i int) error {
		ts, err := a.TopicStats(masters[i].Addr, admin.DLQPrefix+group)
		if err != nil { // no dead letters yet: the topic does not exist
			return nil
		}
		for _, o := range ts.OffsetTable {
			sizes[i] += max(o.MaxOffset-o.MinOffset, 0)
		}
		return nil
	})
	var n int64
	for _, s := range sizes {
		n += s
	}
	return n
}

// Figures are business counts of one topic, topic@group or group.
type Figures struct {
	Today  int64   `json:"today"`
	Minute int64   `json:"minute"` // the last full minute, as stats.log has it
	TPS    float64 `json:"tps"`
}

// Business is what `mqops-zbx business` prints: counts summed over the
// masters of a cluster, from the brokers' own statistics (no logs needed).
type Business struct {
	Up     int                 `json:"up"`
	Error  string              `json:"error,omitempty"`
	Put    Figures             `json:"put"`
	Get    Figures             `json:"get"`
	Topics map[string]*Figures `json:"topics"`
	Groups map[string]*Figures `json:"groups"`
	Pairs  map[string]*Figures `json:"pairs"` // by topic@group
}

// ClusterBusiness reads today's counts (MQOPS_STATS_TODAY) and each key's
// last minute (VIEW_BROKER_STATS_DATA) from every master of cluster.
func ClusterBusiness(namesrv, cluster string) *Business {
	out := &Business{Topics: map[string]*Figures{}, Groups: map[string]*Figures{}, Pairs: map[string]*Figures{}}
	a, err := newAdmin(namesrv)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	defer a.Close()
	t := admin.Target{Cluster: cluster}
	today, err := a.StatsToday(t, 0)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	masters, err := a.Brokers(t)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	// Every key's last minute on every master in one fan-out: call i asks
	// master i%len(masters) about key i/len(masters), topics first.
	topics, pairs := slices.Sorted(maps.Keys(today.Topics)), slices.Sorted(maps.Keys(today.Groups))
	keys := slices.Concat(topics, pairs)
	minutes := make([]*wire.BrokerStatsData, len(keys)*len(masters))
	_ = admin.FanOut(len(minutes), a.Parallel(), func(i int) error {
		k, name := i/len(masters), admin.StatsTopicPutNums
		if k >= len(topics) {
			name = admin.StatsGroupGetNums
		}
		if d, err := a.ViewStats(masters[i%len(masters)].Addr, name, keys[k]); err == nil {
			minutes[i] = d
		}
		return nil
	})
	minute := func(k int) (sum int64, tps float64) {
		for _, d := range minutes[k*len(masters) : (k+1)*len(masters)] {
			if d != nil { // a master that does not answer adds nothing
				sum += d.StatsMinute.Sum
				tps += d.StatsMinute.Tps
			}
		}
		return sum, tps
	}
	for i, topic := range topics {
		f := &Figures{Today: today.Topics[topic]}
		f.Minute, f.TPS = minute(i)
		out.Topics[topic] = f
		out.Put.Today += f.Today
		out.Put.Minute += f.Minute
		out.Put.TPS += f.TPS
	}
	for i, key := range pairs {
		f := &Figures{Today: today.Groups[key]}
		f.Minute, f.TPS = minute(len(topics) + i)
		out.Pairs[key] = f
		out.Get.Today += f.Today
		out.Get.Minute += f.Minute
		out.Get.TPS += f.TPS
		if i := strings.LastIndexByte(key, '@'); i > 0 {
			g := out.Groups[key[i+1:]]
			if g == nil {
				g = &Figures{}
				out.Groups[key[i+1:]] = g
			}
			g.Today += f.Today
			g.Minute += f.Minute
			g.TPS += f.TPS
		}
	}
	out.Up = 1
	return out
}
