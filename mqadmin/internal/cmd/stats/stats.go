// Package stats implements "mqadmin stats …": traffic statistics the
// brokers keep per topic and group.
package stats

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

// NewCmd returns the stats command group.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Traffic statistics per topic and consumer group",
	}
	cmd.AddCommand(newAllCmd(f), newTodayCmd(f), newSeriesCmd(f))
	return cmd
}

// AllOptions are the inputs of stats all (Java's statsAll).
type AllOptions struct {
	Topic      string
	ActiveOnly bool
}

func newAllCmd(f *cmdutil.Factory) *cobra.Command {
	o := &AllOptions{}
	cmd := &cobra.Command{
		Use:   "all [-t TOPIC] [-a]",
		Short: "Per topic and consuming group: backlog, in/out TPS, in/out messages over 24 hours",
		Long: `Per topic and consuming group: backlog, produce and consume TPS (one-minute
window) and message counts of the brokers' rolling 24-hour window (falling
back to the hour or minute window after a restart; not counted from
midnight), summed over the masters. Retry and dead-letter topics are left
out; a topic nobody consumes shows NO_CONSUMER.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return RunAll(f, o) },
	}
	cmd.Flags().StringVarP(&o.Topic, "topic", "t", "", "only this topic")
	cmd.Flags().BoolVarP(&o.ActiveOnly, "active", "a", false, "only topics with traffic in the window")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunAll prints the statsAll table.
func RunAll(f *cmdutil.Factory, o *AllOptions) error {
	a, err := f.Admin()
	if err != nil {
		return err
	}
	prog := f.Progress("reading statistics")
	rows, err := a.StatsAll(o.Topic, o.ActiveOnly, func(done, total int) {
		prog.Update("reading statistics: topic %d/%d", done, total)
	})
	prog.Stop()
	if err != nil {
		return err
	}
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(rows)
	}
	cells := make([][]string, len(rows))
	for i, r := range rows {
		out, out24 := fmt.Sprintf("%.2f", r.OutTPS), strconv.FormatInt(r.OutMsg24Hour, 10)
		if r.NoConsumer {
			out, out24 = "", "NO_CONSUMER"
		}
		cells[i] = []string{r.Topic, r.Group, strconv.FormatInt(r.Accumulation, 10), fmt.Sprintf("%.2f", r.InTPS), out,
			strconv.FormatInt(r.InMsg24Hour, 10), out24}
	}
	return p.Table([]string{"#Topic", "#Consumer Group", "#Accumulation", "#InTPS", "#OutTPS", "#InMsg24Hour", "#OutMsg24Hour"}, cells)
}
