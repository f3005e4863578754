// Command mqnamesrv runs a RocketMQ-compatible name server.
//
//	mqnamesrv [-c namesrv.conf] [-p key=value ...]
//
// -p listenPort=0 binds a random port; the boot line prints the real one.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/mqops/mqops/broker/acl"
	"github.com/mqops/mqops/broker/boot"
	"github.com/mqops/mqops/broker/config"
	"github.com/mqops/mqops/broker/controller"
	"github.com/mqops/mqops/broker/namesrv"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, sigs))
}

var command = boot.Command[*config.Namesrv]{
	Name:      "mqnamesrv",
	ConfUsage: "name server config file (RocketMQ namesrv.conf format)",
	LogFile:   "namesrv.log",
	Load:      config.LoadNamesrv,
	LogDir:    func(c *config.Namesrv) string { return c.LogDir },
}

// run boots the name server and serves until a signal arrives; it returns
// the process exit code. Split from main so tests can drive it in-process.
func run(args []string, stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	d, code := command.Start(args, stdout, stderr)
	if d == nil {
		return code
	}
	defer d.Close()
	cfg := d.Config
	var gate, ctlGate *acl.Gate
	if cfg.AclEnable {
		svc, err := acl.Start(acl.Options{AclFile: cfg.AclFile, ConfigFile: d.ConfPath, LogDir: cfg.LogDir, Table: acl.NamesrvTable, Log: d.Log})
		if err != nil {
			return d.Failed("name server", err)
		}
		defer svc.Close()
		gate = svc.Gate
		if cfg.EnableControllerInNamesrv {
			ctlGate = svc.GateFor(acl.ControllerTable)
		}
	}
	tcfg, err := cfg.TLSConfig("localhost", "127.0.0.1", cfg.BindAddress)
	if err != nil {
		return d.Failed("name server", err)
	}
	srv, err := namesrv.New(namesrv.Options{
		ACL:                gate,
		ListenAddr:         net.JoinHostPort(cfg.BindAddress, strconv.Itoa(cfg.ListenPort)),
		KVConfigPath:       cfg.KVConfigPath,
		OrderMessageEnable: cfg.OrderMessageEnable,
		ScanInterval:       time.Duration(cfg.ScanNotActiveBrokerInterval) * time.Millisecond,
		BrokerExpiry:       time.Duration(cfg.BrokerChannelExpiredTime) * time.Millisecond,
		Logger:             d.Log,
		TLSMode:            cfg.TLSServerMode,
		TLS:                tcfg,
		Limits:             cfg.Conn.Remoting(),
	})
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		return d.Failed("name server", err)
	}
	if gate == nil {
		acl.WarnIfOpen(d.Log, srv.Addr(), "the name server")
	}
	d.Announce(fmt.Sprintf("The Name Server boot success. serializeType=JSON, address %s", srv.Addr()))
	d.Log.Info("remoting port TLS", "tlsServerMode", cfg.TLSServerMode)
	var ctl *controller.Controller
	if cfg.EnableControllerInNamesrv {
		// The embedded controller's port follows the name server's TLS and
		// rules (with the controller's table).
		if ctl, err = d.StartController(&cfg.Controller, cfg.ControllerScanInterval(), controller.Security{ACL: ctlGate, TLSMode: cfg.TLSServerMode, TLS: tcfg}); err != nil {
			srv.Close()
			return d.Failed("embedded controller", err)
		}
	}

	d.Wait(sigs)
	if ctl != nil {
		ctl.Close()
	}
	srv.Close()
	fmt.Fprintln(stdout, "The Name Server shut down cleanly.")
	return 0
}
