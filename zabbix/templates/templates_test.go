package templates

import (
	"bytes"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/mqops/mqops/broker/acl"
	"github.com/mqops/mqops/broker/flow"
	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/zabbix/logcount"
	"github.com/mqops/mqops/zabbix/probe"
)

var update = flag.Bool("update", false, "rewrite the committed template files")

// marshal renders an export as the committed file holds it.
func marshal(t *testing.T, e Export) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(e); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestCommittedFilesCurrent fails when a template file differs from what
// this package builds: edit the Go code, then run with -update.
func TestCommittedFilesCurrent(t *testing.T) {
	for name, e := range Files() {
		want := marshal(t, e)
		if *update {
			if err := os.WriteFile(name, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("%v (run go test ./zabbix/templates -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go test ./zabbix/templates -update", name)
		}
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$`)

// TestConsistency checks what Zabbix would refuse at import or leave
// broken: duplicate UUIDs or keys, dependent items without their master,
// trigger expressions and graphs naming keys the template lacks, and
// dependencies on triggers that do not exist.
func TestConsistency(t *testing.T) {
	seen := map[string]string{}
	for file, e := range Files() {
		for _, tp := range e.ZabbixExport.Templates {
			keys := map[string]bool{}
			protoKeys := map[string]bool{}
			triggers := map[string]bool{}
			addUUID := func(id, what string) {
				if !uuidRE.MatchString(id) {
					t.Errorf("%s: %s has uuid %q, not a UUIDv4", file, what, id)
				}
				if prev, dup := seen[id]; dup {
					t.Errorf("%s: %s and %s share uuid %s", file, what, prev, id)
				}
				seen[id] = what
			}
			addUUID(tp.UUID, tp.Name)
			var allTriggers []Trigger
			for _, it := range tp.Items {
				if keys[it.Key] {
					t.Errorf("%s: duplicate key %s", file, it.Key)
				}
				keys[it.Key] = true
				addUUID(it.UUID, it.Key)
				allTriggers = append(allTriggers, it.Triggers...)
			}
			for _, d := range tp.DiscoveryRules {
				addUUID(d.UUID, d.Key)
				for _, it := range d.ItemPrototypes {
					if protoKeys[it.Key] || keys[it.Key] {
						t.Errorf("%s: duplicate key %s", file, it.Key)
					}
					protoKeys[it.Key] = true
					addUUID(it.UUID, it.Key)
				}
				allTriggers = append(allTriggers, d.TriggerPrototypes...)
				for _, g := range d.GraphPrototypes {
					addUUID(g.UUID, g.Name)
					for _, gi := range g.GraphItems {
						if !protoKeys[gi.Item.Key] {
							t.Errorf("%s: graph prototype %s names unknown %s", file, g.Name, gi.Item.Key)
						}
					}
				}
			}
			for _, it := range append(append([]Item{}, tp.Items...), protos(tp)...) {
				if it.MasterItem != nil && !keys[it.MasterItem.Key] {
					t.Errorf("%s: %s depends on missing master %s", file, it.Key, it.MasterItem.Key)
				}
			}
			ref := regexp.MustCompile(`/` + regexp.QuoteMeta(tp.Name) + `/((?:[^,()\[]|\[[^\]]*\])+)`)
			for _, tr := range allTriggers {
				addUUID(tr.UUID, tr.Name)
				triggers[tr.Name+"\x00"+tr.Expression] = true
				for _, m := range ref.FindAllStringSubmatch(tr.Expression, -1) {
					if !keys[m[1]] && !protoKeys[m[1]] {
						t.Errorf("%s: trigger %q names unknown key %s", file, tr.Name, m[1])
					}
				}
				if strings.Count(tr.Expression, "(") != strings.Count(tr.Expression, ")") {
					t.Errorf("%s: trigger %q: unbalanced parentheses", file, tr.Name)
				}
			}
			for _, tr := range allTriggers {
				for _, d := range tr.Dependencies {
					if !triggers[d.Name+"\x00"+d.Expression] {
						t.Errorf("%s: trigger %q depends on unknown %q", file, tr.Name, d.Name)
					}
				}
			}
		}
		for _, g := range e.ZabbixExport.Graphs {
			if !uuidRE.MatchString(g.UUID) {
				t.Errorf("%s: graph %s has uuid %q, not a UUIDv4", file, g.Name, g.UUID)
			}
		}
	}
	if _, err := os.Stat(filepath.Join("..", "agent", "userparameter_mqops.conf")); err != nil {
		t.Fatal(err)
	}
}

func protos(tp Template) []Item {
	var out []Item
	for _, d := range tp.DiscoveryRules {
		out = append(out, d.ItemPrototypes...)
	}
	return out
}

// TestAgentKeys checks that every agent item key of the templates is
// served by the user parameters or is a built-in agent key.
func TestAgentKeys(t *testing.T) {
	conf, err := os.ReadFile(filepath.Join("..", "agent", "userparameter_mqops.conf"))
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{"proc.num": true, "net.tcp.service": true, "vfs.fs.size": true}
	for _, m := range regexp.MustCompile(`(?m)^UserParameter=([^\[,]+)`).FindAllStringSubmatch(string(conf), -1) {
		served[m[1]] = true
	}
	for file, e := range Files() {
		for _, tp := range e.ZabbixExport.Templates {
			check := func(key, typ string) {
				if typ != "" {
					return
				}
				if name, _, _ := strings.Cut(key, "["); !served[name] {
					t.Errorf("%s: agent key %s is not in userparameter_mqops.conf", file, key)
				}
			}
			for _, it := range tp.Items {
				check(it.Key, it.Type)
			}
			for _, d := range tp.DiscoveryRules {
				check(d.Key, "")
			}
		}
	}
}

// jsonFields lists the JSON names of v's fields.
func jsonFields(v any) map[string]bool {
	out := map[string]bool{}
	rt := reflect.TypeOf(v)
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		out[name] = true
	}
	return out
}

// TestDependentPaths checks that every dependent item of the broker and
// log masters reads a field the helper prints ($.field of
// probe.BrokerStatus, logcount.Counts, or a field below one): a misspelt
// path leaves an item unsupported, and its triggers silent.
func TestDependentPaths(t *testing.T) {
	fields := map[string]map[string]bool{
		"rocketmq.broker.get":       jsonFields(probe.BrokerStatus{}),
		"rocketmq.logs.get":         jsonFields(logcount.Counts{}),
		"rocketmq.namesrv.logs.get": jsonFields(logcount.Counts{}),
		"rocketmq.controller.get":   jsonFields(probe.ControllerNode{}),
		"mqops.amqp.get":            jsonFields(probe.AMQPStatus{}),
		"mqops.amqpgw.get":          jsonFields(probe.AMQPGatewayStatus{}),
	}
	// AMQPGatewayStatus prints wire.AMQPGatewayStats's fields inline.
	maps.Copy(fields["mqops.amqpgw.get"], jsonFields(wire.AMQPGatewayStats{}))
	top := regexp.MustCompile(`^\$\.([A-Za-z]+)(\.|\[|$)`)
	checked := 0
	for file, e := range Files() {
		for _, tp := range e.ZabbixExport.Templates {
			for _, it := range append(append([]Item{}, tp.Items...), protos(tp)...) {
				if it.MasterItem == nil {
					continue
				}
				master, _, _ := strings.Cut(it.MasterItem.Key, "[")
				known := fields[master]
				if known == nil {
					continue
				}
				m := top.FindStringSubmatch(it.Preprocessing[0].Parameters[0])
				if m == nil {
					t.Errorf("%s: %s reads %q, not a field", file, it.Key, it.Preprocessing[0].Parameters[0])
					continue
				}
				if !known[m[1]] {
					t.Errorf("%s: %s reads $.%s, which mqops-zbx does not print", file, it.Key, m[1])
				}
				checked++
			}
		}
	}
	if checked < 40 {
		t.Errorf("only %d dependent items checked", checked)
	}
}

// findTrigger returns the broker template's trigger named name.
func findTrigger(t *testing.T, name string) Trigger {
	t.Helper()
	for _, it := range brokerTemplate().Items {
		for _, tr := range it.Triggers {
			if tr.Name == name {
				return tr
			}
		}
	}
	t.Fatalf("no trigger %q", name)
	return Trigger{}
}

// TestStoreStateAlerts checks the store-state item against the helper's
// codes: its value map says what each code means, a failed store is a
// disaster that says to restart, a full disk is high, and the generic
// "store errors logged" stays quiet while a specific store problem shows.
func TestStoreStateAlerts(t *testing.T) {
	b := brokerTemplate()
	var vm *ValueMap
	for i := range b.ValueMaps {
		if b.ValueMaps[i].Name == "Store state" {
			vm = &b.ValueMaps[i]
		}
	}
	if vm == nil {
		t.Fatal("no value map Store state")
	}
	want := map[int]string{probe.StoreOK: "OK", probe.StoreDiskFull: "Disk full", probe.StoreFailed: "Failed",
		probe.StoreClosed: "Closed", probe.StoreUnknown: "Unknown"}
	if len(vm.Mappings) != len(want) {
		t.Errorf("Store state maps %d values, want %d", len(vm.Mappings), len(want))
	}
	for _, m := range vm.Mappings {
		if n, err := strconv.Atoi(m.Value); err != nil || want[n] != m.NewValue {
			t.Errorf("Store state maps %s to %q, mqops-zbx means %q", m.Value, m.NewValue, want[n])
		}
	}
	state := "last(/" + Broker + "/rocketmq.broker.store.state)="
	failed := findTrigger(t, "RocketMQ broker: store failed, every send refused until restart")
	if failed.Expression != state+strconv.Itoa(probe.StoreFailed) || failed.Priority != "DISASTER" ||
		!strings.Contains(failed.Description, "restart the broker") {
		t.Errorf("store failed: %+v", failed)
	}
	full := findTrigger(t, "RocketMQ broker: disk full, sends refused")
	if full.Expression != state+strconv.Itoa(probe.StoreDiskFull) || full.Priority != "HIGH" {
		t.Errorf("disk full: %+v", full)
	}
	generic := findTrigger(t, "RocketMQ broker: store errors logged")
	deps := map[string]bool{}
	for _, d := range generic.Dependencies {
		deps[d.Name] = true
	}
	for _, name := range []string{failed.Name, full.Name, "RocketMQ broker: damaged commit-log records",
		"RocketMQ broker: unread messages deleted to free disk", "RocketMQ broker: consume queue blocked",
		"RocketMQ broker: consume queue rebuilt from the commit log"} {
		if !deps[name] {
			t.Errorf("store errors logged does not depend on %q", name)
		}
	}
}

// TestStoreEventTriggers checks the triggers on the store's log events:
// each fires on its item's per-minute increments with the severity the
// event deserves.
func TestStoreEventTriggers(t *testing.T) {
	for key, want := range map[string]struct{ name, priority string }{
		"rocketmq.broker.log.disk_full":         {"RocketMQ broker: store refused writes, disk full", "HIGH"},
		"rocketmq.broker.log.fsync_failed":      {"RocketMQ broker: fsync failed", "HIGH"},
		"rocketmq.broker.log.corruption":        {"RocketMQ broker: damaged commit-log records logged", "HIGH"},
		"rocketmq.broker.log.unread_deleted":    {"RocketMQ broker: unread messages deleted to free disk", "HIGH"},
		"rocketmq.broker.log.cq_blocked":        {"RocketMQ broker: consume queue blocked", "HIGH"},
		"rocketmq.broker.log.cq_rebuilt":        {"RocketMQ broker: consume queue rebuilt from the commit log", "WARNING"},
		"rocketmq.broker.log.retention_blocked": {"RocketMQ broker: disk under pressure, oldest segment holds unread messages", "WARNING"},
	} {
		tr := findTrigger(t, want.name)
		if !strings.HasPrefix(tr.Expression, "sum(/"+Broker+"/"+key+",") || !strings.HasSuffix(tr.Expression, ")>0") ||
			tr.Priority != want.priority || tr.Description == "" {
			t.Errorf("%s: %+v", key, tr)
		}
	}
	for _, it := range brokerTemplate().Items {
		if strings.HasPrefix(it.Key, "rocketmq.broker.log.") && (len(it.Preprocessing) != 2 || it.Preprocessing[1].Type != "SIMPLE_CHANGE") {
			t.Errorf("%s is not turned into increments: %+v", it.Key, it.Preprocessing)
		}
	}
}

// TestReplicationPaths checks that every item reading mqops-zbx
// replication reads a field it prints, at the level that field lives on.
func TestReplicationPaths(t *testing.T) {
	levels := []struct {
		re     *regexp.Regexp
		fields map[string]bool
	}{
		{regexp.MustCompile(`^\$\.controller\.([A-Za-z]+)$`), jsonFields(probe.ControllerStatus{})},
		{regexp.MustCompile(`^\$\.sets\['\{#BROKER\}'\]\.([A-Za-z]+)$`), jsonFields(probe.ReplicaSet{})},
		{regexp.MustCompile(`^\$\.replicas\['\{#BROKER\}/\{#BROKER\.ID\}'\]\.([A-Za-z]+)$`), jsonFields(probe.Replica{})},
	}
	checked := 0
	c := clusterTemplate()
	for _, it := range append(append([]Item{}, c.Items...), protos(c.Template)...) {
		if it.MasterItem == nil || !strings.HasPrefix(it.MasterItem.Key, "rocketmq.replication.get[") {
			continue
		}
		path := it.Preprocessing[0].Parameters[0]
		ok := false
		for _, l := range levels {
			if m := l.re.FindStringSubmatch(path); m != nil && l.fields[m[1]] {
				ok = true
			}
		}
		if !ok {
			t.Errorf("%s reads %s, which mqops-zbx replication does not print", it.Key, path)
		}
		if it.Preprocessing[0].ErrorHandler != "CUSTOM_ERROR" || it.Preprocessing[0].ErrorHandlerParams == "" {
			t.Errorf("%s: a missing value gives no error saying why", it.Key)
		}
		checked++
	}
	if checked < 15 {
		t.Errorf("only %d replication items checked", checked)
	}
}

// TestRefusalItems checks the ACL and flow-control items against what the
// broker counts: one item per ACL reason broker/acl reports and per
// flow-control tag broker/flow has, each turned into increments, and the
// triggers on them fire on the 5-minute sum above their macros.
func TestRefusalItems(t *testing.T) {
	want := map[string]bool{}
	for k := range (&acl.Counters{}).Snapshot() {
		if r, ok := strings.CutPrefix(k, "acl_denied_total."); ok {
			want["rocketmq.broker.acl.denied["+r+"]"] = true
		}
	}
	// Quota refusals get per-topic items (quotaRejectedTotal_<topic>)
	// and an account-quota item rather than tag items.
	want["rocketmq.broker.quota.account.rejected"] = true
	for tag := flow.Tag(0); tag < flow.NumTags; tag++ {
		if tag != flow.TopicQuota && tag != flow.AccountQuota {
			want["rocketmq.broker.flow.rejected["+tag.String()+"]"] = true
		}
	}
	if len(want) < 11 {
		t.Fatalf("only %d reasons and tags: %v", len(want), want)
	}
	b := brokerTemplate()
	for _, it := range b.Items {
		if !strings.HasPrefix(it.Key, "rocketmq.broker.acl.") && !strings.HasPrefix(it.Key, "rocketmq.broker.flow.") &&
			!strings.HasPrefix(it.Key, "rocketmq.broker.quota.") {
			continue
		}
		if len(it.Preprocessing) != 2 || it.Preprocessing[1].Type != "SIMPLE_CHANGE" {
			t.Errorf("%s is not turned into increments: %+v", it.Key, it.Preprocessing)
		}
		delete(want, it.Key)
	}
	if len(want) > 0 {
		t.Errorf("no item for %v", want)
	}
	for name, expr := range map[string]string{
		"RocketMQ broker: burst of ACL denials":                             "sum(/" + Broker + "/rocketmq.broker.acl.denied,5m)>{$RMQ.ACL.DENIED.MAX}",
		"RocketMQ broker: flow control refusing sends":                      "sum(/" + Broker + "/rocketmq.broker.flow.rejected,5m)>{$RMQ.FLOW.REJECTED.MAX}",
		"RocketMQ broker: ACL rules reload failed, previous rules in force": "sum(/" + Broker + "/rocketmq.broker.acl.reload_failed,1h)>0",
	} {
		if tr := findTrigger(t, name); tr.Expression != expr {
			t.Errorf("%s: %s, want %s", name, tr.Expression, expr)
		}
	}
	var quota, account bool
	for _, d := range b.DiscoveryRules {
		for _, tr := range d.TriggerPrototypes {
			quota = quota || tr.Expression == "sum(/"+Broker+`/rocketmq.topic.quota.rejected[{#TOPIC}],5m)>{$RMQ.TOPIC.QUOTA.REJECTED.MAX:"{#TOPIC}"}`
			account = account || tr.Expression == "sum(/"+Broker+`/rocketmq.account.quota.rejected[{#ACCESSKEY}],5m)>{$RMQ.ACCOUNT.QUOTA.REJECTED.MAX:"{#ACCESSKEY}"}`
		}
	}
	if !quota {
		t.Error("no per-topic quota trigger prototype")
	}
	if !account {
		t.Error("no per-account quota trigger prototype")
	}
}

// TestAccountDiscovery: the per-account discovery runs the accounts
// discovery of userparameter_mqops.conf, and its item prototypes read the
// by-account maps mqops-zbx broker prints, keyed by {#ACCESSKEY}, as
// increments.
func TestAccountDiscovery(t *testing.T) {
	conf, err := os.ReadFile(filepath.Join("..", "agent", "userparameter_mqops.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), "UserParameter=rocketmq.account.discovery[*],/opt/mqops/bin/mqops-zbx discovery accounts --broker \"$1\"\n") {
		t.Error("userparameter_mqops.conf has no rocketmq.account.discovery running mqops-zbx discovery accounts")
	}
	fields := jsonFields(probe.BrokerStatus{})
	var d *Discovery
	b := brokerTemplate()
	for i := range b.DiscoveryRules {
		if strings.HasPrefix(b.DiscoveryRules[i].Key, "rocketmq.account.discovery[") {
			d = &b.DiscoveryRules[i]
		}
	}
	if d == nil {
		t.Fatal("no account discovery rule")
	}
	path := regexp.MustCompile(`^\$\.([A-Za-z]+)\['\{#ACCESSKEY\}'\]$`)
	for _, it := range d.ItemPrototypes {
		m := path.FindStringSubmatch(it.Preprocessing[0].Parameters[0])
		if m == nil || !fields[m[1]] || !strings.HasSuffix(m[1], "ByAccount") {
			t.Errorf("%s reads %s, not a by-account map of mqops-zbx broker", it.Key, it.Preprocessing[0].Parameters[0])
		}
		if len(it.Preprocessing) != 2 || it.Preprocessing[1].Type != "SIMPLE_CHANGE" || !strings.HasSuffix(it.Key, "[{#ACCESSKEY}]") {
			t.Errorf("%s: %+v", it.Key, it.Preprocessing)
		}
	}
	if len(d.ItemPrototypes) != 3 {
		t.Errorf("%d account item prototypes, want rejections, delays and delay time", len(d.ItemPrototypes))
	}
}

// TestControllerACLItems: the controller template has an item per ACL
// reason a controller can give, each a reason broker/acl reports, turned
// into increments, and the burst trigger sums the denials.
func TestControllerACLItems(t *testing.T) {
	known := (&acl.Counters{}).Snapshot()
	c := controllerTemplate()
	items := map[string]Item{}
	for _, it := range c.Items {
		items[it.Key] = it
	}
	for _, r := range ControllerACLReasons {
		if _, ok := known["acl_denied_total."+r]; !ok {
			t.Errorf("reason %s is not one broker/acl counts", r)
		}
		it, ok := items["rocketmq.controller.acl.denied["+r+"]"]
		if !ok || it.Preprocessing[0].Parameters[0] != "$.aclDeniedByReason."+r || len(it.Preprocessing) != 2 || it.Preprocessing[1].Type != "SIMPLE_CHANGE" {
			t.Errorf("item for %s: %+v", r, it)
		}
	}
	burst := items["rocketmq.controller.acl.denied"].Triggers
	if len(burst) != 1 || burst[0].Expression != "sum(/"+Controller+"/rocketmq.controller.acl.denied,5m)>{$RMQ.ACL.DENIED.MAX}" {
		t.Errorf("burst trigger: %+v", burst)
	}
}

// TestAMQPPaths checks that every per-queue item of the AMQP template
// reads a field mqops-zbx amqp prints for a queue, and that the counters
// become rates.
func TestAMQPPaths(t *testing.T) {
	re := regexp.MustCompile(`^\$\.queues\['\{#VHOST\}'\]\['\{#QUEUE\}'\]\.([A-Za-z]+)$`)
	fields := jsonFields(probe.AMQPQueue{})
	a := amqpTemplate()
	checked := 0
	for _, it := range protos(a.Template) {
		m := re.FindStringSubmatch(it.Preprocessing[0].Parameters[0])
		if m == nil || !fields[m[1]] {
			t.Errorf("%s reads %s, which mqops-zbx amqp does not print", it.Key, it.Preprocessing[0].Parameters[0])
			continue
		}
		counter := m[1] == "published" || m[1] == "delivered" || m[1] == "acked" || m[1] == "redelivered"
		if change := len(it.Preprocessing) == 2 && strings.Contains(it.Preprocessing[1].Type, "CHANGE"); change != counter {
			t.Errorf("%s: counter %v, turned into a rate or increments %v", it.Key, counter, change)
		}
		checked++
	}
	if checked != 9 {
		t.Errorf("%d AMQP queue items checked, want 9", checked)
	}
}

// TestAMQPGatewayItems: every figure of the gateway's stats is read by
// an item, the counters as rates or changes (a raw counter is useless on
// a graph), the gauges as they are.
func TestAMQPGatewayItems(t *testing.T) {
	g := amqpGatewayTemplate()
	read := map[string]bool{}
	for _, it := range g.Items {
		if it.MasterItem == nil {
			continue
		}
		field := strings.TrimPrefix(it.Preprocessing[0].Parameters[0], "$.")
		read[field] = true
		rt := reflect.TypeOf(wire.AMQPGatewayStats{})
		counter := false
		for i := range rt.NumField() {
			if name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ","); name == field {
				counter = rt.Field(i).Type.Kind() == reflect.Uint64
			}
		}
		change := len(it.Preprocessing) == 2 && strings.Contains(it.Preprocessing[1].Type, "CHANGE")
		if change != counter {
			t.Errorf("%s reads %s: counter %v, turned into a rate or change %v", it.Key, field, counter, change)
		}
	}
	for f := range jsonFields(wire.AMQPGatewayStats{}) {
		if f != "gateway" && !read[f] {
			t.Errorf("no item reads $.%s of the gateway's stats", f)
		}
	}
}
