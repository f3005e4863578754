// Package transaction keeps half (prepared) messages until their producer
// commits or rolls them back, and asks producers about the ones left
// undecided, as Java's broker does (apache/rocketmq
// broker/src/main/java/org/apache/rocketmq/broker/transaction/ and
// broker/src/main/java/org/apache/rocketmq/broker/processor/EndTransactionProcessor.java).
//
// Half messages live in RMQ_SYS_TRANS_HALF_TOPIC queue 0; every decision
// (commit, rollback, discard) appends an op record to
// RMQ_SYS_TRANS_OP_HALF_TOPIC queue 0 whose body is the half message's
// queue offset. The log is the truth; config/transaction.json only says
// where to start reading it again.
package transaction

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/mqops/mqops/atomicfile"
	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/schedule"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/wire"
)

// removeTag is the op record's tag (Java's TransactionalMessageUtil.REMOVETAG).
const removeTag = "d"

// Options configure a Service.
type Options struct {
	Store     *store.Store
	StateFile string        // config/transaction.json
	Timeout   time.Duration // transactionTimeOut: a half message younger than this is not checked
	Interval  time.Duration // transactionCheckInterval
	CheckMax  int           // transactionCheckMax: checks before a half message is discarded
	MaxDelay  int           // highest delay level: a committed message with DELAY is parked
	// Check asks a live producer of group about a half message; false
	// means no producer of the group is connected.
	Check func(group string, fields map[string]string, body []byte) bool
	// BeforeDiscard runs before a half message is copied to
	// TRANS_CHECK_MAX_TIME_TOPIC (the broker creates that topic then).
	BeforeDiscard func()
	Log           *slog.Logger
}

// Service tracks half messages. Invariants (under mu):
//   - every half message below halfOffset is decided, and its op record
//     is in the op queue at or after opOffset's saved value or was
//     accounted for when halfOffset passed it;
//   - decided holds the decided half offsets ≥ halfOffset, with the op
//     queue offset of their op record;
//   - checks counts the check-backs sent for undecided half offsets.
type Service struct {
	o Options

	mu         sync.Mutex
	halfOffset int64
	opOffset   int64 // op queue offset from which op records matter
	decided    map[int64]int64
	checks     map[int64]int
	buf, props []byte

	runMu sync.Mutex    // Start and Stop
	stop  chan struct{} // nil while stopped
	wg    sync.WaitGroup
}

type stateFile struct {
	HalfOffset int64          `json:"halfOffset"`
	OpOffset   int64          `json:"opOffset"`
	Checks     map[string]int `json:"checks,omitempty"`
}

// Open loads the saved position and replays the op records after it, so
// decisions made before a crash are not asked about again.
func Open(o Options) (*Service, error) {
	s := &Service{o: o, decided: map[int64]int64{}, checks: map[int64]int{}}
	data, err := atomicfile.Read(o.StateFile)
	if err != nil {
		return nil, err
	}
	if len(data) > 0 {
		var f stateFile
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("parse %s: %w", o.StateFile, err)
		}
		s.halfOffset, s.opOffset = f.HalfOffset, f.OpOffset
		for k, n := range f.Checks {
			off, err := strconv.ParseInt(k, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("parse %s: bad half offset %q", o.StateFile, k)
			}
			s.checks[off] = n
		}
	}
	st := o.Store
	// Offsets beyond the queues mean the log lost its unflushed tail in
	// a crash; start over where the queues end.
	s.halfOffset = min(s.halfOffset, st.MaxOffset(meta.TopicTransHalf, 0))
	s.opOffset = min(s.opOffset, st.MaxOffset(meta.TopicTransOpHalf, 0))
	s.replayLocked()
	return s, nil
}

// replayLocked marks decided the half messages whose op records are in
// the op queue from opOffset on: those of a crash's lost state, or those a
// slave replicated while its service was stopped.
func (s *Service) replayLocked() {
	st := s.o.Store
	var err error
	for off, end := s.opOffset, st.MaxOffset(meta.TopicTransOpHalf, 0); off < end; off++ {
		u, ok := st.UnitAt(meta.TopicTransOpHalf, 0, off)
		if !ok {
			continue
		}
		if s.buf, err = st.ReadRecord(u.Phys, s.buf[:0]); err != nil {
			continue // retention removed it, and with it the half messages it decided
		}
		half, ok := wire.ParseInt(wire.RecordView(s.buf).Body())
		if ok && half >= s.halfOffset {
			s.decided[half] = off
		}
	}
	s.advanceLocked()
}

// Start runs the check-back loop, first replaying the op records stored
// since the state was read (on a promoted slave: the decisions the old
// master made and replicated), so no decided half message is checked
// again. Starting a running service does nothing.
func (s *Service) Start() {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.stop != nil {
		return
	}
	s.mu.Lock()
	s.replayLocked()
	s.mu.Unlock()
	s.stop = make(chan struct{})
	s.wg.Add(1)
	go s.loop(s.stop)
}

// Stop stops checking and saves the position; Start resumes.
func (s *Service) Stop() error {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.stop != nil {
		close(s.stop)
		s.stop = nil
		s.wg.Wait()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.persistLocked()
}

// Running tells whether the check-back loop runs.
func (s *Service) Running() bool {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	return s.stop != nil
}

// Close stops checking and saves the position.
func (s *Service) Close() error { return s.Stop() }

// Prepare turns m into a half message: transaction bits cleared (so it
// gets a queue offset), real topic and queue kept in properties, stored
// in the half queue. dst is scratch for the properties and is returned.
func Prepare(dst []byte, m *store.Message) []byte {
	dst = schedule.ParkProps(dst, m)
	m.Topic, m.QueueID, m.Properties = meta.TopicTransHalf, 0, dst
	m.SysFlag &^= wire.SysFlagTransactionMask
	return dst
}

// Refusals of End that say the decision does not fit the half message
// (a 5.x client's transaction id names the wrong one, or a repeat), for
// errors.Is; the Refused error carries one of them as its Err.
var (
	// ErrDecided: the half message was already committed, rolled back or
	// discarded; a repeated decision must not deliver twice.
	ErrDecided = errors.New("transaction already decided")
	// ErrNotHalf: the commit log offset holds no half message.
	ErrNotHalf = errors.New("not a half message")
	// ErrMismatch: the half message belongs to another producer group or
	// sits at another half-queue offset.
	ErrMismatch = errors.New("the half message does not match the producer group or offset")
)

// Refused is End's error. Code and Remark are END_TRANSACTION's answer
// (Java EndTransactionProcessor's remarks where it has one); Err is
// ErrDecided, ErrNotHalf or ErrMismatch, or the cause of a failure.
// MESSAGE_ILLEGAL also closes the transaction (see End).
type Refused struct {
	Code   int32
	Remark string
	Err    error
}

func (r *Refused) Error() string { return r.Remark }
func (r *Refused) Unwrap() error { return r.Err }

// Answer is END_TRANSACTION's response code and remark for End's error:
// success for nil, a Refused's own, SYSTEM_ERROR for anything else.
func Answer(err error) (int32, string) {
	var r *Refused
	switch {
	case err == nil:
		return wire.Success, ""
	case errors.As(err, &r):
		return r.Code, r.Remark
	}
	return wire.SystemError, err.Error()
}

// End applies a producer's decision on the half message at phys (queue
// offset halfQOff) of group: commit stores it in its real topic, then both
// record the decision. A decision not applied is a *Refused.
func (s *Service) End(group string, halfQOff, phys int64, commit bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.decided[halfQOff]; ok || halfQOff < s.halfOffset {
		return &Refused{wire.SystemError, fmt.Sprintf("%v: half message at queue offset %d", ErrDecided, halfQOff), ErrDecided}
	}
	var err error
	if s.buf, err = s.o.Store.ReadRecord(phys, s.buf[:0]); err != nil {
		return &Refused{wire.SystemError, fmt.Sprintf("Find prepared transaction message failed: %v", err), err}
	}
	v := wire.RecordView(s.buf)
	switch {
	case string(v.Topic()) != meta.TopicTransHalf:
		return &Refused{wire.SystemError, fmt.Sprintf("the message at commit log offset %d is not a half message", phys), ErrNotHalf}
	case string(wire.PropertyValue(v.Properties(), wire.PropProducerGroup)) != group:
		return &Refused{wire.SystemError, "The producer group wrong", ErrMismatch}
	case v.QueueOffset() != halfQOff:
		return &Refused{wire.SystemError, "The transaction state table offset wrong", ErrMismatch}
	}
	if commit {
		var m store.Message
		if m, s.props, err = schedule.Unpark(v, s.props); err != nil {
			return &Refused{wire.SystemError, err.Error(), err}
		}
		m.SysFlag = m.SysFlag&^wire.SysFlagTransactionMask | wire.SysFlagTransactionCommit
		m.PreparedTransactionOffset = phys
		if lvl := schedule.Level(m.Properties, s.o.MaxDelay); lvl > 0 {
			schedule.Park(nil, &m, lvl)
		}
		if r := s.o.Store.Put(&m); r.Status != store.PutOK && r.Status != store.FlushDiskTimeout {
			if !schedule.Permanent(r.Status) {
				// The store's state: the producer or a check-back retries.
				return &Refused{wire.SystemError, "store committed message: " + r.Status.String(), nil}
			}
			// The store will never take it: close the transaction, so
			// that it is not checked back again and again, and say so.
			s.o.Log.Error("[TRANSACTION] the store refused a committed message for good; transaction closed without delivery", "halfOffset", halfQOff, "offset", phys, "topic", m.Topic, "reason", r.Status.String())
			if err := s.decideLocked(halfQOff); err != nil {
				s.o.Log.Error("[TRANSACTION] recording a decision failed", "halfOffset", halfQOff, "err", err)
			}
			return &Refused{wire.MessageIllegal, fmt.Sprintf("the committed message cannot be stored in %s: %s", m.Topic, r.Status), nil}
		}
	}
	if err := s.decideLocked(halfQOff); err != nil {
		// The commit is stored; without its op record a check-back may
		// commit it again (at least once).
		s.o.Log.Error("[TRANSACTION] recording a decision failed", "halfOffset", halfQOff, "err", err)
		return &Refused{wire.SystemError, err.Error(), err}
	}
	return nil
}

// decideLocked appends the op record for halfQOff and marks it decided.
func (s *Service) decideLocked(halfQOff int64) error {
	body := strconv.AppendInt(nil, halfQOff, 10)
	props := wire.AppendProperty(nil, wire.PropTags, removeTag)
	m := store.Message{Topic: meta.TopicTransOpHalf, BornTimestamp: time.Now().UnixMilli(), BornHost: s.o.Store.StoreHost(), Body: body, Properties: props}
	r := s.o.Store.Put(&m)
	if r.Status != store.PutOK && r.Status != store.FlushDiskTimeout {
		return fmt.Errorf("store op record: %s", r.Status)
	}
	s.decided[halfQOff] = r.QueueOffset
	delete(s.checks, halfQOff)
	s.advanceLocked()
	return nil
}

// advanceLocked moves halfOffset over decided half messages, and opOffset
// to the oldest op record still needed to know a decision above it.
func (s *Service) advanceLocked() {
	for {
		if _, ok := s.decided[s.halfOffset]; !ok {
			break
		}
		delete(s.decided, s.halfOffset)
		s.halfOffset++
	}
	op := s.o.Store.MaxOffset(meta.TopicTransOpHalf, 0)
	for _, o := range s.decided {
		op = min(op, o)
	}
	s.opOffset = max(s.opOffset, op)
}

func (s *Service) persistLocked() error {
	f := stateFile{HalfOffset: s.halfOffset, OpOffset: s.opOffset, Checks: map[string]int{}}
	for off, n := range s.checks {
		f.Checks[strconv.FormatInt(off, 10)] = n
	}
	data, _ := json.Marshal(f)
	if err := atomicfile.Write(s.o.StateFile, data, atomicfile.Options{Backup: true}); err != nil {
		return fmt.Errorf("save transaction state: %w", err)
	}
	return nil
}

// Pending is the number of undecided half messages.
func (s *Service) Pending() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.o.Store.MaxOffset(meta.TopicTransHalf, 0) - s.halfOffset - int64(len(s.decided))
}

func (s *Service) loop(stop <-chan struct{}) {
	defer s.wg.Done()
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s.checkRound(time.Now())
	}
}

// checkRound asks producers about every undecided half message older than
// its immunity (transactionTimeOut, or the message's
// CHECK_IMMUNITY_TIME_IN_SECONDS), discarding those checked CheckMax
// times already.
func (s *Service) checkRound(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.o.Store
	end := st.MaxOffset(meta.TopicTransHalf, 0)
	if min := st.MinOffset(meta.TopicTransHalf, 0); s.halfOffset < min {
		s.o.Log.Warn("[TRANSACTION] undecided half messages removed by retention", "from", s.halfOffset, "to", min)
		for off := s.halfOffset; off < min; off++ {
			delete(s.decided, off)
			delete(s.checks, off)
		}
		s.halfOffset = min
	}
	for off := s.halfOffset; off < end; off++ {
		if _, ok := s.decided[off]; ok {
			continue
		}
		u, ok := st.UnitAt(meta.TopicTransHalf, 0, off)
		if !ok {
			continue
		}
		var err error
		if s.buf, err = st.ReadRecord(u.Phys, s.buf[:0]); err != nil {
			continue
		}
		v := wire.RecordView(s.buf)
		immunity := s.o.Timeout
		if sec, ok := wire.ParseInt(wire.PropertyValue(v.Properties(), wire.PropCheckImmunityTime)); ok && sec > 0 {
			immunity = time.Duration(sec) * time.Second
		}
		if now.Sub(time.UnixMilli(v.BornTimestamp())) < immunity {
			if immunity == s.o.Timeout {
				break // the queue is in send order: the rest are younger
			}
			continue
		}
		group := string(wire.PropertyValue(v.Properties(), wire.PropProducerGroup))
		if s.checks[off] >= s.o.CheckMax {
			s.discardLocked(v, off, group)
			continue
		}
		if !s.o.Check(group, s.checkFields(v, off), s.checkBody(v)) {
			continue // no producer online: not counted, asked again next round
		}
		s.checks[off]++
	}
	if err := s.persistLocked(); err != nil {
		s.o.Log.Error("[TRANSACTION] saving state failed", "err", err)
	}
}

// discardLocked gives up on a half message: a copy goes to
// TRANS_CHECK_MAX_TIME_TOPIC for operators, and it counts as decided.
func (s *Service) discardLocked(v wire.RecordView, off int64, group string) {
	if s.o.BeforeDiscard != nil {
		s.o.BeforeDiscard()
	}
	m := store.Republish(v, meta.TopicTransMaxTime, 0, v.Properties())
	if r := s.o.Store.Put(&m); r.Status != store.PutOK && r.Status != store.FlushDiskTimeout {
		s.o.Log.Error("[TRANSACTION] keeping a discarded half message failed", "halfOffset", off, "status", r.Status.String())
		return
	}
	s.o.Log.Warn("[TRANSACTION] half message discarded after reaching transactionCheckMax", "producerGroup", group,
		"halfOffset", off, "checks", s.checks[off], "msgId", string(wire.PropertyValue(v.Properties(), wire.PropUniqKey)))
	if err := s.decideLocked(off); err != nil {
		s.o.Log.Error("[TRANSACTION] recording a discard failed", "halfOffset", off, "err", err)
	}
}

// checkFields is CHECK_TRANSACTION_STATE's header as Java's
// AbstractTransactionalMessageCheckListener.sendCheckMessage fills it
// (apache/rocketmq rocketmq-all-4.9.8
// common/src/main/java/org/apache/rocketmq/common/protocol/header/CheckTransactionStateRequestHeader.java).
func (s *Service) checkFields(v wire.RecordView, off int64) map[string]string {
	uniq := string(wire.PropertyValue(v.Properties(), wire.PropUniqKey))
	return map[string]string{
		"tranStateTableOffset": strconv.FormatInt(off, 10),
		"commitLogOffset":      strconv.FormatInt(v.PhysicalOffset(), 10),
		"msgId":                uniq,
		"transactionId":        uniq,
		"offsetMsgId":          wire.OffsetMsgID(v.StoreHost(), v.PhysicalOffset()),
	}
}

// checkBody is the half message as the producer sent it: the stored
// record re-encoded with its real topic and queue.
func (s *Service) checkBody(v wire.RecordView) []byte {
	p := v.Properties()
	qid, _ := wire.ParseInt(wire.PropertyValue(p, wire.PropRealQueueID))
	r := v.Record()
	r.Topic, r.QueueID = string(wire.PropertyValue(p, wire.PropRealTopic)), int32(qid)
	r.SysFlag |= wire.SysFlagTransactionPrepared
	out := make([]byte, r.Size())
	r.EncodeTo(out)
	return out
}
