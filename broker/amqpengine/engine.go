package amqpengine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/mqops/mqops/wire"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mqops/mqops/atomicfile"
)

// DefaultVhost exists in every engine.
const DefaultVhost = "/"

// Engine holds the vhosts of one broker.
type Engine struct {
	dir string // <configDir>/amqp
	log *slog.Logger

	mu     sync.RWMutex
	vhosts map[string]*Vhost
	d      *delivery // the message path, once Attach gave it a store (deliver.go)

	users  *users    // logins and vhost permissions (users.go)
	cons   consumers // the queues' consumers (consumers.go)
	leases leases    // the gateways' leases (lease.go)
	epoch  int64     // this engine's life (Epoch)
}

// Open loads every vhost saved under <configDir>/amqp/ and makes sure the
// default vhost "/" exists. A file that cannot be used (and whose .bak
// cannot either) fails the start with an error naming it, rather than
// silently dropping the vhost's durable queues.
func Open(configDir string, log *slog.Logger) (*Engine, error) {
	if log == nil {
		log = slog.Default()
	}
	e := &Engine{dir: filepath.Join(configDir, "amqp"), log: log, vhosts: make(map[string]*Vhost), epoch: time.Now().UnixNano()}
	var err error
	// Beside the vhosts' directory, whose every *.json is a vhost.
	if e.users, err = loadUsers(filepath.Join(configDir, "amqp-users.json")); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(e.dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("amqp metadata: %w", err)
	}
	for _, ent := range entries {
		if ent.IsDir() || !strings.HasSuffix(ent.Name(), ".json") {
			continue
		}
		path := filepath.Join(e.dir, ent.Name())
		v, err := loadVhost(path, log)
		if err != nil {
			return nil, fmt.Errorf("amqp metadata: %w", err)
		}
		if v == nil {
			continue // empty file and no backup
		}
		if other := e.vhosts[v.name]; other != nil {
			return nil, fmt.Errorf("amqp metadata: %s and %s both hold vhost %q", other.p.path, path, v.name)
		}
		e.vhosts[v.name] = v
	}
	if e.vhosts[DefaultVhost] == nil {
		e.vhosts[DefaultVhost] = newVhost(DefaultVhost, e.persister(DefaultVhost))
	}
	return e, nil
}

func (e *Engine) persister(name string) *persister {
	return &persister{path: filepath.Join(e.dir, VhostID(name)+".json")}
}

// VhostID maps a vhost name to a file- and topic-safe id: characters
// outside [A-Za-z0-9_-] become '_', and a name so altered gets '_' and six
// hex digits of its SHA-256, so that "a/b" and "a.b" stay apart.
func VhostID(name string) string {
	altered := false
	id := []byte(name)
	for i, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			id[i] = '_'
			altered = true
		}
	}
	if !altered {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return string(id) + "_" + hex.EncodeToString(sum[:3])
}

// Vhost returns a vhost; an unknown one is RabbitMQ's connection.open
// refusal (530).
func (e *Engine) Vhost(name string) (*Vhost, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if v := e.vhosts[name]; v != nil {
		return v, nil
	}
	return nil, errorf(NotAllowed, "vhost %s not found", name)
}

// Vhosts lists the vhost names, sorted.
func (e *Engine) Vhosts() []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	names := make([]string, 0, len(e.vhosts))
	for n := range e.vhosts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// AddVhost creates a vhost and writes its file at once, so that it
// survives a restart while still empty. Adding an existing vhost returns it.
func (e *Engine) AddVhost(name string) (*Vhost, error) {
	if name == "" || len(name) > 255 {
		return nil, fmt.Errorf("vhost name must be 1..255 bytes, got %d", len(name))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if v := e.vhosts[name]; v != nil {
		return v, nil
	}
	id := VhostID(name)
	for _, other := range e.vhosts {
		if other.id == id {
			return nil, fmt.Errorf("vhost %q maps to id %s, already used by vhost %q", name, id, other.name)
		}
	}
	v := newVhost(name, e.persister(name))
	v.mu.Lock()
	err := v.commit(true)
	v.mu.Unlock()
	if err != nil {
		return nil, err
	}
	e.vhosts[name] = v
	return v, nil
}

// DeleteVhost drops a vhost and its file (and backup).
func (e *Engine) DeleteVhost(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	v := e.vhosts[name]
	if v == nil {
		return errorf(NotFound, "no vhost '%s'", name)
	}
	// Gateways may still hold v: once deleted it refuses durable changes,
	// which would otherwise write its file again.
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, p := range []string{v.p.path, v.p.path + ".bak"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete vhost %q: %w", name, err)
		}
	}
	v.p.deleted = true
	delete(e.vhosts, name)
	// As RabbitMQ's rabbit_vhost:delete, the users' permissions there go
	// too: a vhost created again under the name starts with nobody let in.
	if err := e.users.dropVhost(name); err != nil {
		return fmt.Errorf("vhost %q deleted, its users' permissions not: %w", name, err)
	}
	return nil
}

// ReleaseOwner deletes the exclusive queues of one gateway connection
// (the session layer calls it when the connection closes), with their
// light queues, and returns them.
func (e *Engine) ReleaseOwner(gateway string, conn uint64) ([]QueueInfo, error) {
	o := Owner{Gateway: gateway, Conn: conn}
	return e.release(func(q Owner) bool { return q == o })
}

// ReleaseGateway deletes the exclusive queues of every connection of a
// gateway whose lease expired.
func (e *Engine) ReleaseGateway(gateway string) ([]QueueInfo, error) {
	return e.release(func(q Owner) bool { return q.Gateway == gateway })
}

func (e *Engine) release(match func(Owner) bool) ([]QueueInfo, error) {
	e.mu.RLock()
	vs := make([]*Vhost, 0, len(e.vhosts))
	for _, v := range e.vhosts {
		vs = append(vs, v)
	}
	e.mu.RUnlock()
	var all []QueueInfo
	var errs []error
	for _, v := range vs {
		gone, err := v.releaseOwner(match)
		all = append(all, gone...)
		if err != nil {
			errs = append(errs, err)
		}
		// Their messages and consumers go with them.
		for _, q := range gone {
			e.forgetDeleted(v.name, q)
		}
	}
	return all, errors.Join(errs...)
}

// persister writes one vhost's file. A failed write is sticky: the vhost
// refuses further durable changes until the broker restarts and reloads
// what is on disk, as a failed fsync is for the commit log.
type persister struct {
	path    string
	failed  error
	deleted bool // the vhost was deleted (DeleteVhost)
}

// commit writes the vhost's durable state when the change touched it.
// Callers hold v.mu for writing; writes are therefore serialised, and the
// file is replaced atomically (atomicfile, with a .bak as broker/meta keeps).
func (v *Vhost) commit(durable bool) error {
	if !durable {
		return nil
	}
	if v.p.deleted {
		return errorf(NotAllowed, "vhost %s not found", v.name)
	}
	if v.p.failed != nil {
		return internalError(fmt.Errorf("metadata of vhost '%s' cannot be written since an earlier failure: %w", v.name, v.p.failed))
	}
	v.version++
	data, err := v.encode()
	if err == nil {
		err = atomicfile.Write(v.p.path, data, atomicfile.Options{Backup: true})
	}
	if err != nil {
		v.p.failed = err
		return internalError(fmt.Errorf("write metadata of vhost '%s': %w", v.name, err))
	}
	return nil
}

// vhostFile is the JSON form of a vhost's durable metadata. Arguments are
// in the tagged form of wire.EncodeAMQPTable so that they read back with their AMQP
// types. Predeclared exchanges are not stored.
type vhostFile struct {
	Vhost          string        `json:"vhost"`
	Version        uint64        `json:"version"`
	QueueIDCeiling uint64        `json:"queueIdCeiling"`
	Exchanges      []exchangeRec `json:"exchanges"`
	Queues         []queueRec    `json:"queues"`
	Bindings       []bindingRec  `json:"bindings"`
}

type exchangeRec struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	AutoDelete bool            `json:"autoDelete,omitempty"`
	Internal   bool            `json:"internal,omitempty"`
	Args       json.RawMessage `json:"arguments"`
}

type queueRec struct {
	Name       string          `json:"name"`
	ID         uint64          `json:"id"`
	AutoDelete bool            `json:"autoDelete,omitempty"`
	Args       json.RawMessage `json:"arguments"`
	Created    int64           `json:"createdMillis"`
}

type bindingRec struct {
	Source      string          `json:"source"`
	Destination string          `json:"destination"`
	ToExchange  bool            `json:"toExchange,omitempty"`
	RoutingKey  string          `json:"routingKey"`
	Args        json.RawMessage `json:"arguments"`
}

func (v *Vhost) encode() ([]byte, error) {
	f := vhostFile{Vhost: v.name, Version: v.version, QueueIDCeiling: v.idCeiling,
		Exchanges: []exchangeRec{}, Queues: []queueRec{}, Bindings: []bindingRec{}}
	for _, x := range v.exchanges {
		if !x.durable || x.builtin {
			continue
		}
		a, err := wire.EncodeAMQPTable(x.args)
		if err != nil {
			return nil, fmt.Errorf("exchange '%s': %w", x.name, err)
		}
		f.Exchanges = append(f.Exchanges, exchangeRec{Name: x.name, Type: x.kind, AutoDelete: x.autoDelete, Internal: x.internal, Args: a})
	}
	for _, q := range v.queues {
		if !q.durable {
			continue
		}
		a, err := wire.EncodeAMQPTable(q.args)
		if err != nil {
			return nil, fmt.Errorf("queue '%s': %w", q.name, err)
		}
		f.Queues = append(f.Queues, queueRec{Name: q.name, ID: q.id, AutoDelete: q.autoDelete, Args: a, Created: q.created.UnixMilli()})
	}
	for _, b := range v.bindings {
		if b.durable() {
			f.Bindings = append(f.Bindings, bindingRec{Source: b.src.name, Destination: b.destName(), ToExchange: b.x != nil,
				RoutingKey: b.key, Args: json.RawMessage(b.argsKey)})
		}
	}
	sort.Slice(f.Exchanges, func(i, j int) bool { return f.Exchanges[i].Name < f.Exchanges[j].Name })
	sort.Slice(f.Queues, func(i, j int) bool { return f.Queues[i].Name < f.Queues[j].Name })
	sort.Slice(f.Bindings, func(i, j int) bool {
		a, b := f.Bindings[i], f.Bindings[j]
		return bindingLess(BindingInfo{a.Source, a.Destination, a.ToExchange, a.RoutingKey, nil},
			BindingInfo{b.Source, b.Destination, b.ToExchange, b.RoutingKey, nil}) ||
			a.Source == b.Source && a.Destination == b.Destination && a.ToExchange == b.ToExchange &&
				a.RoutingKey == b.RoutingKey && string(a.Args) < string(b.Args)
	})
	return json.MarshalIndent(f, "", "  ")
}

// loadVhost reads one vhost file (or its .bak when the file is torn or
// inconsistent); nil when the file is empty and has no backup.
func loadVhost(path string, log *slog.Logger) (*Vhost, error) {
	var v *Vhost
	fellBack, err := atomicfile.Load(path, func(b []byte) error {
		var err error
		v, err = decodeVhost(b, &persister{path: path})
		return err
	})
	if err != nil {
		return nil, err
	}
	if fellBack != nil {
		log.Error("[CONFIG_LOAD] file unusable, loaded its backup instead", "file", path, "backup", path+".bak", "err", fellBack)
	}
	if v != nil && filepath.Base(path) != VhostID(v.name)+".json" {
		return nil, fmt.Errorf("%s holds vhost %q, whose file is %s.json", path, v.name, VhostID(v.name))
	}
	return v, nil
}

func decodeVhost(data []byte, p *persister) (*Vhost, error) {
	var f vhostFile
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if f.Vhost == "" {
		return nil, errors.New("no vhost name")
	}
	v := newVhost(f.Vhost, p)
	v.version = f.Version
	v.idCeiling = f.QueueIDCeiling
	v.nextID = max(f.QueueIDCeiling, 1) // ids handed out before the restart are never reused
	for _, r := range f.Exchanges {
		if r.Name == "" || v.exchanges[r.Name] != nil {
			return nil, fmt.Errorf("exchange %q: empty, predeclared or duplicate name", r.Name)
		}
		if !validType(r.Type) {
			return nil, fmt.Errorf("exchange %q: unknown type %q", r.Name, r.Type)
		}
		args, err := wire.DecodeAMQPTable(r.Args)
		if err != nil {
			return nil, fmt.Errorf("exchange %q: %w", r.Name, err)
		}
		v.exchanges[r.Name] = newExchange(r.Name, r.Type, true, r.AutoDelete, r.Internal, args)
	}
	for _, r := range f.Queues {
		if r.Name == "" || v.queues[r.Name] != nil {
			return nil, fmt.Errorf("queue %q: empty or duplicate name", r.Name)
		}
		if r.ID == 0 || r.ID >= f.QueueIDCeiling {
			return nil, fmt.Errorf("queue %q: id %d outside 1..%d", r.Name, r.ID, f.QueueIDCeiling-1)
		}
		args, err := wire.DecodeAMQPTable(r.Args)
		if err != nil {
			return nil, fmt.Errorf("queue %q: %w", r.Name, err)
		}
		q := &queue{name: r.Name, id: r.ID, slot: int32(len(v.slots)), durable: true, autoDelete: r.AutoDelete,
			args: args, feat: newFeatures(r.Name, args), created: time.UnixMilli(r.Created).UTC()}
		v.slots = append(v.slots, q)
		v.queues[r.Name] = q
	}
	for _, r := range f.Bindings {
		args, err := wire.DecodeAMQPTable(r.Args)
		if err != nil {
			return nil, fmt.Errorf("binding %q → %q: %w", r.Source, r.Destination, err)
		}
		argsKey, _ := wire.EncodeAMQPTable(args) // decoded args always encode
		b := &binding{src: v.exchanges[r.Source], key: r.RoutingKey, args: args, argsKey: string(argsKey)}
		if r.ToExchange {
			b.x = v.exchanges[r.Destination]
		} else {
			b.q = v.queues[r.Destination]
		}
		if b.src == nil || b.src.name == "" || b.q == nil && b.x == nil {
			return nil, fmt.Errorf("binding %q → %q: an end is missing", r.Source, r.Destination)
		}
		if v.bindings[b.id()] != nil {
			return nil, fmt.Errorf("binding %q → %q key %q: duplicate", r.Source, r.Destination, r.RoutingKey)
		}
		if b.src.kind == Headers {
			if b.match, err = parseHeadersMatch(args); err != nil {
				return nil, fmt.Errorf("binding %q → %q: %w", r.Source, r.Destination, err)
			}
		}
		b.link()
		v.bindings[b.id()] = b
	}
	return v, nil
}
