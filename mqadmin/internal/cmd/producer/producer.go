// Package producer implements "mqadmin producer connections".
package producer

import (
	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/internal/cmd/group"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

// NewCmd returns the producer command group.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "producer",
		Short: "Producer groups' connections",
	}
	cmd.AddCommand(newConnectionsCmd(f))
	return cmd
}

// ConnectionsOptions are the inputs of producer connections (Java's
// producerConnection).
type ConnectionsOptions struct {
	Group string
	Topic string
}

func newConnectionsCmd(f *cmdutil.Factory) *cobra.Command {
	o := &ConnectionsOptions{}
	cmd := &cobra.Command{
		Use:   "connections -g GROUP -t TOPIC",
		Short: "A producer group's online clients, as seen by the brokers of a topic",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunConnections(f, o) },
	}
	cmd.Flags().StringVarP(&o.Group, "group", "g", "", "producer group (required)")
	cmd.Flags().StringVarP(&o.Topic, "topic", "t", "", "a topic the group sends to (required)")
	_ = cmd.MarkFlagRequired("group")
	_ = cmd.MarkFlagRequired("topic")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunConnections prints the clients.
func RunConnections(f *cmdutil.Factory, o *ConnectionsOptions) error {
	a, err := f.Admin()
	if err != nil {
		return err
	}
	conns, err := a.ProducerConnection(o.Group, o.Topic)
	if err != nil {
		return err
	}
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(conns)
	}
	return group.PrintConnections(p, conns)
}
