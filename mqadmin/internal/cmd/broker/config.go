package broker

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

// ConfigSetOptions are the inputs of broker config set (Java's
// updateBrokerConfig).
type ConfigSetOptions struct {
	Target admin.Target
	KV     map[string]string
}

func newConfigSetCmd(f *cmdutil.Factory) *cobra.Command {
	o := &ConfigSetOptions{}
	cmd := &cobra.Command{
		Use:     "set (-b BROKER | -c CLUSTER) KEY=VALUE...",
		Short:   "Change broker configuration keys (persisted; some wait for a restart)",
		Example: "  mqadmin broker config set -c DefaultCluster fileReservedTime=48 deleteWhen=03",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			o.KV = map[string]string{}
			for _, a := range args {
				k, v, ok := strings.Cut(a, "=")
				if !ok || k == "" {
					return fmt.Errorf("%q is not KEY=VALUE", a)
				}
				o.KV[k] = v
			}
			return RunConfigSet(f, o)
		},
	}
	cmdutil.AddTargetFlags(cmd, &o.Target)
	cmd.Flags().BoolVarP(&o.Target.WithSlaves, "all", "a", false, "with -c, also slaves")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunConfigSet applies the keys and prints which brokers took them.
func RunConfigSet(f *cmdutil.Factory, o *ConfigSetOptions) error {
	if err := cmdutil.RequireTarget(o.Target); err != nil {
		return err
	}
	a, err := f.Admin()
	if err != nil {
		return err
	}
	brokers, err := a.UpdateBrokerConfig(o.Target, o.KV)
	if err != nil {
		return err
	}
	pairs := make([]string, 0, len(o.KV))
	for k, v := range o.KV {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	return printBrokers(f, brokers, "#Updated", strings.Join(pairs, ","), o.KV)
}

// printBrokers prints one row per broker with a fixed last column.
func printBrokers(f *cmdutil.Factory, brokers []admin.Broker, header, value string, kv map[string]string) error {
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(struct {
			Brokers []admin.Broker    `json:"brokers"`
			Config  map[string]string `json:"config"`
		}{brokers, kv})
	}
	rows := make([][]string, len(brokers))
	for i, b := range brokers {
		note := b.Note
		if note == "" {
			note = "-"
		}
		rows[i] = []string{b.Name, b.Addr, value, note}
	}
	return p.Table([]string{"#Broker Name", "#Broker Addr", header, "#Note"}, rows)
}
