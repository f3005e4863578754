// Package logtail reads a growing log file a batch of whole lines at a time
// and remembers in a small state file how far it got, so that a helper run
// by the Zabbix agent every minute sees each line once, across its own
// restarts and across the broker's log rotation.
//
// # Rotation
//
// The broker's logging package moves a log aside by renaming it to
// <name>.<yyyy-MM-dd>.<N> in the same directory and creating a new <name>:
// at the first write of a new local day (also the first write after a
// restart on a later day; the date is the day the lines were written) or
// when the file would pass 128 MiB. N counts from 1 within a day, and the
// ten newest rotated files are kept. A rename keeps the
// inode, so the Tailer finds the file it was reading among the rotated
// files by device and inode, reads the rest of it, then the files rotated
// after it, then the new <name> from its start. Other cases:
//
//   - truncated in place (copy-truncate): the file is shorter than the saved
//     offset, or its first bytes changed; it is read again from 0.
//   - replaced (another inode at <name>) and the old file is gone: the new
//     file is read from 0 and Result.Lost says the old one's unread tail,
//     if any, was missed.
//   - missing: nothing to read, no error; reading resumes when it appears.
//
// # Delivery
//
// Only lines ending in '\n' are handed out; a partial last line stays for
// a later call. Next does not save the position; Commit does. A caller that
// saves its own results before calling Commit re-reads, after a crash
// between the two, the lines of one batch, never more; a caller that
// commits first may lose one batch instead. The broker writes whole lines in
// one write, so a torn line only appears at the end of a file cut short by
// a crash; that end is skipped once the file has been rotated.
package logtail

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"slices"
	"syscall"

	"github.com/mqops/mqops/atomicfile"
	"github.com/mqops/mqops/broker/logging"
)

// DefaultMaxBytes bounds one Next when Options.MaxBytes is 0: a minute of a
// busy stats.log is far smaller, and the buffer is allocated once.
const DefaultMaxBytes = 1 << 20

// headSize is how many leading bytes identify a file's content. Broker log
// lines start with a millisecond time stamp, so 64 bytes tell two files
// apart when an inode number is reused.
const headSize = 64

// Options adjust a Tailer.
type Options struct {
	// MaxBytes is the most one Next reads; a longer line is skipped.
	MaxBytes int
}

// state is what the state file holds: the file being read and how far.
//
// Invariants: Offset is just after a '\n' (or 0), unless Skipping, when it
// is inside a line longer than MaxBytes whose rest must be dropped.
// HeadLen = min(Offset, headSize) as of the last Next, and HeadSum is the
// FNV-1a hash of those first HeadLen bytes. Ino == 0 means no file yet.
type state struct {
	Path     string `json:"path"` // the log's path, to refuse another log's state
	Dev      uint64 `json:"dev"`
	Ino      uint64 `json:"ino"`
	Offset   int64  `json:"offset"`
	HeadLen  int    `json:"headLen"`
	HeadSum  uint64 `json:"headSum"`
	Skipping bool   `json:"skipping,omitempty"`
}

// Result says what one Next did.
type Result struct {
	Lines   int   // lines handed to the callback
	More    bool  // stopped at MaxBytes; call again for the rest
	Rotated bool  // moved on to another file
	Lost    bool  // the previous file was gone: its unread lines, if any, were missed
	Skipped int64 // bytes dropped: over-long lines, a torn line at the end of a rotated file
}

// Tailer reads one log file. It is not safe for concurrent use, and two
// Tailers must not share a state file.
type Tailer struct {
	path      string
	statePath string // "" when the caller keeps the position (Resume)
	buf       []byte
	st        state
}

// Open returns a Tailer for the log at path that keeps its position in
// statePath. A missing state file starts at the beginning of the log.
func Open(path, statePath string, o Options) (*Tailer, error) {
	data, err := os.ReadFile(statePath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read state %s: %w", statePath, err)
	}
	t, err := Resume(path, data, o)
	if err != nil {
		return nil, fmt.Errorf("read state %s: %w", statePath, err)
	}
	t.statePath = statePath
	return t, nil
}

// Resume returns a Tailer for the log at path that continues from a
// position Position returned earlier; empty saved starts at the beginning.
// Callers that save the position together with what they derived from the
// lines, in one atomic write, never count a line twice.
func Resume(path string, saved []byte, o Options) (*Tailer, error) {
	if o.MaxBytes < 0 {
		return nil, fmt.Errorf("tail %s: negative MaxBytes %d", path, o.MaxBytes)
	}
	t := &Tailer{path: path, buf: make([]byte, cmp.Or(o.MaxBytes, DefaultMaxBytes))}
	t.st.Path = path
	if len(saved) == 0 {
		return t, nil
	}
	if err := json.Unmarshal(saved, &t.st); err != nil {
		return nil, fmt.Errorf("tail %s: bad position: %w", path, err)
	}
	if t.st.Path != path {
		return nil, fmt.Errorf("tail %s: the position belongs to %s", path, t.st.Path)
	}
	return t, nil
}

// Position returns the position Next has reached, for Resume.
func (t *Tailer) Position() []byte {
	data, _ := json.Marshal(t.st) // plain fields: cannot fail
	return data
}

// Commit saves the position Next has reached in the state file Open was
// given.
func (t *Tailer) Commit() error {
	if t.statePath == "" {
		return fmt.Errorf("tail %s: no state file; save Position instead", t.path)
	}
	if err := atomicfile.Write(t.statePath, t.Position(), atomicfile.Options{}); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// Next hands fn the complete lines after the position, without their
// '\n', reading at most MaxBytes. The slice is valid only during the call.
func (t *Tailer) Next(fn func(line []byte)) (Result, error) {
	var res Result
	budget := len(t.buf)
	for {
		f, current, err := t.locate(&res)
		if f == nil || err != nil {
			return res, err
		}
		n, eof, err := t.drain(f, t.buf[len(t.buf)-budget:], !current, fn, &res)
		if err == nil {
			err = t.updateHead(f)
		}
		f.Close()
		budget -= n
		if err != nil || !eof || current {
			res.More = !eof && err == nil
			return res, err
		}
		// A rotated file read to its end: go on with the next one.
		res.Rotated = true
		if err := t.advance(); err != nil {
			return res, err
		}
		if budget == 0 {
			res.More = true
			return res, nil
		}
	}
}

// locate opens the file the state points to. current says it is the file
// at path, still being written; otherwise it is a rotated one. A nil file
// and error mean there is nothing to read.
func (t *Tailer) locate(res *Result) (f *os.File, current bool, err error) {
	f, err = os.Open(t.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("open %s: %w", t.path, err)
	}
	if f != nil {
		dev, ino, size, err := identify(f)
		if err != nil {
			f.Close()
			return nil, false, err
		}
		if t.st.Ino == 0 || (dev == t.st.Dev && ino == t.st.Ino) {
			if t.st.Ino == 0 {
				t.st = state{Path: t.path, Dev: dev, Ino: ino}
			}
			if !t.sameHead(f) {
				// An inode reused by a new file (or truncated and
				// refilled): the old file and whatever of it was unread
				// are gone, as when it is replaced under a new inode.
				res.Lost, res.Rotated = true, true
				t.st = state{Path: t.path, Dev: dev, Ino: ino}
			} else if size < t.st.Offset {
				// Truncated (copy-truncate): everything here is unread.
				t.st = state{Path: t.path, Dev: dev, Ino: ino}
			}
			return f, true, nil
		}
		f.Close()
	}
	if t.st.Ino == 0 {
		return nil, false, nil
	}
	old, err := t.findRotated(t.st.Dev, t.st.Ino)
	if err != nil || old != nil {
		return old, false, err
	}
	if f == nil {
		return nil, false, nil // nothing at path; the old file may be back later
	}
	// Replaced, and the old file is nowhere to be found.
	res.Lost, res.Rotated = true, true
	t.st = state{Path: t.path}
	return t.locate(res)
}

// findRotated opens the rotated file with the given identity and the
// expected head, or returns nil.
func (t *Tailer) findRotated(dev, ino uint64) (*os.File, error) {
	for _, b := range logging.Rotated(t.path) {
		fi, err := os.Stat(b)
		if err != nil {
			continue // pruned meanwhile
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || uint64(st.Dev) != dev || uint64(st.Ino) != ino || fi.Size() < t.st.Offset {
			continue
		}
		f, err := os.Open(b)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", b, err)
		}
		if t.sameHead(f) {
			return f, nil
		}
		f.Close()
	}
	return nil, nil
}

// advance moves the state from a finished rotated file to the next file:
// the oldest file rotated after it, else the file at path. The current
// file's identity is taken by locate.
func (t *Tailer) advance() error {
	bs := logging.Rotated(t.path)
	i := slices.IndexFunc(bs, func(b string) bool {
		fi, err := os.Stat(b)
		if err != nil {
			return false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		return ok && uint64(st.Dev) == t.st.Dev && uint64(st.Ino) == t.st.Ino
	})
	t.st = state{Path: t.path}
	if i < 0 || i+1 == len(bs) {
		return nil
	}
	fi, err := os.Stat(bs[i+1])
	if err != nil {
		return nil // pruned meanwhile; go on with the current file
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("stat %s: no device and inode", bs[i+1])
	}
	t.st.Dev, t.st.Ino = uint64(st.Dev), uint64(st.Ino)
	return nil
}

// drain reads buf's worth from the state's offset and hands out the whole
// lines. finished says the file will not grow (it was rotated), so bytes
// after its last '\n' are a torn line to skip. It returns the bytes read
// and whether the read reached the end of the file.
func (t *Tailer) drain(f *os.File, buf []byte, finished bool, fn func([]byte), res *Result) (int, bool, error) {
	n, err := f.ReadAt(buf, t.st.Offset)
	eof := errors.Is(err, io.EOF)
	if err != nil && !eof {
		return n, false, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	if n < len(buf) {
		eof = true // ReadAt reports io.EOF only with a short read
	}
	data := buf[:n]
	if t.st.Skipping {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			t.st.Offset += int64(n)
			res.Skipped += int64(n)
			return n, eof, nil
		}
		t.st.Offset += int64(i + 1)
		res.Skipped += int64(i + 1)
		t.st.Skipping = false
		data = data[i+1:]
	}
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		fn(data[:i])
		res.Lines++
		t.st.Offset += int64(i + 1)
		data = data[i+1:]
	}
	switch {
	case len(data) == len(t.buf):
		// A whole buffer without '\n': the line can never be handed out.
		t.st.Offset += int64(len(data))
		res.Skipped += int64(len(data))
		t.st.Skipping = true
	case eof && finished && len(data) > 0:
		t.st.Offset += int64(len(data))
		res.Skipped += int64(len(data))
	}
	return n, eof, nil
}

// updateHead records the file's first bytes while the offset has not yet
// passed headSize.
func (t *Tailer) updateHead(f *os.File) error {
	want := int(min(t.st.Offset, headSize))
	if want <= t.st.HeadLen {
		return nil
	}
	sum, err := headSum(f, want)
	if err != nil {
		return err
	}
	t.st.HeadLen, t.st.HeadSum = want, sum
	return nil
}

// sameHead reports whether f starts with the bytes recorded in the state.
func (t *Tailer) sameHead(f *os.File) bool {
	if t.st.HeadLen == 0 {
		return true
	}
	sum, err := headSum(f, t.st.HeadLen)
	return err == nil && sum == t.st.HeadSum
}

func headSum(f *os.File, n int) (uint64, error) {
	var b [headSize]byte
	if _, err := f.ReadAt(b[:n], 0); err != nil {
		return 0, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	h := fnv.New64a()
	h.Write(b[:n])
	return h.Sum64(), nil
}

func identify(f *os.File) (dev, ino uint64, size int64, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, 0, fmt.Errorf("stat %s: no device and inode", f.Name())
	}
	return uint64(st.Dev), uint64(st.Ino), fi.Size(), nil
}
