package server

import (
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mqops/mqops/broker/grpcsvc"
	"github.com/mqops/mqops/wire"
)

// TestGrpcSendSharesTheSendPath: a 5.x send goes through the remoting
// send's checks (unknown topic without auto-creation, write permission),
// spreads over the write queues, is stored with the broker's CLUSTER
// property, and waits for SYNC_FLUSH's fsync; after a failed fsync it
// is refused with the store's reason, as remoting sends are.
func TestGrpcSendSharesTheSendPath(t *testing.T) {
	dir := t.TempDir()
	var armed atomic.Bool
	b := startBrokerIn(t, dir, map[string]string{"enableProxy": "true", "grpcServerPort": "0",
		"mappedFileSizeCommitLog": strconv.Itoa(4 << 20), "flushDiskType": "SYNC_FLUSH"}, failCommitLogFsync(dir, &armed))
	if b.GrpcAddr() == "" || strings.HasSuffix(b.GrpcAddr(), ":0") {
		t.Fatalf("gRPC address %q", b.GrpcAddr())
	}
	be := grpcBackend{b}
	msg := func(topic, body string) *grpcsvc.Message {
		return &grpcsvc.Message{Topic: topic, Body: []byte(body), Properties: wire.AppendProperty(nil, wire.PropUniqKey, "01ABC"), BornHost: make([]byte, 8)}
	}

	if r := be.Send(msg("NoSuchTopic", "x")); r.Code != wire.TopicNotExist {
		t.Errorf("unknown topic: %d %s (5.x sends never create topics)", r.Code, r.Remark)
	}
	if _, err := b.topics.Put(wire.TopicConfig{TopicName: "G", ReadQueueNums: 2, WriteQueueNums: 2, Perm: 6}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.topics.Put(wire.TopicConfig{TopicName: "ReadOnly", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 4}); err != nil {
		t.Fatal(err)
	}
	if r := be.Send(msg("ReadOnly", "x")); r.Code != wire.NoPermission {
		t.Errorf("read-only topic: %d %s", r.Code, r.Remark)
	}
	queues := map[int32]int64{}
	for i := range 4 {
		r := be.Send(msg("G", "m"+strconv.Itoa(i)))
		if r.Code != wire.Success {
			t.Fatalf("send %d: %d %s", i, r.Code, r.Remark)
		}
		queues[r.QueueID] = r.QueueOffset
	}
	if len(queues) != 2 || queues[0] != 1 || queues[1] != 1 {
		t.Errorf("queues and last offsets %v: want round robin over 2 queues", queues)
	}
	waitFor(t, func() bool { return b.store.MaxOffset("G", 0) == 2 })
	res := b.store.GetMessages("G", 0, 0, 1, 1<<20, nil, nil, nil)
	v := wire.RecordView(res.Body)
	props := wire.ParseProperties(v.Properties())
	if props[wire.PropUniqKey] != "01ABC" || props[wire.PropCluster] != b.cfg.BrokerClusterName {
		t.Errorf("stored properties %v", props)
	}

	armed.Store(true)
	r := be.Send(msg("G", "after"))
	if r.Code != wire.ServiceNotAvailable || !strings.Contains(r.Remark, "not known to be durable") {
		t.Errorf("send whose fsync failed: %d %q", r.Code, r.Remark)
	}
	if r := be.Send(msg("G", "later")); r.Code != wire.ServiceNotAvailable {
		t.Errorf("send after the failure: %d %q", r.Code, r.Remark)
	}
}
