// Package broker implements "mqadmin broker …": runtime status, live
// configuration, and taking brokers out of (and back into) write service.
package broker

import (
	"sort"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

// NewCmd returns the broker command group.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Broker runtime status, configuration and write permission",
	}
	config := &cobra.Command{Use: "config", Short: "Read or change a broker's configuration"}
	config.AddCommand(newConfigGetCmd(f), newConfigSetCmd(f))
	cmd.AddCommand(newStatusCmd(f), config, newWriteCmd(f, false), newWriteCmd(f, true))
	return cmd
}

// KVOptions select the brokers of status and config get.
type KVOptions struct {
	Target admin.Target
}

func newStatusCmd(f *cmdutil.Factory) *cobra.Command {
	o := &KVOptions{}
	cmd := &cobra.Command{
		Use:   "status (-b BROKER | -c CLUSTER)",
		Short: "A broker's runtime table: version, TPS, totals, disk, queues",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunStatus(f, o) },
	}
	cmdutil.AddTargetFlags(cmd, &o.Target)
	f.AddOutputFlag(cmd, true)
	return cmd
}

func newConfigGetCmd(f *cmdutil.Factory) *cobra.Command {
	o := &KVOptions{}
	cmd := &cobra.Command{
		Use:   "get (-b BROKER | -c CLUSTER)",
		Short: "Print the configuration a broker runs with",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunConfigGet(f, o) },
	}
	cmdutil.AddTargetFlags(cmd, &o.Target)
	cmd.Flags().BoolVarP(&o.Target.WithSlaves, "all", "a", false, "with -c, also slaves")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunStatus prints GET_BROKER_RUNTIME_INFO of each selected broker.
func RunStatus(f *cmdutil.Factory, o *KVOptions) error {
	return printKV(f, o.Target, (*admin.Admin).RuntimeInfo)
}

// RunConfigGet prints GET_BROKER_CONFIG of each selected broker.
func RunConfigGet(f *cmdutil.Factory, o *KVOptions) error {
	return printKV(f, o.Target, (*admin.Admin).BrokerConfig)
}

// printKV prints one key/value table per broker: "#Key #Value" for one
// broker, with a leading "#Broker Addr" column for several. JSON maps
// address to table.
func printKV(f *cmdutil.Factory, t admin.Target, get func(*admin.Admin, string) (map[string]string, error)) error {
	if err := cmdutil.RequireTarget(t); err != nil {
		return err
	}
	a, err := f.Admin()
	if err != nil {
		return err
	}
	brokers, err := a.Brokers(t)
	if err != nil {
		return err
	}
	kvs := make([]map[string]string, len(brokers))
	err = admin.FanOut(len(brokers), a.Parallel(), func(i int) (err error) {
		kvs[i], err = get(a, brokers[i].Addr)
		return err
	})
	if err != nil {
		return err
	}
	all := map[string]map[string]string{}
	var rows [][]string
	for i, b := range brokers {
		kv := kvs[i]
		all[b.Addr] = kv
		keys := make([]string, 0, len(kv))
		for k := range kv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if len(brokers) == 1 {
				rows = append(rows, []string{k, kv[k]})
			} else {
				rows = append(rows, []string{b.Addr, k, kv[k]})
			}
		}
	}
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(all)
	}
	if len(brokers) == 1 {
		return p.Table([]string{"#Key", "#Value"}, rows)
	}
	return p.Table([]string{"#Broker Addr", "#Key", "#Value"}, rows)
}
