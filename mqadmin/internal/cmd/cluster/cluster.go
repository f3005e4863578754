// Package cluster implements "mqadmin cluster list".
package cluster

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

// NewCmd returns the cluster command group.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Clusters and their brokers",
	}
	cmd.AddCommand(newListCmd(f))
	return cmd
}

// ListOptions are the inputs of cluster list (Java's clusterList).
type ListOptions struct {
	Cluster string
	// More switches to yesterday's and today's message totals (-m).
	More bool
}

func newListCmd(f *cmdutil.Factory) *cobra.Command {
	o := &ListOptions{}
	cmd := &cobra.Command{
		Use:   "list [-c CLUSTER] [-m]",
		Short: "Every broker with its role, version, TPS, today's totals, disk use, master epoch and replication lag",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunList(f, o) },
	}
	cmd.Flags().StringVarP(&o.Cluster, "cluster", "c", "", "only this cluster")
	cmd.Flags().BoolVarP(&o.More, "more", "m", false, "yesterday's and today's message totals instead")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunList prints one row per broker. Brokers that do not answer are
// listed with "-" figures and make the command fail after the table.
func RunList(f *cmdutil.Factory, o *ListOptions) error {
	a, err := f.Admin()
	if err != nil {
		return err
	}
	brs, failed := a.ClusterRuntime(o.Cluster)
	if brs == nil {
		return failed
	}
	p := f.Printer()
	if p.IsJSON() {
		if err := p.JSON(brs); err != nil {
			return err
		}
		return failed
	}
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	rows := make([][]string, len(brs))
	for i, r := range brs {
		id := i64(r.ID)
		switch {
		case r.Error != "" && o.More:
			rows[i] = []string{r.Cluster, r.Name, id, r.Addr}
			continue
		case r.Error != "":
			rows[i] = []string{r.Cluster, r.Name, id, r.ReplicaRole(), r.Addr}
			continue
		case o.More:
			rows[i] = []string{r.Cluster, r.Name, id, r.Addr, i64(r.InTotalYest), i64(r.OutTotalYest), i64(r.InTotalToday), i64(r.OutTotalToday)}
			continue
		}
		epoch, lag := "", ""
		if r.MasterEpoch != nil {
			epoch = i64(*r.MasterEpoch)
		}
		if r.LagBytes != nil {
			lag = i64(*r.LagBytes)
		}
		rows[i] = []string{r.Cluster, r.Name, id, r.ReplicaRole(), r.Addr, r.Version,
			fmt.Sprintf("%.2f(%d,%dms)", r.InTPS, r.SendQueue, r.SendWaitMs),
			fmt.Sprintf("%.2f(%d,%dms)", r.OutTPS, r.PullQueue, r.PullWaitMs),
			i64(r.InTotalToday), i64(r.OutTotalToday), i64(r.PageCacheMs),
			fmt.Sprintf("%.2f", r.Hours), fmt.Sprintf("%.4f", r.Space), epoch, lag}
	}
	headers := []string{"#Cluster Name", "#Broker Name", "#BID", "#Role", "#Addr", "#Version", "#InTPS(LOAD)", "#OutTPS(LOAD)",
		"#InTotalToday", "#OutTotalToday", "#PCWait(ms)", "#Hour", "#SPACE", "#MasterEpoch", "#Lag(bytes)"}
	if o.More {
		headers = []string{"#Cluster Name", "#Broker Name", "#BID", "#Addr", "#InTotalYest", "#OutTotalYest", "#InTotalToday", "#OutTotalToday"}
	}
	if err := p.Table(headers, padRows(rows, len(headers))); err != nil {
		return err
	}
	return failed
}

// padRows fills short rows (brokers that did not answer) with empty cells.
func padRows(rows [][]string, n int) [][]string {
	for i, r := range rows {
		for len(r) < n {
			r = append(r, "")
		}
		rows[i] = r
	}
	return rows
}
