// Package slavesync keeps a slave broker's metadata a copy of its master's.
// Topics, subscription groups, consumer offsets and delay-level progress are
// not in the commit log that replication copies, so a slave fetches them
// from its master's listen port with RocketMQ's four admin requests, first
// 3 s after start and then every 10 s, and applies them as Java's
// SlaveSynchronize does (apache/rocketmq rocketmq-all-4.9.8
// broker/src/main/java/org/apache/rocketmq/broker/slave/SlaveSynchronize.java).
package slavesync

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/schedule"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// Java's schedule (BrokerController.handleSlaveSynchronize).
const (
	FirstDelay = 3 * time.Second
	Period     = 10 * time.Second
)

// Options are the tables a Syncer writes and where it reads them from.
type Options struct {
	// Master returns the master's listen address ("ip:port"), "" while
	// no name server has named one.
	Master func() string
	// Self is this broker's own address: a slave never syncs from itself.
	Self    string
	Client  *remoting.Client
	Timeout time.Duration // per request

	Topics  *meta.Topics
	Groups  *meta.Groups
	Offsets *meta.Offsets
	Delay   *schedule.Levels
	// Timers, if set, follows the master's timer checkpoint.
	Timers *schedule.Timers
	// TopicsChanged runs after a new topic table was adopted, so the
	// broker registers it with the name servers.
	TopicsChanged func()
	Log           *slog.Logger
}

// Syncer copies a master's metadata into a slave's tables.
type Syncer struct {
	o       Options
	failing string // the last round's error, logged once until it changes

	// waiting is a fetched timer checkpoint the slave's commit log did not
	// hold yet, of wheel generation waitGen; the next round applies it if
	// its own fresher one still cannot be.
	waiting *wire.TimerCheckpoint
	waitGen uint64
}

// New returns a Syncer; Run starts it.
func New(o Options) *Syncer { return &Syncer{o: o} }

// Run syncs after FirstDelay and then every Period until stop is closed.
func (s *Syncer) Run(stop <-chan struct{}) {
	t := time.NewTimer(FirstDelay)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s.round()
		t.Reset(Period)
	}
}

// round runs SyncAll and logs a failure once, and the recovery.
func (s *Syncer) round() {
	master, err := s.SyncAll()
	switch {
	case err != nil && err.Error() != s.failing:
		s.failing = err.Error()
		s.o.Log.Warn("[SLAVE_SYNC] syncing metadata from the master failed, will retry", "master", master, "err", err)
	case err == nil && s.failing != "":
		s.failing = ""
		s.o.Log.Info("[SLAVE_SYNC] syncing metadata from the master works again", "master", master)
	}
}

// ErrNoMaster is SyncAll's answer while no master address is known.
var ErrNoMaster = errors.New("no master address known yet (the name server names it once the master registers)")

// SyncAll fetches and applies the four tables in Java's order: topics,
// consumer offsets, delay offsets, subscription groups, then the timer
// checkpoint (RocketMQ 5's syncTimerCheckPoint). Each step runs
// whatever the others did; the error joins their failures. It returns the
// master it synced from.
func (s *Syncer) SyncAll() (string, error) {
	master := s.o.Master()
	if master == "" {
		return "", ErrNoMaster
	}
	if master == s.o.Self {
		return master, nil // Java skips it too
	}
	return master, errors.Join(s.syncTopics(master), s.syncOffsets(master), s.syncDelay(master), s.syncGroups(master),
		s.syncTimer(master))
}

// fetch sends one body-less admin request and returns the answer's body.
func (s *Syncer) fetch(master string, code int32) ([]byte, error) {
	resp, err := s.o.Client.Invoke(master, wire.NewRequest(code, nil, nil), s.o.Timeout)
	if err != nil {
		return nil, fmt.Errorf("request %d to %s: %w", code, master, err)
	}
	if resp.Code != wire.Success {
		return nil, fmt.Errorf("request %d to %s: answered %s %q", code, master, wire.ResponseName(resp.Code), resp.Remark)
	}
	return resp.Body, nil
}

// syncTopics adopts the master's topic table when its data version
// differs, and has the broker register it.
func (s *Syncer) syncTopics(master string) error {
	body, err := s.fetch(master, wire.GetAllTopicConfig)
	if err != nil {
		return fmt.Errorf("topics: %w", err)
	}
	var w wire.TopicConfigSerializeWrapper
	if err := json.Unmarshal(body, &w); err != nil {
		return fmt.Errorf("topics from %s: %w", master, err)
	}
	changed, skipped, err := s.o.Topics.Replace(w)
	for _, e := range skipped {
		s.o.Log.Warn("[SLAVE_SYNC] master's topic left out: this broker cannot serve it", "master", master, "err", e)
	}
	if err != nil {
		return fmt.Errorf("topics: persist: %w", err)
	}
	if changed {
		s.o.Log.Info("[SLAVE_SYNC] topic table adopted from the master", "master", master, "topics", len(w.TopicConfigTable), "dataVersion", string(wire.Marshal(w.DataVersion)))
		if s.o.TopicsChanged != nil {
			s.o.TopicsChanged()
		}
	}
	return nil
}

// syncOffsets merges the master's committed offsets.
func (s *Syncer) syncOffsets(master string) error {
	body, err := s.fetch(master, wire.GetAllConsumerOffset)
	if err != nil {
		return fmt.Errorf("consumer offsets: %w", err)
	}
	if err := s.o.Offsets.Merge(body); err != nil {
		return fmt.Errorf("consumer offsets from %s: %w", master, err)
	}
	return nil
}

// syncDelay adopts the master's delay-level progress.
func (s *Syncer) syncDelay(master string) error {
	body, err := s.fetch(master, wire.GetAllDelayOffset)
	if err != nil {
		return fmt.Errorf("delay offsets: %w", err)
	}
	if err := s.o.Delay.Replace(body); err != nil {
		return fmt.Errorf("delay offsets from %s: %w", master, err)
	}
	return nil
}

// syncGroups adopts the master's subscription groups when their data
// version differs.
func (s *Syncer) syncGroups(master string) error {
	body, err := s.fetch(master, wire.GetAllSubGroupConfig)
	if err != nil {
		return fmt.Errorf("subscription groups: %w", err)
	}
	var w wire.SubscriptionGroupWrapper
	if err := json.Unmarshal(body, &w); err != nil {
		return fmt.Errorf("subscription groups from %s: %w", master, err)
	}
	changed, skipped, err := s.o.Groups.Replace(w)
	for _, e := range skipped {
		s.o.Log.Warn("[SLAVE_SYNC] master's subscription group left out: this broker cannot serve it", "master", master, "err", e)
	}
	if err != nil {
		return fmt.Errorf("subscription groups: persist: %w", err)
	}
	if changed {
		s.o.Log.Info("[SLAVE_SYNC] subscription groups adopted from the master", "master", master, "groups", len(w.SubscriptionGroupTable))
	}
	return nil
}

// syncTimer has the timer service follow the master's timer checkpoint
// once the replicated commit log holds what the checkpoint counts on; one
// that cannot be applied yet waits a round, so that a slave that is always
// a little behind still follows, one round late.
func (s *Syncer) syncTimer(master string) error {
	if s.o.Timers == nil {
		return nil
	}
	gen := s.o.Timers.Generation()
	body, err := s.fetch(master, wire.GetTimerCheckPoint)
	if err != nil {
		return fmt.Errorf("timer checkpoint: %w", err)
	}
	ck, err := wire.DecodeTimerCheckpoint(body)
	if err != nil {
		return fmt.Errorf("timer checkpoint from %s: %w", master, err)
	}
	ok, err := s.o.Timers.Follow(ck, gen)
	if err == nil && !ok && s.waiting != nil {
		if _, werr := s.o.Timers.Follow(*s.waiting, s.waitGen); !errors.Is(werr, schedule.ErrStaleCheckpoint) {
			err = werr
		}
	}
	s.waiting, s.waitGen = nil, 0
	switch {
	case errors.Is(err, schedule.ErrStaleCheckpoint):
		return nil // the wheel was reset meanwhile: the next round fetches afresh
	case err != nil:
		return fmt.Errorf("timer checkpoint from %s: %w", master, err)
	case !ok:
		s.waiting, s.waitGen = &ck, gen
	}
	return nil
}
