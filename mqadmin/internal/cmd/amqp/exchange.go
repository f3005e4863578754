package amqp

import (
	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/wire"
)

func newExchangeCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{Use: "exchange", Short: "List, declare and delete exchanges"}
	cmd.AddCommand(newExchangeListCmd(f), newExchangeDeclareCmd(f), newExchangeDeleteCmd(f))
	return cmd
}

func newExchangeListCmd(f *cmdutil.Factory) *cobra.Command {
	w := &Where{}
	cmd := &cobra.Command{
		Use:   "list [--vhost VHOST]",
		Short: "List a vhost's exchanges",
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
				return p.JSON(nonNil(l.Exchanges))
			}
			rows := make([][]string, len(l.Exchanges))
			for i, x := range l.Exchanges {
				rows[i] = []string{exchangeName(x.Name), x.Type, yes(x.Durable), yes(x.AutoDelete), yes(x.Internal), formatArgs(x.Arguments)}
			}
			return p.Table([]string{"#Name", "#Type", "#Durable", "#Auto Delete", "#Internal", "#Arguments"}, rows)
		},
	}
	whereFlags(f, cmd, w)
	return cmd
}

func newExchangeDeclareCmd(f *cmdutil.Factory) *cobra.Command {
	w := &Where{}
	d := wire.AMQPExchangeDeclare{}
	var args []string
	cmd := &cobra.Command{
		Use:   "declare EXCHANGE --type direct|fanout|topic|headers [--durable] [--auto-delete] [--internal] [--arg K=V]...",
		Short: "Declare an exchange (as exchange.declare: an existing one must be equivalent)",
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
			d.Vhost, d.Exchange, d.Arguments = w.Vhost, pos[0], t
			if err := a.AMQPCall(w.Vhost, w.Broker, wire.AMQPDeclareExchange, d, nil); err != nil {
				return err
			}
			return done(f, d, "exchange "+pos[0]+" declared in vhost "+w.Vhost)
		},
	}
	cmd.Flags().StringVar(&d.Type, "type", "direct", "exchange type: direct, fanout, topic or headers")
	cmd.Flags().BoolVar(&d.Durable, "durable", true, "survives broker restarts")
	cmd.Flags().BoolVar(&d.AutoDelete, "auto-delete", false, "deleted when its last binding goes")
	cmd.Flags().BoolVar(&d.Internal, "internal", false, "no direct publishes, only exchange-to-exchange bindings")
	cmd.Flags().StringArrayVar(&args, "arg", nil, "argument KEY=VALUE (integers and true/false typed), repeatable")
	whereFlags(f, cmd, w)
	return cmd
}

func newExchangeDeleteCmd(f *cmdutil.Factory) *cobra.Command {
	w := &Where{}
	d := wire.AMQPExchangeDelete{}
	cmd := &cobra.Command{
		Use:   "delete EXCHANGE [--if-unused]",
		Short: "Delete an exchange and its bindings",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, pos []string) error {
			a, err := f.Admin()
			if err != nil {
				return err
			}
			d.Vhost, d.Exchange = w.Vhost, pos[0]
			if err := a.AMQPCall(w.Vhost, w.Broker, wire.AMQPDeleteExchange, d, nil); err != nil {
				return err
			}
			return done(f, d, "exchange "+pos[0]+" deleted from vhost "+w.Vhost)
		},
	}
	cmd.Flags().BoolVar(&d.IfUnused, "if-unused", false, "only if no binding has it as source")
	whereFlags(f, cmd, w)
	return cmd
}

// nonNil makes an empty list print as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
