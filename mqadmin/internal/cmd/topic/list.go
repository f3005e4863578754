package topic

import (
	"sort"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

// ListOptions are the inputs of topic list.
type ListOptions struct {
	// Groups adds each topic's cluster and consuming groups and leaves
	// retry and dead-letter topics out (Java's topicList -c).
	Groups bool
}

func newListCmd(f *cmdutil.Factory) *cobra.Command {
	o := &ListOptions{}
	cmd := &cobra.Command{
		Use:   "list [--groups]",
		Short: "List every topic the name server knows",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunList(f, o) },
	}
	cmd.Flags().BoolVarP(&o.Groups, "groups", "g", false, "show each topic's cluster and consumer groups (skips retry/DLQ topics)")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// TopicGroups is one row of topic list --groups.
type TopicGroups struct {
	Cluster     string   `json:"cluster"`
	Topic       string   `json:"topic"`
	Groups      []string `json:"groups"`
	MessageType string   `json:"messageType"` // RocketMQ 5's message.type on the masters
}

// RunList prints the topics.
func RunList(f *cmdutil.Factory, o *ListOptions) error {
	a, err := f.Admin()
	if err != nil {
		return err
	}
	topics, err := a.TopicList()
	if err != nil {
		return err
	}
	p := f.Printer()
	if !o.Groups && p.IsJSON() {
		return p.JSON(topics) // names only: scripts (and roles/mqops_broker_metadata) read this list
	}
	// Each topic's message.type from the masters' topic tables ("" for a
	// topic no master answered for, e.g. a name server's own).
	types, err := a.MessageTypes(admin.Target{})
	if err != nil {
		return err
	}
	if !o.Groups {
		rows := make([][]string, len(topics))
		for i, t := range topics {
			rows[i] = []string{t, types[t]}
		}
		return p.Table([]string{"#Topic", "#Message Type"}, rows)
	}
	out := []TopicGroups{}
	prog := f.Progress("reading topics")
	defer prog.Stop()
	for i, t := range topics {
		if admin.IsRetryOrDLQ(t) {
			continue
		}
		prog.Update("topic %d/%d: %s", i+1, len(topics), t)
		rd, err := a.TopicRoute(t)
		if err != nil {
			return err
		}
		clusters := map[string]bool{}
		for _, bd := range rd.BrokerDatas {
			clusters[bd.Cluster] = true
		}
		groups, err := a.TopicConsumersAll(t)
		if err != nil {
			return err
		}
		for c := range clusters {
			out = append(out, TopicGroups{Cluster: c, Topic: t, Groups: groups, MessageType: types[t]})
		}
	}
	prog.Stop()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Cluster < out[j].Cluster })
	if p.IsJSON() {
		return p.JSON(out)
	}
	var rows [][]string
	for _, tg := range out {
		if len(tg.Groups) == 0 {
			rows = append(rows, []string{tg.Cluster, tg.Topic, "", tg.MessageType})
		}
		for _, g := range tg.Groups {
			rows = append(rows, []string{tg.Cluster, tg.Topic, g, tg.MessageType})
		}
	}
	return p.Table([]string{"#Cluster Name", "#Topic", "#Consumer Group", "#Message Type"}, rows)
}
