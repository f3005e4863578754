package e2ed

import (
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// onEndingThread runs f in a goroutine that exits locked to its thread,
// so that the runtime ends that thread after f returns, and returns the
// thread's id. The runtime keeps the main thread instead: a goroutine
// that lands there holds it while another one tries.
func onEndingThread(f func()) int {
	tid := make(chan int)
	go func() {
		runtime.LockOSThread() // never unlocked unless this is the main thread
		if syscall.Gettid() == os.Getpid() {
			tid <- onEndingThread(f)
			runtime.UnlockOSThread()
			return
		}
		f()
		tid <- syscall.Gettid()
	}()
	return <-tid
}

// TestStartOutlivesStartingThread: a daemon started from a thread that
// then ends keeps running (Pdeathsig follows the forking thread,
// golang/go#27505; Start forks from a thread that lives as long as the
// process). The stand-in daemon answers SIGUSR1 with a line: once SIGKILL
// is pending it runs no more code, so an answer after the thread is gone
// shows none was sent.
func TestStartOutlivesStartingThread(t *testing.T) {
	script := `trap 'echo pong' USR1; echo ready; while :; do sleep 0.1; done`
	var p *Proc
	tid := onEndingThread(func() { p = Start(t, regexp.MustCompile(`(ready)`), nil, "sh", "/bin/sh", "-c", script) })
	t.Cleanup(p.Kill)
	WaitFor(t, 30*time.Second, "the starting thread to end", func() bool {
		_, err := os.Stat("/proc/self/task/" + strconv.Itoa(tid))
		return os.IsNotExist(err)
	})
	if err := p.Cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatalf("signal the daemon: %v", err)
	}
	WaitFor(t, 30*time.Second, "the daemon's answer", func() bool { return p.Exited() || strings.Contains(p.Out.String(), "pong") })
	if p.Exited() {
		t.Fatalf("the daemon died with the thread that started it: %v", p.Cmd.ProcessState)
	}
}
