package amqp

import (
	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

func newVhostCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{Use: "vhost", Short: "List, add and delete virtual hosts"}
	cmd.AddCommand(newVhostListCmd(f), newVhostChangeCmd(f, true), newVhostChangeCmd(f, false))
	return cmd
}

func newVhostListCmd(f *cmdutil.Factory) *cobra.Command {
	var broker string
	cmd := &cobra.Command{
		Use:   "list [-b BROKER]",
		Short: "List the vhosts of every master broker",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			a, err := f.Admin()
			if err != nil {
				return err
			}
			vs, err := a.AMQPVhosts(broker)
			if err != nil {
				return err
			}
			p := f.Printer()
			if p.IsJSON() {
				return p.JSON(vs)
			}
			rows := make([][]string, len(vs))
			for i, v := range vs {
				rows[i] = []string{v.Vhost, v.Broker.Name, v.Broker.Addr}
			}
			return p.Table([]string{"#Vhost", "#Broker Name", "#Broker Addr"}, rows)
		},
	}
	cmd.Flags().StringVarP(&broker, "broker", "b", "", "only this broker (address or name)")
	f.AddOutputFlag(cmd, true)
	return cmd
}

func newVhostChangeCmd(f *cmdutil.Factory, add bool) *cobra.Command {
	var broker string
	use, short := "delete VHOST [-b BROKER]", "Delete a vhost with its exchanges, queues, messages and store topic"
	if add {
		use, short = "add VHOST [-b BROKER]", "Create a vhost and its store topic on its home broker"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			a, err := f.Admin()
			if err != nil {
				return err
			}
			change, verb := a.AMQPDeleteVhost, "deleted"
			if add {
				change, verb = a.AMQPAddVhost, "added"
			}
			addr, err := change(args[0], broker)
			if err != nil {
				return err
			}
			return done(f, struct {
				Vhost  string `json:"vhost"`
				Broker string `json:"broker"`
				Result string `json:"result"`
			}{args[0], addr, verb}, "vhost "+args[0]+" "+verb+" on "+addr)
		},
	}
	cmd.Flags().StringVarP(&broker, "broker", "b", "", "home broker (address or name) instead of the vhost's route")
	f.AddOutputFlag(cmd, true)
	return cmd
}
