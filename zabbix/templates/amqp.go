package templates

// AMQP is the template of the AMQP engine of one broker: the vhosts it
// is home of and their queues (mqops-zbx amqp, AMQP_LIST).
const AMQP = "mqops AMQP"

// AMQPQueueNotMatches keeps server-named queues (amq.gen-…, a client's
// temporary reply and exclusive queues) out of discovery by default:
// they come and go with connections.
const AMQPQueueNotMatches = `^amq\.gen-`

func amqpTemplate() *tpl {
	t := newTemplate(AMQP, "The AMQP 0-9-1 engine of one mqops broker (the vhosts whose home it is), from the broker's host: "+
		"vhosts and queues, and per queue ready and unacked messages, consumers (gateway channels consuming), "+
		"whether it is paused (mqadmin amqp queue pause) and its rate limit, and publish, deliver and ack rates. "+
		"Link it to the broker hosts beside the broker template.")
	t.macro("{$RMQ.BROKER.ADDR}", "127.0.0.1:10911", "Address the agent reaches the broker on.")
	t.macro("{$MQOPS.AMQP.READY.MAX}", "10000", "Ready messages of a queue worth a warning when they stay above it for 15 minutes (context: the queue name).")
	t.macro("{$MQOPS.AMQP.UNACKED.MAX}", "5000", "Unacked messages of a queue worth a warning (context: the queue name).")
	t.macro("{$MQOPS.AMQP.REDELIVERED.MAX}", "100", "Redeliveries of a queue in 10 minutes worth a warning (context: the queue name).")
	t.macro("{$MQOPS.AMQP.LLD.QUEUE.NOT_MATCHES}", AMQPQueueNotMatches, "Queues left out of discovery (regular expression).")
	t.macro("{$MQOPS.AMQP.LLD.VHOST.MATCHES}", ".*", "Vhosts discovered (regular expression).")
	t.valueMap("Service state", "0", "Down", "1", "Up")
	t.valueMap("Yes/No", "0", "No", "1", "Yes")
	const (
		get     = `mqops.amqp.get["{$RMQ.BROKER.ADDR}"]`
		up      = "mqops.amqp.up"
		ready   = "mqops.amqp.queue.ready[{#VHOST},{#QUEUE}]"
		unacked = "mqops.amqp.queue.unacked[{#VHOST},{#QUEUE}]"
		cons    = "mqops.amqp.queue.consumers[{#VHOST},{#QUEUE}]"
		paused  = "mqops.amqp.queue.paused[{#VHOST},{#QUEUE}]"
		pubRate = "mqops.amqp.queue.publish.rate[{#VHOST},{#QUEUE}]"
		delRate = "mqops.amqp.queue.deliver.rate[{#VHOST},{#QUEUE}]"
		ackRate = "mqops.amqp.queue.ack.rate[{#VHOST},{#QUEUE}]"
		redel   = "mqops.amqp.queue.redelivered[{#VHOST},{#QUEUE}]"
	)
	notUp := t.trigger("mqops AMQP: engine does not answer", t.fn("max", up, "3m")+"=0", "HIGH", "availability",
		"The broker refused or timed out AMQP_LIST for 3 minutes: gateways cannot declare, publish or consume on its vhosts.")
	t.Items = []Item{
		withTriggers(t.master("mqops AMQP: get data", get, "1m", "mqops-zbx amqp: AMQP_LIST of every vhost of the broker."),
			t.trigger("mqops AMQP: failed to fetch data", t.fn("nodata", get, "5m")+"=1", "WARNING", "availability", "")),
		withTriggers(withMap(t.dep(get, "mqops AMQP: up", up, "$.up", vtUint, "", "availability", "0"), "Service state"), notUp),
		t.dep(get, "mqops AMQP: vhosts", "mqops.amqp.vhosts", "$.vhosts", vtUint, "", "amqp", "0"),
		t.dep(get, "mqops AMQP: queues", "mqops.amqp.queues", "$.queueCount", vtUint, "", "amqp", "0"),
		t.dep(get, "mqops AMQP: ready messages", "mqops.amqp.ready", "$.ready", vtUint, "msg", "amqp", "0"),
		t.dep(get, "mqops AMQP: unacked messages", "mqops.amqp.unacked", "$.unacked", vtUint, "msg", "amqp", "0"),
		t.dep(get, "mqops AMQP: consumers", "mqops.amqp.consumers", "$.consumers", vtUint, "", "amqp", "0"),
		t.dep(get, "mqops AMQP: paused queues", "mqops.amqp.paused", "$.pausedQueues", vtUint, "", "amqp", "0"),
	}
	queues := t.discovery("AMQP queues", `mqops.amqp.queue.discovery["{$RMQ.BROKER.ADDR}"]`,
		"One row per queue of the vhosts whose home is this broker.",
		filter(matches("{#VHOST}", "{$MQOPS.AMQP.LLD.VHOST.MATCHES}"), notMatches("{#QUEUE}", "{$MQOPS.AMQP.LLD.QUEUE.NOT_MATCHES}")))
	qItem := func(name, key, field, units string, more ...Step) Item {
		vt := vtUint
		if len(more) > 0 && more[0].Type == "CHANGE_PER_SECOND" {
			vt = vtFloat
		}
		it := t.dep(get, "Queue {#VHOST}/{#QUEUE}: "+name, key, "$.queues['{#VHOST}']['{#QUEUE}']."+field, vt, units, "amqp", "", more...)
		it.Tags = append(it.Tags, Tag{"vhost", "{#VHOST}"}, Tag{"queue", "{#QUEUE}"})
		return it
	}
	perSecond := Step{Type: "CHANGE_PER_SECOND", Parameters: []string{""}}
	queues.ItemPrototypes = []Item{
		qItem("ready", ready, "ready", "msg"),
		qItem("unacked", unacked, "unacked", "msg"),
		qItem("consumers", cons, "consumers", ""),
		withMap(qItem("paused", paused, "paused", ""), "Yes/No"),
		qItem("rate limit", "mqops.amqp.queue.rate_limit[{#VHOST},{#QUEUE}]", "rateLimit", "msg/s"),
		withDesc(qItem("publish rate", pubRate, "published", "msg/s", perSecond), "Messages stored for the queue per second (requeued copies count)."),
		qItem("deliver rate", delRate, "delivered", "msg/s", perSecond),
		qItem("ack rate", ackRate, "acked", "msg/s", perSecond),
		withDesc(qItem("redeliveries per minute", redel, "redelivered", "msg", Step{Type: "SIMPLE_CHANGE", Parameters: []string{""}}),
			"Deliveries marked redelivered (released on channel close, consume timeout, requeued) since the last check (1 minute)."),
	}
	queues.TriggerPrototypes = []Trigger{
		t.trigger("Queue {#VHOST}/{#QUEUE}: backlog above {$MQOPS.AMQP.READY.MAX:\"{#QUEUE}\"}",
			t.fn("min", ready, "15m")+`>{$MQOPS.AMQP.READY.MAX:"{#QUEUE}"}`, "WARNING", "capacity",
			"Ready messages stayed above the threshold for 15 minutes: consumers are too slow, too few, or paused.", notUp),
		t.trigger("Queue {#VHOST}/{#QUEUE}: messages waiting, no consumer",
			t.fn("min", ready, "10m")+">0 and "+t.fn("max", cons, "10m")+"=0", "WARNING", "availability",
			"Messages have been ready for 10 minutes and no gateway channel consumes the queue.", notUp),
		t.trigger("Queue {#VHOST}/{#QUEUE}: unacked above {$MQOPS.AMQP.UNACKED.MAX:\"{#QUEUE}\"}",
			t.fn("min", unacked, "15m")+`>{$MQOPS.AMQP.UNACKED.MAX:"{#QUEUE}"}`, "WARNING", "performance",
			"Consumers hold many deliveries without acknowledging them (large prefetch, stuck handlers).", notUp),
		t.trigger("Queue {#VHOST}/{#QUEUE}: many redeliveries", t.fn("sum", redel, "10m")+`>{$MQOPS.AMQP.REDELIVERED.MAX:"{#QUEUE}"}`, "WARNING", "performance",
			"Messages keep coming back: consumers nack or crash on them, or time out (consume timeout); look for a poison message or a failing consumer.", notUp),
		t.trigger("Queue {#VHOST}/{#QUEUE}: paused", t.fn("last", paused)+"=1", "INFO", "notice",
			"Deliveries are paused (mqadmin amqp queue pause); mqadmin amqp queue resume restarts them."),
	}
	queues.GraphPrototypes = []Graph{
		t.graphPrototype("Queue {#VHOST}/{#QUEUE}: depth", ready, unacked),
		t.graphPrototype("Queue {#VHOST}/{#QUEUE}: rates", pubRate, delRate, ackRate),
	}
	t.DiscoveryRules = []Discovery{queues}
	t.graph("mqops AMQP: messages", "mqops.amqp.ready", "mqops.amqp.unacked")
	return t
}
