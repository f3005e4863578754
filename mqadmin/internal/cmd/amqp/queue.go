package amqp

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/wire"
)

func newQueueCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{Use: "queue", Short: "List, declare, delete, purge, pause, resume and rate-limit queues"}
	cmd.AddCommand(newQueueListCmd(f), newQueueDeclareCmd(f), newQueueDeleteCmd(f), newQueuePurgeCmd(f),
		newQueuePauseCmd(f, true), newQueuePauseCmd(f, false), newQueueRateLimitCmd(f))
	return cmd
}

func newQueueListCmd(f *cmdutil.Factory) *cobra.Command {
	w := &Where{}
	cmd := &cobra.Command{
		Use:   "list [--vhost VHOST]",
		Short: "List a vhost's queues: light queue, group, ready, unacked, consumers, pause, rate limit, counters",
		Long: `List a vhost's queues with where their messages are (light queue, consumer
group) and their state: ready and unacked messages, consumers (gateway
channels that fetched within 30 s or hold unacked messages), whether the
queue is paused, its rate limit, and the messages published to it (ever),
delivered and acked (since its broker started).`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			a, err := f.Admin()
			if err != nil {
				return err
			}
			l, err := a.AMQPList(w.Vhost, w.Broker)
			if err != nil {
				return err
			}
			p := f.Printer()
			if p.IsJSON() {
				return p.JSON(nonNil(l.Queues))
			}
			rows := make([][]string, len(l.Queues))
			for i, q := range l.Queues {
				rows[i] = []string{q.Name, q.LMQ, q.Group, u64(uint64(q.Ready)), u64(uint64(q.Unacked)), u64(uint64(q.Consumers)),
					yes(q.Paused), rate(q.RateLimit), u64(q.Published), u64(q.Delivered), u64(q.Acked)}
			}
			return p.Table([]string{"#Name", "#LMQ", "#Group", "#Ready", "#Unacked", "#Consumers", "#Paused", "#Rate Limit",
				"#Published", "#Delivered", "#Acked"}, rows)
		},
	}
	whereFlags(f, cmd, w)
	return cmd
}

func rate(n int) string {
	if n <= 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func newQueueDeclareCmd(f *cmdutil.Factory) *cobra.Command {
	w := &Where{}
	d := wire.AMQPQueueDeclare{}
	var args []string
	cmd := &cobra.Command{
		Use:   "declare QUEUE [--durable=false] [--auto-delete] [--arg K=V]...",
		Short: "Declare a queue (as queue.declare: an existing one must be equivalent)",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, pos []string) error {
			t, err := parseArgs(args)
			if err != nil {
				return err
			}
			a, err := f.Admin()
			if err != nil {
				return err
			}
			d.Vhost, d.Queue, d.Arguments = w.Vhost, pos[0], t
			var ok wire.AMQPQueueDeclareOk
			if err := a.AMQPCall(w.Vhost, w.Broker, wire.AMQPDeclareQueue, d, &ok); err != nil {
				return err
			}
			return done(f, ok, fmt.Sprintf("queue %s declared in vhost %s (id %d, %d messages)", ok.Queue, w.Vhost, ok.ID, ok.MessageCount))
		},
	}
	cmd.Flags().BoolVar(&d.Durable, "durable", true, "survives broker restarts")
	cmd.Flags().BoolVar(&d.AutoDelete, "auto-delete", false, "deleted when its last consumer goes")
	cmd.Flags().StringArrayVar(&args, "arg", nil, "argument KEY=VALUE, e.g. x-message-ttl=60000 (integers and true/false typed), repeatable")
	whereFlags(f, cmd, w)
	return cmd
}

func newQueueDeleteCmd(f *cmdutil.Factory) *cobra.Command {
	w := &Where{}
	d := wire.AMQPQueueDelete{}
	cmd := &cobra.Command{
		Use:   "delete QUEUE [--if-unused] [--if-empty]",
		Short: "Delete a queue and its messages",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, pos []string) error {
			a, err := f.Admin()
			if err != nil {
				return err
			}
			d.Vhost, d.Queue = w.Vhost, pos[0]
			var ok wire.AMQPQueueDeleteOk
			if err := a.AMQPCall(w.Vhost, w.Broker, wire.AMQPDeleteQueue, d, &ok); err != nil {
				return err
			}
			return done(f, ok, fmt.Sprintf("queue %s deleted from vhost %s (%d messages)", pos[0], w.Vhost, ok.MessageCount))
		},
	}
	cmd.Flags().BoolVar(&d.IfUnused, "if-unused", false, "only if it has no consumers")
	cmd.Flags().BoolVar(&d.IfEmpty, "if-empty", false, "only if it has no ready messages")
	whereFlags(f, cmd, w)
	return cmd
}

func newQueuePurgeCmd(f *cmdutil.Factory) *cobra.Command {
	w := &Where{}
	cmd := &cobra.Command{
		Use:   "purge QUEUE",
		Short: "Drop a queue's ready messages (unacked ones stay)",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, pos []string) error {
			a, err := f.Admin()
			if err != nil {
				return err
			}
			var ok wire.AMQPPurgeResponse
			if err := a.AMQPCall(w.Vhost, w.Broker, wire.AMQPPurge, wire.AMQPPurgeRequest{Vhost: w.Vhost, Queue: pos[0]}, &ok); err != nil {
				return err
			}
			return done(f, ok, fmt.Sprintf("queue %s purged in vhost %s (%d messages)", pos[0], w.Vhost, ok.MessageCount))
		},
	}
	whereFlags(f, cmd, w)
	return cmd
}

func newQueuePauseCmd(f *cmdutil.Factory, pause bool) *cobra.Command {
	w := &Where{}
	use, short := "resume QUEUE", "Let a paused queue deliver again (its group's consumeEnable=true)"
	if pause {
		use, short = "pause QUEUE", "Stop a queue's deliveries on every gateway (its group's consumeEnable=false); consumers stay subscribed"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + `.

The setting is the queue's consumer group config on its home broker, which
persists it; publishes keep being stored while the queue is paused. The
broker checks it when a gateway asks for messages, so a pause takes effect
once the requests already waiting end (the gateways poll in 2 s rounds),
and a resume at the next round.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, pos []string) error {
			return runQueueChange(f, w, pos[0], func(a *admin.Admin) (*admin.GroupChange, error) {
				return a.AMQPSetQueueConsume(w.Vhost, w.Broker, pos[0], !pause)
			})
		},
	}
	whereFlags(f, cmd, w)
	return cmd
}

func newQueueRateLimitCmd(f *cmdutil.Factory) *cobra.Command {
	w := &Where{}
	perSecond := -1
	cmd := &cobra.Command{
		Use:   "rate-limit QUEUE --rate N",
		Short: "Cap a queue's deliveries per second over all gateways (0 = unlimited): its group's consumeRateLimit",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, pos []string) error {
			if perSecond < 0 {
				return errors.New("--rate must be 0 (unlimited) or more")
			}
			return runQueueChange(f, w, pos[0], func(a *admin.Admin) (*admin.GroupChange, error) {
				return a.AMQPSetQueueRateLimit(w.Vhost, w.Broker, pos[0], perSecond)
			})
		},
	}
	cmd.Flags().IntVar(&perSecond, "rate", -1, "deliveries per second, 0 for unlimited (required)")
	_ = cmd.MarkFlagRequired("rate")
	whereFlags(f, cmd, w)
	return cmd
}

func runQueueChange(f *cmdutil.Factory, w *Where, queue string, change func(*admin.Admin) (*admin.GroupChange, error)) error {
	a, err := f.Admin()
	if err != nil {
		return err
	}
	c, err := change(a)
	if err != nil {
		return err
	}
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(struct {
			Vhost     string `json:"vhost"`
			Queue     string `json:"queue"`
			Group     string `json:"group"`
			Broker    string `json:"broker"`
			Paused    bool   `json:"paused"`
			RateLimit int    `json:"rateLimit"`
		}{w.Vhost, queue, c.Config.GroupName, c.Broker.Addr, !c.Config.ConsumeEnable, c.Config.ConsumeRateLimit})
	}
	return p.Table([]string{"#Vhost", "#Queue", "#Group", "#Broker Addr", "#Paused", "#Rate Limit"},
		[][]string{{w.Vhost, queue, c.Config.GroupName, c.Broker.Addr, yes(!c.Config.ConsumeEnable), rate(c.Config.ConsumeRateLimit)}})
}
