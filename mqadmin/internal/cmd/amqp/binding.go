package amqp

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/wire"
)

func newBindingCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{Use: "binding", Short: "List, add and delete bindings"}
	cmd.AddCommand(newBindingListCmd(f), newBindingChangeCmd(f, true), newBindingChangeCmd(f, false))
	return cmd
}

func newBindingListCmd(f *cmdutil.Factory) *cobra.Command {
	w := &Where{}
	cmd := &cobra.Command{
		Use:   "list [--vhost VHOST]",
		Short: "List a vhost's bindings (the default exchange's implicit ones are not listed)",
		Args:  cobra.NoArgs,
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
				return p.JSON(nonNil(l.Bindings))
			}
			rows := make([][]string, len(l.Bindings))
			for i, b := range l.Bindings {
				kind := "queue"
				if b.ToExchange {
					kind = "exchange"
				}
				rows[i] = []string{b.Source, b.Destination, kind, b.RoutingKey, formatArgs(b.Arguments)}
			}
			return p.Table([]string{"#Source", "#Destination", "#Destination Type", "#Routing Key", "#Arguments"}, rows)
		},
	}
	whereFlags(f, cmd, w)
	return cmd
}

func newBindingChangeCmd(f *cmdutil.Factory, add bool) *cobra.Command {
	w := &Where{}
	d := wire.AMQPBinding{}
	var args []string
	var destType string
	use, short, code, verb := "delete", "Delete a binding (queue.unbind, exchange.unbind)", wire.AMQPUnbind, "deleted"
	if add {
		use, short, code, verb = "add", "Bind a queue or exchange to an exchange (queue.bind, exchange.bind)", wire.AMQPBind, "added"
	}
	cmd := &cobra.Command{
		Use:   use + " --source EXCHANGE --destination NAME [--destination-type queue|exchange] [--routing-key KEY] [--arg K=V]...",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			switch destType {
			case "queue":
			case "exchange":
				d.ToExchange = true
			default:
				return errors.New("--destination-type must be queue or exchange")
			}
			t, err := parseArgs(args)
			if err != nil {
				return err
			}
			a, err := f.Admin()
			if err != nil {
				return err
			}
			d.Vhost, d.Arguments = w.Vhost, t
			if err := a.AMQPCall(w.Vhost, w.Broker, code, d, nil); err != nil {
				return err
			}
			return done(f, d, "binding "+d.Source+" → "+d.Destination+" ("+d.RoutingKey+") "+verb+" in vhost "+w.Vhost)
		},
	}
	cmd.Flags().StringVar(&d.Source, "source", "", "source exchange (required)")
	cmd.Flags().StringVar(&d.Destination, "destination", "", "destination queue or exchange (required)")
	cmd.Flags().StringVar(&destType, "destination-type", "queue", "queue or exchange")
	cmd.Flags().StringVar(&d.RoutingKey, "routing-key", "", "routing (binding) key")
	cmd.Flags().StringArrayVar(&args, "arg", nil, "binding argument KEY=VALUE (headers exchanges), repeatable")
	_ = cmd.MarkFlagRequired("source")
	_ = cmd.MarkFlagRequired("destination")
	whereFlags(f, cmd, w)
	return cmd
}
