// Package group implements "mqadmin group …": consumer groups' configs,
// connections, clients' running state, progress and backlog, offset
// resets, and pausing or rate-limiting consumption.
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
		Short: "Consumer groups: list, progress, backlog, connections, status, create, delete, reset offsets, pause, limit",
	}
	cmd.AddCommand(newListCmd(f), newProgressCmd(f), newBacklogCmd(f), newConnectionsCmd(f), newStatusCmd(f),
		newCreateCmd(f), newDeleteCmd(f), newResetCmd(f), newPauseCmd(f, true), newPauseCmd(f, false), newLimitCmd(f))
	return cmd
}

// PrintConnections prints client connections (consumers or producers).
func PrintConnections(p *output.Printer, conns []admin.Connection) error {
	rows := make([][]string, len(conns))
	for i, c := range conns {
		rows[i] = []string{c.ClientID, c.ClientAddr, c.Language, c.VersionDesc, c.Protocol}
	}
	return p.Table([]string{"#ClientId", "#ClientAddr", "#Language", "#Version", "#Protocol"}, rows)
}

func i64(v int64) string { return strconv.FormatInt(v, 10) }
