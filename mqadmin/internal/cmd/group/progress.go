package group

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/mqadmin/internal/output"
)

// ProgressOptions are the inputs of group progress (Java's consumerProgress).
type ProgressOptions struct {
	Group string // "" summarises every group
	Topic string
}

func newProgressCmd(f *cmdutil.Factory) *cobra.Command {
	o := &ProgressOptions{}
	cmd := &cobra.Command{
		Use:   "progress [-g GROUP [-t TOPIC]]",
		Short: "A group's backlog per queue, with last consume time and delay; or a summary of all groups",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunProgress(f, o) },
	}
	cmd.Flags().StringVarP(&o.Group, "group", "g", "", "consumer group (default: one line per group)")
	cmd.Flags().StringVarP(&o.Topic, "topic", "t", "", "only this topic")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunProgress prints the progress table(s).
func RunProgress(f *cmdutil.Factory, o *ProgressOptions) error {
	a, err := f.Admin()
	if err != nil {
		return err
	}
	p := f.Printer()
	if o.Group == "" {
		prog := f.Progress("reading consumer groups")
		ss, err := a.GroupSummaries()
		prog.Stop()
		if err != nil {
			return err
		}
		if p.IsJSON() {
			return p.JSON(ss)
		}
		rows := make([][]string, len(ss))
		for i, s := range ss {
			rows[i] = []string{s.Group, strconv.Itoa(s.Count), s.Version, s.Type, s.Model, fmt.Sprintf("%.2f", s.TPS), i64(s.DiffTotal)}
		}
		return p.Table([]string{"#Group", "#Count", "#Version", "#Type", "#Model", "#TPS", "#Diff Total"}, rows)
	}
	gp, err := a.GroupProgress(o.Group, o.Topic)
	if err != nil {
		return err
	}
	if p.IsJSON() {
		return p.JSON(gp)
	}
	rows := make([][]string, len(gp.Queues))
	for i, q := range gp.Queues {
		rows[i] = []string{q.Topic, q.BrokerName, strconv.Itoa(q.QueueID), i64(q.BrokerOffset), i64(q.ConsumerOffset),
			i64(q.Diff), output.Time(q.LastTimestamp), i64(q.DelaySeconds)}
	}
	if err := p.Table([]string{"#Topic", "#Broker Name", "#QID", "#Broker Offset", "#Consumer Offset", "#Diff", "#LastTime", "#Delay(s)"}, rows); err != nil {
		return err
	}
	p.Printf("\nConsume TPS: %.2f\nConsume Diff Total: %d\n", gp.ConsumeTPS, gp.DiffTotal)
	return nil
}
