package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/mqops/mqops/wire"
)

// leanConn is the generator's transport: every sender owns a pre-encoded
// request frame and a reply slot, and the reader routes answers by opaque
// (opaque = sender slot), so a request costs one frame write and a reply
// one decode and one wake-up. Keeping the generator cheap leaves the shared
// CPUs to the broker being measured.
type leanConn struct {
	nc    net.Conn
	wmu   sync.Mutex
	slots []chan int32 // response code per sender slot
	// direct: a connection with one sender has no reader goroutine; the
	// sender reads its own answer, as a single-threaded client
	// (redis-benchmark's event loop) does, so a round trip costs the
	// generator no goroutine hand-off and wake-up.
	direct *leanReader
}

// leanReader decodes answer frames from a connection.
type leanReader struct {
	r      *bufio.Reader
	prefix [4]byte
	frame  []byte
	cmd    wire.Command
}

func newLeanReader(nc net.Conn) *leanReader {
	return &leanReader{r: bufio.NewReaderSize(nc, 256<<10)}
}

// next reads one frame; the command is valid until the next call.
func (lr *leanReader) next() (*wire.Command, error) {
	if _, err := io.ReadFull(lr.r, lr.prefix[:]); err != nil {
		return nil, err
	}
	n, err := wire.FrameLength(lr.prefix[:])
	if err != nil {
		return nil, err
	}
	if cap(lr.frame) < n {
		lr.frame = make([]byte, n)
	}
	lr.frame = lr.frame[:n]
	if _, err := io.ReadFull(lr.r, lr.frame); err != nil {
		return nil, err
	}
	if err := wire.DecodeFrame(lr.frame, &lr.cmd); err != nil {
		return nil, err
	}
	return &lr.cmd, nil
}

// opaqueWidth is the space reserved for the opaque value in a JSON header;
// the value is left-aligned and padded with spaces, which JSON allows.
const opaqueWidth = 10

func dialLean(addr string, senders int) (*leanConn, error) {
	nc, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	lc := &leanConn{nc: nc, slots: make([]chan int32, senders)}
	if senders == 1 {
		lc.direct = newLeanReader(nc)
		return lc, nil
	}
	for i := range lc.slots {
		lc.slots[i] = make(chan int32, 1)
	}
	go lc.readLoop()
	return lc, nil
}

func (lc *leanConn) readLoop() {
	lr := newLeanReader(lc.nc)
	for {
		cmd, err := lr.next()
		if err != nil {
			lc.fail()
			return
		}
		if !cmd.IsResponse() || cmd.Opaque < 0 || int(cmd.Opaque) >= len(lc.slots) {
			continue
		}
		lc.slots[cmd.Opaque] <- cmd.Code
	}
}

// fail answers every sender with -1 once the connection is gone.
func (lc *leanConn) fail() {
	for _, s := range lc.slots {
		select {
		case s <- -1:
		default:
		}
	}
}

// leanRequest encodes req once with a fixed-width opaque field for slot.
func leanRequest(req *wire.Command, slot int) []byte {
	req.Opaque = 0
	frame := wire.AppendFrame(nil, req)
	// Re-encode with the padded opaque: find `"opaque":0` in the header.
	hl := int(binary.BigEndian.Uint32(frame[4:]) & 0xFFFFFF)
	hdr := string(frame[8 : 8+hl])
	const key = `"opaque":0`
	i := indexOf(hdr, key)
	padded := `"opaque":` + fmt.Sprintf("%-*s", opaqueWidth, strconv.Itoa(slot))
	hdr = hdr[:i] + padded + hdr[i+len(key):]
	body := frame[8+hl:]
	out := binary.BigEndian.AppendUint32(nil, uint32(4+len(hdr)+len(body)))
	out = binary.BigEndian.AppendUint32(out, uint32(len(hdr)))
	out = append(out, hdr...)
	return append(out, body...)
}

// signatureAt is the offset of the Signature value sig in an encoded
// frame, which the sender overwrites when it signs the request again.
func signatureAt(frame, sig []byte) int {
	return indexOf(string(frame), `"`+wire.ExtSignature+`":"`+string(sig)+`"`) + len(wire.ExtSignature) + 4
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	panic("mqbench: " + sub + " not found in encoded header")
}

// call writes a sender's frame and waits for its answer code.
func (lc *leanConn) call(slot int, frame []byte, timeout time.Duration) (int32, error) {
	if lc.direct != nil {
		return lc.callDirect(slot, frame, timeout)
	}
	lc.wmu.Lock()
	_, err := lc.nc.Write(frame)
	lc.wmu.Unlock()
	if err != nil {
		return 0, err
	}
	select {
	case code := <-lc.slots[slot]:
		if code < 0 {
			return 0, fmt.Errorf("connection lost")
		}
		return code, nil
	case <-time.After(timeout):
		return 0, fmt.Errorf("timeout")
	}
}

// callDirect is call for the connection's only sender: it reads frames
// until its answer. A failed read leaves the stream unaligned, so the
// connection is closed and later calls fail.
func (lc *leanConn) callDirect(slot int, frame []byte, timeout time.Duration) (int32, error) {
	if err := lc.nc.SetDeadline(time.Now().Add(timeout)); err != nil {
		return 0, err
	}
	if _, err := lc.nc.Write(frame); err != nil {
		return 0, err
	}
	for {
		cmd, err := lc.direct.next()
		if err != nil {
			_ = lc.nc.Close()
			return 0, fmt.Errorf("connection lost: %w", err)
		}
		if cmd.IsResponse() && cmd.Opaque == int32(slot) {
			return cmd.Code, nil
		}
	}
}
