package wire

import (
	"encoding/binary"
	"fmt"
)

// TimerCheckpoint is GET_TIMER_CHECK_POINT's (60) answer body: a master's
// timer progress, which its slaves adopt so that a promoted slave does not
// deliver again the timer messages the old master delivered. Java's form
// (apache/rocketmq store/src/main/java/org/apache/rocketmq/store/timer/TimerCheckpoint.java,
// encode/decode) is big-endian int64s:
//
//	0  lastReadTimeMs          timer messages due before it are delivered
//	                           (an mqops master's: also those due at it)
//	8  lastTimerLogFlushPos    bytes of the timer log flushed (mqops:
//	                           written; informational only)
//	16 lastTimerQueueOffset    offset in the timer queue (rmq_sys_wheel_timer
//	                           queue 0) read into the timer store
//	24 masterTimerQueueOffset  the master's read offset; a slave reads the
//	                           timer queue no further (Java's slave takes
//	                           this field from the master's answer)
//	32 dataVersion.stateVersion, 40 .timestamp, 48 .counter (later RocketMQ
//	                           5 releases; earlier ones send only the first
//	                           32 bytes)
//	56 commitLogOffset         mqops only: the master's commit-log end after
//	                           the deliveries counted above
//
// Java's decode reads the first 56 bytes and ignores the rest, so a Java
// slave can follow an mqops master.
type TimerCheckpoint struct {
	LastReadTimeMs         int64
	LastTimerLogFlushPos   int64
	LastTimerQueueOffset   int64
	MasterTimerQueueOffset int64
	DataVersion            DataVersion
	// CommitLogOffset is -1 when the master did not send it (a Java
	// master): the deliveries may then not have reached the slave yet.
	CommitLogOffset int64
}

// Sizes of the checkpoint's forms.
const (
	timerCheckpointOld  = 32 // before dataVersion
	timerCheckpointJava = 56
	timerCheckpointSize = 64
)

// Encode returns the 64-byte form.
func (c TimerCheckpoint) Encode() []byte {
	b := make([]byte, timerCheckpointSize)
	for i, v := range [...]int64{c.LastReadTimeMs, c.LastTimerLogFlushPos, c.LastTimerQueueOffset, c.MasterTimerQueueOffset,
		c.DataVersion.StateVersion, c.DataVersion.Timestamp, c.DataVersion.Counter, c.CommitLogOffset} {
		binary.BigEndian.PutUint64(b[i*8:], uint64(v))
	}
	return b
}

// DecodeTimerCheckpoint reads any of the three forms (32, 56 or 64 bytes).
func DecodeTimerCheckpoint(b []byte) (TimerCheckpoint, error) {
	if n := len(b); n != timerCheckpointOld && n != timerCheckpointJava && n != timerCheckpointSize {
		return TimerCheckpoint{}, fmt.Errorf("timer checkpoint: %d bytes, want %d, %d or %d",
			n, timerCheckpointOld, timerCheckpointJava, timerCheckpointSize)
	}
	at := func(i int) int64 {
		if (i+1)*8 > len(b) {
			return -1
		}
		return int64(binary.BigEndian.Uint64(b[i*8:]))
	}
	c := TimerCheckpoint{
		LastReadTimeMs: at(0), LastTimerLogFlushPos: at(1), LastTimerQueueOffset: at(2), MasterTimerQueueOffset: at(3),
		CommitLogOffset: at(7),
	}
	if len(b) >= timerCheckpointJava {
		c.DataVersion = DataVersion{StateVersion: at(4), Timestamp: at(5), Counter: at(6)}
	}
	if c.LastReadTimeMs < 0 || c.MasterTimerQueueOffset < 0 || c.LastTimerQueueOffset < 0 {
		return TimerCheckpoint{}, fmt.Errorf("timer checkpoint: negative field in %+v", c)
	}
	return c, nil
}
