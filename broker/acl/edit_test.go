package acl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

const baseRules = `# operator's comment, kept across changes
globalWhiteRemoteAddresses:
  - 10.9.9.9
accounts:
  - accessKey: adminUser
    secretKey: adminSecret1
    admin: true
`

func ptr[T any](v T) *T { return &v }

func sendReq(topic string) *wire.Command {
	return wire.NewRequest(wire.SendMessageV2, map[string]string{"b": topic}, nil)
}

func TestUpdateAccountWritesReloadsAndBumps(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "plain_acl.yml")
	write(t, f, baseRules)
	w, err := Load(Source{ConfDir: dir}, BrokerTable, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch := w.Checker()
	if d := ch.Decide("appUser1", sendReq("Orders")); d.OK {
		t.Fatal("unknown account allowed")
	}
	res, err := w.UpdateAccount(wire.ACLAccount{AccessKey: "appUser1", SecretKey: "appSecret1", DefaultTopicPerm: "DENY",
		TopicPerms: []string{"Orders=PUB"}, GroupPerms: []string{"g1=SUB"}, ProduceTPS: ptr[int64](500), ProduceBPS: ptr[int64](1 << 20)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.File != f || res.DataVersion.Counter != 1 || res.DataVersion.Timestamp == 0 {
		t.Fatalf("change %+v", res)
	}
	s := ch.Rules()
	if s.Version != 2 || s.DataVersions[f].Counter != 1 {
		t.Fatalf("version %d dataVersion %+v", s.Version, s.DataVersions[f])
	}
	if d := ch.Decide("appUser1", sendReq("Orders")); !d.OK {
		t.Fatalf("new account refused: %+v", d)
	}
	if d := ch.Decide("appUser1", sendReq("Other")); d.OK {
		t.Fatal("DENY default not applied")
	}
	a := s.Accounts["appUser1"]
	if a.ProduceTPS != 500 || a.ProduceBPS != 1<<20 || string(a.secret) != "appSecret1" {
		t.Fatalf("account %+v", a)
	}
	// The watcher does not load the change a second time.
	if w.Poll() {
		t.Fatal("poll reloaded the change it was given")
	}
	data, _ := os.ReadFile(f)
	if !strings.Contains(string(data), "# operator's comment, kept across changes") || !strings.Contains(string(data), "produceTps: 500") {
		t.Fatalf("file:\n%s", data)
	}
	if st, _ := os.Stat(f); st.Mode().Perm() != 0o644 {
		t.Fatalf("an existing file's mode changed: %v", st.Mode())
	}
	// The file on disk is the rules in force: a fresh load reads the same.
	again, err := LoadRules(Source{ConfDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("written:\n%s", data)
	if fmt.Sprint(again.Config(true)) != fmt.Sprint(s.Config(true)) || again.DataVersions[f] != s.DataVersions[f] {
		t.Fatalf("reloaded %+v\nin force %+v", again.Config(true), s.Config(true))
	}

	// An update keeps what it does not name, replaces a list it names and
	// removes a quota set to 0.
	if _, err := w.UpdateAccount(wire.ACLAccount{AccessKey: "appUser1", TopicPerms: []string{"Other=PUB|SUB"}, ProduceTPS: ptr[int64](0)}); err != nil {
		t.Fatal(err)
	}
	a = ch.Rules().Accounts["appUser1"]
	if string(a.secret) != "appSecret1" || a.Topics["Other"] != Pub|Sub || len(a.Topics) != 1 || a.ProduceTPS != 0 || a.ProduceBPS != 1<<20 || a.Groups["g1"] != Sub {
		t.Fatalf("after update %+v", a.Config(false))
	}
	if ch.Rules().DataVersions[f].Counter != 2 {
		t.Fatalf("dataVersion %+v", ch.Rules().DataVersions[f])
	}
	if _, err := w.UpdateAccount(wire.ACLAccount{AccessKey: "appUser1", Admin: ptr(true)}); err != nil || !ch.Rules().Accounts["appUser1"].Admin {
		t.Fatalf("admin flag: %v", err)
	}

	// Delete, then the account is unknown again.
	if _, err := w.DeleteAccount("appUser1"); err != nil {
		t.Fatal(err)
	}
	if d := ch.Decide("appUser1", sendReq("Orders")); d.OK || d.Reason != ReasonUnknownAccount {
		t.Fatalf("deleted account: %+v", d)
	}
	if _, err := w.DeleteAccount("appUser1"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "no account with accessKey appUser1") {
		t.Fatalf("second delete: %v", err)
	}

	// The global white list is replaced.
	if _, err := w.SetGlobalWhite([]string{"192.168.0.*", "10.0.0.0/8"}, ""); err != nil {
		t.Fatal(err)
	}
	if got := ch.Rules().Config(false).GlobalWhiteAddrs; fmt.Sprint(got) != "[192.168.0.* 10.0.0.0/8]" {
		t.Fatalf("white list %v", got)
	}
	if _, err := w.SetGlobalWhite(nil, ""); err != nil || len(ch.Rules().GlobalWhite) != 0 {
		t.Fatalf("empty white list: %v", err)
	}
	if ch.Rules().DataVersions[f].Counter != 6 {
		t.Fatalf("dataVersion %+v", ch.Rules().DataVersions[f])
	}
}

func TestUpdateAccountInItsOwnFile(t *testing.T) {
	dir := t.TempDir()
	extra := filepath.Join(dir, "acl", "team.yml")
	write(t, extra, "accounts:\n  - accessKey: teamUser1 # team A\n    secretKey: teamSecret1\n")
	w, err := Load(Source{ConfDir: dir}, BrokerTable, nil, nil) // no plain_acl.yml yet
	if err != nil {
		t.Fatal(err)
	}
	res, err := w.UpdateAccount(wire.ACLAccount{AccessKey: "teamUser1", DefaultTopicPerm: "PUB"})
	if err != nil || res.File != extra || res.Created {
		t.Fatalf("%+v %v", res, err)
	}
	data, _ := os.ReadFile(extra)
	if !strings.Contains(string(data), "# team A") || !strings.Contains(string(data), "defaultTopicPerm: PUB") {
		t.Fatalf("file:\n%s", data)
	}
	// A new account goes to the default file, created owner-only.
	res, err = w.UpdateAccount(wire.ACLAccount{AccessKey: "newUser1", SecretKey: "newSecret1"})
	if err != nil || res.File != filepath.Join(dir, "plain_acl.yml") {
		t.Fatalf("%+v %v", res, err)
	}
	if st, err := os.Stat(res.File); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("new default file: %v %v", st, err)
	}
	if len(w.Checker().Rules().Accounts) != 2 {
		t.Fatal("accounts missing")
	}
	// The white list goes to a named file only if it is a rules file.
	if _, err := w.SetGlobalWhite([]string{"*"}, "/etc/passwd"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("foreign file: %v", err)
	}
	if _, err := w.SetGlobalWhite([]string{"127.0.0.1"}, extra); err != nil {
		t.Fatal(err)
	}
	if d, _ := os.ReadFile(extra); !strings.Contains(string(d), "127.0.0.1") {
		t.Fatalf("file:\n%s", d)
	}
	// Another file broken on disk (not reloaded yet): the change is refused
	// with that file's error, and nothing is written.
	write(t, filepath.Join(dir, "acl", "broken.yml"), "accounts:\n  - accessKey: brokenUser1\n    secretKey: x\n")
	before, _ := os.ReadFile(res.File)
	old := w.Checker().Rules()
	_, err = w.UpdateAccount(wire.ACLAccount{AccessKey: "newUser1", DefaultTopicPerm: "SUB"})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "broken.yml:2: secretKey of accessKey brokenUser1 must be longer than 6 characters") {
		t.Fatalf("with a broken file: %v", err)
	}
	if after, _ := os.ReadFile(res.File); string(after) != string(before) || w.Checker().Rules() != old {
		t.Fatal("a refused change touched the file or the rules")
	}
}

func TestUpdateRefusesBadInputNamingTheField(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "plain_acl.yml")
	write(t, f, baseRules)
	w, err := Load(Source{AclFile: f}, BrokerTable, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(f)
	cases := []struct {
		ch   wire.ACLAccount
		want string
	}{
		{wire.ACLAccount{AccessKey: "short", SecretKey: "longenough"}, `accessKey "short" must be longer than 6 characters`},
		{wire.ACLAccount{AccessKey: "has space", SecretKey: "longenough"}, "white space"},
		{wire.ACLAccount{AccessKey: "appUser1", SecretKey: "tiny"}, "secretKey of accessKey appUser1 must be longer than 6 characters"},
		{wire.ACLAccount{AccessKey: "appUser1"}, "secretKey is required to create account appUser1"},
		{wire.ACLAccount{AccessKey: "appUser1", SecretKey: "longenough", DefaultTopicPerm: "PUBSUB"}, `defaultTopicPerm: permission "PUBSUB" is not DENY, PUB, SUB or PUB|SUB`},
		{wire.ACLAccount{AccessKey: "appUser1", SecretKey: "longenough", DefaultGroupPerm: "ALL"}, "defaultGroupPerm"},
		{wire.ACLAccount{AccessKey: "appUser1", SecretKey: "longenough", TopicPerms: []string{"Orders"}}, `topicPerms entry "Orders" is not name=PERM`},
		{wire.ACLAccount{AccessKey: "appUser1", SecretKey: "longenough", GroupPerms: []string{"g=WRITE"}}, `groupPerms entry "g=WRITE"`},
		{wire.ACLAccount{AccessKey: "appUser1", SecretKey: "longenough", WhiteRemoteAddress: "300.1.1.1"}, "whiteRemoteAddress"},
		{wire.ACLAccount{AccessKey: "appUser1", SecretKey: "longenough", ProduceBPS: ptr[int64](-1)}, "produceBps: -1 is below 0"},
	}
	for _, c := range cases {
		_, err := w.UpdateAccount(c.ch)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %q", c.ch, err, c.want)
		}
		if err != nil && c.ch.SecretKey != "" && strings.Contains(err.Error(), c.ch.SecretKey) {
			t.Errorf("error shows the secret: %v", err)
		}
	}
	if _, err := w.SetGlobalWhite([]string{"10.0.0.1-300"}, ""); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "globalWhiteAddrs") {
		t.Errorf("white list: %v", err)
	}
	if after, _ := os.ReadFile(f); string(after) != string(before) || w.Checker().Rules().Version != 1 {
		t.Fatal("a refused change touched the file or the rules")
	}
}

func TestFailedWriteKeepsRules(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "conf")
	f := filepath.Join(dir, "plain_acl.yml")
	write(t, f, baseRules)
	w, err := Load(Source{AclFile: f}, BrokerTable, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := w.Checker().Rules()
	// The directory goes away under the broker (a lost mount): the
	// temporary file cannot be created, even by root.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = w.UpdateAccount(wire.ACLAccount{AccessKey: "appUser1", SecretKey: "appSecret1"})
	if err == nil || errors.Is(err, ErrInvalid) {
		t.Fatalf("write into a lost directory: %v", err)
	}
	if w.Checker().Rules() != old || old.Accounts["appUser1"] != nil {
		t.Fatal("a failed write changed the rules in force")
	}
}

// TestEditsRaceTheWatcher runs changes while the watcher polls as fast as
// it can: every change is loaded exactly once (by the change itself), and
// none is lost.
func TestEditsRaceTheWatcher(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "plain_acl.yml")
	write(t, f, baseRules)
	w, err := Load(Source{ConfDir: dir}, BrokerTable, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Start(time.Millisecond)
	const workers, each = 4, 10
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				ak := fmt.Sprintf("user%02d_%02d", i, j)
				if _, err := w.UpdateAccount(wire.ACLAccount{AccessKey: ak, SecretKey: "secret-" + ak}); err != nil {
					t.Error(err)
				}
				if d := w.Checker().Decide(ak, sendReq("Orders")); d.Reason == ReasonUnknownAccount {
					t.Errorf("%s not in force after its change", ak)
				}
			}
		}()
	}
	wg.Wait()
	w.Close()
	s := w.Checker().Rules()
	if len(s.Accounts) != 1+workers*each {
		t.Fatalf("accounts %d", len(s.Accounts))
	}
	if s.Version != 1+workers*each || s.DataVersions[f].Counter != workers*each {
		t.Fatalf("version %d dataVersion %+v: the watcher reloaded a change", s.Version, s.DataVersions[f])
	}
}
