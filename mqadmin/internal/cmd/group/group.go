// Package group implements "mqadmin group …": consumer groups' configs,
// connections, progress and backlog, and offset resets.
package group

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/mqadmin/internal/output"
)

// NewCmd returns the group command group.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Consumer groups: list, progress, backlog, connections, create, delete, reset offsets",
	}
	cmd.AddCommand(newListCmd(f), newProgressCmd(f), newBacklogCmd(f), newConnectionsCmd(f),
		newCreateCmd(f), newDeleteCmd(f), newResetCmd(f))
	return cmd
}

// PrintConnections prints client connections (consumers or producers).
func PrintConnections(p *output.Printer, conns []admin.Connection) error {
	rows := make([][]string, len(conns))
	for i, c := range conns {
		rows[i] = []string{c.ClientID, c.ClientAddr, c.Language, c.VersionDesc}
	}
	return p.Table([]string{"#ClientId", "#ClientAddr", "#Language", "#Version"}, rows)
}

func i64(v int64) string { return strconv.FormatInt(v, 10) }
