package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestDaemonsDieWithTestBinary: a test binary that dies without running
// its clean-ups leaves no daemon behind (e2ed.StartCmd: the kernel kills
// them when it ends). A child run of the test binary starts a real name
// server through the harness, prints its pid and dies: by a panic in
// another goroutine, as go test -timeout does, or by SIGKILL.
func TestDaemonsDieWithTestBinary(t *testing.T) {
	for _, how := range []string{"panic", "kill"} {
		t.Run(how, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestOrphanHelper$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), "MQOPS_E2E_ORPHAN_HELPER="+how, "MQOPS_E2E_BIN="+binDir)
			out, err := cmd.CombinedOutput()
			m := regexp.MustCompile(`orphan helper: mqnamesrv pid (\d+)`).FindSubmatch(out)
			if err == nil || m == nil {
				t.Fatalf("the helper should die after printing its name server's pid; err %v:\n%s", err, out)
			}
			pid, _ := strconv.Atoi(string(m[1]))
			t.Cleanup(func() {
				if namesrvRuns(pid) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			})
			waitFor(t, 30*time.Second, fmt.Sprintf("the orphaned name server (pid %d) to die", pid), func() bool { return !namesrvRuns(pid) })
		})
	}
}

// namesrvRuns reports whether pid is a running (not zombie) mqnamesrv.
func namesrvRuns(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...
	open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || end < open || end+2 >= len(stat) {
		return false
	}
	state := stat[end+2]
	return string(stat[open+1:end]) == "mqnamesrv" && state != 'Z' && state != 'X'
}

// TestOrphanHelper is TestDaemonsDieWithTestBinary's child.
func TestOrphanHelper(t *testing.T) {
	how := os.Getenv("MQOPS_E2E_ORPHAN_HELPER")
	if how == "" {
		t.Skip("run by TestDaemonsDieWithTestBinary")
	}
	ns := startNamesrv(t)
	fmt.Printf("orphan helper: mqnamesrv pid %d\n", ns.cmd.Process.Pid)
	switch how {
	case "panic":
		go panic("the test binary dies; no clean-up runs")
	case "kill":
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	select {}
}
