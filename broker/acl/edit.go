package acl

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/mqops/mqops/atomicfile"
	"github.com/mqops/mqops/wire"
	"go.yaml.in/yaml/v3"
)

// The ACL admin codes change the rules through the watcher: each change
// edits one rules file (comments and key order kept), checks the whole
// new rule set, writes the file atomically (temp file, fsync, rename,
// directory fsync) with its dataVersion bumped, and only then puts the
// new rules in force, all under the watcher's lock so that its poll
// neither reloads the change a second time nor interleaves with it.
// Like apache/rocketmq 4.9's acl/src/main/java/org/apache/rocketmq/acl/
// plain/PlainPermissionManager.java (updateAccessConfig,
// deleteAccessConfig, updateGlobalWhiteAddrsConfig), an existing account
// is edited in the file that holds it and a new one goes to the default
// file; unlike it, a change that fails keeps the rules in force, and (as
// 4.9.0-4.9.2, not 4.9.3+) an update need not repeat the secret.

// ErrInvalid marks a refused change (bad input, unknown account): the
// request was wrong, nothing was written.
var ErrInvalid = errors.New("invalid ACL change")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// checkAccessKey applies Java's rule (longer than 6 characters) and
// refuses white space and control characters, which no client can sign.
func checkAccessKey(ak string) error {
	if len(ak) < minKeyLen {
		return invalid("accessKey %q must be longer than 6 characters", ak)
	}
	if i := strings.IndexFunc(ak, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
		return invalid("accessKey %q must not contain white space or control characters", ak)
	}
	return nil
}

// CheckAccount checks code 50's fields one by one, naming the field at
// fault; the secret never appears in a message.
func CheckAccount(ch *wire.ACLAccount) error {
	if err := checkAccessKey(ch.AccessKey); err != nil {
		return err
	}
	if ch.SecretKey != "" {
		if len(ch.SecretKey) < minKeyLen {
			return invalid("secretKey of accessKey %s must be longer than 6 characters", ch.AccessKey)
		}
		if strings.ContainsFunc(ch.SecretKey, unicode.IsControl) {
			return invalid("secretKey of accessKey %s must not contain control characters", ch.AccessKey)
		}
	}
	if _, err := parseAddrPattern(ch.WhiteRemoteAddress); err != nil {
		return invalid("whiteRemoteAddress: %v", err)
	}
	for _, f := range []struct{ name, v string }{{"defaultTopicPerm", ch.DefaultTopicPerm}, {"defaultGroupPerm", ch.DefaultGroupPerm}} {
		if f.v == "" {
			continue
		}
		if _, err := ParsePerm(f.v); err != nil {
			return invalid("%s: %v", f.name, err)
		}
	}
	for _, f := range []struct {
		name string
		v    []string
	}{{"topicPerms", ch.TopicPerms}, {"groupPerms", ch.GroupPerms}} {
		for _, e := range f.v {
			name, perm, ok := strings.Cut(e, "=")
			if !ok || strings.TrimSpace(name) == "" {
				return invalid("%s entry %q is not name=PERM", f.name, e)
			}
			if _, err := ParsePerm(strings.TrimSpace(perm)); err != nil {
				return invalid("%s entry %q: %v", f.name, e, err)
			}
		}
	}
	for _, f := range []struct {
		name string
		v    *int64
	}{{"produceTps", ch.ProduceTPS}, {"produceBps", ch.ProduceBPS}} {
		if f.v != nil && *f.v < 0 {
			return invalid("%s: %d is below 0", f.name, *f.v)
		}
	}
	return nil
}

// Change is the outcome of a successful change.
type Change struct {
	File        string
	DataVersion wire.DataVersion
	Created     bool // UpdateAccount made a new account
}

// UpdateAccount creates or updates an account.
func (w *Watcher) UpdateAccount(ch wire.ACLAccount) (Change, error) {
	if err := CheckAccount(&ch); err != nil {
		return Change{}, err
	}
	var created bool
	res, err := w.edit(func(s *Snapshot) string {
		if a := s.Accounts[ch.AccessKey]; a != nil {
			return a.File
		}
		return ""
	}, func(root *yaml.Node) error {
		var err error
		created, err = upsertAccount(root, &ch)
		return err
	})
	res.Created = created
	return res, err
}

// DeleteAccount removes an account from the file that holds it.
func (w *Watcher) DeleteAccount(ak string) (Change, error) {
	if ak == "" {
		return Change{}, invalid("accessKey is empty")
	}
	missing := false
	res, err := w.edit(func(s *Snapshot) string {
		if a := s.Accounts[ak]; a != nil {
			return a.File
		}
		missing = true
		return ""
	}, func(root *yaml.Node) error {
		if missing || !deleteAccount(root, ak) {
			return invalid("no account with accessKey %s", ak)
		}
		return nil
	})
	return res, err
}

// SetGlobalWhite replaces the global white list of one rules file: file
// when given (one of the loaded files, as Java 4.9.3+ requires it to be
// under ROCKETMQ_HOME), else the default file. The daemon's list is the
// union over the files.
func (w *Watcher) SetGlobalWhite(addrs []string, file string) (Change, error) {
	for _, a := range addrs {
		if _, err := parseAddrPattern(a); err != nil {
			return Change{}, invalid("globalWhiteAddrs: %v", err)
		}
	}
	return w.edit(func(s *Snapshot) string { return file }, func(root *yaml.Node) error {
		setKey(root, "globalWhiteRemoteAddresses", strSeq(addrs))
		return nil
	})
}

// edit applies change to the file target picks ("" = the default file)
// and puts the result in force; see the comment at the top of the file.
func (w *Watcher) edit(target func(*Snapshot) string, change func(root *yaml.Node) error) (Change, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	files, err := Files(w.src.AclFile, w.src.ConfDir)
	if err != nil {
		return Change{}, err
	}
	optional := ""
	if w.src.AclFile == "" {
		optional = files[0]
	}
	file := target(w.checker.Rules())
	if file == "" {
		file = files[0]
	} else if !slices.Contains(files, file) {
		return Change{}, invalid("%s is not one of the rules files (%s)", file, strings.Join(files, ", "))
	}
	old, err := os.ReadFile(file)
	if err != nil && !(errors.Is(err, fs.ErrNotExist) && file == optional) {
		return Change{}, fmt.Errorf("read %s: %w", file, err)
	}
	root, doc, err := editable(file, old)
	if err != nil {
		return Change{}, err
	}
	if err := change(root); err != nil {
		return Change{}, err
	}
	dv := readDataVersion(root)
	dv.Counter++
	dv.Timestamp = time.Now().UnixMilli()
	setKey(root, "dataVersion", dataVersionNode(dv))
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return Change{}, fmt.Errorf("encode %s: %w", file, err)
	}
	_ = enc.Close()
	data := buf.Bytes()
	s, stamps, err := readAllWith(files, optional, file, data)
	if err != nil {
		// Another file may be the broken one (edited, not yet reloaded).
		return Change{}, fmt.Errorf("%w: with this change the rules files would not load: %v", ErrInvalid, err)
	}
	// A new file holds secrets: owner-only. An existing one keeps its mode.
	if err := atomicfile.Write(file, data, atomicfile.Options{Mode: 0o600}); err != nil {
		return Change{}, fmt.Errorf("write %s (rules in force unchanged): %w", file, err)
	}
	st, err := os.Stat(file)
	if err != nil {
		return Change{}, fmt.Errorf("stat %s after writing it: %w", file, err)
	}
	for i := range stamps {
		if stamps[i].path == file {
			stamps[i].mtime = st.ModTime().UnixNano()
		}
	}
	w.lastErr = ""
	w.version++
	s.Version = w.version
	w.stamps = stamps
	w.checker.Swap(s)
	w.audit.Loaded(s)
	if w.log != nil {
		w.log.Info(fmt.Sprintf("[ACL] rules changed through the admin codes: version=%d accounts=%d whiteList=%d", s.Version, len(s.Accounts), len(s.GlobalWhite)), "file", file, "dataVersion", dv.Counter)
	}
	return Change{File: file, DataVersion: dv}, nil
}

// editable parses a rules file into a document whose root is a mapping.
func editable(file string, data []byte) (root, doc *yaml.Node, err error) {
	doc = &yaml.Node{}
	if err := yaml.Unmarshal(data, doc); err != nil {
		return nil, nil, fmt.Errorf("%s does not parse, fix it first: %w", file, err)
	}
	if len(doc.Content) == 0 {
		doc = &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
	}
	root = doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		*root = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	if root.Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("%s: the top level must be a mapping", file)
	}
	return root, doc, nil
}

func get(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// setKey sets key in mapping m, in place when present (keeping its
// comments), else appended.
func setKey(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v.HeadComment, v.LineComment, v.FootComment = m.Content[i+1].HeadComment, m.Content[i+1].LineComment, m.Content[i+1].FootComment
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, str(key), v)
}

func delKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = slices.Delete(m.Content, i, i+2)
			return
		}
	}
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func strSeq(items []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, it := range items {
		n.Content = append(n.Content, str(it))
	}
	return n
}

func intNode(v int64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v, 10)}
}

func readDataVersion(root *yaml.Node) wire.DataVersion {
	var dv wire.DataVersion
	v := get(root, "dataVersion")
	if v == nil || v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
		return dv
	}
	if n := get(v.Content[0], "counter"); n != nil {
		dv.Counter, _ = strconv.ParseInt(n.Value, 10, 64)
	}
	return dv
}

// dataVersionNode is Java's layout: dataVersion: [{counter, timestamp}].
func dataVersionNode(dv wire.DataVersion) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
		str("counter"), intNode(dv.Counter), str("timestamp"), intNode(dv.Timestamp)}}
	return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{m}}
}

func findAccount(root *yaml.Node, ak string) (seq *yaml.Node, idx int) {
	seq = get(root, "accounts")
	if seq == nil || seq.Kind != yaml.SequenceNode {
		return seq, -1
	}
	for i, it := range seq.Content {
		if it.Kind == yaml.MappingNode {
			if k := get(it, "accessKey"); k != nil && k.Value == ak {
				return seq, i
			}
		}
	}
	return seq, -1
}

// upsertAccount edits the account in place, or appends a new one (which
// must then have a secret).
func upsertAccount(root *yaml.Node, ch *wire.ACLAccount) (created bool, err error) {
	seq, i := findAccount(root, ch.AccessKey)
	var acc *yaml.Node
	if i >= 0 {
		acc = seq.Content[i]
	} else {
		if ch.SecretKey == "" {
			return false, invalid("secretKey is required to create account %s", ch.AccessKey)
		}
		if seq == nil || seq.Kind != yaml.SequenceNode {
			seq = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			setKey(root, "accounts", seq)
		}
		acc = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		setKey(acc, "accessKey", str(ch.AccessKey))
		seq.Content = append(seq.Content, acc)
		created = true
	}
	set := func(key, v string) {
		if v != "" {
			setKey(acc, key, str(v))
		}
	}
	set("secretKey", ch.SecretKey)
	set("whiteRemoteAddress", ch.WhiteRemoteAddress)
	if ch.Admin != nil {
		setKey(acc, "admin", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(*ch.Admin)})
	} else if created {
		setKey(acc, "admin", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "false"})
	}
	set("defaultTopicPerm", ch.DefaultTopicPerm)
	set("defaultGroupPerm", ch.DefaultGroupPerm)
	if len(ch.TopicPerms) > 0 {
		setKey(acc, "topicPerms", strSeq(ch.TopicPerms))
	}
	if len(ch.GroupPerms) > 0 {
		setKey(acc, "groupPerms", strSeq(ch.GroupPerms))
	}
	for _, q := range []struct {
		key string
		v   *int64
	}{{"produceTps", ch.ProduceTPS}, {"produceBps", ch.ProduceBPS}} {
		switch {
		case q.v == nil:
		case *q.v == 0:
			delKey(acc, q.key)
		default:
			setKey(acc, q.key, intNode(*q.v))
		}
	}
	return created, nil
}

func deleteAccount(root *yaml.Node, ak string) bool {
	seq, i := findAccount(root, ak)
	if i < 0 {
		return false
	}
	seq.Content = slices.Delete(seq.Content, i, i+1)
	return true
}

// Config is the account as code 54 reports it; the secret only when
// withSecret.
func (a *Account) Config(withSecret bool) wire.PlainAccessConfig {
	c := wire.PlainAccessConfig{
		AccessKey: a.AccessKey, Admin: a.Admin,
		DefaultTopicPerm: a.DefaultTopic.String(), DefaultGroupPerm: a.DefaultGroup.String(),
		TopicPerms: permList(a.Topics), GroupPerms: permList(a.Groups),
		ProduceTPS: a.ProduceTPS, ProduceBPS: a.ProduceBPS,
	}
	if withSecret {
		c.SecretKey = string(a.secret)
	}
	if a.white != nil {
		c.WhiteRemoteAddress = a.white.src
	}
	return c
}

func permList(m map[string]Perm) []string {
	out := make([]string, 0, len(m))
	for k, p := range m {
		out = append(out, k+"="+p.String())
	}
	slices.Sort(out)
	return out
}

// Config is the rules as code 54 reports them: accounts in file order.
func (s *Snapshot) Config(withSecret bool) wire.ACLConfigBody {
	body := wire.ACLConfigBody{GlobalWhiteAddrs: []string{}, PlainAccessConfigs: []wire.PlainAccessConfig{}}
	for _, p := range s.GlobalWhite {
		body.GlobalWhiteAddrs = append(body.GlobalWhiteAddrs, p.src)
	}
	accs := make([]*Account, 0, len(s.Accounts))
	for _, a := range s.Accounts {
		accs = append(accs, a)
	}
	fileIdx := func(f string) int { return slices.Index(s.Files, f) }
	slices.SortFunc(accs, func(x, y *Account) int {
		if d := fileIdx(x.File) - fileIdx(y.File); d != 0 {
			return d
		}
		return x.Line - y.Line
	})
	for _, a := range accs {
		body.PlainAccessConfigs = append(body.PlainAccessConfigs, a.Config(withSecret))
	}
	return body
}
