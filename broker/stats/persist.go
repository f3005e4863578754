package stats

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"

	"github.com/mqops/mqops/atomicfile"
)

// fileName is the saved state under Options.Dir. It is binary: a busy
// broker has thousands of keys with days of minute buckets each, rewritten
// every minute.
//
// Layout, integers as (u)varints: "MQST", version, day, putBase, getBase,
// putMorning, getMorning, putYesterday, getYesterday; per kind the number
// of series, then per series its key (length, bytes) and per resolution
// the number of chunks, then per chunk its number and chunkLen bucket
// values; finally the CRC-32C of everything before it, 4 bytes big-endian.
const (
	fileName    = "stats.bin"
	fileMagic   = "MQST"
	fileVersion = 1
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// save writes the state; the caller holds saveMu.
func (m *Manager) save() error {
	m.state.Lock()
	m.enc = m.encode(m.enc[:0])
	m.state.Unlock()
	return atomicfile.Write(m.path, m.enc, atomicfile.Options{})
}

func (m *Manager) encode(b []byte) []byte {
	d := &m.daily
	b = append(b, fileMagic...)
	b = binary.AppendUvarint(b, fileVersion)
	b = binary.AppendVarint(b, d.day)
	for _, v := range []int64{d.putBase + m.brokerPut.value.Load(), d.getBase + m.brokerGet.value.Load(),
		d.putMorning, d.getMorning, d.putYesterday, d.getYesterday} {
		b = binary.AppendVarint(b, v)
	}
	for _, t := range m.series {
		b = binary.AppendUvarint(b, uint64(len(t)))
		for key, s := range t {
			b = binary.AppendUvarint(b, uint64(len(key)))
			b = append(b, key...)
			for _, r := range s.r {
				n := 0
				for _, c := range r.slots {
					if c != nil {
						n++
					}
				}
				b = binary.AppendUvarint(b, uint64(n))
				for _, c := range r.slots {
					if c == nil {
						continue
					}
					b = binary.AppendVarint(b, c.no)
					for _, v := range c.v {
						// Counts are not negative, so uvarint keeps them short; a
						// negative one still round-trips.
						b = binary.AppendUvarint(b, uint64(v))
					}
				}
			}
		}
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

// load reads the saved state, if any.
func (m *Manager) load() error {
	data, err := os.ReadFile(m.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load statistics: %w", err)
	}
	if err := m.decode(data); err != nil {
		return fmt.Errorf("load statistics from %s: %w (remove the file to start afresh)", m.path, err)
	}
	return nil
}

func (m *Manager) decode(data []byte) error {
	if len(data) < len(fileMagic)+4 || string(data[:len(fileMagic)]) != fileMagic {
		return errors.New("not a statistics file")
	}
	body := data[:len(data)-4]
	if crc32.Checksum(body, crcTable) != binary.BigEndian.Uint32(data[len(body):]) {
		return errors.New("checksum mismatch")
	}
	r := reader{b: body[len(fileMagic):]}
	if v := r.uvarint(); r.err == nil && v != fileVersion {
		return fmt.Errorf("unsupported version %d", v)
	}
	d := &m.daily
	d.day = r.varint()
	for _, p := range []*int64{&d.putBase, &d.getBase, &d.putMorning, &d.getMorning, &d.putYesterday, &d.getYesterday} {
		*p = r.varint()
	}
	for k := range m.series {
		for range r.count(1) {
			key := string(r.bytes(int(r.count(1))))
			s := m.seriesOf(k, key)
			for i := range s.r {
				for range r.count(1 + chunkLen) {
					no := r.varint()
					for j := range int64(chunkLen) {
						if v := int64(r.uvarint()); v != 0 {
							s.r[i].add(no*chunkLen+j, v, resolutions[i].slots())
						}
					}
				}
			}
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errors.New("trailing bytes")
	}
	return r.err
}

// reader decodes varints; after the first error it returns zeros.
type reader struct {
	b   []byte
	err error
}

var errTruncated = errors.New("truncated")

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a number of items of at least size bytes each, refusing
// counts the remaining data cannot hold.
func (r *reader) count(size int) uint64 {
	n := r.uvarint()
	if n > uint64(len(r.b)/size) {
		r.fail()
		return 0
	}
	return n
}

func (r *reader) bytes(n int) []byte {
	if n > len(r.b) {
		r.fail()
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errTruncated
	}
	r.b = nil
}
