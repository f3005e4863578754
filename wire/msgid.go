package wire

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
)

const upperHex = "0123456789ABCDEF"

// AppendOffsetMsgID appends the offsetMsgId (Java's MessageDecoder.createMessageId,
// apache/rocketmq common/src/main/java/org/apache/rocketmq/common/message/MessageDecoder.java)
// of the record at
// phyOffset stored by storeHost (raw form: ip + int32 port) to dst:
// uppercase hex of storeHost followed by the big-endian offset, 32 chars for
// an IPv4 host, 56 for IPv6.
func AppendOffsetMsgID(dst, storeHost []byte, phyOffset int64) []byte {
	for _, c := range storeHost {
		dst = append(dst, upperHex[c>>4], upperHex[c&0xF])
	}
	for shift := 56; shift >= 0; shift -= 8 {
		c := byte(phyOffset >> shift)
		dst = append(dst, upperHex[c>>4], upperHex[c&0xF])
	}
	return dst
}

// OffsetMsgID returns the offsetMsgId of the record at phyOffset.
func OffsetMsgID(storeHost []byte, phyOffset int64) string {
	return string(AppendOffsetMsgID(make([]byte, 0, 2*(len(storeHost)+8)), storeHost, phyOffset))
}

// ParseOffsetMsgID decodes an offsetMsgId of 32 (IPv4) or 56 (IPv6) hex
// characters, in either case.
func ParseOffsetMsgID(id string) (ip net.IP, port int, phyOffset int64, err error) {
	var ipLen int
	switch len(id) {
	case 2 * (4 + 4 + 8):
		ipLen = 4
	case 2 * (16 + 4 + 8):
		ipLen = 16
	default:
		return nil, 0, 0, fmt.Errorf("parse offset msgId %q: length %d, want 32 or 56", id, len(id))
	}
	b, err := hex.DecodeString(id)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("parse offset msgId %q: %w", id, err)
	}
	ip = net.IP(b[:ipLen:ipLen])
	port = int(int32(binary.BigEndian.Uint32(b[ipLen:])))
	phyOffset = int64(binary.BigEndian.Uint64(b[ipLen+4:]))
	return ip, port, phyOffset, nil
}

// HostBytes returns addr in raw record form: 4-byte address + int32 port for
// IPv4 (IPv4-mapped IPv6 included), 16-byte address + port otherwise. A nil
// addr or address encodes as 0.0.0.0.
func HostBytes(addr *net.TCPAddr) []byte {
	if addr == nil {
		return make([]byte, hostV4Len)
	}
	ip := addr.IP.To4()
	if ip == nil {
		ip = addr.IP.To16()
	}
	if ip == nil {
		ip = net.IPv4zero.To4()
	}
	b := make([]byte, len(ip)+4)
	copy(b, ip)
	binary.BigEndian.PutUint32(b[len(ip):], uint32(int32(addr.Port)))
	return b
}

// HostString formats a raw host (8 or 20 bytes) as "ip:port" ("[ip]:port"
// for IPv6); other lengths give "".
func HostString(h []byte) string {
	if len(h) != hostV4Len && len(h) != hostV6Len {
		return ""
	}
	ipLen := len(h) - 4
	port := int(int32(binary.BigEndian.Uint32(h[ipLen:])))
	return net.JoinHostPort(net.IP(h[:ipLen]).String(), strconv.Itoa(port))
}
