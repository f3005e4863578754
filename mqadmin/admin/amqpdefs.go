package admin

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mqops/mqops/wire"
)

// AMQPDefinitions is RabbitMQ's definitions file, as rabbitmqctl
// export_definitions / import_definitions and the management UI's export
// write and read it (https://www.rabbitmq.com/docs/definitions): users,
// vhosts, permissions, exchanges, queues and bindings, which mqops keeps,
// and the sections it has no counterpart for, kept raw so that an import
// can say what it left out.
type AMQPDefinitions struct {
	RabbitVersion  string `json:"rabbit_version,omitempty"`
	ProductName    string `json:"product_name,omitempty"`
	ProductVersion string `json:"product_version,omitempty"`

	Users       []AMQPDefUser       `json:"users"`
	Vhosts      []AMQPDefVhost      `json:"vhosts"`
	Permissions []AMQPDefPermission `json:"permissions"`
	Exchanges   []AMQPDefExchange   `json:"exchanges"`
	Queues      []AMQPDefQueue      `json:"queues"`
	Bindings    []AMQPDefBinding    `json:"bindings"`

	TopicPermissions []json.RawMessage `json:"topic_permissions"`
	Parameters       []json.RawMessage `json:"parameters"`
	GlobalParameters []json.RawMessage `json:"global_parameters"`
	Policies         []json.RawMessage `json:"policies"`
}

// AMQPDefUser is a user; Tags reads both RabbitMQ's list (3.9 and later)
// and its older comma-separated string.
type AMQPDefUser struct {
	Name             string          `json:"name"`
	PasswordHash     string          `json:"password_hash"`
	HashingAlgorithm string          `json:"hashing_algorithm"`
	Tags             AMQPDefTags     `json:"tags"`
	Limits           json.RawMessage `json:"limits,omitempty"`
}

// AMQPDefTags are a user's tags.
type AMQPDefTags []string

// UnmarshalJSON takes ["a","b"] or "a,b".
func (t *AMQPDefTags) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*t = list
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("tags: want a list of strings or a comma-separated string")
	}
	*t = nil
	for _, tag := range strings.Split(s, ",") {
		if tag = strings.TrimSpace(tag); tag != "" {
			*t = append(*t, tag)
		}
	}
	return nil
}

// AMQPDefVhost is a vhost.
type AMQPDefVhost struct {
	Name string `json:"name"`
}

// AMQPDefPermission is one user's permissions in one vhost.
type AMQPDefPermission struct {
	User      string `json:"user"`
	Vhost     string `json:"vhost"`
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

// AMQPDefExchange is an exchange.
type AMQPDefExchange struct {
	Name       string         `json:"name"`
	Vhost      string         `json:"vhost"`
	Type       string         `json:"type"`
	Durable    bool           `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
	Internal   bool           `json:"internal"`
	Arguments  map[string]any `json:"arguments"`
}

// AMQPDefQueue is a queue.
type AMQPDefQueue struct {
	Name       string         `json:"name"`
	Vhost      string         `json:"vhost"`
	Durable    bool           `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
	Arguments  map[string]any `json:"arguments"`
}

// AMQPDefBinding is a binding of a queue or an exchange to an exchange.
type AMQPDefBinding struct {
	Source          string         `json:"source"`
	Vhost           string         `json:"vhost"`
	Destination     string         `json:"destination"`
	DestinationType string         `json:"destination_type"`
	RoutingKey      string         `json:"routing_key"`
	Arguments       map[string]any `json:"arguments"`
}

// sha256Hashing is the only password hashing mqops checks logins with
// (RabbitMQ's default since 3.6); a missing hashing_algorithm means it.
const sha256Hashing = "rabbit_password_hashing_sha256"

// ParseAMQPDefinitions reads a definitions file and checks everything an
// import could refuse halfway: an error names every object at fault, and
// nothing has been changed then.
func ParseAMQPDefinitions(data []byte) (*AMQPDefinitions, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // x-message-ttl and the like stay integers
	var d AMQPDefinitions
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("definitions: %w", err)
	}
	return &d, d.validate()
}

func (d *AMQPDefinitions) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, v := range d.Vhosts {
		if v.Name == "" {
			bad("a vhost without a name")
		}
	}
	for _, u := range d.Users {
		switch {
		case u.Name == "":
			bad("a user without a name")
		case u.HashingAlgorithm != "" && u.HashingAlgorithm != sha256Hashing:
			bad("user %q: hashing_algorithm %s: mqops checks passwords with %s only; give the user a new password in the file's place "+
				"(mqadmin amqp user add %s --password-stdin) and remove it from the file", u.Name, u.HashingAlgorithm, sha256Hashing, u.Name)
		case u.PasswordHash != "":
			if raw, err := base64.StdEncoding.DecodeString(u.PasswordHash); err != nil || len(raw) != 36 {
				bad("user %q: password_hash is not a base64 salted SHA-256 hash (4 bytes of salt, 32 of hash)", u.Name)
			}
		}
	}
	for _, p := range d.Permissions {
		if p.User == "" || p.Vhost == "" {
			bad("permissions %+v: user and vhost are required", p)
		}
	}
	for _, x := range d.Exchanges {
		switch x.Type {
		case "direct", "fanout", "topic", "headers":
		default:
			bad("exchange %q in vhost %q: type %q is not supported (direct, fanout, topic, headers; no plugin exchange types)", x.Name, x.Vhost, x.Type)
		}
		if x.Vhost == "" {
			bad("exchange %q: no vhost", x.Name)
		}
		if _, err := defTable(x.Arguments); err != nil {
			bad("exchange %q in vhost %q: arguments: %w", x.Name, x.Vhost, err)
		}
	}
	for _, q := range d.Queues {
		if q.Name == "" || q.Vhost == "" {
			bad("queue %q in vhost %q: name and vhost are required", q.Name, q.Vhost)
		}
		if _, err := defTable(q.Arguments); err != nil {
			bad("queue %q in vhost %q: arguments: %w", q.Name, q.Vhost, err)
		}
	}
	for _, b := range d.Bindings {
		if b.DestinationType != "queue" && b.DestinationType != "exchange" {
			bad("binding %q → %q in vhost %q: destination_type %q, want queue or exchange", b.Source, b.Destination, b.Vhost, b.DestinationType)
		}
		if b.Vhost == "" || b.Destination == "" {
			bad("binding %q → %q: vhost and destination are required", b.Source, b.Destination)
		}
		if _, err := defTable(b.Arguments); err != nil {
			bad("binding %q → %q in vhost %q: arguments: %w", b.Source, b.Destination, b.Vhost, err)
		}
	}
	return errors.Join(errs...)
}

// defTable turns a definitions file's JSON arguments into an AMQP table:
// integers become signed 64-bit (RabbitMQ's long-long for x-message-ttl,
// x-max-length …), other numbers float64.
func defTable(args map[string]any) (wire.AMQPTable, error) {
	if len(args) == 0 {
		return nil, nil
	}
	t := make(wire.AMQPTable, len(args))
	for k, v := range args {
		x, err := defValue(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		t[k] = x
	}
	return t, nil
}

func defValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string:
		return x, nil
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return n, nil
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return nil, fmt.Errorf("number %s out of range", x)
		}
		return f, nil
	case float64: // decoded without UseNumber
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), nil
		}
		return x, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			var err error
			if out[i], err = defValue(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			var err error
			if out[k], err = defValue(e); err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported JSON value %T", v)
}

// jsonArgs is the reverse, for an export: an AMQP table as plain JSON
// values (an empty object when the table is empty, as RabbitMQ writes).
func jsonArgs(t wire.AMQPTable) map[string]any {
	out := make(map[string]any, len(t))
	for k, v := range t {
		out[k] = jsonValue(v)
	}
	return out
}

func jsonValue(v any) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case time.Time:
		return x.Unix()
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	}
	return v // numbers, strings, bools, nil
}

// predeclared reports names RabbitMQ reserves (amq.*, the default
// exchange ""): every vhost has its own, they are never imported or
// exported.
func predeclared(name string) bool { return name == "" || strings.HasPrefix(name, "amq.") }

// AMQPImportReport is what an import did (or, dry, would do).
type AMQPImportReport struct {
	DryRun      bool     `json:"dryRun,omitempty"`
	Vhosts      int      `json:"vhosts"`
	Users       int      `json:"users"`
	Permissions int      `json:"permissions"`
	Exchanges   int      `json:"exchanges"`
	Queues      int      `json:"queues"`
	Bindings    int      `json:"bindings"`
	Skipped     []string `json:"skipped,omitempty"`     // objects left alone, with why
	NotImported []string `json:"notImported,omitempty"` // sections mqops has no counterpart for
	Failed      []string `json:"failed,omitempty"`      // objects a broker refused
}

// ImportAMQPDefinitions applies d in RabbitMQ's order: vhosts, users,
// permissions, exchanges, queues, bindings. Each step is idempotent (an
// equivalent exchange, queue or binding is declared again, a user's hash
// and tags are set again), so an import can be repeated. An object a
// broker refuses (e.g. a queue argument mqops does not take, or one that
// exists with other properties) is reported and the rest goes on; the
// error then lists every refusal. dryRun only reports.
func (a *Admin) ImportAMQPDefinitions(d *AMQPDefinitions, dryRun bool) (*AMQPImportReport, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	r := &AMQPImportReport{DryRun: dryRun}
	for _, s := range []struct {
		name string
		n    int
		why  string
	}{
		{"policies", len(d.Policies), "mqops has no policies: set their x- arguments on the queues (queue.declare or mqadmin amqp queue declare --arg)"},
		{"parameters", len(d.Parameters), "runtime parameters (shovels, federation, vhost limits) have no counterpart"},
		{"topic_permissions", len(d.TopicPermissions), "topic permissions are not enforced by mqops"},
	} {
		if s.n > 0 {
			r.NotImported = append(r.NotImported, fmt.Sprintf("%d %s: %s", s.n, s.name, s.why))
		}
	}
	var failed []error
	try := func(what string, err error) bool {
		if err != nil {
			r.Failed = append(r.Failed, what+": "+err.Error())
			failed = append(failed, fmt.Errorf("%s: %w", what, err))
			return false
		}
		return true
	}
	run := func(f func() error) error {
		if dryRun {
			return nil
		}
		return f()
	}
	for _, v := range d.Vhosts {
		if try("vhost "+v.Name, run(func() error { _, err := a.AMQPAddVhost(v.Name, ""); return err })) {
			r.Vhosts++
		}
	}
	for _, u := range d.Users {
		if u.PasswordHash == "" {
			r.Skipped = append(r.Skipped, fmt.Sprintf("user %s: no password_hash (it cannot log in with a password)", u.Name))
			continue
		}
		put := wire.AMQPUserPut{User: u.Name, PasswordHash: u.PasswordHash, Tags: append([]string{}, u.Tags...)}
		if try("user "+u.Name, run(func() error { return a.AMQPPutUser("", put) })) {
			r.Users++
		}
	}
	for _, p := range d.Permissions {
		set := wire.AMQPPermissionSet{User: p.User, Vhost: p.Vhost, AMQPPermission: wire.AMQPPermission{Configure: p.Configure, Write: p.Write, Read: p.Read}}
		if try(fmt.Sprintf("permissions of %s in vhost %s", p.User, p.Vhost), run(func() error { return a.AMQPSetPermissions("", set, false) })) {
			r.Permissions++
		}
	}
	for _, x := range d.Exchanges {
		if predeclared(x.Name) {
			r.Skipped = append(r.Skipped, fmt.Sprintf("exchange %q in vhost %s: predeclared in every vhost", x.Name, x.Vhost))
			continue
		}
		args, _ := defTable(x.Arguments)
		dec := wire.AMQPExchangeDeclare{Vhost: x.Vhost, Exchange: x.Name, Type: x.Type, Durable: x.Durable, AutoDelete: x.AutoDelete,
			Internal: x.Internal, Arguments: args}
		if try(fmt.Sprintf("exchange %s in vhost %s", x.Name, x.Vhost), run(func() error { return a.AMQPCall(x.Vhost, "", wire.AMQPDeclareExchange, dec, nil) })) {
			r.Exchanges++
		}
	}
	for _, q := range d.Queues {
		if predeclared(q.Name) {
			r.Skipped = append(r.Skipped, fmt.Sprintf("queue %q in vhost %s: amq. names are reserved", q.Name, q.Vhost))
			continue
		}
		args, _ := defTable(q.Arguments)
		dec := wire.AMQPQueueDeclare{Vhost: q.Vhost, Queue: q.Name, Durable: q.Durable, AutoDelete: q.AutoDelete, Arguments: args}
		if try(fmt.Sprintf("queue %s in vhost %s", q.Name, q.Vhost), run(func() error { return a.AMQPCall(q.Vhost, "", wire.AMQPDeclareQueue, dec, nil) })) {
			r.Queues++
		}
	}
	for _, b := range d.Bindings {
		if b.Source == "" {
			r.Skipped = append(r.Skipped, fmt.Sprintf("binding of %s to the default exchange in vhost %s: implicit", b.Destination, b.Vhost))
			continue
		}
		args, _ := defTable(b.Arguments)
		bind := wire.AMQPBinding{Vhost: b.Vhost, Source: b.Source, Destination: b.Destination, ToExchange: b.DestinationType == "exchange",
			RoutingKey: b.RoutingKey, Arguments: args}
		what := fmt.Sprintf("binding %s → %s %s (%q) in vhost %s", b.Source, b.DestinationType, b.Destination, b.RoutingKey, b.Vhost)
		if try(what, run(func() error { return a.AMQPCall(b.Vhost, "", wire.AMQPBind, bind, nil) })) {
			r.Bindings++
		}
	}
	return r, errors.Join(failed...)
}

// ExportAMQPDefinitions reads every vhost's exchanges, queues and bindings
// and the users (with their password hashes) and permissions, in
// RabbitMQ's format, so that rabbitmqctl import_definitions or another
// mqops cluster's import takes them. Exclusive and server-named queues
// belong to connections and are left out, as RabbitMQ leaves them out.
func (a *Admin) ExportAMQPDefinitions(product, version string) (*AMQPDefinitions, error) {
	d := &AMQPDefinitions{ProductName: product, ProductVersion: version,
		Users: []AMQPDefUser{}, Vhosts: []AMQPDefVhost{}, Permissions: []AMQPDefPermission{},
		Exchanges: []AMQPDefExchange{}, Queues: []AMQPDefQueue{}, Bindings: []AMQPDefBinding{},
		TopicPermissions: []json.RawMessage{}, Parameters: []json.RawMessage{}, GlobalParameters: []json.RawMessage{}, Policies: []json.RawMessage{}}
	users, err := a.amqpUsers("", true)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	for _, u := range users {
		if u.PasswordHash == "" {
			return nil, fmt.Errorf("user %s: the broker did not send password hashes (a broker older than this mqadmin?)", u.User)
		}
		d.Users = append(d.Users, AMQPDefUser{Name: u.User, PasswordHash: u.PasswordHash, HashingAlgorithm: sha256Hashing,
			Tags: append(AMQPDefTags{}, u.Tags...), Limits: json.RawMessage("{}")})
		vhosts := make([]string, 0, len(u.Permissions))
		for v := range u.Permissions {
			vhosts = append(vhosts, v)
		}
		sort.Strings(vhosts)
		for _, v := range vhosts {
			p := u.Permissions[v]
			d.Permissions = append(d.Permissions, AMQPDefPermission{User: u.User, Vhost: v, Configure: p.Configure, Write: p.Write, Read: p.Read})
		}
	}
	vs, err := a.AMQPVhosts("")
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		d.Vhosts = append(d.Vhosts, AMQPDefVhost{Name: v.Vhost})
		ls, err := a.AMQPList(v.Vhost, "")
		if err != nil {
			return nil, err
		}
		for _, x := range ls.Exchanges {
			if predeclared(x.Name) {
				continue
			}
			d.Exchanges = append(d.Exchanges, AMQPDefExchange{Name: x.Name, Vhost: v.Vhost, Type: x.Type, Durable: x.Durable,
				AutoDelete: x.AutoDelete, Internal: x.Internal, Arguments: jsonArgs(x.Arguments)})
		}
		kept := map[string]bool{}
		for _, q := range ls.Queues {
			if q.Owner != nil || predeclared(q.Name) {
				continue
			}
			kept[q.Name] = true
			d.Queues = append(d.Queues, AMQPDefQueue{Name: q.Name, Vhost: v.Vhost, Durable: q.Durable, AutoDelete: q.AutoDelete,
				Arguments: jsonArgs(q.Arguments)})
		}
		for _, b := range ls.Bindings {
			if b.Source == "" || !b.ToExchange && !kept[b.Destination] {
				continue // implicit, or to a queue left out
			}
			dt := "queue"
			if b.ToExchange {
				dt = "exchange"
			}
			d.Bindings = append(d.Bindings, AMQPDefBinding{Source: b.Source, Vhost: v.Vhost, Destination: b.Destination, DestinationType: dt,
				RoutingKey: b.RoutingKey, Arguments: jsonArgs(b.Arguments)})
		}
	}
	return d, nil
}
