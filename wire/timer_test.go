package wire

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// javaTimerCheckpoint is TimerCheckpoint.encode of apache/rocketmq
// (store/src/main/java/org/apache/rocketmq/store/timer/TimerCheckpoint.java)
// for lastReadTimeMs 1700000000000, lastTimerLogFlushPos 4096,
// lastTimerQueueOffset 17, masterTimerQueueOffset 17 and dataVersion
// {stateVersion 3, timestamp 1700000001234, counter 5}: seven big-endian
// longs.
const javaTimerCheckpoint = "0000018bcfe56800" + "0000000000001000" + "0000000000000011" + "0000000000000011" +
	"0000000000000003" + "0000018bcfe56cd2" + "0000000000000005"

func TestTimerCheckpointJavaForm(t *testing.T) {
	b, _ := hex.DecodeString(javaTimerCheckpoint)
	ck, err := DecodeTimerCheckpoint(b)
	if err != nil {
		t.Fatal(err)
	}
	want := TimerCheckpoint{LastReadTimeMs: 1700000000000, LastTimerLogFlushPos: 4096, LastTimerQueueOffset: 17,
		MasterTimerQueueOffset: 17, DataVersion: DataVersion{StateVersion: 3, Timestamp: 1700000001234, Counter: 5},
		CommitLogOffset: -1}
	if ck != want {
		t.Fatalf("decoded %+v, want %+v", ck, want)
	}
	// Ours is Java's 56 bytes and the commit-log offset: Java's decode
	// reads the first 56 and stops.
	want.CommitLogOffset = 123456
	enc := want.Encode()
	if len(enc) != 64 || !bytes.Equal(enc[:56], b) || hex.EncodeToString(enc[56:]) != "000000000001e240" {
		t.Fatalf("encoded %x", enc)
	}
	if back, err := DecodeTimerCheckpoint(enc); err != nil || back != want {
		t.Fatalf("round trip %+v %v", back, err)
	}
	// Brokers before RocketMQ 5.1 send the four offsets only.
	old, err := DecodeTimerCheckpoint(b[:32])
	if err != nil || old.LastReadTimeMs != 1700000000000 || old.MasterTimerQueueOffset != 17 || old.DataVersion != (DataVersion{}) || old.CommitLogOffset != -1 {
		t.Fatalf("32-byte form: %+v %v", old, err)
	}
}

func TestTimerCheckpointBadInput(t *testing.T) {
	b, _ := hex.DecodeString(javaTimerCheckpoint)
	for _, n := range []int{0, 8, 31, 33, 55, 57, 63, 65, 128} {
		in := make([]byte, n)
		copy(in, b)
		if _, err := DecodeTimerCheckpoint(in); err == nil || !strings.Contains(err.Error(), "bytes") {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
	neg := append([]byte(nil), b...)
	copy(neg[24:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if _, err := DecodeTimerCheckpoint(neg); err == nil {
		t.Error("a negative masterTimerQueueOffset was accepted")
	}
}
