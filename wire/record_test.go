package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

var (
	v4Host = []byte{10, 1, 2, 3, 0, 0, 0x2A, 0x9F}    // 10.1.2.3:10911
	v4Born = []byte{192, 168, 0, 7, 0, 0, 0xC3, 0x50} // 192.168.0.7:50000
	v6Host = append(net.ParseIP("2001:db8::1").To16(), 0, 0, 0x2A, 0x9F)
)

func sampleRecord() Record {
	return Record{
		Topic:                     "TopicTest",
		QueueID:                   3,
		Flag:                      7,
		QueueOffset:               42,
		PhysicalOffset:            1 << 33,
		SysFlag:                   SysFlagTransactionCommit,
		BornTimestamp:             1700000000123,
		BornHost:                  v4Born,
		StoreTimestamp:            1700000000456,
		StoreHost:                 v4Host,
		ReconsumeTimes:            2,
		PreparedTransactionOffset: 4096,
		Body:                      []byte("hello rocketmq"),
		Properties:                AppendProperty(AppendProperty(nil, PropTags, "TagA"), PropKeys, "k1 k2"),
	}
}

func encode(r *Record) []byte {
	b := make([]byte, r.Size())
	if n := r.EncodeTo(b); n != len(b) {
		panic("EncodeTo size mismatch")
	}
	return b
}

func TestRecordLayoutIPv4(t *testing.T) {
	r := sampleRecord()
	b := encode(&r)
	if want := 91 + len(r.Body) + len(r.Topic) + len(r.Properties); len(b) != want {
		t.Fatalf("size %d, want 91+n+t+p = %d", len(b), want)
	}
	be := binary.BigEndian
	checks := []struct {
		name string
		off  int
		got  int64
		want int64
	}{
		{"TOTALSIZE", 0, int64(int32(be.Uint32(b[0:]))), int64(len(b))},
		{"MAGICCODE", 4, int64(int32(be.Uint32(b[4:]))), -626843481},
		{"BODYCRC", 8, int64(be.Uint32(b[8:])), int64(crc32.ChecksumIEEE(r.Body) & 0x7FFFFFFF)},
		{"QUEUEID", 12, int64(be.Uint32(b[12:])), 3},
		{"FLAG", 16, int64(be.Uint32(b[16:])), 7},
		{"QUEUEOFFSET", 20, int64(be.Uint64(b[20:])), 42},
		{"PHYSICALOFFSET", 28, int64(be.Uint64(b[28:])), 1 << 33},
		{"SYSFLAG", 36, int64(be.Uint32(b[36:])), int64(SysFlagTransactionCommit)},
		{"BORNTIMESTAMP", 40, int64(be.Uint64(b[40:])), 1700000000123},
		{"STORETIMESTAMP", 56, int64(be.Uint64(b[56:])), 1700000000456},
		{"RECONSUMETIMES", 72, int64(be.Uint32(b[72:])), 2},
		{"PREPAREDOFFSET", 76, int64(be.Uint64(b[76:])), 4096},
		{"BODYLEN", 84, int64(be.Uint32(b[84:])), int64(len(r.Body))},
		{"TOPICLEN", 88 + len(r.Body), int64(b[88+len(r.Body)]), int64(len(r.Topic))},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s at %d = %d, want %d", c.name, c.off, c.got, c.want)
		}
	}
	if !bytes.Equal(b[48:56], v4Born) || !bytes.Equal(b[64:72], v4Host) {
		t.Errorf("hosts not at 48/64")
	}
	if !bytes.Equal(b[88:88+len(r.Body)], r.Body) {
		t.Errorf("body not at 88")
	}
	p := 89 + len(r.Body) + len(r.Topic)
	if string(b[89+len(r.Body):p]) != r.Topic || int(be.Uint16(b[p:])) != len(r.Properties) ||
		!bytes.Equal(b[p+2:], r.Properties) {
		t.Errorf("topic/properties tail wrong: % x", b[88+len(r.Body):])
	}
}

func TestRecordViewRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name       string
		born, stor []byte
		wantFlag   int32
	}{
		{"v4/v4", v4Born, v4Host, 0},
		{"v6/v4", v6Host, v4Host, SysFlagBornHostV6},
		{"v4/v6", v4Born, v6Host, SysFlagStoreHostV6},
		{"v6/v6", v6Host, v6Host, SysFlagBornHostV6 | SysFlagStoreHostV6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sampleRecord()
			r.BornHost, r.StoreHost = tc.born, tc.stor
			// Stale V6 bits in the input must be replaced by the real ones.
			r.SysFlag = SysFlagCompressed | SysFlagBornHostV6 | SysFlagStoreHostV6
			b := encode(&r)
			if want := RecordSize(len(r.Body), len(r.Topic), len(r.Properties), len(tc.born) == 20, len(tc.stor) == 20); len(b) != want {
				t.Fatalf("size %d, want %d", len(b), want)
			}
			n, err := CheckRecord(b)
			if err != nil || n != len(b) {
				t.Fatalf("CheckRecord = %d, %v", n, err)
			}
			v := RecordView(b)
			if v.SysFlag() != SysFlagCompressed|tc.wantFlag {
				t.Errorf("SysFlag = %#x", v.SysFlag())
			}
			if v.TotalSize() != int32(len(b)) || v.Magic() != MagicMessage || v.BodyCRC() != BodyCRC(r.Body) ||
				v.QueueID() != r.QueueID || v.Flag() != r.Flag || v.QueueOffset() != r.QueueOffset ||
				v.PhysicalOffset() != r.PhysicalOffset || v.BornTimestamp() != r.BornTimestamp ||
				v.StoreTimestamp() != r.StoreTimestamp || v.ReconsumeTimes() != r.ReconsumeTimes ||
				v.PreparedTransactionOffset() != r.PreparedTransactionOffset {
				t.Errorf("scalar field mismatch")
			}
			if !bytes.Equal(v.BornHost(), tc.born) || !bytes.Equal(v.StoreHost(), tc.stor) ||
				!bytes.Equal(v.Body(), r.Body) || string(v.Topic()) != r.Topic ||
				!bytes.Equal(v.Properties(), r.Properties) {
				t.Errorf("variable field mismatch")
			}
		})
	}
}

func TestRecordEmptyFields(t *testing.T) {
	r := Record{Topic: "T"}
	b := encode(&r)
	if len(b) != MinRecordSize+1 {
		t.Fatalf("size %d", len(b))
	}
	if n, err := CheckRecord(b); err != nil || n != len(b) {
		t.Fatalf("CheckRecord = %d, %v", n, err)
	}
	v := RecordView(b)
	if len(v.Body()) != 0 || string(v.Topic()) != "T" || len(v.Properties()) != 0 || !bytes.Equal(v.BornHost(), make([]byte, 8)) {
		t.Errorf("unexpected fields")
	}
}

func TestEncodeToAllocs(t *testing.T) {
	r := sampleRecord()
	b := make([]byte, r.Size())
	if a := testing.AllocsPerRun(100, func() { r.EncodeTo(b) }); a != 0 {
		t.Errorf("EncodeTo allocs = %v", a)
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = CheckRecord(b) }); a != 0 {
		t.Errorf("CheckRecord allocs = %v", a)
	}
}

func TestCheckRecordErrors(t *testing.T) {
	r := sampleRecord()
	good := encode(&r)
	mutate := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	be := binary.BigEndian
	bodyOff := 88
	blank := make([]byte, 64)
	be.PutUint32(blank[0:], 64)
	be.PutUint32(blank[4:], magicBlankBits)

	tests := []struct {
		name     string
		in       []byte
		wantErr  error
		wantSize int
	}{
		{"ok", good, nil, len(good)},
		{"ok with trailing bytes", append(bytes.Clone(good), 1, 2, 3), nil, len(good)},
		{"short header", good[:7], ErrTruncated, 0},
		{"zeros", make([]byte, 100), ErrEmpty, 0},
		{"blank", blank, ErrBlank, 64},
		{"blank too big", blank[:32], ErrCorrupt, 0},
		{"blank too small", mutate(func(b []byte) { be.PutUint32(b[0:], 4); be.PutUint32(b[4:], magicBlankBits) }), ErrCorrupt, 0},
		{"bad magic", mutate(func(b []byte) { b[4] ^= 0xFF }), ErrCorrupt, 0},
		{"zero size real magic", mutate(func(b []byte) { be.PutUint32(b[0:], 0) }), ErrCorrupt, 0},
		{"negative size", mutate(func(b []byte) { be.PutUint32(b[0:], 0xFFFFFFF0) }), ErrCorrupt, 0},
		{"truncated", good[:len(good)-1], ErrTruncated, 0},
		{"truncated to header", good[:20], ErrTruncated, 0},
		{"size too large", mutate(func(b []byte) { be.PutUint32(b[0:], uint32(len(good)+1)) }), ErrTruncated, 0},
		{"size too small", mutate(func(b []byte) { be.PutUint32(b[0:], uint32(len(good)-1)) }), ErrCorrupt, 0},
		{"body crc", mutate(func(b []byte) { b[bodyOff] ^= 1 }), ErrCorrupt, 0},
		{"crc field", mutate(func(b []byte) { b[8] ^= 0x10 }), ErrCorrupt, 0},
		{"body len negative", mutate(func(b []byte) { be.PutUint32(b[84:], 0xFFFFFFFF) }), ErrCorrupt, 0},
		{"body len huge", mutate(func(b []byte) { be.PutUint32(b[84:], 1<<30) }), ErrCorrupt, 0},
		{"topic len", mutate(func(b []byte) { b[bodyOff+len(r.Body)]++ }), ErrCorrupt, 0},
		{"topic len > 127", mutate(func(b []byte) { b[bodyOff+len(r.Body)] = 200 }), ErrCorrupt, 0},
		{"props len", mutate(func(b []byte) { b[bodyOff+len(r.Body)+1+len(r.Topic)+1]-- }), ErrCorrupt, 0},
		{"v6 flag on v4 record", mutate(func(b []byte) { b[39] |= byte(SysFlagStoreHostV6) }), ErrCorrupt, 0},
		{"unmasked crc accepted", mutate(func(b []byte) { be.PutUint32(b[8:], crc32.ChecksumIEEE(r.Body)) }), nil, len(good)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := CheckRecord(tc.in)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if n != tc.wantSize {
				t.Fatalf("size = %d, want %d", n, tc.wantSize)
			}
		})
	}
}

func TestRecordViewShortInputNoPanic(t *testing.T) {
	r := sampleRecord()
	b := encode(&r)
	for i := 0; i <= len(b); i++ {
		v := RecordView(b[:i])
		_ = v.TotalSize() + v.Magic() + v.BodyCRC() + v.QueueID() + v.Flag() + v.SysFlag() + v.ReconsumeTimes()
		_ = v.QueueOffset() + v.PhysicalOffset() + v.BornTimestamp() + v.StoreTimestamp() + v.PreparedTransactionOffset()
		_, _, _, _, _ = v.BornHost(), v.StoreHost(), v.Body(), v.Topic(), v.Properties()
	}
}

// TestDecodeWithOfficialClient feeds concatenated records to
// rocketmq-client-go's decoder, which is what consumers run on pull bodies.
func TestDecodeWithOfficialClient(t *testing.T) {
	var recs []Record
	var buf []byte
	phy := int64(1 << 20)
	for i, tc := range []struct {
		body  string
		props []byte
	}{
		{"first", AppendProperty(AppendProperty(nil, PropTags, "TagA"), PropUniqKey, "7F0000010001000000000000000000AB")},
		{"", nil},
		{"third body", AppendProperty(AppendProperty(nil, PropKeys, "a b"), PropCluster, "DefaultCluster")},
	} {
		r := sampleRecord()
		r.SysFlag = 0
		r.QueueOffset = int64(100 + i)
		r.PhysicalOffset = phy
		r.Body = []byte(tc.body)
		r.Properties = tc.props
		b := encode(&r)
		phy += int64(len(b))
		recs = append(recs, r)
		buf = append(buf, b...)
	}
	msgs := primitive.DecodeMessage(buf)
	if len(msgs) != len(recs) {
		t.Fatalf("decoded %d messages, want %d", len(msgs), len(recs))
	}
	for i, m := range msgs {
		r := recs[i]
		if m.Topic != r.Topic || string(m.Body) != string(r.Body) || m.QueueOffset != r.QueueOffset ||
			m.CommitLogOffset != r.PhysicalOffset || m.Queue.QueueId != int(r.QueueID) ||
			m.BornTimestamp != r.BornTimestamp || m.StoreTimestamp != r.StoreTimestamp ||
			m.ReconsumeTimes != r.ReconsumeTimes || m.PreparedTransactionOffset != r.PreparedTransactionOffset ||
			m.Flag != r.Flag || m.BodyCRC != BodyCRC(r.Body) {
			t.Errorf("msg %d: decoded %+v, want %+v", i, m, r)
		}
		if want := ParseProperties(r.Properties); len(want) != len(m.GetProperties()) {
			t.Errorf("msg %d: properties %v, want %v", i, m.GetProperties(), want)
		} else {
			for k, v := range want {
				if m.GetProperty(k) != v {
					t.Errorf("msg %d: property %s = %q, want %q", i, k, m.GetProperty(k), v)
				}
			}
		}
		if id := OffsetMsgID(r.StoreHost, r.PhysicalOffset); m.OffsetMsgId != id {
			t.Errorf("msg %d: OffsetMsgId %s, want %s", i, m.OffsetMsgId, id)
		}
		wantID := m.OffsetMsgId
		if u := PropertyValue(r.Properties, PropUniqKey); u != nil {
			wantID = string(u)
		}
		if m.MsgId != wantID {
			t.Errorf("msg %d: MsgId %s, want %s", i, m.MsgId, wantID)
		}
		if m.StoreHost != "10.1.2.3:10911" || m.BornHost != "192.168.0.7:50000" {
			t.Errorf("msg %d: hosts %s %s", i, m.StoreHost, m.BornHost)
		}
		id, err := primitive.UnmarshalMsgID([]byte(m.OffsetMsgId))
		if err != nil || id.Offset != r.PhysicalOffset || id.Port != 10911 || id.Addr != "10.1.2.3" {
			t.Errorf("msg %d: UnmarshalMsgID = %+v, %v", i, id, err)
		}
	}
}

func FuzzCheckRecord(f *testing.F) {
	r := sampleRecord()
	good := encode(&r)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(make([]byte, 16))
	blank := make([]byte, 16)
	binary.BigEndian.PutUint32(blank[0:], 16)
	binary.BigEndian.PutUint32(blank[4:], magicBlankBits)
	f.Add(blank)
	r.BornHost, r.StoreHost = v6Host, v6Host
	f.Add(encode(&r))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := CheckRecord(b)
		if err == nil || errors.Is(err, ErrBlank) {
			if n <= 0 || n > len(b) {
				t.Fatalf("size %d out of range for %d bytes (err %v)", n, len(b), err)
			}
		}
		if err == nil {
			v := RecordView(b[:n])
			if int(v.TotalSize()) != n || v.Magic() != MagicMessage {
				t.Fatalf("accepted record with inconsistent header")
			}
			if RecordSize(len(v.Body()), len(v.Topic()), len(v.Properties()),
				v.SysFlag()&SysFlagBornHostV6 != 0, v.SysFlag()&SysFlagStoreHostV6 != 0) != n {
				t.Fatalf("accepted record whose parts do not add up")
			}
		}
		// Accessors must not panic on any input either.
		v := RecordView(b)
		_, _, _ = v.Body(), v.Topic(), v.Properties()
	})
}
