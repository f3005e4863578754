package group

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/mqadmin/internal/output"
)

// StatusOptions are the inputs of group status (Java's consumerStatus).
type StatusOptions struct {
	Group string
	// ClientID picks one client; "" asks every online client.
	ClientID string
	// Broker relays the requests (address or name); "" uses the brokers
	// that serve the group.
	Broker string
	JStack bool
}

// StatusView is group status -o json.
type StatusView struct {
	Group   string                       `json:"group"`
	Clients []*admin.ConsumerRunningInfo `json:"clients"`
	admin.RunningInfoAnalysis
}

func newStatusCmd(f *cmdutil.Factory) *cobra.Command {
	o := &StatusOptions{}
	cmd := &cobra.Command{
		Use:   "status -g GROUP [-c CLIENT_ID] [-b BROKER] [--jstack]",
		Short: "Ask a group's clients for their running state: subscriptions, rates, process queues",
		Long: `Ask the online clients of a consumer group (or one, with -c) for their running
state (GET_CONSUMER_RUNNING_INFO, relayed by a broker): client version and
settings, subscriptions, pull and consume rates per topic, and the local
process queue of every queue the client holds (consumer offset, cached
messages, lock, last pull and consume). --jstack adds the client's thread
(goroutine) dump. Without -c the output ends with whether the clients
subscribe alike and which queues, if any, more than one client holds.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return RunStatus(f, o) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Group, "group", "g", "", "consumer group (required)")
	fl.StringVarP(&o.ClientID, "client", "c", "", "client id (default: every online client)")
	fl.StringVarP(&o.Broker, "broker", "b", "", "broker to relay through, address or name (default: the group's brokers)")
	fl.BoolVar(&o.JStack, "jstack", false, "include the client's thread (goroutine) dump")
	_ = cmd.MarkFlagRequired("group")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunStatus queries the client(s) and prints one block of tables each.
func RunStatus(f *cmdutil.Factory, o *StatusOptions) error {
	a, err := f.Admin()
	if err != nil {
		return err
	}
	var infos []*admin.ConsumerRunningInfo
	if o.ClientID != "" {
		info, err := a.RunningInfo(o.Broker, o.Group, o.ClientID, o.JStack)
		if err != nil {
			return err
		}
		infos = []*admin.ConsumerRunningInfo{info}
	} else if infos, err = a.GroupRunningInfo(o.Broker, o.Group, o.JStack); err != nil {
		return err
	}
	view := StatusView{Group: o.Group, Clients: infos, RunningInfoAnalysis: admin.AnalyzeRunningInfo(infos)}
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(view)
	}
	if o.ClientID == "" {
		rows := make([][]string, len(infos))
		for i, info := range infos {
			cached := int64(0)
			for _, q := range info.Queues {
				cached += q.CachedMsgCount
			}
			rows[i] = []string{strconv.Itoa(i + 1), info.ClientID, info.Properties[admin.PropClientVersion],
				strconv.Itoa(len(info.Queues)), i64(cached)}
		}
		if err := p.Table([]string{"#Index", "#ClientId", "#Version", "#Queues", "#Cached Msgs"}, rows); err != nil {
			return err
		}
		p.Printf("\n")
	}
	for i, info := range infos {
		if i > 0 {
			p.Printf("\n")
		}
		if err := printRunningInfo(p, info); err != nil {
			return err
		}
	}
	if o.ClientID == "" {
		shared := "none"
		if len(view.SharedQueues) > 0 {
			shared = strings.Join(view.SharedQueues, ", ")
		}
		p.Printf("\nClients: %d\nSubscriptions Consistent: %t\nQueues Held Twice: %s\n", len(infos), view.SubscriptionsConsistent, shared)
	}
	return nil
}

// runningLabels name the well-known properties, in print order.
var runningLabels = []struct{ key, label string }{
	{admin.PropClientVersion, "Client Version"},
	{admin.PropConsumeType, "Consume Type"},
	{admin.PropConsumeOrderly, "Consume Orderly"},
	{admin.PropThreadPoolCore, "Thread Pool Core"},
	{admin.PropConsumerStart, "Start Time"},
	{admin.PropNamesrvAddr, "Name Servers"},
}

// printRunningInfo prints a client's block: properties, then the
// subscription, rate and process-queue tables, then the dump if any.
func printRunningInfo(p *output.Printer, info *admin.ConsumerRunningInfo) error {
	line := func(label, value string) {
		if value == "" {
			value = "-"
		}
		p.Printf("%-24s %s\n", label+":", value)
	}
	line("Client ID", info.ClientID)
	known := map[string]bool{}
	for _, l := range runningLabels {
		known[l.key] = true
		v := info.Properties[l.key]
		if l.key == admin.PropConsumerStart {
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
				v = output.Time(ms)
			}
		}
		line(l.label, v)
	}
	for _, k := range slices.Sorted(maps.Keys(info.Properties)) {
		if !known[k] {
			line(k, info.Properties[k])
		}
	}

	subs := make([][]string, len(info.Subscriptions))
	for i, s := range info.Subscriptions {
		subs[i] = []string{s.Topic, s.ExpressionType, s.SubString}
	}
	p.Printf("\n")
	if err := p.Table([]string{"#Topic", "#Expression Type", "#SubExpression"}, subs); err != nil {
		return err
	}

	f2 := func(v float64) string { return fmt.Sprintf("%.2f", v) }
	rates := make([][]string, 0, len(info.StatusTable))
	for _, t := range slices.Sorted(maps.Keys(info.StatusTable)) {
		s := info.StatusTable[t]
		rates = append(rates, []string{t, f2(s.PullRT), f2(s.PullTPS), f2(s.ConsumeRT), f2(s.ConsumeOKTPS), f2(s.ConsumeFailedTPS), i64(s.ConsumeFailedMsgs)})
	}
	p.Printf("\n")
	if err := p.Table([]string{"#Topic", "#Pull RT", "#Pull TPS", "#Consume RT", "#ConsumeOK TPS", "#ConsumeFailed TPS", "#ConsumeFailedMsgsInHour"}, rates); err != nil {
		return err
	}

	queues := make([][]string, len(info.Queues))
	for i, q := range info.Queues {
		span := "-"
		if q.CachedMsgCount > 0 {
			span = i64(q.CachedMsgMinOffset) + "-" + i64(q.CachedMsgMaxOffset)
		}
		queues[i] = []string{q.Topic, q.BrokerName, strconv.Itoa(q.QueueID), i64(q.CommitOffset), i64(q.CachedMsgCount), span,
			i64(q.CachedMsgSizeInMiB), strconv.FormatBool(q.Locked), strconv.FormatBool(q.Dropped),
			output.Time(q.LastPullTimestamp), output.Time(q.LastConsumeTimestamp)}
	}
	p.Printf("\n")
	if err := p.Table([]string{"#Topic", "#Broker Name", "#QID", "#Consumer Offset", "#Cached Msgs", "#Cached Offsets",
		"#Cached MiB", "#Locked", "#Dropped", "#Last Pull", "#Last Consume"}, queues); err != nil {
		return err
	}
	if info.JStack != "" {
		p.Printf("\nJstack:\n%s\n", strings.TrimRight(info.JStack, "\n"))
	}
	return nil
}
