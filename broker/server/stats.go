package server

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mqops/mqops/broker/stats"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// Statistics the broker keeps for mqadmin, stats.log and runtime info; the
// counting itself happens in package stats.

// addStatsRuntime adds the traffic keys of GET_BROKER_RUNTIME_INFO.
func (b *Broker) addStatsRuntime(kv map[string]string) {
	rt := b.stats.Runtime()
	kv["msgPutTotalTodayNow"] = strconv.FormatInt(rt.PutTotalTodayNow, 10)
	kv["msgPutTotalTodayMorning"] = strconv.FormatInt(rt.PutTotalTodayMorning, 10)
	kv["msgPutTotalYesterdayMorning"] = strconv.FormatInt(rt.PutTotalYesterdayMorning, 10)
	kv["msgGetTotalTodayNow"] = strconv.FormatInt(rt.GetTotalTodayNow, 10)
	kv["msgGetTotalTodayMorning"] = strconv.FormatInt(rt.GetTotalTodayMorning, 10)
	kv["msgGetTotalYesterdayMorning"] = strconv.FormatInt(rt.GetTotalYesterdayMorning, 10)
	// Java prints each rate as "10s 60s 600s".
	kv["putTps"] = tpsTriplet(rt.PutTPS)
	kv["getTransferedTps"] = tpsTriplet(rt.GetTPS)
	kv["getFoundTps"] = tpsTriplet(rt.GetTPS)
	kv["getTotalTps"] = tpsTriplet(rt.GetTPS)
	kv["getMissTps"] = "0.0 0.0 0.0"
}

func tpsTriplet(t [3]float64) string {
	return fmt.Sprintf("%s %s %s", strconv.FormatFloat(t[0], 'f', -1, 64), strconv.FormatFloat(t[1], 'f', -1, 64), strconv.FormatFloat(t[2], 'f', -1, 64))
}

// groupTps is a group's consume rate on a topic over the last minute.
func (b *Broker) groupTps(topic, group string) float64 {
	s, _ := b.stats.View(stats.GroupGetNums, topic+"@"+group)
	return s.Minute.TPS
}

// handleViewStats answers VIEW_BROKER_STATS_DATA (315).
func (b *Broker) handleViewStats(c *remoting.Conn, req *wire.Command) {
	name, key := req.GetString("statsName"), req.GetString("statsKey")
	s, ok := b.stats.View(name, key)
	if !ok {
		c.ReplyCode(req, wire.SystemError, fmt.Sprintf("The stats <%s> <%s> not exist", name, key))
		return
	}
	item := func(w stats.Window) wire.BrokerStatsItem {
		return wire.BrokerStatsItem{Sum: w.Sum, Tps: w.TPS, Avgpt: w.AvgPT}
	}
	b.replyBody(c, req, wire.Marshal(wire.BrokerStatsData{StatsMinute: item(s.Minute), StatsHour: item(s.Hour), StatsDay: item(s.Day)}))
}

// handleStatsToday answers MQOPS_STATS_TODAY: counts since local midnight.
func (b *Broker) handleStatsToday(c *remoting.Conn, req *wire.Command) {
	now := time.Now()
	at := now
	if ms, ok := req.GetInt("at"); ok && ms > 0 && ms < now.UnixMilli() {
		at = time.UnixMilli(ms)
	}
	y, m, d := now.Date()
	if midnight := time.Date(y, m, d, 0, 0, 0, 0, now.Location()); at.Before(midnight) {
		c.ReplyCode(req, wire.SystemError, fmt.Sprintf("at %s is before today's midnight: today's counts start at %s", at.Format(time.RFC3339), midnight.Format(time.RFC3339)))
		return
	}
	body := wire.StatsToday{
		DayStart: time.Date(y, m, d, 0, 0, 0, 0, at.Location()).UnixMilli(),
		At:       at.UnixMilli(),
		Topics:   b.stats.TopicsToday(at),
		Groups:   b.stats.GroupsToday(at),
	}
	b.replyBody(c, req, wire.Marshal(body))
}

var seriesSteps = map[string]time.Duration{"1m": time.Minute, "1h": time.Hour, "1d": 24 * time.Hour}

// handleStatsSeries answers MQOPS_STATS_SERIES: increments per step.
func (b *Broker) handleStatsSeries(c *remoting.Conn, req *wire.Command) {
	kind, key, stepName := req.GetString("kind"), req.GetString("key"), req.GetString("step")
	step, ok := seriesSteps[stepName]
	if !ok {
		c.ReplyCode(req, wire.SystemError, fmt.Sprintf("step %q: want 1m, 1h or 1d", stepName))
		return
	}
	from, okFrom := req.GetInt("from")
	to, okTo := req.GetInt("to")
	if !okFrom || !okTo || from > to {
		c.ReplyCode(req, wire.SystemError, "from and to must be millisecond timestamps with from <= to")
		return
	}
	points, err := b.stats.Series(strings.ToLower(kind), key, step, time.UnixMilli(from), time.UnixMilli(to))
	if err != nil {
		c.ReplyCode(req, wire.SystemError, err.Error())
		return
	}
	body := wire.StatsSeries{Kind: kind, Key: key, Step: stepName, Points: make([]wire.StatsPoint, 0, len(points))}
	for _, p := range points {
		body.Points = append(body.Points, wire.StatsPoint{Time: p.Time.UnixMilli(), Value: p.Value})
	}
	b.replyBody(c, req, wire.Marshal(body))
}
