// Command mqamqp runs the AMQP 0-9-1 gateway in front of the broker.
//
//	mqamqp [-c amqp.conf] [-p key=value ...]
//
// -p listenPort=0 binds a random port; the boot line prints the real one.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	_ "net/http/pprof" // served only with -pprof
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mqops/mqops/amqp/gateway"
	"github.com/mqops/mqops/broker/boot"
	"github.com/mqops/mqops/broker/config"
	"github.com/mqops/mqops/wire"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, sigs))
}

var command = boot.Command[*config.AMQPGateway]{
	Name:      "mqamqp",
	ConfUsage: "gateway config file (amqp.conf)",
	LogFile:   "amqp.log",
	Load:      config.LoadAMQPGateway,
	LogDir:    func(c *config.AMQPGateway) string { return c.LogDir },
	Flags: func(fs *flag.FlagSet) {
		fs.StringVar(&pprofAddr, "pprof", "", "serve Go profiles on this address, e.g. 127.0.0.1:6061 (off by default)")
	},
}

// pprofAddr is the -pprof flag.
var pprofAddr string

// callTimeout bounds one metadata request to the home broker.
const callTimeout = 5 * time.Second

func run(args []string, stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	d, code := command.Start(args, stdout, stderr)
	if d == nil {
		return code
	}
	defer d.Close()
	if pprofAddr != "" {
		go func() {
			d.Log.Info("serving profiles", "addr", pprofAddr)
			if err := http.ListenAndServe(pprofAddr, nil); err != nil {
				d.Log.Error("pprof server stopped", "err", err)
			}
		}()
	}
	cfg := d.Config
	namesrvs := cfg.NamesrvList()
	if len(namesrvs) == 0 {
		return d.Failed("AMQP gateway", fmt.Errorf("namesrvAddr is required: the gateway finds each vhost's home broker through the name servers"))
	}
	if (cfg.AccessKey == "") != (cfg.SecretKey == "") {
		return d.Failed("AMQP gateway", fmt.Errorf("accessKey and secretKey must be set together"))
	}
	backend := gateway.NewRemote(namesrvs, wire.Credentials{AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey}, callTimeout, d.Log)
	defer backend.Close()
	srv, err := gateway.ListenConfig(cfg, backend, d.Log)
	if err != nil {
		return d.Failed("AMQP gateway", err)
	}
	go srv.Serve()
	line := fmt.Sprintf("The AMQP gateway boot success. address %s, namesrv %s", srv.Addr(), cfg.NamesrvAddr)
	if a := srv.TLSAddr(); a != nil {
		line += fmt.Sprintf(", amqps %s", a)
	}
	d.Announce(line)
	d.Wait(sigs)
	srv.Shutdown(cfg.DrainTimeoutDuration())
	fmt.Fprintln(stdout, "The AMQP gateway shut down cleanly.")
	return 0
}
