// Command mqnsaddr serves the name-server address list that RocketMQ
// clients poll (package nsaddr):
//
//	mqnsaddr -f /etc/mqops/nsaddr [-listen :8080]
//
// Java clients find it with -Drocketmq.namesrv.domain=<host> (port 8080,
// path /rocketmq/nsaddr); Go clients with
// producer.WithNameServerDomain("http://<host>:8080/rocketmq/nsaddr").
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mqops/mqops/broker/nsaddr"
	"github.com/mqops/mqops/version"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, sigs))
}

func run(args []string, stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	fs := flag.NewFlagSet("mqnsaddr", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", "file holding the name-server list (ip:port;ip:port), re-read on every request")
	listen := fs.String("listen", ":8080", "address to serve HTTP on (Java clients use port 8080)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, version.String("mqnsaddr"))
		return 0
	}
	if *file == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: mqnsaddr -f FILE [-listen ADDR]")
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	// A bad list at start is worth saying, but the file may be written
	// later: serving 503 meanwhile keeps clients on what they have.
	if list, err := nsaddr.Read(*file); err != nil {
		log.Warn("name-server list not servable yet", "err", err)
	} else {
		log.Info("serving name-server list", "list", list)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "mqnsaddr: listen %s: %v\n", *listen, err)
		return 1
	}
	srv := &http.Server{
		Handler:           &nsaddr.Handler{File: *file, Log: log},
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      10 * time.Second,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "The mqnsaddr boot success. serializeType=TEXT, listening on %s, list file %s\n", ln.Addr(), *file)
	select {
	case err := <-done:
		fmt.Fprintln(stderr, "mqnsaddr:", err)
		return 1
	case s := <-sigs:
		log.Info("shutting down", "signal", s.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(stderr, "mqnsaddr: shutdown:", err)
		return 1
	}
	return 0
}
