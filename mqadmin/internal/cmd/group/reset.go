package group

import (
	"errors"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

// ResetOptions are the inputs of group reset-offset (Java's
// resetOffsetByTime and skipAccumulatedMessage).
type ResetOptions struct {
	Group string
	Topic string
	// Time is read by ParseTime; Latest jumps to the end instead.
	Time   string
	Latest bool
	Force  bool
}

func newResetCmd(f *cmdutil.Factory) *cobra.Command {
	o := &ResetOptions{}
	cmd := &cobra.Command{
		Use:   "reset-offset -g GROUP -t TOPIC (--to-time T | --to-latest)",
		Short: "Move a group's offsets on a topic to a point in time, or skip its backlog",
		Long: `Move a group's offsets on a topic to the message stored nearest a time (as
RocketMQ's resetOffsetByTime does: "now" re-delivers the newest message of each
queue), or to the end of every queue (--to-latest). An online group is reset
through its clients; an offline group's offsets are committed directly, and
the group must exist. Without --force a queue only ever moves back.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return RunReset(f, o) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Group, "group", "g", "", "consumer group (required)")
	fl.StringVarP(&o.Topic, "topic", "t", "", "topic (required)")
	fl.StringVar(&o.Time, "to-time", "", "time: now, today, epoch ms, -1h, 2006-01-02 15:04:05, RFC 3339, yyyy-MM-dd#HH:mm:ss:SSS")
	fl.BoolVar(&o.Latest, "to-latest", false, "skip everything not yet consumed")
	fl.BoolVar(&o.Force, "force", true, "also move queues forwards")
	_ = cmd.MarkFlagRequired("group")
	_ = cmd.MarkFlagRequired("topic")
	cmd.MarkFlagsMutuallyExclusive("to-time", "to-latest")
	cmd.MarkFlagsOneRequired("to-time", "to-latest")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunReset resets and prints the new offsets: three columns when clients
// did it, Java's six-column rollback table when offsets were committed.
func RunReset(f *cmdutil.Factory, o *ResetOptions) error {
	ts := admin.ResetLatest
	if !o.Latest {
		if o.Time == "" {
			return errors.New("give --to-time or --to-latest")
		}
		var err error
		if ts, err = cmdutil.ParseTime(o.Time, time.Now()); err != nil {
			return err
		}
	}
	a, err := f.Admin()
	if err != nil {
		return err
	}
	res, err := a.ResetOffset(o.Group, o.Topic, ts, o.Force)
	if err != nil {
		return err
	}
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(res)
	}
	rows := make([][]string, len(res.Queues))
	for i, q := range res.Queues {
		if res.Online {
			rows[i] = []string{q.BrokerName, strconv.Itoa(q.QueueID), i64(q.Offset)}
		} else {
			rows[i] = []string{q.BrokerName, strconv.Itoa(q.QueueID), i64(q.BrokerOffset), i64(q.ConsumerOffset), i64(q.TimestampOffset), i64(q.Offset)}
		}
	}
	if res.Online {
		return p.Table([]string{"#brokerName", "#queueId", "#offset"}, rows)
	}
	return p.Table([]string{"#brokerName", "#queueId", "#brokerOffset", "#consumerOffset", "#timestampOffset", "#resetOffset"}, rows)
}
