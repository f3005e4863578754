package server

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mqops/mqops/wire"
	"golang.org/x/sys/unix"
)

// TestAutoCreateTopicOnFullDisk: a send that auto-creates its topic when
// topics.json cannot be written for lack of space is answered 14 with
// the disk-full remark, as the store's refusal would be, never 1.
func TestAutoCreateTopicOnFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounts a tmpfs: needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=32m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	b := openBroker(t, filepath.Join(dir, "store"), map[string]string{"mappedFileSizeCommitLog": "1048576",
		"maxHashSlotNum": "1000", "maxIndexNum": "20000"})
	t.Cleanup(func() { _ = b.Close() })
	f, err := os.Create(filepath.Join(dir, "ballast"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, step := range []int64{1 << 20, 4096, 1} {
		for {
			fi, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			if unix.Fallocate(int(f.Fd()), 0, fi.Size(), step) != nil {
				break
			}
		}
	}
	// Writing topics.json replaces its .bak, which frees about the pages
	// the new copy needs: it fails once the table grows past a page.
	for i := 0; ; i++ {
		if i == 200 {
			t.Fatal("topics.json never met the full disk")
		}
		h := &sendHeader{topic: []byte("NewOnFullDisk" + strconv.Itoa(i)), defaultTopic: []byte("TBW102"), defaultQueueNums: 4}
		tc, code, remark := b.autoCreateTopic(h)
		if tc != nil {
			continue
		}
		if code != wire.ServiceNotAvailable || !strings.Contains(remark, "the broker's disk is full [CL: ") ||
			!strings.Contains(remark, "no space left on device") {
			t.Fatalf("auto-create on a full disk: %d %q", code, remark)
		}
		t.Logf("topic %d: %d %s", i, code, remark)
		return
	}
}
