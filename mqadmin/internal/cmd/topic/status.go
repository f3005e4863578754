package topic

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/mqadmin/internal/output"
)

// StatusOptions are the inputs of topic status.
type StatusOptions struct {
	Topic string
}

func newStatusCmd(f *cmdutil.Factory) *cobra.Command {
	o := &StatusOptions{}
	cmd := &cobra.Command{
		Use:   "status -t TOPIC",
		Short: "Show every queue's min and max offset, last update time, the topic's message.type and produce quota",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunStatus(f, o) },
	}
	cmd.Flags().StringVarP(&o.Topic, "topic", "t", "", "topic name (required)")
	_ = cmd.MarkFlagRequired("topic")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunStatus prints the queue table.
func RunStatus(f *cmdutil.Factory, o *StatusOptions) error {
	a, err := f.Admin()
	if err != nil {
		return err
	}
	qs, err := a.TopicStatus(o.Topic)
	if err != nil {
		return err
	}
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(qs)
	}
	rows := make([][]string, len(qs))
	quota := false
	for i, q := range qs {
		rows[i] = []string{q.BrokerName, strconv.Itoa(q.QueueID), strconv.FormatInt(q.MinOffset, 10),
			strconv.FormatInt(q.MaxOffset, 10), output.Time(q.LastUpdateTimestamp), q.MessageType, orDash(q.ProduceQuota)}
		quota = quota || q.ProduceQuota != ""
	}
	header := []string{"#Broker Name", "#QID", "#Min Offset", "#Max Offset", "#Last Updated", "#Message Type", "#Produce Quota"}
	if !quota { // the usual table when no quota is set
		header = header[:len(header)-1]
		for i := range rows {
			rows[i] = rows[i][:len(rows[i])-1]
		}
	}
	return p.Table(header, rows)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
