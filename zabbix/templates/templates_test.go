package templates

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
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
