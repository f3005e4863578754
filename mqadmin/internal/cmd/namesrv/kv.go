package namesrv

import (
	"fmt"
	"maps"
	"slices"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

// KVOptions are the inputs of the kv commands (Java's updateKvConfig and
// deleteKvConfig).
type KVOptions struct {
	Namespace string
	Key       string
	Value     string
}

func newKVCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kv",
		Short: "The name servers' namespaced key/value store (e.g. ORDER_TOPIC_CONFIG)",
	}
	list := kvCmd(f, "list -s NAMESPACE", "List a namespace", false, false, func(o *KVOptions) error {
		a, err := f.Admin()
		if err != nil {
			return err
		}
		m, err := a.KVList(o.Namespace)
		if err != nil {
			return err
		}
		p := f.Printer()
		if p.IsJSON() {
			return p.JSON(m)
		}
		var rows [][]string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			rows = append(rows, []string{k, m[k]})
		}
		return p.Table([]string{"#Key", "#Value"}, rows)
	})
	get := kvCmd(f, "get -s NAMESPACE -k KEY", "Read one key", true, false, func(o *KVOptions) error {
		a, err := f.Admin()
		if err != nil {
			return err
		}
		v, found, err := a.KVGet(o.Namespace, o.Key)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("no key %s in namespace %s", o.Key, o.Namespace)
		}
		p := f.Printer()
		if p.IsJSON() {
			return p.JSON(map[string]string{o.Key: v})
		}
		return p.Table([]string{"#Key", "#Value"}, [][]string{{o.Key, v}})
	})
	put := kvCmd(f, "put -s NAMESPACE -k KEY -v VALUE", "Write one key on every name server", true, true, func(o *KVOptions) error {
		a, err := f.Admin()
		if err != nil {
			return err
		}
		if err := a.KVPut(o.Namespace, o.Key, o.Value); err != nil {
			return err
		}
		return printNamesrvs(f, a.NameServers(), "#Put", o.Namespace+"/"+o.Key+"="+o.Value)
	})
	del := kvCmd(f, "delete -s NAMESPACE -k KEY", "Delete one key on every name server", true, false, func(o *KVOptions) error {
		a, err := f.Admin()
		if err != nil {
			return err
		}
		if err := a.KVDelete(o.Namespace, o.Key); err != nil {
			return err
		}
		return printNamesrvs(f, a.NameServers(), "#Deleted", o.Namespace+"/"+o.Key)
	})
	cmd.AddCommand(list, get, put, del)
	return cmd
}

// kvCmd builds one kv verb with -s and, as needed, -k and -v.
func kvCmd(f *cmdutil.Factory, use, short string, key, value bool, run func(*KVOptions) error) *cobra.Command {
	o := &KVOptions{}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return run(o) },
	}
	cmd.Flags().StringVarP(&o.Namespace, "namespace", "s", "", "namespace (required)")
	_ = cmd.MarkFlagRequired("namespace")
	if key {
		cmd.Flags().StringVarP(&o.Key, "key", "k", "", "key (required)")
		_ = cmd.MarkFlagRequired("key")
	}
	if value {
		cmd.Flags().StringVarP(&o.Value, "value", "v", "", "value (required)")
		_ = cmd.MarkFlagRequired("value")
	}
	f.AddOutputFlag(cmd, true)
	return cmd
}
