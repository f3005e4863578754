package templates

// Template names.
const (
	Namesrv = "RocketMQ name server by Zabbix agent"
	Cluster = "RocketMQ cluster by Zabbix agent"
)

func namesrvTemplate() *tpl {
	t := newTemplate(Namesrv, "One mqops (or Apache RocketMQ) name server, from its own host: process, port, the "+
		"brokers and topics it routes, and brokers it expired (namesrv.log).")
	t.macro("{$RMQ.NAMESRV.ADDR}", "127.0.0.1:9876", "Address the agent reaches the name server on.")
	t.macro("{$RMQ.NAMESRV.PORT}", "9876", "The name server's listenPort.")
	t.macro("{$RMQ.NAMESRV.PROC.PATTERN}", "mqnamesrv", "Command line pattern of the name-server process.")
	t.macro("{$RMQ.LOG.DIR}", "/var/log/mqops", "The name server's logDir.")
	t.macro("{$RMQ.NAMESRV.BROKERS.MIN}", "1", "Broker processes (masters and slaves) this name server should list.")
	t.valueMap("Service state", "0", "Down", "1", "Up")
	const (
		ns   = `rocketmq.namesrv.get["{$RMQ.NAMESRV.ADDR}"]`
		logs = `rocketmq.namesrv.logs.get["{$RMQ.LOG.DIR}"]`
		proc = `proc.num[,,,"{$RMQ.NAMESRV.PROC.PATTERN}"]`
		port = `net.tcp.service[tcp,,{$RMQ.NAMESRV.PORT}]`
	)
	procDown := t.trigger("RocketMQ name server: process is not running", t.fn("last", proc)+"=0", "HIGH", "availability", "")
	portDown := t.trigger("RocketMQ name server: port {$RMQ.NAMESRV.PORT} is down", t.fn("last", port)+"=0", "AVERAGE", "availability", "", procDown)
	portDown.ManualClose = "YES"
	notUp := t.trigger("RocketMQ name server: does not answer", t.fn("max", "rocketmq.namesrv.up", "3m")+"=0", "HIGH", "availability", "", procDown, portDown)
	t.Items = []Item{
		withTriggers(t.agent("RocketMQ name server: process count", proc, "1m", vtUint, "", "availability", ""), procDown),
		withTriggers(withMap(t.agent("RocketMQ name server: port state", port, "1m", vtUint, "", "availability", ""), "Service state"), portDown),
		withTriggers(t.master("RocketMQ name server: get data", ns, "1m", "mqops-zbx namesrv: cluster table and topics."),
			t.trigger("RocketMQ name server: failed to fetch data", t.fn("nodata", ns, "5m")+"=1", "WARNING", "availability", "", procDown)),
		withTriggers(withMap(t.dep(ns, "RocketMQ name server: up", "rocketmq.namesrv.up", "$.up", vtUint, "", "availability", "0"), "Service state"), notUp),
		withTriggers(t.dep(ns, "RocketMQ name server: brokers", "rocketmq.namesrv.brokers", "$.brokers", vtUint, "", "availability", ""),
			t.trigger("RocketMQ name server: sees too few brokers", t.fn("max", "rocketmq.namesrv.brokers", "3m")+"<{$RMQ.NAMESRV.BROKERS.MIN}",
				"HIGH", "availability", "Fewer broker processes registered than {$RMQ.NAMESRV.BROKERS.MIN}.", notUp)),
		t.dep(ns, "RocketMQ name server: broker groups", "rocketmq.namesrv.broker.groups", "$.brokerGroups", vtUint, "", "availability", ""),
		t.dep(ns, "RocketMQ name server: masters", "rocketmq.namesrv.masters", "$.masters", vtUint, "", "availability", ""),
		t.dep(ns, "RocketMQ name server: topics", "rocketmq.namesrv.topics", "$.topics", vtUint, "", "business", ""),
		t.master("RocketMQ name server: get log counts", logs, "1m", "mqops-zbx logs: running counts of namesrv.log records."),
		withTriggers(t.dep(logs, "RocketMQ name server: brokers expired", "rocketmq.namesrv.log.broker_expired", "$.brokerExpired", vtUint, "", "logs", "", simpleChange),
			t.trigger("RocketMQ name server: expired a broker", t.fn("sum", "rocketmq.namesrv.log.broker_expired", "10m")+">0", "AVERAGE", "availability",
				"BROKER_EXPIRED in namesrv.log: a broker stopped sending heartbeats.")),
		t.dep(logs, "RocketMQ name server: errors logged", "rocketmq.namesrv.log.errors", "$.files.namesrv.error", vtUint, "", "logs", "0", simpleChange),
	}
	return t
}

func clusterTemplate() *tpl {
	t := newTemplate(Cluster, "One cluster, from any host that reaches its name servers and brokers (link it to one host "+
		"per cluster): status, writable masters, brokers, consumer backlog and lag per group and topic, business figures "+
		"summed over the masters, and a canary round trip through every master with the official Go client.")
	t.macro("{$RMQ.NAMESRV.ADDR}", "127.0.0.1:9876", "The cluster's name servers, separated by ','.")
	t.macro("{$RMQ.CLUSTER.NAME}", "DefaultCluster", "brokerClusterName.")
	t.macro("{$RMQ.CLUSTER.MASTERS.MIN}", "1", "Writable masters the cluster needs.")
	t.macro("{$RMQ.GROUP.BACKLOG.MAX.WARN}", "10000", "Backlog (messages) worth a warning (context: group).")
	t.macro("{$RMQ.GROUP.BACKLOG.MAX.HIGH}", "100000", "Backlog (messages) worth a high alert (context: group).")
	t.macro("{$RMQ.GROUP.POP.EXPIRED.MAX.WARN}", "100", "POP leases (RocketMQ 5 consumers) that may expire in 10 minutes (context: group).")
	t.macro("{$RMQ.GROUP.POP.INFLIGHT.MAX.WARN}", "8000", "POP messages in flight on one broker worth a warning, below its popInflightMessageThreshold (context: group).")
	t.macro("{$RMQ.GROUP.LAG.MAX.WARN}", "300", "Seconds the oldest unconsumed message may wait (context: group).")
	t.macro("{$RMQ.CANARY.TOPIC}", "MQOPS_CANARY", "Canary topic, created on masters that lack it.")
	t.macro("{$RMQ.CANARY.GROUP}", "MQOPS_CANARY_GROUP", "Canary producer and consumer group.")
	t.macro("{$RMQ.CANARY.RTT.MAX.WARN}", "1000", "Canary round trip (ms) worth a warning.")
	t.macro("{$RMQ.CONTROLLER.ADDR}", "", "Controller addresses (mqcontroller or name servers with enableControllerInNamesrv), separated by ','; empty for classic master-slave.")
	t.macro("{$RMQ.REPLICA.LAG.MAX.WARN}", "104857600", "Slave replication lag (bytes) worth a warning (context: brokerName).")
	t.macro("{$RMQ.REPLICA.LAG.SECONDS.MAX.WARN}", "30", "Slave catch-up time (s) at the current transfer rate worth a warning (context: brokerName).")
	t.macro("{$RMQ.REPLICA.LAG.TIME}", "5m", "How long a slave's lag must stay above the thresholds.")
	lldMacros(t)
	t.valueMap("Cluster status", "0", "OK", "1", "Degraded", "2", "Down")
	t.valueMap("Service state", "0", "Down", "1", "Up")
	t.valueMap("Yes/No", "0", "No", "1", "Yes")

	const (
		repl     = `rocketmq.replication.get["{$RMQ.NAMESRV.ADDR}","{$RMQ.CLUSTER.NAME}","{$RMQ.CONTROLLER.ADDR}"]`
		cluster  = `rocketmq.cluster.get["{$RMQ.NAMESRV.ADDR}","{$RMQ.CLUSTER.NAME}"]`
		backlog  = `rocketmq.backlog.get["{$RMQ.NAMESRV.ADDR}","{$RMQ.CLUSTER.NAME}"]`
		business = `rocketmq.business.get["{$RMQ.NAMESRV.ADDR}","{$RMQ.CLUSTER.NAME}"]`
		canary   = `rocketmq.canary["{$RMQ.NAMESRV.ADDR}","{$RMQ.CLUSTER.NAME}","{$RMQ.CANARY.TOPIC}","{$RMQ.CANARY.GROUP}"]`
	)
	down := t.trigger("RocketMQ cluster: down", t.fn("last", "rocketmq.cluster.status")+"=2", "DISASTER", "availability",
		"No name server answers or no master takes writes.")
	degraded := t.trigger("RocketMQ cluster: degraded", t.fn("last", "rocketmq.cluster.status")+"=1", "AVERAGE", "availability",
		"A name server, broker or master is missing, or a master is not writable; see the cluster data item.", down)
	nsAllDown := t.trigger("RocketMQ cluster: no name server answers", t.fn("last", "rocketmq.cluster.namesrv.up")+"=0", "DISASTER", "availability", "")
	t.Items = []Item{
		withTriggers(t.master("RocketMQ cluster: get status", cluster, "1m", "mqops-zbx cluster."),
			t.trigger("RocketMQ cluster: failed to fetch status", t.fn("nodata", cluster, "5m")+"=1", "WARNING", "availability", "")),
		withTriggers(withMap(t.dep(cluster, "RocketMQ cluster: status", "rocketmq.cluster.status", "$.status", vtUint, "", "availability", "2"), "Cluster status"), down, degraded),
		t.dep(cluster, "RocketMQ cluster: status reasons", "rocketmq.cluster.reasons", "$.reasons", vtText, "", "availability", ""),
		withTriggers(t.dep(cluster, "RocketMQ cluster: name servers up", "rocketmq.cluster.namesrv.up", "$.namesrvUp", vtUint, "", "availability", "0"), nsAllDown,
			t.trigger("RocketMQ cluster: a name server is down", t.fn("last", "rocketmq.cluster.namesrv.up")+"<"+t.fn("last", "rocketmq.cluster.namesrv.count"),
				"AVERAGE", "availability", "", nsAllDown)),
		t.dep(cluster, "RocketMQ cluster: name servers", "rocketmq.cluster.namesrv.count", "$.namesrvCount", vtUint, "", "availability", ""),
		t.dep(cluster, "RocketMQ cluster: broker groups", "rocketmq.cluster.broker.groups", "$.brokerGroups", vtUint, "", "availability", ""),
		withTriggers(t.dep(cluster, "RocketMQ cluster: writable masters", "rocketmq.cluster.masters.writable", "$.mastersWritable", vtUint, "", "availability", "0"),
			t.trigger("RocketMQ cluster: fewer than {$RMQ.CLUSTER.MASTERS.MIN} writable masters",
				t.fn("last", "rocketmq.cluster.masters.writable")+"<{$RMQ.CLUSTER.MASTERS.MIN}", "HIGH", "availability", "", down)),
		t.dep(cluster, "RocketMQ cluster: masters up", "rocketmq.cluster.masters.up", "$.mastersUp", vtUint, "", "availability", ""),
		t.dep(cluster, "RocketMQ cluster: slaves up", "rocketmq.cluster.slaves.up", "$.slavesUp", vtUint, "", "availability", ""),

		withTriggers(t.master("RocketMQ cluster: get backlog", backlog, "1m", "mqops-zbx backlog."),
			t.trigger("RocketMQ cluster: failed to fetch backlog", t.fn("nodata", backlog, "5m")+"=1", "WARNING", "availability", "")),
		t.dep(backlog, "RocketMQ cluster: total backlog", "rocketmq.cluster.backlog", "$.total", vtUint, "msg", "business", ""),
		t.master("RocketMQ cluster: get business figures", business, "1m", "mqops-zbx business: counts from the masters' own statistics."),
		t.dep(business, "RocketMQ cluster: produced today", "rocketmq.cluster.put.today", "$.put.today", vtUint, "msg", "business", "0"),
		t.dep(business, "RocketMQ cluster: consumed today", "rocketmq.cluster.get.today", "$.get.today", vtUint, "msg", "business", "0"),
		t.dep(business, "RocketMQ cluster: produce TPS", "rocketmq.cluster.put.tps", "$.put.tps", vtFloat, "msg/s", "business", "0"),
		t.dep(business, "RocketMQ cluster: consume TPS", "rocketmq.cluster.get.tps", "$.get.tps", vtFloat, "msg/s", "business", "0"),

		t.master("RocketMQ cluster: canary round trip", canary, "1m", "mqops-zbx canary: a message through every master and back."),
		withTriggers(t.dep(canary, "RocketMQ cluster: canary failures", "rocketmq.canary.failed", "$.failed", vtUint, "", "availability", ""),
			t.trigger("RocketMQ cluster: canary message did not make the round trip",
				t.fn("min", "rocketmq.canary.failed", "3m")+">0", "HIGH", "availability", "Sending through a master or reading the message back failed 3 times in a row.", down)),
		t.dep(canary, "RocketMQ cluster: canary passes", "rocketmq.canary.ok", "$.ok", vtUint, "", "availability", ""),
		withTriggers(t.dep(canary, "RocketMQ cluster: canary round trip, slowest master", "rocketmq.canary.rtt", "$.maxRttMs", vtFloat, "ms", "performance", ""),
			t.trigger("RocketMQ cluster: canary round trip slow", t.fn("min", "rocketmq.canary.rtt", "5m")+">{$RMQ.CANARY.RTT.MAX.WARN}", "WARNING", "performance", "")),
	}
	noLeader := t.trigger("RocketMQ cluster: no controller leader", t.fn("max", "rocketmq.controller.leader", "2m")+"=0", "HIGH", "availability",
		"For 2 minutes no controller of {$RMQ.CONTROLLER.ADDR} said it leads (or several did): no failover can happen and "+
			"SyncStateSet changes wait. The controller data item says which controllers answered.")
	t.Items = append(t.Items,
		withTriggers(t.master("RocketMQ cluster: get replication", repl, "1m",
			"mqops-zbx replication: the masters' HA status, every slave's lag, and the controller group's leader, SyncStateSets and master epochs."),
			t.trigger("RocketMQ cluster: failed to fetch replication", t.fn("nodata", repl, "5m")+"=1", "WARNING", "availability", "")),
		withTriggers(withMap(controllerDep(t, repl, "controller leader present", "rocketmq.controller.leader", "leaderPresent"), "Yes/No"), noLeader),
		controllerDep(t, repl, "controllers answering", "rocketmq.controller.answered", "answered"),
		controllerDep(t, repl, "controllers configured", "rocketmq.controller.count", "configured"),
	)
	t.graph("RocketMQ cluster: Put/Get TPS", "rocketmq.cluster.put.tps", "rocketmq.cluster.get.tps")
	t.graph("RocketMQ cluster: Produced and consumed today", "rocketmq.cluster.put.today", "rocketmq.cluster.get.today")
	t.graph("RocketMQ cluster: Backlog", "rocketmq.cluster.backlog")
	t.graph("RocketMQ cluster: Canary round trip", "rocketmq.canary.rtt")

	brokers := t.discovery("Brokers", `rocketmq.cluster.broker.discovery["{$RMQ.NAMESRV.ADDR}","{$RMQ.CLUSTER.NAME}"]`, "Masters and slaves of the cluster.", nil)
	brokerPath := func(field string) string {
		return "$.brokers[?(@.brokerName=='{#BROKER}' && @.brokerId=={#BROKER.ID})]." + field + ".first()"
	}
	brokerItem := func(name, key, field, vt, units, component string) Item {
		it := t.dep(cluster, "Broker {#BROKER}/{#BROKER.ID}: "+name, key+"[{#BROKER},{#BROKER.ID}]", brokerPath(field), vt, units, component, "")
		it.Tags = append(it.Tags, Tag{"broker", "{#BROKER}"})
		return it
	}
	brokers.ItemPrototypes = []Item{
		withMap(brokerItem("up", "rocketmq.cluster.broker.up", "up", vtUint, "", "availability"), "Service state"),
		brokerItem("permission", "rocketmq.cluster.broker.perm", "permission", vtUint, "", "availability"),
		brokerItem("commit log disk used", "rocketmq.cluster.broker.disk", "diskPused", vtFloat, "%", "storage"),
		brokerItem("put TPS", "rocketmq.cluster.broker.put.tps", "putTps", vtFloat, "msg/s", "performance"),
	}
	brokers.TriggerPrototypes = []Trigger{
		t.trigger("Broker {#BROKER}/{#BROKER.ID} is down", t.fn("max", "rocketmq.cluster.broker.up[{#BROKER},{#BROKER.ID}]", "3m")+"=0",
			"HIGH", "availability", "The broker listed by the name servers does not answer.", nsAllDown),
	}
	brokers.GraphPrototypes = []Graph{t.graphPrototype("Broker {#BROKER}/{#BROKER.ID}: disk and put TPS",
		"rocketmq.cluster.broker.disk[{#BROKER},{#BROKER.ID}]", "rocketmq.cluster.broker.put.tps[{#BROKER},{#BROKER.ID}]")}

	topics := t.discovery("Topics", `rocketmq.cluster.topic.discovery["{$RMQ.NAMESRV.ADDR}","{$RMQ.CLUSTER.NAME}"]`, "Topics of the cluster.", topicFilter())
	topicItem := func(name, key, field, vt, units string) Item {
		return t.topicDep(business, name, key, field, vt, units)
	}
	fiveMin := t.agent("Topic {#TOPIC}: produced last 5 minutes", "rocketmq.cluster.topic.put.5m[{#TOPIC}]", "5m", vtUint, "msg", "business", "")
	fiveMin.Type = "CALCULATED"
	fiveMin.Params = "sum(//rocketmq.cluster.topic.put.minute[{#TOPIC}],5m)"
	fiveMin.Tags = append(fiveMin.Tags, Tag{"topic", "{#TOPIC}"})
	hour := fiveMin
	hour.UUID, hour.Name, hour.Key, hour.Delay = uuid(t.Name, "item", "rocketmq.cluster.topic.put.1h[{#TOPIC}]"),
		"Topic {#TOPIC}: produced last hour", "rocketmq.cluster.topic.put.1h[{#TOPIC}]", "1h"
	hour.Params = "sum(//rocketmq.cluster.topic.put.minute[{#TOPIC}],1h)"
	topics.ItemPrototypes = []Item{
		topicItem("produced today", "rocketmq.cluster.topic.put.today", "today", vtUint, "msg"),
		topicItem("produced last minute", "rocketmq.cluster.topic.put.minute", "minute", vtUint, "msg"),
		topicItem("produce TPS", "rocketmq.cluster.topic.put.tps", "tps", vtFloat, "msg/s"),
		fiveMin, hour,
	}
	topics.GraphPrototypes = []Graph{t.graphPrototype("Topic {#TOPIC}: produce increments",
		"rocketmq.cluster.topic.put.minute[{#TOPIC}]", "rocketmq.cluster.topic.put.5m[{#TOPIC}]")}

	groups := t.discovery("Consumer groups", `rocketmq.cluster.group.discovery["{$RMQ.NAMESRV.ADDR}","{$RMQ.CLUSTER.NAME}"]`, "Consumer groups of the cluster.", groupFilter())
	groupItem := func(master, name, key, path, vt, units string, more ...Step) Item {
		it := t.dep(master, "Group {#GROUP}: "+name, key+"[{#GROUP}]", "$.groups['{#GROUP}']."+path, vt, units, "business", "0", more...)
		it.Tags = append(it.Tags, Tag{"group", "{#GROUP}"})
		return it
	}
	backlogKey, minuteKey := "rocketmq.group.backlog[{#GROUP}]", "rocketmq.group.get.minute[{#GROUP}]"
	const (
		popInflight    = "rocketmq.group.pop.inflight"
		popInflightMax = "rocketmq.group.pop.inflight.max"
		popExpired     = "rocketmq.group.pop.expired"
	)
	high := t.trigger("Group {#GROUP}: backlog above {$RMQ.GROUP.BACKLOG.MAX.HIGH:\"{#GROUP}\"}",
		t.fn("min", backlogKey, "5m")+`>{$RMQ.GROUP.BACKLOG.MAX.HIGH:"{#GROUP}"}`, "HIGH", "performance", "")
	groups.ItemPrototypes = []Item{
		groupItem(backlog, "backlog", "rocketmq.group.backlog", "backlog", vtUint, "msg"),
		groupItem(backlog, "retry backlog", "rocketmq.group.retry.backlog", "retryBacklog", vtUint, "msg"),
		groupItem(backlog, "dead letters", "rocketmq.group.dlq.size", "dlq", vtUint, "msg"),
		groupItem(backlog, "lag", "rocketmq.group.lag", "lagSeconds", vtUint, "s"),
		groupItem(backlog, "online clients", "rocketmq.group.clients", "clients", vtUint, ""),
		groupItem(business, "consumed today", "rocketmq.group.get.today", "today", vtUint, "msg"),
		groupItem(business, "consumed last minute", "rocketmq.group.get.minute", "minute", vtUint, "msg"),
		groupItem(business, "consume TPS", "rocketmq.group.get.tps", "tps", vtFloat, "msg/s"),
		withDesc(groupItem(backlog, "POP messages in flight", popInflight, "popInflight", vtUint, "msg"),
			"Messages RocketMQ 5 (gRPC) consumers received and have not acknowledged yet, over the masters (leases held)."),
		withDesc(groupItem(backlog, "POP messages in flight, most on one broker", popInflightMax, "popInflightMax", vtUint, "msg"),
			"A broker refuses this group's receives (TOO_MANY_REQUESTS) past its popInflightMessageThreshold (10000 by default)."),
		withDesc(groupItem(backlog, "POP leases expired", popExpired, "popExpired", vtUint, "msg", simpleChange),
			"Deliveries not acknowledged within their invisible duration since the last check (the masters count since they started): "+
				"each is delivered again with its attempt count raised, and past the group's retries goes to %DLQ%{#GROUP}."),
	}
	groups.TriggerPrototypes = []Trigger{
		high,
		t.trigger("Group {#GROUP}: backlog above {$RMQ.GROUP.BACKLOG.MAX.WARN:\"{#GROUP}\"}",
			t.fn("min", backlogKey, "5m")+`>{$RMQ.GROUP.BACKLOG.MAX.WARN:"{#GROUP}"}`, "WARNING", "performance", "", high),
		t.trigger("Group {#GROUP}: consumption stopped while backlog grows",
			t.fn("sum", minuteKey, "10m")+"=0 and "+t.fn("min", backlogKey, "10m")+">0 and "+t.fn("last", backlogKey)+">"+t.fn("last", backlogKey, "#1:now-10m"),
			"AVERAGE", "performance", "Nothing consumed for 10 minutes and the backlog is higher than 10 minutes ago."),
		t.trigger("Group {#GROUP}: no consumer online while backlog waits",
			t.fn("last", "rocketmq.group.clients[{#GROUP}]")+"=0 and "+t.fn("min", backlogKey, "5m")+">0", "AVERAGE", "availability", ""),
		t.trigger("Group {#GROUP}: messages waiting longer than {$RMQ.GROUP.LAG.MAX.WARN:\"{#GROUP}\"} s",
			t.fn("min", "rocketmq.group.lag[{#GROUP}]", "5m")+`>{$RMQ.GROUP.LAG.MAX.WARN:"{#GROUP}"}`, "WARNING", "performance", ""),
		t.trigger("Group {#GROUP}: dead-letter queue grew", t.fn("change", "rocketmq.group.dlq.size[{#GROUP}]")+">0", "WARNING", "notice",
			"Messages that failed every retry went to %DLQ%{#GROUP}."),
		t.trigger("Group {#GROUP}: more than {$RMQ.GROUP.POP.EXPIRED.MAX.WARN:\"{#GROUP}\"} POP leases expired in 10 minutes",
			t.fn("sum", popExpired+"[{#GROUP}]", "10m")+`>{$RMQ.GROUP.POP.EXPIRED.MAX.WARN:"{#GROUP}"}`, "WARNING", "performance",
			"RocketMQ 5 consumers of the group let deliveries run past their invisible duration without an ack: they crash, take "+
				"longer than the invisible duration, or fail the messages (a nack). Each is delivered again later; check the "+
				"consumers' logs and processing time, or raise their invisible duration."),
		t.trigger("Group {#GROUP}: POP messages in flight above {$RMQ.GROUP.POP.INFLIGHT.MAX.WARN:\"{#GROUP}\"} on a broker",
			t.fn("min", popInflightMax+"[{#GROUP}]", "5m")+`>{$RMQ.GROUP.POP.INFLIGHT.MAX.WARN:"{#GROUP}"}`, "WARNING", "performance",
			"Received but unacknowledged messages pile up on one broker for 5 minutes; at popInflightMessageThreshold (10000 by "+
				"default) the broker refuses the group's receives. Consumers receive faster than they acknowledge."),
	}
	groups.GraphPrototypes = []Graph{t.graphPrototype("Group {#GROUP}: backlog", backlogKey, "rocketmq.group.retry.backlog[{#GROUP}]")}

	pairs := t.discovery("Consumer groups per topic", `rocketmq.cluster.pair.discovery["{$RMQ.NAMESRV.ADDR}","{$RMQ.CLUSTER.NAME}"]`,
		"One row per group and topic it has consume progress on.", pairFilter())
	pairs.ItemPrototypes = []Item{
		t.pairDep(backlog, "backlog", "rocketmq.pair.backlog", "backlog"),
		t.pairDep(business, "consumed today", "rocketmq.pair.get.today", "today"),
		t.pairDep(business, "consumed last minute", "rocketmq.pair.get.minute", "minute"),
	}
	t.DiscoveryRules = []Discovery{brokers, topics, groups, pairs, brokerSets(t, repl, nsAllDown), replicas(t, repl, nsAllDown)}

	t.Dashboards = []Dashboard{{
		UUID: uuid(t.Name, "dashboard", "RocketMQ overview"), Name: "RocketMQ overview",
		Pages: []Page{
			{Name: "Service", Widgets: []Widget{
				itemWidget(0, 0, 6, 3, "Cluster status", t.Name, "rocketmq.cluster.status"),
				itemWidget(6, 0, 6, 3, "Writable masters", t.Name, "rocketmq.cluster.masters.writable"),
				itemWidget(12, 0, 6, 3, "Name servers up", t.Name, "rocketmq.cluster.namesrv.up"),
				itemWidget(18, 0, 6, 3, "Canary round trip", t.Name, "rocketmq.canary.rtt"),
				graphWidget(0, 3, 12, 5, t.Name, "RocketMQ cluster: Put/Get TPS"),
				graphWidget(12, 3, 12, 5, t.Name, "RocketMQ cluster: Canary round trip"),
				graphPrototypeWidget(0, 8, 24, 5, t.Name, "Broker {#BROKER}/{#BROKER.ID}: disk and put TPS", 4),
			}},
			{Name: "Replication", Widgets: []Widget{
				itemWidget(0, 0, 6, 3, "Controller leader present", t.Name, "rocketmq.controller.leader"),
				itemWidget(6, 0, 6, 3, "Controllers answering", t.Name, "rocketmq.controller.answered"),
				graphPrototypeWidget(0, 3, 24, 5, t.Name, "Slave {#BROKER}/{#BROKER.ID}: replication lag", 3),
				graphPrototypeWidget(0, 8, 24, 5, t.Name, "Broker set {#BROKER}: SyncStateSet and in-sync slaves", 3),
			}},
			{Name: "Business", Widgets: []Widget{
				itemWidget(0, 0, 12, 3, "Produced today", t.Name, "rocketmq.cluster.put.today"),
				itemWidget(12, 0, 12, 3, "Consumed today", t.Name, "rocketmq.cluster.get.today"),
				graphWidget(0, 3, 12, 5, t.Name, "RocketMQ cluster: Produced and consumed today"),
				graphWidget(12, 3, 12, 5, t.Name, "RocketMQ cluster: Backlog"),
				graphPrototypeWidget(0, 8, 24, 5, t.Name, "Topic {#TOPIC}: produce increments", 3),
				graphPrototypeWidget(0, 13, 24, 5, t.Name, "Group {#GROUP}: backlog", 3),
			}},
		},
	}}
	return t
}

// Files returns the template exports by file name.
func Files() map[string]Export {
	return map[string]Export{
		"template_rocketmq_broker.yaml":     export(brokerTemplate()),
		"template_rocketmq_namesrv.yaml":    export(namesrvTemplate()),
		"template_rocketmq_cluster.yaml":    export(clusterTemplate()),
		"template_rocketmq_controller.yaml": export(controllerTemplate()),
		"template_mqops_amqp.yaml":          export(amqpTemplate()),
		"template_mqops_amqp_gateway.yaml":  export(amqpGatewayTemplate()),
	}
}
