package group

import (
	"sort"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

// ConnectionsOptions are the inputs of group connections.
type ConnectionsOptions struct {
	Group string
}

func newConnectionsCmd(f *cmdutil.Factory) *cobra.Command {
	o := &ConnectionsOptions{}
	cmd := &cobra.Command{
		Use:   "connections -g GROUP",
		Short: "A consumer group's online clients and subscriptions",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunConnections(f, o) },
	}
	cmd.Flags().StringVarP(&o.Group, "group", "g", "", "consumer group (required)")
	_ = cmd.MarkFlagRequired("group")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunConnections prints the clients, then the subscriptions, then the
// group's consume type, model and starting point.
func RunConnections(f *cmdutil.Factory, o *ConnectionsOptions) error {
	a, err := f.Admin()
	if err != nil {
		return err
	}
	cc, err := a.ConsumerConnection(o.Group)
	if err != nil {
		return err
	}
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(cc)
	}
	if err := PrintConnections(p, cc.Connections); err != nil {
		return err
	}
	topics := make([]string, 0, len(cc.Subscriptions))
	for t := range cc.Subscriptions {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	rows := make([][]string, len(topics))
	for i, t := range topics {
		rows[i] = []string{t, cc.Subscriptions[t].SubString}
	}
	p.Printf("\n")
	if err := p.Table([]string{"#Topic", "#SubExpression"}, rows); err != nil {
		return err
	}
	p.Printf("\nConsumeType: %s\nMessageModel: %s\nConsumeFromWhere: %s\n", cc.ConsumeType, cc.MessageModel, cc.ConsumeFromWhere)
	return nil
}
