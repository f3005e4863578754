package message

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

// SendOptions are the inputs of message send (and Java's sendMessage).
type SendOptions struct {
	Topic string
	Body  string
	Tags  string
	Keys  string
	// BrokerName and QueueID pin the queue; QueueID < 0 lets the producer
	// choose.
	BrokerName string
	QueueID    int
	Count      int
}

// ProducerGroup is the group mqadmin's test producer registers as.
const ProducerGroup = "MQADMIN_PRODUCER"

func newSendCmd(f *cmdutil.Factory) *cobra.Command {
	o := &SendOptions{}
	cmd := &cobra.Command{
		Use:   "send -t TOPIC --body TEXT [--tags TAG] [--keys K1,K2] [-b BROKER -q QUEUE] [--count N]",
		Short: "Send test messages with the official Go client (smoke test)",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunSend(f, o) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Topic, "topic", "t", "", "topic (required)")
	fl.StringVarP(&o.Body, "body", "p", "", "message body (required)")
	fl.StringVar(&o.Tags, "tags", "", "tag")
	fl.StringVarP(&o.Keys, "keys", "k", "", "keys, comma-separated")
	fl.StringVarP(&o.BrokerName, "broker", "b", "", "broker name to send to (with -q)")
	fl.IntVarP(&o.QueueID, "queue", "q", -1, "queue id to send to (with -b)")
	fl.IntVar(&o.Count, "count", 1, "number of messages to send")
	_ = cmd.MarkFlagRequired("topic")
	_ = cmd.MarkFlagRequired("body")
	cmd.MarkFlagsRequiredTogether("broker", "queue")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// SendResult is one sent message as printed.
type SendResult struct {
	BrokerName  string `json:"brokerName"`
	QueueID     int    `json:"queueId"`
	Status      string `json:"sendResult"`
	MsgID       string `json:"msgId"`
	OffsetMsgID string `json:"offsetMsgId"`
	QueueOffset int64  `json:"queueOffset"`
}

var sendStatus = map[primitive.SendStatus]string{
	primitive.SendOK: "SEND_OK", primitive.SendFlushDiskTimeout: "FLUSH_DISK_TIMEOUT",
	primitive.SendFlushSlaveTimeout: "FLUSH_SLAVE_TIMEOUT", primitive.SendSlaveNotAvailable: "SLAVE_NOT_AVAILABLE",
}

// RunSend sends the messages synchronously and prints one row each.
func RunSend(f *cmdutil.Factory, o *SendOptions) error {
	if o.Count < 1 {
		return errors.New("--count must be at least 1")
	}
	ns, err := f.ResolveNamesrv()
	if err != nil {
		return err
	}
	if tcfg, err := f.ClientTLS(); err != nil {
		return err
	} else if tcfg != nil {
		return errors.New("message send runs rocketmq-client-go v2.1.2's producer, which has no TLS: " +
			"send without --tls to a port with tlsServerMode=permissive")
	}
	// The client logs its life cycle; the result table is the output.
	rlog.SetLogLevel("fatal")
	opts := []producer.Option{
		producer.WithNameServer(strings.Split(ns, ";")),
		producer.WithGroupName(ProducerGroup),
		producer.WithInstanceName(fmt.Sprintf("mqadmin-%d", os.Getpid())),
		producer.WithRetry(2),
		producer.WithSendMsgTimeout(f.Timeout),
	}
	// Like Java's sendMessage, a queue is pinned only with both its broker
	// and its id.
	pinned := o.BrokerName != "" && o.QueueID >= 0
	if pinned {
		opts = append(opts, producer.WithQueueSelector(producer.NewManualQueueSelector()))
	}
	p, err := rocketmq.NewProducer(opts...)
	if err != nil {
		return fmt.Errorf("create producer: %w", err)
	}
	if err := p.Start(); err != nil {
		return fmt.Errorf("start producer: %w", err)
	}
	defer func() { _ = p.Shutdown() }()
	var results []SendResult
	for i := 0; i < o.Count; i++ {
		msg := primitive.NewMessage(o.Topic, []byte(o.Body))
		if o.Tags != "" {
			msg.WithTag(o.Tags)
		}
		if o.Keys != "" {
			msg.WithKeys(strings.Split(o.Keys, ","))
		}
		if pinned {
			msg.Queue = &primitive.MessageQueue{Topic: o.Topic, BrokerName: o.BrokerName, QueueId: o.QueueID}
		}
		r, err := p.SendSync(context.Background(), msg)
		if err != nil {
			return fmt.Errorf("send to %s: %w", o.Topic, err)
		}
		results = append(results, SendResult{BrokerName: r.MessageQueue.BrokerName, QueueID: r.MessageQueue.QueueId,
			Status: sendStatus[r.Status], MsgID: r.MsgID, OffsetMsgID: r.OffsetMsgID, QueueOffset: r.QueueOffset})
	}
	pr := f.Printer()
	if pr.IsJSON() {
		return pr.JSON(results)
	}
	rows := make([][]string, len(results))
	for i, r := range results {
		rows[i] = []string{r.BrokerName, strconv.Itoa(r.QueueID), r.Status, r.MsgID, r.OffsetMsgID, strconv.FormatInt(r.QueueOffset, 10)}
	}
	return pr.Table([]string{"#Broker Name", "#QID", "#Send Result", "#MsgId", "#Offset MsgId", "#Queue Offset"}, rows)
}
