package e2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/mqops/mqops/wire"
)

// slaveSyncWait bounds how long a slave takes to show the master's
// metadata: its first sync runs 3 s after start and then every 10 s; the
// Go client commits offsets every 5 s.
const slaveSyncWait = 45 * time.Second

// startSlave runs broker-a's slave (brokerId 1) registered with namesrv.
func startSlave(t *testing.T, dir brokerDir, namesrv string, extra ...string) *proc {
	return startBroker(t, dir, namesrv, append([]string{"brokerRole=SLAVE", "brokerId=1"}, extra...)...)
}

// TestSlaveRefusesWrites: a slave answers every write request over the
// wire as a Java 4.9.8 slave does, and accepts a consumer offset.
func TestSlaveRefusesWrites(t *testing.T) {
	ns := startNamesrv(t)
	master := startBroker(t, newBrokerDir(t), ns.addr)
	slave := startSlave(t, newBrokerDir(t), ns.addr)

	const sendRemark = "service not available now. It may be caused by one of the following reasons: the broker's disk is full [CL: "
	v2 := map[string]string{"a": "PG", "b": "SlaveW", "c": "TBW102", "d": "4", "e": "0", "f": "0", "g": "1", "h": "0", "i": "", "j": "0"}
	v1 := map[string]string{"producerGroup": "PG", "topic": "SlaveW", "defaultTopic": "TBW102", "defaultTopicQueueNums": "4", "queueId": "0", "sysFlag": "0", "bornTimestamp": "1", "flag": "0"}
	const adminRemark = "Can't modify topic or subscription group from slave broker, please execute it from master broker."
	for _, c := range []struct {
		name   string
		code   int32
		fields map[string]string
		body   []byte
		want   int32
		remark string
	}{
		{"SEND_MESSAGE", wire.SendMessage, v1, []byte("x"), wire.ServiceNotAvailable, sendRemark},
		{"SEND_MESSAGE_V2", wire.SendMessageV2, v2, []byte("x"), wire.ServiceNotAvailable, sendRemark},
		{"SEND_BATCH_MESSAGE", wire.SendBatchMessage, v2, []byte("x"), wire.ServiceNotAvailable, sendRemark},
		{"CONSUMER_SEND_MSG_BACK", wire.ConsumerSendMsgBack, map[string]string{"group": "CG", "offset": "0", "delayLevel": "0"}, nil, wire.SystemError, "SERVICE_NOT_AVAILABLE"},
		{"END_TRANSACTION", wire.EndTransaction, map[string]string{"producerGroup": "PG", "tranStateTableOffset": "0", "commitLogOffset": "0", "commitOrRollback": "8"}, nil, wire.SlaveNotAvailable, ""},
		{"UPDATE_AND_CREATE_TOPIC", wire.UpdateAndCreateTopic, map[string]string{"topic": "SlaveW", "readQueueNums": "1", "writeQueueNums": "1", "perm": "6"}, nil, wire.SystemError, adminRemark},
		{"DELETE_TOPIC_IN_BROKER", wire.DeleteTopicInBroker, map[string]string{"topic": "SlaveW"}, nil, wire.SystemError, adminRemark},
		{"UPDATE_AND_CREATE_SUBSCRIPTIONGROUP", wire.UpdateAndCreateSubGroup, nil, wire.Marshal(wire.NewSubscriptionGroupConfig("SlaveG")), wire.SystemError, adminRemark},
		{"DELETE_SUBSCRIPTIONGROUP", wire.DeleteSubGroup, map[string]string{"groupName": "SlaveG"}, nil, wire.SystemError, adminRemark},
	} {
		resp := invoke(t, slave.addr, c.code, c.fields, c.body)
		if resp.Code != c.want || !strings.HasPrefix(string(resp.Remark), c.remark) {
			t.Errorf("%s on a slave: %s %q, want %s %q", c.name, wire.ResponseName(resp.Code), resp.Remark, wire.ResponseName(c.want), c.remark)
		}
	}
	// The master serves the four sync requests (21, 43, 45, 201) in Java's
	// shapes, the delay progress with one entry per level.
	for _, code := range []int32{wire.GetAllTopicConfig, wire.GetAllConsumerOffset, wire.GetAllDelayOffset, wire.GetAllSubGroupConfig} {
		resp := invoke(t, master.addr, code, nil, nil)
		var body map[string]json.RawMessage
		if resp.Code != wire.Success || json.Unmarshal(resp.Body, &body) != nil {
			t.Errorf("request %d on the master: %s %q %s", code, wire.ResponseName(resp.Code), resp.Remark, resp.Body)
		}
	}
	var delay struct {
		OffsetTable map[string]int64 `json:"offsetTable"`
	}
	if err := json.Unmarshal(invoke(t, master.addr, wire.GetAllDelayOffset, nil, nil).Body, &delay); err != nil || len(delay.OffsetTable) != 18 {
		t.Errorf("GET_ALL_DELAY_OFFSET: %+v %v", delay, err)
	}
	// The master takes the same topic creation.
	if resp := invoke(t, master.addr, wire.UpdateAndCreateTopic, map[string]string{"topic": "SlaveW", "readQueueNums": "1", "writeQueueNums": "1", "perm": "6"}, nil); resp.Code != wire.Success {
		t.Fatalf("create on the master: %s %q", wire.ResponseName(resp.Code), resp.Remark)
	}
	// Once the topic reached the slave, an offset committed there is kept.
	waitFor(t, slaveSyncWait, "topic synced to the slave", func() bool { return slaveHasTopic(t, slave.addr, "SlaveW") })
	if resp := invoke(t, slave.addr, wire.UpdateConsumerOffset, map[string]string{"consumerGroup": "OnSlave", "topic": "SlaveW", "queueId": "0", "commitOffset": "3"}, nil); resp.Code != wire.Success {
		t.Errorf("UPDATE_CONSUMER_OFFSET on a slave: %s %q", wire.ResponseName(resp.Code), resp.Remark)
	}
	if off, code := committedOffset(t, slave.addr, "OnSlave", "SlaveW", 0); code != wire.Success || off != 3 {
		t.Errorf("offset on the slave: %d code %d", off, code)
	}
}

func slaveHasTopic(t *testing.T, addr, topic string) bool {
	resp := invoke(t, addr, wire.GetAllTopicConfig, nil, nil)
	var w wire.TopicConfigSerializeWrapper
	return resp.Code == wire.Success && json.Unmarshal(resp.Body, &w) == nil && w.TopicConfigTable[topic] != nil
}

func slaveGroup(t *testing.T, addr, group string) *wire.SubscriptionGroupConfig {
	resp := invoke(t, addr, wire.GetAllSubGroupConfig, nil, nil)
	var w wire.SubscriptionGroupWrapper
	if resp.Code != wire.Success || json.Unmarshal(resp.Body, &w) != nil {
		return nil
	}
	return w.SubscriptionGroupTable[group]
}

// TestSlaveSyncsMetadata: a topic and a subscription group created on the
// master, and the offsets a Go push consumer commits there, appear on the
// slave within the sync period; a pull on the slave answers with the
// group's brokerId as suggestWhichBrokerId and does not store its commit
// offset; a slave restarted while the master is down still has all of it.
func TestSlaveSyncsMetadata(t *testing.T) {
	ns := startNamesrv(t)
	mdir, sdir := newBrokerDir(t), newBrokerDir(t)
	master := startBroker(t, mdir, ns.addr)
	slave := startSlave(t, sdir, ns.addr, "slaveReadEnable=true")
	c := &cluster{ns: ns, broker: master, dir: mdir}

	createTopic(t, c, "SyncTopic", 2)
	gc := wire.NewSubscriptionGroupConfig("SyncGroup")
	gc.RetryMaxTimes, gc.BrokerID = 5, 2
	if resp := invoke(t, master.addr, wire.UpdateAndCreateSubGroup, nil, wire.Marshal(gc)); resp.Code != wire.Success {
		t.Fatalf("create group: %s %q", wire.ResponseName(resp.Code), resp.Remark)
	}
	p := newProducer(t, ns.addr)
	sendN(t, p, "SyncTopic", "sync", 20)
	col := newCollector()
	pc := newPushConsumer(t, ns.addr, "SyncGroup", "SyncTopic", consumer.MessageSelector{}, col, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	waitFor(t, 30*time.Second, "20 messages consumed", func() bool { return col.count() == 20 })
	// The consumer commits to the master every 5 s; wait for all of it.
	want := map[int]int64{}
	waitFor(t, 30*time.Second, "offsets committed on the master", func() bool {
		total := int64(0)
		for q := 0; q < 2; q++ {
			off, code := committedOffset(t, master.addr, "SyncGroup", "SyncTopic", q)
			if code != wire.Success {
				return false
			}
			want[q] = off
			total += off
		}
		return total == 20
	})
	_ = pc.Shutdown()

	waitFor(t, slaveSyncWait, "topic, group and offsets on the slave", func() bool {
		if !slaveHasTopic(t, slave.addr, "SyncTopic") {
			return false
		}
		if g := slaveGroup(t, slave.addr, "SyncGroup"); g == nil || g.RetryMaxTimes != 5 || g.BrokerID != 2 {
			return false
		}
		for q, w := range want {
			if off, code := committedOffset(t, slave.addr, "SyncGroup", "SyncTopic", q); code != wire.Success || off != w {
				return false
			}
		}
		return true
	})

	// A pull on the slave: slaveReadEnable sends the consumer to the
	// group's brokerId (2; whichBrokerWhenConsumeSlowly is 1), and the
	// commit offset it carries stays unstored.
	pull := invoke(t, slave.addr, wire.PullMessage, map[string]string{
		"consumerGroup": "SyncGroup", "topic": "SyncTopic", "queueId": "0", "queueOffset": "0", "maxMsgNums": "32",
		"sysFlag": strconv.Itoa(1 | 4), "commitOffset": "1", "suspendTimeoutMillis": "0", "subscription": "*", "expressionType": "TAG", "subVersion": "0",
	}, nil)
	if s, _ := pull.GetInt("suggestWhichBrokerId"); s != 2 {
		t.Errorf("pull on the slave: %s %q suggestWhichBrokerId %d, want 2", wire.ResponseName(pull.Code), pull.Remark, s)
	}
	if off, _ := committedOffset(t, slave.addr, "SyncGroup", "SyncTopic", 0); off != want[0] {
		t.Errorf("the slave stored a pull's commitOffset: %d, want the master's %d", off, want[0])
	}

	// Master down, slave restarted: no sync possible, the tables are on disk.
	master.stop()
	slave.stop()
	slave = startSlave(t, sdir, ns.addr, slave.samePorts()...)
	if !slaveHasTopic(t, slave.addr, "SyncTopic") {
		t.Error("topic lost in the slave's restart")
	}
	if g := slaveGroup(t, slave.addr, "SyncGroup"); g == nil || g.RetryMaxTimes != 5 {
		t.Errorf("group after the slave's restart: %+v", g)
	}
	for q, w := range want {
		if off, code := committedOffset(t, slave.addr, "SyncGroup", "SyncTopic", q); code != wire.Success || off != w {
			t.Errorf("queue %d offset after the slave's restart: %d code %d, want %d", q, off, code, w)
		}
	}
}
