package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRaceReportFailsTest: a daemon that prints a race detector report
// fails the test that started it, even when the test itself passes. The
// test binary runs its helper test in a child with a stand-in daemon (sh
// printing the ready line, then a report or not) and reads the verdict.
func TestRaceReportFailsTest(t *testing.T) {
	for _, tc := range []struct {
		mode     string
		wantFail bool
	}{{"race", true}, {"clean", false}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRaceReportHelper$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "MQOPS_E2E_RACE_HELPER="+tc.mode, "MQOPS_E2E_BIN="+binDir)
		out, err := cmd.CombinedOutput()
		detected := strings.Contains(string(out), "sh: data race detected:") && strings.Contains(string(out), "Write at 0x00c000 by goroutine 7")
		if (err != nil) != tc.wantFail || detected != tc.wantFail {
			t.Errorf("%s daemon: want failed=%v with the report quoted, got err %v:\n%s", tc.mode, tc.wantFail, err, out)
		}
	}
}

// TestRaceReportHelper is the child of TestRaceReportFailsTest.
func TestRaceReportHelper(t *testing.T) {
	mode := os.Getenv("MQOPS_E2E_RACE_HELPER")
	if mode == "" {
		t.Skip("run by TestRaceReportFailsTest")
	}
	// The report comes before the ready line, so it is in the output by the
	// time the test ends and kills the process.
	script := `echo "The Name Server boot success. serializeType=JSON, address 127.0.0.1:1"; exec sleep 60`
	if mode == "race" {
		script = `printf '==================\nWARNING: DATA RACE\nWrite at 0x00c000 by goroutine 7:\n' >&2; ` + script
	}
	p := startExe(t, namesrvReady, "sh", "/bin/sh", "-c", script)
	if p.addr != "127.0.0.1:1" {
		t.Fatalf("ready line not read: %q", p.addr)
	}
}
