package e2ed

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
)

// anyPort is a probe that finds every port bindable, so that these tests
// see only the leases.
func anyPort(int) bool { return true }

func TestLeaseRange(t *testing.T) {
	for _, c := range []struct {
		in     string
		lo, hi int
	}{
		{"32768\t60999\n", 10000, 32767}, // Linux's default: below the ephemeral range
		{"1024 60000", 60001, 65535},     // nothing below: above it
		{"1024 65000", 10000, 65535},     // no room on either side
		{"", 10000, 32767},               // not Linux
	} {
		if lo, hi := leaseRange(c.in); lo != c.lo || hi != c.hi {
			t.Errorf("leaseRange(%q) = [%d, %d], want [%d, %d]", c.in, lo, hi, c.lo, c.hi)
		}
	}
}

// TestLeaseExclusive: a leased port is not leased again until released,
// whichever leaser asks; once released it can be.
func TestLeaseExclusive(t *testing.T) {
	l := leaser{dir: t.TempDir(), lo: 20000, hi: 20003, probe: anyPort}
	a, releaseA, err := l.lease(2)
	if err != nil {
		t.Fatal(err)
	}
	b, releaseB, err := l.lease(2)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseB()
	all := append(slices.Clone(a), b...)
	slices.Sort(all)
	if !slices.Equal(all, []int{20000, 20001, 20002, 20003}) {
		t.Fatalf("leases %v and %v: want the four ports of the range once each", a, b)
	}
	if p, _, err := l.lease(1); err == nil {
		t.Fatalf("leased %v from a range whose ports are all held", p)
	}
	releaseA()
	c, releaseC, err := l.lease(2)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	defer releaseC()
	slices.Sort(a)
	slices.Sort(c)
	if !slices.Equal(a, c) {
		t.Fatalf("after releasing %v, leased %v", a, c)
	}
}

// TestLeaseSkipsBoundPort: a port some process outside the harness has
// bound is not leased.
func TestLeaseSkipsBoundPort(t *testing.T) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	l := leaser{dir: t.TempDir(), lo: port, hi: port, probe: bindable}
	if p, _, err := l.lease(1); err == nil {
		t.Fatalf("leased %v, which a listener holds", p)
	}
}

// TestLeaseAcrossProcesses: a port another process leased is not leased
// here while that process lives, and is once it is killed (a test binary
// that crashes leaks no lease).
func TestLeaseAcrossProcesses(t *testing.T) {
	if os.Getenv("E2ED_LEASE_DIR") != "" {
		t.Skip("the helper process's own run")
	}
	dir := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^TestLeaseHelper$")
	child.Env = append(os.Environ(), "E2ED_LEASE_DIR="+dir)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := child.StdinPipe() // the helper holds its lease until this closes
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "leased 20000\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	l := leaser{dir: dir, lo: 20000, hi: 20000, probe: anyPort}
	if p, _, err := l.lease(1); err == nil {
		t.Fatalf("leased %v, which the helper process holds", p)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	p, release, err := l.lease(1)
	if err != nil {
		t.Fatalf("after the helper was killed: %v", err)
	}
	release()
	if p[0] != 20000 {
		t.Fatalf("leased %v", p)
	}
}

// TestLeaseHelper is TestLeaseAcrossProcesses's other process: it leases
// port 20000 of E2ED_LEASE_DIR and holds it until stdin closes or it is
// killed.
func TestLeaseHelper(t *testing.T) {
	dir := os.Getenv("E2ED_LEASE_DIR")
	if dir == "" {
		t.Skip("run by TestLeaseAcrossProcesses")
	}
	l := leaser{dir: dir, lo: 20000, hi: 20000, probe: anyPort}
	p, release, err := l.lease(1)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	os.Stdout.WriteString("leased " + strconv.Itoa(p[0]) + "\n")
	bufio.NewReader(os.Stdin).ReadString('\n')
}
