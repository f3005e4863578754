package wire

import (
	"errors"
	"fmt"
)

// Names of topics and consumer groups follow RocketMQ's TopicValidator
// (apache/rocketmq common/src/main/java/org/apache/rocketmq/common/topic/TopicValidator.java):
// ^[%|a-zA-Z0-9_-]+$, topics at most 127 bytes, groups at most 120 so that
// the group's %RETRY% and %DLQ% topics fit a record's topic field (the
// 5.x broker's GROUP_MAX_LENGTH; the client's own check allows 255).
// Every name that enters the broker, mqadmin or the store is checked here.

// MaxGroupLen is the longest consumer group name.
const MaxGroupLen = MaxTopicLen - len("%RETRY%")

// CheckTopic reports why a topic name is unusable, or nil. It runs on
// every send, so it is a loop rather than a regexp, and does not allocate
// for a good name.
func CheckTopic[T ~string | ~[]byte](name T) error {
	switch {
	case len(name) == 0:
		return errors.New("the specified topic is blank")
	case !legalChars(name):
		return fmt.Errorf("the specified topic: %q, contains illegal characters, allowing only ^[%%|a-zA-Z0-9_-]+$", name)
	case len(name) > MaxTopicLen:
		return fmt.Errorf("the specified topic: %q, is longer than topic max length: %d", name, MaxTopicLen)
	}
	return nil
}

// CheckGroup reports why a consumer group name is unusable, or nil.
func CheckGroup[T ~string | ~[]byte](name T) error {
	switch {
	case len(name) == 0:
		return errors.New("the specified group is blank")
	case !legalChars(name):
		return fmt.Errorf("the specified group: %q, contains illegal characters, allowing only ^[%%|a-zA-Z0-9_-]+$", name)
	case len(name) > MaxGroupLen:
		return fmt.Errorf("the specified group: %q, is longer than group max length: %d", name, MaxGroupLen)
	}
	return nil
}

func legalChars[T ~string | ~[]byte](name T) bool {
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '%', c == '|', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// StorableTopic reports whether a topic can be stored and name a
// consume-queue directory. It is looser than CheckTopic on purpose:
// earlier builds stored retry topics of groups with other characters
// (%RETRY%my.group), and what the store holds must keep loading; only
// names that cannot be a single directory entry are refused.
func StorableTopic[T ~string | ~[]byte](t T) bool {
	if len(t) == 0 || len(t) > MaxTopicLen || string(t) == "." || string(t) == ".." {
		return false
	}
	for i := 0; i < len(t); i++ {
		if t[i] == '/' || t[i] == 0 {
			return false
		}
	}
	return true
}
