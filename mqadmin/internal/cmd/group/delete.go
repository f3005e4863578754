package group

import (
	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

// DeleteOptions are the inputs of group delete (Java's deleteSubGroup).
type DeleteOptions struct {
	Target       admin.Target
	Group        string
	RemoveOffset bool
}

func newDeleteCmd(f *cmdutil.Factory) *cobra.Command {
	o := &DeleteOptions{}
	cmd := &cobra.Command{
		Use:   "delete -g GROUP (-c CLUSTER | -b BROKER) [--remove-offset]",
		Short: "Delete a consumer group (on a cluster also its retry and dead-letter topics)",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunDelete(f, o) },
	}
	cmd.Flags().StringVarP(&o.Group, "group", "g", "", "group name (required)")
	cmdutil.AddTargetFlags(cmd, &o.Target)
	cmd.Flags().BoolVar(&o.RemoveOffset, "remove-offset", false, "also delete the group's committed offsets")
	_ = cmd.MarkFlagRequired("group")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunDelete deletes the group and prints where from.
func RunDelete(f *cmdutil.Factory, o *DeleteOptions) error {
	if err := cmdutil.RequireTarget(o.Target); err != nil {
		return err
	}
	a, err := f.Admin()
	if err != nil {
		return err
	}
	brokers, err := a.DeleteGroup(o.Target, o.Group, o.RemoveOffset)
	if err != nil {
		return err
	}
	return printBrokers(f, o.Group, brokers, nil)
}
