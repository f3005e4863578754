package stats

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/mqadmin/internal/output"
)

// TodayOptions are the inputs of stats today.
type TodayOptions struct {
	Target admin.Target
	// At is a time as ParseTime reads it; "" means now.
	At    string
	Topic string
}

func newTodayCmd(f *cmdutil.Factory) *cobra.Command {
	o := &TodayOptions{}
	cmd := &cobra.Command{
		Use:   "today [-c CLUSTER | -b BROKER] [-t TOPIC] [--at TIME]",
		Short: "Messages produced per topic and consumed per group since local midnight",
		Long: `Messages produced per topic and consumed per group since the brokers' local
midnight, up to now or --at (earlier today), summed over the masters.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return RunToday(f, o) },
	}
	cmdutil.AddTargetFlags(cmd, &o.Target)
	cmd.Flags().StringVar(&o.At, "at", "", "count up to this time of today (default now)")
	cmd.Flags().StringVarP(&o.Topic, "topic", "t", "", "only this topic")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunToday prints the produced table, then the consumed table, then the
// period counted.
func RunToday(f *cmdutil.Factory, o *TodayOptions) error {
	var at int64
	if o.At != "" {
		var err error
		if at, err = cmdutil.ParseTime(o.At, time.Now()); err != nil {
			return err
		}
	}
	a, err := f.Admin()
	if err != nil {
		return err
	}
	st, err := a.StatsToday(o.Target, at)
	if err != nil {
		return err
	}
	if o.Topic != "" {
		for k := range st.Topics {
			if k != o.Topic {
				delete(st.Topics, k)
			}
		}
		for k := range st.Groups {
			if !strings.HasPrefix(k, o.Topic+"@") {
				delete(st.Groups, k)
			}
		}
	}
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(st)
	}
	var rows [][]string
	for _, t := range slices.Sorted(maps.Keys(st.Topics)) {
		rows = append(rows, []string{t, strconv.FormatInt(st.Topics[t], 10)})
	}
	if err := p.Table([]string{"#Topic", "#Produced Today"}, rows); err != nil {
		return err
	}
	rows = rows[:0]
	for _, k := range slices.Sorted(maps.Keys(st.Groups)) {
		topic, group, _ := strings.Cut(k, "@")
		rows = append(rows, []string{topic, group, strconv.FormatInt(st.Groups[k], 10)})
	}
	p.Printf("\n")
	if err := p.Table([]string{"#Topic", "#Consumer Group", "#Consumed Today"}, rows); err != nil {
		return err
	}
	p.Printf("\nCounted from %s to %s\n", output.Time(st.DayStart), output.Time(st.At))
	return nil
}
