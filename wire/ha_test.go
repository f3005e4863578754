package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Golden bytes of the classic protocol (a Java slave or master produces
// exactly these).
func TestHAClassicGolden(t *testing.T) {
	report := unhex(t, "00 00 00 00 40 00 00 00")
	if got := AppendHAReport(nil, 1<<30); !bytes.Equal(got, report) {
		t.Errorf("report = % x", got)
	}
	if off, err := HAReport(report); err != nil || off != 1<<30 {
		t.Errorf("HAReport = %d, %v", off, err)
	}

	hdr := unhex(t, "00 00 00 00 40 00 00 00 00 00 80 00")
	if got := AppendHATransferHeader(nil, 1<<30, 32<<10); !bytes.Equal(got, hdr) {
		t.Errorf("transfer header = % x", got)
	}
	if off, n, err := HATransferHeader(hdr); err != nil || off != 1<<30 || n != 32<<10 {
		t.Errorf("HATransferHeader = %d %d %v", off, n, err)
	}

	hb := unhex(t, "00 00 00 00 00 01 23 45 00 00 00 00")
	if got := AppendHATransferHeader(nil, 0x12345, 0); !bytes.Equal(got, hb) {
		t.Errorf("heartbeat = % x", got)
	}
	if off, n, err := HATransferHeader(hb); err != nil || off != 0x12345 || n != 0 {
		t.Errorf("heartbeat decoded = %d %d %v", off, n, err)
	}
}

func TestHAClassicMalformed(t *testing.T) {
	for _, b := range [][]byte{nil, make([]byte, 7), unhex(t, "80 00 00 00 00 00 00 00")} {
		if _, err := HAReport(b); !errors.Is(err, ErrHAFrame) {
			t.Errorf("HAReport(% x) = %v", b, err)
		}
	}
	for _, b := range [][]byte{make([]byte, 11), unhex(t, "00 00 00 00 00 00 00 00 ff ff ff ff"), unhex(t, "ff 00 00 00 00 00 00 00 00 00 00 01")} {
		if _, _, err := HATransferHeader(b); !errors.Is(err, ErrHAFrame) {
			t.Errorf("HATransferHeader(% x) = %v", b, err)
		}
	}
}

// Golden bytes of the AutoSwitch protocol: slave id 2, master epochs (1, 0)
// and (2, 4096), master max 8192, confirm 8000.
func TestHAAutoSwitchGolden(t *testing.T) {
	slaveHS := unhex(t, "00 00 00 01  00 00  00 00  00 00 00 00 00 00 00 02")
	if got := AppendHASlaveHandshake(nil, HASlaveHandshake{BrokerID: 2}); !bytes.Equal(got, slaveHS) {
		t.Errorf("slave handshake = % x", got)
	}
	if h, err := DecodeHASlaveHandshake(slaveHS); err != nil || h != (HASlaveHandshake{BrokerID: 2}) {
		t.Errorf("DecodeHASlaveHandshake = %+v %v", h, err)
	}
	flags := AppendHASlaveHandshake(nil, HASlaveHandshake{SyncFromLastFile: true, AsyncLearner: true, BrokerID: 3})
	if h, err := DecodeHASlaveHandshake(flags); err != nil || !h.SyncFromLastFile || !h.AsyncLearner || h.BrokerID != 3 {
		t.Errorf("flags round trip = %+v %v", h, err)
	}

	epochs := []HAEpochEntry{{1, 0}, {2, 4096}}
	masterHS := unhex(t, "00 00 00 01  00 00 00 18  00 00 00 00 00 00 20 00  00 00 00 02"+
		"00 00 00 01 00 00 00 00 00 00 00 00"+"00 00 00 02 00 00 00 00 00 00 10 00")
	if got := AppendHAMasterHandshake(nil, 8192, 2, epochs); !bytes.Equal(got, masterHS) {
		t.Errorf("master handshake = % x", got)
	}
	h, err := DecodeHAMasterHandshake(masterHS)
	if err != nil || h != (HAMasterHandshake{Entries: 2, MaxOffset: 8192, LastEpoch: 2}) {
		t.Errorf("DecodeHAMasterHandshake = %+v %v", h, err)
	}
	got, err := AppendHAEpochEntries(nil, masterHS[HAMasterHandshakeHeaderSize:])
	if err != nil || len(got) != 2 || got[0] != epochs[0] || got[1] != epochs[1] {
		t.Errorf("epoch entries = %v %v", got, err)
	}

	slaveTr := unhex(t, "00 00 00 02  00 00 00 00 00 00 20 00")
	if got := AppendHASlaveTransfer(nil, 8192); !bytes.Equal(got, slaveTr) {
		t.Errorf("slave transfer = % x", got)
	}
	if off, err := DecodeHASlaveTransfer(slaveTr); err != nil || off != 8192 {
		t.Errorf("DecodeHASlaveTransfer = %d %v", off, err)
	}

	masterTr := unhex(t, "00 00 00 02  00 00 00 64  00 00 00 00 00 00 20 00  00 00 00 02  00 00 00 00 00 00 10 00  00 00 00 00 00 00 1F 40")
	mt := HAMasterTransfer{BodyLen: 100, Offset: 8192, Epoch: 2, EpochStartOffset: 4096, ConfirmOffset: 8000}
	if got := AppendHAMasterTransfer(nil, mt); !bytes.Equal(got, masterTr) {
		t.Errorf("master transfer = % x", got)
	}
	if d, err := DecodeHAMasterTransfer(masterTr); err != nil || d != mt {
		t.Errorf("DecodeHAMasterTransfer = %+v %v", d, err)
	}
}

func TestHAAutoSwitchMalformed(t *testing.T) {
	// A frame in the wrong state, an unknown state, short frames, bad flags,
	// a body size that is not whole epoch entries, negative lengths.
	checks := map[string]error{}
	_, checks["transfer as handshake"] = DecodeHASlaveHandshake(unhex(t, "00 00 00 02  00 00  00 00  00 00 00 00 00 00 00 02"))
	_, checks["unknown state"] = DecodeHASlaveTransfer(unhex(t, "00 00 00 07  00 00 00 00 00 00 20 00"))
	_, checks["short handshake"] = DecodeHASlaveHandshake(unhex(t, "00 00 00 01 00 00"))
	_, checks["flag 2"] = DecodeHASlaveHandshake(unhex(t, "00 00 00 01  00 02  00 00  00 00 00 00 00 00 00 02"))
	_, checks["body 13"] = DecodeHAMasterHandshake(unhex(t, "00 00 00 01  00 00 00 0d  00 00 00 00 00 00 20 00  00 00 00 02"))
	_, checks["entries 5 bytes"] = AppendHAEpochEntries(nil, make([]byte, 5))
	_, checks["negative body"] = DecodeHAMasterTransfer(unhex(t, "00 00 00 02  ff ff ff ff  00 00 00 00 00 00 20 00  00 00 00 02  00 00 00 00 00 00 10 00  00 00 00 00 00 00 1F 40"))
	_, checks["negative report"] = DecodeHASlaveTransfer(unhex(t, "00 00 00 02  ff 00 00 00 00 00 20 00"))
	_, checks["short transfer"] = DecodeHAMasterTransfer(make([]byte, 35))
	for name, err := range checks {
		if !errors.Is(err, ErrHAFrame) {
			t.Errorf("%s: err = %v, want ErrHAFrame", name, err)
		}
	}
}

// The streaming path encodes and decodes into fixed buffers.
func TestHAFramesDoNotAllocate(t *testing.T) {
	var buf [64]byte
	a := testing.AllocsPerRun(100, func() {
		b := AppendHATransferHeader(buf[:0], 12345, 32768)
		if _, _, err := HATransferHeader(b); err != nil {
			t.Fatal(err)
		}
		b = AppendHAReport(buf[:0], 99)
		if _, err := HAReport(b); err != nil {
			t.Fatal(err)
		}
		b = AppendHAMasterTransfer(buf[:0], HAMasterTransfer{BodyLen: 1, Offset: 2, Epoch: 3, EpochStartOffset: 4, ConfirmOffset: 5})
		if _, err := DecodeHAMasterTransfer(b); err != nil {
			t.Fatal(err)
		}
		b = AppendHASlaveTransfer(buf[:0], 7)
		if _, err := DecodeHASlaveTransfer(b); err != nil {
			t.Fatal(err)
		}
	})
	if a != 0 {
		t.Errorf("HA frame codec allocates %v times per frame", a)
	}
}
