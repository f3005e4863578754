// Package classic registers Java mqadmin's command names with their short
// flags (and Java's long names), as thin aliases over the noun-verb
// commands: scripts written for RocketMQ's mqadmin keep working. Boolean
// options that Java reads with a value ("-o true") take one here too.
// Output is a table, or JSON with -o json (--output json where Java's -o
// means something else, see javaO).
package classic

import (
	"errors"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmd/broker"
	"github.com/mqops/mqops/mqadmin/internal/cmd/cluster"
	"github.com/mqops/mqops/mqadmin/internal/cmd/controller"
	"github.com/mqops/mqops/mqadmin/internal/cmd/group"
	"github.com/mqops/mqops/mqadmin/internal/cmd/ha"
	"github.com/mqops/mqops/mqadmin/internal/cmd/message"
	"github.com/mqops/mqops/mqadmin/internal/cmd/namesrv"
	"github.com/mqops/mqops/mqadmin/internal/cmd/producer"
	"github.com/mqops/mqops/mqadmin/internal/cmd/stats"
	"github.com/mqops/mqops/mqadmin/internal/cmd/topic"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/wire"
)

// NewCmds returns the classic commands.
func NewCmds(f *cmdutil.Factory) []*cobra.Command {
	return append(append(append(topicCmds(f), messageCmds(f)...), append(append(groupCmds(f), serverCmds(f)...), haCmds(f)...)...), aclCmds(f)...)
}

// RewriteArgs turns Java's two-letter option -bn (electMaster's
// --brokerName) into its long form: pflag shorthands are one letter, and
// "-bn X" would otherwise read as -b n.
func RewriteArgs(args []string) []string {
	elect := false
	for _, a := range args {
		if strings.EqualFold(a, "electMaster") {
			elect = true
		}
	}
	if !elect {
		return args
	}
	out := make([]string, len(args))
	for i, a := range args {
		switch {
		case a == "-bn":
			a = "--brokerName"
		case strings.HasPrefix(a, "-bn="):
			a = "--brokerName=" + strings.TrimPrefix(a, "-bn=")
		}
		out[i] = a
	}
	return out
}

// javaO gives, for each classic command whose Java original has an -o
// option, that option's long name (apache/rocketmq
// tools/src/main/java/org/apache/rocketmq/tools/command/: 4.9's
// topic/UpdateTopicSubCommand, message/QueryMsgByOffsetSubCommand and
// broker/BrokerConsumeStatsSubCommad; 5's consumer/UpdateSubGroupSubCommand
// and offset/ResetOffsetByTimeCommand). There -o keeps Java's meaning, or
// is refused where mqops lacks the feature (unsupportedJavaO), and the
// output format is --output only. Every other classic command takes
// -o json too: users type it by habit.
var javaO = map[string]string{
	"updateTopic":        "order",
	"queryMsgByOffset":   "offset",
	"brokerConsumeStats": "order",
	"updateSubGroup":     "consumeMessageOrderly",
	"resetOffsetByTime":  "offset",
}

// cmd builds a classic command running run, with -o/--output added (or
// --output alone, see javaO).
func cmd(f *cmdutil.Factory, name, short, seeAlso string, run func() error) *cobra.Command {
	c := &cobra.Command{
		Use:   name,
		Short: short,
		Long:  short + ".\n\nClassic RocketMQ command; see also \"mqadmin " + seeAlso + "\".",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return run() },
	}
	f.AddOutputFlag(c, javaO[name] == "")
	return c
}

// unsupported is a flag whose every value is refused with its text.
type unsupported string

func (u unsupported) String() string   { return "" }
func (u unsupported) Set(string) error { return errors.New(string(u)) }
func (u unsupported) Type() string     { return "" }

// unsupportedJavaO takes c's Java -o (see javaO) for an option mqops does
// not implement, so that it is refused as such instead of being read as
// the output format or reported as an unknown flag.
func unsupportedJavaO(c *cobra.Command, feature string) {
	name := javaO[c.Name()]
	c.Flags().VarP(unsupported("Java RocketMQ 5's -o/--"+name+" ("+feature+") is not supported; the output format is --output"), name, "o", "")
	_ = c.Flags().MarkHidden(name)
}

func required(c *cobra.Command, names ...string) {
	for _, n := range names {
		_ = c.MarkFlagRequired(n)
	}
}

// targetFlags adds Java's -b/--brokerAddr and -c/--clusterName.
func targetFlags(c *cobra.Command, t *admin.Target) {
	c.Flags().StringVarP(&t.Broker, "brokerAddr", "b", "", "broker address (ip:port)")
	c.Flags().StringVarP(&t.Cluster, "clusterName", "c", "", "cluster name")
}

func topicCmds(f *cmdutil.Factory) []*cobra.Command {
	co := &topic.CreateOptions{Config: admin.NewTopicConfig("")}
	var order cmdutil.JavaBool
	update := cmd(f, "updateTopic", "Update or create topic", "topic create", func() error {
		co.Config.Order = bool(order)
		return topic.RunCreate(f, co)
	})
	targetFlags(update, &co.Target)
	fl := update.Flags()
	fl.StringVarP(&co.Config.TopicName, "topic", "t", "", "topic name")
	fl.IntVarP(&co.Config.ReadQueueNums, "readQueueNums", "r", 8, "set read queue nums")
	fl.IntVarP(&co.Config.WriteQueueNums, "writeQueueNums", "w", 8, "set write queue nums")
	fl.IntVarP(&co.Config.Perm, "perm", "p", 6, "set topic's permission(2|4|6), intro[2:W 4:R; 6:RW]")
	fl.VarP(&order, "order", "o", "set topic's order(true|false)")
	fl.StringVarP(&co.Attributes, "attributes", "a", "", "attribute(+a=b,+c=d,-e)")
	required(update, "topic")

	do := &topic.DeleteOptions{}
	del := cmd(f, "deleteTopic", "Delete topic from broker and NameServer", "topic delete", func() error { return topic.RunDelete(f, do) })
	del.Flags().StringVarP(&do.Topic, "topic", "t", "", "topic name")
	del.Flags().StringVarP(&do.Cluster, "clusterName", "c", "", "delete topic from which cluster")
	required(del, "topic", "clusterName")

	lo := &topic.ListOptions{}
	list := cmd(f, "topicList", "Fetch all topic list from name server", "topic list", func() error { return topic.RunList(f, lo) })
	list.Flags().BoolVarP(&lo.Groups, "clusterModel", "c", false, "clusterModel")

	ro := &topic.RouteOptions{}
	var asList bool
	route := cmd(f, "topicRoute", "Examine topic route info", "topic route", func() error { return topic.RunRoute(f, ro) })
	route.Flags().StringVarP(&ro.Topic, "topic", "t", "", "topic name")
	// Java prints JSON unless -l; here the table is the default and JSON is
	// --output json, so -l is accepted for old scripts and changes nothing.
	route.Flags().BoolVarP(&asList, "list", "l", false, "use list format to print data (the default here)")
	required(route, "topic")

	so := &topic.StatusOptions{}
	status := cmd(f, "topicStatus", "Examine topic Status info", "topic status", func() error { return topic.RunStatus(f, so) })
	status.Flags().StringVarP(&so.Topic, "topic", "t", "", "topic name")
	required(status, "topic")
	return []*cobra.Command{update, del, list, route, status}
}

func messageCmds(f *cmdutil.Factory) []*cobra.Command {
	// With -g and -d, Java's queryMsgById and queryMsgByUniqueKey push the
	// message to that client (CONSUME_MESSAGE_DIRECTLY) instead of showing it.
	byID := &message.GetOptions{}
	push := &message.ResendOptions{}
	qID := cmd(f, "queryMsgById", "Query Message by Id", "message get", func() error {
		if push.Group != "" {
			push.IDs, push.Topic = byID.IDs, byID.Topic
			return message.RunResend(f, push)
		}
		return message.RunGet(f, byID)
	})
	qID.Flags().StringSliceVarP(&byID.IDs, "msgId", "i", nil, "Message Id")
	qID.Flags().StringVarP(&byID.Topic, "topic", "t", "", "topic name (lets a client id be looked up as a unique key)")
	pushFlags(qID, push)
	required(qID, "msgId")

	byKey := &message.QueryOptions{}
	qKey := cmd(f, "queryMsgByKey", "Query Message by Key", "message query", func() error { return message.RunQuery(f, byKey) })
	qKey.Flags().StringVarP(&byKey.Topic, "topic", "t", "", "topic name")
	qKey.Flags().StringVarP(&byKey.Key, "msgKey", "k", "", "Message Key")
	qKey.Flags().StringVarP(&byKey.Begin, "beginTimestamp", "b", "", "Begin timestamp(ms). default:0")
	qKey.Flags().StringVarP(&byKey.End, "endTimestamp", "e", "", "End timestamp(ms). default:now")
	qKey.Flags().IntVarP(&byKey.Max, "maxNum", "m", 64, "The maximum number of messages returned by the query")
	required(qKey, "topic", "msgKey")

	byUK := &message.GetOptions{}
	pushUK := &message.ResendOptions{}
	qUK := cmd(f, "queryMsgByUniqueKey", "Query Message by Unique key", "message get --unique-key", func() error {
		if pushUK.Group != "" {
			pushUK.IDs, pushUK.Topic = []string{byUK.UniqueKey}, byUK.Topic
			return message.RunResend(f, pushUK)
		}
		return message.RunGet(f, byUK)
	})
	qUK.Flags().StringVarP(&byUK.Topic, "topic", "t", "", "The topic of msg")
	qUK.Flags().StringVarP(&byUK.UniqueKey, "msgId", "i", "", "Message Id")
	qUK.Flags().BoolVarP(&byUK.All, "showAll", "a", false, "Print all message, the limit is 32")
	pushFlags(qUK, pushUK)
	required(qUK, "topic", "msgId")

	tr := &message.TraceOptions{TraceTopic: admin.DefaultTraceTopic, Max: 64}
	trace := cmd(f, "queryMsgTraceById", "Query a message trace", "message trace", func() error { return message.RunTrace(f, tr) })
	trace.Flags().StringVarP(&tr.MsgID, "msgId", "i", "", "Message Id")
	trace.Flags().StringVarP(&tr.TraceTopic, "traceTopic", "t", admin.DefaultTraceTopic, "The name value of message trace topic")
	trace.Flags().StringVarP(&tr.Begin, "beginTimestamp", "b", "", "Begin timestamp(ms). default:0")
	trace.Flags().StringVarP(&tr.End, "endTimestamp", "e", "", "End timestamp(ms). default:now")
	trace.Flags().IntVarP(&tr.Max, "maxNum", "c", 64, "The maximum number of messages returned by the query")
	required(trace, "msgId")

	byOff := &message.GetOptions{ByOffset: true}
	qOff := cmd(f, "queryMsgByOffset", "Query Message by offset", "message get --offset", func() error { return message.RunGet(f, byOff) })
	qOff.Flags().StringVarP(&byOff.Topic, "topic", "t", "", "topic name")
	qOff.Flags().StringVarP(&byOff.BrokerName, "brokerName", "b", "", "Broker Name")
	qOff.Flags().IntVarP(&byOff.QueueID, "queueId", "i", 0, "Queue Id")
	qOff.Flags().Int64VarP(&byOff.Offset, "offset", "o", 0, "Queue Offset")
	required(qOff, "topic", "brokerName", "queueId", "offset")

	so := &message.SendOptions{QueueID: -1, Count: 1}
	send := cmd(f, "sendMessage", "Send a message", "message send", func() error { return message.RunSend(f, so) })
	send.Flags().StringVarP(&so.Topic, "topic", "t", "", "Topic name")
	send.Flags().StringVarP(&so.Body, "body", "p", "", "UTF-8 string format of the message body")
	send.Flags().StringVarP(&so.Keys, "key", "k", "", "Message keys")
	send.Flags().StringVarP(&so.Tags, "tags", "c", "", "Message tags")
	send.Flags().StringVarP(&so.BrokerName, "broker", "b", "", "Send message to target broker")
	send.Flags().IntVarP(&so.QueueID, "qid", "i", -1, "Send message to target queue")
	required(send, "topic", "body")
	return []*cobra.Command{qID, qKey, qUK, qOff, send, trace}
}

// pushFlags adds Java's -g/--consumerGroup and -d/--clientId, which go together.
func pushFlags(c *cobra.Command, o *message.ResendOptions) {
	c.Flags().StringVarP(&o.Group, "consumerGroup", "g", "", "consumer group name (with -d: push the message to that client)")
	c.Flags().StringVarP(&o.ClientID, "clientId", "d", "", "the consumer's client id (with -g)")
	c.MarkFlagsRequiredTogether("consumerGroup", "clientId")
}

func groupCmds(f *cmdutil.Factory) []*cobra.Command {
	po := &group.ProgressOptions{}
	progress := cmd(f, "consumerProgress", "Query consumers's progress, speed", "group progress", func() error { return group.RunProgress(f, po) })
	progress.Flags().StringVarP(&po.Group, "groupName", "g", "", "consumer group name")
	progress.Flags().StringVarP(&po.Topic, "topicName", "t", "", "topic name")

	co := &group.ConnectionsOptions{}
	conn := cmd(f, "consumerConnection", "Query consumer's socket connection, client version and subscription", "group connections",
		func() error { return group.RunConnections(f, co) })
	conn.Flags().StringVarP(&co.Group, "consumerGroup", "g", "", "consumer group name")
	required(conn, "consumerGroup")

	so := &group.StatusOptions{}
	status := cmd(f, "consumerStatus", "Query consumer's internal data structure", "group status", func() error { return group.RunStatus(f, so) })
	status.Flags().StringVarP(&so.Group, "consumerGroup", "g", "", "consumer group name")
	status.Flags().StringVarP(&so.ClientID, "clientId", "i", "", "The consumer's client id")
	status.Flags().StringVarP(&so.Broker, "brokerAddr", "b", "", "broker address")
	status.Flags().BoolVarP(&so.JStack, "jstack", "s", false, "Run jstack command in the consumer progress")
	required(status, "consumerGroup")

	pco := &producer.ConnectionsOptions{}
	pconn := cmd(f, "producerConnection", "Query producer's socket connection and client version", "producer connections",
		func() error { return producer.RunConnections(f, pco) })
	pconn.Flags().StringVarP(&pco.Group, "producerGroup", "g", "", "producer group name")
	pconn.Flags().StringVarP(&pco.Topic, "topic", "t", "", "topic name")
	required(pconn, "producerGroup", "topic")

	gc := wire.NewSubscriptionGroupConfig("")
	uo := &group.CreateOptions{Config: gc}
	javaBools := map[string]*cmdutil.JavaBool{}
	var orderly cmdutil.JavaBool
	update := cmd(f, "updateSubGroup", "Update or create subscription group", "group create", func() error {
		gc.ConsumeMessageOrderly = bool(orderly)
		gc.ConsumeEnable, gc.ConsumeFromMinEnable = bool(*javaBools["consumeEnable"]), bool(*javaBools["consumeFromMinEnable"])
		gc.ConsumeBroadcastEnable = bool(*javaBools["consumeBroadcastEnable"])
		gc.NotifyConsumerIDsChangedEnable = bool(*javaBools["notifyConsumerIdsChanged"])
		return group.RunCreate(f, uo)
	})
	targetFlags(update, &uo.Target)
	fl := update.Flags()
	fl.StringVarP(&gc.GroupName, "groupName", "g", "", "consumer group name")
	for _, b := range []struct{ short, name, usage string }{
		{"s", "consumeEnable", "consume enable"},
		{"m", "consumeFromMinEnable", "from min offset"},
		{"d", "consumeBroadcastEnable", "broadcast"},
		{"a", "notifyConsumerIdsChanged", "notify consumerId changed"},
	} {
		v := cmdutil.JavaBool(true)
		javaBools[b.name] = &v
		fl.VarP(&v, b.name, b.short, b.usage)
	}
	fl.IntVarP(&gc.RetryQueueNums, "retryQueueNums", "q", 1, "retry queue nums")
	fl.IntVarP(&gc.RetryMaxTimes, "retryMaxTimes", "r", 16, "retry max times")
	fl.Int64VarP(&gc.BrokerID, "brokerId", "i", 0, "consumer from which broker id")
	fl.Int64VarP(&gc.WhichBrokerWhenConsumeSlowly, "whichBrokerWhenConsumeSlowly", "w", 1, "which broker id when consume slowly")
	fl.VarP(&orderly, "consumeMessageOrderly", "o", "consume message orderly")
	fl.StringVarP(&uo.RetryPolicy, "groupRetryPolicy", "p", "", `the json string of retry policy ( exp: {"type":"EXPONENTIAL","exponentialRetryPolicy":{"initial":5000,"max":7200000,"multiplier":2}} {"type":"CUSTOMIZED","customizedRetryPolicy":{"next":[1000,5000,10000]}} )`)
	required(update, "groupName")

	do := &group.DeleteOptions{}
	var removeOffset cmdutil.JavaBool
	del := cmd(f, "deleteSubGroup", "Delete subscription group from broker", "group delete", func() error {
		do.RemoveOffset = bool(removeOffset)
		return group.RunDelete(f, do)
	})
	targetFlags(del, &do.Target)
	del.Flags().StringVarP(&do.Group, "groupName", "g", "", "subscription group name")
	del.Flags().VarP(&removeOffset, "removeOffset", "r", "remove offset")
	required(del, "groupName")

	reset := func(name, short, see string, latest bool) *cobra.Command {
		ro := &group.ResetOptions{Latest: latest}
		force := cmdutil.JavaBool(true)
		c := cmd(f, name, short, see, func() error {
			ro.Force = bool(force)
			return group.RunReset(f, ro)
		})
		c.Flags().StringVarP(&ro.Group, "group", "g", "", "set the consumer group")
		c.Flags().StringVarP(&ro.Topic, "topic", "t", "", "set the topic")
		c.Flags().VarP(&force, "force", "f", "set the force rollback by timestamp switch[true|false]")
		required(c, "group", "topic")
		if !latest {
			c.Flags().StringVarP(&ro.Time, "timestamp", "s", "", "set the timestamp[now|currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]")
			required(c, "timestamp")
			unsupportedJavaO(c, "reset one queue to an offset")
		}
		return c
	}
	byTime := reset("resetOffsetByTime", "Reset consumer offset by timestamp(without client restart)", "group reset-offset --to-time", false)
	skip := reset("skipAccumulatedMessage", "Skip all messages that are accumulated (not consumed) currently", "group reset-offset --to-latest", true)

	bo := &group.BacklogOptions{PerQueue: true}
	var order cmdutil.JavaBool
	bcs := cmd(f, "brokerConsumeStats", "Fetch broker consume stats data", "group backlog", func() error {
		bo.Order = bool(order)
		return group.RunBacklog(f, bo)
	})
	bcs.Flags().StringVarP(&bo.Target.Broker, "brokerAddr", "b", "", "Broker address")
	bcs.Flags().Int64VarP(&bo.MinDiff, "level", "l", 0, "threshold of print diff")
	bcs.Flags().VarP(&order, "order", "o", "order topic")
	required(bcs, "brokerAddr")
	return []*cobra.Command{progress, conn, status, pconn, update, del, byTime, skip, bcs}
}

func serverCmds(f *cmdutil.Factory) []*cobra.Command {
	lo := &cluster.ListOptions{}
	clusterList := cmd(f, "clusterList", "List cluster infos", "cluster list", func() error { return cluster.RunList(f, lo) })
	clusterList.Flags().BoolVarP(&lo.More, "moreStats", "m", false, "Print more stats")
	clusterList.Flags().StringVarP(&lo.Cluster, "clusterName", "c", "", "which cluster")

	so := &broker.KVOptions{}
	status := cmd(f, "brokerStatus", "Fetch broker runtime status data", "broker status", func() error { return broker.RunStatus(f, so) })
	targetFlags(status, &so.Target)

	gco := &broker.KVOptions{}
	getCfg := cmd(f, "getBrokerConfig", "Get broker config by cluster or special broker", "broker config get", func() error { return broker.RunConfigGet(f, gco) })
	targetFlags(getCfg, &gco.Target)

	uo := &broker.ConfigSetOptions{}
	var key, value string
	setCfg := cmd(f, "updateBrokerConfig", "Update broker's config", "broker config set", func() error {
		uo.KV = map[string]string{key: value}
		return broker.RunConfigSet(f, uo)
	})
	targetFlags(setCfg, &uo.Target)
	setCfg.Flags().StringVarP(&key, "key", "k", "", "config key")
	setCfg.Flags().StringVarP(&value, "value", "v", "", "config value")
	setCfg.Flags().BoolVarP(&uo.Target.WithSlaves, "updateAllBroker", "a", false, "update all brokers include slave")
	required(setCfg, "key", "value")

	perm := func(name, short, see string, wipe bool) *cobra.Command {
		var b string
		c := cmd(f, name, short, see, func() error { return namesrv.RunWrite(f, b, wipe) })
		c.Flags().StringVarP(&b, "brokerName", "b", "", "broker name")
		required(c, "brokerName")
		return c
	}
	wipe := perm("wipeWritePerm", "Wipe write perm of broker in all name server you defined in the -n param", "namesrv wipe-write", true)
	add := perm("addWritePerm", "Add write perm of broker in all name server you defined in the -n param", "namesrv add-write", false)

	nsCfg := cmd(f, "getNamesrvConfig", "Get configs of name server", "namesrv config", func() error { return namesrv.RunConfig(f) })

	ao := &stats.AllOptions{}
	all := cmd(f, "statsAll", "Topic and Consumer tps stats", "stats all", func() error { return stats.RunAll(f, ao) })
	all.Flags().BoolVarP(&ao.ActiveOnly, "activeTopic", "a", false, "print active topic only")
	all.Flags().StringVarP(&ao.Topic, "topic", "t", "", "print select topic only")
	return []*cobra.Command{clusterList, status, getCfg, setCfg, wipe, add, nsCfg, all}
}

// haCmds are RocketMQ 5's controller-mode commands (apache/rocketmq 5.x
// tools/src/main/java/org/apache/rocketmq/tools/command/ha/,
// controller/GetControllerMetaDataSubCommand.java,
// controller/ReElectMasterSubCommand.java and
// broker/GetBrokerEpochSubCommand.java), with their option letters.
func haCmds(f *cmdutil.Factory) []*cobra.Command {
	controllerFlag := func(c *cobra.Command, p *string) {
		c.Flags().StringVarP(p, "controllerAddress", "a", "", "the address of controller")
		required(c, "controllerAddress")
	}
	so := &ha.SyncStateOptions{}
	sync := cmd(f, "getSyncStateSet", "Fetch syncStateSet for target brokers", "ha sync-state", func() error { return ha.RunSyncState(f, so) })
	controllerFlag(sync, &so.Controllers)
	sync.Flags().StringVarP(&so.Cluster, "clusterName", "c", "", "which cluster")
	sync.Flags().StringVarP(&so.BrokerName, "brokerName", "b", "", "which broker to fetch")
	sync.Flags().IntVarP(&so.Interval, "interval", "i", 0, "the interval(second) of get info")

	mo := &controller.MetadataOptions{}
	meta := cmd(f, "getControllerMetaData", "Get controller cluster's metadata", "controller metadata", func() error { return controller.RunMetadata(f, mo) })
	controllerFlag(meta, &mo.Controllers)

	// Java's haStatus -c asks the masters only; -b takes an address.
	ho := &ha.StatusOptions{}
	status := cmd(f, "haStatus", "Fetch ha runtime status data", "ha status", func() error { return ha.RunStatus(f, ho) })
	status.Aliases = []string{"getBrokerHAStatus"}
	targetFlags(status, &ho.Target)
	status.Flags().IntVarP(&ho.Interval, "interval", "i", 0, "the interval(second) of get info")

	eo := &ha.ElectOptions{}
	elect := cmd(f, "electMaster", "Re-elect the specified broker as master", "ha elect", func() error { return ha.RunElect(f, eo) })
	controllerFlag(elect, &eo.Controllers)
	elect.Flags().Int64VarP(&eo.BrokerID, "brokerId", "b", -1, "The id of the broker which requires to become master")
	elect.Flags().StringVar(&eo.BrokerName, "brokerName", "", "(-bn) The broker name of the replicas that require to be manipulated")
	elect.Flags().StringVarP(&eo.Cluster, "clusterName", "c", "", "the clusterName of broker")
	required(elect, "brokerId", "brokerName", "clusterName")

	po := &ha.EpochsOptions{}
	epoch := cmd(f, "getBrokerEpoch", "Fetch broker epoch entries", "ha epochs", func() error { return ha.RunEpochs(f, po) })
	epoch.Flags().StringVarP(&po.Target.Cluster, "clusterName", "c", "", "which cluster")
	epoch.Flags().StringVarP(&po.Target.Broker, "brokerName", "b", "", "which broker to fetch")
	epoch.Flags().IntVarP(&po.Interval, "interval", "i", 0, "the interval(second) of get info")
	return []*cobra.Command{sync, meta, status, elect, epoch}
}
