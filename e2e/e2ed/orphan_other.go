//go:build !linux

package e2ed

import "os/exec"

// StartCmd starts cmd. Only on Linux (Pdeathsig) does it die with the
// test binary.
func StartCmd(cmd *exec.Cmd) error { return cmd.Start() }
