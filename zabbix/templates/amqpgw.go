package templates

// AMQPGateway is the template of one AMQP gateway process (mqamqp, or the
// gateway in a broker), from its stats endpoint (mqops-zbx amqpgw).
const AMQPGateway = "mqops AMQP gateway"

func amqpGatewayTemplate() *tpl {
	t := newTemplate(AMQPGateway, "One mqops AMQP 0-9-1 gateway (mqamqp, or a broker's own with enableAmqpGateway), from its host: "+
		"whether it answers, its client connections, channels and consumers, publishers held by flow control, and the "+
		"rates of messages published, delivered and settled through it. The gateway serves these on statsListenAddr "+
		"(amqp.conf; the Ansible role sets it). Queues' depth is the \"mqops AMQP\" template's, on the broker hosts.")
	t.macro("{$MQOPS.AMQPGW.STATS}", "127.0.0.1:15680", "The gateway's statsListenAddr, as the agent reaches it.")
	t.macro("{$MQOPS.AMQPGW.LOGIN_REFUSED.MAX}", "10", "Refused logins in 10 minutes worth a warning (a client with a wrong password retrying, or someone guessing).")
	t.macro("{$MQOPS.AMQPGW.CONNECTIONS.MAX}", "5000", "Open connections worth a warning (compare with maxConnections and the descriptor limit).")
	t.valueMap("Service state", "0", "Down", "1", "Up")
	t.valueMap("Yes/No", "0", "No", "1", "Yes")
	const (
		get       = `mqops.amqpgw.get["{$MQOPS.AMQPGW.STATS}"]`
		up        = "mqops.amqpgw.up"
		conns     = "mqops.amqpgw.connections"
		chans     = "mqops.amqpgw.channels"
		blocked   = "mqops.amqpgw.blocked_publishers"
		memAlarm  = "mqops.amqpgw.memory_alarm"
		pubRate   = "mqops.amqpgw.publish.rate"
		delRate   = "mqops.amqpgw.deliver.rate"
		ackRate   = "mqops.amqpgw.ack.rate"
		pubFailed = "mqops.amqpgw.publish.failed"
		refused   = "mqops.amqpgw.connections.refused"
		logins    = "mqops.amqpgw.logins.refused"
		started   = "mqops.amqpgw.start_time"
	)
	perSecond := Step{Type: "CHANGE_PER_SECOND", Parameters: []string{""}}
	perCheck := Step{Type: "SIMPLE_CHANGE", Parameters: []string{""}}
	rate := func(name, key, field, desc string) Item {
		return withDesc(t.dep(get, "mqops AMQP gateway: "+name, key, "$."+field, vtFloat, "msg/s", "amqp", "", perSecond), desc)
	}
	change := func(name, key, field, desc string) Item {
		return withDesc(t.dep(get, "mqops AMQP gateway: "+name, key, "$."+field, vtUint, "", "amqp", "", perCheck), desc+" Since the last check (1 minute).")
	}
	notUp := t.trigger("mqops AMQP gateway: down", t.fn("max", up, "3m")+"=0", "HIGH", "availability",
		"The gateway's stats endpoint has not answered for 3 minutes: the process is down or hung, and its AMQP clients are cut off "+
			"(they reconnect to another gateway if they have a list).")
	t.Items = []Item{
		withTriggers(t.master("mqops AMQP gateway: get data", get, "1m", "mqops-zbx amqpgw: the gateway's GET /stats."),
			t.trigger("mqops AMQP gateway: failed to fetch data", t.fn("nodata", get, "5m")+"=1", "WARNING", "availability", "")),
		withTriggers(withMap(t.dep(get, "mqops AMQP gateway: up", up, "$.up", vtUint, "", "availability", "0"), "Service state"), notUp),
		withTriggers(withDesc(t.dep(get, "mqops AMQP gateway: start time", started, "$.startTime", vtFloat, "unixtime", "availability", "", Step{Type: "MULTIPLIER", Parameters: []string{"0.001"}}),
			"When the gateway process started."),
			t.trigger("mqops AMQP gateway: restarted", t.fn("change", started)+"<>0", "INFO", "notice",
				"The gateway started again: its clients reconnected (or should have).", notUp)),
		withTriggers(t.dep(get, "mqops AMQP gateway: connections", conns, "$.connections", vtUint, "", "amqp", ""),
			t.trigger("mqops AMQP gateway: many connections", t.fn("min", conns, "10m")+">{$MQOPS.AMQPGW.CONNECTIONS.MAX}", "WARNING", "capacity",
				"More client connections than expected for 10 minutes: a client leaking connections, or the gateways need scaling out.", notUp)),
		change("new connections", "mqops.amqpgw.connections.accepted", "connectionsAccepted", "Client connections accepted: a steady high figure is a client reconnecting in a loop."),
		t.dep(get, "mqops AMQP gateway: channels", chans, "$.channels", vtUint, "", "amqp", ""),
		t.dep(get, "mqops AMQP gateway: consumers", "mqops.amqpgw.consumers", "$.consumers", vtUint, "", "amqp", ""),
		withTriggers(withDesc(t.dep(get, "mqops AMQP gateway: blocked publishers", blocked, "$.blockedPublishers", vtUint, "", "amqp", ""),
			"Publishing connections the gateway stopped reading (connection.blocked): a broker refuses publishes (disk full, flow control) or the gateway's buffered publishes passed memoryHighWatermark."),
			t.trigger("mqops AMQP gateway: publishers blocked", t.fn("min", blocked, "5m")+">0", "WARNING", "performance",
				"Publishers have been held for 5 minutes: look at the brokers' disk and flow control, or the gateway's memory alarm.", notUp)),
		t.dep(get, "mqops AMQP gateway: blocked vhosts", "mqops.amqpgw.blocked_vhosts", "$.blockedVhosts", vtUint, "", "amqp", ""),
		withTriggers(withMap(t.dep(get, "mqops AMQP gateway: memory alarm", memAlarm, "$.memoryAlarm", vtUint, "", "amqp", ""), "Yes/No"),
			t.trigger("mqops AMQP gateway: memory alarm", t.fn("last", memAlarm)+"=1", "WARNING", "capacity",
				"Publish bodies waiting for the brokers exceed memoryHighWatermark: publishers are blocked until the brokers catch up.", notUp)),
		t.dep(get, "mqops AMQP gateway: buffered publish bytes", "mqops.amqpgw.buffered", "$.bufferedBytes", vtUint, "B", "amqp", ""),
		rate("publish rate", pubRate, "published", "Messages the brokers took from this gateway's publishers per second (stored, or unroutable)."),
		rate("deliver rate", delRate, "delivered", "Messages delivered to consumers (basic.deliver, basic.get-ok) per second."),
		rate("ack rate", ackRate, "acked", "Deliveries acknowledged by clients per second."),
		withTriggers(change("failed publishes", pubFailed, "publishFailed", "Messages no broker stored (nacked to confirm-mode publishers, or dropped with their channel)."),
			t.trigger("mqops AMQP gateway: publishes failing", t.fn("sum", pubFailed, "10m")+">0", "WARNING", "availability",
				"Brokers did not store some publishes in the last 10 minutes (unreachable, disk full, flow control): see the gateway's log.", notUp)),
		change("returned messages", "mqops.amqpgw.returned", "returned", "Mandatory messages returned unroutable."),
		change("redeliveries", "mqops.amqpgw.redelivered", "redelivered", "Deliveries marked redelivered."),
		change("requeued", "mqops.amqpgw.requeued", "requeued", "Deliveries nacked or rejected with requeue."),
		change("rejected", "mqops.amqpgw.rejected", "rejected", "Deliveries nacked or rejected without requeue (dead-lettered or dropped)."),
		withTriggers(change("refused logins", logins, "loginsRefused", "Logins refused: wrong user or password, or a loopback-only user from afar."),
			t.trigger("mqops AMQP gateway: logins refused", t.fn("sum", logins, "10m")+">{$MQOPS.AMQPGW.LOGIN_REFUSED.MAX}", "WARNING", "security",
				"Many refused logins in 10 minutes: a client with stale credentials, or someone guessing passwords.", notUp)),
		withTriggers(change("refused connections", refused, "connectionsRefused", "Connections refused at maxConnections."),
			t.trigger("mqops AMQP gateway: connections refused", t.fn("sum", refused, "10m")+">0", "WARNING", "capacity",
				"The gateway refused connections at maxConnections in the last 10 minutes.", notUp)),
		change("connection errors", "mqops.amqpgw.connection.errors", "connectionErrors", "Connections closed by a connection exception (protocol errors, refused logins with authentication_failure_close)."),
		change("channel errors", "mqops.amqpgw.channel.errors", "channelErrors", "Channels closed by a channel exception (404 no queue, 406 unknown tag, 403 access refused…)."),
	}
	t.graph("mqops AMQP gateway: clients", conns, chans, "mqops.amqpgw.consumers")
	t.graph("mqops AMQP gateway: message rates", pubRate, delRate, ackRate)
	return t
}
