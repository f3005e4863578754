package store

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

func benchStore(b testing.TB, mode FlushMode) *Store {
	cfg := testConfig(b, nil)
	cfg.SegmentSize = 256 << 20
	cfg.CQUnitsPerFile = 300000
	cfg.FlushMode = mode
	cfg.FlushInterval = 0 // default 500ms
	return openStore(b, cfg)
}

func benchMessage(qid int32) *Message {
	return msg("BenchTopic", qid, strings.Repeat("b", 1024),
		wire.PropTags, "TagA", wire.PropUniqKey, "7F00000100002A9F0000000000000001", wire.PropCluster, "DefaultCluster")
}

func BenchmarkPut(b *testing.B) {
	s := benchStore(b, AsyncFlush)
	m := benchMessage(0)
	mustPut(b, s, m)
	b.SetBytes(int64(len(m.Body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if r := s.Put(m); r.Status != PutOK {
			b.Fatal(r.Status)
		}
	}
}

func BenchmarkPutParallel(b *testing.B) {
	s := benchStore(b, AsyncFlush)
	var next atomic.Int32
	for q := range int32(8) {
		mustPut(b, s, benchMessage(q))
	}
	b.SetBytes(1024)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		m := benchMessage(next.Add(1) % 8)
		for pb.Next() {
			if r := s.Put(m); r.Status != PutOK {
				b.Error(r.Status)
				return
			}
		}
	})
}

// BenchmarkPutSyncFlush measures group commit: every Put waits for an
// fsync covering it.
func BenchmarkPutSyncFlush(b *testing.B) {
	s := benchStore(b, SyncFlush)
	mustPut(b, s, benchMessage(0))
	start := s.fsyncs.Load()
	b.SetBytes(1024)
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		m := benchMessage(0)
		done := make(chan bool, 1)
		cb := func(ok bool) { done <- ok }
		for pb.Next() {
			r := s.Put(m)
			s.WaitFlushed(r.EndOffset, cb)
			if !<-done {
				b.Error("flush failed")
				return
			}
		}
	})
	b.ReportMetric(float64(s.fsyncs.Load()-start)/float64(b.N), "fsyncs/op")
}

const benchGetN = 20000

func BenchmarkGetMessages(b *testing.B) {
	s := benchStore(b, AsyncFlush)
	m := benchMessage(0)
	for range benchGetN {
		mustPut(b, s, m)
	}
	waitDispatch(b, s)
	benchGet(b, s, make([]byte, 0, 64<<10))
}

// BenchmarkGetMessagesNoBuffer is a GetMessages without a destination
// buffer, as a POP receive calls it: the records get one allocation.
func BenchmarkGetMessagesNoBuffer(b *testing.B) {
	s := benchStore(b, AsyncFlush)
	m := benchMessage(0)
	for range benchGetN {
		mustPut(b, s, m)
	}
	waitDispatch(b, s)
	benchGet(b, s, nil)
}

// BenchmarkGetMessagesUnverified reads records an earlier run wrote, in
// segments the restart's recovery did not walk, with the scrub off: every
// record's CRC is checked on read.
func BenchmarkGetMessagesUnverified(b *testing.B) {
	cfg := testConfig(b, nil)
	cfg.SegmentSize = 8 << 20
	cfg.CQUnitsPerFile = 300000
	cfg.ScrubRate = -1
	s := openStore(b, cfg)
	m := benchMessage(0)
	for range benchGetN {
		mustPut(b, s, m)
	}
	// Roll to a segment of its own: the checkpoint, and so recovery's walk, start there.
	end := s.MaxPhyOffset()
	for s.MaxPhyOffset() < end-end%cfg.SegmentSize+cfg.SegmentSize {
		mustPut(b, s, benchMessage(1))
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	s = openStore(b, cfg)
	if s.verifiedFrom < end {
		b.Fatalf("recovery verified from %d, before the data's end %d", s.verifiedFrom, end)
	}
	benchGet(b, s, make([]byte, 0, 64<<10))
}

// benchGet measures GetMessages of 32 messages from queue 0 of BenchTopic,
// which holds benchGetN, appending to dst.
func benchGet(b *testing.B, s *Store, dst []byte) {
	const n = benchGetN
	m := benchMessage(0)
	code := wire.TagsHashCode([]byte("TagA"))
	match := func(c int64) bool { return c == code }
	b.SetBytes(32 * int64(mustPut(b, s, m).WroteBytes))
	b.ReportAllocs()
	b.ResetTimer()
	off := int64(0)
	for b.Loop() {
		r := s.GetMessages("BenchTopic", 0, off, 32, 256<<10, match, nil, dst[:0])
		if r.Status != Found || r.MsgCount != 32 {
			b.Fatalf("%v %d", r.Status, r.MsgCount)
		}
		if off = r.NextBeginOffset; off+32 > n {
			off = 0
		}
	}
}

// BenchmarkRebuildQueue measures the commit-log walk of a consume-queue
// rebuild (a whole queue: its directory was lost) over a log of 1 KiB
// messages on 8 queues, in the page cache; MB/s is log bytes walked.
func BenchmarkRebuildQueue(b *testing.B) {
	s := benchStore(b, AsyncFlush)
	for i := range 100000 {
		mustPut(b, s, benchMessage(int32(i%8)))
	}
	waitDispatch(b, s)
	cq := s.cqs.get("BenchTopic", 3)
	end := s.MaxPhyOffset()
	b.SetBytes(end)
	b.ResetTimer()
	for b.Loop() {
		d := &cqDamage{cq: cq, reason: "bench", hi: -1, head: true, from: 0, to: end}
		if err := s.rebuild([]*cqDamage{d}, nil); err != nil || d.next != 12500 {
			b.Fatal(err, d.next)
		}
	}
}

// BenchmarkAppendAt measures a slave catching up: the master's log copied
// in 256 KiB chunks (the classic haTransferBatchSize is 32 KiB; a catching
// up master sends what it has), including the per-record checks and the
// dispatcher building queues and the index behind it.
func BenchmarkAppendAt(b *testing.B) {
	master := benchStore(b, AsyncFlush)
	m := benchMessage(0)
	for range 64 << 10 { // 64 Ki records, ~80 MiB
		if r := master.Put(m); r.Status != PutOK {
			b.Fatal(r.Status)
		}
	}
	end := master.MaxPhyOffset()
	buf := make([]byte, 256<<10)
	b.SetBytes(end)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		slave := benchStore(b, AsyncFlush)
		if err := slave.SetRole(RoleSlave); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for off := int64(0); off < end; {
			n, err := master.ReadCommitLog(buf, off)
			if err != nil {
				b.Fatal(err)
			}
			if err := slave.AppendAt(off, buf[:n]); err != nil {
				b.Fatal(err)
			}
			off += int64(n)
		}
		if !slave.waitDispatched(end, time.Minute) {
			b.Fatal("dispatch stuck")
		}
		b.StopTimer()
		slave.Close()
		b.StartTimer()
	}
}

// BenchmarkPutLMQ: a message dispatched into three light queues, beside
// BenchmarkPut's plain one on a store with light queues on.
func BenchmarkPutLMQ(b *testing.B) {
	for _, bc := range []struct {
		name  string
		lmqs  string
		props bool
	}{{"plain", "", false}, {"three", "%LMQ%a,%LMQ%b,%LMQ%c", true}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := testConfig(b, nil)
			cfg.SegmentSize = 256 << 20
			cfg.CQUnitsPerFile = 300000
			cfg.LightQueues = true
			s := openStore(b, cfg)
			m := benchMessage(0)
			if bc.props {
				m.Properties = wire.AppendProperty(m.Properties, wire.PropInnerMultiDispatch, bc.lmqs)
			}
			mustPut(b, s, m)
			b.SetBytes(int64(len(m.Body)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if r := s.Put(m); r.Status != PutOK {
					b.Fatal(r.Status)
				}
			}
		})
	}
}
