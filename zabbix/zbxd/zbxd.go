// Package zbxd asks a Zabbix agent for an item the way the Zabbix server
// or zabbix_get does: a passive check over TCP in the ZBXD protocol. Debian
// ships no zabbix_get, so `mqops-zbx get`, the zabbix_agent role's health
// check and the tests use this.
package zbxd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// maxValue bounds an answer; agents cap text values far below.
const maxValue = 64 << 20

// ErrNotSupported wraps the agent's reason for refusing a key.
var ErrNotSupported = errors.New("not supported")

// Get asks the agent at addr (host:port) for key and returns the value.
// The frame is "ZBXD", flags 0x01, the data length (4 bytes, little
// endian), 4 reserved bytes, then the data, both ways.
func Get(addr, key string, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", fmt.Errorf("agent %s: %w", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	req := make([]byte, 13, 13+len(key))
	copy(req, "ZBXD\x01")
	binary.LittleEndian.PutUint32(req[5:], uint32(len(key)))
	if _, err := c.Write(append(req, key...)); err != nil {
		return "", fmt.Errorf("agent %s: send %s: %w", addr, key, err)
	}
	// Agent 2 keeps the connection open after its answer: read the header,
	// then exactly the length it announces.
	hdr := make([]byte, 13)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return "", fmt.Errorf("agent %s: %s: read answer: %w", addr, key, err)
	}
	if string(hdr[:4]) != "ZBXD" {
		return "", fmt.Errorf("agent %s: %s: not a ZBXD answer: %q", addr, key, hdr)
	}
	n := binary.LittleEndian.Uint32(hdr[5:9])
	if n > maxValue {
		return "", fmt.Errorf("agent %s: %s: answer of %d bytes is too large", addr, key, n)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(c, data); err != nil {
		return "", fmt.Errorf("agent %s: %s: read %d bytes: %w", addr, key, n, err)
	}
	v := string(data)
	if msg, ok := strings.CutPrefix(v, "ZBX_NOTSUPPORTED\x00"); ok {
		return "", fmt.Errorf("agent %s: %s: %w: %s", addr, key, ErrNotSupported, msg)
	}
	return v, nil
}
