package admin

import (
	"bytes"
	"compress/zlib"
	"net"
	"reflect"
	"testing"

	"github.com/mqops/mqops/wire"
)

func TestOffsetIDAddr(t *testing.T) {
	host := wire.HostBytes(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 11), Port: 10911})
	addr, off, ok := offsetIDAddr(wire.OffsetMsgID(host, 123456))
	if !ok || addr != "10.0.0.11:10911" || off != 123456 {
		t.Fatalf("offset id: %s %d %v", addr, off, ok)
	}
	// Client ids have the same length; a pid sits where the port would.
	for _, uniq := range []string{
		"7F000001C8F2000000000000000000000000", // not 32 characters
		"7F00000107D218B4AAC2637F5A3D0001",     // Java: ip, pid 2002, class-loader hash
		"7F0000012F1A000000005a3d1c2b0003",     // Go: ip, pid, zero, time, counter
	} {
		if _, _, ok := offsetIDAddr(uniq); ok {
			t.Errorf("%s taken for an offset id", uniq)
		}
	}
}

func record(t *testing.T, props map[string]string, body []byte, sysFlag int32) []byte {
	t.Helper()
	r := wire.Record{
		Topic: "T", QueueID: 3, QueueOffset: 42, PhysicalOffset: 9000, SysFlag: sysFlag,
		BornTimestamp: 1000, StoreTimestamp: 2000, Body: body,
		BornHost:   wire.HostBytes(&net.TCPAddr{IP: net.IPv4(10, 0, 2, 7), Port: 53412}),
		StoreHost:  wire.HostBytes(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 11), Port: 10911}),
		Properties: wire.AppendProperties(nil, props),
	}
	b := make([]byte, r.Size())
	r.EncodeTo(b)
	return b
}

func TestDecodeMessages(t *testing.T) {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write([]byte("hello compressed"))
	zw.Close()
	body := append(record(t, map[string]string{"TAGS": "TagA", "KEYS": "k1 k2", "UNIQ_KEY": "ABC"}, z.Bytes(), wire.SysFlagCompressed),
		record(t, map[string]string{}, []byte("plain"), 0)...)
	ms, err := DecodeMessages(body)
	if err != nil || len(ms) != 2 {
		t.Fatalf("decode: %v, %d messages", err, len(ms))
	}
	m := ms[0]
	want := wire.OffsetMsgID(wire.HostBytes(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 11), Port: 10911}), 9000)
	if string(m.Body) != "hello compressed" || m.Tags != "TagA" || !reflect.DeepEqual(m.Keys, []string{"k1", "k2"}) ||
		m.MsgID != "ABC" || m.OffsetMsgID != want || m.QueueID != 3 || m.QueueOffset != 42 ||
		m.BornHost != "10.0.2.7:53412" || m.StoreHost != "10.0.0.11:10911" || m.StoreTimestamp != 2000 {
		t.Fatalf("first message %+v", m)
	}
	if ms[1].MsgID != ms[1].OffsetMsgID || string(ms[1].Body) != "plain" {
		t.Fatalf("second message %+v", ms[1])
	}
	if _, err := DecodeMessages(body[:len(body)-1]); err == nil {
		t.Fatal("truncated body decoded")
	}
}

func TestSumBacklog(t *testing.T) {
	qs := []QueueProgress{
		{Group: "g1", Topic: "t", BrokerName: "a", QueueID: 0, BrokerOffset: 10, ConsumerOffset: 8, Diff: 2, LastTimestamp: 5},
		{Group: "g1", Topic: "t", BrokerName: "b", QueueID: 0, BrokerOffset: 10, ConsumerOffset: 9, Diff: 1, LastTimestamp: 7},
		{Group: "g2", Topic: "t", BrokerName: "a", QueueID: 0, BrokerOffset: 10, ConsumerOffset: 0, Diff: 10},
		{Group: "g0", Topic: "t", BrokerName: "a", QueueID: 0, BrokerOffset: 10, ConsumerOffset: 10},
	}
	got := SumBacklog(qs)
	want := []GroupBacklog{
		{Group: "g2", Topic: "t", Brokers: 1, Queues: 1, BrokerOffset: 10, Diff: 10},
		{Group: "g1", Topic: "t", Brokers: 2, Queues: 2, BrokerOffset: 20, ConsumerOffset: 17, Diff: 3, LastTimestamp: 7},
		{Group: "g0", Topic: "t", Brokers: 1, Queues: 1, BrokerOffset: 10, ConsumerOffset: 10},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("SumBacklog:\n got %+v\nwant %+v", got, want)
	}
}

func TestProperties(t *testing.T) {
	in := map[string]string{"brokerPermission": "4", "deleteWhen": "04;05"}
	if got, err := parseProperties(formatProperties(in)); err != nil || !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip %v", got)
	}
	if got, err := parseProperties([]byte("# comment\n\na = b=c\n")); err != nil || !reflect.DeepEqual(got, map[string]string{"a": "b=c"}) {
		t.Fatalf("parse %v", got)
	}
}

func TestSubscribes(t *testing.T) {
	for _, c := range []struct {
		sd   wire.SubscriptionData
		tag  string
		want bool
	}{
		{wire.SubscriptionData{SubString: "*"}, "x", true},
		{wire.SubscriptionData{SubString: "A || B", TagsSet: []string{"A", "B"}, ExpressionType: "TAG"}, "B", true},
		{wire.SubscriptionData{SubString: "A || B", TagsSet: []string{"A", "B"}, ExpressionType: "TAG"}, "C", false},
		{wire.SubscriptionData{SubString: "a > 1", ExpressionType: "SQL92"}, "C", true},
	} {
		if got := subscribes(c.sd, c.tag); got != c.want {
			t.Errorf("subscribes(%+v, %s) = %v", c.sd, c.tag, got)
		}
	}
}
