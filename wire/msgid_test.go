package wire

import (
	"bytes"
	"net"
	"strings"
	"testing"
)

func TestOffsetMsgID(t *testing.T) {
	id := OffsetMsgID(v4Host, 0x0102030405060708)
	if id != "0A0102030000"+"2A9F"+"0102030405060708" {
		t.Fatalf("OffsetMsgID = %s", id)
	}
	ip, port, off, err := ParseOffsetMsgID(strings.ToLower(id))
	if err != nil || !ip.Equal(net.IPv4(10, 1, 2, 3)) || port != 10911 || off != 0x0102030405060708 {
		t.Fatalf("ParseOffsetMsgID = %v %d %d %v", ip, port, off, err)
	}

	id6 := OffsetMsgID(v6Host, 77)
	if len(id6) != 56 {
		t.Fatalf("IPv6 id length %d", len(id6))
	}
	ip, port, off, err = ParseOffsetMsgID(id6)
	if err != nil || !ip.Equal(net.ParseIP("2001:db8::1")) || port != 10911 || off != 77 {
		t.Fatalf("ParseOffsetMsgID v6 = %v %d %d %v", ip, port, off, err)
	}

	for _, bad := range []string{"", "ABC", strings.Repeat("Z", 32), strings.Repeat("0", 33)} {
		if _, _, _, err := ParseOffsetMsgID(bad); err == nil {
			t.Errorf("ParseOffsetMsgID(%q) accepted", bad)
		}
	}

	buf := make([]byte, 0, 64)
	if a := testing.AllocsPerRun(100, func() { buf = AppendOffsetMsgID(buf[:0], v4Host, 12345) }); a != 0 {
		t.Errorf("AppendOffsetMsgID allocs = %v", a)
	}
}

func TestHostBytes(t *testing.T) {
	tests := []struct {
		addr *net.TCPAddr
		want []byte
		str  string
	}{
		{&net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 10911}, v4Host, "10.1.2.3:10911"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:10.1.2.3"), Port: 10911}, v4Host, "10.1.2.3:10911"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 10911}, v6Host, "[2001:db8::1]:10911"},
		{nil, make([]byte, 8), "0.0.0.0:0"},
		{&net.TCPAddr{Port: 5}, []byte{0, 0, 0, 0, 0, 0, 0, 5}, "0.0.0.0:5"},
	}
	for _, tc := range tests {
		got := HostBytes(tc.addr)
		if !bytes.Equal(got, tc.want) {
			t.Errorf("HostBytes(%v) = % x, want % x", tc.addr, got, tc.want)
		}
		if s := HostString(got); s != tc.str {
			t.Errorf("HostString = %q, want %q", s, tc.str)
		}
	}
	if HostString([]byte{1, 2, 3}) != "" {
		t.Errorf("HostString of bad length not empty")
	}
}
