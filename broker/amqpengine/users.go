package amqpengine

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/mqops/mqops/atomicfile"
	"github.com/mqops/mqops/wire"
)

// users is RabbitMQ's internal user database: users with a salted SHA-256
// password hash and tags, and per vhost the configure/write/read regular
// expressions (rabbitmq-server deps/rabbit/src/rabbit_auth_backend_internal.erl).
// It is one file beside the vhosts' directory, written whole on every
// change; a failed write is sticky like a vhost's.
//
// Without a file the database holds RabbitMQ's default user guest/guest
// with every permission on "/" (the gateway lets it in from loopback only,
// loopbackUsers).
type users struct {
	path string

	mu     sync.RWMutex
	byName map[string]*user
	failed error
}

type user struct {
	Name         string                         `json:"name"`
	PasswordHash string                         `json:"password_hash"`
	Tags         []string                       `json:"tags,omitempty"`
	Permissions  map[string]wire.AMQPPermission `json:"permissions,omitempty"`
}

type usersFile struct {
	Users []*user `json:"users"`
}

func loadUsers(path string) (*users, error) {
	u := &users{path: path, byName: map[string]*user{}}
	loaded := false
	_, err := atomicfile.Load(path, func(b []byte) error {
		var f usersFile
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return err
		}
		byName := map[string]*user{}
		for _, x := range f.Users {
			if x.Name == "" || byName[x.Name] != nil {
				return fmt.Errorf("user %q: empty or duplicate name", x.Name)
			}
			if _, err := base64.StdEncoding.DecodeString(x.PasswordHash); err != nil {
				return fmt.Errorf("user %q: password_hash: %w", x.Name, err)
			}
			byName[x.Name] = x
		}
		u.byName, loaded = byName, true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("amqp users: %w", err)
	}
	if !loaded {
		u.byName["guest"] = &user{Name: "guest", PasswordHash: hashPassword("guest"), Tags: []string{"administrator"},
			Permissions: map[string]wire.AMQPPermission{DefaultVhost: {Configure: ".*", Write: ".*", Read: ".*"}}}
	}
	return u, nil
}

// hashPassword is rabbit_password_hashing_sha256: base64 of a 4-byte salt
// followed by SHA-256(salt ++ password), so hashes move between RabbitMQ
// definitions and mqops both ways.
func hashPassword(password string) string {
	var salt [4]byte
	_, _ = rand.Read(salt[:])
	return encodeHash(salt[:], password)
}

func encodeHash(salt []byte, password string) string {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(password))
	return base64.StdEncoding.EncodeToString(h.Sum(append([]byte(nil), salt...)))
}

func checkPassword(hash, password string) bool {
	raw, err := base64.StdEncoding.DecodeString(hash)
	if err != nil || len(raw) != 4+sha256.Size {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(encodeHash(raw[:4], password)), []byte(hash)) == 1
}

func (x *user) access() wire.AMQPUserAccess {
	a := wire.AMQPUserAccess{User: x.Name, Tags: slices.Clone(x.Tags)}
	if len(x.Permissions) > 0 {
		a.Permissions = make(map[string]wire.AMQPPermission, len(x.Permissions))
		for v, p := range x.Permissions {
			a.Permissions[v] = p
		}
	}
	return a
}

// Authenticate checks a login; a wrong password and an unknown user are
// the same refusal, as in RabbitMQ.
func (e *Engine) Authenticate(name, password string) (wire.AMQPUserAccess, error) {
	e.users.mu.RLock()
	defer e.users.mu.RUnlock()
	x := e.users.byName[name]
	if x == nil || !checkPassword(x.PasswordHash, password) {
		return wire.AMQPUserAccess{}, errorf(AccessRefused, "Login was refused for user '%s'", name)
	}
	return x.access(), nil
}

// ListUsers returns every user with tags and permissions, sorted by name,
// and with hashes their password hashes.
func (e *Engine) ListUsers(hashes bool) []wire.AMQPUserAccess {
	e.users.mu.RLock()
	defer e.users.mu.RUnlock()
	out := make([]wire.AMQPUserAccess, 0, len(e.users.byName))
	for _, x := range e.users.byName {
		a := x.access()
		if hashes {
			a.PasswordHash = x.PasswordHash
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].User < out[j].User })
	return out
}

// PutUser adds a user or changes an existing one's password and tags.
func (e *Engine) PutUser(p wire.AMQPUserPut) error {
	if p.User == "" || len(p.User) > 255 {
		return errorf(PreconditionFailed, "user name must be 1..255 bytes")
	}
	if p.Password != "" && p.PasswordHash != "" {
		return errorf(PreconditionFailed, "give a password or a password hash, not both")
	}
	if p.PasswordHash != "" {
		if raw, err := base64.StdEncoding.DecodeString(p.PasswordHash); err != nil || len(raw) != 4+sha256.Size {
			return errorf(PreconditionFailed, "password hash is not a base64 salted SHA-256 hash (RabbitMQ's rabbit_password_hashing_sha256)")
		}
	}
	u := e.users
	u.mu.Lock()
	defer u.mu.Unlock()
	x := u.byName[p.User]
	if x == nil {
		if p.Password == "" && p.PasswordHash == "" {
			return errorf(PreconditionFailed, "a new user needs a password")
		}
		x = &user{Name: p.User}
	} else {
		x = &user{Name: x.Name, PasswordHash: x.PasswordHash, Tags: x.Tags, Permissions: x.Permissions}
	}
	switch {
	case p.Password != "":
		x.PasswordHash = hashPassword(p.Password)
	case p.PasswordHash != "":
		x.PasswordHash = p.PasswordHash
	}
	if p.Tags != nil {
		x.Tags = slices.Clone(p.Tags)
	}
	return u.commit(func(m map[string]*user) { m[x.Name] = x })
}

// DeleteUser removes a user; its open connections stay open, as in
// RabbitMQ before it closes them.
func (e *Engine) DeleteUser(name string) error {
	u := e.users
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.byName[name] == nil {
		return errorf(NotFound, "no user '%s'", name)
	}
	return u.commit(func(m map[string]*user) { delete(m, name) })
}

// SetPermissions sets (clear=false) or removes a user's permissions in
// one vhost; each expression must compile.
func (e *Engine) SetPermissions(p wire.AMQPPermissionSet, clear bool) error {
	if !clear {
		for what, re := range map[string]string{"configure": p.Configure, "write": p.Write, "read": p.Read} {
			if _, err := regexp.Compile(re); err != nil {
				return errorf(PreconditionFailed, "%s permission %q is not a regular expression: %v", what, re, err)
			}
		}
		if _, err := e.Vhost(p.Vhost); err != nil {
			return errorf(NotFound, "no vhost '%s'", p.Vhost)
		}
	}
	u := e.users
	u.mu.Lock()
	defer u.mu.Unlock()
	old := u.byName[p.User]
	if old == nil {
		return errorf(NotFound, "no user '%s'", p.User)
	}
	x := &user{Name: old.Name, PasswordHash: old.PasswordHash, Tags: old.Tags, Permissions: map[string]wire.AMQPPermission{}}
	for v, q := range old.Permissions {
		x.Permissions[v] = q
	}
	if clear {
		delete(x.Permissions, p.Vhost)
	} else {
		x.Permissions[p.Vhost] = p.AMQPPermission
	}
	return u.commit(func(m map[string]*user) { m[x.Name] = x })
}

// dropVhost removes every user's permissions in vhost (DeleteVhost).
func (u *users) dropVhost(vhost string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	var changed []*user
	for _, old := range u.byName {
		if _, ok := old.Permissions[vhost]; !ok {
			continue
		}
		x := &user{Name: old.Name, PasswordHash: old.PasswordHash, Tags: old.Tags, Permissions: map[string]wire.AMQPPermission{}}
		for v, q := range old.Permissions {
			if v != vhost {
				x.Permissions[v] = q
			}
		}
		changed = append(changed, x)
	}
	if len(changed) == 0 {
		return nil
	}
	return u.commit(func(m map[string]*user) {
		for _, x := range changed {
			m[x.Name] = x
		}
	})
}

// commit applies change to a copy, writes it, and only then makes it the
// database: a failed write changes nothing and refuses later changes.
// Callers hold u.mu for writing.
func (u *users) commit(change func(map[string]*user)) error {
	if u.failed != nil {
		return internalError(fmt.Errorf("the user database cannot be written since an earlier failure: %w", u.failed))
	}
	next := make(map[string]*user, len(u.byName)+1)
	for k, v := range u.byName {
		next[k] = v
	}
	change(next)
	f := usersFile{Users: make([]*user, 0, len(next))}
	for _, x := range next {
		f.Users = append(f.Users, x)
	}
	sort.Slice(f.Users, func(i, j int) bool { return f.Users[i].Name < f.Users[j].Name })
	data, err := json.MarshalIndent(f, "", "  ")
	if err == nil {
		// Password hashes: readable by the broker's user only.
		err = atomicfile.Write(u.path, data, atomicfile.Options{Backup: true, Mode: 0o600})
	}
	if err != nil {
		u.failed = err
		return internalError(fmt.Errorf("write the user database %s: %w", u.path, err))
	}
	u.byName = next
	return nil
}
