package message

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

// GetOptions are the inputs of message get and of Java's queryMsgById,
// queryMsgByUniqueKey and queryMsgByOffset. Exactly one way is used: IDs
// (offset ids, or unique keys with Topic), UniqueKey with Topic, or Topic,
// BrokerName, QueueID and Offset with ByOffset.
type GetOptions struct {
	IDs        []string
	UniqueKey  string
	Topic      string
	ByOffset   bool
	BrokerName string
	QueueID    int
	Offset     int64
	// All keeps every copy stored under a unique key (a retried send
	// stores one per attempt); otherwise the first is shown.
	All     bool
	Hex     bool
	NoTrack bool
}

func newGetCmd(f *cmdutil.Factory) *cobra.Command {
	o := &GetOptions{}
	cmd := &cobra.Command{
		Use:   "get (--id ID | --unique-key KEY -t TOPIC | -t TOPIC -b BROKER -q QUEUE --offset N)",
		Short: "Show a message: fields, properties, body and which groups consumed it",
		Long: `Show a message by offset message id (the id the broker returns, which names
the broker and commit-log position), by unique key (the client's message
id, looked up in the topic's index), or by queue offset. With -t, an --id
that is not an offset id is looked up as a unique key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.ByOffset = cmd.Flags().Changed("offset")
			return RunGet(f, o)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVarP(&o.IDs, "id", "i", nil, "offset message id(s), comma-separated")
	fl.StringVarP(&o.UniqueKey, "unique-key", "u", "", "client message id (UNIQ_KEY); needs -t")
	fl.StringVarP(&o.Topic, "topic", "t", "", "topic")
	fl.StringVarP(&o.BrokerName, "broker", "b", "", "broker name, with --offset")
	fl.IntVarP(&o.QueueID, "queue", "q", 0, "queue id, with --offset")
	fl.Int64Var(&o.Offset, "offset", 0, "queue offset")
	fl.BoolVarP(&o.All, "all", "a", false, "with --unique-key, show every stored copy")
	fl.BoolVar(&o.Hex, "hex", false, "print the body in hex even when it is text")
	fl.BoolVar(&o.NoTrack, "no-track", false, "do not look up which groups consumed the message")
	cmd.MarkFlagsMutuallyExclusive("id", "unique-key", "offset")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunGet finds the message(s) and prints them with their tracks.
func RunGet(f *cmdutil.Factory, o *GetOptions) error {
	a, err := f.Admin()
	if err != nil {
		return err
	}
	var ms []*admin.Message
	switch {
	case len(o.IDs) > 0:
		for _, id := range o.IDs {
			found, err := a.MessageByID(o.Topic, id)
			if err != nil {
				return err
			}
			ms = append(ms, found...)
		}
	case o.UniqueKey != "":
		if o.Topic == "" {
			return errors.New("--unique-key needs the topic (-t)")
		}
		if ms, err = a.MessageByUniqueKey(o.Topic, o.UniqueKey); err != nil {
			return err
		}
		if !o.All {
			ms = ms[:1]
		}
	case o.ByOffset:
		if o.Topic == "" || o.BrokerName == "" {
			return errors.New("--offset needs the topic (-t), the broker name (-b) and the queue (-q)")
		}
		m, err := a.MessageAt(o.Topic, o.BrokerName, o.QueueID, o.Offset)
		if err != nil {
			return err
		}
		ms = []*admin.Message{m}
	default:
		return errors.New("give --id, --unique-key with -t, or -t, -b, -q and --offset")
	}
	views := make([]View, len(ms))
	for i, m := range ms {
		views[i] = newView(m, o.Hex)
		if !o.NoTrack {
			if views[i].Tracks, err = a.MessageTracks(m); err != nil {
				return err
			}
		}
	}
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(views)
	}
	for i, v := range views {
		if i > 0 {
			p.Printf("\n")
		}
		if err := printView(p, v, !o.NoTrack); err != nil {
			return err
		}
	}
	return nil
}
