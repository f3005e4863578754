// Package epoch keeps a replica's master epochs: which controller-assigned
// master epoch wrote each range of the commit log (RocketMQ 5 controller
// mode; apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/ha/autoswitch/EpochFileCache.java).
// The list is persisted in the epochFileCheckpoint text format of
// apache/rocketmq common/src/main/java/org/apache/rocketmq/common/utils/CheckpointFile.java
// so a Java broker's file is read and written unchanged, and replicas
// compare their lists to find where their logs diverge (FindConsistentPoint).
package epoch

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/mqops/mqops/atomicfile"
)

// Entry is one master epoch and the commit-log offset its first byte is at.
// It ends where the next entry starts; the last one at the log's end.
type Entry struct {
	Epoch       int32
	StartOffset int64
}

// ErrNotIncreasing is returned (wrapped) by Append when an entry does not
// follow the last one.
var ErrNotIncreasing = errors.New("epoch entry does not follow the last one")

// File is the epoch list of one replica, mirrored in its file. Safe for
// concurrent use.
type File struct {
	path string

	mu      sync.RWMutex
	entries []Entry
}

// Open loads path (or its .bak copy when path is missing, empty or damaged,
// as CheckpointFile.read does). A missing file is an empty list.
func Open(path string) (*File, error) {
	f := &File{path: path}
	fellBack, err := atomicfile.Load(path, func(b []byte) error {
		e, err := Parse(b)
		if err == nil {
			f.entries = e
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("epoch file: %w", err)
	}
	_ = fellBack // the backup is the previous good list: nothing to repair by hand
	return f, nil
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Entries returns a copy of the list, oldest first.
func (f *File) Entries() []Entry {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return append([]Entry(nil), f.entries...)
}

// Last returns the newest entry; ok is false for an empty list.
func (f *File) Last() (e Entry, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if len(f.entries) == 0 {
		return Entry{}, false
	}
	return f.entries[len(f.entries)-1], true
}

// LastEpoch is the newest epoch, -1 for an empty list (EpochFileCache.lastEpoch).
func (f *File) LastEpoch() int32 {
	if e, ok := f.Last(); ok {
		return e.Epoch
	}
	return -1
}

// Find returns the entry holding offset off, given the log's end maxOffset
// (the last entry's end), and that entry's end offset.
func (f *File) Find(off, maxOffset int64) (e Entry, end int64, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for i, x := range f.entries {
		end := maxOffset
		if i+1 < len(f.entries) {
			end = f.entries[i+1].StartOffset
		}
		if x.StartOffset <= off && off < end {
			return x, end, true
		}
	}
	return Entry{}, 0, false
}

// Append adds e after the last entry and persists the list. Epoch and start
// offset must both grow, as in Java, with one deliberate deviation: an entry
// starting at the last entry's offset with a higher epoch replaces it (the
// previous epoch wrote nothing, e.g. a master elected twice without a send
// in between); Java refuses that append and keeps the stale epoch.
func (f *File) Append(e Entry) error {
	if e.StartOffset < 0 {
		return fmt.Errorf("%w: negative start offset %d", ErrNotIncreasing, e.StartOffset)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	next := append([]Entry(nil), f.entries...)
	if n := len(next); n > 0 {
		last := next[n-1]
		switch {
		case e.Epoch <= last.Epoch:
			return fmt.Errorf("%w: epoch %d after epoch %d", ErrNotIncreasing, e.Epoch, last.Epoch)
		case e.StartOffset < last.StartOffset:
			return fmt.Errorf("%w: epoch %d starts at %d, before epoch %d's start %d",
				ErrNotIncreasing, e.Epoch, e.StartOffset, last.Epoch, last.StartOffset)
		case e.StartOffset == last.StartOffset:
			next = next[:n-1]
		}
	}
	next = append(next, e)
	return f.store(next)
}

// TruncateFrom removes the entries starting at or after off (the log was
// cut to off; EpochFileCache.truncateSuffixByOffset) and persists the list.
func (f *File) TruncateFrom(off int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.entries)
	for n > 0 && f.entries[n-1].StartOffset >= off {
		n--
	}
	if n == len(f.entries) {
		return nil
	}
	return f.store(append([]Entry(nil), f.entries[:n]...))
}

// Reset replaces the whole list (an empty replica adopting nothing, tests).
func (f *File) Reset(entries []Entry) error {
	if err := check(entries); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.store(append([]Entry(nil), entries...))
}

// store persists next and installs it; f.mu held. An empty list removes
// the file and its backup: Java's CheckpointFile.write skips empty lists,
// which would let a truncated-away epoch come back at the next start.
func (f *File) store(next []Entry) error {
	if len(next) == 0 {
		for _, p := range []string{f.path, f.path + ".bak"} {
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("epoch file: %w", err)
			}
		}
		f.entries = nil
		return nil
	}
	if err := atomicfile.Write(f.path, Format(next), atomicfile.Options{Backup: true}); err != nil {
		return fmt.Errorf("epoch file: %w", err)
	}
	f.entries = next
	return nil
}

// Format encodes entries as CheckpointFile writes them: the entry count,
// the CRC32 of the entry lines (masked with 0x7FFFFFFF as UtilAll.crc32
// does), then "epoch-startOffset" per line, each line ended by "\n".
func Format(entries []Entry) []byte {
	var lines bytes.Buffer
	for _, e := range entries {
		fmt.Fprintf(&lines, "%d-%d\n", e.Epoch, e.StartOffset)
	}
	crc := crc32.ChecksumIEEE(lines.Bytes()) & 0x7FFFFFFF
	out := fmt.Appendf(nil, "%d\n%d\n", len(entries), crc)
	return append(out, lines.Bytes()...)
}

// Parse decodes a file written by Format or by Java. A CRC of 0 is not
// checked (CheckpointFile.NOT_CHECK_CRC_MAGIC_CODE). Entries must increase
// in epoch and start offset.
func Parse(b []byte) ([]Entry, error) {
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 2 {
		return nil, errors.New("want a count line and a CRC line")
	}
	count, err := strconv.Atoi(lines[0])
	if err != nil || count < 0 {
		return nil, fmt.Errorf("count line %q is not a count", lines[0])
	}
	want, err := strconv.ParseInt(lines[1], 10, 32)
	if err != nil {
		return nil, fmt.Errorf("CRC line %q is not an int32", lines[1])
	}
	body := lines[2:]
	if len(body) != count {
		return nil, fmt.Errorf("expected %d entries, found %d", count, len(body))
	}
	var joined bytes.Buffer
	entries := make([]Entry, 0, count)
	for _, l := range body {
		joined.WriteString(l)
		joined.WriteByte('\n')
		ep, start, ok := strings.Cut(l, "-")
		e, err1 := strconv.ParseInt(ep, 10, 32)
		s, err2 := strconv.ParseInt(start, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("entry %q is not epoch-startOffset", l)
		}
		entries = append(entries, Entry{Epoch: int32(e), StartOffset: s})
	}
	if got := int64(crc32.ChecksumIEEE(joined.Bytes()) & 0x7FFFFFFF); want != 0 && got != want {
		return nil, fmt.Errorf("entries CRC32 %d, file says %d", got, want)
	}
	if err := check(entries); err != nil {
		return nil, err
	}
	return entries, nil
}

func check(entries []Entry) error {
	for i, e := range entries {
		if e.StartOffset < 0 {
			return fmt.Errorf("%w: epoch %d starts at negative offset %d", ErrNotIncreasing, e.Epoch, e.StartOffset)
		}
		if i > 0 && (e.Epoch <= entries[i-1].Epoch || e.StartOffset < entries[i-1].StartOffset) {
			return fmt.Errorf("%w: %d-%d after %d-%d", ErrNotIncreasing, e.Epoch, e.StartOffset,
				entries[i-1].Epoch, entries[i-1].StartOffset)
		}
	}
	return nil
}

// FindConsistentPoint is where a replica's log stops agreeing with its
// master's (EpochFileCache.findConsistentPoint, used by
// AutoSwitchHAClient.doTruncate): walking the local epochs from the newest,
// the first one the master also has with the same start offset gives
// min(its local end, its master end); each list's last entry ends at that
// side's max offset. Local epochs that hold no bytes (a master killed
// before its first write, whose empty epoch the new master's first one
// replaced: see Append) count as no epochs, which doTruncate keeps as they
// are: the replica keeps what both logs hold before their first epoch.
// -1 means no common epoch while the local epochs hold data: the logs
// share nothing a replica could keep, and an operator must decide (Java
// retries forever).
func FindConsistentPoint(local []Entry, localMax int64, master []Entry, masterMax int64) int64 {
	end := func(list []Entry, i int, maxOff int64) int64 {
		if i+1 < len(list) {
			return list[i+1].StartOffset
		}
		return maxOff
	}
	for i := len(local) - 1; i >= 0; i-- {
		for j := range master {
			if master[j].Epoch == local[i].Epoch {
				if master[j].StartOffset != local[i].StartOffset {
					break
				}
				return min(end(local, i, localMax), end(master, j, masterMax))
			}
		}
	}
	if len(local) > 0 && len(master) > 0 && local[0].StartOffset >= localMax {
		return min(local[0].StartOffset, master[0].StartOffset)
	}
	return -1
}
