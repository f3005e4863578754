package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/zabbix/templates"
)

// zabbixAPI is a JSON-RPC client for the Zabbix 6.0 API.
type zabbixAPI struct {
	url  string
	auth string
	id   int
}

func (z *zabbixAPI) call(t *testing.T, method string, params any, out any) {
	t.Helper()
	if err := z.try(method, params, out); err != nil {
		t.Fatal(err)
	}
}

func (z *zabbixAPI) try(method string, params any, out any) error {
	z.id++
	req := map[string]any{"jsonrpc": "2.0", "method": method, "params": params, "id": z.id}
	if z.auth != "" {
		req["auth"] = z.auth
	}
	body, _ := json.Marshal(req)
	// Bounded, so a stuck frontend fails the test instead of hanging it.
	hc := http.Client{Timeout: 2 * time.Minute}
	resp, err := hc.Post(z.url, "application/json-rpc", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	var r struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Message, Data string
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("%s: decode: %w", method, err)
	}
	if r.Error != nil {
		return fmt.Errorf("%s: %s %s", method, r.Error.Message, r.Error.Data)
	}
	if out != nil {
		return json.Unmarshal(r.Result, out)
	}
	return nil
}

// startZabbixServer runs tests/zabbix-server/stack.sh (PostgreSQL, Zabbix
// server, php-fpm and nginx serving the frontend) in a temp dir.
func startZabbixServer(t *testing.T) (api *zabbixAPI, user, password string) {
	t.Helper()
	dir := t.TempDir()
	stack := "../tests/zabbix-server/stack.sh"
	out, err := exec.Command(stack, "start", dir).Output()
	t.Cleanup(func() {
		if b, err := exec.Command(stack, "stop", dir).CombinedOutput(); err != nil {
			t.Logf("stop the Zabbix stack: %v\n%s", err, b)
		}
	})
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("start the Zabbix stack: %v\n%s", err, stderr)
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	if env["ZBX_API_URL"] == "" {
		t.Fatalf("stack.sh printed no ZBX_API_URL:\n%s", out)
	}
	return &zabbixAPI{url: env["ZBX_API_URL"]}, env["ZBX_USER"], env["ZBX_PASSWORD"]
}

// TestZabbixServer imports the templates into a real Zabbix 6.0 server,
// links them to hosts polled through a real zabbix_agentd, and checks that
// items get the values the cluster really has and that discovery creates
// per-topic and per-group items. It needs the server packages
// (make test-zabbix-server installs them and sets MQOPS_ZABBIX_SERVER=1).
func TestZabbixServer(t *testing.T) {
	if os.Getenv("MQOPS_ZABBIX_SERVER") != "1" {
		t.Skip("set MQOPS_ZABBIX_SERVER=1 (make test-zabbix-server)")
	}
	api, user, password := startZabbixServer(t)
	c := startCluster(t, "enableProxy=true")
	ns, broker := c.ns.addr, c.broker.addr
	createTopic(t, c, "ZbxServerOrders", 2)
	col := newCollector()
	newPushConsumer(t, ns, "ZbxServerGroup", "ZbxServerOrders", consumer.MessageSelector{}, col,
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	sendN(t, newProducer(t, ns), "ZbxServerOrders", "order", 42)
	waitFor(t, 60*time.Second, "the group to consume", func() bool { return col.count() == 42 })
	// A RocketMQ 5 consumer holding 5 leases.
	createTopic(t, c, "ZbxServerPop", 2)
	sendN(t, newProducer(t, ns), "ZbxServerPop", "pop", 5)
	adm, err := admin.New(ns, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	rt, err := adm.RuntimeInfo(broker)
	if err != nil {
		t.Fatal(err)
	}
	newPopClient(t, rt["grpcAddr"], "zbx-server-pop", "ZbxServerPopGroup", "ZbxServerPop").receiveN(t, 5, 10*time.Minute)
	_, ctrls := startOneController(t)
	agent := startAgent(t, agentBinary(t, "zabbix_agentd"))
	_, agentPort, _ := strings.Cut(agent.addr, ":")

	api.call(t, "user.login", map[string]string{"username": user, "password": password}, &api.auth)
	// The templates go in through the zabbix_agent role's import tasks,
	// twice: a re-import updates in place (stable UUIDs).
	for range 2 {
		imp := exec.Command("ansible-playbook", "../tests/zabbix-server/import.yml",
			"-e", "zabbix_agent_api_url="+api.url, "-e", "zabbix_agent_api_user="+user,
			"-e", "zabbix_agent_api_password="+password)
		imp.Env = append(os.Environ(), "ANSIBLE_CONFIG=../ansible.cfg")
		if out, err := imp.CombinedOutput(); err != nil {
			t.Fatalf("import through the role: %v\n%s", err, out)
		}
	}

	var groups []struct{ GroupID string }
	api.call(t, "hostgroup.create", map[string]string{"name": "mqops e2e"}, nil)
	api.call(t, "hostgroup.get", map[string]any{"filter": map[string]string{"name": "mqops e2e"}}, &groups)
	templateID := func(name string) string {
		var ts []struct{ TemplateID string }
		api.call(t, "template.get", map[string]any{"filter": map[string]string{"host": name}}, &ts)
		if len(ts) != 1 {
			t.Fatalf("template %q not found after the import", name)
		}
		return ts[0].TemplateID
	}
	_, brokerPort, _ := strings.Cut(broker, ":")
	_, nsPort, _ := strings.Cut(ns, ":")
	macros := []map[string]string{
		{"macro": "{$RMQ.BROKER.ADDR}", "value": broker},
		{"macro": "{$RMQ.BROKER.PORT}", "value": brokerPort},
		{"macro": "{$RMQ.NAMESRV.ADDR}", "value": ns},
		{"macro": "{$RMQ.NAMESRV.PORT}", "value": nsPort},
		{"macro": "{$RMQ.LOG.DIR}", "value": filepath.Join(string(c.dir), "logs")},
		{"macro": "{$RMQ.STORE.PATH}", "value": filepath.Join(string(c.dir), "store")},
		{"macro": "{$RMQ.CONTROLLER.ADDR}", "value": ctrls[0]},
		{"macro": "{$RMQ.CONTROLLER.NODE.ADDR}", "value": ctrls[0]},
	}
	hosts := map[string]string{} // template → host id
	for _, tpl := range []string{templates.Broker, templates.Namesrv, templates.Cluster, templates.Controller} {
		var r struct{ HostIDs []string }
		api.call(t, "host.create", map[string]any{
			"host":   "mqops-" + strings.Fields(tpl)[1],
			"groups": []map[string]string{{"groupid": groups[0].GroupID}},
			"interfaces": []map[string]any{{"type": 1, "main": 1, "useip": 1, "ip": "127.0.0.1", "dns": "",
				"port": agentPort}},
			"templates": []map[string]string{{"templateid": templateID(tpl)}},
			"macros":    macros,
		}, &r)
		hosts[tpl] = r.HostIDs[0]
	}

	// lastValue polls an item of a host until it has a value that ok
	// accepts, asking the server to check its master and discovery items
	// now rather than at their interval.
	checkNow := func(hostID string) {
		var items []struct{ ItemID, Type string }
		api.call(t, "item.get", map[string]any{"hostids": hostID, "output": []string{"itemid", "type"}}, &items)
		var rules []struct{ ItemID string }
		api.call(t, "discoveryrule.get", map[string]any{"hostids": hostID, "output": []string{"itemid"}}, &rules)
		var tasks []map[string]any
		for _, it := range items {
			if it.Type == "0" { // Zabbix agent items: masters and plain checks
				tasks = append(tasks, map[string]any{"type": 6, "request": map[string]string{"itemid": it.ItemID}})
			}
		}
		for _, r := range rules {
			tasks = append(tasks, map[string]any{"type": 6, "request": map[string]string{"itemid": r.ItemID}})
		}
		_ = api.try("task.create", tasks, nil) // refused until the server's cache has the host
	}
	lastValue := func(tpl, key string, ok func(string) bool) string {
		t.Helper()
		var v string
		deadline := time.Now().Add(4 * time.Minute)
		for {
			var items []struct {
				LastValue, LastClock, Error, State string
			}
			api.call(t, "item.get", map[string]any{"hostids": hosts[tpl], "filter": map[string]string{"key_": key},
				"output": []string{"lastvalue", "lastclock", "error", "state"}}, &items)
			if len(items) == 1 && items[0].LastClock != "0" && ok(items[0].LastValue) {
				return items[0].LastValue
			}
			if len(items) == 1 {
				v = fmt.Sprintf("value %q, state %s, error %q", items[0].LastValue, items[0].State, items[0].Error)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s on %s: no acceptable value after 4 minutes (%s)", key, tpl, v)
			}
			checkNow(hosts[tpl])
			time.Sleep(5 * time.Second)
		}
	}
	eq := func(want string) func(string) bool { return func(v string) bool { return v == want } }
	atLeast := func(n int) func(string) bool {
		return func(v string) bool { f, err := strconv.ParseFloat(v, 64); return err == nil && f >= float64(n) }
	}

	lastValue(templates.Broker, "rocketmq.broker.up", eq("1"))
	lastValue(templates.Broker, "rocketmq.broker.permission", eq("6"))
	lastValue(templates.Broker, "rocketmq.broker.registered", eq("1"))
	lastValue(templates.Broker, "rocketmq.broker.store.state", eq("0"))
	lastValue(templates.Broker, "rocketmq.broker.store.corrupt.ranges", eq("0"))
	lastValue(templates.Broker, `proc.num[,,,"{$RMQ.BROKER.PROC.PATTERN}"]`, atLeast(1))
	lastValue(templates.Namesrv, "rocketmq.namesrv.brokers", eq("1"))
	lastValue(templates.Cluster, "rocketmq.cluster.status", eq("0"))
	lastValue(templates.Cluster, "rocketmq.cluster.masters.writable", eq("1"))
	lastValue(templates.Cluster, "rocketmq.canary.ok", eq("1"))

	// Discovery made per-topic and per-group items, which get the counts.
	lastValue(templates.Cluster, "rocketmq.cluster.topic.put.today[ZbxServerOrders]", eq("42"))
	lastValue(templates.Cluster, "rocketmq.group.get.today[ZbxServerGroup]", eq("42"))
	lastValue(templates.Cluster, "rocketmq.group.backlog[ZbxServerGroup]", eq("0"))
	lastValue(templates.Broker, "rocketmq.topic.put.today[ZbxServerOrders]", eq("42"))
	lastValue(templates.Broker, "rocketmq.group.get.today[ZbxServerOrders,ZbxServerGroup]", eq("42"))
	// The gRPC service and the POP consumer's leases.
	lastValue(templates.Broker, "rocketmq.broker.grpc.enabled", eq("1"))
	lastValue(templates.Broker, "rocketmq.broker.grpc.up", eq("1"))
	lastValue(templates.Broker, "rocketmq.broker.grpc.consumers", eq("1"))
	lastValue(templates.Broker, "rocketmq.broker.pop.inflight", eq("5"))
	lastValue(templates.Cluster, "rocketmq.group.pop.inflight[ZbxServerPopGroup]", eq("5"))
	lastValue(templates.Cluster, "rocketmq.group.clients[ZbxServerPopGroup]", eq("1"))
	// Replication: the standalone ASYNC_MASTER has no slave and needs none;
	// the one-peer controller leads.
	lastValue(templates.Cluster, "rocketmq.controller.leader", eq("1"))
	lastValue(templates.Cluster, "rocketmq.set.insync[broker-a]", eq("0"))
	lastValue(templates.Cluster, "rocketmq.set.noinsync[broker-a]", eq("0"))
	lastValue(templates.Controller, "rocketmq.controller.up", eq("1"))
	lastValue(templates.Controller, "rocketmq.controller.is_leader", eq("1"))
	// Both template dashboards arrived with their pages.
	var dashboards []struct {
		Name  string
		Pages []struct{ Name string }
	}
	api.call(t, "templatedashboard.get", map[string]any{"output": "extend", "selectPages": "extend"}, &dashboards)
	pages := map[string]int{}
	for _, d := range dashboards {
		pages[d.Name] = len(d.Pages)
	}
	if pages["RocketMQ overview"] != 3 || pages["RocketMQ broker"] != 2 {
		t.Errorf("template dashboards: %v", pages)
	}

	// A fault drill: write-disable the broker and its trigger fires.
	cli(t, ns, "broker", "write-disable", "-b", broker)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var problems []struct{ Name string }
		api.call(t, "problem.get", map[string]any{"hostids": hosts[templates.Broker], "output": []string{"name"}}, &problems)
		fired := false
		for _, p := range problems {
			fired = fired || p.Name == "RocketMQ broker: write permission removed"
		}
		if fired {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no \"write permission removed\" problem 3 minutes after write-disable (problems: %v)", problems)
		}
		checkNow(hosts[templates.Broker])
		time.Sleep(5 * time.Second)
	}
	cli(t, ns, "broker", "write-enable", "-b", broker)

	var sys []struct{ ItemID string }
	api.call(t, "item.get", map[string]any{"hostids": hosts[templates.Cluster],
		"search": map[string]string{"key_": "TBW102"}, "output": []string{"itemid"}}, &sys)
	if len(sys) != 0 {
		t.Errorf("discovery created %d items for the system topic TBW102", len(sys))
	}
}
