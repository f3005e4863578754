// Command mqnamesrv runs a RocketMQ-compatible name server.
//
//	mqnamesrv [-c namesrv.conf] [-p key=value ...]
//
// -p listenPort=0 binds a random port; the boot line prints the real one.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/mqops/mqops/broker/config"
	"github.com/mqops/mqops/broker/controller"
	"github.com/mqops/mqops/broker/logging"
	"github.com/mqops/mqops/broker/namesrv"
	"github.com/mqops/mqops/version"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, sigs))
}

// run boots the name server and serves until a signal arrives; it returns
// the process exit code. Split from main so tests can drive it in-process.
func run(args []string, stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	fs := flag.NewFlagSet("mqnamesrv", flag.ContinueOnError)
	fs.SetOutput(stderr)
	overrides := config.Overrides{}
	confPath := fs.String("c", "", "name server config file (RocketMQ namesrv.conf format)")
	fs.Var(overrides, "p", "override one config key, key=value (repeatable)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, version.String("mqnamesrv"))
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mqnamesrv: unexpected argument %q\n", fs.Arg(0))
		return 2
	}

	cfg, warnings, err := config.LoadNamesrv(*confPath, overrides)
	if err != nil {
		fmt.Fprintln(stderr, "mqnamesrv:", err)
		return 1
	}
	for _, w := range warnings {
		fmt.Fprintln(stderr, "mqnamesrv: warning:", w)
	}
	log, logClose, err := logging.Open(cfg.LogDir, "namesrv.log", slog.LevelInfo, logging.WithStderr())
	if err != nil {
		fmt.Fprintln(stderr, "mqnamesrv:", err)
		return 1
	}
	defer logClose.Close()
	for _, w := range warnings {
		log.Warn("[CONFIG] " + w)
	}

	srv, err := namesrv.New(namesrv.Options{
		ListenAddr:         net.JoinHostPort(cfg.BindAddress, strconv.Itoa(cfg.ListenPort)),
		KVConfigPath:       cfg.KVConfigPath,
		OrderMessageEnable: cfg.OrderMessageEnable,
		ScanInterval:       time.Duration(cfg.ScanNotActiveBrokerInterval) * time.Millisecond,
		BrokerExpiry:       time.Duration(cfg.BrokerChannelExpiredTime) * time.Millisecond,
		Logger:             log,
	})
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		log.Error("[BOOT_FAILED] name server failed to start", "err", err)
		fmt.Fprintln(stderr, "mqnamesrv:", err)
		return 1
	}
	msg := fmt.Sprintf("The Name Server boot success. serializeType=JSON, address %s", srv.Addr())
	fmt.Fprintln(stdout, msg)
	log.Info(msg)
	var ctl *controller.Controller
	if cfg.EnableControllerInNamesrv {
		ctl, err = controller.Start(&cfg.Controller, cfg.ControllerScanInterval(), log)
		if err != nil {
			log.Error("[BOOT_FAILED] embedded controller failed to start", "err", err)
			fmt.Fprintln(stderr, "mqnamesrv:", err)
			srv.Close()
			return 1
		}
		msg := fmt.Sprintf("The Controller boot success. group %s, self %s, address %s", cfg.Controller.Group, cfg.Controller.SelfID, ctl.Addr())
		fmt.Fprintln(stdout, msg)
		log.Info(msg)
	}

	s := <-sigs
	log.Info("shutting down", "signal", s.String())
	if ctl != nil {
		ctl.Close()
	}
	srv.Close()
	fmt.Fprintln(stdout, "The Name Server shut down cleanly.")
	return 0
}
