package stats

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/mqadmin/internal/output"
)

// SeriesOptions are the inputs of stats series.
type SeriesOptions struct {
	Topic string
	Group string
	Step  string
	From  string
	To    string
}

// defaultSpan is how far back a series starts without --from.
var defaultSpan = map[string]time.Duration{"1m": time.Hour, "1h": 24 * time.Hour, "1d": 30 * 24 * time.Hour}

func newSeriesCmd(f *cmdutil.Factory) *cobra.Command {
	o := &SeriesOptions{}
	cmd := &cobra.Command{
		Use:   "series -t TOPIC [-g GROUP] [--step 1m|1h|1d] [--from T] [--to T]",
		Short: "Messages produced to a topic (or consumed by a group) per minute, hour or day, with a chart",
		Long: `Messages produced to a topic, or consumed from it by a group, per minute, hour
or day, summed over the masters: a table with an ASCII bar per step and a
sparkline. Brokers keep minutes for 48 hours, hours for 31 days and days for
400 days. Without --from: the last hour, day or 30 days.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return RunSeries(f, o) },
	}
	cmd.Flags().StringVarP(&o.Topic, "topic", "t", "", "topic (required)")
	cmd.Flags().StringVarP(&o.Group, "group", "g", "", "consumer group: consumed instead of produced")
	cmd.Flags().StringVar(&o.Step, "step", "1m", "granularity: 1m, 1h or 1d")
	cmd.Flags().StringVar(&o.From, "from", "", "first step (default: one span back, see above)")
	cmd.Flags().StringVar(&o.To, "to", "", "last step (default now)")
	_ = cmd.MarkFlagRequired("topic")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunSeries prints one row per step, then the total and a sparkline.
func RunSeries(f *cmdutil.Factory, o *SeriesOptions) error {
	span, ok := defaultSpan[o.Step]
	if !ok {
		return fmt.Errorf("step %q: want 1m, 1h or 1d", o.Step)
	}
	now := time.Now()
	from, to := now.Add(-span).UnixMilli(), now.UnixMilli()
	var err error
	if o.From != "" {
		if from, err = cmdutil.ParseTime(o.From, now); err != nil {
			return err
		}
	}
	if o.To != "" {
		if to, err = cmdutil.ParseTime(o.To, now); err != nil {
			return err
		}
	}
	a, err := f.Admin()
	if err != nil {
		return err
	}
	series, err := a.StatsSeries(o.Topic, o.Group, o.Step, from, to)
	if err != nil {
		return err
	}
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(series)
	}
	pts := series.Points
	var top, total int64
	values := make([]int64, len(pts))
	for i, pt := range pts {
		values[i] = pt.Value
		top = max(top, pt.Value)
		total += pt.Value
	}
	rows := make([][]string, len(pts))
	for i, pt := range pts {
		rows[i] = []string{output.Time(pt.Time), strconv.FormatInt(pt.Value, 10), output.Bar(pt.Value, top, 40)}
	}
	if err := p.Table([]string{"#Time", "#Messages", "#Chart"}, rows); err != nil {
		return err
	}
	p.Printf("\nTotal: %d\nTrend: %s\n", total, output.Sparkline(values))
	return nil
}
