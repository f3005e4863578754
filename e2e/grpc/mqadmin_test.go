package grpc

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
)

// tableRows parses mqadmin's table output (a "#Col" header row, columns
// aligned under it, "-" for empty cells) into one map per row.
func tableRows(t *testing.T, out string) []map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	h := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "#") {
			h = i
			break
		}
	}
	if h < 0 {
		t.Fatalf("no table header in:\n%s", out)
	}
	// Column starts are where each "#" of the header stands.
	var starts []int
	for i, r := range lines[h] {
		if r == '#' {
			starts = append(starts, i)
		}
	}
	cell := func(l string, i int) string {
		from, to := starts[i], len(l)
		if i+1 < len(starts) {
			to = min(starts[i+1], len(l))
		}
		if from >= len(l) {
			return ""
		}
		return strings.TrimSpace(l[from:to])
	}
	var names []string
	for i := range starts {
		names = append(names, strings.TrimPrefix(cell(lines[h], i), "#"))
	}
	var rows []map[string]string
	for _, l := range lines[h+1:] {
		if strings.TrimSpace(l) == "" {
			break
		}
		r := map[string]string{}
		for i, n := range names {
			r[n] = cell(l, i)
		}
		rows = append(rows, r)
	}
	return rows
}

// rowWhere is the one row whose column col is v.
func rowWhere(t *testing.T, rows []map[string]string, col, v string) map[string]string {
	t.Helper()
	var found []map[string]string
	for _, r := range rows {
		if r[col] == v {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d rows with %s = %s in %v", len(found), col, v, rows)
	}
	return found[0]
}

// TestMQAdminV5ClientsAndMessageTypes: the official Go v5.1.2
// SimpleConsumer shows in group connections and Java's consumerConnection
// with its language, its own version and protocol gRPC, its subscription
// and CONSUME_ACTIVELY (as Java's proxy registers it); topic list,
// topicList -c, topic status and topicStatus show each topic's
// message.type, and -o json carries it too.
func TestMQAdminV5ClientsAndMessageTypes(t *testing.T) {
	c := startCluster(t, popKV...)
	typedTopic(t, c, "AdmFifo", "FIFO", 2)
	if out, err := mqadmin(t, c, "updateTopic", "-b", c.broker.addr, "-t", "AdmPlain", "-r", "2", "-w", "2"); err != nil {
		t.Fatalf("updateTopic: %v\n%s", err, out)
	}
	const group = "AdmV5Group"
	newV5Consumer(t, c.grpcAddr, group, map[string]*rmq.FilterExpression{"AdmFifo": rmq.NewFilterExpression("TagA || TagB")})

	type conns struct {
		Connections []struct {
			ClientID, ClientAddr, Language, VersionDesc, Protocol string
		}
		ConsumeType, MessageModel, ConsumeFromWhere string
		Subscriptions                               map[string]struct {
			SubString      string   `json:"subString"`
			ExpressionType string   `json:"expressionType"`
			TagsSet        []string `json:"tagsSet"`
		}
	}
	var cc conns
	waitFor(t, 30*time.Second, "the v5 consumer in group connections", func() bool {
		out, err := mqadmin(t, c, "group", "connections", "-g", group, "-o", "json")
		return err == nil && json.Unmarshal([]byte(out), &cc) == nil && len(cc.Connections) == 1
	})
	conn := cc.Connections[0]
	sub := cc.Subscriptions["AdmFifo"]
	if conn.Language != "GO" || conn.VersionDesc != "5.0.1-rc1" || conn.Protocol != "grpc" || !strings.HasPrefix(conn.ClientAddr, "127.0.0.1:") ||
		conn.ClientID == "" || cc.ConsumeType != "CONSUME_ACTIVELY" || cc.MessageModel != "CLUSTERING" || cc.ConsumeFromWhere != "CONSUME_FROM_LAST_OFFSET" ||
		sub.SubString != "TagA || TagB" || sub.ExpressionType != "TAG" || strings.Join(sub.TagsSet, ",") != "TagA,TagB" {
		t.Fatalf("group connections -o json: %+v", cc)
	}
	out, err := mqadmin(t, c, "consumerConnection", "-g", group)
	if err != nil {
		t.Fatalf("consumerConnection: %v\n%s", err, out)
	}
	if r := rowWhere(t, tableRows(t, out), "ClientId", conn.ClientID); r["Language"] != "GO" || r["Version"] != "5.0.1-rc1" || r["Protocol"] != "grpc" {
		t.Fatalf("consumerConnection row %v:\n%s", r, out)
	}
	if !strings.Contains(out, "ConsumeType: CONSUME_ACTIVELY") || !strings.Contains(out, "AdmFifo") {
		t.Fatalf("consumerConnection:\n%s", out)
	}

	// group status asks remoting clients only: the broker cannot relay
	// GET_CONSUMER_RUNNING_INFO to a 5.x client.
	if out, err := mqadmin(t, c, "group", "status", "-g", group); err != nil || strings.Contains(out, conn.ClientID) || !strings.Contains(out, "Clients: 0") {
		t.Fatalf("group status of a group of 5.x clients: %v\n%s", err, out)
	}

	// message.type in the topic listings.
	for _, args := range [][]string{{"topic", "list"}, {"topicList"}} {
		out, err := mqadmin(t, c, args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		rows := tableRows(t, out)
		if rowWhere(t, rows, "Topic", "AdmFifo")["Message Type"] != "FIFO" || rowWhere(t, rows, "Topic", "AdmPlain")["Message Type"] != "NORMAL" {
			t.Fatalf("%v:\n%s", args, out)
		}
	}
	out, err = mqadmin(t, c, "topicList", "-c")
	if err != nil {
		t.Fatalf("topicList -c: %v\n%s", err, out)
	}
	if r := rowWhere(t, tableRows(t, out), "Topic", "AdmPlain"); r["Message Type"] != "NORMAL" || r["Cluster Name"] != "DefaultCluster" {
		t.Fatalf("topicList -c row %v:\n%s", r, out)
	}
	out, err = mqadmin(t, c, "topic", "list", "--groups", "-o", "json")
	var tg []struct{ Topic, MessageType string }
	if err != nil || json.Unmarshal([]byte(out), &tg) != nil {
		t.Fatalf("topic list --groups -o json: %v\n%s", err, out)
	}
	types := map[string]string{}
	for _, r := range tg {
		types[r.Topic] = r.MessageType
	}
	if types["AdmFifo"] != "FIFO" || types["AdmPlain"] != "NORMAL" {
		t.Fatalf("topic list --groups -o json: %s", out)
	}
	for _, args := range [][]string{{"topic", "status", "-t", "AdmFifo"}, {"topicStatus", "-t", "AdmFifo"}} {
		out, err := mqadmin(t, c, args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		rows := tableRows(t, out)
		if len(rows) != 2 || rows[0]["Message Type"] != "FIFO" || rows[1]["Message Type"] != "FIFO" {
			t.Fatalf("%v:\n%s", args, out)
		}
	}
	out, err = mqadmin(t, c, "topic", "status", "-t", "AdmPlain", "-o", "json")
	var qs []struct {
		QueueID     int
		MessageType string
	}
	if err != nil || json.Unmarshal([]byte(out), &qs) != nil || len(qs) != 2 || qs[0].MessageType != "NORMAL" || qs[1].MessageType != "NORMAL" {
		t.Fatalf("topic status -o json: %v\n%s", err, out)
	}
}
