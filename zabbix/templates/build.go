package templates

import (
	"fmt"
	"strings"
)

// Value types and item types of the export format.
const (
	vtFloat = "FLOAT"
	vtChar  = "CHAR"
	vtText  = "TEXT"
	vtUint  = "" // the default: numeric unsigned
)

// tpl accumulates one template.
type tpl struct {
	Template
	graphs []Graph
}

func newTemplate(name, desc string) *tpl {
	return &tpl{Template: Template{
		UUID: uuid("template", name), Template: name, Name: name, Description: desc,
		Groups: []NameRef{{Name: groupName}},
		Tags:   []Tag{{"class", "software"}, {"target", "rocketmq"}},
	}}
}

const groupName = "Templates/Applications"

func (t *tpl) macro(name, value, desc string) {
	t.Macros = append(t.Macros, Macro{Macro: name, Value: value, Description: desc})
}

// fn renders a trigger function on one of the template's items:
// fn("last", key) is last(/Template/key); extra arguments follow.
func (t *tpl) fn(name, key string, args ...string) string {
	a := ""
	if len(args) > 0 {
		a = "," + strings.Join(args, ",")
	}
	return fmt.Sprintf("%s(/%s/%s%s)", name, t.Name, key, a)
}

// master is a passive agent item returning a helper's JSON document.
func (t *tpl) master(name, key, delay, desc string) Item {
	return Item{
		UUID: uuid(t.Name, "item", key), Name: name, Key: key, Delay: delay,
		History: "0", Trends: "0", ValueType: vtText, Description: desc,
		Tags: []Tag{{"component", "raw"}},
	}
}

// agent is a plain passive agent item.
func (t *tpl) agent(name, key, delay, vt, units, component, desc string) Item {
	it := Item{UUID: uuid(t.Name, "item", key), Name: name, Key: key, Delay: delay, ValueType: vt, Units: units,
		Description: desc, Tags: []Tag{{"component", component}}}
	if vt == vtChar || vt == vtText {
		it.Trends = "0"
	}
	return it
}

// dep is a dependent item taking path from master's JSON; missing keys
// read as fallback ("" for none, which leaves the item without a value).
func (t *tpl) dep(master, name, key, path, vt, units, component, fallback string, more ...Step) Item {
	it := t.agent(name, key, "", vt, units, component, "")
	it.Type = "DEPENDENT"
	it.Delay = "0"
	it.MasterItem = &KeyRef{Key: master}
	s := Step{Type: "JSONPATH", Parameters: []string{path}}
	if fallback != "" {
		s.ErrorHandler, s.ErrorHandlerParams = "CUSTOM_VALUE", fallback
	}
	it.Preprocessing = append([]Step{s}, more...)
	return it
}

// topicDep is a per-topic item prototype reading master's
// $.topics['{#TOPIC}'].field (0 when the topic has no entry).
func (t *tpl) topicDep(master, name, key, field, vt, units string) Item {
	it := t.dep(master, "Topic {#TOPIC}: "+name, key+"[{#TOPIC}]", "$.topics['{#TOPIC}']."+field, vt, units, "business", "0")
	it.Tags = append(it.Tags, Tag{"topic", "{#TOPIC}"})
	return it
}

// pairDep is a per-group-and-topic item prototype reading master's
// $.pairs['{#TOPIC}@{#GROUP}'].field.
func (t *tpl) pairDep(master, name, key, field string) Item {
	it := t.dep(master, "Group {#GROUP} on {#TOPIC}: "+name, key+"[{#TOPIC},{#GROUP}]", "$.pairs['{#TOPIC}@{#GROUP}']."+field, vtUint, "msg", "business", "0")
	it.Tags = append(it.Tags, Tag{"group", "{#GROUP}"}, Tag{"topic", "{#TOPIC}"})
	return it
}

var (
	discardHeartbeat = func(every string) Step {
		return Step{Type: "DISCARD_UNCHANGED_HEARTBEAT", Parameters: []string{every}}
	}
	simpleChange = Step{Type: "SIMPLE_CHANGE", Parameters: []string{""}}
)

// trigger builds a trigger; deps name triggers of the same template.
func (t *tpl) trigger(name, expr, priority, scope, desc string, deps ...Trigger) Trigger {
	tr := Trigger{UUID: uuid(t.Name, "trigger", name, expr), Name: name, Expression: expr, Priority: priority,
		Description: desc, Tags: []Tag{{"scope", scope}}}
	for _, d := range deps {
		tr.Dependencies = append(tr.Dependencies, Dependency{Name: d.Name, Expression: d.Expression})
	}
	return tr
}

func (t *tpl) valueMap(name string, kv ...string) {
	vm := ValueMap{UUID: uuid(t.Name, "valuemap", name), Name: name}
	for i := 0; i+1 < len(kv); i += 2 {
		vm.Mappings = append(vm.Mappings, Mapping{Value: kv[i], NewValue: kv[i+1]})
	}
	t.ValueMaps = append(t.ValueMaps, vm)
}

func withMap(it Item, name string) Item {
	it.ValueMap = &NameRef{Name: name}
	return it
}

func withTriggers(it Item, trs ...Trigger) Item {
	it.Triggers = append(it.Triggers, trs...)
	return it
}

// graph adds a template graph over the template's items.
func (t *tpl) graph(name string, keys ...string) Graph {
	g := t.newGraph("graph", name, keys)
	t.graphs = append(t.graphs, g)
	return g
}

// graphPrototype is a graph over item prototypes of rule.
func (t *tpl) graphPrototype(name string, keys ...string) Graph {
	return t.newGraph("graph prototype", name, keys)
}

func (t *tpl) newGraph(kind, name string, keys []string) Graph {
	g := Graph{UUID: uuid(t.Name, kind, name), Name: name}
	for i, k := range keys {
		g.GraphItems = append(g.GraphItems, GraphItem{SortOrder: fmt.Sprint(i), Color: palette[i%len(palette)],
			Item: HostKey{Host: t.Name, Key: k}})
	}
	return g
}

var palette = []string{"1A7C11", "F63100", "2774A4", "A54F10", "FC6EA3", "6C59DC", "AC8C14", "611F27"}

// filter matches {#MACRO} against a regexp macro (and not against the
// NOT_MATCHES one) for each pair given.
func filter(conds ...Condition) *Filter {
	for i := range conds {
		conds[i].FormulaID = string(rune('A' + i))
	}
	return &Filter{EvalType: "AND", Conditions: conds}
}

func matches(lld, macro string) Condition { return Condition{Macro: lld, Value: macro} }
func notMatches(lld, macro string) Condition {
	return Condition{Macro: lld, Value: macro, Operator: "NOT_MATCHES_REGEX"}
}

// discovery is an agent LLD rule.
func (t *tpl) discovery(name, key, desc string, f *Filter) Discovery {
	return Discovery{UUID: uuid(t.Name, "discovery", key), Name: name, Key: key, Delay: "10m", Lifetime: "7d",
		Filter: f, Description: desc}
}

// export wraps finished templates into one document.
func export(ts ...*tpl) Export {
	e := Export{ZabbixExport: Body{Version: "6.0", Groups: []Group{{UUID: uuid("group", groupName), Name: groupName}}}}
	for _, t := range ts {
		e.ZabbixExport.Templates = append(e.ZabbixExport.Templates, t.Template)
		e.ZabbixExport.Graphs = append(e.ZabbixExport.Graphs, t.graphs...)
	}
	return e
}

// Widgets of template dashboards (6.0 field types).
func graphWidget(x, y, w, h int, host, graph string) Widget {
	return Widget{Type: "GRAPH_CLASSIC", X: fmt.Sprint(x), Y: fmt.Sprint(y), Width: fmt.Sprint(w), Height: fmt.Sprint(h),
		Fields: []Field{
			{Type: "INTEGER", Name: "source_type", Value: "0"},
			{Type: "GRAPH", Name: "graphid", Value: map[string]string{"name": graph, "host": host}},
		}}
}

func graphPrototypeWidget(x, y, w, h int, host, graph string, columns int) Widget {
	return Widget{Type: "GRAPH_PROTOTYPE", X: fmt.Sprint(x), Y: fmt.Sprint(y), Width: fmt.Sprint(w), Height: fmt.Sprint(h),
		Fields: []Field{
			{Type: "INTEGER", Name: "columns", Value: fmt.Sprint(columns)},
			{Type: "INTEGER", Name: "rows", Value: "1"},
			{Type: "GRAPH_PROTOTYPE", Name: "graphid", Value: map[string]string{"name": graph, "host": host}},
		}}
}

func itemWidget(x, y, w, h int, name, host, key string) Widget {
	return Widget{Type: "ITEM", Name: name, X: fmt.Sprint(x), Y: fmt.Sprint(y), Width: fmt.Sprint(w), Height: fmt.Sprint(h),
		Fields: []Field{
			{Type: "ITEM", Name: "itemid", Value: map[string]string{"key": key, "host": host}},
		}}
}
