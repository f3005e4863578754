// Package config implements "mqadmin config …": the named cluster
// contexts of ~/.mqadmin.yaml, like kubectl's.
package config

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

// NewCmd returns the config command group.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Named cluster contexts in ~/.mqadmin.yaml",
		Long: `Named cluster contexts, kept in ~/.mqadmin.yaml (or --config):

  current-context: prod
  contexts:
    prod:
      namesrv: "10.0.0.1:9876;10.0.0.2:9876"
    staging:
      namesrv: "10.1.0.1:9876"

Commands use the current context unless -n, $NAMESRV_ADDR or
--cluster-context says otherwise. Context names are case-insensitive.`,
	}
	cmd.AddCommand(newGetContextsCmd(f), newUseContextCmd(f), newSetContextCmd(f), newCurrentContextCmd(f))
	return cmd
}

// Context is one row of get-contexts.
type Context struct {
	Name    string `json:"name"`
	Namesrv string `json:"namesrv"`
	Current bool   `json:"current"`
}

func newGetContextsCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get-contexts",
		Short: "List the contexts; * marks the current one",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			v, err := f.LoadConfig()
			if err != nil {
				return err
			}
			cur := strings.ToLower(v.GetString("current-context"))
			ctxs := []Context{}
			for _, name := range cmdutil.Contexts(v) {
				ctxs = append(ctxs, Context{Name: name, Namesrv: v.GetString("contexts." + name + ".namesrv"), Current: name == cur})
			}
			p := f.Printer()
			if p.IsJSON() {
				return p.JSON(ctxs)
			}
			rows := make([][]string, len(ctxs))
			for i, c := range ctxs {
				mark := ""
				if c.Current {
					mark = "*"
				}
				rows[i] = []string{mark, c.Name, c.Namesrv}
			}
			return p.Table([]string{"#Current", "#Name", "#Namesrv"}, rows)
		},
	}
	f.AddOutputFlag(cmd, true)
	return cmd
}

func newUseContextCmd(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "use-context NAME",
		Short: "Make a context the current one",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := f.LoadConfig()
			if err != nil {
				return err
			}
			name := strings.ToLower(args[0])
			if !v.IsSet("contexts." + name) {
				return fmt.Errorf("no context %q (have: %s)", name, strings.Join(cmdutil.Contexts(v), ", "))
			}
			v.Set("current-context", name)
			if err := f.SaveConfig(v); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Switched to context %q.\n", name)
			return nil
		},
	}
}

func newSetContextCmd(f *cmdutil.Factory) *cobra.Command {
	var namesrv string
	cmd := &cobra.Command{
		Use:   "set-context NAME --namesrv-addr ADDRS [--tls [--tls-ca-file F] [--tls-server-name N] [--tls-insecure-skip-verify]]",
		Short: "Create or change a context",
		Long: `Create or change a context. The global TLS flags given with it are saved in
the context (keys tls, tls-ca-file, tls-server-name, tls-insecure-skip-verify)
and apply to every later command that uses it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := f.LoadConfig()
			if err != nil {
				return err
			}
			name := strings.ToLower(args[0])
			v.Set("contexts."+name+".namesrv", namesrv)
			for key, val := range map[string]any{"tls": f.TLS.Enable, "tls-ca-file": f.TLS.CAFile,
				"tls-server-name": f.TLS.ServerName, "tls-insecure-skip-verify": f.TLS.InsecureSkipVerify} {
				if f.TLSFlagSet != nil && f.TLSFlagSet(key) {
					v.Set("contexts."+name+"."+key, val)
				}
			}
			if v.GetString("current-context") == "" {
				v.Set("current-context", name)
			}
			if err := f.SaveConfig(v); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Context %q set.\n", name)
			return nil
		},
	}
	// Not -n: that is the global name-server flag, which this must not use.
	cmd.Flags().StringVar(&namesrv, "namesrv-addr", "", `name servers of the context, ";"-separated (required)`)
	_ = cmd.MarkFlagRequired("namesrv-addr")
	return cmd
}

func newCurrentContextCmd(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "current-context",
		Short: "Print the current context's name",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := f.LoadConfig()
			if err != nil {
				return err
			}
			cur := v.GetString("current-context")
			if cur == "" {
				return fmt.Errorf("no current context in the config file")
			}
			fmt.Fprintln(cmd.OutOrStdout(), cur)
			return nil
		},
	}
}
