package templates

// Broker is the name of the broker-host template.
const Broker = "RocketMQ broker by Zabbix agent"

// Default LLD filters: the discovery rows carry {#TOPIC.TYPE} and
// {#GROUP.TYPE} (normal, retry, dlq, system), so the name filters only
// have to catch what a site wants left out on top.
const (
	TopicNotMatches = `^(%RETRY%|%DLQ%|RMQ_SYS_|rmq_sys_|SCHEDULE_TOPIC_XXXX|TBW102|SELF_TEST_TOPIC|OFFSET_MOVED_EVENT|BenchmarkTest|TRANS_CHECK_MAX_TIME_TOPIC|MQOPS_CANARY)`
	GroupNotMatches = `^(TOOLS_CONSUMER|CID_RMQ_SYS_|SELF_TEST_|FILTERSRV_CONSUMER|CID_ONS|MQOPS_CANARY|__)`
	TypeMatches     = `^normal$`
)

func lldMacros(t *tpl) {
	t.macro("{$RMQ.LLD.TOPIC.MATCHES}", ".*", "Discover topics whose name matches.")
	t.macro("{$RMQ.LLD.TOPIC.NOT_MATCHES}", TopicNotMatches, "Leave out topics whose name matches (system, retry, dead-letter and canary topics).")
	t.macro("{$RMQ.LLD.TOPIC.TYPE.MATCHES}", TypeMatches, "Discover topics of these types: normal, retry, dlq, system.")
	t.macro("{$RMQ.LLD.GROUP.MATCHES}", ".*", "Discover consumer groups whose name matches.")
	t.macro("{$RMQ.LLD.GROUP.NOT_MATCHES}", GroupNotMatches, "Leave out consumer groups whose name matches (tool and canary groups).")
	t.macro("{$RMQ.LLD.GROUP.TYPE.MATCHES}", TypeMatches, "Discover consumer groups of these types: normal, system.")
}

func topicFilter() *Filter {
	return filter(matches("{#TOPIC}", "{$RMQ.LLD.TOPIC.MATCHES}"), notMatches("{#TOPIC}", "{$RMQ.LLD.TOPIC.NOT_MATCHES}"),
		matches("{#TOPIC.TYPE}", "{$RMQ.LLD.TOPIC.TYPE.MATCHES}"))
}

func groupFilter() *Filter {
	return filter(matches("{#GROUP}", "{$RMQ.LLD.GROUP.MATCHES}"), notMatches("{#GROUP}", "{$RMQ.LLD.GROUP.NOT_MATCHES}"),
		matches("{#GROUP.TYPE}", "{$RMQ.LLD.GROUP.TYPE.MATCHES}"))
}

func pairFilter() *Filter {
	f := groupFilter()
	g := topicFilter()
	f.Conditions = append(f.Conditions, g.Conditions...)
	return filter(f.Conditions...)
}

func brokerTemplate() *tpl {
	t := newTemplate(Broker, "One mqops (or Apache RocketMQ-protocol) broker, from its own host: process and port, "+
		"the broker's runtime table and settings, registration in every name server, counts from broker.log, store.log "+
		"and storeerror.log, and per-topic / per-group business figures from stats.log. Needs mqops-zbx and "+
		"userparameter_mqops.conf on the agent (the zabbix_agent Ansible role installs both).")
	t.macro("{$RMQ.BROKER.ADDR}", "127.0.0.1:10911", "Address the agent reaches the broker on.")
	t.macro("{$RMQ.BROKER.PORT}", "10911", "The broker's listenPort.")
	t.macro("{$RMQ.BROKER.PROC.PATTERN}", "mqbroker", "Command line pattern of the broker process (proc.num).")
	t.macro("{$RMQ.NAMESRV.ADDR}", "", "Name servers to check registration with, separated by ','; empty: the broker's own namesrvAddr.")
	t.macro("{$RMQ.LOG.DIR}", "/var/log/mqops", "The broker's logDir.")
	t.macro("{$RMQ.STORE.PATH}", "/var/lib/mqops/store", "The broker's storePathRootDir.")
	t.macro("{$RMQ.BROKER.PERM.EXPECTED}", "6", "Expected brokerPermission: 6 read-write; set 4 on a cluster being drained.")
	t.macro("{$RMQ.DISK.PUSED.MAX.WARN}", "75", "Disk use (%) where the broker starts deleting early (diskMaxUsedSpaceRatio).")
	t.macro("{$RMQ.DISK.PUSED.MAX.HIGH}", "85", "Disk use (%) of diskSpaceCleanForciblyRatio: above it segments every group has read are deleted regardless of age, and a full broker takes sends again only at or below it.")
	t.macro("{$RMQ.DISK.PUSED.MAX.DISASTER}", "90", "Disk use (%) of diskSpaceWarningLevelRatio: above it the broker marks the disk full and refuses sends (store state Disk full); segments holding unread messages go only above max(diskMaxUsedSpaceRatio, diskSpaceWarningLevelRatio + 2) %, with cleanFileForciblyEnable.")
	t.macro("{$RMQ.RETENTION.MIN.HOURS}", "24", "Retention below this many hours means disk pressure is deleting messages early.")
	t.macro("{$RMQ.SENDQ.WAIT.MAX.WARN}", "100", "Send-queue head wait (ms) worth a warning.")
	t.macro("{$RMQ.PCLOCK.MAX.WARN}", "500", "Page-cache lock time (ms) worth a warning.")
	t.macro("{$RMQ.HA.LAG.MAX.WARN}", "104857600", "Slave lag (bytes) worth a warning.")
	t.macro("{$RMQ.STATS.AGE.MAX}", "300", "stats.log older than this (s) means statistics stopped.")
	t.macro("{$RMQ.TOPIC.PUT.MIN}", "100", "A topic that produced more than this in the same 15 minutes yesterday and nothing now has stopped (context: topic).")
	t.macro("{$RMQ.TOPIC.PUT.DROP.PCT}", "80", "Production this many percent below the same hour yesterday is reported (context: topic).")
	t.macro("{$RMQ.ACL.DENIED.MAX}", "10", "ACL denials in 5 minutes worth a warning (wrong credentials, missing permissions, probing).")
	t.macro("{$RMQ.FLOW.REJECTED.MAX}", "0", "Sends refused by flow control (SYSTEM_BUSY) in 5 minutes tolerated before a warning.")
	t.macro("{$RMQ.TOPIC.QUOTA.REJECTED.MAX}", "0", "Sends a topic's produce quota refused in 5 minutes tolerated before a warning (context: topic).")
	t.macro("{$RMQ.ACCOUNT.QUOTA.REJECTED.MAX}", "0", "Sends an ACL account's produce quota (produceTps / produceBps) refused in 5 minutes tolerated before a warning (context: accessKey).")
	t.macro("{$RMQ.LLD.ACCOUNT.MATCHES}", ".*", "Discover ACL accounts (with a produce quota) whose accessKey matches.")
	t.macro("{$RMQ.LLD.ACCOUNT.NOT_MATCHES}", "^$", "Leave out ACL accounts whose accessKey matches.")
	lldMacros(t)
	t.valueMap("Service state", "0", "Down", "1", "Up")
	t.valueMap("Broker permission", "0", "None", "2", "Write only", "4", "Read only", "6", "Read-write")
	t.valueMap("Enabled", "0", "Off", "1", "On")
	t.valueMap("Store state", "0", "OK", "1", "Disk full", "2", "Failed", "3", "Closed", "4", "Unknown")

	const (
		broker = `rocketmq.broker.get["{$RMQ.BROKER.ADDR}","{$RMQ.NAMESRV.ADDR}"]`
		logs   = `rocketmq.logs.get["{$RMQ.LOG.DIR}"]`
		stats  = `rocketmq.stats.get["{$RMQ.LOG.DIR}"]`
		proc   = `proc.num[,,,"{$RMQ.BROKER.PROC.PATTERN}"]`
		port   = `net.tcp.service[tcp,,{$RMQ.BROKER.PORT}]`
	)
	procDown := t.trigger("RocketMQ broker: process is not running", t.fn("last", proc)+"=0", "HIGH", "availability", "")
	portDown := t.trigger("RocketMQ broker: port {$RMQ.BROKER.PORT} is down", t.fn("last", port)+"=0", "AVERAGE", "availability", "", procDown)
	portDown.ManualClose = "YES"
	noData := t.trigger("RocketMQ broker: failed to fetch broker data", t.fn("nodata", broker, "5m")+"=1", "WARNING", "availability",
		"mqops-zbx broker has not answered for 5 minutes: agent timeout, helper missing or not executable.", procDown, portDown)
	notUp := t.trigger("RocketMQ broker: broker does not answer", t.fn("max", "rocketmq.broker.up", "3m")+"=0", "HIGH", "availability",
		"The broker refused or timed out the runtime-info request for 3 minutes.", procDown, portDown)
	unregAll := t.trigger("RocketMQ broker: not registered in any name server",
		t.fn("last", "rocketmq.broker.registered")+"=0 and "+t.fn("last", "rocketmq.broker.up")+"=1", "DISASTER", "availability",
		"No name server lists this broker: clients cannot route to it.")
	unreg := t.trigger("RocketMQ broker: not registered in every name server",
		t.fn("max", "rocketmq.broker.registered", "3m")+"<"+t.fn("last", "rocketmq.broker.namesrv.count"), "HIGH", "availability",
		"Some name server has not listed this broker for 3 minutes (heartbeats every 30 s; expiry after 120 s).", unregAll, notUp)
	permRemoved := t.trigger("RocketMQ broker: write permission removed",
		t.fn("last", "rocketmq.broker.permission")+"<>{$RMQ.BROKER.PERM.EXPECTED} and bitand("+t.fn("last", "rocketmq.broker.permission")+",2)=0",
		"WARNING", "availability", "brokerPermission no longer allows writes. Set {$RMQ.BROKER.PERM.EXPECTED}=4 on a cluster being drained on purpose.")
	permChanged := t.trigger("RocketMQ broker: permission changed", t.fn("change", "rocketmq.broker.permission")+"<>0", "INFO", "notice", "")
	permChanged.ManualClose = "YES"
	verChanged := t.trigger("RocketMQ broker: version has changed",
		t.fn("last", "rocketmq.broker.build", "#1")+"<>"+t.fn("last", "rocketmq.broker.build", "#2")+" and length("+t.fn("last", "rocketmq.broker.build")+")>0",
		"INFO", "notice", "")
	verChanged.ManualClose = "YES"
	const (
		grpcEnabled = "rocketmq.broker.grpc.enabled"
		grpcUp      = "rocketmq.broker.grpc.up"
	)
	grpcDown := t.trigger("RocketMQ broker: gRPC port does not answer",
		t.fn("max", grpcUp, "3m")+"=0 and "+t.fn("last", grpcEnabled)+"=1", "HIGH", "availability",
		"The broker serves RocketMQ 5's gRPC protocol but its port has refused connections from this host for 3 minutes: 5.x "+
			"clients (any language) cannot send or receive through this broker. Check the broker's log for [SERVE] gRPC server "+
			"stopped, and a firewall in front of grpcServerPort.", notUp)
	restarted := t.trigger("RocketMQ broker: broker has been restarted", t.fn("last", "rocketmq.broker.uptime")+"<10m", "INFO", "notice", "")
	restarted.ManualClose = "YES"

	const (
		state    = "rocketmq.broker.store.state"
		ranges   = "rocketmq.broker.store.corrupt.ranges"
		skipped  = "rocketmq.broker.store.corrupt.skipped"
		fsyncLog = "rocketmq.broker.log.fsync_failed"
	)
	storeFailed := t.trigger("RocketMQ broker: store failed, every send refused until restart", t.fn("last", state)+"=2", "DISASTER", "availability",
		"An fsync of a commit-log segment, a consume-queue file or the commit-log directory failed ([FLUSH] fsync failed in storeerror.log; "+
			"the item \"store error\" names the file and offset). The kernel may have dropped the unwritten pages, so the broker keeps its "+
			"last durable checkpoint and answers every send SERVICE_NOT_AVAILABLE until it is restarted; producers retry other brokers. "+
			"Check the disk (dmesg, SMART, the filesystem, free space), fix it, then restart the broker: recovery validates the log from "+
			"the last good checkpoint and keeps every record that reached the disk. Reads go on meanwhile.", notUp)
	storeFull := t.trigger("RocketMQ broker: disk full, sends refused", t.fn("last", state)+"=1", "HIGH", "capacity",
		"Disk use of the commit log (counting the next segment) or the consume queues passed diskSpaceWarningLevelRatio (90 %): the "+
			"broker refuses sends (SERVICE_NOT_AVAILABLE, \"the broker's disk is full [CL: … CQ: … INDEX: …]\") rather than delete unread "+
			"messages, and takes them again by itself at or below diskSpaceCleanForciblyRatio (85 %). Reads go on. Free space: let consumers catch up, delete "+
			"groups that stopped consuming with their offsets (mqadmin group delete -g G -b BROKER --remove-offset), delete unused "+
			"topics, or add disk. Segments every group has consumed are deleted regardless of age meanwhile.", notUp)
	corrupt := t.trigger("RocketMQ broker: damaged commit-log records",
		t.fn("last", ranges)+">"+t.fn("min", ranges, "1h")+" or "+t.fn("last", skipped)+">"+t.fn("min", skipped, "1h"), "HIGH", "availability",
		"The broker found commit-log records that fail their checks (recovery, a read or the background scrub), or a read hit one, in "+
			"the last hour. Damaged records are never served: consumers skip those messages (their queue offsets are not reused), "+
			"every other record stays readable. The bytes are copied to <storePathRootDir>/corrupt/ and storeerror.log names offset, "+
			"topic and queue ([RECOVERY] or [CORRUPT]). Check the disk (dmesg, SMART); replay the lost messages from their producers "+
			"if needed.")
	corrupt.Opdata = "Damaged ranges: {ITEM.LASTVALUE1}, reads skipped: {ITEM.LASTVALUE3}"
	corrupt.ManualClose = "YES"
	logEvent := func(name, key, window, priority, scope, desc string, deps ...Trigger) Trigger {
		tr := t.trigger(name, t.fn("sum", key, window)+">0", priority, scope, desc, deps...)
		tr.ManualClose = "YES"
		return tr
	}
	fsyncLogged := logEvent("RocketMQ broker: fsync failed", fsyncLog, "1h", "HIGH", "availability",
		"[FLUSH] fsync failed in storeerror.log in the last hour: the disk reported a write error. The store refused every send until "+
			"the broker was restarted; check the disk even if the broker runs again.", storeFailed)
	diskFullLogged := logEvent("RocketMQ broker: store refused writes, disk full", "rocketmq.broker.log.disk_full", "10m", "HIGH", "capacity",
		"[DISK_FULL] … so mark disk full, or the message store is not writable, in store.log in the last 10 minutes (also when the "+
			"state item missed it).", storeFull)
	corruptLogged := logEvent("RocketMQ broker: damaged commit-log records logged", "rocketmq.broker.log.corruption", "1h", "HIGH", "availability",
		"[RECOVERY] corrupt commitlog range or [CORRUPT] in store.log in the last hour: see \"damaged commit-log records\".", corrupt)
	unreadDeleted := logEvent("RocketMQ broker: unread messages deleted to free disk", "rocketmq.broker.log.unread_deleted", "1h", "HIGH", "capacity",
		"[RETENTION] disk almost full: deleted a segment holding unconsumed messages (WARN in storeerror.log, with unconsumed=N and the "+
			"count per queue): something other than the broker filled the disk past max(diskMaxUsedSpaceRatio, diskSpaceWarningLevelRatio + 2) %, and messages "+
			"no group had read are gone. Find what fills the disk; the item \"unread messages deleted\" counts the messages.")
	retentionHeld := logEvent("RocketMQ broker: disk under pressure, oldest segment holds unread messages", "rocketmq.broker.log.retention_blocked", "1h",
		"WARNING", "capacity",
		"[RETENTION] disk under pressure but the oldest segment holds unconsumed messages: retention cannot free space without deleting "+
			"unread messages, so it keeps them; sends are refused when the disk fills. Let the groups named in the line's queues= catch "+
			"up, delete groups that stopped consuming (mqadmin group delete -g G -b BROKER --remove-offset), or add disk.", storeFull)
	cqBlocked := logEvent("RocketMQ broker: consume queue blocked", "rocketmq.broker.log.cq_blocked", "10m", "HIGH", "availability",
		"[DISK_FULL] or [DISPATCH] consume queue blocked in store.log (repeated every minute as \"consume queues still blocked\"): a "+
			"queue's consume-queue file could not be created or written, so its new messages are stored but cannot be consumed; other "+
			"queues go on. It catches up by itself when space returns ([DISPATCH] consume queue resumed) or after a restart: free disk.")
	cqRebuilt := logEvent("RocketMQ broker: consume queue rebuilt from the commit log", "rocketmq.broker.log.cq_rebuilt", "10m", "WARNING", "availability",
		"[RECOVERY] or [CONSUME_QUEUE] rebuilt consume queue in store.log: consume-queue entries were missing or did not match their "+
			"records and were rebuilt from the commit log (topic, queue and reason in the line). At ERROR some entries had no record "+
			"left and became fillers: those messages are lost. Look for a disk problem or files removed by hand.")

	const (
		aclDenied  = "rocketmq.broker.acl.denied"
		aclReload  = "rocketmq.broker.acl.reload_failed"
		flowRej    = "rocketmq.broker.flow.rejected"
		quotaRej   = "rocketmq.broker.quota.rejected"
		quotaTopic = "rocketmq.topic.quota.rejected[{#TOPIC}]"
		quotaAcct  = "rocketmq.broker.quota.account.rejected"
	)
	aclReloadFailed := logEvent("RocketMQ broker: ACL rules reload failed, previous rules in force", aclReload, "1h", "AVERAGE", "security",
		"The broker re-read plain_acl.yml (or tools.yml) after a change and refused it in the last hour: the file does not parse or "+
			"breaks a rule, so the rules loaded before stay in force and the edit has no effect. acl.log says why (ERROR reload "+
			"failed, keeping the rules in force, with file and line); fix the file and the broker loads it by itself.")
	aclBurst := t.trigger("RocketMQ broker: burst of ACL denials", t.fn("sum", aclDenied, "5m")+">{$RMQ.ACL.DENIED.MAX}", "WARNING", "security",
		"More than {$RMQ.ACL.DENIED.MAX} requests refused by ACL in 5 minutes: a client with a wrong secret or missing permissions "+
			"(see the items by reason and the audit log for the access key and address), or someone probing.", notUp)
	aclBurst.Opdata = "Denied in the last check: {ITEM.LASTVALUE1}"
	flowRejecting := t.trigger("RocketMQ broker: flow control refusing sends", t.fn("sum", flowRej, "5m")+">{$RMQ.FLOW.REJECTED.MAX}", "WARNING", "performance",
		"Sends answered SYSTEM_BUSY by the broker's send admission in the last 5 minutes (flowcontrol.log names the tag: "+
			"REJECTREQUEST, OVERLOAD, TIMEOUT_CLEAN_QUEUE, PCBUSY_CLEAN_QUEUE); producers retry other brokers. The items by tag "+
			"say which budget ran out. Topic quota refusals have their own trigger per topic, account quota refusals their own.", notUp)
	disk := func(key, what string) []Trigger {
		d := t.trigger("RocketMQ broker: "+what+" disk use above {$RMQ.DISK.PUSED.MAX.DISASTER}%",
			t.fn("min", key, "5m")+">{$RMQ.DISK.PUSED.MAX.DISASTER}", "DISASTER", "capacity",
			"The broker refuses sends (diskSpaceWarningLevelRatio), and above max(diskMaxUsedSpaceRatio, diskSpaceWarningLevelRatio + 2) % "+
				"it deletes segments holding unread messages unless cleanFileForciblyEnable=false.")
		h := t.trigger("RocketMQ broker: "+what+" disk use above {$RMQ.DISK.PUSED.MAX.HIGH}%",
			t.fn("min", key, "5m")+">{$RMQ.DISK.PUSED.MAX.HIGH}", "HIGH", "capacity", "Segments every group has read are deleted regardless of age; a full broker takes sends again only at or below this.", d)
		w := t.trigger("RocketMQ broker: "+what+" disk use above {$RMQ.DISK.PUSED.MAX.WARN}%",
			t.fn("min", key, "5m")+">{$RMQ.DISK.PUSED.MAX.WARN}", "WARNING", "capacity", "Early deletion of the oldest files has started.", h)
		for _, tr := range []*Trigger{&d, &h, &w} {
			tr.Opdata = "Used: {ITEM.LASTVALUE1}"
		}
		return []Trigger{w, h, d}
	}

	t.Items = []Item{
		withTriggers(t.agent("RocketMQ broker: process count", proc, "1m", vtUint, "", "availability", "Processes matching {$RMQ.BROKER.PROC.PATTERN}."), procDown),
		withTriggers(withMap(t.agent("RocketMQ broker: port state", port, "1m", vtUint, "", "availability", ""), "Service state"), portDown),
		withTriggers(t.master("RocketMQ broker: get runtime data", broker, "1m", "mqops-zbx broker: runtime table, settings and registration."), noData),
		withTriggers(withMap(t.dep(broker, "RocketMQ broker: up", "rocketmq.broker.up", "$.up", vtUint, "", "availability", "0"), "Service state"), notUp),
		withTriggers(t.dep(broker, "RocketMQ broker: registered in name servers", "rocketmq.broker.registered", "$.registered", vtUint, "", "availability", "0"), unreg, unregAll),
		t.dep(broker, "RocketMQ broker: name servers", "rocketmq.broker.namesrv.count", "$.namesrvCount", vtUint, "", "availability", ""),
		withTriggers(withMap(t.dep(broker, "RocketMQ broker: permission", "rocketmq.broker.permission", "$.permission", vtUint, "", "availability", ""), "Broker permission"), permRemoved, permChanged),
		withTriggers(withMap(withDesc(t.dep(broker, "RocketMQ broker: store state", state, "$.storeStateCode", vtUint, "", "storage", ""),
			"The broker's storeState: OK; Disk full (sends refused until disk use falls to diskSpaceCleanForciblyRatio, 85 %); Failed (an fsync failed: sends refused "+
				"until restart); Closed (shutting down); Unknown (no answer, or a broker that does not report it)."), "Store state"),
			storeFailed, storeFull),
		t.dep(broker, "RocketMQ broker: store error", "rocketmq.broker.store.error", "$.storeError", vtChar, "", "storage", "", discardHeartbeat("1h")),
		withTriggers(t.dep(broker, "RocketMQ broker: damaged commit-log ranges", ranges, "$.commitLogCorruptRanges", vtUint, "", "storage", ""), corrupt),
		t.dep(broker, "RocketMQ broker: damaged commit-log bytes", "rocketmq.broker.store.corrupt.bytes", "$.commitLogCorruptBytes", vtUint, "B", "storage", ""),
		withDesc(t.dep(broker, "RocketMQ broker: reads skipped on damaged records", skipped, "$.corruptMessagesSkipped", vtUint, "", "storage", ""),
			"Reads refused since the broker started because they hit a damaged record (the consumer skips that message)."),
		t.dep(broker, "RocketMQ broker: role", "rocketmq.broker.role", "$.role", vtChar, "", "availability", "", discardHeartbeat("1d")),
		t.dep(broker, "RocketMQ broker: protocol version", "rocketmq.broker.version", "$.version", vtChar, "", "availability", "", discardHeartbeat("1d")),
		withTriggers(t.dep(broker, "RocketMQ broker: mqops version", "rocketmq.broker.build", "$.build", vtChar, "", "availability", "", discardHeartbeat("1d")), verChanged),
		withTriggers(t.dep(broker, "RocketMQ broker: uptime", "rocketmq.broker.uptime", "$.uptime", vtUint, "s", "availability", ""), restarted),
		withTriggers(t.dep(broker, "RocketMQ broker: commit log disk used", "rocketmq.broker.disk.commitlog.pused", "$.commitLogPused", vtFloat, "%", "storage", ""), disk("rocketmq.broker.disk.commitlog.pused", "commit log")...),
		withTriggers(t.dep(broker, "RocketMQ broker: consume queue disk used", "rocketmq.broker.disk.cq.pused", "$.consumeQueuePused", vtFloat, "%", "storage", ""), disk("rocketmq.broker.disk.cq.pused", "consume queue")...),
		t.agent("RocketMQ broker: store filesystem used", `vfs.fs.size[{$RMQ.STORE.PATH},pused]`, "5m", vtFloat, "%", "storage", "Independent of the broker process."),
		withTriggers(t.dep(broker, "RocketMQ broker: retention", "rocketmq.broker.retention.hours", "$.retentionHours", vtFloat, "h", "storage", ""),
			t.trigger("RocketMQ broker: retention below {$RMQ.RETENTION.MIN.HOURS} h",
				t.fn("last", "rocketmq.broker.retention.hours")+"<{$RMQ.RETENTION.MIN.HOURS} and "+t.fn("last", "rocketmq.broker.uptime")+">{$RMQ.RETENTION.MIN.HOURS}*3600",
				"WARNING", "capacity", "The oldest message is younger than expected: disk pressure is deleting early.")),
		withTriggers(t.dep(broker, "RocketMQ broker: send queue head wait", "rocketmq.broker.sendq.wait", "$.sendQueueWaitMs", vtUint, "ms", "performance", ""),
			t.trigger("RocketMQ broker: send queue wait too high", t.fn("min", "rocketmq.broker.sendq.wait", "3m")+">{$RMQ.SENDQ.WAIT.MAX.WARN}", "WARNING", "performance", "")),
		t.dep(broker, "RocketMQ broker: send queue size", "rocketmq.broker.sendq.size", "$.sendQueueSize", vtUint, "", "performance", ""),
		withTriggers(t.dep(broker, "RocketMQ broker: page cache lock time", "rocketmq.broker.pagecache.lock", "$.pageCacheLockMs", vtUint, "ms", "performance", ""),
			t.trigger("RocketMQ broker: page cache busy", t.fn("min", "rocketmq.broker.pagecache.lock", "3m")+">{$RMQ.PCLOCK.MAX.WARN}", "WARNING", "performance", "")),
		t.dep(broker, "RocketMQ broker: put TPS", "rocketmq.broker.put.tps", "$.putTps", vtFloat, "msg/s", "performance", ""),
		t.dep(broker, "RocketMQ broker: get TPS", "rocketmq.broker.get.tps", "$.getTps", vtFloat, "msg/s", "performance", ""),
		withTriggers(t.dep(broker, "RocketMQ broker: put failures", "rocketmq.broker.put.failed", "$.putFailed", vtUint, "", "performance", "", simpleChange),
			t.trigger("RocketMQ broker: sends refused by the store", t.fn("min", "rocketmq.broker.put.failed", "5m")+">0", "AVERAGE", "availability",
				"The store refused sends every minute for 5 minutes (disk full, failed fsync, shutting down, illegal messages).", notUp, storeFailed, storeFull)),
		withTriggers(withDesc(t.dep(broker, "RocketMQ broker: ACL denials", aclDenied, "$.aclDenied", vtUint, "", "security", "", simpleChange),
			"Requests refused by ACL since the last check (aclEnable), every reason."), aclBurst),
		t.dep(broker, "RocketMQ broker: ACL denials, no access key", aclDenied+"[no_access_key]", "$.aclDeniedByReason.no_access_key", vtUint, "", "security", "0", simpleChange),
		t.dep(broker, "RocketMQ broker: ACL denials, unknown account", aclDenied+"[unknown_account]", "$.aclDeniedByReason.unknown_account", vtUint, "", "security", "0", simpleChange),
		t.dep(broker, "RocketMQ broker: ACL denials, signature", aclDenied+"[signature]", "$.aclDeniedByReason.signature", vtUint, "", "security", "0", simpleChange),
		t.dep(broker, "RocketMQ broker: ACL denials, admin", aclDenied+"[admin]", "$.aclDeniedByReason.admin", vtUint, "", "security", "0", simpleChange),
		t.dep(broker, "RocketMQ broker: ACL denials, topic", aclDenied+"[topic]", "$.aclDeniedByReason.topic", vtUint, "", "security", "0", simpleChange),
		t.dep(broker, "RocketMQ broker: ACL denials, group", aclDenied+"[group]", "$.aclDeniedByReason.group", vtUint, "", "security", "0", simpleChange),
		t.dep(broker, "RocketMQ broker: ACL denials, bad body", aclDenied+"[bad_body]", "$.aclDeniedByReason.bad_body", vtUint, "", "security", "0", simpleChange),
		withDesc(t.dep(broker, "RocketMQ broker: ACL admin requests allowed", "rocketmq.broker.acl.admin_allowed", "$.aclAllowedAdmin", vtUint, "", "security", "", simpleChange),
			"Admin requests (topic, group, offset changes ...) granted to an admin account since the last check."),
		withTriggers(t.dep(broker, "RocketMQ broker: ACL reload failures", aclReload, "$.aclReloadFailures", vtUint, "", "security", "", simpleChange), aclReloadFailed),
		withTriggers(withDesc(t.dep(broker, "RocketMQ broker: flow-control rejections", flowRej, "$.flowRejected", vtUint, "", "performance", "", simpleChange),
			"Sends answered SYSTEM_BUSY by the send admission or a topic quota since the last check; quota refusals are itemised per topic (quota rejections)."), flowRejecting),
		t.dep(broker, "RocketMQ broker: flow-control rejections, REJECTREQUEST", flowRej+"[REJECTREQUEST]", "$.flowRejectedByTag.REJECTREQUEST", vtUint, "", "performance", "0", simpleChange),
		t.dep(broker, "RocketMQ broker: flow-control rejections, OVERLOAD", flowRej+"[OVERLOAD]", "$.flowRejectedByTag.OVERLOAD", vtUint, "", "performance", "0", simpleChange),
		t.dep(broker, "RocketMQ broker: flow-control rejections, TIMEOUT_CLEAN_QUEUE", flowRej+"[TIMEOUT_CLEAN_QUEUE]", "$.flowRejectedByTag.TIMEOUT_CLEAN_QUEUE", vtUint, "", "performance", "0", simpleChange),
		t.dep(broker, "RocketMQ broker: flow-control rejections, PCBUSY_CLEAN_QUEUE", flowRej+"[PCBUSY_CLEAN_QUEUE]", "$.flowRejectedByTag.PCBUSY_CLEAN_QUEUE", vtUint, "", "performance", "0", simpleChange),
		withDesc(t.dep(broker, "RocketMQ broker: quota rejections", quotaRej, "$.quotaRejected", vtUint, "", "performance", "", simpleChange),
			"Sends refused by a topic's produce quota since the last check, every topic."),
		withDesc(t.dep(broker, "RocketMQ broker: account quota rejections", quotaAcct, "$.accountQuotaRejected", vtUint, "", "performance", "0", simpleChange),
			"Sends refused by an ACL account's produce quota since the last check ([ACCOUNT_QUOTA]), every account; 0 without ACL or account quotas. "+
				"The discovered accounts have their own items and trigger."),
		withDesc(t.dep(broker, "RocketMQ broker: account quota delays", "rocketmq.broker.quota.account.throttled", "$.accountQuotaThrottled", vtUint, "", "performance", "0", simpleChange),
			"Sends whose answer an ACL account's produce quota delayed (up to topicQuotaMaxDelayMills) since the last check, every account."),
		t.dep(broker, "RocketMQ broker: produced today", "rocketmq.broker.put.today", "$.putToday", vtUint, "msg", "business", ""),
		t.dep(broker, "RocketMQ broker: consumed today", "rocketmq.broker.get.today", "$.getToday", vtUint, "msg", "business", ""),
		t.dep(broker, "RocketMQ broker: dispatch behind", "rocketmq.broker.dispatch.behind", "$.dispatchBehindBytes", vtUint, "B", "performance", ""),
		t.dep(broker, "RocketMQ broker: unflushed bytes", "rocketmq.broker.flush.behind", "$.flushBehindBytes", vtUint, "B", "performance", ""),
		t.dep(broker, "RocketMQ broker: slaves", "rocketmq.broker.ha.slaves", "$.slaves", vtUint, "", "replication", ""),
		withTriggers(t.dep(broker, "RocketMQ broker: slave lag", "rocketmq.broker.ha.lag", "$.slaveLagBytes", vtUint, "B", "replication", ""),
			t.trigger("RocketMQ broker: slave falls behind", t.fn("min", "rocketmq.broker.ha.lag", "5m")+">{$RMQ.HA.LAG.MAX.WARN}", "WARNING", "availability", "")),
		withMap(withDesc(t.dep(broker, "RocketMQ broker: gRPC service", grpcEnabled, "$.grpcEnabled", vtUint, "", "grpc", "0", discardHeartbeat("1h")),
			"On when the broker serves RocketMQ 5's gRPC protocol (enableProxy)."), "Enabled"),
		withTriggers(withMap(withDesc(t.dep(broker, "RocketMQ broker: gRPC port state", grpcUp, "$.grpcUp", vtUint, "", "grpc", "0"),
			"Whether the gRPC port the broker publishes accepts a connection from this host."), "Service state"), grpcDown),
		t.dep(broker, "RocketMQ broker: gRPC clients", "rocketmq.broker.grpc.clients", "$.grpcClients", vtUint, "", "grpc", "0"),
		t.dep(broker, "RocketMQ broker: gRPC producers", "rocketmq.broker.grpc.producers", "$.grpcProducers", vtUint, "", "grpc", "0"),
		t.dep(broker, "RocketMQ broker: gRPC consumers", "rocketmq.broker.grpc.consumers", "$.grpcConsumers", vtUint, "", "grpc", "0"),
		withDesc(t.dep(broker, "RocketMQ broker: gRPC telemetry streams", "rocketmq.broker.grpc.streams", "$.grpcStreams", vtUint, "", "grpc", "0"),
			"Open Telemetry streams: every live 5.x client keeps one (Settings, transaction checks)."),
		withDesc(t.dep(broker, "RocketMQ broker: POP messages in flight", "rocketmq.broker.pop.inflight", "$.popInflight", vtUint, "msg", "grpc", "0"),
			"Messages 5.x consumers received from this broker and have not acknowledged yet, over every group."),
		withDesc(t.dep(broker, "RocketMQ broker: connections refused", "rocketmq.broker.conn.refused", "$.connRefused", vtUint, "", "performance", "0", simpleChange),
			"Connections closed at accept per minute by maxConnections, maxConnectionsPerAddress or connectionFdReserve (mqops)."),
		withDesc(t.dep(broker, "RocketMQ broker: connections stalled", "rocketmq.broker.conn.stalled", "$.connStalled", vtUint, "", "performance", "0"),
			"Connections not read now because their peer leaves more than outputHighWaterMark of answers unread (mqops)."),
		withDesc(t.dep(broker, "RocketMQ broker: connection stalls", "rocketmq.broker.conn.stalls", "$.connStalledTotal", vtUint, "", "performance", "0", simpleChange),
			"Times per minute a connection passed its output high-water mark (mqops)."),
		withDesc(t.dep(broker, "RocketMQ broker: POP leases expired", "rocketmq.broker.pop.expired", "$.popExpired", vtUint, "msg", "grpc", "0", simpleChange),
			"Deliveries not acknowledged within their invisible duration since the last check, over every group (delivered again)."),

		t.master("RocketMQ broker: get log counts", logs, "1m", "mqops-zbx logs: running counts of broker.log, store.log and storeerror.log records."),
		withTriggers(t.dep(logs, "RocketMQ broker: registration failures", "rocketmq.broker.log.register_failed", "$.registerFailed", vtUint, "", "logs", "", simpleChange),
			t.trigger("RocketMQ broker: registration with a name server failing", t.fn("min", "rocketmq.broker.log.register_failed", "3m")+">0", "HIGH", "availability",
				"REGISTER_FAILED in broker.log every minute for 3 minutes: the broker is about to fall out of the routes.")),
		withTriggers(withDesc(t.dep(logs, "RocketMQ broker: disk-full events", "rocketmq.broker.log.disk_full", "$.diskFull", vtUint, "", "logs", "", simpleChange),
			"Sends refused for lack of disk: the first refusal, then one line per 10 s while sends keep being refused."), diskFullLogged),
		withTriggers(t.dep(logs, "RocketMQ broker: fsync failures", fsyncLog, "$.fsyncFailed", vtUint, "", "logs", "", simpleChange), fsyncLogged),
		withTriggers(t.dep(logs, "RocketMQ broker: damaged records found", "rocketmq.broker.log.corruption", "$.corruption", vtUint, "", "logs", "", simpleChange), corruptLogged),
		withTriggers(withDesc(t.dep(logs, "RocketMQ broker: segments with unread messages deleted", "rocketmq.broker.log.unread_deleted", "$.unreadDeleted", vtUint, "", "logs", "", simpleChange),
			"Commit-log segments deleted while they held messages no group had consumed (disk almost full)."), unreadDeleted),
		t.dep(logs, "RocketMQ broker: unread messages deleted", "rocketmq.broker.log.unread_messages_deleted", "$.unreadMessagesDeleted", vtUint, "msg", "logs", "", simpleChange),
		withTriggers(t.dep(logs, "RocketMQ broker: retention held back by unread messages", "rocketmq.broker.log.retention_blocked", "$.retentionBlocked", vtUint, "", "logs", "", simpleChange), retentionHeld),
		withTriggers(t.dep(logs, "RocketMQ broker: consume queue blocked events", "rocketmq.broker.log.cq_blocked", "$.cqBlocked", vtUint, "", "logs", "", simpleChange), cqBlocked),
		withTriggers(t.dep(logs, "RocketMQ broker: consume queue rebuilds", "rocketmq.broker.log.cq_rebuilt", "$.cqRebuilt", vtUint, "", "logs", "", simpleChange), cqRebuilt),
		withTriggers(t.dep(logs, "RocketMQ broker: flow control events", "rocketmq.broker.log.flow_control", "$.flowControl", vtUint, "", "logs", "", simpleChange),
			t.trigger("RocketMQ broker: flow control", t.fn("sum", "rocketmq.broker.log.flow_control", "5m")+">0", "WARNING", "performance", "Requests refused as busy.", flowRejecting)),
		withTriggers(t.dep(logs, "RocketMQ broker: store errors", "rocketmq.broker.log.store_errors", "$.storeErrors", vtUint, "", "logs", "", simpleChange),
			t.trigger("RocketMQ broker: store errors logged", t.fn("sum", "rocketmq.broker.log.store_errors", "10m")+">0", "WARNING", "availability",
				"WARN or ERROR records in storeerror.log (not shown while a more specific store problem is).",
				storeFailed, storeFull, corrupt, fsyncLogged, diskFullLogged, corruptLogged, unreadDeleted, retentionHeld, cqBlocked, cqRebuilt)),
		withTriggers(t.dep(logs, "RocketMQ broker: recovered panics", "rocketmq.broker.log.panics", "$.panics", vtUint, "", "logs", "", simpleChange),
			t.trigger("RocketMQ broker: a request handler crashed", t.fn("sum", "rocketmq.broker.log.panics", "10m")+">0", "AVERAGE", "availability", "PANIC in broker.log (the broker recovered).")),
		t.dep(logs, "RocketMQ broker: errors logged", "rocketmq.broker.log.errors", "$.errors", vtUint, "", "logs", "", simpleChange),
		t.dep(logs, "RocketMQ broker: warnings logged", "rocketmq.broker.log.warnings", "$.warnings", vtUint, "", "logs", "", simpleChange),

		t.master("RocketMQ broker: get stats.log figures", stats, "1m", "mqops-zbx stats: business figures from stats.log."),
		withTriggers(t.dep(stats, "RocketMQ broker: stats.log age", "rocketmq.broker.stats.age", "$.age", vtUint, "s", "business", ""),
			t.trigger("RocketMQ broker: statistics not updating", t.fn("min", "rocketmq.broker.stats.age", "5m")+">{$RMQ.STATS.AGE.MAX}", "WARNING", "notice",
				"No new minute line in stats.log: the broker is down or not writing its statistics.", notUp)),
		t.dep(stats, "RocketMQ broker: produced last minute", "rocketmq.broker.stats.put.minute", "$.put.minute", vtUint, "msg", "business", "0"),
		t.dep(stats, "RocketMQ broker: consumed last minute", "rocketmq.broker.stats.get.minute", "$.get.minute", vtUint, "msg", "business", "0"),
	}
	t.graph("RocketMQ broker: Put/Get TPS", "rocketmq.broker.put.tps", "rocketmq.broker.get.tps")
	t.graph("RocketMQ broker: Disk usage", "rocketmq.broker.disk.commitlog.pused", "rocketmq.broker.disk.cq.pused", `vfs.fs.size[{$RMQ.STORE.PATH},pused]`)
	t.graph("RocketMQ broker: Queue wait and page cache", "rocketmq.broker.sendq.wait", "rocketmq.broker.pagecache.lock")
	t.graph("RocketMQ broker: gRPC clients and POP leases", "rocketmq.broker.grpc.clients", "rocketmq.broker.grpc.streams",
		"rocketmq.broker.pop.inflight", "rocketmq.broker.pop.expired")
	t.graph("RocketMQ broker: ACL and flow-control refusals", aclDenied, flowRej, quotaRej, quotaAcct)
	t.graph("RocketMQ broker: Store events", "rocketmq.broker.log.disk_full", fsyncLog, "rocketmq.broker.log.corruption",
		"rocketmq.broker.log.unread_deleted", "rocketmq.broker.log.retention_blocked", "rocketmq.broker.log.cq_blocked", "rocketmq.broker.log.cq_rebuilt")

	topics := t.discovery("Topics on this broker", `rocketmq.topic.discovery["{$RMQ.BROKER.ADDR}"]`,
		"Topics this broker holds; figures come from its stats.log.", topicFilter())
	topicItem := func(name, key, field, units string) Item { return t.topicDep(stats, name, key, field, vtUint, units) }
	minuteKey := "rocketmq.topic.put.minute[{#TOPIC}]"
	quotaItem := withDesc(t.dep(broker, "Topic {#TOPIC}: quota rejections", quotaTopic, "$.quotaRejectedByTopic['{#TOPIC}']", vtUint, "", "performance", "0", simpleChange),
		"Sends this topic's produce quota refused since the last check (0 without a quota).")
	quotaItem.Tags = append(quotaItem.Tags, Tag{"topic", "{#TOPIC}"})
	topics.ItemPrototypes = []Item{
		topicItem("produced today", "rocketmq.topic.put.today", "today", "msg"),
		topicItem("produced last minute", "rocketmq.topic.put.minute", "minute", "msg"),
		topicItem("produced last 5 minutes", "rocketmq.topic.put.5m", "fiveMin", "msg"),
		topicItem("produced last hour", "rocketmq.topic.put.1h", "hour", "msg"),
		topicItem("produced yesterday", "rocketmq.topic.put.1d", "day", "msg"),
		topicItem("bytes in last minute", "rocketmq.topic.put.bytes", "minuteBytes", "B"),
		quotaItem,
	}
	topics.TriggerPrototypes = []Trigger{
		t.trigger("Topic {#TOPIC}: production stopped",
			t.fn("sum", minuteKey, "15m")+"=0 and "+t.fn("sum", minuteKey, "15m:now-1d")+`>{$RMQ.TOPIC.PUT.MIN:"{#TOPIC}"}`,
			"WARNING", "notice", "Nothing produced for 15 minutes where the same 15 minutes yesterday saw traffic."),
		t.trigger("Topic {#TOPIC}: production dropped vs. yesterday",
			t.fn("sum", minuteKey, "1h")+"<"+t.fn("sum", minuteKey, "1h:now-1d")+`*(100-{$RMQ.TOPIC.PUT.DROP.PCT:"{#TOPIC}"})/100`,
			"INFO", "notice", ""),
		t.trigger("Topic {#TOPIC}: produce quota refusing sends", t.fn("sum", quotaTopic, "5m")+`>{$RMQ.TOPIC.QUOTA.REJECTED.MAX:"{#TOPIC}"}`,
			"WARNING", "performance", "The topic's produce quota (attributes produce.tps / produce.bps) refused sends in the last 5 minutes: producers get SYSTEM_BUSY "+
				"([TOPIC_QUOTA] in flowcontrol.log). Raise the quota or find the producer sending more than agreed."),
	}
	topics.GraphPrototypes = []Graph{t.graphPrototype("Topic {#TOPIC}: produce increments", minuteKey, "rocketmq.topic.put.5m[{#TOPIC}]")}

	pairs := t.discovery("Consumer groups on this broker", `rocketmq.pair.discovery["{$RMQ.BROKER.ADDR}"]`,
		"One row per group and topic it consumes on this broker.", pairFilter())
	pairItem := func(name, key, field string) Item { return t.pairDep(stats, name, key, field) }
	pairs.ItemPrototypes = []Item{
		pairItem("consumed today", "rocketmq.group.get.today", "today"),
		pairItem("consumed last minute", "rocketmq.group.get.minute", "minute"),
		pairItem("sent back today", "rocketmq.group.sendback.today", "sendBackToday"),
		pairItem("sent back last minute", "rocketmq.group.sendback.minute", "sendBackMinute"),
	}
	accounts := t.discovery("ACL accounts with a produce quota", `rocketmq.account.discovery["{$RMQ.BROKER.ADDR}"]`,
		"The accounts of plain_acl.yml with produceTps or produceBps, as this broker reports them (none without aclEnable).",
		filter(matches("{#ACCESSKEY}", "{$RMQ.LLD.ACCOUNT.MATCHES}"), notMatches("{#ACCESSKEY}", "{$RMQ.LLD.ACCOUNT.NOT_MATCHES}")))
	const (
		acctRej   = "rocketmq.account.quota.rejected[{#ACCESSKEY}]"
		acctThr   = "rocketmq.account.quota.throttled[{#ACCESSKEY}]"
		acctDelay = "rocketmq.account.quota.delay[{#ACCESSKEY}]"
	)
	acctItem := func(name, key, path, units, desc string) Item {
		it := withDesc(t.dep(broker, "Account {#ACCESSKEY}: "+name, key, path+"['{#ACCESSKEY}']", vtUint, units, "performance", "0", simpleChange), desc)
		it.Tags = append(it.Tags, Tag{"account", "{#ACCESSKEY}"})
		return it
	}
	accounts.ItemPrototypes = []Item{
		acctItem("quota rejections", acctRej, "$.accountQuotaRejectedByAccount", "",
			"Sends this account's produce quota refused since the last check ([ACCOUNT_QUOTA]accessKey {#ACCESSKEY}), on every protocol (remoting, gRPC, HTTP)."),
		acctItem("quota delays", acctThr, "$.accountQuotaThrottledByAccount", "",
			"Sends whose answer this account's produce quota delayed (up to topicQuotaMaxDelayMills) since the last check."),
		acctItem("quota delay time", acctDelay, "$.accountQuotaDelayMsByAccount", "ms",
			"Milliseconds of delay this account's produce quota added to its sends since the last check, summed."),
	}
	accounts.TriggerPrototypes = []Trigger{
		t.trigger("Account {#ACCESSKEY}: produce quota refusing sends", t.fn("sum", acctRej, "5m")+`>{$RMQ.ACCOUNT.QUOTA.REJECTED.MAX:"{#ACCESSKEY}"}`,
			"WARNING", "performance", "The ACL account's produce quota (produceTps / produceBps in plain_acl.yml) refused sends in the last 5 minutes: its producers get "+
				"SYSTEM_BUSY [ACCOUNT_QUOTA]accessKey {#ACCESSKEY} exceeds produce quota (gRPC: TOO_MANY_REQUESTS, HTTP: 429). Raise its quota or find the "+
				"producer sending more than agreed."),
	}
	accounts.GraphPrototypes = []Graph{t.graphPrototype("Account {#ACCESSKEY}: produce quota", acctRej, acctThr)}
	t.DiscoveryRules = []Discovery{topics, pairs, accounts}
	t.Dashboards = []Dashboard{{
		UUID: uuid(t.Name, "dashboard", "RocketMQ broker"), Name: "RocketMQ broker",
		Pages: []Page{
			{Name: "Service", Widgets: []Widget{
				itemWidget(0, 0, 6, 3, "Permission", t.Name, "rocketmq.broker.permission"),
				itemWidget(6, 0, 6, 3, "Registered in name servers", t.Name, "rocketmq.broker.registered"),
				itemWidget(12, 0, 6, 3, "Commit log disk", t.Name, "rocketmq.broker.disk.commitlog.pused"),
				itemWidget(18, 0, 6, 3, "Uptime", t.Name, "rocketmq.broker.uptime"),
				itemWidget(0, 3, 6, 3, "Store state", t.Name, state),
				itemWidget(6, 3, 6, 3, "Damaged commit-log ranges", t.Name, ranges),
				itemWidget(12, 3, 6, 3, "Reads skipped on damaged records", t.Name, skipped),
				itemWidget(18, 3, 6, 3, "Store error", t.Name, "rocketmq.broker.store.error"),
				graphWidget(0, 6, 12, 5, t.Name, "RocketMQ broker: Put/Get TPS"),
				graphWidget(12, 6, 12, 5, t.Name, "RocketMQ broker: Disk usage"),
				graphWidget(0, 11, 12, 5, t.Name, "RocketMQ broker: Queue wait and page cache"),
				graphWidget(12, 11, 12, 5, t.Name, "RocketMQ broker: Store events"),
				graphWidget(0, 16, 12, 5, t.Name, "RocketMQ broker: gRPC clients and POP leases"),
				graphWidget(12, 16, 12, 5, t.Name, "RocketMQ broker: ACL and flow-control refusals"),
			}},
			{Name: "Business", Widgets: []Widget{
				itemWidget(0, 0, 12, 3, "Produced today", t.Name, "rocketmq.broker.put.today"),
				itemWidget(12, 0, 12, 3, "Consumed today", t.Name, "rocketmq.broker.get.today"),
				graphPrototypeWidget(0, 3, 24, 5, t.Name, "Topic {#TOPIC}: produce increments", 3),
			}},
		},
	}}
	return t
}
