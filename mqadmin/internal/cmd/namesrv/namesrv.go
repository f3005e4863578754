// Package namesrv implements "mqadmin namesrv …": name-server
// configuration, the KV store, and route-only write-permission changes.
package namesrv

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

// NewCmd returns the namesrv command group.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "namesrv",
		Short: "Name-server configuration, KV store and route write permission",
	}
	config := &cobra.Command{
		Use:   "config",
		Short: "Print every name server's configuration",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunConfig(f) },
	}
	f.AddOutputFlag(config, true)
	config.AddCommand(newConfigSetCmd(f))
	cmd.AddCommand(config, newKVCmd(f), newWriteCmd(f, true), newWriteCmd(f, false))
	return cmd
}

// RunConfig prints "#Name Server #Key #Value" rows (Java's getNamesrvConfig).
func RunConfig(f *cmdutil.Factory) error {
	a, err := f.Admin()
	if err != nil {
		return err
	}
	cfgs, err := a.NamesrvConfig()
	if err != nil {
		return err
	}
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(cfgs)
	}
	var rows [][]string
	for _, ns := range a.NameServers() {
		for _, k := range slices.Sorted(maps.Keys(cfgs[ns])) {
			rows = append(rows, []string{ns, k, cfgs[ns][k]})
		}
	}
	return p.Table([]string{"#Name Server", "#Key", "#Value"}, rows)
}

func newConfigSetCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set KEY=VALUE...",
		Short: "Change name-server configuration keys on every name server",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			kv := map[string]string{}
			for _, a := range args {
				k, v, ok := strings.Cut(a, "=")
				if !ok || k == "" {
					return fmt.Errorf("%q is not KEY=VALUE", a)
				}
				kv[k] = v
			}
			a, err := f.Admin()
			if err != nil {
				return err
			}
			if err := a.UpdateNamesrvConfig(kv); err != nil {
				return err
			}
			return printNamesrvs(f, a.NameServers(), "#Updated", strings.Join(sortedPairs(kv), ","))
		},
	}
	f.AddOutputFlag(cmd, true)
	return cmd
}

// printNamesrvs prints one row per name server with a fixed last column.
func printNamesrvs(f *cmdutil.Factory, nss []string, header, value string) error {
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(nss)
	}
	rows := make([][]string, len(nss))
	for i, ns := range nss {
		rows[i] = []string{ns, value}
	}
	return p.Table([]string{"#Name Server", header}, rows)
}

func sortedPairs(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}
