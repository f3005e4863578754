package admin

import (
	"testing"
)

// goTraceBody is what rocketmq-client-go v2.1.2's marshal2Bean writes for
// one send and one consume attempt of a batch of two messages.
const goTraceBody = "Pub\x011700000000100\x01DefaultRegion\x01PG\x01T\x01UNIQ1\x01TagA\x01k1 k2\x01127.0.0.1:10911\x015\x013\x010\x01OFF1\x01true\x0110.0.0.5\x02" +
	"SubBefore\x011700000000200\x01DefaultRegion\x01CG\x01REQ1\x01UNIQ1\x011\x01null\x0110.0.0.6\x02" +
	"SubBefore\x011700000000200\x01DefaultRegion\x01CG\x01REQ1\x01UNIQ2\x010\x01null\x0110.0.0.6\x02" +
	"SubAfter\x01REQ1\x01UNIQ1\x017\x01false\x01null\x014\x011700000000300\x01CG\x02" +
	"SubAfter\x01REQ1\x01UNIQ2\x017\x01false\x01null\x014\x011700000000300\x01CG\x02"

func TestParseTraceRecordsGo(t *testing.T) {
	rs := ParseTraceRecords([]byte(goTraceBody))
	if len(rs) != 5 {
		t.Fatalf("%d records: %+v", len(rs), rs)
	}
	p := rs[0]
	if p.Type != TracePub || p.Timestamp != 1700000000100 || p.Group != "PG" || p.Topic != "T" || p.MsgID != "UNIQ1" ||
		p.Tags != "TagA" || p.Keys != "k1 k2" || p.StoreHost != "127.0.0.1:10911" || p.BodyLength != 5 || p.CostTime != 3 ||
		p.MsgType != "Normal_Msg" || p.OffsetMsgID != "OFF1" || p.Success == nil || !*p.Success || p.ClientHost != "10.0.0.5" {
		t.Errorf("pub %+v", p)
	}
	b := rs[1]
	if b.Type != TraceSubBefore || b.Group != "CG" || b.RequestID != "REQ1" || b.RetryTimes != 1 || b.Keys != "" || b.ClientHost != "10.0.0.6" || b.Success != nil {
		t.Errorf("subBefore %+v", b)
	}
	a := rs[3]
	if a.Type != TraceSubAfter || a.RequestID != "REQ1" || a.MsgID != "UNIQ1" || a.CostTime != 7 || a.Success == nil || *a.Success ||
		a.ContextCode != 4 || a.Timestamp != 1700000000300 || a.Group != "CG" {
		t.Errorf("subAfter %+v", a)
	}
}

// Java 4.9 writes no clientHost in Pub and SubBefore records, and cloud
// SubAfter records end after the context code.
func TestParseTraceRecordsJava(t *testing.T) {
	body := "Pub\x011700000000100\x01DefaultRegion\x01PG\x01T\x01UNIQ1\x01\x01\x01127.0.0.1:10911\x015\x013\x010\x01OFF1\x01false\x02" +
		"SubBefore\x011700000000200\x01DefaultRegion\x01CG\x01REQ1\x01UNIQ1\x010\x01null\x02" +
		"SubAfter\x01REQ1\x01UNIQ1\x017\x01true\x01null\x010\x02" +
		"Weird\x01x\x02Pub\x01short\x02"
	rs := ParseTraceRecords([]byte(body))
	if len(rs) != 3 || rs[0].ClientHost != "" || *rs[0].Success || rs[0].OffsetMsgID != "OFF1" || rs[1].ClientHost != "" ||
		rs[2].Timestamp != 0 || rs[2].Group != "" || !*rs[2].Success {
		t.Fatalf("records %+v", rs)
	}
	joinTrace(rs)
	sortTrace(rs)
	if a := rs[2]; a.Type != TraceSubAfter || a.Group != "CG" || a.Topic != "T" || a.Timestamp != 1700000000207 {
		t.Fatalf("joined %+v", rs)
	}
}

func TestJoinTrace(t *testing.T) {
	var rs []TraceRecord
	for _, r := range ParseTraceRecords([]byte(goTraceBody)) {
		if r.MsgID == "UNIQ1" {
			rs = append([]TraceRecord{r}, rs...) // reversed
		}
	}
	joinTrace(rs)
	sortTrace(rs)
	if len(rs) != 3 || rs[0].Type != TracePub || rs[1].Type != TraceSubBefore || rs[2].Type != TraceSubAfter {
		t.Fatalf("order %+v", rs)
	}
	if a := rs[2]; a.Topic != "T" || a.ClientHost != "10.0.0.6" || a.RetryTimes != 1 || a.RegionID != "DefaultRegion" {
		t.Fatalf("subAfter not completed: %+v", a)
	}
}
