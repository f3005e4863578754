package remoting

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Limits bound what peers can make a server hold. They are mqops settings:
// Java's NettyServerConfig has no connection limit and no frame budget, and
// its write-buffer water marks only stop writes, not reads. Zero fields take
// the defaults WithDefaults describes.
type Limits struct {
	// MaxConns caps the server's connections; default: the descriptor
	// limit (RLIMIT_NOFILE) minus FDReserve.
	MaxConns int
	// MaxConnsPerAddr caps the connections of one source IP address;
	// default MaxConns/4.
	MaxConnsPerAddr int
	// FDReserve descriptors are left to everything but accepted
	// connections (store segments and consume queues, configuration
	// writes, logs, outgoing connections): a connection is refused when
	// accepting it left fewer free. Default: an eighth of RLIMIT_NOFILE,
	// at least 256.
	FDReserve int
	// FrameBudget bounds the bytes of frames larger than the read buffer
	// (64 KiB) being read at once, over all connections. Default 256 MiB.
	FrameBudget int64
	// HighWater and LowWater: a connection with more than HighWater bytes
	// of output its peer has not taken stops being read (and its held
	// pulls stay held) until that falls below LowWater. Defaults 8 MiB and
	// 4 MiB; a negative HighWater turns water marks off.
	HighWater, LowWater int
}

// Default limits that need no system figure.
const (
	DefaultFrameBudget = 256 << 20
	DefaultHighWater   = 8 << 20
	DefaultLowWater    = 4 << 20
	minFDReserve       = 256
)

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	nofile := openFileLimit()
	if l.FDReserve <= 0 {
		l.FDReserve = max(minFDReserve, nofile/8)
	}
	if l.MaxConns <= 0 {
		l.MaxConns = max(nofile-l.FDReserve, 1)
	}
	if l.MaxConnsPerAddr <= 0 {
		l.MaxConnsPerAddr = max(l.MaxConns/4, 1)
	}
	if l.FrameBudget <= 0 {
		l.FrameBudget = DefaultFrameBudget
	}
	if l.HighWater == 0 {
		l.HighWater = DefaultHighWater
	}
	if l.LowWater <= 0 || l.LowWater > l.HighWater {
		l.LowWater = min(DefaultLowWater, l.HighWater/2)
	}
	return l
}

// openFileLimit is the process's soft RLIMIT_NOFILE (Go raises it to the
// hard limit at start-up), or a conservative guess if it cannot be read.
func openFileLimit() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == unix.RLIM_INFINITY {
		return 1 << 16
	}
	return int(min(rl.Cur, 1<<30))
}

// ServerStats are a server's connection counters.
type ServerStats struct {
	Conns        int    // open connections
	Refused      uint64 // connections closed at accept by a limit, since start
	Stalled      int64  // connections not being read now: their peer does not take its output
	StalledTotal uint64 // times a connection stalled, since start
	Paused       int64  // connections a handler paused now (PauseReading: a produce quota's delay)
	PausedTotal  uint64 // times a connection was paused, since start
	FrameBytes   int64  // bytes of large frames being read now (FrameBudget)
}

// admission counts connections per daemon and per source address.
type admission struct {
	limits   Limits
	nofile   int
	perAddr  map[netip.Addr]int
	total    int
	refused  atomic.Uint64
	stalled  atomic.Int64
	stallsN  atomic.Uint64
	paused   atomic.Int64
	pausesN  atomic.Uint64
	lastLog  time.Time
	suppress int
	budget   *frameBudget
}

// admit decides on a new connection under the server's lock: it returns
// the reason to refuse it, or "" after counting it against addr.
func (a *admission) admit(nc net.Conn, addr netip.Addr) string {
	switch {
	case a.total >= a.limits.MaxConns:
		return "maxConnections"
	case a.perAddr[addr] >= a.limits.MaxConnsPerAddr:
		return "maxConnectionsPerAddress"
	case a.nofile-socketFD(nc) <= a.limits.FDReserve:
		// The kernel hands out the lowest free descriptor, so every one
		// below this socket's is in use: fewer than the reserve are left.
		return "connectionFdReserve"
	}
	a.total++
	a.perAddr[addr]++
	return ""
}

// leave uncounts a connection admit counted.
func (a *admission) leave(addr netip.Addr) {
	a.total--
	if a.perAddr[addr] <= 1 {
		delete(a.perAddr, addr)
	} else {
		a.perAddr[addr]--
	}
}

// refusalLogEvery rate-limits the refusal warning: a connection flood must
// not become a log flood.
const refusalLogEvery = 10 * time.Second

// noteRefusal counts a refusal under the server's lock and reports whether
// to log it now, with how many were not logged since the last line.
func (a *admission) noteRefusal(now time.Time) (log bool, suppressed int) {
	a.refused.Add(1)
	if now.Sub(a.lastLog) < refusalLogEvery {
		a.suppress++
		return false, 0
	}
	a.lastLog = now
	suppressed, a.suppress = a.suppress, 0
	return true, suppressed
}

// sourceAddr is the IP address a connection comes from; connections that
// have none (tests' pipes) share the zero address.
func sourceAddr(nc net.Conn) netip.Addr {
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

// socketFD is nc's descriptor number, 0 when nc is not a socket.
func socketFD(nc net.Conn) int {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	fd := 0
	_ = rc.Control(func(f uintptr) { fd = int(f) })
	return fd
}

// frameBudget is a byte semaphore for frames read outside the read buffer.
// A frame reserves its whole announced length before its body is read,
// and its buffer still grows only as bytes arrive: readers never hold part
// of what they need while waiting for the rest, so they cannot deadlock,
// and memory stays within the budget whatever lengths peers announce.
type frameBudget struct {
	mu    sync.Mutex
	limit int64
	used  int64
	freed chan struct{} // closed and replaced when bytes are released
}

func newFrameBudget(limit int64) *frameBudget {
	return &frameBudget{limit: limit, freed: make(chan struct{})}
}

// tryAcquire reserves n bytes if they are free. A frame larger than the
// whole budget is let through when nothing else is reserved.
func (b *frameBudget) tryAcquire(n int64) (ok bool, freed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n <= b.limit || b.used == 0 {
		b.used += n
		return true, nil
	}
	return false, b.freed
}

// acquire reserves n bytes, waiting until they are free or done is closed.
func (b *frameBudget) acquire(n int64, done <-chan struct{}) bool {
	for {
		ok, freed := b.tryAcquire(n)
		if ok {
			return true
		}
		select {
		case <-freed:
		case <-done:
			return false
		}
	}
}

func (b *frameBudget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

func (b *frameBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
