package fileutil

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestTryLockExcludesSecondHolder(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	// flock belongs to the open file description, so a second open in this
	// process conflicts exactly as a second daemon would.
	if _, err := TryLock(p); !errors.Is(err, ErrLocked) {
		t.Fatalf("second TryLock: %v, want ErrLocked", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := TryLock(p)
	if err != nil {
		t.Fatalf("TryLock after Unlock: %v", err)
	}
	l2.Unlock()
}

func TestLockWaitWaitsForRelease(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		l2, err := LockWait(p)
		if err == nil {
			l2.Unlock()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("LockWait returned while the lock was held: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	l.Unlock()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

func TestOpenMappedCreatesReservesAndPersists(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "seg")
	const size = 1 << 20
	m, err := OpenMapped(p, size, true)
	if err != nil {
		t.Fatal(err)
	}
	if m.OrigSize != 0 || len(m.Data) != size {
		t.Fatalf("orig %d, mapped %d", m.OrigSize, len(m.Data))
	}
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 < size {
		t.Fatalf("%d bytes reserved, want %d: a store into an unreserved block of a full disk raises SIGBUS", st.Blocks*512, size)
	}
	copy(m.Data[4096:], "hello")
	if err := m.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenMapped(p, size, true); !errors.Is(err, os.ErrExist) {
		t.Fatalf("create over an existing file: %v", err)
	}
	b, _ := os.ReadFile(p)
	if !bytes.Equal(b[4096:4101], []byte("hello")) {
		t.Fatal("write through the mapping not in the file")
	}
}

func TestOpenMappedExtendsShortAndRefusesLong(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("abc"), 0o644)
	m, err := OpenMapped(short, 8192, false)
	if err != nil {
		t.Fatal(err)
	}
	if m.OrigSize != 3 || string(m.Data[:3]) != "abc" || m.Data[3] != 0 {
		t.Fatalf("orig %d data %q", m.OrigSize, m.Data[:4])
	}
	m.Close()
	long := filepath.Join(dir, "long")
	os.WriteFile(long, make([]byte, 10000), 0o644)
	if _, err := OpenMapped(long, 8192, false); err == nil {
		t.Fatal("a file longer than the size was mapped")
	}
	if fi, _ := os.Stat(long); fi.Size() != 10000 {
		t.Fatal("refused file was changed")
	}
}

func TestPunchHoleZeroesAndKeepsReservation(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	const size = 256 << 10
	m, err := OpenMapped(p, size, true)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for i := range m.Data {
		m.Data[i] = 0xAB
	}
	if err := m.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := PunchHole(m.File, 64<<10, 128<<10); err != nil {
		t.Skipf("file system cannot punch holes: %v", err)
	}
	if m.Data[64<<10-1] != 0xAB || m.Data[64<<10] != 0 || m.Data[192<<10-1] != 0 || m.Data[192<<10] != 0xAB {
		t.Fatal("punched range not zero through the mapping, or neighbours touched")
	}
	var st syscall.Stat_t
	syscall.Stat(p, &st)
	if st.Size != size || st.Blocks*512 < size {
		t.Fatalf("size %d, %d bytes reserved after punching", st.Size, st.Blocks*512)
	}
}

func TestWriteFileReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ck")
	if err := WriteFile(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if string(b) != "two" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("content %q mode %v: want the new content and the old file's mode", b, fi.Mode())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*")); len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
	// A write that cannot complete leaves the old content.
	if err := WriteFile(filepath.Join(p, "sub"), []byte("x"), 0o644); err == nil {
		t.Fatal("write under a regular file succeeded")
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("content %q after a failed write", b)
	}
}

// TestWriteZerosReservesOrFails: the fallback of Preallocate for file
// systems without fallocate allocates real blocks, and on a full file
// system fails with ENOSPC instead of leaving a sparse file whose mapped
// pages would fault (SIGBUS) when first written.
func TestWriteZerosReservesOrFails(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounts a tmpfs: needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, 0) })
	f, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := writeZeros(f, 0, 256<<10); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 < 256<<10 || st.Size != 256<<10 {
		t.Fatalf("size %d, %d bytes allocated: want 262144 reserved", st.Size, st.Blocks*512)
	}
	if err := writeZeros(f, 256<<10, 2<<20); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("zero-filling past a full tmpfs: %v, want ENOSPC", err)
	}
}
