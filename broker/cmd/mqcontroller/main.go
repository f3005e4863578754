// Command mqcontroller runs one node of a RocketMQ 5 controller group
// (controller mode: SyncStateSet, master epochs and automatic failover).
//
//	mqcontroller [-c controller.conf] [-p key=value ...]
//
// It serves brokers and admin tools on its controllerDLegerPeers address,
// the same port its Raft peers use.
package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mqops/mqops/broker/boot"
	"github.com/mqops/mqops/broker/config"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, sigs))
}

var command = boot.Command[*config.Controller]{
	Name:      "mqcontroller",
	ConfUsage: "controller config file (RocketMQ controller.conf format)",
	LogFile:   "controller.log",
	Load:      config.LoadController,
	LogDir:    func(c *config.Controller) string { return c.LogDir },
}

// run boots the controller and serves until a signal arrives; it returns
// the process exit code. Split from main so tests can drive it in-process.
func run(args []string, stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	d, code := command.Start(args, stdout, stderr)
	if d == nil {
		return code
	}
	defer d.Close()
	cfg := d.Config
	ctl, err := d.StartController(&cfg.ControllerSettings, time.Duration(cfg.ScanNotActiveBrokerInterval)*time.Millisecond)
	if err != nil {
		return d.Failed("controller", err)
	}
	d.Wait(sigs)
	ctl.Close()
	fmt.Fprintln(stdout, "The Controller shut down cleanly.")
	return 0
}
