// Command mqbroker runs a RocketMQ-compatible broker.
//
//	mqbroker -c broker.conf [-n "ip:port;ip:port"] [-p key=value ...] [--enable-proxy] [--accept-data-loss]
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // served only with -pprof
	"os"
	"os/signal"
	"syscall"

	"github.com/mqops/mqops/broker/acl"
	"github.com/mqops/mqops/broker/config"
	"github.com/mqops/mqops/broker/logging"
	"github.com/mqops/mqops/broker/server"
	"github.com/mqops/mqops/version"
)

func main() {
	os.Exit(run())
}

func run() int {
	overrides := config.Overrides{}
	confPath := flag.String("c", "", "broker config file (RocketMQ broker.conf format)")
	namesrv := flag.String("n", "", "name server address list, e.g. 192.168.0.1:9876;192.168.0.2:9876")
	flag.Var(overrides, "p", "override one config key, key=value (repeatable)")
	pprofAddr := flag.String("pprof", "", "serve Go profiles on this address, e.g. 127.0.0.1:6060 (off by default)")
	showVersion := flag.Bool("version", false, "print the version and exit")
	enableProxy := flag.Bool("enable-proxy", false, "serve the RocketMQ 5 gRPC protocol on grpcServerPort (as Java's mqbroker --enable-proxy; same as enableProxy=true)")
	acceptLoss := flag.Bool("accept-data-loss", false,
		"start although commit-log data the checkpoint or consume queues vouch for is missing (logged at WARN, discarded); for one start, after looking")
	flag.Parse()
	if *showVersion {
		fmt.Println(version.String("mqbroker"))
		return 0
	}
	if *namesrv != "" {
		overrides["namesrvAddr"] = *namesrv
	}
	if *enableProxy {
		overrides["enableProxy"] = "true"
	}

	cfg, warnings, err := config.LoadBroker(*confPath, overrides)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mqbroker:", err)
		return 1
	}
	// Settings changed at run time (mqadmin updateBrokerConfig) apply over
	// the file; -p and -n flags still win.
	updates, dropped, err := server.LoadRuntimeConfig(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mqbroker:", err)
		return 1
	}
	if len(updates) > 0 {
		runtimePath := server.RuntimeConfigPath(cfg)
		for k, v := range overrides {
			updates[k] = v
		}
		if cfg, warnings, err = config.LoadBroker(*confPath, updates); err != nil {
			fmt.Fprintf(os.Stderr, "mqbroker: %s: %v\n", runtimePath, err)
			return 1
		}
	}
	warnings = append(warnings, dropped...)
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "mqbroker: warning:", w)
	}
	blog, bclose, err := logging.Open(cfg.LogDir, "broker.log", slog.LevelInfo, logging.WithStderr())
	if err != nil {
		fmt.Fprintln(os.Stderr, "mqbroker:", err)
		return 1
	}
	defer bclose.Close()
	slogger, sclose, err := logging.Open(cfg.LogDir, "store.log", slog.LevelInfo, logging.WithCopy("storeerror.log", slog.LevelWarn))
	if err != nil {
		fmt.Fprintln(os.Stderr, "mqbroker:", err)
		return 1
	}
	defer sclose.Close()
	// Logger RocketmqFlowControl: Java names it (LoggerName.FLOW_CONTROL_LOGGER_NAME) and never uses it.
	flog, fclose, err := logging.Open(cfg.LogDir, "flowcontrol.log", slog.LevelInfo)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mqbroker:", err)
		return 1
	}
	defer fclose.Close()
	statsOut, err := logging.OpenWriter(cfg.LogDir, "stats.log")
	if err != nil {
		fmt.Fprintln(os.Stderr, "mqbroker:", err)
		return 1
	}
	defer statsOut.Close()
	// Logger RocketmqWaterMark: Java's four queue lines every second.
	waterMark, err := logging.OpenWriter(cfg.LogDir, "watermark.log")
	if err != nil {
		fmt.Fprintln(os.Stderr, "mqbroker:", err)
		return 1
	}
	defer waterMark.Close()
	for _, w := range warnings {
		blog.Warn("[CONFIG] " + w)
	}

	var aclSvc *acl.Service
	if cfg.AclEnable {
		if aclSvc, err = acl.Start(acl.Options{AclFile: cfg.AclFile, ConfigFile: *confPath, LogDir: cfg.LogDir, Table: acl.BrokerTable, Log: blog}); err != nil {
			blog.Error("[BOOT_FAILED] broker failed to start", "err", err)
			fmt.Fprintln(os.Stderr, "mqbroker:", err)
			return 1
		}
		defer aclSvc.Close()
	}
	opts := server.Options{Config: cfg, Log: blog, StoreLog: slogger, StatsOut: statsOut, FlowLog: flog, WaterMarkOut: waterMark, AcceptDataLoss: *acceptLoss}
	if aclSvc != nil {
		opts.ACL = aclSvc.Gate
	}
	b, err := server.New(opts)
	if err != nil {
		blog.Error("[BOOT_FAILED] broker failed to start", "err", err)
		fmt.Fprintln(os.Stderr, "mqbroker:", err)
		return 1
	}
	if *pprofAddr != "" {
		go func() {
			blog.Info("serving profiles", "addr", *pprofAddr)
			if err := http.ListenAndServe(*pprofAddr, nil); err != nil {
				blog.Error("pprof server stopped", "err", err)
			}
		}()
	}
	// Before the ready line: a Ctrl-C right after it must stop the broker
	// cleanly, not kill it with the default action.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	b.Start()
	if aclSvc == nil {
		acl.WarnIfOpen(blog, b.ListenAddr(), "the broker")
	} else if cfg.EnableHTTPGateway {
		blog.Info("[ACL] the HTTP gateway (enableHttpGateway) is authenticated: MQv2-HMAC-SHA1 signatures, or HTTP Basic over TLS")
	}
	if a := b.GrpcAddr(); a != "" {
		fmt.Printf("The broker's gRPC service (RocketMQ 5 clients) listens on %s, tlsServerMode=%s\n", a, cfg.TLSServerMode)
	}
	if a := b.HTTPGatewayAddr(); a != "" {
		fmt.Printf("The broker's HTTP/JSON gateway listens on %s\n", a)
	}
	if a := b.AMQPGatewayAddr(); a != "" {
		fmt.Printf("The broker's AMQP 0-9-1 gateway listens on %s\n", a)
	}
	msg := fmt.Sprintf("The broker[%s, %s] boot success. serializeType=JSON", cfg.BrokerName, b.Addr())
	if cfg.NamesrvAddr != "" {
		msg += " and name server is " + cfg.NamesrvAddr
	}
	fmt.Println(msg)
	blog.Info(msg)

	s := <-sig
	blog.Info("shutting down", "signal", s.String())
	if err := b.Close(); err != nil {
		blog.Error("[SHUTDOWN] store close failed", "err", err)
		return 1
	}
	fmt.Println("The broker shut down cleanly.")
	return 0
}
