package admin

import (
	"fmt"
	"sort"

	"github.com/mqops/mqops/wire"
)

// Statistic names of VIEW_BROKER_STATS_DATA
// (apache/rocketmq common/src/main/java/org/apache/rocketmq/common/stats/Stats.java).
const (
	StatsTopicPutNums = "TOPIC_PUT_NUMS" // key: topic
	StatsGroupGetNums = "GROUP_GET_NUMS" // key: topic@group
)

// ViewStats reads one statistic of a broker (VIEW_BROKER_STATS_DATA, 315).
// A statistic the broker has not started yet (a topic never written) is
// answered with SYSTEM_ERROR and counts as all zeros, as in Java's statsAll.
func (a *Admin) ViewStats(addr, name, key string) (*wire.BrokerStatsData, error) {
	resp, err := a.call(addr, wire.ViewBrokerStatsData, map[string]string{"statsName": name, "statsKey": key}, nil)
	if IsCode(err, wire.SystemError) {
		return &wire.BrokerStatsData{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stats %s of %s on %s: %w", name, key, addr, err)
	}
	var d wire.BrokerStatsData
	if err := decode(resp, "broker stats", &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// sum24h is Java statsAll's day count: the rolling day window, falling back
// to the hour and then the minute window while a freshly started broker's
// longer windows are still empty. It is not a count since midnight.
func sum24h(d *wire.BrokerStatsData) int64 {
	for _, s := range []int64{d.StatsDay.Sum, d.StatsHour.Sum, d.StatsMinute.Sum} {
		if s != 0 {
			return s
		}
	}
	return 0
}

// StatsRow is one line of statsAll: a topic and one group consuming it
// (Group "" and NoConsumer when none does).
type StatsRow struct {
	Topic        string  `json:"topic"`
	Group        string  `json:"group"`
	Accumulation int64   `json:"accumulation"`
	InTPS        float64 `json:"inTps"`
	OutTPS       float64 `json:"outTps"`
	InMsg24Hour  int64   `json:"inMsg24Hour"`
	OutMsg24Hour int64   `json:"outMsg24Hour"`
	NoConsumer   bool    `json:"noConsumer,omitempty"`
}

// StatsAll computes Java's statsAll for one topic or (topic "") every
// topic but retry and dead-letter ones: produce TPS and day counts from
// TOPIC_PUT_NUMS, and per consuming group its backlog and GROUP_GET_NUMS,
// summed over the masters of the topic's route. With activeOnly, topics
// without traffic in the day window are left out.
func (a *Admin) StatsAll(topic string, activeOnly bool, progress ScanProgress) ([]StatsRow, error) {
	topics := []string{topic}
	if topic == "" {
		all, err := a.TopicList()
		if err != nil {
			return nil, err
		}
		topics = topics[:0]
		for _, t := range all {
			if !IsRetryOrDLQ(t) {
				topics = append(topics, t)
			}
		}
	}
	out := []StatsRow{}
	for i, t := range topics {
		if progress != nil {
			progress(i, len(topics))
		}
		rows, err := a.topicStats(t, activeOnly)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	if progress != nil {
		progress(len(topics), len(topics))
	}
	return out, nil
}

func (a *Admin) topicStats(topic string, activeOnly bool) ([]StatsRow, error) {
	rd, err := a.TopicRoute(topic)
	if err != nil {
		return nil, err
	}
	masters := routeMasters(rd)
	puts := make([]*wire.BrokerStatsData, len(masters))
	consumers := make([][]string, len(masters))
	err = FanOut(len(masters), a.parallel, func(i int) (err error) {
		if puts[i], err = a.ViewStats(masters[i].Addr, StatsTopicPutNums, topic); err != nil {
			return err
		}
		consumers[i], err = a.TopicConsumers(masters[i].Addr, topic)
		return err
	})
	if err != nil {
		return nil, err
	}
	in := StatsRow{Topic: topic}
	groups := map[string]bool{}
	for i, d := range puts {
		in.InTPS += d.StatsMinute.Tps
		in.InMsg24Hour += sum24h(d)
		for _, g := range consumers[i] {
			groups[g] = true
		}
	}
	if len(groups) == 0 {
		if activeOnly && in.InMsg24Hour == 0 {
			return nil, nil
		}
		in.NoConsumer = true
		return []StatsRow{in}, nil
	}
	// One call per group and master, all in one fan-out: call i is group
	// i/len(masters) on master i%len(masters).
	names := sortedKeys(groups)
	gets := make([]*wire.BrokerStatsData, len(names)*len(masters))
	progress := make([]*wire.ConsumeStats, len(gets))
	err = FanOut(len(gets), a.parallel, func(i int) (err error) {
		g, addr := names[i/len(masters)], masters[i%len(masters)].Addr
		if gets[i], err = a.ViewStats(addr, StatsGroupGetNums, topic+"@"+g); err != nil {
			return err
		}
		progress[i], err = a.ConsumeStats(addr, g, topic)
		return err
	})
	if err != nil {
		return nil, err
	}
	var rows []StatsRow
	for gi, g := range names {
		r := in
		r.Group = g
		for i := gi * len(masters); i < (gi+1)*len(masters); i++ {
			r.OutTPS += gets[i].StatsMinute.Tps
			r.OutMsg24Hour += sum24h(gets[i])
			for _, w := range progress[i].OffsetTable {
				r.Accumulation += max(w.BrokerOffset-w.ConsumerOffset, 0)
			}
		}
		if activeOnly && r.InMsg24Hour == 0 && r.OutMsg24Hour == 0 {
			continue
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// StatsToday sums the brokers' counts since local midnight, up to at (ms;
// 0 means now), over the masters t selects (MQOPS_STATS_TODAY, 10001):
// messages produced per topic and consumed per topic@group. DayStart and At
// are the first broker's.
func (a *Admin) StatsToday(t Target, at int64) (*wire.StatsToday, error) {
	brokers, err := a.Brokers(t)
	if err != nil {
		return nil, err
	}
	var f map[string]string
	if at > 0 {
		f = map[string]string{"at": itoa(at)}
	}
	all := make([]wire.StatsToday, len(brokers))
	err = FanOut(len(brokers), a.parallel, func(i int) error {
		resp, err := a.call(brokers[i].Addr, wire.MQOpsStatsToday, f, nil)
		if err != nil {
			return fmt.Errorf("today's stats of %s: %w", brokers[i].Addr, err)
		}
		return decode(resp, "today's stats", &all[i])
	})
	if err != nil {
		return nil, err
	}
	sum := &wire.StatsToday{Topics: map[string]int64{}, Groups: map[string]int64{}}
	for i, st := range all {
		if i == 0 {
			sum.DayStart, sum.At = st.DayStart, st.At
		}
		for k, v := range st.Topics {
			sum.Topics[k] += v
		}
		for k, v := range st.Groups {
			sum.Groups[k] += v
		}
	}
	return sum, nil
}

// Series kinds of MQOPS_STATS_SERIES.
const (
	SeriesPut = "put" // messages produced to a topic
	SeriesGet = "get" // messages of a topic consumed by a group
)

// StatsSeries returns a topic's produce increments (group "") or a group's
// consume increments on it, per step ("1m", "1h" or "1d") between from and
// to (ms), summed over the masters of the topic's route
// (MQOPS_STATS_SERIES, 10002). Brokers bucket by their local time, so the
// sum assumes the masters share a time zone.
func (a *Admin) StatsSeries(topic, group, step string, from, to int64) (*wire.StatsSeries, error) {
	rd, err := a.TopicRoute(topic)
	if err != nil {
		return nil, err
	}
	kind, key := SeriesPut, topic
	if group != "" {
		kind, key = SeriesGet, topic+"@"+group
	}
	f := map[string]string{"kind": kind, "key": key, "step": step, "from": itoa(from), "to": itoa(to)}
	masters := routeMasters(rd)
	all := make([]wire.StatsSeries, len(masters))
	err = FanOut(len(masters), a.parallel, func(i int) error {
		resp, err := a.call(masters[i].Addr, wire.MQOpsStatsSeries, f, nil)
		if err != nil {
			return fmt.Errorf("stats series of %s on %s: %w", key, masters[i].Addr, err)
		}
		return decode(resp, "stats series", &all[i])
	})
	if err != nil {
		return nil, err
	}
	byTime := map[int64]int64{}
	for _, s := range all {
		for _, p := range s.Points {
			byTime[p.Time] += p.Value
		}
	}
	out := &wire.StatsSeries{Kind: kind, Key: key, Step: step, Points: make([]wire.StatsPoint, 0, len(byTime))}
	for t, v := range byTime {
		out.Points = append(out.Points, wire.StatsPoint{Time: t, Value: v})
	}
	sort.Slice(out.Points, func(i, j int) bool { return out.Points[i].Time < out.Points[j].Time })
	return out, nil
}

// PopStats reads one broker's POP leases per consumer group
// (MQOPS_POP_STATS, 10003): in flight now and expired since it started.
// Brokers without the request (Java) answer REQUEST_CODE_NOT_SUPPORTED.
func (a *Admin) PopStats(addr string) (*wire.PopStats, error) {
	resp, err := a.call(addr, wire.MQOpsPopStats, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("POP stats of %s: %w", addr, err)
	}
	var ps wire.PopStats
	if err := decode(resp, "POP stats", &ps); err != nil {
		return nil, err
	}
	if ps.Groups == nil {
		ps.Groups = map[string]wire.PopGroupStats{}
	}
	return &ps, nil
}
