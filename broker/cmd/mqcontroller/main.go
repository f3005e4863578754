// Command mqcontroller runs one node of a RocketMQ 5 controller group
// (controller mode: SyncStateSet, master epochs and automatic failover).
//
//	mqcontroller [-c controller.conf] [-p key=value ...]
//
// It serves brokers and admin tools on its controllerDLegerPeers address,
// the same port its Raft peers use.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mqops/mqops/broker/config"
	"github.com/mqops/mqops/broker/controller"
	"github.com/mqops/mqops/broker/logging"
	"github.com/mqops/mqops/version"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, sigs))
}

// run boots the controller and serves until a signal arrives; it returns
// the process exit code.
func run(args []string, stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	fs := flag.NewFlagSet("mqcontroller", flag.ContinueOnError)
	fs.SetOutput(stderr)
	overrides := config.Overrides{}
	confPath := fs.String("c", "", "controller config file (RocketMQ controller.conf format)")
	fs.Var(overrides, "p", "override one config key, key=value (repeatable)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, version.String("mqcontroller"))
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mqcontroller: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, warnings, err := config.LoadController(*confPath, overrides)
	if err != nil {
		fmt.Fprintln(stderr, "mqcontroller:", err)
		return 1
	}
	for _, w := range warnings {
		fmt.Fprintln(stderr, "mqcontroller: warning:", w)
	}
	log, logClose, err := logging.Open(cfg.LogDir, "controller.log", slog.LevelInfo, logging.WithStderr())
	if err != nil {
		fmt.Fprintln(stderr, "mqcontroller:", err)
		return 1
	}
	defer logClose.Close()
	for _, w := range warnings {
		log.Warn("[CONFIG] " + w)
	}
	ctl, err := controller.Start(&cfg.ControllerSettings, time.Duration(cfg.ScanNotActiveBrokerInterval)*time.Millisecond, log)
	if err != nil {
		log.Error("[BOOT_FAILED] controller failed to start", "err", err)
		fmt.Fprintln(stderr, "mqcontroller:", err)
		return 1
	}
	msg := fmt.Sprintf("The Controller boot success. group %s, self %s, address %s", cfg.Group, cfg.SelfID, ctl.Addr())
	fmt.Fprintln(stdout, msg)
	log.Info(msg)

	s := <-sigs
	log.Info("shutting down", "signal", s.String())
	ctl.Close()
	fmt.Fprintln(stdout, "The Controller shut down cleanly.")
	return 0
}
