package topic

import (
	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

// DeleteOptions are the inputs of topic delete.
type DeleteOptions struct {
	Topic   string
	Cluster string
}

func newDeleteCmd(f *cmdutil.Factory) *cobra.Command {
	o := &DeleteOptions{}
	cmd := &cobra.Command{
		Use:   "delete -t TOPIC [-c CLUSTER]",
		Short: "Delete a topic from its brokers (or one cluster's) and from every name server",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunDelete(f, o) },
	}
	cmd.Flags().StringVarP(&o.Topic, "topic", "t", "", "topic name (required)")
	cmd.Flags().StringVarP(&o.Cluster, "cluster", "c", "", "only this cluster (default: every broker in the topic's route)")
	_ = cmd.MarkFlagRequired("topic")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunDelete deletes the topic and prints where from.
func RunDelete(f *cmdutil.Factory, o *DeleteOptions) error {
	a, err := f.Admin()
	if err != nil {
		return err
	}
	brokers, err := a.DeleteTopic(o.Topic, o.Cluster)
	if err != nil {
		return err
	}
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(struct {
			Topic    string         `json:"topic"`
			Brokers  []admin.Broker `json:"brokers"`
			Namesrvs []string       `json:"namesrvs"`
		}{o.Topic, brokers, a.NameServers()})
	}
	var rows [][]string
	for _, b := range brokers {
		rows = append(rows, []string{"broker", b.Name, b.Addr})
	}
	for _, ns := range a.NameServers() {
		rows = append(rows, []string{"namesrv", "", ns})
	}
	return p.Table([]string{"#Deleted From", "#Broker Name", "#Addr"}, rows)
}
