package amqp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/amqp/shovel"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/tlsconf"
)

// shovelOpts are the shovel command's flags.
type shovelOpts struct {
	cfg    shovel.Config
	queues []string
	follow bool
	caFile string
}

// The messages half of a migration (definitions are the other): what
// RabbitMQ's shovel plugin does with ack-mode on-confirm, run once from the
// operator's shell. It speaks AMQP to both ends, so it needs no name server.
func newShovelCmd(f *cmdutil.Factory) *cobra.Command {
	o := &shovelOpts{}
	cmd := &cobra.Command{
		Use:   "shovel --src-uri URI --src-queue QUEUE... --dest-uri URI [--dest-queue Q | --dest-exchange X [--dest-routing-key K]]",
		Short: "Move a queue's messages to another AMQP server (RabbitMQ to mqops, or between clusters), acknowledging each after the destination confirms it",
		Long: `Moves the messages of each source queue, in order, to the destination,
like RabbitMQ's shovel plugin with ack-mode on-confirm: a message is
acknowledged at the source only after the destination confirmed it, so
stopping or killing either server or this command loses nothing (a message
confirmed but not yet acknowledged is moved again). Both ends are AMQP 0-9-1
URIs, RabbitMQ or an mqops gateway (amqps:// with --ca-file for TLS).

By default each queue moves to the queue of the same name at the
destination, through the default exchange: import the definitions first
(mqadmin amqp definitions import). --dest-queue names another queue;
--dest-exchange publishes to an exchange, with --dest-routing-key or each
message's own routing key. Bodies and properties are kept (a user-id naming
another user than the destination's login is left out, as the destination
would refuse it; the count is reported). Messages are published mandatory:
one the destination cannot route stops the command with an error and stays
at the source.

Without --count or --follow, as many messages move as the queue held when
its turn came (the plugin's src-delete-after: queue-length); --follow keeps
moving, every queue at once, until Ctrl-C or SIGTERM, then waits for what is
on its way and exits 0. Exit status 1 when anything failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runShovel(cmd.Context(), f, o) },
	}
	fl := cmd.Flags()
	fl.StringVar(&o.cfg.SrcURI, "src-uri", "", "source, amqp://user:pass@host:port/vhost (required)")
	fl.StringArrayVar(&o.queues, "src-queue", nil, "source queue (repeat for several, moved one after another; required)")
	fl.StringVar(&o.cfg.DestURI, "dest-uri", "", "destination, amqp://user:pass@host:port/vhost (required)")
	fl.StringVar(&o.cfg.DestQueue, "dest-queue", "", "destination queue (default: the source queue's name)")
	fl.StringVar(&o.cfg.DestExchange, "dest-exchange", "", "destination exchange instead of a queue")
	fl.StringVar(&o.cfg.DestKey, "dest-routing-key", "", "routing key with --dest-exchange (default: each message's own)")
	fl.IntVar(&o.cfg.Window, "window", shovel.DefaultWindow, "messages taken from the source and not yet confirmed by the destination, at most (memory: up to this many messages)")
	fl.Int64Var(&o.cfg.Count, "count", 0, "move this many messages of each queue (default: as many as it held when its turn came)")
	fl.BoolVar(&o.follow, "follow", false, "keep moving until interrupted (Ctrl-C, SIGTERM)")
	fl.StringVar(&o.caFile, "ca-file", "", "PEM CA bundle to verify amqps:// servers with (default: the system's)")
	for _, n := range []string{"src-uri", "src-queue", "dest-uri"} {
		_ = cmd.MarkFlagRequired(n)
	}
	f.AddOutputFlag(cmd, true)
	return cmd
}

func runShovel(ctx context.Context, f *cmdutil.Factory, o *shovelOpts) error {
	switch {
	case o.follow && o.cfg.Count != 0:
		return errors.New("--follow and --count exclude each other")
	case o.cfg.Count < 0:
		return fmt.Errorf("--count %d: want 1 or more", o.cfg.Count)
	case o.cfg.Window < 1 || o.cfg.Window > 65535:
		return fmt.Errorf("--window %d: want 1 to 65535 (a prefetch count)", o.cfg.Window)
	case len(o.queues) > 1 && o.cfg.DestQueue != "":
		return errors.New("--dest-queue takes one --src-queue; without it each queue moves to its namesake")
	}
	if o.follow {
		o.cfg.Count = -1
	}
	if o.caFile != "" {
		tc, err := tlsconf.Client(tlsconf.ClientOptions{CAFile: o.caFile, CAFileKey: "--ca-file"})
		if err != nil {
			return err
		}
		o.cfg.TLS = tc
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	p := f.Printer()
	results := make([]shovel.Result, 0, len(o.queues))
	var runErr error
	prog := f.Progress("shovel")
	if o.follow {
		// Following never ends on its own: every queue at once.
		results = results[:len(o.queues)]
		errs := make([]error, len(o.queues))
		moved := make([]atomic.Int64, len(o.queues))
		var wg sync.WaitGroup
		for i, q := range o.queues {
			cfg := o.cfg
			cfg.SrcQueue = q
			cfg.Progress = func(n int64) {
				moved[i].Store(n)
				var sum int64
				for j := range moved {
					sum += moved[j].Load()
				}
				prog.Update("shovel: %d moved", sum)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = shovel.Run(ctx, cfg)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				runErr = errors.Join(runErr, fmt.Errorf("shovel %s: %d moved, then: %w", o.queues[i], results[i].Moved, err))
			}
		}
	} else {
		for _, q := range o.queues {
			cfg := o.cfg
			cfg.SrcQueue = q
			cfg.Progress = func(n int64) { prog.Update("shovel %s: %d moved", q, n) }
			r, err := shovel.Run(ctx, cfg)
			results = append(results, r)
			if err != nil {
				runErr = fmt.Errorf("shovel %s: %d moved, then: %w", q, r.Moved, err)
				break
			}
		}
	}
	prog.Stop()
	if p.IsJSON() {
		if err := p.JSON(results); err != nil {
			return err
		}
		return runErr
	}
	var rows [][]string
	for _, r := range results {
		if r.Moved == 0 && r.Wanted == 0 && runErr != nil {
			continue // a queue that failed before moving: the error says it all
		}
		wanted := "until stopped"
		if r.Wanted >= 0 {
			wanted = strconv.FormatInt(r.Wanted, 10)
		}
		rate := "-"
		if s := r.Elapsed.Seconds(); s > 0 && r.Moved > 0 {
			rate = strconv.FormatFloat(float64(r.Moved)/s, 'f', 0, 64)
		}
		rows = append(rows, []string{r.Source, r.Destination, strconv.FormatInt(r.Moved, 10), wanted,
			r.Elapsed.Round(time.Millisecond).String(), rate, strconv.FormatInt(r.UserIDDropped, 10)})
	}
	if len(rows) == 0 {
		return runErr
	}
	if err := p.Table([]string{"#Source Queue", "#Destination", "#Moved", "#Wanted", "#Elapsed", "#Msgs/s", "#User-id Dropped"}, rows); err != nil {
		return err
	}
	return runErr
}
