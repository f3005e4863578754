package topic

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/wire"
)

// CreateOptions are the inputs of topic create (and of Java's updateTopic).
type CreateOptions struct {
	Target admin.Target
	Config wire.TopicConfig
	// Attributes are RocketMQ 5's attribute changes, "+message.type=FIFO".
	Attributes string
}

func newCreateCmd(f *cmdutil.Factory) *cobra.Command {
	o := &CreateOptions{Config: admin.NewTopicConfig("")}
	var queues int
	cmd := &cobra.Command{
		Use:     "create -t TOPIC (-c CLUSTER | -b BROKER) [flags]",
		Aliases: []string{"update"},
		Short:   "Create a topic, or update its queues and permission, on a cluster or one broker",
		Example: "  mqadmin topic create -t Orders -c DefaultCluster --queues 16",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("queues") {
				o.Config.ReadQueueNums, o.Config.WriteQueueNums = queues, queues
			}
			return RunCreate(f, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Config.TopicName, "topic", "t", "", "topic name (required)")
	cmdutil.AddTargetFlags(cmd, &o.Target)
	fl.IntVarP(&queues, "queues", "q", 8, "read and write queue count")
	fl.IntVarP(&o.Config.ReadQueueNums, "read-queues", "r", 8, "read queue count")
	fl.IntVarP(&o.Config.WriteQueueNums, "write-queues", "w", 8, "write queue count")
	fl.IntVarP(&o.Config.Perm, "perm", "p", 6, "permission: 2 write, 4 read, 6 read-write")
	fl.BoolVar(&o.Config.Order, "order", false, "ordered topic (with -c also written to the name servers' order config)")
	fl.StringVarP(&o.Attributes, "attributes", "a", "", "attribute changes: +message.type=NORMAL|FIFO|DELAY|TRANSACTION|MIXED (RocketMQ 5), +produce.tps=N, +produce.bps=N (mqops produce quota per broker, msgs/s and body bytes/s); -KEY removes")
	_ = cmd.MarkFlagRequired("topic")
	cmd.MarkFlagsMutuallyExclusive("queues", "read-queues")
	cmd.MarkFlagsMutuallyExclusive("queues", "write-queues")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunCreate creates the topic and prints where.
func RunCreate(f *cmdutil.Factory, o *CreateOptions) error {
	if err := cmdutil.RequireTarget(o.Target); err != nil {
		return err
	}
	a, err := f.Admin()
	if err != nil {
		return err
	}
	brokers, err := a.CreateTopic(o.Target, o.Config, o.Attributes)
	if err != nil {
		return err
	}
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(struct {
			Topic   wire.TopicConfig `json:"topicConfig"`
			Brokers []admin.Broker   `json:"brokers"`
		}{o.Config, brokers})
	}
	rows := make([][]string, len(brokers))
	for i, b := range brokers {
		rows[i] = []string{b.Name, b.Addr, o.Config.TopicName, strconv.Itoa(o.Config.ReadQueueNums),
			strconv.Itoa(o.Config.WriteQueueNums), strconv.Itoa(o.Config.Perm), strconv.FormatBool(o.Config.Order)}
	}
	return p.Table([]string{"#Broker Name", "#Broker Addr", "#Topic", "#Read Queues", "#Write Queues", "#Perm", "#Order"}, rows)
}
