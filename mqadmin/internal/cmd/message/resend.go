package message

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

// ResendOptions are the inputs of message resend (and of Java's
// queryMsgById / queryMsgByUniqueKey with -g and -d).
type ResendOptions struct {
	// IDs are offset message ids, or client message ids (UNIQ_KEY) with Topic.
	IDs      []string
	Topic    string
	Group    string
	ClientID string
}

func newResendCmd(f *cmdutil.Factory) *cobra.Command {
	o := &ResendOptions{}
	cmd := &cobra.Command{
		Use:   "resend --id ID -g GROUP [-c CLIENT_ID] [-t TOPIC]",
		Short: "Hand a stored message to a live consumer of a group, whose listener runs on it at once",
		Long: `Hand a stored message straight to a consumer of a group (CONSUME_MESSAGE_DIRECTLY):
the broker that stores it reads the record and passes it to the client, which
runs its listener on it and answers with the result. Offsets do not move and
nothing is written; the message is consumed once more, wherever it is stored,
e.g. in the dead-letter topic %DLQ%<group>.

--id is an offset message id (it names the broker); with -t a client message
id (UNIQ_KEY) is looked up in that topic's index (the newest copy is used).
Without -c the broker picks one live client of the group. The command fails
unless the listener returns CR_SUCCESS.`,
		Example: `  mqadmin message resend --id 0A00000B00002A9F0000000000123456 -g order_consumer
  mqadmin message resend --id 7F0000012F1A000000005a3d1c2b0003 -t %DLQ%order_consumer -g order_consumer`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return RunResend(f, o) },
	}
	fl := cmd.Flags()
	fl.StringSliceVarP(&o.IDs, "id", "i", nil, "offset message id(s), comma-separated (required)")
	fl.StringVarP(&o.Topic, "topic", "t", "", "topic, to look a client message id (UNIQ_KEY) up in its index")
	fl.StringVarP(&o.Group, "group", "g", "", "consumer group (required)")
	fl.StringVarP(&o.ClientID, "client", "c", "", "client id (default: any live client of the group)")
	_ = cmd.MarkFlagRequired("id")
	_ = cmd.MarkFlagRequired("group")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunResend hands each message to the group and prints the results; it
// fails on the first message the listener does not accept.
func RunResend(f *cmdutil.Factory, o *ResendOptions) error {
	if len(o.IDs) == 0 || o.Group == "" {
		return errors.New("give the message id (--id) and the consumer group (-g)")
	}
	a, err := f.Admin()
	if err != nil {
		return err
	}
	var results []*admin.DirectResult
	for _, id := range o.IDs {
		ms, err := a.MessageByID(o.Topic, id)
		if err != nil {
			return err
		}
		m := ms[len(ms)-1] // the newest copy of a unique key
		r, err := a.ConsumeDirectly(o.Group, o.ClientID, m)
		if err != nil {
			return err
		}
		if r.ConsumeResult != admin.ConsumeSuccess {
			who := "group " + o.Group
			if o.ClientID != "" {
				who = "client " + o.ClientID + " of group " + o.Group
			}
			msg := fmt.Sprintf("resend message %s to %s: %s after %d ms", m.OffsetMsgID, who, r.ConsumeResult, r.SpentTimeMs)
			if r.Remark != "" {
				msg += ": " + r.Remark
			}
			return errors.New(msg)
		}
		results = append(results, r)
	}
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(results)
	}
	rows := make([][]string, len(results))
	for i, r := range results {
		rows[i] = []string{r.MsgID, r.OffsetMsgID, r.Topic, r.Group, r.ClientID, r.ConsumeResult, strconv.FormatInt(r.SpentTimeMs, 10), r.Remark}
	}
	return p.Table([]string{"#MsgId", "#Offset MsgId", "#Topic", "#Group", "#ClientId", "#Consume Result", "#Spent(ms)", "#Remark"}, rows)
}
