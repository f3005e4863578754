// Package amqp implements "mqadmin amqp …": the AMQP gateway's vhosts,
// exchanges, queues and bindings, kept by the AMQP engine of each vhost's
// home broker, and pausing or rate-limiting a queue's consumption.
package amqp

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/wire"
)

// NewCmd returns the amqp command group.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "amqp",
		Short: "AMQP 0-9-1 gateway: vhosts, exchanges, queues, bindings, users; pause, resume, rate-limit queues",
		Long: `Manage what RabbitMQ applications see through the AMQP gateway (mqamqp).

Each vhost lives on its home broker: the master routing the vhost's store
topic (AMQP_STORE for "/", <vhost>%AMQP_STORE otherwise), or while it has
none the master whose name sorts first, as the gateways choose. -b/--broker
sends the request to another broker. Changes made here are seen by every
gateway at once; queues and exchanges declared here are not owned by any
connection.`,
	}
	cmd.AddCommand(newVhostCmd(f), newExchangeCmd(f), newQueueCmd(f), newBindingCmd(f), newUserCmd(f), newDefinitionsCmd(f), newShovelCmd(f))
	return cmd
}

// Where selects the vhost and, optionally, its broker.
type Where struct {
	Vhost  string
	Broker string
}

func whereFlags(f *cmdutil.Factory, cmd *cobra.Command, w *Where) {
	cmd.Flags().StringVar(&w.Vhost, "vhost", "/", "virtual host")
	cmd.Flags().StringVarP(&w.Broker, "broker", "b", "", "home broker (address or name) instead of the vhost's route")
	f.AddOutputFlag(cmd, true)
}

// parseArgs turns --arg key=value into an AMQP table: integers become
// signed 64-bit (RabbitMQ's x-message-ttl, x-max-length … accept them),
// true/false booleans, anything else a string.
func parseArgs(kvs []string) (wire.AMQPTable, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	t := wire.AMQPTable{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--arg %q: want key=value", kv)
		}
		switch {
		case v == "true" || v == "false":
			t[k] = v == "true"
		default:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				t[k] = n
			} else {
				t[k] = v
			}
		}
	}
	return t, nil
}

// formatArgs prints a table as key=value, sorted; "-" when empty.
func formatArgs(t wire.AMQPTable) string {
	if len(t) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, t[k])
	}
	return strings.Join(parts, ",")
}

func yes(b bool) string { return strconv.FormatBool(b) }

func u64(n uint64) string { return strconv.FormatUint(n, 10) }

// exchangeName prints the default exchange as RabbitMQ's tools do.
func exchangeName(n string) string {
	if n == "" {
		return "(AMQP default)"
	}
	return n
}

// done prints the outcome of a change: JSON for scripts, one line else.
func done(f *cmdutil.Factory, v any, line string) error {
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(v)
	}
	p.Printf("%s\n", line)
	return nil
}
