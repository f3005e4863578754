package hosts

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Group names of the inventory contract.
const (
	GroupAll          = "all"
	GroupNamesrv      = "mqops_namesrv"
	GroupBroker       = "mqops_broker"
	GroupBrokerMaster = "mqops_broker_master"
	GroupBrokerSlave  = "mqops_broker_slave"
)

// Defaults of the contract's host variables.
const (
	DefaultSSHPort     = 22
	DefaultBinDir      = "/opt/mqops/bin"
	DefaultLogDir      = "/var/log/mqops"
	DefaultStoreDir    = "/var/lib/mqops/store"
	DefaultBrokerPort  = 10911
	DefaultNamesrvPort = 9876
)

// Var is one variable's value and where it was set.
type Var struct {
	Value string
	// Pos is "file:line" of the definition.
	Pos string
	// unusable says why Value is not the variable's real value (a vault
	// ciphertext, a list); such a value is only an error where it is used.
	unusable string
}

// Inventory is a loaded inventory with every host's variables resolved.
type Inventory struct {
	// Path is the file or directory it was loaded from.
	Path string
	// Hosts in order of first appearance.
	Hosts []*Host
}

// Host is one inventory host: its groups, its variables after
// precedence, and the contract's settings read from them.
type Host struct {
	Name string
	// Groups holds every group the host is in, directly or through
	// children, including "all"; parents before children.
	Groups []string
	Vars   map[string]Var

	Addr        string // ansible_host
	Port        int    // ansible_port
	User        string // ansible_user; "" when unset
	BinDir      string
	LogDir      string
	StoreDir    string
	BrokerPort  int
	NamesrvPort int
	BrokerIP    string // mqops_broker_ip, else Addr
	BrokerName  string // "" when unset
	BrokerID    int    // -1 when unset
}

// In reports whether h belongs to group, directly or through children.
func (h *Host) In(group string) bool { return slices.Contains(h.Groups, group) }

// IsNamesrv reports whether h runs a name server.
func (h *Host) IsNamesrv() bool { return h.In(GroupNamesrv) }

// IsBroker reports whether h runs a broker.
func (h *Host) IsBroker() bool { return h.In(GroupBroker) }

// NamesrvAddr is where the host's name server is reached: ansible_host
// and mqops_namesrv_listen_port.
func (h *Host) NamesrvAddr() string { return net.JoinHostPort(h.Addr, strconv.Itoa(h.NamesrvPort)) }

// BrokerAddr is the address the host's broker registers:
// mqops_broker_ip and mqops_broker_listen_port.
func (h *Host) BrokerAddr() string { return net.JoinHostPort(h.BrokerIP, strconv.Itoa(h.BrokerPort)) }

// Load reads an inventory directory or file (see the package doc).
func Load(path string) (*Inventory, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	file, dir := path, filepath.Dir(path)
	if fi.IsDir() {
		dir = path
		if file, err = findHostsFile(path); err != nil {
			return nil, err
		}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	b := newBuilder()
	switch strings.ToLower(filepath.Ext(file)) {
	case ".yml", ".yaml", ".json":
		err = b.parseYAML(file, data)
	default:
		err = b.parseINI(file, data)
	}
	if err != nil {
		return nil, err
	}
	for _, name := range b.groupOrder {
		if b.groups[name].fileVars, err = readVarsFiles(filepath.Join(dir, "group_vars"), name); err != nil {
			return nil, err
		}
	}
	for _, name := range b.hostOrder {
		if b.hosts[name].fileVars, err = readVarsFiles(filepath.Join(dir, "host_vars"), name); err != nil {
			return nil, err
		}
	}
	inv := &Inventory{Path: path}
	if inv.Hosts, err = b.resolve(); err != nil {
		return nil, err
	}
	return inv, nil
}

// findHostsFile picks the one hosts file of an inventory directory.
func findHostsFile(dir string) (string, error) {
	var found []string
	for _, name := range []string{"hosts.yml", "hosts.yaml", "hosts.ini", "hosts"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("inventory %s: no hosts.yml, hosts.yaml, hosts.ini or hosts file", dir)
	case 1:
		return found[0], nil
	}
	// Ansible would merge them; one file per environment keeps the
	// rollout and mqadmin reading the same thing.
	return "", fmt.Errorf("inventory %s: several hosts files (%s); keep one", dir, strings.Join(found, ", "))
}

// readVarsFiles reads group_vars/<name> or host_vars/<name>: a .yml or
// .yaml file, an extension-less YAML file, or a directory of .yml/.yaml
// files read in name order, later files overriding earlier ones.
func readVarsFiles(base, name string) (map[string]Var, error) {
	var files []string
	for _, p := range []string{filepath.Join(base, name+".yml"), filepath.Join(base, name+".yaml")} {
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		}
	}
	p := filepath.Join(base, name)
	if fi, err := os.Stat(p); err == nil {
		if fi.IsDir() {
			entries, err := os.ReadDir(p)
			if err != nil {
				return nil, fmt.Errorf("inventory: %w", err)
			}
			for _, e := range entries {
				if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yml" || ext == ".yaml") {
					files = append(files, filepath.Join(p, e.Name()))
				}
			}
		} else {
			files = append(files, p)
		}
	}
	vars := map[string]Var{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("inventory: %w", err)
		}
		v, err := parseYAMLVarsFile(f, data)
		if err != nil {
			return nil, err
		}
		merge(vars, v)
	}
	return vars, nil
}

func merge(dst, src map[string]Var) {
	for k, v := range src {
		dst[k] = v
	}
}

// group is an inventory group under construction.
type group struct {
	name     string
	children []edge
	hosts    []string
	vars     map[string]Var // set in the inventory file
	fileVars map[string]Var // group_vars/<name>
}

// edge is a parent-to-child link and where the inventory made it.
type edge struct {
	child, pos string
}

type hostEntry struct {
	groups   []string       // direct groups
	vars     map[string]Var // set in the inventory file
	fileVars map[string]Var // host_vars/<name>
}

// builder collects groups and hosts while a file is parsed.
type builder struct {
	groups     map[string]*group
	groupOrder []string
	hosts      map[string]*hostEntry
	hostOrder  []string
}

func newBuilder() *builder {
	b := &builder{groups: map[string]*group{}, hosts: map[string]*hostEntry{}}
	b.group(GroupAll)
	return b
}

// group returns the named group, creating it on first mention.
func (b *builder) group(name string) *group {
	g := b.groups[name]
	if g == nil {
		g = &group{name: name, vars: map[string]Var{}}
		b.groups[name] = g
		b.groupOrder = append(b.groupOrder, name)
	}
	return g
}

// addHost puts a host into a group; variables of repeated mentions merge,
// later ones winning, as in Ansible.
func (b *builder) addHost(groupName, name string, vars map[string]Var) {
	h := b.hosts[name]
	if h == nil {
		h = &hostEntry{vars: map[string]Var{}}
		b.hosts[name] = h
		b.hostOrder = append(b.hostOrder, name)
	}
	if !slices.Contains(h.groups, groupName) {
		h.groups = append(h.groups, groupName)
		g := b.group(groupName)
		g.hosts = append(g.hosts, name)
	}
	merge(h.vars, vars)
}

func (b *builder) addChild(parent, child, pos string) {
	p := b.group(parent)
	b.group(child)
	if !slices.ContainsFunc(p.children, func(e edge) bool { return e.child == child }) {
		p.children = append(p.children, edge{child, pos})
	}
}

// resolve checks the group graph and computes every host's variables.
func (b *builder) resolve() ([]*Host, error) {
	parents := map[string][]string{}
	for _, name := range b.groupOrder {
		for _, e := range b.groups[name].children {
			if e.child == GroupAll {
				return nil, fmt.Errorf("%s: group all cannot be a child of %s", e.pos, name)
			}
			parents[e.child] = append(parents[e.child], name)
		}
	}
	if err := b.checkCycles(); err != nil {
		return nil, err
	}
	depth := map[string]int{GroupAll: 0}
	var depthOf func(string) int
	depthOf = func(g string) int {
		if d, ok := depth[g]; ok {
			return d
		}
		d := 1 // a group without parents is a child of all
		for _, p := range parents[g] {
			d = max(d, depthOf(p)+1)
		}
		depth[g] = d
		return d
	}
	for _, sub := range []string{GroupBrokerMaster, GroupBrokerSlave} {
		if _, ok := b.groups[sub]; ok && !b.isAncestor(GroupBroker, sub, parents) {
			return nil, fmt.Errorf("inventory: group %s must be a child of %s (add it under [%s:children] or %s.children)",
				sub, GroupBroker, GroupBroker, GroupBroker)
		}
	}
	hosts := make([]*Host, 0, len(b.hostOrder))
	for _, name := range b.hostOrder {
		e := b.hosts[name]
		in := map[string]bool{GroupAll: true}
		var walk func(string)
		walk = func(g string) {
			if !in[g] {
				in[g] = true
				for _, p := range parents[g] {
					walk(p)
				}
			}
		}
		for _, g := range e.groups {
			walk(g)
		}
		groups := make([]string, 0, len(in))
		for g := range in {
			groups = append(groups, g)
		}
		slices.SortFunc(groups, func(a, c string) int {
			if da, dc := depthOf(a), depthOf(c); da != dc {
				return da - dc
			}
			return strings.Compare(a, c)
		})
		// Ansible's order: inventory-file group vars, group_vars/all,
		// other group_vars, inventory-file host vars, host_vars.
		vars := map[string]Var{}
		for _, g := range groups {
			merge(vars, b.groups[g].vars)
		}
		merge(vars, b.groups[GroupAll].fileVars)
		for _, g := range groups[1:] {
			merge(vars, b.groups[g].fileVars)
		}
		merge(vars, e.vars)
		merge(vars, e.fileVars)
		h := &Host{Name: name, Groups: groups, Vars: vars}
		if err := h.settings(); err != nil {
			return nil, fmt.Errorf("host %s: %w", name, err)
		}
		hosts = append(hosts, h)
	}
	return hosts, nil
}

func (b *builder) isAncestor(anc, g string, parents map[string][]string) bool {
	for _, p := range parents[g] {
		if p == anc || b.isAncestor(anc, p, parents) {
			return true
		}
	}
	return false
}

// checkCycles rejects a group that is its own descendant, which would
// make its depth (and so the variable precedence) undefined.
func (b *builder) checkCycles() error {
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var visit func(string, []string) error
	visit = func(g string, path []string) error {
		state[g] = active
		for _, e := range b.groups[g].children {
			switch state[e.child] {
			case active:
				return fmt.Errorf("%s: groups form a cycle: %s", e.pos, strings.Join(append(path, g, e.child), " -> "))
			case unseen:
				if err := visit(e.child, append(path, g)); err != nil {
					return err
				}
			}
		}
		state[g] = done
		return nil
	}
	for _, g := range b.groupOrder {
		if state[g] == unseen {
			if err := visit(g, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// settings reads the contract's variables into h's fields.
func (h *Host) settings() error {
	var err error
	if h.Addr, err = h.str("ansible_host", h.Name); err != nil {
		return err
	}
	if strings.ContainsAny(h.Addr, " \t") {
		return h.bad("ansible_host", "want a host name or address")
	}
	if h.User, err = h.str("ansible_user", ""); err != nil {
		return err
	}
	for _, p := range []struct {
		dst *int
		key string
		def int
	}{{&h.Port, "ansible_port", DefaultSSHPort}, {&h.BrokerPort, "mqops_broker_listen_port", DefaultBrokerPort},
		{&h.NamesrvPort, "mqops_namesrv_listen_port", DefaultNamesrvPort}} {
		if *p.dst, err = h.num(p.key, p.def, 1, 65535, "a port number (1-65535)"); err != nil {
			return err
		}
	}
	for _, d := range []struct {
		dst      *string
		key, def string
	}{{&h.BinDir, "mqops_bin_dir", DefaultBinDir}, {&h.LogDir, "mqops_log_dir", DefaultLogDir},
		{&h.StoreDir, "mqops_broker_store_dir", DefaultStoreDir}} {
		if *d.dst, err = h.str(d.key, d.def); err != nil {
			return err
		}
		if !strings.HasPrefix(*d.dst, "/") {
			return h.bad(d.key, "want an absolute path")
		}
	}
	if h.BrokerIP, err = h.str("mqops_broker_ip", h.Addr); err != nil {
		return err
	}
	if h.BrokerName, err = h.str("mqops_broker_name", ""); err != nil {
		return err
	}
	h.BrokerID, err = h.num("mqops_broker_id", -1, 0, 1<<31-1, "a broker id (0 for a master)")
	return err
}

// str returns a variable usable as a literal string, or def when unset.
func (h *Host) str(key, def string) (string, error) {
	v, ok := h.Vars[key]
	switch {
	case !ok || v.Value == "" && v.unusable == "":
		return def, nil
	case v.unusable != "":
		return "", fmt.Errorf("%s: %s is %s, which mqadmin cannot use", v.Pos, key, v.unusable)
	case strings.Contains(v.Value, "{{") || strings.Contains(v.Value, "{%"):
		// mqadmin reads the inventory without Ansible, so it cannot
		// render what the rollout would.
		return "", fmt.Errorf("%s: %s = %q: Jinja2 templates are not supported here; use a literal value", v.Pos, key, v.Value)
	}
	return v.Value, nil
}

func (h *Host) num(key string, def, lo, hi int, want string) (int, error) {
	s, err := h.str(key, "")
	if err != nil || s == "" {
		return def, err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, h.bad(key, "want "+want)
	}
	return n, nil
}

// bad reports an unusable value at its definition; a default is never
// bad, except ansible_host taken from a host name with blanks in it.
func (h *Host) bad(key, want string) error {
	v, ok := h.Vars[key]
	if !ok {
		return fmt.Errorf("%s defaults to the host name %q: %s", key, h.Name, want)
	}
	return fmt.Errorf("%s: %s = %q: %s", v.Pos, key, v.Value, want)
}
