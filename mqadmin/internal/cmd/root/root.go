// Package root assembles the mqadmin command tree: the noun-verb commands,
// then Java mqadmin's classic command names.
package root

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmd/acl"
	"github.com/mqops/mqops/mqadmin/internal/cmd/amqp"
	"github.com/mqops/mqops/mqadmin/internal/cmd/broker"
	"github.com/mqops/mqops/mqadmin/internal/cmd/classic"
	"github.com/mqops/mqops/mqadmin/internal/cmd/cluster"
	"github.com/mqops/mqops/mqadmin/internal/cmd/config"
	"github.com/mqops/mqops/mqadmin/internal/cmd/controller"
	"github.com/mqops/mqops/mqadmin/internal/cmd/group"
	"github.com/mqops/mqops/mqadmin/internal/cmd/ha"
	"github.com/mqops/mqops/mqadmin/internal/cmd/hosts"
	"github.com/mqops/mqops/mqadmin/internal/cmd/message"
	"github.com/mqops/mqops/mqadmin/internal/cmd/namesrv"
	"github.com/mqops/mqops/mqadmin/internal/cmd/producer"
	"github.com/mqops/mqops/mqadmin/internal/cmd/stats"
	"github.com/mqops/mqops/mqadmin/internal/cmd/topic"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/version"
)

func init() {
	// Java mqadmin matches command names case-insensitively; scripts
	// written for it say "updatetopic" as often as "updateTopic".
	cobra.EnableCaseInsensitive = true
}

// Help group ids.
const (
	groupCore    = "core"
	groupClassic = "classic"
)

// New returns the root command bound to f.
func New(f *cmdutil.Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "mqadmin",
		Short: "Operate RocketMQ-compatible clusters: topics, messages, groups, brokers, name servers",
		Long: `mqadmin operates RocketMQ-compatible clusters (mqops or Apache RocketMQ 4.9).

The name server comes from -n/--namesrv, else $NAMESRV_ADDR, else the current
context of ~/.mqadmin.yaml (see "mqadmin config"). Tables are the default
output; -o json prints machine-readable results. Any failure exits non-zero
with a one-line reason on stderr.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       version.Version,
	}
	root.SetVersionTemplate(version.String("mqadmin") + "\n")
	pf := root.PersistentFlags()
	pf.StringVarP(&f.Namesrv, "namesrv", "n", "", `name server list, ";"-separated (default: $NAMESRV_ADDR, then the config file)`)
	pf.StringVar(&f.ConfigFile, "config", "", "config file with cluster contexts (default ~/.mqadmin.yaml)")
	pf.StringVar(&f.Context, "cluster-context", "", "context of the config file to use instead of its current-context")
	pf.DurationVar(&f.Timeout, "timeout", admin.DefaultTimeout, "timeout of each request")
	pf.IntVar(&f.Parallel, "parallel", admin.DefaultParallel, "brokers or name servers asked at once")
	pf.StringVar(&f.AccessKey, "access-key", "", "ACL access key to sign requests with (default: $MQADMIN_ACCESS_KEY, the context's accessKey, $ROCKETMQ_HOME/conf/tools.yml)")
	pf.StringVar(&f.SecretKey, "secret-key", "", "ACL secret key (default: $MQADMIN_SECRET_KEY, the context's secretKey, tools.yml)")
	pf.BoolVar(&f.TLS.Enable, "tls", false, "connect with TLS, as to a name server or broker with tlsServerMode=enforcing (default: $"+cmdutil.EnvTLS+", then the context's tls)")
	pf.StringVar(&f.TLS.CAFile, "tls-ca-file", "", "PEM authorities to verify the server certificate with instead of the system's ($"+cmdutil.EnvTLSCAFile+")")
	pf.StringVar(&f.TLS.ServerName, "tls-server-name", "", "name the server certificate must carry (default: the host dialled; $"+cmdutil.EnvTLSServerName+")")
	pf.BoolVar(&f.TLS.InsecureSkipVerify, "tls-insecure-skip-verify", false, "accept any server certificate, e.g. a self-signed one: encrypted but not authenticated ($"+cmdutil.EnvTLSInsecure+")")
	f.TLSFlagSet = func(name string) bool { return pf.Changed(name) }
	root.SetGlobalNormalizationFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "namesrvAddr" { // Java's long name for -n
			name = "namesrv"
		}
		return pflag.NormalizedName(name)
	})
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())
	})

	root.AddGroup(&cobra.Group{ID: groupCore, Title: "Commands:"}, &cobra.Group{ID: groupClassic, Title: "Classic RocketMQ commands:"})
	for _, c := range []*cobra.Command{topic.NewCmd(f), message.NewCmd(f), group.NewCmd(f), producer.NewCmd(f),
		broker.NewCmd(f), cluster.NewCmd(f), ha.NewCmd(f), controller.NewCmd(f), namesrv.NewCmd(f), stats.NewCmd(f), config.NewCmd(f),
		hosts.NewCmd(f), acl.NewCmd(f), amqp.NewCmd(f)} {
		c.GroupID = groupCore
		root.AddCommand(c)
	}
	for _, c := range classic.NewCmds(f) {
		c.GroupID = groupClassic
		root.AddCommand(c)
	}
	for _, c := range root.Commands() {
		rejectUnknownSubcommands(c)
	}
	return root
}

// rejectUnknownSubcommands makes a command group fail on a word that is
// none of its subcommands ("mqadmin topic lst"); cobra would print the
// group's help and exit 0, which scripts would take for success.
func rejectUnknownSubcommands(c *cobra.Command) {
	if !c.HasSubCommands() {
		return
	}
	if !c.Runnable() {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q (see '%s --help')", args[0], cmd.CommandPath(), cmd.CommandPath())
			}
			return cmd.Help()
		}
	}
	for _, sub := range c.Commands() {
		rejectUnknownSubcommands(sub)
	}
}

// Main runs mqadmin with os.Args and returns the exit status.
func Main() int {
	return run(os.Args[1:], os.Stdout, os.Stderr)
}

func run(args []string, stdout, stderr io.Writer) int {
	f := &cmdutil.Factory{Out: stdout, ErrOut: stderr, Getenv: os.Getenv}
	defer f.Close()
	cmd := New(f)
	cmd.SetArgs(classic.RewriteArgs(args))
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(stderr, "mqadmin: "+strings.Join(strings.Fields(err.Error()), " "))
		return 1
	}
	return 0
}
