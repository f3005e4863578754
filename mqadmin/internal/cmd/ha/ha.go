// Package ha implements "mqadmin ha …": replication status on the
// brokers, and the SyncStateSets, elections and epochs of RocketMQ 5's
// controller mode (apache/rocketmq 5.x
// tools/src/main/java/org/apache/rocketmq/tools/command/ha/ and
// controller/ReElectMasterSubCommand.java).
package ha

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/mqadmin/internal/output"
	"github.com/mqops/mqops/wire"
)

// NewCmd returns the ha command group.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ha",
		Short: "Replication: slave connections and lag, SyncStateSets, elections, epochs",
	}
	cmd.AddCommand(newStatusCmd(f), newSyncStateCmd(f), newElectCmd(f), newEpochsCmd(f))
	return cmd
}

// ControllerFlag adds -a/--controller, the ";"-separated controller list.
func ControllerFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "controller", "a", "", `controller addresses, ";"-separated; any of them leads to the leader`)
	_ = cmd.MarkFlagRequired("controller")
}

// IntervalFlag adds -i/--interval: repeat every N seconds until interrupted.
func IntervalFlag(cmd *cobra.Command, p *int) {
	cmd.Flags().IntVarP(p, "interval", "i", 0, "repeat every N seconds until interrupted (0: once)")
}

// repeat runs fn once, or every interval seconds until it fails; rounds
// after the first start with a blank line.
func repeat(f *cmdutil.Factory, interval int, fn func() error) error {
	if interval < 0 {
		return fmt.Errorf("--interval must be 0 or more, got %d", interval)
	}
	for round := 0; ; round++ {
		if round > 0 {
			f.Printer().Printf("\n")
		}
		if err := fn(); err != nil || interval == 0 {
			return err
		}
		time.Sleep(time.Duration(interval) * time.Second)
	}
}

// StatusOptions select the brokers of ha status (Java's haStatus).
type StatusOptions struct {
	Target   admin.Target
	Interval int
}

func newStatusCmd(f *cmdutil.Factory) *cobra.Command {
	o := &StatusOptions{Target: admin.Target{WithSlaves: true}}
	cmd := &cobra.Command{
		Use:   "status (-b BROKER | -c CLUSTER)",
		Short: "Each master's slave connections (ack offset, lag, in sync, transfer rate) and each slave's master link",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunStatus(f, o) },
	}
	cmd.Flags().StringVarP(&o.Target.Broker, "broker", "b", "", "broker address (ip:port) or broker name (its master and slaves)")
	cmd.Flags().StringVarP(&o.Target.Cluster, "cluster", "c", "", "cluster name: every broker of the cluster")
	IntervalFlag(cmd, &o.Interval)
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunStatus prints GET_BROKER_HA_STATUS of each selected broker: masters
// in one table, a row per slave connection, then slaves in another.
func RunStatus(f *cmdutil.Factory, o *StatusOptions) error {
	if err := cmdutil.RequireTarget(o.Target); err != nil {
		return err
	}
	a, err := f.DirectAdmin()
	if err != nil {
		return err
	}
	return repeat(f, o.Interval, func() error {
		st, failed := a.HAStatuses(o.Target)
		return printAnswers(f.Printer(), st, failed, func(b admin.BrokerHA) string { return b.Error }, printStatus)
	})
}

// printAnswers prints the answers of the brokers asked, as JSON or with
// table, and returns failed (the brokers that did not answer). When none
// answered it prints nothing: no table of errors only.
func printAnswers[T any](p *output.Printer, answers []T, failed error, errOf func(T) string, table func(*output.Printer, []T) error) error {
	if !slices.ContainsFunc(answers, func(b T) bool { return errOf(b) == "" }) {
		return failed
	}
	var err error
	if p.IsJSON() {
		err = p.JSON(answers)
	} else {
		err = table(p, answers)
	}
	if err != nil {
		return err
	}
	return failed
}

// rowsPer returns n rows, each head followed by row(i); with n == 0 one
// row of head and blanks empty cells, so the head still shows.
func rowsPer(head []string, n, blanks int, row func(i int) []string) [][]string {
	if n == 0 {
		return [][]string{append(slices.Clone(head), make([]string, blanks)...)}
	}
	rows := make([][]string, n)
	for i := range rows {
		rows[i] = append(slices.Clone(head), row(i)...)
	}
	return rows
}

func printStatus(p *output.Printer, st []admin.BrokerHA) error {
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	kbs := func(v int64) string { return fmt.Sprintf("%.2f", float64(v)/1024) }
	var masters, slaves [][]string
	for _, b := range st {
		s := b.Status
		switch {
		case s == nil:
			// Listed where its role says, with the reason in the last cell.
			row := []string{b.Name, i64(b.ID), b.Addr}
			if b.ID == 0 {
				masters = append(masters, append(row, "", "", "", "", "", "", "", "", "", b.Error))
			} else {
				slaves = append(slaves, append(row, "", "", "", "", "", "", b.Error))
			}
		case s.Master:
			head := []string{b.Name, i64(b.ID), b.Addr, i64(s.MasterCommitLogMaxOffset), strconv.Itoa(len(s.HAConnectionInfo)), strconv.Itoa(int(s.InSyncSlaveNums))}
			masters = append(masters, rowsPer(head, len(s.HAConnectionInfo), 7, func(i int) []string {
				c := s.HAConnectionInfo[i]
				status := "Fall Behind"
				if c.InSync {
					status = "OK"
				}
				return []string{c.Addr, i64(c.SlaveAckOffset), i64(c.Diff), kbs(c.TransferredByteInSecond), status, i64(c.TransferFromWhere), ""}
			})...)
		default:
			c := s.HAClientRuntimeInfo
			slaves = append(slaves, []string{b.Name, i64(b.ID), b.Addr, c.MasterAddr, i64(c.MaxOffset), kbs(c.TransferredByteInSecond),
				output.Time(c.LastReadTimestamp), output.Time(c.LastWriteTimestamp), i64(c.MasterFlushOffset), ""})
		}
	}
	if len(masters) > 0 {
		if err := p.Table([]string{"#Broker Name", "#BID", "#MasterAddr", "#MasterCommitLogMaxOffset", "#SlaveNum", "#InSyncSlaveNum",
			"#SlaveAddr", "#SlaveAckOffset", "#Diff", "#TransferSpeed(KB/s)", "#Status", "#TransferFromWhere", "#Error"}, masters); err != nil {
			return err
		}
	}
	if len(slaves) > 0 {
		if len(masters) > 0 {
			p.Printf("\n")
		}
		return p.Table([]string{"#Broker Name", "#BID", "#SlaveAddr", "#MasterAddr", "#CommitLogMaxOffset", "#TransferSpeed(KB/s)",
			"#LastReadTime", "#LastWriteTime", "#MasterFlushOffset", "#Error"}, slaves)
	}
	return nil
}

// SyncStateOptions are the inputs of ha sync-state (Java's getSyncStateSet).
type SyncStateOptions struct {
	Controllers string
	BrokerName  string
	Cluster     string
	Interval    int
}

func newSyncStateCmd(f *cmdutil.Factory) *cobra.Command {
	o := &SyncStateOptions{}
	cmd := &cobra.Command{
		Use:   "sync-state -a CONTROLLERS (-b BROKER_NAME | -c CLUSTER)",
		Short: "Master, master epoch and SyncStateSet of broker sets, from the controller leader",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunSyncState(f, o) },
	}
	ControllerFlag(cmd, &o.Controllers)
	cmd.Flags().StringVarP(&o.BrokerName, "broker", "b", "", "broker set name")
	cmd.Flags().StringVarP(&o.Cluster, "cluster", "c", "", "cluster name: every broker set of the cluster (needs the name server)")
	IntervalFlag(cmd, &o.Interval)
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunSyncState prints CONTROLLER_GET_SYNC_STATE_DATA: a row per replica
// with its set's master and epochs, in sync or not, alive or not. Sets the
// controller does not know fail the command after the table.
func RunSyncState(f *cmdutil.Factory, o *SyncStateOptions) error {
	if (o.BrokerName == "") == (o.Cluster == "") {
		return errors.New("give exactly one of a broker name (-b) or a cluster (-c)")
	}
	a, err := f.DirectAdmin()
	if err != nil {
		return err
	}
	ctrls := admin.SplitAddrs(o.Controllers)
	return repeat(f, o.Interval, func() error {
		names := []string{o.BrokerName}
		if o.Cluster != "" {
			if names, err = a.BrokerNames(o.Cluster); err != nil {
				return err
			}
		}
		info, err := a.SyncStateData(ctrls, names)
		if err != nil {
			return err
		}
		var unknown []string
		for _, n := range names {
			if info.ReplicasInfoTable[n] == nil {
				unknown = append(unknown, n)
			}
		}
		if err := printSyncState(f.Printer(), names, info); err != nil {
			return err
		}
		if len(unknown) > 0 {
			return fmt.Errorf("broker set %s not known to the controller (not in controller mode, or never registered)", strings.Join(unknown, ", "))
		}
		return nil
	})
}

func printSyncState(p *output.Printer, names []string, info *wire.BrokerReplicasInfo) error {
	if p.IsJSON() {
		return p.JSON(info)
	}
	var rows [][]string
	for _, n := range names {
		ri := info.ReplicasInfoTable[n]
		if ri == nil {
			continue
		}
		master := ""
		if ri.MasterBrokerID != nil {
			master = strconv.FormatInt(*ri.MasterBrokerID, 10)
		}
		head := []string{n, master, ri.MasterAddress, strconv.Itoa(int(ri.MasterEpoch)), strconv.Itoa(int(ri.SyncStateSetEpoch)),
			strconv.Itoa(len(ri.InSyncReplicas))}
		replicas := slices.Concat(ri.InSyncReplicas, ri.NotInSyncReplicas)
		rows = append(rows, rowsPer(head, len(replicas), 4, func(i int) []string {
			r := replicas[i]
			return []string{strconv.FormatInt(r.BrokerID, 10), r.BrokerAddress, strconv.FormatBool(i < len(ri.InSyncReplicas)), strconv.FormatBool(r.Alive)}
		})...)
	}
	return p.Table([]string{"#brokerName", "#MasterBrokerId", "#MasterAddr", "#MasterEpoch", "#SyncStateSetEpoch", "#SyncStateSetNums",
		"#BrokerId", "#BrokerAddr", "#InSync", "#Alive"}, rows)
}

// ElectOptions are the inputs of ha elect (Java's electMaster).
type ElectOptions struct {
	Controllers string
	Cluster     string
	BrokerName  string
	BrokerID    int64
}

func newElectCmd(f *cmdutil.Factory) *cobra.Command {
	o := &ElectOptions{}
	cmd := &cobra.Command{
		Use:   "elect -a CONTROLLERS -b BROKER_NAME --id ID [-c CLUSTER]",
		Short: "Make one replica the master of its set (it must be alive and in the SyncStateSet)",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunElect(f, o) },
	}
	ControllerFlag(cmd, &o.Controllers)
	cmd.Flags().StringVarP(&o.BrokerName, "broker", "b", "", "broker set name")
	cmd.Flags().Int64Var(&o.BrokerID, "id", -1, "controller broker id of the replica to promote")
	cmd.Flags().StringVarP(&o.Cluster, "cluster", "c", "", "cluster name (the controller knows it; Java's electMaster requires it)")
	_ = cmd.MarkFlagRequired("broker")
	_ = cmd.MarkFlagRequired("id")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunElect asks the controller leader to elect o.BrokerID and prints the
// new master, the epochs and the set's members.
func RunElect(f *cmdutil.Factory, o *ElectOptions) error {
	if o.BrokerID < 0 {
		return fmt.Errorf("broker id must be 0 or more, got %d", o.BrokerID)
	}
	a, err := f.DirectAdmin()
	if err != nil {
		return err
	}
	e, err := a.ElectMaster(admin.SplitAddrs(o.Controllers), o.Cluster, o.BrokerName, o.BrokerID)
	if err != nil {
		return err
	}
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(e)
	}
	err = p.Table([]string{"#ClusterName", "#BrokerName", "#MasterBrokerId", "#BrokerMasterAddr", "#MasterEpoch", "#SyncStateSetEpoch", "#SyncStateSet"},
		[][]string{{e.ClusterName, e.BrokerName, strconv.FormatInt(e.MasterBrokerID, 10), e.MasterAddress, strconv.Itoa(int(e.MasterEpoch)),
			strconv.Itoa(int(e.SyncStateSetEpoch)), admin.FormatIDs(e.SyncStateSet)}})
	if err != nil || len(e.BrokerAddrs) == 0 {
		return err
	}
	var rows [][]string
	ids := make([]int64, 0, len(e.BrokerAddrs))
	for id := range e.BrokerAddrs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		rows = append(rows, []string{strconv.FormatInt(id, 10), e.BrokerAddrs[id]})
	}
	p.Printf("\n")
	return p.Table([]string{"#Broker", "#Addr"}, rows)
}

// EpochsOptions select the brokers of ha epochs (Java's getBrokerEpoch).
type EpochsOptions struct {
	Target   admin.Target
	Interval int
}

func newEpochsCmd(f *cmdutil.Factory) *cobra.Command {
	o := &EpochsOptions{}
	cmd := &cobra.Command{
		Use:   "epochs (-b BROKER | -c CLUSTER)",
		Short: "Each replica's master epochs and the commit-log range each one covers",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunEpochs(f, o) },
	}
	cmd.Flags().StringVarP(&o.Target.Broker, "broker", "b", "", "broker address (ip:port) or broker set name")
	cmd.Flags().StringVarP(&o.Target.Cluster, "cluster", "c", "", "cluster name: every broker of the cluster")
	IntervalFlag(cmd, &o.Interval)
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunEpochs prints GET_BROKER_EPOCH_CACHE of every selected replica, a row
// per epoch.
func RunEpochs(f *cmdutil.Factory, o *EpochsOptions) error {
	if err := cmdutil.RequireTarget(o.Target); err != nil {
		return err
	}
	a, err := f.DirectAdmin()
	if err != nil {
		return err
	}
	return repeat(f, o.Interval, func() error {
		es, failed := a.EpochCaches(o.Target)
		return printAnswers(f.Printer(), es, failed, func(b admin.BrokerEpochs) string { return b.Error }, printEpochs)
	})
}

func printEpochs(p *output.Printer, es []admin.BrokerEpochs) error {
	var rows [][]string
	for _, b := range es {
		if b.Epochs == nil {
			rows = append(rows, []string{b.Cluster, b.Name, b.Addr, strconv.FormatInt(b.ID, 10), "", "", "", b.Error})
			continue
		}
		// The broker's own answer names it even without a name server.
		head := []string{b.Epochs.ClusterName, b.Epochs.BrokerName, b.Addr, strconv.FormatInt(b.Epochs.BrokerID, 10)}
		rows = append(rows, rowsPer(head, len(b.Epochs.EpochList), 4, func(i int) []string {
			e := b.Epochs.EpochList[i]
			return []string{strconv.Itoa(int(e.Epoch)), strconv.FormatInt(e.StartOffset, 10), strconv.FormatInt(e.EndOffset, 10), ""}
		})...)
	}
	return p.Table([]string{"#clusterName", "#brokerName", "#brokerAddr", "#brokerId", "#Epoch", "#StartOffset", "#EndOffset", "#Error"}, rows)
}
