// Package templates builds the Zabbix 6.0 templates for mqops (YAML export
// format): "RocketMQ broker by Zabbix agent", "RocketMQ name server by
// Zabbix agent" and "RocketMQ cluster by Zabbix agent", shaped like
// Zabbix's own RabbitMQ and Redis templates — one master item per helper
// call (zabbix/agent/userparameter_mqops.conf), dependent items with
// JSONPath, LLD with filter macros, thresholds in user macros with
// context, tagged triggers with dependencies and a template dashboard.
//
// The YAML files next to this package are generated from this code and
// checked by its tests; regenerate them with
//
//	go test ./zabbix/templates -update
//
// UUIDs are derived from names, so they stay stable across regenerations
// and re-imports update the objects in place.
package templates

import (
	"crypto/md5"
	"encoding/hex"
)

// Export is a Zabbix configuration export document.
type Export struct {
	ZabbixExport Body `yaml:"zabbix_export"`
}

// Body is the content of an export; Zabbix 6.0 names template groups
// "groups".
type Body struct {
	Version   string     `yaml:"version"`
	Groups    []Group    `yaml:"groups"`
	Templates []Template `yaml:"templates"`
	Triggers  []Trigger  `yaml:"triggers,omitempty"`
	Graphs    []Graph    `yaml:"graphs,omitempty"`
}

type Group struct {
	UUID string `yaml:"uuid"`
	Name string `yaml:"name"`
}

type NameRef struct {
	Name string `yaml:"name"`
}

type Template struct {
	UUID           string      `yaml:"uuid"`
	Template       string      `yaml:"template"`
	Name           string      `yaml:"name"`
	Description    string      `yaml:"description"`
	Groups         []NameRef   `yaml:"groups"`
	Items          []Item      `yaml:"items"`
	DiscoveryRules []Discovery `yaml:"discovery_rules,omitempty"`
	Tags           []Tag       `yaml:"tags"`
	Macros         []Macro     `yaml:"macros"`
	Dashboards     []Dashboard `yaml:"dashboards,omitempty"`
	ValueMaps      []ValueMap  `yaml:"valuemaps,omitempty"`
}

type Tag struct {
	Tag   string `yaml:"tag"`
	Value string `yaml:"value"`
}

type Macro struct {
	Macro       string `yaml:"macro"`
	Value       string `yaml:"value"`
	Description string `yaml:"description"`
}

type Item struct {
	UUID          string    `yaml:"uuid"`
	Name          string    `yaml:"name"`
	Type          string    `yaml:"type,omitempty"`
	Key           string    `yaml:"key"`
	Delay         string    `yaml:"delay,omitempty"`
	History       string    `yaml:"history,omitempty"`
	Trends        string    `yaml:"trends,omitempty"`
	ValueType     string    `yaml:"value_type,omitempty"`
	Units         string    `yaml:"units,omitempty"`
	Params        string    `yaml:"params,omitempty"`
	Description   string    `yaml:"description,omitempty"`
	ValueMap      *NameRef  `yaml:"valuemap,omitempty"`
	Preprocessing []Step    `yaml:"preprocessing,omitempty"`
	MasterItem    *KeyRef   `yaml:"master_item,omitempty"`
	Tags          []Tag     `yaml:"tags,omitempty"`
	Triggers      []Trigger `yaml:"triggers,omitempty"`
}

type KeyRef struct {
	Key string `yaml:"key"`
}

type Step struct {
	Type               string   `yaml:"type"`
	Parameters         []string `yaml:"parameters"` // [""] for steps without any, as Zabbix exports them
	ErrorHandler       string   `yaml:"error_handler,omitempty"`
	ErrorHandlerParams string   `yaml:"error_handler_params,omitempty"`
}

type Trigger struct {
	UUID               string       `yaml:"uuid"`
	Expression         string       `yaml:"expression"`
	RecoveryMode       string       `yaml:"recovery_mode,omitempty"`
	RecoveryExpression string       `yaml:"recovery_expression,omitempty"`
	Name               string       `yaml:"name"`
	Opdata             string       `yaml:"opdata,omitempty"`
	Priority           string       `yaml:"priority"`
	Description        string       `yaml:"description,omitempty"`
	ManualClose        string       `yaml:"manual_close,omitempty"`
	Dependencies       []Dependency `yaml:"dependencies,omitempty"`
	Tags               []Tag        `yaml:"tags,omitempty"`
}

type Dependency struct {
	Name       string `yaml:"name"`
	Expression string `yaml:"expression"`
}

type Discovery struct {
	UUID              string    `yaml:"uuid"`
	Name              string    `yaml:"name"`
	Key               string    `yaml:"key"`
	Delay             string    `yaml:"delay"`
	Filter            *Filter   `yaml:"filter,omitempty"`
	Lifetime          string    `yaml:"lifetime"`
	Description       string    `yaml:"description,omitempty"`
	ItemPrototypes    []Item    `yaml:"item_prototypes"`
	TriggerPrototypes []Trigger `yaml:"trigger_prototypes,omitempty"`
	GraphPrototypes   []Graph   `yaml:"graph_prototypes,omitempty"`
}

type Filter struct {
	EvalType   string      `yaml:"evaltype"`
	Conditions []Condition `yaml:"conditions"`
}

type Condition struct {
	Macro     string `yaml:"macro"`
	Value     string `yaml:"value"`
	Operator  string `yaml:"operator,omitempty"`
	FormulaID string `yaml:"formulaid"`
}

type Graph struct {
	UUID       string      `yaml:"uuid"`
	Name       string      `yaml:"name"`
	GraphItems []GraphItem `yaml:"graph_items"`
}

type GraphItem struct {
	SortOrder string  `yaml:"sortorder,omitempty"`
	DrawType  string  `yaml:"drawtype,omitempty"`
	Color     string  `yaml:"color"`
	Item      HostKey `yaml:"item"`
}

type HostKey struct {
	Host string `yaml:"host"`
	Key  string `yaml:"key"`
}

type Dashboard struct {
	UUID  string `yaml:"uuid"`
	Name  string `yaml:"name"`
	Pages []Page `yaml:"pages"`
}

type Page struct {
	Name    string   `yaml:"name"`
	Widgets []Widget `yaml:"widgets"`
}

type Widget struct {
	Type   string  `yaml:"type"`
	Name   string  `yaml:"name,omitempty"`
	X      string  `yaml:"x,omitempty"`
	Y      string  `yaml:"y,omitempty"`
	Width  string  `yaml:"width"`
	Height string  `yaml:"height"`
	Fields []Field `yaml:"fields"`
}

type Field struct {
	Type  string `yaml:"type"`
	Name  string `yaml:"name"`
	Value any    `yaml:"value"`
}

type ValueMap struct {
	UUID     string    `yaml:"uuid"`
	Name     string    `yaml:"name"`
	Mappings []Mapping `yaml:"mappings"`
}

type Mapping struct {
	Value    string `yaml:"value"`
	NewValue string `yaml:"newvalue"`
}

// uuid derives a stable UUIDv4-shaped id (32 hex digits, as Zabbix
// wants) from the parts that name an object.
func uuid(parts ...string) string {
	h := md5.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	b := h.Sum(nil)
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return hex.EncodeToString(b)
}
