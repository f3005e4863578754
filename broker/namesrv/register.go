package namesrv

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"

	"github.com/mqops/mqops/wire"
)

// versionRegisterBody is MQVersion V3_0_11: from it on REGISTER_BROKER
// carries a RegisterBrokerBody, before it a bare TopicConfigSerializeWrapper.
const versionRegisterBody = 37

// maxInflatedBody bounds a compressed registration once inflated, so a
// small hostile frame cannot exhaust memory (a 100 000-topic table is ~5 MiB).
const maxInflatedBody = 64 << 20

// bodyCRC32 is Java's UtilAll.crc32: IEEE CRC32 with the sign bit cleared.
func bodyCRC32(b []byte) int64 {
	return int64(crc32.ChecksumIEEE(b) & 0x7FFFFFFF)
}

// decodeRegisterBody decodes a REGISTER_BROKER body in any of its three
// forms. An empty body is an empty topic table with DataVersion (0, 0).
func decodeRegisterBody(body []byte, version int32, compressed bool) (wire.TopicConfigSerializeWrapper, []string, error) {
	switch {
	case len(body) == 0:
		return wire.TopicConfigSerializeWrapper{}, nil, nil
	case version < versionRegisterBody:
		var w wire.TopicConfigSerializeWrapper
		if err := json.Unmarshal(body, &w); err != nil {
			return w, nil, fmt.Errorf("decode TopicConfigSerializeWrapper: %w", err)
		}
		return w, nil, nil
	case compressed:
		return decodeCompressedBody(body)
	default:
		var rb wire.RegisterBrokerBody
		if err := json.Unmarshal(body, &rb); err != nil {
			return rb.TopicConfigSerializeWrapper, nil, fmt.Errorf("decode RegisterBrokerBody: %w", err)
		}
		return rb.TopicConfigSerializeWrapper, rb.FilterServerList, nil
	}
}

// decodeCompressedBody reads Java's RegisterBrokerBody.encode(true) form: a
// zlib stream of length-prefixed (int32 big-endian) parts — DataVersion
// JSON, topic count, one TopicConfig text per topic, filter servers JSON.
func decodeCompressedBody(body []byte) (wire.TopicConfigSerializeWrapper, []string, error) {
	var w wire.TopicConfigSerializeWrapper
	zr, err := zlib.NewReader(bytes.NewReader(body))
	if err != nil {
		return w, nil, fmt.Errorf("decode compressed RegisterBrokerBody: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxInflatedBody+1))
	if err != nil {
		return w, nil, fmt.Errorf("decode compressed RegisterBrokerBody: inflate: %w", err)
	}
	if len(raw) > maxInflatedBody {
		return w, nil, fmt.Errorf("decode compressed RegisterBrokerBody: inflates beyond %d bytes", maxInflatedBody)
	}
	r := partReader{b: raw}

	dv, err := r.part("dataVersion")
	if err != nil {
		return w, nil, err
	}
	if err := json.Unmarshal(dv, &w.DataVersion); err != nil {
		return w, nil, fmt.Errorf("decode compressed RegisterBrokerBody: dataVersion: %w", err)
	}
	n, err := r.int32("topic count")
	if err != nil {
		return w, nil, err
	}
	if n < 0 || int(n) > len(r.b)/4 { // every topic needs at least its length prefix
		return w, nil, fmt.Errorf("decode compressed RegisterBrokerBody: bad topic count %d", n)
	}
	w.TopicConfigTable = make(map[string]*wire.TopicConfig, n)
	for i := range int(n) {
		text, err := r.part("topic config")
		if err != nil {
			return w, nil, err
		}
		tc, err := parseTopicConfigText(string(text))
		if err != nil {
			return w, nil, fmt.Errorf("decode compressed RegisterBrokerBody: topic %d: %w", i, err)
		}
		w.TopicConfigTable[tc.TopicName] = tc
	}
	fsJSON, err := r.part("filter server list")
	if err != nil {
		return w, nil, err
	}
	var filterServers []string
	if err := json.Unmarshal(fsJSON, &filterServers); err != nil {
		return w, nil, fmt.Errorf("decode compressed RegisterBrokerBody: filter server list: %w", err)
	}
	return w, filterServers, nil
}

// parseTopicConfigText parses Java's TopicConfig.encode():
// "name read write perm filterType", single spaces. 5.x appends a sixth
// field (attributes JSON) which is ignored. topicSysFlag and order are not
// carried in this form.
func parseTopicConfigText(s string) (*wire.TopicConfig, error) {
	f := strings.SplitN(s, " ", 6)
	if len(f) < 5 {
		return nil, fmt.Errorf("topic config %q: want 5 space-separated fields", s)
	}
	var nums [3]int
	for i, name := range []string{"readQueueNums", "writeQueueNums", "perm"} {
		v, err := strconv.Atoi(f[i+1])
		if err != nil {
			return nil, fmt.Errorf("topic config %q: %s: %w", s, name, err)
		}
		nums[i] = v
	}
	return &wire.TopicConfig{
		TopicName:       f[0],
		ReadQueueNums:   nums[0],
		WriteQueueNums:  nums[1],
		Perm:            nums[2],
		TopicFilterType: f[4],
	}, nil
}

// partReader walks the inflated compressed body.
type partReader struct{ b []byte }

var errShortBody = errors.New("decode compressed RegisterBrokerBody: truncated")

func (r *partReader) int32(what string) (int32, error) {
	if len(r.b) < 4 {
		return 0, fmt.Errorf("%w reading %s", errShortBody, what)
	}
	v := int32(binary.BigEndian.Uint32(r.b))
	r.b = r.b[4:]
	return v, nil
}

func (r *partReader) part(what string) ([]byte, error) {
	n, err := r.int32(what + " length")
	if err != nil {
		return nil, err
	}
	if n < 0 || int(n) > len(r.b) {
		return nil, fmt.Errorf("%w: %s length %d, %d bytes left", errShortBody, what, n, len(r.b))
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p, nil
}
