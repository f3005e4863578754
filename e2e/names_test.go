package e2e

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

// Issue 11, names and numbers: every name and number that enters the
// broker is checked before it can create metadata or park a message.

// sendRaw stores one message in topic queue 0 and returns its commit-log offset.
func sendRaw(t *testing.T, addr, topic, body string) int64 {
	t.Helper()
	resp := invoke(t, addr, wire.SendMessage, sendFields(topic, "0"), []byte(body))
	if resp.Code != wire.Success {
		t.Fatalf("send: %d %s", resp.Code, resp.Remark)
	}
	_, _, off, err := wire.ParseOffsetMsgID(resp.GetString("msgId"))
	if err != nil {
		t.Fatal(err)
	}
	return off
}

func sendBack(t *testing.T, addr, group string, offset int64) *wire.Command {
	t.Helper()
	return invoke(t, addr, wire.ConsumerSendMsgBack, map[string]string{
		"group": group, "offset": strconv.FormatInt(offset, 10), "delayLevel": "0", "originTopic": "Orders", "maxReconsumeTimes": "16",
	}, nil)
}

// One CONSUMER_SEND_MSG_BACK whose group held "/" parked a message for
// %RETRY%a/b, which the store refuses; the delay service retried it
// forever, and nothing behind it at level 3 (every group's first retry)
// was delivered again, across restarts.
func TestSendBackBadGroupDoesNotStallLevel(t *testing.T) {
	c := startCluster(t, shortLevels)
	createTopic(t, c, "Orders", 1)
	off := sendRaw(t, c.broker.addr, "Orders", "order 1")
	waitDispatched(t, c.broker.addr, "Orders", 1, 1)

	resp := sendBack(t, c.broker.addr, "a/b", off)
	if resp.Code != wire.SubscriptionGroupNotExist || !strings.Contains(string(resp.Remark), `"a/b"`) {
		t.Errorf("send-back for group a/b: code %d (%s) remark %q; want SUBSCRIPTION_GROUP_NOT_EXIST naming the group", resp.Code, wire.ResponseName(resp.Code), resp.Remark)
	}
	if resp := sendBack(t, c.broker.addr, "good", off); resp.Code != wire.Success {
		t.Fatalf("send-back for group good: %d %s", resp.Code, resp.Remark)
	}
	waitFor(t, 20*time.Second, "the good group's retry delivered", func() bool { return maxOffset(t, c.broker.addr, "%RETRY%good", 0) >= 1 })

	c.broker.stop()
	c.broker = restartBroker(t, c, shortLevels)
	if resp := sendBack(t, c.broker.addr, "good", off); resp.Code != wire.Success {
		t.Fatalf("send-back after restart: %d %s", resp.Code, resp.Remark)
	}
	waitFor(t, 20*time.Second, "the good group's retry delivered after a restart", func() bool { return maxOffset(t, c.broker.addr, "%RETRY%good", 0) >= 2 })
}

func heartbeat(groups ...string) []byte {
	hb := wire.HeartbeatData{ClientID: "127.0.0.1@names", ProducerDataSet: []wire.ProducerData{}}
	for _, g := range groups {
		hb.ConsumerDataSet = append(hb.ConsumerDataSet, wire.ConsumerData{GroupName: g, ConsumeType: "CONSUME_PASSIVELY", MessageModel: "CLUSTERING",
			ConsumeFromWhere: "CONSUME_FROM_LAST_OFFSET", SubscriptionDataSet: []wire.SubscriptionData{}})
	}
	b, _ := json.Marshal(hb)
	return b
}

func pullFields(group, topic, queue string) map[string]string {
	return map[string]string{"consumerGroup": group, "topic": topic, "queueId": queue, "queueOffset": "0", "maxMsgNums": "1",
		"sysFlag": "4", "commitOffset": "0", "suspendTimeoutMillis": "0", "subVersion": "0", "subscription": "*", "expressionType": "TAG"}
}

func offsetFields(group, topic, queue, offset string) map[string]string {
	return map[string]string{"consumerGroup": group, "topic": topic, "queueId": queue, "commitOffset": offset}
}

// Names that break RocketMQ's rules, numbers that do not fit their Java
// type and offsets for queues that do not exist are refused with a clear
// answer at every entry point; none of them creates metadata.
func TestNamesAndNumbersRefused(t *testing.T) {
	c := startCluster(t)
	createTopic(t, c, "Orders", 2)
	addr := c.broker.addr
	lock, _ := json.Marshal(wire.LockBatchRequestBody{ConsumerGroup: "a/b", ClientID: "x", MqSet: []wire.MessageQueue{{Topic: "Orders", BrokerName: "broker-a"}}})
	badGroup, _ := json.Marshal(wire.NewSubscriptionGroupConfig("a/b"))
	cases := []struct {
		name   string
		code   int32
		fields map[string]string
		body   []byte
		want   int32
		remark string
	}{
		{"send queueId beyond int32", wire.SendMessage, sendFields("Orders", "4294967297"), []byte("x"), wire.SystemError, "<queueId>"},
		{"send sysFlag beyond int32", wire.SendMessage, func() map[string]string { f := sendFields("Orders", "0"); f["sysFlag"] = "4294967296"; return f }(), []byte("x"), wire.SystemError, "<sysFlag>"},
		{"pull group with /", wire.PullMessage, pullFields("a/b", "Orders", "0"), nil, wire.SubscriptionGroupNotExist, `"a/b"`},
		{"pull group too long", wire.PullMessage, pullFields(strings.Repeat("g", 121), "Orders", "0"), nil, wire.SubscriptionGroupNotExist, "longer than"},
		{"pull queueId beyond int32", wire.PullMessage, pullFields("G1", "Orders", "4294967296"), nil, wire.SystemError, "<queueId>"},
		{"commit for group with /", wire.UpdateConsumerOffset, offsetFields("a/b", "Orders", "0", "1"), nil, wire.SubscriptionGroupNotExist, `"a/b"`},
		{"commit negative offset", wire.UpdateConsumerOffset, offsetFields("G1", "Orders", "0", "-5"), nil, wire.SystemError, "negative"},
		{"commit unknown queue", wire.UpdateConsumerOffset, offsetFields("G1", "Orders", "2", "1"), nil, wire.SystemError, "queueId[2] is illegal"},
		{"commit unknown topic", wire.UpdateConsumerOffset, offsetFields("G1", "Nope", "0", "1"), nil, wire.TopicNotExist, "Nope"},
		{"commit queueId beyond int32", wire.UpdateConsumerOffset, offsetFields("G1", "Orders", "4294967297", "1"), nil, wire.SystemError, "<queueId>"},
		{"max offset queueId beyond int32", wire.GetMaxOffset, map[string]string{"topic": "Orders", "queueId": "4294967297"}, nil, wire.SystemError, "<queueId>"},
		{"lock for group with /", wire.LockBatchMQ, nil, lock, wire.SubscriptionGroupNotExist, `"a/b"`},
		{"admin group with /", wire.UpdateAndCreateSubGroup, nil, badGroup, wire.SystemError, `"a/b"`},
		{"admin topic with /", wire.UpdateAndCreateTopic, map[string]string{"topic": "x/y", "readQueueNums": "1", "writeQueueNums": "1", "perm": "6"}, nil, wire.SystemError, `"x/y"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := invoke(t, addr, tc.code, tc.fields, tc.body)
			if resp.Code != tc.want || !strings.Contains(string(resp.Remark), tc.remark) {
				t.Errorf("code %d (%s) remark %q; want %d (%s) containing %q", resp.Code, wire.ResponseName(resp.Code), resp.Remark, tc.want, wire.ResponseName(tc.want), tc.remark)
			}
		})
	}
	// A heartbeat keeps its good groups and names the refused one.
	resp := invoke(t, addr, wire.HeartBeat, nil, heartbeat("a/b", "G_ok"))
	if resp.Code != wire.Success || !strings.Contains(string(resp.Remark), `"a/b"`) {
		t.Errorf("heartbeat: code %d remark %q; want SUCCESS with a remark naming a/b", resp.Code, resp.Remark)
	}

	if n := maxOffset(t, addr, "Orders", 1); n != 0 {
		t.Errorf("queueId 4294967297 was stored as queue 1: %d messages there", n)
	}
	var groups wire.SubscriptionGroupWrapper
	if err := json.Unmarshal(invoke(t, addr, wire.GetAllSubGroupConfig, nil, nil).Body, &groups); err != nil {
		t.Fatal(err)
	}
	for name := range groups.SubscriptionGroupTable {
		if wire.CheckGroup(name) != nil {
			t.Errorf("group %q was created", name)
		}
	}
	if groups.SubscriptionGroupTable["G_ok"] == nil {
		t.Error("the heartbeat's valid group was not registered")
	}
	var topics wire.TopicConfigSerializeWrapper
	if err := json.Unmarshal(invoke(t, addr, wire.GetAllTopicConfig, nil, nil).Body, &topics); err != nil {
		t.Fatal(err)
	}
	for name := range topics.TopicConfigTable {
		if wire.CheckTopic(name) != nil {
			t.Errorf("topic %q was created", name)
		}
	}
	all := string(invoke(t, addr, wire.GetAllConsumerOffset, nil, nil).Body)
	if strings.Contains(all, "a/b") || strings.Contains(all, "-5") || strings.Contains(all, "Nope") || strings.Contains(all, `"2":`) {
		t.Errorf("refused offsets were stored: %s", all)
	}
	assertServing(t, addr)
}

// A JSON header whose code does not fit an int used to wrap into another
// code: 4294967326 was served as GET_MAX_OFFSET (30).
func TestJSONCodeOutOfRange(t *testing.T) {
	c := startCluster(t)
	conn := rawConn(t, c.broker.addr)
	hdr := []byte(`{"code":4294967326,"extFields":{"topic":"TBW102","queueId":"0"},"flag":0,"language":"GO","opaque":7,"serializeTypeCurrentRPC":"JSON","version":409}`)
	frame := binary.BigEndian.AppendUint32(nil, uint32(4+len(hdr)))
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(hdr)))
	frame = append(frame, hdr...)
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(conn)
	if len(got) > 0 || err != nil {
		t.Fatalf("code 4294967326 was answered (%d bytes: %q, err %v); want the connection closed", len(got), got, err)
	}
	waitFor(t, 5*time.Second, "broker.log to say why the frame was refused", func() bool {
		logs, _ := os.ReadFile(filepath.Join(string(c.dir), "logs", "broker.log"))
		return bytes.Contains(logs, []byte("code 4294967326 out of int32 range"))
	})
	assertServing(t, c.broker.addr)
}

func configDir(c *cluster) string { return filepath.Join(string(c.dir), "store", "config") }

// A torn topics.json stopped the broker although a good .bak existed.
func TestTornTopicsFallBackToBackup(t *testing.T) {
	c := startCluster(t)
	createTopic(t, c, "Orders", 4)
	createTopic(t, c, "Payments", 4) // topics.json.bak now holds Orders
	c.broker.stop()
	path := filepath.Join(configDir(c), "topics.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	c.broker = restartBroker(t, c)
	var topics wire.TopicConfigSerializeWrapper
	if err := json.Unmarshal(invoke(t, c.broker.addr, wire.GetAllTopicConfig, nil, nil).Body, &topics); err != nil {
		t.Fatal(err)
	}
	if topics.TopicConfigTable["Orders"] == nil {
		t.Fatalf("Orders from topics.json.bak not served: %v", topics.TopicConfigTable)
	}
	logs, _ := os.ReadFile(filepath.Join(string(c.dir), "logs", "broker.log"))
	if !bytes.Contains(logs, []byte("loaded its backup")) || !bytes.Contains(logs, []byte("topics.json.bak")) {
		t.Errorf("broker.log does not report the fallback naming both files")
	}
	c.broker.stop()

	// Both unusable (here: writeQueueNums=-3 in both): refuse to start,
	// naming the file and the entry, rather than serve it or start empty.
	for _, p := range []string{path, path + ".bak"} {
		b, _ := os.ReadFile(p)
		b = bytes.Replace(b, []byte(`"writeQueueNums":4`), []byte(`"writeQueueNums":-3`), 1)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := runBrokerExpectingFailure(t, c)
	if !strings.Contains(out, "topics.json") || !strings.Contains(out, "writeQueueNums -3") {
		t.Fatalf("broker with writeQueueNums -3 in topics.json and its backup:\n%s", out)
	}
}

// runBrokerExpectingFailure starts c's broker and returns what it printed
// before exiting; it fails the test if the broker comes up.
func runBrokerExpectingFailure(t *testing.T, c *cluster) string {
	t.Helper()
	args := []string{"-n", c.ns.addr, "-p", "listenPort=0", "-p", "brokerIP1=127.0.0.1",
		"-p", "storePathRootDir=" + filepath.Join(string(c.dir), "store"), "-p", "logDir=" + filepath.Join(string(c.dir), "logs"),
		"-p", "mappedFileSizeCommitLog=" + strconv.Itoa(16<<20), "-p", "maxHashSlotNum=10000", "-p", "maxIndexNum=40000"}
	cmd := exec.Command(filepath.Join(binDir, "mqbroker"), args...)
	out, err := cmd.CombinedOutput()
	if err == nil || brokerReady.Match(out) {
		t.Fatalf("the broker started:\n%s", out)
	}
	return string(out)
}

// A topic an earlier build created under a name with "/" (a heartbeat's
// retry topic) could not be deleted: the delete path refused the name.
func TestDeleteLegacyTopicNames(t *testing.T) {
	c := startCluster(t)
	createTopic(t, c, "Orders", 1)
	sendRaw(t, c.broker.addr, "Orders", "kept")
	c.broker.stop()
	path := filepath.Join(configDir(c), "topics.json")
	var w map[string]any
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	table := w["topicConfigTable"].(map[string]any)
	for _, name := range []string{"%RETRY%a/b", ".."} {
		table[name] = map[string]any{"topicName": name, "readQueueNums": 1, "writeQueueNums": 1, "perm": 6, "topicFilterType": "SINGLE_TAG"}
	}
	b, _ = json.Marshal(w)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	c.broker = restartBroker(t, c)
	for _, name := range []string{"%RETRY%a/b", ".."} {
		if resp := invoke(t, c.broker.addr, wire.DeleteTopicInBroker, map[string]string{"topic": name}, nil); resp.Code != wire.Success {
			t.Errorf("delete %q: code %d remark %q", name, resp.Code, resp.Remark)
		}
	}
	var topics wire.TopicConfigSerializeWrapper
	if err := json.Unmarshal(invoke(t, c.broker.addr, wire.GetAllTopicConfig, nil, nil).Body, &topics); err != nil {
		t.Fatal(err)
	}
	if topics.TopicConfigTable["%RETRY%a/b"] != nil || topics.TopicConfigTable[".."] != nil {
		t.Errorf("legacy topics still there")
	}
	// ".." must not have become a path: the store is intact.
	if n := maxOffset(t, c.broker.addr, "Orders", 0); n != 1 {
		t.Fatalf("Orders holds %d messages after deleting \"..\", want 1", n)
	}
	if _, err := os.Stat(filepath.Join(string(c.dir), "store", "consumequeue", "Orders")); err != nil {
		t.Fatalf("consume queues gone: %v", err)
	}
}

// A send-back whose retry copy the store refuses for good (its parking
// properties take it past 32767 bytes) was answered MESSAGE_ILLEGAL, and
// the Go client drops its copy on any answer: the message was gone. Now
// it goes to the group's dead-letter topic.
func TestSendBackRefusedGoesToDLQ(t *testing.T) {
	c := startCluster(t, shortLevels)
	createTopic(t, c, "Orders", 1)
	// Size the properties so that the dead-letter copy fits and the
	// parked retry copy (REAL_TOPIC, REAL_QID, DELAY) does not.
	added := len(wire.AppendProperty(wire.AppendProperty([]byte("x\x01y\x02CLUSTER\x01DefaultCluster"), wire.PropRetryTopic, "Orders"), wire.PropOriginMessageID, strings.Repeat("0", 32))) - len("x\x01y\x02")
	props := "KEYS\x01" + strings.Repeat("k", wire.MaxPropertiesLen-20-added-len("KEYS\x01\x02")) + "\x02"
	f := sendFields("Orders", "0")
	f["properties"] = props
	resp := invoke(t, c.broker.addr, wire.SendMessage, f, []byte("big properties"))
	if resp.Code != wire.Success {
		t.Fatalf("send: %d %s", resp.Code, resp.Remark)
	}
	_, _, off, err := wire.ParseOffsetMsgID(resp.GetString("msgId"))
	if err != nil {
		t.Fatal(err)
	}
	waitDispatched(t, c.broker.addr, "Orders", 1, 1)
	if resp := sendBack(t, c.broker.addr, "good", off); resp.Code != wire.Success {
		t.Fatalf("send-back: code %d (%s) remark %q; the client drops its copy on any answer", resp.Code, wire.ResponseName(resp.Code), resp.Remark)
	}
	waitFor(t, 10*time.Second, "the message in %DLQ%good", func() bool { return maxOffset(t, c.broker.addr, "%DLQ%good", 0) == 1 })
}
