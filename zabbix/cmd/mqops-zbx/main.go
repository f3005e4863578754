// Command mqops-zbx is the Zabbix agent's helper for mqops (and Apache
// RocketMQ-protocol) brokers and name servers: each subcommand prints one
// JSON document for a UserParameter master item (zabbix/userparameter_*.conf)
// that the templates split into dependent items.
//
// A peer that does not answer is part of the answer ("up": 0 and the
// error), so the template's "down" triggers fire; bad flags and unusable
// state files exit 1 with a message, which the agent shows as the item's
// error.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/version"
	"github.com/mqops/mqops/zabbix/bizstats"
	"github.com/mqops/mqops/zabbix/logcount"
	"github.com/mqops/mqops/zabbix/probe"
	"github.com/mqops/mqops/zabbix/zbxd"
)

// defaultStateDir holds the read positions and counts; the agent's user
// must own it (the zabbix_agent role creates it).
const defaultStateDir = "/var/lib/mqops-zbx"

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "mqops-zbx:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	var timeout time.Duration
	root := &cobra.Command{
		Use:           "mqops-zbx",
		Short:         "Zabbix agent helper: broker, name-server and business figures as JSON",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(*cobra.Command, []string) {
			probe.Timeout = timeout
			// ACL keys, from the agent's environment as for mqadmin.
			probe.AccessKey, probe.SecretKey = os.Getenv("MQADMIN_ACCESS_KEY"), os.Getenv("MQADMIN_SECRET_KEY")
		},
	}
	root.PersistentFlags().DurationVar(&timeout, "timeout", 3*time.Second, "per-request timeout (keep the whole check under the agent's Timeout)")
	root.AddCommand(brokerCmd(), namesrvCmd(), controllerCmd(), clusterCmd(), statsCmd(), logsCmd(),
		backlogCmd(), businessCmd(), replicationCmd(), discoveryCmd(), canaryCmd(), amqpCmd(), amqpGatewayCmd(), getCmd())
	return root
}

// nsList accepts name servers separated by ';' (RocketMQ), ',' or spaces:
// the agent refuses ';' in item parameters unless UnsafeUserParameters=1.
func nsList(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return r == ';' || r == ',' || r == ' ' || r == '\t'
	}), ";")
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func brokerCmd() *cobra.Command {
	var addr, ns string
	c := &cobra.Command{
		Use:   "broker",
		Short: "A broker's health: permission, registration, disk, queues, TPS, slave lag",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return printJSON(probe.Broker(addr, nsList(ns)))
		},
	}
	c.Flags().StringVar(&addr, "addr", "127.0.0.1:10911", "broker address")
	c.Flags().StringVar(&ns, "namesrv", "", "name servers to check registration with (default: the broker's namesrvAddr)")
	return c
}

func namesrvCmd() *cobra.Command {
	var addr string
	c := &cobra.Command{
		Use:   "namesrv",
		Short: "A name server's view: broker groups, brokers, masters, topics",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return printJSON(probe.Namesrv(addr))
		},
	}
	c.Flags().StringVar(&addr, "addr", "127.0.0.1:9876", "name server address")
	return c
}

func controllerCmd() *cobra.Command {
	var addr string
	c := &cobra.Command{
		Use:   "controller",
		Short: "A controller's state: up, leader, ACL denials by reason and admin grants",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return printJSON(probe.Controller(addr))
		},
	}
	c.Flags().StringVar(&addr, "addr", "127.0.0.1:9878", "controller address")
	return c
}

// clusterFlags adds the --namesrv and --cluster flags most commands share.
func clusterFlags(c *cobra.Command, ns, cluster *string) {
	c.Flags().StringVarP(ns, "namesrv", "n", "127.0.0.1:9876", "name servers, separated by ';' or ','")
	c.Flags().StringVarP(cluster, "cluster", "c", "DefaultCluster", "cluster name")
}

func clusterCmd() *cobra.Command {
	var ns, cluster string
	c := &cobra.Command{
		Use:   "cluster",
		Short: "A cluster's status (0 OK, 1 degraded, 2 down), writable masters, name servers up",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return printJSON(probe.Cluster(nsList(ns), cluster))
		},
	}
	clusterFlags(c, &ns, &cluster)
	return c
}

// stateFile names a state file after what it follows, so one helper can
// serve several brokers on a host.
func stateFile(dir, kind, of string) (string, error) {
	abs, err := filepath.Abs(of)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(dir, kind+"-"+hex.EncodeToString(sum[:6])+".json"), nil
}

func stateDirFlag(c *cobra.Command, dir *string) {
	def := os.Getenv("MQOPS_ZBX_STATE_DIR")
	if def == "" {
		def = defaultStateDir
	}
	c.Flags().StringVar(dir, "state-dir", def, "where read positions and counts are kept ($MQOPS_ZBX_STATE_DIR)")
}

func statsCmd() *cobra.Command {
	var logDir, stateDir string
	c := &cobra.Command{
		Use:   "stats",
		Short: "Business figures from stats.log: per topic, topic@group and group, today / minute / 5 min / hour / day",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			log := filepath.Join(logDir, "stats.log")
			state, err := stateFile(stateDir, "stats", log)
			if err != nil {
				return err
			}
			col, err := bizstats.Update(log, state)
			if err != nil {
				return err
			}
			return printJSON(col.Report(time.Now()))
		},
	}
	c.Flags().StringVar(&logDir, "log-dir", "/var/log/mqops", "the broker's logDir")
	stateDirFlag(c, &stateDir)
	return c
}

func logsCmd() *cobra.Command {
	var logDir, stateDir string
	c := &cobra.Command{
		Use:   "logs",
		Short: "Running counts of log records by level and tag (broker, store, storeerror, namesrv)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			state, err := stateFile(stateDir, "logs", logDir)
			if err != nil {
				return err
			}
			counts, err := logcount.Update(logDir, state)
			if err != nil {
				return err
			}
			return printJSON(counts)
		},
	}
	c.Flags().StringVar(&logDir, "log-dir", "/var/log/mqops", "the daemons' logDir")
	stateDirFlag(c, &stateDir)
	return c
}

func backlogCmd() *cobra.Command {
	var ns, cluster string
	c := &cobra.Command{
		Use:   "backlog",
		Short: "Backlog, lag, online clients, retry and DLQ per group and per topic@group",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return printJSON(probe.ClusterBacklog(nsList(ns), cluster))
		},
	}
	clusterFlags(c, &ns, &cluster)
	return c
}

func businessCmd() *cobra.Command {
	var ns, cluster string
	c := &cobra.Command{
		Use:   "business",
		Short: "Produced and consumed today and last minute, summed over a cluster's masters",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return printJSON(probe.ClusterBusiness(nsList(ns), cluster))
		},
	}
	clusterFlags(c, &ns, &cluster)
	return c
}

func replicationCmd() *cobra.Command {
	var ns, cluster, ctrls string
	c := &cobra.Command{
		Use:   "replication",
		Short: "Replication per broker set and per slave (lag bytes and seconds, in-sync slaves), SyncStateSet, master epoch, controller leader",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return printJSON(probe.Replication(nsList(ns), cluster, nsList(ctrls)))
		},
	}
	clusterFlags(c, &ns, &cluster)
	c.Flags().StringVar(&ctrls, "controller", "", "controller addresses, separated by ';' or ','; empty: classic master-slave, no controller checks")
	return c
}

func discoveryCmd() *cobra.Command {
	var ns, cluster, broker string
	c := &cobra.Command{
		Use:   "discovery topics|groups|pairs|brokers|brokersets|replicas|accounts|amqpqueues",
		Short: "Low-level discovery JSON: topics, groups, group×topic pairs, brokers, broker sets, slaves, ACL accounts with a produce quota or AMQP queues",
		Long: "With --broker, topics and groups of that broker; otherwise of the cluster's masters.\n" +
			"Rows carry {#TOPIC.TYPE} and {#GROUP.TYPE} (normal, retry, dlq, system) for the templates' filters.\n" +
			"amqpqueues (--broker required): the AMQP queues of the vhosts that broker is home of, {#VHOST} and {#QUEUE}.",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"topics", "groups", "pairs", "brokers", "brokersets", "replicas", "accounts", "amqpqueues"},
		RunE: func(_ *cobra.Command, args []string) error {
			s := probe.Scope{Namesrv: nsList(ns), Cluster: cluster, Broker: broker}
			if broker != "" {
				s.Namesrv = ""
			}
			var rows []probe.Row
			var err error
			switch args[0] {
			case "topics":
				rows, err = probe.Topics(s)
			case "groups":
				rows, err = probe.Groups(s, false)
			case "pairs":
				rows, err = probe.Groups(s, true)
			case "brokers":
				rows, err = probe.Brokers(s.Namesrv, cluster)
			case "brokersets":
				rows, err = probe.BrokerSetRows(s.Namesrv, cluster)
			case "replicas":
				rows, err = probe.ReplicaRows(s.Namesrv, cluster)
			case "accounts":
				rows, err = probe.Accounts(s)
			case "amqpqueues":
				rows, err = probe.AMQPQueues(broker)
			default:
				return fmt.Errorf("unknown discovery %q: want topics, groups, pairs, brokers, brokersets, replicas, accounts or amqpqueues", args[0])
			}
			if err != nil {
				return err
			}
			return printJSON(rows)
		},
	}
	clusterFlags(c, &ns, &cluster)
	c.Flags().StringVarP(&broker, "broker", "b", "", "one broker's address instead of the cluster")
	return c
}

func amqpCmd() *cobra.Command {
	var addr string
	c := &cobra.Command{
		Use:   "amqp",
		Short: "A broker's AMQP engine: vhosts and, per queue, ready, unacked, consumers, paused, publish/deliver/ack counters",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return printJSON(probe.AMQP(addr))
		},
	}
	c.Flags().StringVar(&addr, "addr", "127.0.0.1:10911", "broker address")
	return c
}

func amqpGatewayCmd() *cobra.Command {
	var addr string
	c := &cobra.Command{
		Use:   "amqpgw",
		Short: "An AMQP gateway (mqamqp, or a broker's own) from its stats endpoint: connections, channels, consumers, blocked publishers, publish/deliver/settle counters",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return printJSON(probe.AMQPGateway(addr))
		},
	}
	c.Flags().StringVar(&addr, "addr", "127.0.0.1:15680", "the gateway's statsListenAddr")
	return c
}

func canaryCmd() *cobra.Command {
	var ns, cluster, topic, group string
	c := &cobra.Command{
		Use:   "canary",
		Short: "Send a message through every master with the official Go client and read it back (round-trip ms)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return printJSON(probe.ClusterCanary(nsList(ns), cluster, topic, group))
		},
	}
	clusterFlags(c, &ns, &cluster)
	c.Flags().StringVar(&topic, "topic", "MQOPS_CANARY", "canary topic (created on masters that lack it)")
	c.Flags().StringVar(&group, "group", "MQOPS_CANARY_GROUP", "canary producer and consumer group")
	return c
}

func getCmd() *cobra.Command {
	var agent string
	c := &cobra.Command{
		Use:   "get KEY",
		Short: "Ask a Zabbix agent for an item, as zabbix_get does (Debian ships no zabbix_get)",
		Example: `  mqops-zbx get -s 127.0.0.1:10050 agent.ping
  mqops-zbx get 'rocketmq.broker.get["127.0.0.1:10911",""]'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := zbxd.Get(agent, args[0], probe.Timeout)
			if err != nil {
				return err
			}
			fmt.Println(v)
			return nil
		},
	}
	c.Flags().StringVarP(&agent, "agent", "s", "127.0.0.1:10050", "agent address host:port")
	return c
}
