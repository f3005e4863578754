package group

import (
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

func newListCmd(f *cmdutil.Factory) *cobra.Command {
	var t admin.Target
	cmd := &cobra.Command{
		Use:   "list [-c CLUSTER | -b BROKER]",
		Short: "List the subscription groups defined on the masters",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			a, err := f.Admin()
			if err != nil {
				return err
			}
			gs, err := a.Groups(t)
			if err != nil {
				return err
			}
			p := f.Printer()
			if p.IsJSON() {
				return p.JSON(gs)
			}
			rows := make([][]string, len(gs))
			for i, g := range gs {
				c := g.Config
				rows[i] = []string{c.GroupName, strings.Join(g.Brokers, ","), strconv.FormatBool(c.ConsumeEnable),
					strconv.FormatBool(c.ConsumeBroadcastEnable), strconv.Itoa(c.RetryQueueNums), strconv.Itoa(c.RetryMaxTimes),
					RateLimit(c.ConsumeRateLimit), strconv.FormatBool(c.ConsumeMessageOrderly), c.GroupRetryPolicy.String()}
			}
			return p.Table([]string{"#Group", "#Brokers", "#Consume Enable", "#Broadcast Enable", "#Retry Queues", "#Retry Max Times", "#Rate Limit",
				"#Orderly", "#Retry Policy"}, rows)
		},
	}
	cmdutil.AddTargetFlags(cmd, &t)
	f.AddOutputFlag(cmd, true)
	return cmd
}
