package topic

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/wire"
)

// RouteOptions are the inputs of topic route.
type RouteOptions struct {
	Topic string
}

func newRouteCmd(f *cmdutil.Factory) *cobra.Command {
	o := &RouteOptions{}
	cmd := &cobra.Command{
		Use:   "route -t TOPIC",
		Short: "Show which brokers serve a topic, with queue counts and permissions",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunRoute(f, o) },
	}
	cmd.Flags().StringVarP(&o.Topic, "topic", "t", "", "topic name (required)")
	_ = cmd.MarkFlagRequired("topic")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunRoute prints the route; JSON is the name server's TopicRouteData.
func RunRoute(f *cmdutil.Factory, o *RouteOptions) error {
	a, err := f.Admin()
	if err != nil {
		return err
	}
	rd, err := a.TopicRoute(o.Topic)
	if err != nil {
		return err
	}
	configs := a.TopicConfigs(o.Topic, rd)
	types := a.TopicMessageTypes(o.Topic, rd)
	quotas, total := admin.ProduceQuotas(configs)
	p := f.Printer()
	if p.IsJSON() {
		// The name server's TopicRouteData, plus each master's
		// message.type (RocketMQ 5's topic attribute) and produce quota
		// (mqops attributes), and the cluster's total quota.
		return p.JSON(struct {
			*wire.TopicRouteData
			MessageTypes        map[string]string `json:"messageTypes"`
			ProduceQuotas       map[string]string `json:"produceQuotas"`
			ClusterProduceQuota string            `json:"clusterProduceQuota"`
		}{rd, types, quotas, total})
	}
	qds := append([]wire.QueueData(nil), rd.QueueDatas...)
	sort.Slice(qds, func(i, j int) bool { return qds[i].BrokerName < qds[j].BrokerName })
	var rows [][]string
	var reads, writes int
	for _, qd := range qds {
		cluster, addrs := "", ""
		for _, bd := range rd.BrokerDatas {
			if bd.BrokerName == qd.BrokerName {
				cluster, addrs = bd.Cluster, formatAddrs(bd.BrokerAddrs)
			}
		}
		reads += qd.ReadQueueNums
		writes += qd.WriteQueueNums
		rows = append(rows, []string{cluster, qd.BrokerName, addrs, strconv.Itoa(qd.ReadQueueNums), strconv.Itoa(qd.WriteQueueNums), strconv.Itoa(qd.Perm),
			types[qd.BrokerName], orDash(quotas[qd.BrokerName])})
	}
	if err := p.Table([]string{"#ClusterName", "#BrokerName", "#BrokerAddrs", "#ReadQueue", "#WriteQueue", "#Perm", "#MessageType", "#ProduceQuota"}, rows); err != nil {
		return err
	}
	p.Printf("Total: %d brokers, %d read queues, %d write queues\n", len(qds), reads, writes)
	if total != "" {
		// Quotas hold per broker: the cluster accepts their sum.
		p.Printf("Produce quota of the cluster: %s (the sum over the masters with write queues)\n", total)
	}
	return nil
}

// formatAddrs prints brokerAddrs as "0=ip:port,1=ip:port".
func formatAddrs(m map[int64]string) string {
	ids := make([]int64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%d=%s", id, m[id])
	}
	return strings.Join(parts, ",")
}
