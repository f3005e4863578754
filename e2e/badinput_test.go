package e2e

import (
	"encoding/binary"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

func sendFields(topic string, queue string) map[string]string {
	return map[string]string{
		"producerGroup": "PG_bad", "topic": topic, "defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
		"queueId": queue, "sysFlag": "0", "bornTimestamp": "1700000000000", "flag": "0", "properties": "",
	}
}

// assertServing proves the broker still answers after abuse.
func assertServing(t *testing.T, addr string) {
	t.Helper()
	resp := invoke(t, addr, wire.GetMaxOffset, map[string]string{"topic": "TBW102", "queueId": "0"}, nil)
	if resp.Code != wire.Success {
		t.Fatalf("broker no longer serving: code %d", resp.Code)
	}
}

func TestBadRequests(t *testing.T) {
	c := startCluster(t, "maxMessageSize=65536")
	createTopic(t, c, "Bad", 2)
	cases := []struct {
		name   string
		code   int32
		fields map[string]string
		body   []byte
		want   int32
		remark string
	}{
		{"oversized body", wire.SendMessage, sendFields("Bad", "0"), make([]byte, 65537), wire.MessageIllegal, "maxMessageSize"},
		{"illegal topic chars", wire.SendMessage, sendFields("bad topic!", "0"), []byte("x"), wire.SystemError, "illegal characters"},
		{"topic too long", wire.SendMessage, sendFields(strings.Repeat("t", 128), "0"), []byte("x"), wire.SystemError, "longer than"},
		{"system topic", wire.SendMessage, sendFields("SCHEDULE_TOPIC_XXXX", "0"), []byte("x"), wire.NoPermission, "forbidden"},
		{"queue out of range", wire.SendMessage, sendFields("Bad", "7"), []byte("x"), wire.SystemError, "queueId[7] is illegal"},
		{"missing field", wire.SendMessage, map[string]string{"topic": "Bad"}, []byte("x"), wire.SystemError, "is null"},
		{"non-numeric field", wire.SendMessage, func() map[string]string { f := sendFields("Bad", "zero"); return f }(), []byte("x"), wire.SystemError, "queueId"},
		{"unknown code", 9999, nil, nil, wire.RequestCodeNotSupported, "request type 9999 not supported"},
		{"malformed heartbeat", wire.HeartBeat, nil, []byte("{not json"), wire.SystemError, "malformed heartbeat"},
		{"pull unknown topic", wire.PullMessage, map[string]string{"consumerGroup": "g", "topic": "Nope", "queueId": "0", "queueOffset": "0", "maxMsgNums": "1", "sysFlag": "0", "commitOffset": "0", "suspendTimeoutMillis": "0", "subVersion": "0"}, nil, wire.TopicNotExist, "not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := invoke(t, c.broker.addr, tc.code, tc.fields, tc.body)
			if resp.Code != tc.want || !strings.Contains(string(resp.Remark), tc.remark) {
				t.Fatalf("code %d (%s) remark %q; want %d containing %q", resp.Code, wire.ResponseName(resp.Code), resp.Remark, tc.want, tc.remark)
			}
		})
	}
	// Nothing refused above may have reached the log.
	if n := maxOffset(t, c.broker.addr, "Bad", 0) + maxOffset(t, c.broker.addr, "Bad", 1); n != 0 {
		t.Fatalf("refused sends stored %d messages", n)
	}
	assertServing(t, c.broker.addr)
}

func TestBrokenFrames(t *testing.T) {
	c := startCluster(t)
	frames := map[string][]byte{
		"malformed json header": func() []byte {
			h := []byte(`{"code":10,"extFields":{"topic":`)
			b := binary.BigEndian.AppendUint32(nil, uint32(4+len(h)))
			b = binary.BigEndian.AppendUint32(b, uint32(len(h)))
			return append(b, h...)
		}(),
		"header length beyond frame": {0, 0, 0, 8, 0, 0, 0x10, 0, '{', '}', 0, 0},
		"unknown serialize type":     {0, 0, 0, 6, 9, 0, 0, 2, '{', '}'},
		"frame over 16 MiB":          {0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0},
		"negative length":            {0xff, 0xff, 0xff, 0xf0},
		"garbage":                    []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
	}
	for name, f := range frames {
		t.Run(name, func(t *testing.T) {
			conn := rawConn(t, c.broker.addr)
			if _, err := conn.Write(f); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadAll(conn); err != nil {
				t.Fatalf("broker did not close the connection: %v", err)
			}
			assertServing(t, c.broker.addr)
		})
	}
	t.Run("truncated frame", func(t *testing.T) {
		conn := rawConn(t, c.broker.addr)
		_, _ = conn.Write([]byte{0, 0, 1, 0, 0, 0, 0, 2, '{'})
		conn.Close()
		assertServing(t, c.broker.addr)
	})
	t.Run("silent client", func(t *testing.T) {
		conn := rawConn(t, c.broker.addr)
		time.Sleep(500 * time.Millisecond)
		assertServing(t, c.broker.addr)
		conn.Close()
	})
	if strings.Contains(c.broker.out.String(), "panic") {
		t.Fatalf("broker logged a panic:\n%s", c.broker.out.String())
	}
}

// TestBinaryHeader: a request with the ROCKETMQ binary header (Java clients
// with rocketmq.serialize.type=ROCKETMQ) is answered in the same encoding.
func TestBinaryHeader(t *testing.T) {
	c := startCluster(t)
	req := wire.NewRequest(wire.GetMaxOffset, map[string]string{"topic": "TBW102", "queueId": "0"}, nil)
	req.SerializeType = wire.SerializeRocketMQ
	resp := invokeCmd(t, c.broker.addr, req)
	if resp.SerializeType != wire.SerializeRocketMQ || resp.Code != wire.Success || !resp.Has("offset") {
		t.Fatalf("binary request answered with serialize type %d, code %d, fields %v", resp.SerializeType, resp.Code, resp.Fields())
	}
}

// TestBadConfig: a bad value refuses to start, naming the key and value; an
// unknown key is a warning naming it.
func TestBadConfig(t *testing.T) {
	ns := startNamesrv(t)
	dir := t.TempDir()
	out, err := exec.Command(filepath.Join(binDir, "mqbroker"), "-n", ns.addr, "-p", "storePathRootDir="+dir,
		"-p", "logDir="+dir, "-p", "flushDiskType=SOMETIMES").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "flushDiskType") || !strings.Contains(string(out), "SOMETIMES") {
		t.Fatalf("bad value: err %v, output:\n%s", err, out)
	}
	p := startBroker(t, newBrokerDir(t), ns.addr, "fooBarBaz=1")
	if !strings.Contains(p.out.String(), `unknown key "fooBarBaz"`) {
		t.Fatalf("unknown key not named in a warning:\n%s", p.out.String())
	}
}
