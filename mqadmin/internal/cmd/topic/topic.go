// Package topic implements "mqadmin topic …": create/update, delete, list,
// route and status.
package topic

import (
	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

// NewCmd returns the topic command group.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, inspect and delete topics",
	}
	cmd.AddCommand(newCreateCmd(f), newDeleteCmd(f), newListCmd(f), newRouteCmd(f), newStatusCmd(f))
	return cmd
}
