package namesrv

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

func newWriteCmd(f *cmdutil.Factory, wipe bool) *cobra.Command {
	var broker string
	use, short := "add-write", "Give a broker's queues write permission again in every name server's routes"
	if wipe {
		use, short = "wipe-write", "Remove write permission from a broker's queues in every name server's routes"
	}
	cmd := &cobra.Command{
		Use:   use + " -b BROKER_NAME",
		Short: short,
		Long: short + `.

Only the name servers' routes change, until the broker next registers with
a changed topic table or restarts. To take a broker out of write service
for good, use "mqadmin broker write-disable".`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return RunWrite(f, broker, wipe) },
	}
	cmd.Flags().StringVarP(&broker, "broker", "b", "", "broker name (required)")
	_ = cmd.MarkFlagRequired("broker")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunWrite wipes or adds the write bit and prints the topics changed per
// name server (Java's wipeWritePerm / addWritePerm).
func RunWrite(f *cmdutil.Factory, broker string, wipe bool) error {
	a, err := f.Admin()
	if err != nil {
		return err
	}
	res, err := a.SetWritePerm(broker, wipe)
	if err != nil {
		return err
	}
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(res)
	}
	rows := make([][]string, len(res))
	for i, r := range res {
		rows[i] = []string{r.Addr, broker, strconv.Itoa(r.Count)}
	}
	return p.Table([]string{"#Name Server", "#Broker Name", "#Topics Changed"}, rows)
}
