package templates

// Replication items of the cluster template, from mqops-zbx replication
// (probe.ReplicationStatus).

// notKnown makes a JSONPath miss an item error saying why, instead of
// Zabbix's generic "cannot extract value".
func notKnown(it Item, why string) Item {
	it.Preprocessing[0].ErrorHandler, it.Preprocessing[0].ErrorHandlerParams = "CUSTOM_ERROR", why
	return it
}

func controllerDep(t *tpl, master, name, key, field string) Item {
	return notKnown(t.dep(master, "RocketMQ cluster: "+name, key, "$.controller."+field, vtUint, "", "replication", ""),
		"no controller configured: set {$RMQ.CONTROLLER.ADDR}")
}

// brokerSets is the discovery of broker sets (brokerName) with the
// in-sync count, the controller's SyncStateSet and master epoch.
func brokerSets(t *tpl, master string, nsAllDown Trigger) Discovery {
	d := t.discovery("Broker sets", `rocketmq.cluster.brokerset.discovery["{$RMQ.NAMESRV.ADDR}","{$RMQ.CLUSTER.NAME}"]`,
		"One row per brokerName (a master and its slaves).", nil)
	item := func(name, key, field, why string) Item {
		it := t.dep(master, "Broker set {#BROKER}: "+name, key+"[{#BROKER}]", "$.sets['{#BROKER}']."+field, vtUint, "", "replication", "")
		it.Tags = append(it.Tags, Tag{"broker", "{#BROKER}"})
		return notKnown(it, why)
	}
	const gone = "the cluster's name servers do not list broker set {#BROKER}"
	noController := "no master epoch: no controller answers ({$RMQ.CONTROLLER.ADDR}) and the master does not report one"
	d.ItemPrototypes = []Item{
		item("in-sync slaves", "rocketmq.set.insync", "inSync", gone),
		item("slaves connected", "rocketmq.set.slaves", "slaves", gone),
		withMap(item("no in-sync slave", "rocketmq.set.noinsync", "noInSync", gone), "Yes/No"),
		withUnits(item("largest slave lag", "rocketmq.set.lag.max", "maxLagBytes", gone), "B"),
		item("master epoch", "rocketmq.set.epoch", "masterEpoch", noController),
		item("SyncStateSet size", "rocketmq.set.syncstateset", "syncStateSetSize",
			"no SyncStateSet: no controller leader answers ({$RMQ.CONTROLLER.ADDR}) or it does not know {#BROKER}"),
	}
	failover := t.trigger("Broker set {#BROKER}: master changed (failover, epoch {ITEM.LASTVALUE})",
		t.fn("change", "rocketmq.set.epoch[{#BROKER}]")+">0", "WARNING", "notice",
		"The master epoch of {#BROKER} grew: the controller elected a new master. Check why the old one left and that it came back as a slave.")
	failover.ManualClose = "YES"
	d.TriggerPrototypes = []Trigger{
		t.trigger("Broker set {#BROKER}: no in-sync slave", t.fn("min", "rocketmq.set.noinsync[{#BROKER}]", "2m")+"=1", "HIGH", "availability",
			"No slave of {#BROKER} is in sync for 2 minutes: a SYNC_MASTER refuses sends (SLAVE_NOT_AVAILABLE) and losing the master would lose messages.", nsAllDown),
		failover,
	}
	d.GraphPrototypes = []Graph{t.graphPrototype("Broker set {#BROKER}: SyncStateSet and in-sync slaves",
		"rocketmq.set.syncstateset[{#BROKER}]", "rocketmq.set.insync[{#BROKER}]", "rocketmq.set.slaves[{#BROKER}]")}
	return d
}

// replicas is the discovery of slaves with their lag.
func replicas(t *tpl, master string, nsAllDown Trigger) Discovery {
	d := t.discovery("Slaves", `rocketmq.cluster.replica.discovery["{$RMQ.NAMESRV.ADDR}","{$RMQ.CLUSTER.NAME}"]`,
		"One row per slave (brokerId ≥ 1) of each broker set; {#BROKER.ADDR} is its address.", nil)
	const id = "[{#BROKER},{#BROKER.ID}]"
	item := func(name, key, field, vt, units, why string) Item {
		it := t.dep(master, "Slave {#BROKER}/{#BROKER.ID}: "+name, key+id, "$.replicas['{#BROKER}/{#BROKER.ID}']."+field, vt, units, "replication", "")
		it.Tags = append(it.Tags, Tag{"broker", "{#BROKER}"}, Tag{"address", "{#BROKER.ADDR}"})
		return notKnown(it, why)
	}
	const unknown = "slave {#BROKER}/{#BROKER.ID} ({#BROKER.ADDR}) is not connected to its master and does not answer, or its master does not answer"
	d.ItemPrototypes = []Item{
		withDesc(item("replication lag", "rocketmq.replica.lag.bytes", "lagBytes", vtUint, "B", unknown),
			"The master's max commit-log offset minus the slave's last acknowledged offset (mqadmin haStatus Diff)."),
		withDesc(item("replication lag, seconds to catch up", "rocketmq.replica.lag.seconds", "lagSeconds", vtFloat, "s",
			"slave {#BROKER}/{#BROKER.ID} has no rate: not connected, or bytes outstanding but none transferred (stalled)"),
			"Lag bytes divided by the master's transfer rate to this slave (haStatus transferredByteInSecond); 0 when caught up. "+
				"Unsupported while the slave is stalled (lag but no transfer): the lag-bytes trigger covers that."),
		withMap(item("in sync", "rocketmq.replica.insync", "inSync", vtUint, "", unknown), "Yes/No"),
		withMap(item("connected to master", "rocketmq.replica.connected", "connected", vtUint, "", unknown), "Yes/No"),
		withMap(item("up", "rocketmq.replica.up", "up", vtUint, "", unknown), "Service state"),
		withMap(item("stalled", "rocketmq.replica.stalled", "stalled", vtUint, "", unknown), "Yes/No"),
	}
	bytes, secs := "rocketmq.replica.lag.bytes"+id, "rocketmq.replica.lag.seconds"+id
	d.TriggerPrototypes = []Trigger{
		t.trigger(`Slave {#BROKER}/{#BROKER.ID}: replication lag above {$RMQ.REPLICA.LAG.MAX.WARN:"{#BROKER}"} B for {$RMQ.REPLICA.LAG.TIME}`,
			t.fn("min", bytes, "{$RMQ.REPLICA.LAG.TIME}")+`>{$RMQ.REPLICA.LAG.MAX.WARN:"{#BROKER}"}`, "WARNING", "performance",
			"The slave falls behind: a master loss now would lose (ASYNC_MASTER) or stall (SYNC_MASTER) this much.", nsAllDown),
		t.trigger(`Slave {#BROKER}/{#BROKER.ID}: needs more than {$RMQ.REPLICA.LAG.SECONDS.MAX.WARN:"{#BROKER}"} s to catch up for {$RMQ.REPLICA.LAG.TIME}`,
			t.fn("min", secs, "{$RMQ.REPLICA.LAG.TIME}")+`>{$RMQ.REPLICA.LAG.SECONDS.MAX.WARN:"{#BROKER}"}`, "WARNING", "performance", "", nsAllDown),
		t.trigger("Slave {#BROKER}/{#BROKER.ID}: down or gone",
			t.fn("max", "rocketmq.replica.up"+id, "3m")+"=0 or "+t.fn("nodata", "rocketmq.replica.up"+id, "5m")+"=1", "AVERAGE", "availability",
			"The slave ({#BROKER.ADDR}) does not answer, or the name servers stopped listing it (its items then get no data). "+
				"An ASYNC_MASTER keeps taking writes that no replica holds.", nsAllDown),
		t.trigger("Slave {#BROKER}/{#BROKER.ID}: replication stalled for {$RMQ.REPLICA.LAG.TIME}",
			t.fn("min", "rocketmq.replica.stalled"+id, "{$RMQ.REPLICA.LAG.TIME}")+"=1", "AVERAGE", "availability",
			"The slave is connected and behind, but its master sends it nothing.", nsAllDown),
	}
	d.GraphPrototypes = []Graph{t.graphPrototype("Slave {#BROKER}/{#BROKER.ID}: replication lag", bytes)}
	return d
}

func withUnits(it Item, units string) Item {
	it.Units = units
	return it
}
