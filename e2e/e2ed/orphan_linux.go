package e2ed

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

type startCall struct {
	cmd  *exec.Cmd
	done chan<- error
}

// forker is a goroutine locked for good to an OS thread of its own, which
// therefore lives as long as the process. The kernel sends Pdeathsig when
// the thread that forked the child exits, not the process
// (golang/go#27505), and the Go runtime ends the thread of a goroutine
// that exits while locked to it: a child forked from an ordinary
// goroutine could be killed in the middle of its test.
var forker = sync.OnceValue(func() chan<- startCall {
	calls := make(chan startCall)
	go func() {
		runtime.LockOSThread() // never unlocked
		for c := range calls {
			c.done <- c.cmd.Start()
		}
	}()
	return calls
})

// StartCmd starts cmd so that the kernel kills it (SIGKILL) when the test
// binary ends, however it ends: a panic in another goroutine (as go test
// -timeout raises), os.Exit or a SIGKILL run no clean-up that would stop
// it. Other SysProcAttr settings of cmd are kept.
func StartCmd(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	done := make(chan error, 1)
	forker() <- startCall{cmd, done}
	return <-done
}
