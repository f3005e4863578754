package amqpengine

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mqops/mqops/wire"
)

func wantCode(t *testing.T, what string, err error, code uint16) {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != code {
		t.Fatalf("%s: %v, want AMQP code %d", what, err, code)
	}
}

// The user database: RabbitMQ's default guest until a file exists, logins
// checked against salted SHA-256 hashes (RabbitMQ's own format, so a hash
// from a RabbitMQ definitions file logs in), permissions per vhost, and
// everything kept across a restart in a file only the broker's user reads.
func TestUsers(t *testing.T) {
	dir := t.TempDir()
	e, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.Authenticate("guest", "guest")
	if err != nil || a.Permissions["/"] != (wire.AMQPPermission{Configure: ".*", Write: ".*", Read: ".*"}) {
		t.Fatalf("default guest: %+v %v", a, err)
	}
	wantCode(t, "guest with a wrong password", func() error { _, err := e.Authenticate("guest", "nope"); return err }(), AccessRefused)
	wantCode(t, "unknown user", func() error { _, err := e.Authenticate("bob", "guest"); return err }(), AccessRefused)

	wantCode(t, "new user without a password", e.PutUser(wire.AMQPUserPut{User: "app"}), PreconditionFailed)
	if err := e.PutUser(wire.AMQPUserPut{User: "app", Password: "s3cret", Tags: []string{"monitoring"}}); err != nil {
		t.Fatal(err)
	}
	// The hash of "test12" from RabbitMQ's documentation (passwords.md,
	// "Computing a password hash").
	if err := e.PutUser(wire.AMQPUserPut{User: "imported", PasswordHash: "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Authenticate("imported", "test12"); err != nil {
		t.Fatalf("RabbitMQ hash: %v", err)
	}
	wantCode(t, "bad hash", e.PutUser(wire.AMQPUserPut{User: "x", PasswordHash: "bm90IGEgaGFzaA=="}), PreconditionFailed)
	wantCode(t, "bad regexp", e.SetPermissions(wire.AMQPPermissionSet{User: "app", Vhost: "/",
		AMQPPermission: wire.AMQPPermission{Configure: "(", Write: ".*", Read: ".*"}}, false), PreconditionFailed)
	wantCode(t, "unknown vhost", e.SetPermissions(wire.AMQPPermissionSet{User: "app", Vhost: "nope",
		AMQPPermission: wire.AMQPPermission{Configure: ".*"}}, false), NotFound)
	perm := wire.AMQPPermission{Configure: "^app-", Write: "^app-|amq.default", Read: "^app-"}
	if err := e.SetPermissions(wire.AMQPPermissionSet{User: "app", Vhost: "/", AMQPPermission: perm}, false); err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteUser("guest"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "delete twice", e.DeleteUser("guest"), NotFound)
	if fi, err := os.Stat(filepath.Join(dir, "amqp-users.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("users file: %v %v", fi, err)
	}

	e2, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err = e2.Authenticate("app", "s3cret")
	if err != nil || a.Permissions["/"] != perm || len(a.Tags) != 1 || a.Tags[0] != "monitoring" {
		t.Fatalf("app after a restart: %+v %v", a, err)
	}
	wantCode(t, "deleted guest after a restart", func() error { _, err := e2.Authenticate("guest", "guest"); return err }(), AccessRefused)
	if err := e2.SetPermissions(wire.AMQPPermissionSet{User: "app", Vhost: "/"}, true); err != nil {
		t.Fatal(err)
	}
	if a, _ := e2.Authenticate("app", "s3cret"); len(a.Permissions) != 0 {
		t.Fatalf("cleared permissions: %+v", a)
	}
	var names []string
	for _, u := range e2.ListUsers(false) {
		names = append(names, u.User)
	}
	if len(names) != 2 || names[0] != "app" || names[1] != "imported" {
		t.Fatalf("list: %v", names)
	}
	// Hashes only when asked (a definitions export), and they check the
	// password as the stored ones do.
	for _, u := range e2.ListUsers(false) {
		if u.PasswordHash != "" {
			t.Fatalf("hash listed unasked: %+v", u)
		}
	}
	withHashes := e2.ListUsers(true)
	if withHashes[0].User != "app" || !checkPassword(withHashes[0].PasswordHash, "s3cret") || checkPassword(withHashes[0].PasswordHash, "other") {
		t.Fatalf("listed hash of app: %+v", withHashes[0])
	}
}

// Deleting a vhost takes the users' permissions there with it, as in
// RabbitMQ: a vhost created again under that name lets nobody in, while
// permissions elsewhere stay, across a restart too.
func TestDeleteVhostDropsPermissions(t *testing.T) {
	dir := t.TempDir()
	e, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.AddVhost("orders"); err != nil {
		t.Fatal(err)
	}
	if err := e.PutUser(wire.AMQPUserPut{User: "app", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	all := wire.AMQPPermission{Configure: ".*", Write: ".*", Read: ".*"}
	for _, v := range []string{"/", "orders"} {
		if err := e.SetPermissions(wire.AMQPPermissionSet{User: "app", Vhost: v, AMQPPermission: all}, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.DeleteVhost("orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.AddVhost("orders"); err != nil {
		t.Fatal(err)
	}
	for _, eng := range []*Engine{e, func() *Engine {
		e2, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		return e2
	}()} {
		a, err := eng.Authenticate("app", "pw")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := a.Permissions["orders"]; ok || a.Permissions["/"] != all {
			t.Fatalf("app after deleting vhost orders: %+v", a.Permissions)
		}
		if g, err := eng.Authenticate("guest", "guest"); err != nil || len(g.Permissions) != 1 {
			t.Fatalf("guest: %+v %v", g, err)
		}
	}
}
