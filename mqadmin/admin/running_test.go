package admin

import (
	"strings"
	"testing"
)

// goRunningInfo is rocketmq-client-go v2.1.2's ConsumerRunningInfo.Encode
// output, goroutine dump included (not JSON: raw newlines and quotes).
const goRunningInfo = `{"properties":{"PROP_CLIENT_VERSION":"v2.1.1","PROP_CONSUME_TYPE":"CONSUME_PASSIVELY"},` +
	`"statusTable":{"T":{"pullRT":1.5,"pullTPS":2,"consumeRT":0,"consumeOKTPS":3,"consumeFailedTPS":0,"consumeFailedMsgs":0}},` +
	`"subscriptionSet":[{"classFilterMode":false,"topic":"T","subString":"*","tagsSet":[],"codeSet":[],"subVersion":123,"expressionType":"TAG"}],` +
	`"mqTable":{{"topic":"T","brokerName":"broker-a","queueId":1}:{"commitOffset":7,"cachedMsgMinOffset":0,"cachedMsgMaxOffset":0,"cachedMsgCount":2,"cachedMsgSizeInMiB":0,"transactionMsgMinOffset":0,"transactionMsgMaxOffset":0,"transactionMsgCount":0,"locked":false,"tryUnlockTimes":0,"lastLockTimestamp":0,"dropped":false,"lastPullTimestamp":0,"lastConsumeTimestamp":0},` +
	`{"topic":"T","brokerName":"broker-a","queueId":0}:{"commitOffset":5,"cachedMsgMinOffset":0,"cachedMsgMaxOffset":0,"cachedMsgCount":0,"cachedMsgSizeInMiB":0,"transactionMsgMinOffset":0,"transactionMsgMaxOffset":0,"transactionMsgCount":0,"locked":false,"tryUnlockTimes":0,"lastLockTimestamp":0,"dropped":true,"lastPullTimestamp":0,"lastConsumeTimestamp":0}}, ` +
	`"jstack":"goroutine 1 [running]:
main.main()
	"x.go":12 +0x1d
" }`

func TestParseRunningInfoGo(t *testing.T) {
	for _, body := range []string{goRunningInfo, strings.Replace(goRunningInfo, "goroutine 1 [running]:\nmain.main()\n\t\"x.go\":12 +0x1d\n", "", 1)} {
		info, err := ParseConsumerRunningInfo([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if info.Properties[PropClientVersion] != "v2.1.1" || len(info.Subscriptions) != 1 || info.Subscriptions[0].Topic != "T" ||
			info.StatusTable["T"].PullRT != 1.5 || info.StatusTable["T"].ConsumeOKTPS != 3 || len(info.Queues) != 2 {
			t.Fatalf("info %+v", info)
		}
		q0, q1 := info.Queues[0], info.Queues[1]
		if q0.QueueID != 0 || q0.CommitOffset != 5 || !q0.Dropped || q1.QueueID != 1 || q1.CachedMsgCount != 2 || q1.BrokerName != "broker-a" {
			t.Fatalf("queues %+v", info.Queues)
		}
		if strings.Contains(body, "goroutine") != strings.Contains(info.JStack, "\"x.go\":12") {
			t.Fatalf("jstack %q", info.JStack)
		}
	}
}

// Java (fastjson) sorts keys, spells "droped" and writes codeSet as numbers.
func TestParseRunningInfoJava(t *testing.T) {
	body := `{"jstack":"\"main\" Id=1\n","mqTable":{{"brokerName":"b","queueId":3,"topic":"T"}:{"cachedMsgCount":1,"commitOffset":9,"droped":true,"locked":true}},` +
		`"properties":{"PROP_CLIENT_VERSION":"V4_9_7","consumeThreadMin":20},"statusTable":{},` +
		`"subscriptionSet":[{"classFilterMode":false,"codeSet":[2598919],"expressionType":"TAG","subString":"TagA","subVersion":1,"tagsSet":["TagA"],"topic":"T"}]}`
	info, err := ParseConsumerRunningInfo([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	q := info.Queues[0]
	if info.JStack != "\"main\" Id=1\n" || info.Properties["consumeThreadMin"] != "20" || q.Topic != "T" || q.QueueID != 3 || !q.Dropped || !q.Locked || q.CommitOffset != 9 ||
		info.Subscriptions[0].SubString != "TagA" {
		t.Fatalf("info %+v", info)
	}
	if _, err := ParseConsumerRunningInfo([]byte(`{"properties":`)); err == nil || !strings.Contains(err.Error(), "decode running info") {
		t.Fatalf("truncated body: %v", err)
	}
}

func TestAnalyzeRunningInfo(t *testing.T) {
	a, _ := ParseConsumerRunningInfo([]byte(goRunningInfo))
	b, _ := ParseConsumerRunningInfo([]byte(goRunningInfo))
	r := AnalyzeRunningInfo([]*ConsumerRunningInfo{a, b})
	if !r.SubscriptionsConsistent || len(r.SharedQueues) != 1 || r.SharedQueues[0] != "T@broker-a:1" {
		t.Fatalf("analysis %+v", r)
	}
	b.Subscriptions[0].SubString = "TagB"
	if AnalyzeRunningInfo([]*ConsumerRunningInfo{a, b}).SubscriptionsConsistent {
		t.Fatal("different subscriptions taken for consistent")
	}
}

func TestParseDirectResult(t *testing.T) {
	for body, want := range map[string]string{
		`{"order":false,"autoCommit":true,"consumeResult":1,"remark":"","spentTimeMills":3}`:     "CR_LATER",
		`{"autoCommit":true,"consumeResult":"CR_SUCCESS","order":false,"spentTimeMills":3}`:      "CR_SUCCESS",
		`{"order":false,"autoCommit":true,"consumeResult":4,"remark":"boom","spentTimeMills":3}`: "CR_THROW_EXCEPTION",
		`{"order":false,"autoCommit":true,"consumeResult":9,"remark":"","spentTimeMills":3}`:     "9",
	} {
		r, err := ParseDirectResult([]byte(body))
		if err != nil || r.ConsumeResult != want || r.SpentTimeMs != 3 || !r.AutoCommit {
			t.Errorf("%s: %+v %v", body, r, err)
		}
	}
	if _, err := ParseDirectResult([]byte(`{"consumeResult":[1]}`)); err == nil {
		t.Error("array consumeResult accepted")
	}
}
