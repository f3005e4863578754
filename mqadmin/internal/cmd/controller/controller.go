// Package controller implements "mqadmin controller …": the state of a
// RocketMQ 5 controller group (apache/rocketmq 5.x
// tools/src/main/java/org/apache/rocketmq/tools/command/controller/GetControllerMetaDataSubCommand.java).
package controller

import (
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmd/ha"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

// NewCmd returns the controller command group.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "The controller group: leader, peers",
	}
	cmd.AddCommand(newMetadataCmd(f))
	return cmd
}

// MetadataOptions are the inputs of controller metadata (Java's
// getControllerMetaData).
type MetadataOptions struct {
	Controllers string
}

func newMetadataCmd(f *cmdutil.Factory) *cobra.Command {
	o := &MetadataOptions{}
	cmd := &cobra.Command{
		Use:   "metadata -a CONTROLLERS",
		Short: "Each listed controller's group, the leader it knows, whether it leads, and the peers",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunMetadata(f, o) },
	}
	ha.ControllerFlag(cmd, &o.Controllers)
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunMetadata asks every listed controller (CONTROLLER_GET_METADATA_INFO)
// and prints a row each. Controllers that do not answer are listed with
// their error and fail the command after the table.
func RunMetadata(f *cmdutil.Factory, o *MetadataOptions) error {
	a, err := f.DirectAdmin()
	if err != nil {
		return err
	}
	ms, failed := a.ControllersMetadata(admin.SplitAddrs(o.Controllers))
	if !slices.ContainsFunc(ms, func(m admin.ControllerMeta) bool { return m.Error == "" }) {
		return failed // no table of errors only
	}
	p := f.Printer()
	if p.IsJSON() {
		if err := p.JSON(ms); err != nil {
			return err
		}
		return failed
	}
	rows := make([][]string, len(ms))
	for i, m := range ms {
		var peers []string
		for _, pr := range m.Peers {
			peers = append(peers, pr.ID+":"+pr.Addr)
		}
		rows[i] = []string{m.Addr, m.Group, m.LeaderID, m.LeaderAddress, strconv.FormatBool(m.IsLeader), strings.Join(peers, ";"), m.Error}
		if m.Error != "" {
			rows[i][4] = ""
		}
	}
	if err := p.Table([]string{"#Controller", "#ControllerGroup", "#ControllerLeaderId", "#ControllerLeaderAddress", "#IsLeader", "#Peers", "#Error"}, rows); err != nil {
		return err
	}
	return failed
}
