package hosts

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeTree creates files (relative path -> content) under a temp dir.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The vars files both inventory formats share: they exercise the
// precedence of group_vars and host_vars over the inventory file.
var varsFiles = map[string]string{
	"group_vars/all.yml":                   "mqops_log_dir: /logs-all\nmqops_broker_store_dir: /store-all\n",
	"group_vars/mqops_broker.yml":          "mqops_broker_store_dir: /store-broker\n",
	"group_vars/mqops_broker_master/a.yml": "mqops_broker_store_dir: /store-master-a\n",
	"group_vars/mqops_broker_master/b.yml": "mqops_broker_store_dir: /store-master-b\n",
	"host_vars/b1.yml":                     "mqops_broker_listen_port: 10912\nunused: \"{{ not rendered }}\"\n",
	"host_vars/ns1":                        "ansible_user: ops\n",
}

const iniInventory = `# mqops test inventory
; both comment styles
[mqops_namesrv]
ns1:2222 ansible_host=10.0.0.1
ns2      ansible_host=10.0.0.2   # trailing comment

[mqops_broker_master]
b1 ansible_host=10.0.0.3 mqops_broker_name='broker-a' mqops_broker_id=0 mqops_broker_listen_port=10999
b2 ansible_host=10.0.0.4 mqops_broker_store_dir=/store-host-line mqops_broker_name="broker b"

[mqops_broker_slave]
s1 ansible_host=10.0.0.5 mqops_broker_id=1 mqops_broker_ip=192.168.0.5

[mqops_broker:children]
mqops_broker_master
mqops_broker_slave

[mqops_broker:vars]
mqops_bin_dir = /bin-broker
mqops_log_dir=/logs-inventory-broker

[all:vars]
mqops_bin_dir=/bin-all
ansible_port=2200
`

const yamlInventory = `all:
  vars:
    mqops_bin_dir: /bin-all
    ansible_port: 2200
  children:
    mqops_namesrv:
      hosts:
        ns1:2222: {ansible_host: 10.0.0.1}
        ns2:
          ansible_host: 10.0.0.2
    mqops_broker:
      vars:
        mqops_bin_dir: /bin-broker
        mqops_log_dir: /logs-inventory-broker
      children:
        mqops_broker_master:
          hosts:
            b1: &b1
              ansible_host: 10.0.0.3
              mqops_broker_name: broker-a
              mqops_broker_id: 0
              mqops_broker_listen_port: 10999
            b2:
              ansible_host: 10.0.0.4
              mqops_broker_store_dir: /store-host-line
              mqops_broker_name: "broker b"
        mqops_broker_slave:
          hosts:
            s1:
              ansible_host: 10.0.0.5
              mqops_broker_id: 1
              mqops_broker_ip: 192.168.0.5
`

// Both formats give the same hosts: children groups, Ansible's
// precedence (all < parent < child group; inventory-file group vars <
// group_vars/all < group_vars/<group> < inventory-file host vars <
// host_vars), defaults, and host:port patterns.
func TestLoadPrecedence(t *testing.T) {
	for _, c := range []struct{ name, file, content string }{
		{"ini", "hosts.ini", iniInventory},
		{"ini-no-extension", "hosts", iniInventory},
		{"yaml", "hosts.yml", yamlInventory},
	} {
		t.Run(c.name, func(t *testing.T) {
			files := map[string]string{c.file: c.content}
			for k, v := range varsFiles {
				files[k] = v
			}
			dir := writeTree(t, files)
			for _, path := range []string{dir, filepath.Join(dir, c.file)} {
				inv, err := Load(path)
				if err != nil {
					t.Fatal(err)
				}
				checkPrecedence(t, inv, filepath.Join(dir, c.file))
			}
		})
	}
}

func checkPrecedence(t *testing.T, inv *Inventory, file string) {
	t.Helper()
	var names []string
	byName := map[string]*Host{}
	for _, h := range inv.Hosts {
		names = append(names, h.Name)
		byName[h.Name] = h
	}
	if got := strings.Join(names, " "); got != "ns1 ns2 b1 b2 s1" {
		t.Fatalf("hosts %q", got)
	}
	want := map[string]Host{
		"ns1": {Addr: "10.0.0.1", Port: 2222, User: "ops", BinDir: "/bin-all", LogDir: "/logs-all", StoreDir: "/store-all",
			BrokerPort: 10911, NamesrvPort: 9876, BrokerIP: "10.0.0.1", BrokerID: -1},
		"ns2": {Addr: "10.0.0.2", Port: 2200, BinDir: "/bin-all", LogDir: "/logs-all", StoreDir: "/store-all",
			BrokerPort: 10911, NamesrvPort: 9876, BrokerIP: "10.0.0.2", BrokerID: -1},
		"b1": {Addr: "10.0.0.3", Port: 2200, BinDir: "/bin-broker", LogDir: "/logs-all", StoreDir: "/store-master-b",
			BrokerPort: 10912, NamesrvPort: 9876, BrokerIP: "10.0.0.3", BrokerName: "broker-a", BrokerID: 0},
		"b2": {Addr: "10.0.0.4", Port: 2200, BinDir: "/bin-broker", LogDir: "/logs-all", StoreDir: "/store-host-line",
			BrokerPort: 10911, NamesrvPort: 9876, BrokerIP: "10.0.0.4", BrokerName: "broker b", BrokerID: -1},
		"s1": {Addr: "10.0.0.5", Port: 2200, BinDir: "/bin-broker", LogDir: "/logs-all", StoreDir: "/store-broker",
			BrokerPort: 10911, NamesrvPort: 9876, BrokerIP: "192.168.0.5", BrokerID: 1},
	}
	for name, w := range want {
		got := *byName[name]
		got.Name, got.Groups, got.Vars = "", nil, nil
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, w)
		}
	}
	if g := strings.Join(byName["b1"].Groups, " "); g != "all mqops_broker mqops_broker_master" {
		t.Errorf("b1 groups %q", g)
	}
	if !byName["s1"].IsBroker() || byName["s1"].IsNamesrv() || !byName["ns1"].IsNamesrv() || byName["ns1"].IsBroker() {
		t.Errorf("roles wrong")
	}
	// The template in an unused variable is carried, not an error.
	if v := byName["b1"].Vars["unused"]; v.Value != "{{ not rendered }}" {
		t.Errorf("unused var %+v", v)
	}
	if pos := byName["b1"].Vars["mqops_broker_listen_port"].Pos; !strings.HasSuffix(pos, "host_vars/b1.yml:1") {
		t.Errorf("listen port set at %s", pos)
	}
	if pos := byName["ns2"].Vars["ansible_host"].Pos; !strings.HasPrefix(pos, file+":") {
		t.Errorf("ns2 ansible_host set at %s, want in %s", pos, file)
	}
}

// Unsupported or broken input names the file and line.
func TestLoadErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		want  string // after the temp dir prefix
	}{
		{"ini host range", map[string]string{"hosts.ini": "[mqops_broker]\n\nweb[01:03]\n"},
			`hosts.ini:3: host ranges such as "web[01:03]" are not supported`},
		{"ini section kind", map[string]string{"hosts.ini": "[mqops_broker:extra]\n"},
			`hosts.ini:1: unsupported section [mqops_broker:extra]`},
		{"ini vars line", map[string]string{"hosts.ini": "[all:vars]\nansible_user\n"},
			`hosts.ini:2: want key=value in [all:vars], got "ansible_user"`},
		{"ini host var", map[string]string{"hosts.ini": "[mqops_namesrv]\nns1 ansible_user\n"},
			`hosts.ini:2: want key=value after host ns1, got "ansible_user"`},
		{"ini quote", map[string]string{"hosts.ini": "[mqops_namesrv]\nns1 ansible_user='x\n"},
			`hosts.ini:2: unterminated quote`},
		{"ini bad port", map[string]string{"hosts.ini": "[mqops_namesrv]\nns1\n[all:vars]\nansible_port=ssh\n"},
			`hosts.ini:4: ansible_port = "ssh": want a port number (1-65535)`},
		{"ini cycle", map[string]string{"hosts.ini": "[a:children]\nb\n[b:children]\na\n"},
			`hosts.ini:4: groups form a cycle: a -> b -> a`},
		{"master outside broker", map[string]string{"hosts.ini": "[mqops_broker_master]\nb1\n"},
			`group mqops_broker_master must be a child of mqops_broker`},
		{"relative dir", map[string]string{"hosts.ini": "[mqops_broker]\nb1 mqops_broker_store_dir=store\n"},
			`hosts.ini:2: mqops_broker_store_dir = "store": want an absolute path`},
		{"yaml unknown key", map[string]string{"hosts.yml": "all:\n  children:\n    mqops_broker:\n      host:\n        b1:\n"},
			`hosts.yml:4: group mqops_broker: unknown key "host" (want hosts, vars or children)`},
		{"yaml syntax", map[string]string{"hosts.yml": "all:\n  hosts:\n    b1: [\n"},
			`hosts.yml: yaml: line 3`},
		{"yaml merge key", map[string]string{"hosts.yml": "all:\n  vars:\n    base: &x {ansible_port: 1}\n    <<: *x\n"},
			`hosts.yml:4: unsupported key`},
		{"yaml hosts list", map[string]string{"hosts.yml": "all:\n  hosts:\n    - b1\n"},
			`hosts.yml:3: hosts of group all: want a mapping`},
		{"template", map[string]string{"hosts.yml": "all:\n  hosts:\n    b1:\n", "group_vars/all.yml": "\nmqops_bin_dir: \"{{ base }}/bin\"\n"},
			`group_vars/all.yml:2: mqops_bin_dir = "{{ base }}/bin": Jinja2 templates are not supported here`},
		{"vault", map[string]string{"hosts.yml": "all:\n  hosts:\n    b1:\n", "host_vars/b1.yml": "ansible_user: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n"},
			`host_vars/b1.yml:1: ansible_user is a vault-encrypted value, which mqadmin cannot use`},
		{"list", map[string]string{"hosts.yml": "all:\n  hosts:\n    b1:\n      ansible_host: [a, b]\n"},
			`hosts.yml:4: ansible_host is a list, which mqadmin cannot use`},
		{"no hosts file", map[string]string{"group_vars/all.yml": ""}, `: no hosts.yml, hosts.yaml, hosts.ini or hosts file`},
		{"two hosts files", map[string]string{"hosts.yml": "", "hosts.ini": ""}, `: several hosts files`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := writeTree(t, c.files)
			_, err := Load(dir)
			if err == nil {
				t.Fatal("loaded")
			}
			msg := strings.ReplaceAll(err.Error(), dir+"/", "")
			if !strings.Contains(msg, c.want) {
				t.Fatalf("error %q\nwant it to contain %q", msg, c.want)
			}
		})
	}
}

func TestParseHostPattern(t *testing.T) {
	for in, want := range map[string][2]string{
		"b1":              {"b1", ""},
		"b1.example:2222": {"b1.example", "2222"},
		"[fe80::1]:2222":  {"fe80::1", "2222"},
		"fe80::1":         {"fe80::1", ""},
		"[fe80::1]":       {"fe80::1", ""},
	} {
		name, port, err := parseHostPattern(in)
		if err != nil || name != want[0] || port != want[1] {
			t.Errorf("parseHostPattern(%q) = %q, %q, %v", in, name, port, err)
		}
	}
	for _, bad := range []string{"b1:ssh", "b1:0", "[fe80::1", "web[1:3].x", ":22"} {
		if _, _, err := parseHostPattern(bad); err == nil {
			t.Errorf("parseHostPattern(%q) accepted", bad)
		}
	}
}
