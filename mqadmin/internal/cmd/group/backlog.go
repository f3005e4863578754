package group

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/mqadmin/internal/output"
)

// BacklogOptions are the inputs of group backlog (and Java's
// brokerConsumeStats, which is the per-queue view of one broker).
type BacklogOptions struct {
	Target   admin.Target
	PerQueue bool
	MinDiff  int64
	Order    bool
}

func newBacklogCmd(f *cmdutil.Factory) *cobra.Command {
	o := &BacklogOptions{}
	cmd := &cobra.Command{
		Use:   "backlog [-c CLUSTER | -b BROKER] [--per-queue] [--min-diff N]",
		Short: "Every group's backlog across the masters in one table, largest first",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunBacklog(f, o) },
	}
	cmdutil.AddTargetFlags(cmd, &o.Target)
	cmd.Flags().BoolVar(&o.PerQueue, "per-queue", false, "one row per queue instead of per group and topic")
	cmd.Flags().Int64Var(&o.MinDiff, "min-diff", 0, "only rows with at least this backlog")
	cmd.Flags().BoolVar(&o.Order, "order", false, "only ordered topics")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunBacklog prints the backlog overview.
func RunBacklog(f *cmdutil.Factory, o *BacklogOptions) error {
	a, err := f.Admin()
	if err != nil {
		return err
	}
	qs, err := a.Backlog(o.Target, o.Order)
	if err != nil {
		return err
	}
	p := f.Printer()
	if o.PerQueue {
		kept := qs[:0]
		var total int64
		for _, q := range qs {
			if q.Diff >= o.MinDiff {
				kept = append(kept, q)
				total += q.Diff
			}
		}
		if p.IsJSON() {
			return p.JSON(kept)
		}
		rows := make([][]string, len(kept))
		for i, q := range kept {
			rows[i] = []string{q.Topic, q.Group, q.BrokerName, strconv.Itoa(q.QueueID), i64(q.BrokerOffset),
				i64(q.ConsumerOffset), i64(q.Diff), output.Time(q.LastTimestamp)}
		}
		if err := p.Table([]string{"#Topic", "#Group", "#Broker Name", "#QID", "#Broker Offset", "#Consumer Offset", "#Diff", "#LastTime"}, rows); err != nil {
			return err
		}
		p.Printf("\nDiff Total: %d\n", total)
		return nil
	}
	var kept []admin.GroupBacklog
	for _, g := range admin.SumBacklog(qs) {
		if g.Diff >= o.MinDiff {
			kept = append(kept, g)
		}
	}
	if p.IsJSON() {
		if kept == nil {
			kept = []admin.GroupBacklog{}
		}
		return p.JSON(kept)
	}
	rows := make([][]string, len(kept))
	for i, g := range kept {
		rows[i] = []string{g.Group, g.Topic, strconv.Itoa(g.Brokers), strconv.Itoa(g.Queues), i64(g.BrokerOffset),
			i64(g.ConsumerOffset), i64(g.Diff), output.Time(g.LastTimestamp)}
	}
	return p.Table([]string{"#Group", "#Topic", "#Brokers", "#Queues", "#Broker Offset", "#Consumer Offset", "#Diff", "#LastTime"}, rows)
}
