package acl

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mqops/mqops/wire"
	"go.yaml.in/yaml/v3"
)

// fileError is a problem in one rules file, at a line when known.
type fileError struct {
	file string
	line int
	msg  string
}

func (e *fileError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.file, e.line, e.msg)
	}
	return fmt.Sprintf("%s: %s", e.file, e.msg)
}

// Account is one accounts[] entry.
type Account struct {
	AccessKey    string
	secret       []byte
	Admin        bool
	DefaultTopic Perm
	DefaultGroup Perm
	Topics       map[string]Perm
	Groups       map[string]Perm // by group name (Java keys them by %RETRY%group)
	white        *addrPattern
	File         string
	Line         int
	// ProduceTPS and ProduceBPS (produceTps, produceBps: mqops keys) are
	// the account's produce quota on each broker, messages and body bytes
	// per second; 0 is no limit.
	ProduceTPS int64
	ProduceBPS int64

	// key is secret's HMAC key blocks, hashed once.
	key wire.SigningKey
}

// Snapshot is one immutable set of rules: every file parsed and checked.
type Snapshot struct {
	Accounts    map[string]*Account
	GlobalWhite []*addrPattern
	Files       []string
	Version     int64 // counts successful loads
	// DataVersions is each file's dataVersion, which the ACL admin codes
	// bump (a file without one: counter 0 at its modification time).
	DataVersions map[string]wire.DataVersion
}

// minKeyLen: Java refuses keys of 6 characters or fewer
// (PlainPermissionManager.checkPlainAccessConfig).
const minKeyLen = 7

var (
	topKeys     = []string{"globalWhiteRemoteAddresses", "accounts", "dataVersion"}
	accountKeys = []string{"accessKey", "secretKey", "whiteRemoteAddress", "admin", "defaultTopicPerm", "defaultGroupPerm", "topicPerms", "groupPerms", "produceTps", "produceBps"}
)

// parseFile reads one plain_acl.yml into s. Every error names file and line.
func parseFile(path string, data []byte, s *Snapshot, owner map[string]string) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// yaml.v3 says "yaml: line N: ...".
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if _, err := fmt.Sscanf(msg, "line %d:", &line); err == nil {
			msg = strings.TrimSpace(msg[strings.IndexByte(msg, ':')+1:])
		}
		return &fileError{path, line, msg}
	}
	if len(doc.Content) == 0 {
		return nil // empty file: no rules (Java creates the default file empty)
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return &fileError{path, root.Line, "the top level must be a mapping"}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "globalWhiteRemoteAddresses":
			items, err := seq(path, k.Value, v)
			if err != nil {
				return err
			}
			for _, it := range items {
				p, err := parseAddrPattern(it.Value)
				if err != nil {
					return &fileError{path, it.Line, err.Error()}
				}
				if p != nil {
					s.GlobalWhite = append(s.GlobalWhite, p)
				}
			}
		case "accounts":
			items, err := seq(path, k.Value, v)
			if err != nil {
				return err
			}
			for _, it := range items {
				a, err := parseAccount(path, it)
				if err != nil {
					return err
				}
				if prev, ok := owner[a.AccessKey]; ok {
					return &fileError{path, a.Line, fmt.Sprintf("accessKey %s is already defined at %s", a.AccessKey, prev)}
				}
				owner[a.AccessKey] = fmt.Sprintf("%s:%d", path, a.Line)
				s.Accounts[a.AccessKey] = a
			}
		case "dataVersion":
			// Written by the ACL admin codes (Java's and ours); no rule.
			dv, err := parseDataVersion(path, v)
			if err != nil {
				return err
			}
			if s.DataVersions == nil {
				s.DataVersions = map[string]wire.DataVersion{}
			}
			s.DataVersions[path] = dv
		default:
			return &fileError{path, k.Line, fmt.Sprintf("unknown key %q (known: %s)", k.Value, strings.Join(topKeys, ", "))}
		}
	}
	return nil
}

// seq returns the items of a list value; a missing value is an empty list.
func seq(path, key string, v *yaml.Node) ([]*yaml.Node, error) {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil, nil
	}
	if v.Kind != yaml.SequenceNode {
		return nil, &fileError{path, v.Line, key + " must be a list"}
	}
	for _, it := range v.Content {
		if key != "accounts" && it.Kind != yaml.ScalarNode {
			return nil, &fileError{path, it.Line, key + " entries must be strings"}
		}
	}
	return v.Content, nil
}

func parseAccount(path string, n *yaml.Node) (*Account, error) {
	if n.Kind != yaml.MappingNode {
		return nil, &fileError{path, n.Line, "an account must be a mapping"}
	}
	a := &Account{DefaultTopic: Deny, DefaultGroup: Deny, Topics: map[string]Perm{}, Groups: map[string]Perm{}, File: path, Line: n.Line}
	var secret string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		scalar := func() (string, error) {
			if v.Kind != yaml.ScalarNode {
				return "", &fileError{path, v.Line, k.Value + " must be a single value"}
			}
			if v.Tag == "!!null" {
				return "", nil
			}
			return v.Value, nil // the literal text: secretKey: 12345678 stays "12345678"
		}
		var err error
		var s string
		switch k.Value {
		case "accessKey":
			a.AccessKey, err = scalar()
		case "secretKey":
			secret, err = scalar()
		case "whiteRemoteAddress":
			if s, err = scalar(); err == nil {
				if a.white, err = parseAddrPattern(s); err != nil {
					err = &fileError{path, v.Line, err.Error()}
				}
			}
		case "admin":
			if s, err = scalar(); err == nil {
				switch strings.ToLower(s) {
				case "true":
					a.Admin = true
				case "false", "":
				default:
					err = &fileError{path, v.Line, fmt.Sprintf("admin: %q is not true or false", s)}
				}
			}
		case "defaultTopicPerm", "defaultGroupPerm":
			if s, err = scalar(); err == nil && s != "" {
				var p Perm
				if p, err = ParsePerm(s); err != nil {
					err = &fileError{path, v.Line, k.Value + ": " + err.Error()}
				} else if k.Value == "defaultTopicPerm" {
					a.DefaultTopic = p
				} else {
					a.DefaultGroup = p
				}
			}
		case "produceTps", "produceBps":
			if s, err = scalar(); err == nil && s != "" {
				n, perr := strconv.ParseInt(s, 10, 64)
				switch {
				case perr != nil || n < 0:
					err = &fileError{path, v.Line, fmt.Sprintf("%s: %q is not a whole number >= 0", k.Value, s)}
				case k.Value == "produceTps":
					a.ProduceTPS = n
				default:
					a.ProduceBPS = n
				}
			}
		case "topicPerms", "groupPerms":
			var items []*yaml.Node
			if items, err = seq(path, k.Value, v); err == nil {
				dst := a.Topics
				if k.Value == "groupPerms" {
					dst = a.Groups
				}
				for _, it := range items {
					name, perm, ok := strings.Cut(it.Value, "=")
					if !ok || strings.Contains(perm, "=") || strings.TrimSpace(name) == "" {
						return nil, &fileError{path, it.Line, fmt.Sprintf("%s entry %q is not name=PERM", k.Value, it.Value)}
					}
					p, perr := ParsePerm(strings.TrimSpace(perm))
					if perr != nil {
						return nil, &fileError{path, it.Line, perr.Error()}
					}
					dst[strings.TrimSpace(name)] = p
				}
			}
		default:
			err = &fileError{path, k.Line, fmt.Sprintf("unknown account key %q (known: %s)", k.Value, strings.Join(accountKeys, ", "))}
		}
		if err != nil {
			var fe *fileError
			if errors.As(err, &fe) {
				return nil, err
			}
			return nil, &fileError{path, v.Line, err.Error()}
		}
	}
	// Unlike Java's message, this one never shows the secret.
	if len(a.AccessKey) < minKeyLen {
		return nil, &fileError{path, n.Line, fmt.Sprintf("accessKey %q must be longer than 6 characters", a.AccessKey)}
	}
	if len(secret) < minKeyLen {
		return nil, &fileError{path, n.Line, fmt.Sprintf("secretKey of accessKey %s must be longer than 6 characters", a.AccessKey)}
	}
	a.secret = []byte(secret)
	a.key = wire.NewSigningKey(a.secret)
	return a, nil
}

// parseDataVersion reads Java's dataVersion: [{counter: N, timestamp: T}].
func parseDataVersion(path string, v *yaml.Node) (wire.DataVersion, error) {
	var dv wire.DataVersion
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return dv, nil
	}
	if v.Kind != yaml.SequenceNode || len(v.Content) == 0 || v.Content[0].Kind != yaml.MappingNode {
		return dv, &fileError{path, v.Line, "dataVersion must be a list holding {counter, timestamp}"}
	}
	m := v.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, val := m.Content[i], m.Content[i+1]
		n, err := strconv.ParseInt(val.Value, 10, 64)
		if err != nil && (k.Value == "counter" || k.Value == "timestamp") {
			return dv, &fileError{path, val.Line, fmt.Sprintf("dataVersion %s: %q is not a number", k.Value, val.Value)}
		}
		switch k.Value {
		case "counter":
			dv.Counter = n
		case "timestamp":
			dv.Timestamp = n
		}
	}
	return dv, nil
}

// fileStamp is what the watcher compares to notice an edit.
type fileStamp struct {
	path  string
	mtime int64
	size  int64
	sum   [32]byte
}

// Files lists the rules files: aclFile alone when set, else
// dir/plain_acl.yml plus every *.yml and *.yaml below dir/acl (Java's
// PlainPermissionManager; tools.yml, mqadmin's credentials, is skipped).
func Files(aclFile, confDir string) ([]string, error) {
	if aclFile != "" {
		return []string{aclFile}, nil
	}
	out := []string{filepath.Join(confDir, "plain_acl.yml")}
	var extra []string
	err := filepath.WalkDir(filepath.Join(confDir, "acl"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipDir
			}
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) && d.Name() != "tools.yml" {
			extra = append(extra, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", filepath.Join(confDir, "acl"), err)
	}
	slices.Sort(extra)
	return append(out, extra...), nil
}

// readAll reads and parses files into a new snapshot, with their stamps.
// A missing file is an error except optional, the default plain_acl.yml.
func readAll(files []string, optional string) (*Snapshot, []fileStamp, error) {
	return readAllWith(files, optional, "", nil)
}

// readAllWith is readAll with the content of file over taken as over, not
// read: an update checks the rules it is about to write. Its stamp has
// the content's size and hash but no mtime, which the caller sets once
// the content is on disk.
func readAllWith(files []string, optional, over string, overData []byte) (*Snapshot, []fileStamp, error) {
	s := &Snapshot{Accounts: map[string]*Account{}, Files: files, DataVersions: map[string]wire.DataVersion{}}
	owner := map[string]string{}
	stamps := make([]fileStamp, 0, len(files))
	for _, f := range files {
		if f == over {
			stamps = append(stamps, fileStamp{path: f, size: int64(len(overData)), sum: sha256.Sum256(overData)})
			if err := parseFile(f, overData, s, owner); err != nil {
				return nil, nil, err
			}
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && f == optional {
				stamps = append(stamps, fileStamp{path: f, mtime: -1})
				continue
			}
			return nil, nil, fmt.Errorf("read acl file: %w", err)
		}
		st, err := os.Stat(f)
		if err != nil {
			return nil, nil, fmt.Errorf("read acl file: %w", err)
		}
		stamps = append(stamps, fileStamp{path: f, mtime: st.ModTime().UnixNano(), size: st.Size(), sum: sha256.Sum256(data)})
		if err := parseFile(f, data, s, owner); err != nil {
			return nil, nil, err
		}
		if _, ok := s.DataVersions[f]; !ok {
			s.DataVersions[f] = wire.DataVersion{Timestamp: st.ModTime().UnixMilli()}
		}
	}
	return s, stamps, nil
}
