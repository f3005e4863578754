package message

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

// QueryOptions are the inputs of message query (and of Java's
// queryMsgByKey). Begin and End are times as ParseTime reads them; an
// empty Begin means the epoch for a key query and 24 hours ago for a tag
// scan, an empty End means now.
type QueryOptions struct {
	Topic string
	Key   string
	Tag   string
	Begin string
	End   string
	Max   int
	Hex   bool
}

func newQueryCmd(f *cmdutil.Factory) *cobra.Command {
	o := &QueryOptions{}
	cmd := &cobra.Command{
		Use:   "query -t TOPIC (--key KEY | --tag EXPR) [--begin T] [--end T] [--max N]",
		Short: "Find a topic's messages by key (index) or by tag (bounded scan)",
		Long: `Find messages by key through the brokers' index, or by tag by scanning each
queue between --begin and --end (tags are not indexed; the scan pulls with
the built-in TOOLS_CONSUMER group and stops at --max results).

Times: now, today, epoch ms, -1h30m (ago), 2006-01-02 15:04:05, RFC 3339,
or Java's yyyy-MM-dd#HH:mm:ss:SSS.`,
		Example: `  mqadmin message query -t Orders --key order-42
  mqadmin message query -t Orders --tag 'Paid || Refunded' --begin -2h --max 100`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return RunQuery(f, o) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Topic, "topic", "t", "", "topic (required)")
	fl.StringVarP(&o.Key, "key", "k", "", "message key (KEYS property)")
	fl.StringVar(&o.Tag, "tag", "", `tag expression, e.g. "TagA || TagB"`)
	fl.StringVar(&o.Begin, "begin", "", "earliest store time (default: epoch for --key, 24h ago for --tag)")
	fl.StringVar(&o.End, "end", "", "latest store time (default now)")
	fl.IntVarP(&o.Max, "max", "m", 64, "most messages to return")
	fl.BoolVar(&o.Hex, "hex", false, "with -o json, give bodies in hex even when they are text")
	_ = cmd.MarkFlagRequired("topic")
	cmd.MarkFlagsMutuallyExclusive("key", "tag")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunQuery runs the look-up and prints one row per message.
func RunQuery(f *cmdutil.Factory, o *QueryOptions) error {
	if (o.Key == "") == (o.Tag == "") {
		return errors.New("give exactly one of --key or --tag")
	}
	if o.Max < 1 {
		return fmt.Errorf("--max must be at least 1, got %d", o.Max)
	}
	now := time.Now()
	defBegin := int64(0)
	if o.Tag != "" {
		defBegin = now.Add(-24 * time.Hour).UnixMilli()
	}
	begin, end, err := timeRange(o.Begin, o.End, defBegin, now)
	if err != nil {
		return err
	}
	a, err := f.Admin()
	if err != nil {
		return err
	}
	if o.Key != "" {
		ms, err := a.QueryMessages(o.Topic, o.Key, begin, end, o.Max)
		if err != nil {
			return err
		}
		return printList(f.Printer(), ms, o.Hex)
	}
	prog := f.Progress("scanning " + o.Topic)
	ms, err := a.ScanByTag(o.Topic, o.Tag, begin, end, o.Max, func(done, total int) {
		prog.Update("scanning %s: queue %d/%d", o.Topic, done, total)
	})
	prog.Stop()
	if err != nil {
		return err
	}
	return printList(f.Printer(), ms, o.Hex)
}

// timeRange reads --begin and --end (cmdutil.ParseTime forms) in ms;
// without them the range is defBegin to now.
func timeRange(beginArg, endArg string, defBegin int64, now time.Time) (begin, end int64, err error) {
	begin, end = defBegin, now.UnixMilli()
	if beginArg != "" {
		if begin, err = cmdutil.ParseTime(beginArg, now); err != nil {
			return 0, 0, err
		}
	}
	if endArg != "" {
		if end, err = cmdutil.ParseTime(endArg, now); err != nil {
			return 0, 0, err
		}
	}
	return begin, end, nil
}
