package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/mqops/mqops/fileutil"
)

// The warmer writes zeros ahead of a SyncFlush master's appends while
// several writers append records of random sizes across segment rolls
// (run with -race): every record reads back intact, the log is kept
// written ahead of the append position, and a reopened store recovers to
// the same end (the zeros ahead read as the end of the log).
func TestWarmAheadNeverTouchesAppends(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.FlushMode = SyncFlush
	cfg.WarmSegments = true
	cfg.SegmentSize = 8 << 20
	s := openStore(t, cfg)

	const writers, perWriter = 4, 150
	var wg sync.WaitGroup
	sawAhead := make(chan bool, 1)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range perWriter {
				body := bytes.Repeat([]byte{byte('a' + w)}, 100+r.IntN(120<<10))
				copy(body, fmt.Sprintf("w%d-%d|", w, i))
				mustPut(t, s, msg("WarmTopic", int32(w), string(body)))
				s.mu.Lock()
				ahead := s.warm.to > s.writePos
				s.mu.Unlock()
				if ahead {
					select {
					case sawAhead <- true:
					default:
					}
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-sawAhead:
	default:
		t.Fatal("the warmer never ran ahead of the appends")
	}
	waitDispatch(t, s)
	check := func(s *Store) {
		t.Helper()
		for w := range writers {
			recs := readAll(t, s, "WarmTopic", int32(w))
			if len(recs) != perWriter {
				t.Fatalf("queue %d: %d records, want %d", w, len(recs), perWriter)
			}
			for i, rv := range recs {
				b := rv.Body()
				prefix := fmt.Sprintf("w%d-%d|", w, i)
				if !bytes.HasPrefix(b, []byte(prefix)) || bytes.IndexFunc(b[len(prefix):], func(c rune) bool { return c != rune('a'+w) }) >= 0 {
					t.Fatalf("queue %d record %d damaged (%d bytes)", w, i, len(b))
				}
			}
		}
	}
	check(s)
	end := s.MaxPhyOffset()
	if s.Close() != nil {
		t.Fatal("close")
	}
	s2 := openStore(t, cfg)
	if got := s2.MaxPhyOffset(); got != end {
		t.Fatalf("recovered to %d, want %d", got, end)
	}
	waitDispatch(t, s2)
	check(s2)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s2.mu.Lock()
		ahead := s2.warm.to > s2.writePos
		s2.mu.Unlock()
		if ahead {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reopened store's warmer did not run ahead")
		}
		mustPut(t, s2, msg("WarmTopic", 9, "after reopen"))
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWarmWritesSmallFolios: the page-cache folios behind the warmed
// range are at most warmWrite long (large folios made each append's
// pwrite walk up to 512 blocks, warm.go). It reads the folio sizes from
// /proc/self/pagemap and /proc/kpageflags (root only) and first checks,
// on a scratch file, that this kernel and file system make large folios
// for a large write at all: elsewhere the check would prove nothing.
func TestWarmWritesSmallFolios(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("reading page frame numbers needs root")
	}
	cfg := testConfig(t, nil)
	cfg.FlushMode = SyncFlush
	cfg.WarmSegments = true
	cfg.SegmentSize = 8 << 20

	scratch := filepath.Join(cfg.RootDir, "scratch")
	m, err := fileutil.OpenMapped(scratch, 4<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.File.WriteAt(make([]byte, 4<<20), 0); err != nil {
		t.Fatal(err)
	}
	if big := largestFolio(t, m.Data); big <= warmWrite {
		t.Skipf("one 4 MiB write made folios of at most %d bytes here", big)
	}

	s := openStore(t, cfg)
	mustPut(t, s, msg("FolioTopic", 0, "x"))
	deadline := time.Now().Add(15 * time.Second)
	for {
		s.mu.Lock()
		to, seg := s.warm.to, s.active
		s.mu.Unlock()
		if to >= seg.base+4<<20 {
			if got := largestFolio(t, seg.data[pageSize:to-seg.base]); got > warmWrite {
				t.Fatalf("a folio of %d bytes behind the warmed log, want at most %d", got, warmWrite)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("warmed only to %d", to)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var folioSink byte

// largestFolio maps every page of b (page-aligned) and returns the size
// of the largest page-cache folio behind it, from the kernel's compound
// page flags.
func largestFolio(t *testing.T, b []byte) int64 {
	t.Helper()
	const present, pfnMask = 1 << 63, 1<<55 - 1
	const compoundHead, compoundTail = 1 << 15, 1 << 16
	pm, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Skip(err)
	}
	defer pm.Close()
	kf, err := os.Open("/proc/kpageflags")
	if err != nil {
		t.Skip(err)
	}
	defer kf.Close()
	for i := 0; i < len(b); i += int(pageSize) {
		folioSink += b[i] // maps the page
	}
	start := uintptr(unsafe.Pointer(&b[0])) / uintptr(pageSize)
	n := len(b) / int(pageSize)
	ents := make([]byte, 8*n)
	if _, err := pm.ReadAt(ents, int64(start)*8); err != nil {
		t.Fatal(err)
	}
	var largest, run int64
	var flags [8]byte
	for i := range n {
		e := binary.LittleEndian.Uint64(ents[8*i:])
		if e&present == 0 || e&pfnMask == 0 {
			t.Fatalf("page %d of %d not mapped or no frame number (%#x)", i, n, e)
		}
		if _, err := kf.ReadAt(flags[:], int64(e&pfnMask)*8); err != nil {
			t.Fatal(err)
		}
		switch f := binary.LittleEndian.Uint64(flags[:]); {
		case f&compoundTail != 0 && run > 0:
			run++
		case f&compoundHead != 0:
			run = 1
		default:
			run = 1 // an order-0 folio, or a tail of one that began before b
		}
		largest = max(largest, run*pageSize)
	}
	return largest
}
