package wire

import (
	"encoding/json"
	"testing"
)

func TestTopicStatsTableRoundTrip(t *testing.T) {
	in := &TopicStatsTable{OffsetTable: map[MessageQueue]TopicOffset{
		{Topic: "T", BrokerName: "broker-a", QueueID: 1}: {MinOffset: 0, MaxOffset: 7, LastUpdateTimestamp: 99},
		{Topic: "T", BrokerName: "broker-a", QueueID: 0}: {MaxOffset: 3},
	}}
	b := in.Encode()
	want := `{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:{"lastUpdateTimestamp":0,"maxOffset":3,"minOffset":0},{"brokerName":"broker-a","queueId":1,"topic":"T"}:{"lastUpdateTimestamp":99,"maxOffset":7,"minOffset":0}}}`
	if string(b) != want {
		t.Fatalf("encoded\n%s\nwant\n%s", b, want)
	}
	out, err := DecodeTopicStatsTable(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.OffsetTable) != 2 || out.OffsetTable[MessageQueue{Topic: "T", BrokerName: "broker-a", QueueID: 1}].MaxOffset != 7 {
		t.Fatalf("decoded %+v", out)
	}
}

// The Go client's reset-offset parser splits on `",{"` and `"}:"`: the
// encoding must be compact with broker, queue, topic order.
func TestResetOffsetBodyGoClientShape(t *testing.T) {
	b := (&ResetOffsetBody{OffsetTable: map[MessageQueue]int64{
		{Topic: "T", BrokerName: "b", QueueID: 0}: 5,
		{Topic: "T", BrokerName: "b", QueueID: 1}: 6,
	}}).Encode()
	if string(b) != `{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:5,{"brokerName":"b","queueId":1,"topic":"T"}:6}}` {
		t.Fatalf("encoded %s", b)
	}
	back, err := DecodeResetOffsetBody(b)
	if err != nil || back.OffsetTable[MessageQueue{Topic: "T", BrokerName: "b", QueueID: 1}] != 6 {
		t.Fatalf("decoded %+v %v", back, err)
	}
}

func TestConsumeStatsListRoundTrip(t *testing.T) {
	mq := MessageQueue{Topic: "T", BrokerName: "b", QueueID: 2}
	in := &ConsumeStatsList{BrokerAddr: "1.2.3.4:10911", TotalDiff: 9, Groups: map[string][]*ConsumeStats{
		"g": {{ConsumeTps: 1.5, OffsetTable: map[MessageQueue]OffsetWrapper{mq: {BrokerOffset: 10, ConsumerOffset: 1}}}},
	}}
	out, err := DecodeConsumeStatsList(in.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if out.TotalDiff != 9 || out.Groups["g"][0].OffsetTable[mq].BrokerOffset != 10 || out.Groups["g"][0].ConsumeTps != 1.5 {
		t.Fatalf("decoded %+v", out)
	}
}

func TestQuoteObjectKeys(t *testing.T) {
	cases := map[string]string{
		`{"brokerAddrs":{0:"a:1",1:"b:2"}}`:            `{"brokerAddrs":{"0":"a:1","1":"b:2"}}`,
		`{"m":{ {"a":1, "b":"x}"} : 2 }}`:              `{"m":{ "{\"a\":1,\"b\":\"x}\"}" : 2 }}`,
		`{"s":"{not:a key}","arr":[{"k":1},2],"n":-1}`: `{"s":"{not:a key}","arr":[{"k":1},2],"n":-1}`,
		`{"offsetTable":{}}`:                           `{"offsetTable":{}}`,
	}
	for in, want := range cases {
		got, err := QuoteObjectKeys([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("QuoteObjectKeys(%s) = %s, %v; want %s", in, got, err, want)
		}
		if err == nil && !json.Valid(got) {
			t.Errorf("output not valid JSON: %s", got)
		}
	}
	for _, bad := range []string{`{"a":"unterminated`, `{{"a":1`, `]`} {
		if _, err := QuoteObjectKeys([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
