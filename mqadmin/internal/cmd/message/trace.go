package message

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/mqadmin/internal/output"
)

// TraceOptions are the inputs of message trace (Java's queryMsgTraceById).
// Begin and End are times as ParseTime reads them; empty means the epoch
// and now.
type TraceOptions struct {
	MsgID      string
	TraceTopic string
	Begin      string
	End        string
	Max        int
}

func newTraceCmd(f *cmdutil.Factory) *cobra.Command {
	o := &TraceOptions{}
	cmd := &cobra.Command{
		Use:   "trace --id MSGID [-t TRACE_TOPIC] [--begin T] [--end T] [--max N]",
		Short: "Show a message's trace: its send and every consume attempt, as the clients reported them",
		Long: `Show the trace of a message: the Pub record its producer wrote, and the
SubBefore/SubAfter records of every consume attempt, sorted by time. The id is
the client message id (UNIQ_KEY) that SendResult.MsgID and consumers show.

Clients write trace data only with tracing on (Java: enableMsgTrace; Go:
producer.WithTrace / consumer.WithTrace) and only if the trace topic exists
(the broker creates RMQ_SYS_TRACE_TOPIC with traceTopicEnable=true). They
send it asynchronously in batches, so it can lag the messages by a moment.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return RunTrace(f, o) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.MsgID, "id", "i", "", "client message id (UNIQ_KEY) (required)")
	fl.StringVarP(&o.TraceTopic, "trace-topic", "t", admin.DefaultTraceTopic, "trace topic")
	fl.StringVar(&o.Begin, "begin", "", "earliest store time of trace data (default: the epoch)")
	fl.StringVar(&o.End, "end", "", "latest store time of trace data (default now)")
	fl.IntVarP(&o.Max, "max", "m", 64, "most trace messages to read")
	_ = cmd.MarkFlagRequired("id")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunTrace looks the trace up and prints one row per record.
func RunTrace(f *cmdutil.Factory, o *TraceOptions) error {
	if o.Max < 1 {
		return fmt.Errorf("--max must be at least 1, got %d", o.Max)
	}
	begin, end, err := timeRange(o.Begin, o.End, 0, time.Now())
	if err != nil {
		return err
	}
	a, err := f.Admin()
	if err != nil {
		return err
	}
	rs, err := a.MessageTrace(o.TraceTopic, o.MsgID, begin, end, o.Max)
	if err != nil {
		return err
	}
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(rs)
	}
	rows := make([][]string, len(rs))
	for i, r := range rs {
		cost, status, retries := r.CostTime, "", ""
		costText := strconv.FormatInt(cost, 10) + "ms"
		if r.Success != nil {
			status = "failed"
			if *r.Success {
				status = "success"
			}
		}
		switch r.Type {
		case admin.TraceSubBefore:
			costText = ""
			retries = strconv.Itoa(r.RetryTimes)
		case admin.TraceSubAfter:
			retries = strconv.Itoa(r.RetryTimes)
		case admin.TraceEndTransaction:
			costText, status = "", r.TransactionState
		}
		rows[i] = []string{r.Type, output.Time(r.Timestamp), r.Group, r.Topic, r.ClientHost, r.StoreHost, costText, status, retries}
	}
	return p.Table([]string{"#Type", "#Time", "#Group", "#Topic", "#ClientHost", "#StoreHost", "#CostTimes", "#Status", "#RetryTimes"}, rows)
}
