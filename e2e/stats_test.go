package e2e

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"

	"github.com/mqops/mqops/wire"
)

func statsToday(t *testing.T, broker string) wire.StatsToday {
	t.Helper()
	resp := invoke(t, broker, wire.MQOpsStatsToday, nil, nil)
	var st wire.StatsToday
	if resp.Code != wire.Success || json.Unmarshal(resp.Body, &st) != nil {
		t.Fatalf("stats today: %s %s %s", wire.ResponseName(resp.Code), resp.Remark, resp.Body)
	}
	return st
}

// TestBusinessStats: produced-today and consumed-today counts per topic and
// group, the per-minute series and RocketMQ's windowed stats view; the
// business counts survive a broker restart.
func TestBusinessStats(t *testing.T) {
	checkDay := sameDay(t)
	c := startCluster(t)
	createTopic(t, c, "StatsA", 2)
	createTopic(t, c, "StatsB", 1)
	p := newProducer(t, c.ns.addr)
	sendN(t, p, "StatsA", "a", 7)
	sendN(t, p, "StatsB", "b", 3)
	col := newCollector()
	newPushConsumer(t, c.ns.addr, "CG_stats", "StatsA", consumer.MessageSelector{}, col, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	waitFor(t, 30*time.Second, "7 consumed", func() bool { return col.count() == 7 })

	checkDay()
	st := statsToday(t, c.broker.addr)
	if st.Topics["StatsA"] != 7 || st.Topics["StatsB"] != 3 || st.Groups["StatsA@CG_stats"] != 7 {
		t.Fatalf("today: topics %v groups %v", st.Topics, st.Groups)
	}
	resp := invoke(t, c.broker.addr, wire.ViewBrokerStatsData, map[string]string{"statsName": "TOPIC_PUT_NUMS", "statsKey": "StatsA"}, nil)
	var view wire.BrokerStatsData
	if resp.Code != wire.Success || json.Unmarshal(resp.Body, &view) != nil {
		t.Fatalf("stats view: %s %s", wire.ResponseName(resp.Code), resp.Remark)
	}
	if resp := invoke(t, c.broker.addr, wire.ViewBrokerStatsData, map[string]string{"statsName": "TOPIC_PUT_NUMS", "statsKey": "Nope"}, nil); resp.Code == wire.Success {
		t.Fatal("stats of an unknown key answered SUCCESS")
	}

	c.broker.stop()
	c.broker = restartBroker(t, c)
	checkDay()
	st = statsToday(t, c.broker.addr)
	if st.Topics["StatsA"] != 7 || st.Topics["StatsB"] != 3 || st.Groups["StatsA@CG_stats"] != 7 {
		t.Fatalf("today after restart: topics %v groups %v", st.Topics, st.Groups)
	}
	now := time.Now()
	resp = invoke(t, c.broker.addr, wire.MQOpsStatsSeries, map[string]string{
		"kind": "put", "key": "StatsA", "step": "1m",
		"from": strconv.FormatInt(now.Add(-time.Hour).UnixMilli(), 10), "to": strconv.FormatInt(now.UnixMilli(), 10),
	}, nil)
	var series wire.StatsSeries
	if resp.Code != wire.Success || json.Unmarshal(resp.Body, &series) != nil {
		t.Fatalf("series: %s %s", wire.ResponseName(resp.Code), resp.Remark)
	}
	sum := int64(0)
	for _, pt := range series.Points {
		sum += pt.Value
	}
	if sum != 7 {
		t.Fatalf("per-minute increments of StatsA add up to %d, want 7: %+v", sum, series.Points)
	}
	rt := invoke(t, c.broker.addr, wire.GetBrokerRuntimeInfo, nil, nil)
	var kv wire.KVTable
	if err := json.Unmarshal(rt.Body, &kv); err != nil || kv.Table["msgPutTotalTodayNow"] != "10" {
		t.Fatalf("runtime info msgPutTotalTodayNow = %q (%v)", kv.Table["msgPutTotalTodayNow"], err)
	}
}
