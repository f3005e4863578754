package group

import (
	"errors"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

// SwitchOptions are the inputs of group pause, resume and limit.
type SwitchOptions struct {
	Target admin.Target
	Group  string
	// Rate is the limit of group limit, in messages per second (0: none).
	Rate int
}

func newPauseCmd(f *cmdutil.Factory, pause bool) *cobra.Command {
	o := &SwitchOptions{}
	use, short := "resume", "Let a paused group consume again (consumeEnable=true)"
	if pause {
		use, short = "pause", "Stop handing a group messages (consumeEnable=false); its clients stay connected"
	}
	cmd := &cobra.Command{
		Use:   use + " -g GROUP (-c CLUSTER | -b BROKER)",
		Short: short,
		Long: short + `.

The group's config is read from each broker, only consumeEnable is changed,
and it is written back, so other settings (rate limit, retries) stay as
they were; a group a broker does not define yet gets Java's defaults there.
The broker persists the setting: it survives restarts.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return runChange(f, o, func(a *admin.Admin) ([]admin.GroupChange, error) {
				return a.SetGroupConsumeEnable(o.Target, o.Group, !pause)
			})
		},
	}
	switchFlags(f, cmd, o)
	return cmd
}

func newLimitCmd(f *cmdutil.Factory) *cobra.Command {
	o := &SwitchOptions{}
	cmd := &cobra.Command{
		Use:   "limit -g GROUP --rate N (-c CLUSTER | -b BROKER)",
		Short: "Cap the messages per second each broker hands a group (0 = unlimited)",
		Long: `Cap the messages per second each selected broker hands a consumer group, over
all its clients (--rate 0 removes the cap). The group's config is read from
each broker, only consumeRateLimit is changed, and it is written back; the
broker persists it. The limit is an mqops setting: Apache RocketMQ brokers
store nothing for it.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return runChange(f, o, func(a *admin.Admin) ([]admin.GroupChange, error) {
				return a.SetGroupRateLimit(o.Target, o.Group, o.Rate)
			})
		},
	}
	switchFlags(f, cmd, o)
	cmd.Flags().IntVar(&o.Rate, "rate", 0, "messages per second per broker, 0 for unlimited (required)")
	_ = cmd.MarkFlagRequired("rate")
	return cmd
}

func switchFlags(f *cmdutil.Factory, cmd *cobra.Command, o *SwitchOptions) {
	cmd.Flags().StringVarP(&o.Group, "group", "g", "", "consumer group (required)")
	cmdutil.AddTargetFlags(cmd, &o.Target)
	_ = cmd.MarkFlagRequired("group")
	f.AddOutputFlag(cmd, true)
}

// runChange applies a config change and prints the result per broker.
func runChange(f *cmdutil.Factory, o *SwitchOptions, change func(*admin.Admin) ([]admin.GroupChange, error)) error {
	if err := cmdutil.RequireTarget(o.Target); err != nil {
		return err
	}
	if o.Rate < 0 {
		return errors.New("--rate must be 0 (unlimited) or more")
	}
	a, err := f.Admin()
	if err != nil {
		return err
	}
	cs, err := change(a)
	if err != nil {
		return err
	}
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(struct {
			Group   string              `json:"group"`
			Brokers []admin.GroupChange `json:"brokers"`
		}{o.Group, cs})
	}
	rows := make([][]string, len(cs))
	for i, c := range cs {
		rows[i] = []string{c.Broker.Name, c.Broker.Addr, c.Config.GroupName, strconv.FormatBool(c.Config.ConsumeEnable), RateLimit(c.Config.ConsumeRateLimit)}
	}
	return p.Table([]string{"#Broker Name", "#Broker Addr", "#Group", "#Consume Enable", "#Rate Limit"}, rows)
}

// RateLimit prints a rate limit: "-" for none.
func RateLimit(perSecond int) string {
	if perSecond <= 0 {
		return "-"
	}
	return strconv.Itoa(perSecond)
}
