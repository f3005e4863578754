package broker

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/wire"
)

func newWriteCmd(f *cmdutil.Factory, enable bool) *cobra.Command {
	var t admin.Target
	use, short := "write-disable", "Make brokers read-only (brokerPermission=4): sends are refused, consumers drain"
	if enable {
		use, short = "write-enable", "Make brokers writable again (brokerPermission=6)"
	}
	cmd := &cobra.Command{
		Use:   use + " (-b BROKER | -c CLUSTER)",
		Short: short,
		Long: short + `.

The broker itself enforces, persists and re-registers the permission, so it
survives restarts and every route follows — unlike "namesrv wipe-write",
which only edits the name servers' routes until the next registration.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return RunWrite(f, t, enable) },
	}
	cmdutil.AddTargetFlags(cmd, &t)
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunWrite sets brokerPermission on the selected brokers.
func RunWrite(f *cmdutil.Factory, t admin.Target, enable bool) error {
	if err := cmdutil.RequireTarget(t); err != nil {
		return err
	}
	a, err := f.Admin()
	if err != nil {
		return err
	}
	brokers, err := a.SetBrokerWritable(t, enable)
	if err != nil {
		return err
	}
	perm := strconv.Itoa(wire.PermRead)
	if enable {
		perm = strconv.Itoa(wire.PermRead | wire.PermWrite)
	}
	return printBrokers(f, brokers, "#Permission", perm, map[string]string{"brokerPermission": perm})
}
