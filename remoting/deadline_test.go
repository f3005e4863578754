package remoting

import (
	"bufio"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

// deadlineConn counts the deadlines set on a connection.
type deadlineConn struct {
	net.Conn
	reads, writes *atomic.Int64
}

func (c deadlineConn) SetReadDeadline(t time.Time) error {
	c.reads.Add(1)
	return c.Conn.SetReadDeadline(t)
}

func (c deadlineConn) SetWriteDeadline(t time.Time) error {
	c.writes.Add(1)
	return c.Conn.SetWriteDeadline(t)
}

// A synchronous peer's round trips do not each move the idle and write
// deadlines: each costs a runtime timer update, and the 120 s idle and
// 30 s write timeouts need no per-request precision (extendDeadline).
func TestDeadlinesNotSetPerRequest(t *testing.T) {
	var reads, writes atomic.Int64
	srv := startServer(t, serverOpts{handler: echo, wrap: func(nc net.Conn) net.Conn {
		return deadlineConn{nc, &reads, &writes}
	}})
	nc := dial(t, srv.addr())
	r := bufio.NewReader(nc)
	const n = 200
	for i := int32(1); i <= n; i++ {
		if _, err := nc.Write(wire.AppendFrame(nil, request(10, i, []byte("x")))); err != nil {
			t.Fatal(err)
		}
		if resp := mustRead(t, nc, r); resp.Opaque != i {
			t.Fatalf("answer %d has opaque %d", i, resp.Opaque)
		}
	}
	// One each at the start, and one more per 1.9 s (read) or 0.47 s
	// (write) the round trips take.
	if rd, wr := reads.Load(), writes.Load(); rd > n/4 || wr > n/4 {
		t.Fatalf("%d round trips set the read deadline %d times and the write deadline %d times", n, rd, wr)
	}
}
