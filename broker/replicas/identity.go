// Package replicas is a broker's side of RocketMQ 5 controller mode
// (apache/rocketmq broker/src/main/java/org/apache/rocketmq/broker/controller/ReplicasManager.java):
// it obtains a persistent replica id from the controller, heartbeats every
// controller, and turns the broker into its group's master or a slave when
// the controller elects one, so a group fails over without an operator.
package replicas

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/mqops/mqops/atomicfile"
)

// Identity is the replica id the controller gave this broker, kept in
// storePathBrokerIdentity as "cluster#name#id" (apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/ha/autoswitch/BrokerMetadata.java),
// so a restarted broker keeps its id. While an id is being applied for, the
// candidate sits in "<path>-temp" as "cluster#name#id#registerCheckCode"
// (TempBrokerMetadata.java), registerCheckCode being "brokerAddr;millis":
// a broker that crashed between asking and recording re-applies with the
// same code, which the controller accepts.
type Identity struct {
	Cluster, Name string
	ID            int64
	CheckCode     string // temp file only
}

// encode is the file content; Java writes it without a line end.
func (m Identity) encode(temp bool) string {
	s := m.Cluster + "#" + m.Name + "#" + strconv.FormatInt(m.ID, 10)
	if temp {
		s += "#" + m.CheckCode
	}
	return s
}

func parseIdentity(s string, temp bool) (Identity, error) {
	parts := strings.Split(strings.TrimRight(s, "\r\n"), "#")
	want := 3
	if temp {
		want = 4
	}
	if len(parts) != want {
		return Identity{}, fmt.Errorf("%q: want %d '#'-separated fields", s, want)
	}
	id, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || id < 0 || parts[0] == "" || parts[1] == "" {
		return Identity{}, fmt.Errorf("%q: want cluster#name#id with a non-negative id", s)
	}
	m := Identity{Cluster: parts[0], Name: parts[1], ID: id}
	if temp {
		if parts[3] == "" {
			return Identity{}, fmt.Errorf("%q: empty registerCheckCode", s)
		}
		m.CheckCode = parts[3]
	}
	return m, nil
}

// IdentityFiles are the two files of one broker.
type IdentityFiles struct{ Path string }

func (f IdentityFiles) tempPath() string { return f.Path + "-temp" }

// Load returns the recorded identity; ok is false when there is none.
func (f IdentityFiles) Load() (m Identity, ok bool, err error) {
	return f.load(f.Path, false)
}

// LoadTemp returns a pending application; ok is false when there is none.
func (f IdentityFiles) LoadTemp() (m Identity, ok bool, err error) {
	return f.load(f.tempPath(), true)
}

func (f IdentityFiles) load(p string, temp bool) (Identity, bool, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(b) == 0) {
		return Identity{}, false, nil
	}
	if err != nil {
		return Identity{}, false, fmt.Errorf("broker identity: %w", err)
	}
	m, err := parseIdentity(string(b), temp)
	if err != nil {
		return Identity{}, false, fmt.Errorf("broker identity %s: %w", p, err)
	}
	return m, true, nil
}

// SaveTemp records a pending application.
func (f IdentityFiles) SaveTemp(m Identity) error {
	if err := m.valid(); err != nil {
		return err
	}
	if strings.Contains(m.CheckCode, "#") || m.CheckCode == "" {
		return fmt.Errorf("broker identity: registerCheckCode %q must be non-empty without '#'", m.CheckCode)
	}
	return atomicfile.Write(f.tempPath(), []byte(m.encode(true)), atomicfile.Options{})
}

// Commit records the applied identity, then removes the temp file.
func (f IdentityFiles) Commit(m Identity) error {
	if err := m.valid(); err != nil {
		return err
	}
	if err := atomicfile.Write(f.Path, []byte(m.encode(false)), atomicfile.Options{}); err != nil {
		return fmt.Errorf("broker identity: %w", err)
	}
	return f.DropTemp()
}

// DropTemp forgets a pending application (the controller refused the id).
func (f IdentityFiles) DropTemp() error {
	if err := os.Remove(f.tempPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("broker identity: %w", err)
	}
	return nil
}

func (m Identity) valid() error {
	if m.Cluster == "" || m.Name == "" || strings.Contains(m.Cluster+m.Name, "#") || m.ID < 0 {
		return fmt.Errorf("broker identity: cluster %q and name %q must be non-empty without '#', id %d non-negative",
			m.Cluster, m.Name, m.ID)
	}
	return nil
}
