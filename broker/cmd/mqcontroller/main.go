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
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mqops/mqops/broker/acl"
	"github.com/mqops/mqops/broker/boot"
	"github.com/mqops/mqops/broker/config"
	"github.com/mqops/mqops/broker/controller"
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
	var sec controller.Security
	if cfg.AclEnable {
		svc, err := acl.Start(acl.Options{AclFile: cfg.AclFile, ConfigFile: d.ConfPath, LogDir: cfg.LogDir, Table: acl.ControllerTable, Log: d.Log})
		if err != nil {
			return d.Failed("controller", err)
		}
		defer svc.Close()
		sec.ACL = svc.Gate
	}
	host := "127.0.0.1"
	if peers, err := config.ParseControllerPeers(cfg.Peers); err == nil {
		for _, p := range peers {
			if p.ID == cfg.SelfID {
				host, _, _ = net.SplitHostPort(p.Addr)
			}
		}
	}
	tcfg, err := cfg.TLSConfig("localhost", "127.0.0.1", host)
	if err != nil {
		return d.Failed("controller", err)
	}
	sec.TLSMode, sec.TLS = cfg.TLSServerMode, tcfg
	ctl, err := d.StartController(&cfg.ControllerSettings, time.Duration(cfg.ScanNotActiveBrokerInterval)*time.Millisecond, sec)
	if err != nil {
		return d.Failed("controller", err)
	}
	d.Log.Info("controller port", "tlsServerMode", cfg.TLSServerMode, "aclEnable", cfg.AclEnable,
		"signsNotifications", cfg.InnerClientAuthenticationCredentials != "")
	d.Wait(sigs)
	ctl.Close()
	fmt.Fprintln(stdout, "The Controller shut down cleanly.")
	return 0
}
