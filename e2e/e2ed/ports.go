package e2ed

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// LeasePorts reserves n TCP ports until t ends, for daemons that must
// know their ports before they start (Raft peers) or that a test kills
// and starts again on the same ports.
//
// Binding port 0 and releasing it is not enough: after a kill the port is
// free, and the kernel may hand it to any process binding port 0 or
// connecting out (a broker of a test running in parallel) before the
// restart binds it again ("bind: address already in use"). So the ports
// come from outside the kernel's ephemeral range, where the kernel never
// picks a port by itself, and each is held by an exclusive flock on a file
// named after it in one directory shared by every process using this
// package: no other test, in this process or another, leases it until t
// ends (or its process dies, which drops the lock).
func LeasePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, release, err := defaultLeaser().lease(n)
	if err != nil {
		t.Fatalf("lease %d ports: %v", n, err)
	}
	t.Cleanup(release)
	return ports
}

// leaser hands out ports in [lo, hi] that no other leaser holds and that
// probe finds bindable.
type leaser struct {
	dir    string // one lock file per port
	lo, hi int
	probe  func(port int) bool
}

func defaultLeaser() leaser {
	b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	lo, hi := leaseRange(string(b))
	return leaser{dir: filepath.Join(os.TempDir(), "mqops-e2e-ports"), lo: lo, hi: hi, probe: bindable}
}

// leaseFloor keeps leased ports above the usual service ports.
const leaseFloor = 10000

// leaseRange is the range ports are leased from, given the content of
// /proc/sys/net/ipv4/ip_local_port_range ("32768\t60999"): below the
// ephemeral range, else above it, else (an ephemeral range covering
// nearly everything, or none known) the leases only keep the harness's
// own tests apart.
func leaseRange(ephemeral string) (lo, hi int) {
	var elo, ehi int
	if _, err := fmt.Sscan(ephemeral, &elo, &ehi); err != nil {
		return leaseFloor, 32767 // Linux's default ephemeral range starts at 32768
	}
	switch {
	case elo-leaseFloor >= 1000:
		return leaseFloor, elo - 1
	case 65535-ehi >= 1000:
		return ehi + 1, 65535
	}
	return leaseFloor, 65535
}

// bindable reports whether a listener can bind port on every address, as
// the daemons do: no process outside the harness holds it.
func bindable(port int) bool {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// lease reserves n ports, starting at a random one of the range so that
// concurrent leasers seldom contend; release gives them back.
func (l leaser) lease(n int) (ports []int, release func(), err error) {
	if err := os.MkdirAll(l.dir, 0o777); err != nil {
		return nil, nil, err
	}
	var held []*os.File
	release = func() {
		for _, f := range held {
			f.Close() // drops the flock
		}
	}
	size := l.hi - l.lo + 1
	start := rand.IntN(size)
	for i := 0; i < size && len(ports) < n; i++ {
		port := l.lo + (start+i)%size
		f, err := l.hold(port)
		if err != nil {
			release()
			return nil, nil, err
		}
		if f != nil {
			held = append(held, f)
			ports = append(ports, port)
		}
	}
	if len(ports) < n {
		release()
		return nil, nil, fmt.Errorf("only %d of %d ports free in [%d, %d]", len(ports), n, l.lo, l.hi)
	}
	return ports, release, nil
}

// hold locks port's file; it returns nil without an error when another
// lease holds the port or a process outside the harness has it bound.
func (l leaser) hold(port int) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(l.dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDONLY, 0o666)
	if err != nil {
		return nil, fmt.Errorf("port lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	if !l.probe(port) {
		f.Close()
		return nil, nil
	}
	return f, nil
}
