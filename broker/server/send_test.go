package server

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/mqops/mqops/wire"
)

// TestBatchStoredProperties: each batch item is stored with its own
// properties, the batch's (minus WAIT) and CLUSTER, with no stray separators.
func TestBatchStoredProperties(t *testing.T) {
	br := startBroker(t, nil)
	var body []byte
	for i, props := range []string{"TAGS\x01a\x02KEYS\x01k1\x02", "", "WAIT\x01false"} {
		p := []byte(props)
		msg := []byte{byte('0' + i)}
		body = binary.BigEndian.AppendUint32(body, uint32(20+len(msg)+2+len(p)))
		body = append(body, make([]byte, 12)...) // magic, crc, flag
		body = binary.BigEndian.AppendUint32(body, uint32(len(msg)))
		body = append(body, msg...)
		body = binary.BigEndian.AppendUint16(body, uint16(len(p)))
		body = append(body, p...)
	}
	req := wire.NewRequest(wire.SendBatchMessage, map[string]string{
		"a": "PG", "b": "BatchProps", "c": "TBW102", "d": "4", "e": "0", "f": "0", "g": "1", "h": "0",
		"i": "WAIT\x01true\x02batchProp\x01x\x02", "m": "true",
	}, body)
	conn, err := net.Dial("tcp", br.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	roundTrip(t, conn, wire.AppendFrame(nil, req))
	waitFor(t, func() bool { return br.store.MaxOffset("BatchProps", 0) == 3 })
	res := br.store.GetMessages("BatchProps", 0, 0, 32, 1<<20, nil, nil, nil)
	want := []string{
		"TAGS\x01a\x02KEYS\x01k1\x02batchProp\x01x\x02CLUSTER\x01DefaultCluster",
		"batchProp\x01x\x02CLUSTER\x01DefaultCluster",
		"batchProp\x01x\x02CLUSTER\x01DefaultCluster",
	}
	for i, p := 0, 0; p < len(res.Body); i++ {
		v := wire.RecordView(res.Body[p:])
		if got := string(v.Properties()); got != want[i] {
			t.Errorf("item %d stored properties %q, want %q", i, got, want[i])
		}
		p += int(v.TotalSize())
	}
}

func TestFlushTimeoutFrame(t *testing.T) {
	req := &wire.Command{Opaque: 7}
	resp := wire.ResponseTo(req, wire.Success, "")
	resp.Set("msgId", "7F000001000027110000000000000000")
	resp.Set("queueOffset", "3")
	var got wire.Command
	if err := wire.DecodeFrame(recodedFrame(wire.AppendFrame(nil, &resp), wire.FlushDiskTimeout, remarkFlushDiskTimeout)[4:], &got); err != nil {
		t.Fatal(err)
	}
	if got.Code != wire.FlushDiskTimeout || got.Opaque != 7 || !got.IsResponse() || got.GetString("queueOffset") != "3" || got.GetString("msgId") != "7F000001000027110000000000000000" {
		t.Fatalf("timeout answer: %+v", got)
	}
}
