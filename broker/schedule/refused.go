package schedule

import (
	"log/slog"

	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/wire"
)

// DeadLetter names the dead-letter topic of a message its real topic
// refused for good, creating the topic if needed; ok is false when the
// message has none. The broker supplies it: only it knows groups and
// topics.
type DeadLetter func(m *store.Message) (topic string, ok bool)

// Permanent reports whether the store refused a message for what it is
// (illegal topic or size, properties too long, a bad multi-dispatch
// list), so that trying again can never succeed, rather than for its own
// state (disk full, not writable, closing, too many light queues), which
// passes.
func Permanent(s store.PutStatus) bool {
	return s == store.MessageIllegal || s == store.PropertiesTooLong || s == store.MultiDispatchIllegal
}

// stored reports whether a put result means the record is in the log.
func stored(s store.PutStatus) bool { return s == store.PutOK || s == store.FlushDiskTimeout }

// refused handles a message the store refused for good: it goes to its
// dead-letter topic when it has one the store takes, else it is skipped
// with an error naming it. A re-publisher that retried it instead would
// never deliver anything queued behind it. It returns false when the
// dead-letter write failed for a passing reason: try again later.
func refused(st *store.Store, dl DeadLetter, log *slog.Logger, service string, phys int64, m *store.Message, status store.PutStatus) bool {
	if dl != nil {
		if topic, ok := dl(m); ok {
			d := *m
			d.Topic, d.QueueID = topic, 0
			r := st.Put(&d)
			if stored(r.Status) {
				log.Error("["+service+"] the store refused a due message for good; moved to its dead-letter topic", "offset", phys, "topic", m.Topic, "reason", status.String(), "deadLetterTopic", topic, "msgId", string(wire.PropertyValue(m.Properties, wire.PropUniqKey)))
				return true
			}
			if !Permanent(r.Status) {
				return false
			}
		}
	}
	log.Error("["+service+"] the store refused a due message for good; skipped", "offset", phys, "topic", m.Topic, "reason", status.String(), "msgId", string(wire.PropertyValue(m.Properties, wire.PropUniqKey)))
	return true
}
