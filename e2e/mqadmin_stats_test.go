package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/wire"
)

// TestMqadminStats is use case 7: messages produced per topic and
// consumed per group today, increments per minute with a chart, and Java's
// statsAll.
func TestMqadminStats(t *testing.T) {
	checkDay := sameDay(t)
	c := startCluster(t)
	ns := c.ns.addr
	cli(t, ns, "topic", "create", "-t", "UC7A", "-b", "broker-a", "--queues", "2")
	cli(t, ns, "topic", "create", "-t", "UC7B", "-b", "broker-a", "--queues", "1")
	waitRoute(t, ns, "UC7A", 1)
	waitRoute(t, ns, "UC7B", 1)
	p := newProducer(t, ns)
	sendN(t, p, "UC7A", "a", 7)
	sendN(t, p, "UC7B", "b", 3)
	col := newCollector()
	newPushConsumer(t, ns, "CG_uc7", "UC7A", consumer.MessageSelector{}, col, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	waitFor(t, 30*time.Second, "7 consumed", func() bool { return col.count() == 7 })

	checkDay()
	var today wire.StatsToday
	cliJSON(t, ns, &today, "stats", "today")
	if today.Topics["UC7A"] != 7 || today.Topics["UC7B"] != 3 || today.Groups["UC7A@CG_uc7"] != 7 || today.DayStart > today.At {
		t.Fatalf("today json %+v", today)
	}
	out := cli(t, ns, "stats", "today", "-c", "DefaultCluster")
	secs := sections(out)
	if len(secs) != 3 || !strings.HasPrefix(secs[2], "Counted from ") {
		t.Fatalf("stats today output:\n%s", out)
	}
	produced := parseTable(t, secs[0])
	produced.wantHeader(t, "Topic", "Produced Today")
	if produced.one(t, "Topic", "UC7A")["Produced Today"] != "7" || produced.one(t, "Topic", "UC7B")["Produced Today"] != "3" {
		t.Fatalf("produced rows %v", produced.rows)
	}
	consumed := parseTable(t, secs[1])
	consumed.wantHeader(t, "Topic", "Consumer Group", "Consumed Today")
	if r := consumed.one(t, "Consumer Group", "CG_uc7"); r["Topic"] != "UC7A" || r["Consumed Today"] != "7" {
		t.Fatalf("consumed rows %v", consumed.rows)
	}
	var todayB wire.StatsToday
	cliJSON(t, ns, &todayB, "stats", "today", "-t", "UC7B")
	if len(todayB.Topics) != 1 || todayB.Topics["UC7B"] != 3 || len(todayB.Groups) != 0 {
		t.Fatalf("today of UC7B %+v", todayB)
	}

	// Per-minute increments: the table's rows and the total agree.
	out = cli(t, ns, "stats", "series", "-t", "UC7A", "--step", "1m", "--from", "-10m")
	secs = sections(out)
	series := parseTable(t, secs[0])
	series.wantHeader(t, "Time", "Messages", "Chart")
	var sum int
	for _, r := range series.rows {
		if r["Messages"] != "0" && (r["Chart"] == "-" || !strings.HasPrefix(r["Chart"], "#")) {
			t.Fatalf("series row %v", r)
		}
		sum += atoi(t, r["Messages"])
	}
	b := block(secs[1])
	if sum != 7 || b["Total"] != "7" || !strings.ContainsAny(b["Trend"], "█") {
		t.Fatalf("series output:\n%s", out)
	}
	var gs wire.StatsSeries
	cliJSON(t, ns, &gs, "stats", "series", "-t", "UC7A", "-g", "CG_uc7", "--step", "1h")
	total := int64(0)
	for _, pt := range gs.Points {
		total += pt.Value
	}
	if gs.Kind != "get" || gs.Key != "UC7A@CG_uc7" || total != 7 {
		t.Fatalf("group series %+v", gs)
	}

	// statsAll: the windows fill on the broker's sampling ticks.
	var all []admin.StatsRow
	waitFor(t, 60*time.Second, "statsAll day counts", func() bool {
		cliJSON(t, ns, &all, "stats", "all")
		var a, b *admin.StatsRow
		for i := range all {
			switch all[i].Topic {
			case "UC7A":
				a = &all[i]
			case "UC7B":
				b = &all[i]
			}
		}
		return a != nil && b != nil && a.Group == "CG_uc7" && a.InMsg24Hour == 7 && a.OutMsg24Hour == 7 && a.Accumulation == 0 && b.NoConsumer && b.InMsg24Hour == 3
	})
	tb := tableOf(t, cli(t, ns, "statsAll", "-t", "UC7B"))
	tb.wantHeader(t, "Topic", "Consumer Group", "Accumulation", "InTPS", "OutTPS", "InMsg24Hour", "OutMsg24Hour")
	if r := tb.one(t, "Topic", "UC7B"); r["Consumer Group"] != "-" || r["InMsg24Hour"] != "3" || r["OutMsg24Hour"] != "NO_CONSUMER" {
		t.Fatalf("statsAll row %v", r)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
