package group

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/wire"
)

// CreateOptions are the inputs of group create (Java's updateSubGroup).
type CreateOptions struct {
	Target admin.Target
	Config *wire.SubscriptionGroupConfig
	// RetryPolicy is RocketMQ 5's groupRetryPolicy as JSON ("" keeps
	// Java's default).
	RetryPolicy string
}

func newCreateCmd(f *cmdutil.Factory) *cobra.Command {
	o := &CreateOptions{Config: wire.NewSubscriptionGroupConfig("")}
	cmd := &cobra.Command{
		Use:     "create -g GROUP (-c CLUSTER | -b BROKER) [flags]",
		Aliases: []string{"update"},
		Short:   "Create a consumer group, or update its settings",
		Args:    cobra.NoArgs,
		RunE:    func(*cobra.Command, []string) error { return RunCreate(f, o) },
	}
	fl := cmd.Flags()
	g := o.Config
	fl.StringVarP(&g.GroupName, "group", "g", "", "group name (required)")
	cmdutil.AddTargetFlags(cmd, &o.Target)
	fl.BoolVar(&g.ConsumeEnable, "consume-enable", true, "allow consuming")
	fl.BoolVar(&g.ConsumeFromMinEnable, "consume-from-min", true, "a new group starts from the queue's minimum offset")
	fl.BoolVar(&g.ConsumeBroadcastEnable, "broadcast-enable", true, "allow broadcast consumers")
	fl.IntVar(&g.RetryQueueNums, "retry-queues", 1, "queues of the group's retry topic")
	fl.IntVar(&g.RetryMaxTimes, "retry-max-times", 16, "deliveries before a message goes to the dead-letter topic")
	fl.Int64Var(&g.BrokerID, "broker-id", 0, "broker id consumers read from")
	fl.Int64Var(&g.WhichBrokerWhenConsumeSlowly, "slow-broker-id", 1, "broker id to read from when consumers fall behind")
	fl.BoolVar(&g.NotifyConsumerIDsChangedEnable, "notify-ids-changed", true, "tell consumers when members join or leave")
	fl.IntVar(&g.ConsumeRateLimit, "rate-limit", 0, "messages per second each broker hands the group, 0 for unlimited")
	fl.BoolVar(&g.ConsumeMessageOrderly, "orderly", false, "RocketMQ 5 consumers get one message per message group at a time")
	fl.StringVar(&o.RetryPolicy, "retry-policy", "", `RocketMQ 5 retry policy as JSON, e.g. {"type":"EXPONENTIAL","exponentialRetryPolicy":{"initial":5000,"max":7200000,"multiplier":2}}`)
	_ = cmd.MarkFlagRequired("group")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunCreate writes the group config and prints where.
func RunCreate(f *cmdutil.Factory, o *CreateOptions) error {
	if err := cmdutil.RequireTarget(o.Target); err != nil {
		return err
	}
	if o.Config.ConsumeRateLimit < 0 {
		return errors.New("--rate-limit must be 0 (unlimited) or more")
	}
	if o.RetryPolicy != "" {
		p, err := ParseRetryPolicy(o.RetryPolicy)
		if err != nil {
			return err
		}
		o.Config.GroupRetryPolicy = p
	}
	a, err := f.Admin()
	if err != nil {
		return err
	}
	brokers, err := a.CreateGroup(o.Target, o.Config)
	if err != nil {
		return err
	}
	return printBrokers(f, o.Config.GroupName, brokers, o.Config)
}

func printBrokers(f *cmdutil.Factory, group string, brokers []admin.Broker, cfg *wire.SubscriptionGroupConfig) error {
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(struct {
			Group   string                        `json:"group"`
			Config  *wire.SubscriptionGroupConfig `json:"config,omitempty"`
			Brokers []admin.Broker                `json:"brokers"`
		}{group, cfg, brokers})
	}
	rows := make([][]string, len(brokers))
	for i, b := range brokers {
		rows[i] = []string{b.Name, b.Addr, group}
	}
	return p.Table([]string{"#Broker Name", "#Broker Addr", "#Group"}, rows)
}

// ParseRetryPolicy reads a groupRetryPolicy in the JSON of Java's
// updateSubGroup -p; unknown keys are refused.
func ParseRetryPolicy(s string) (*wire.GroupRetryPolicy, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var p wire.GroupRetryPolicy
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("groupRetryPolicy %q: %w", s, err)
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	return &p, nil
}
