package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/spf13/viper"
)

// ParseProperties parses Java .properties text, such as the body of an
// UPDATE_BROKER_CONFIG request. Keys keep their case.
func ParseProperties(text string) (map[string]string, error) {
	v, codec := newReader()
	if err := v.ReadConfig(strings.NewReader(text)); err != nil {
		return nil, parseError(err)
	}
	return codec.settings(v), nil
}

// readFile reads a properties file such as Java's broker.conf.
func readFile(path string) (map[string]string, error) {
	v, codec := newReader()
	v.SetConfigFile(path)
	if err := v.ReadInConfig(); err != nil {
		return nil, parseError(err)
	}
	return codec.settings(v), nil
}

// newReader returns a viper that decodes Java properties with our codec:
// viper 1.20 dropped its own properties support, and its replacement module
// (go-viper/encoding) is not available to this build.
func newReader() (*viper.Viper, *javaProperties) {
	codec := &javaProperties{spelling: map[string]string{}, caseVariants: map[string]string{}}
	v := viper.NewWithOptions(viper.WithDecoderRegistry(codec))
	v.SetConfigType("properties")
	return v, codec
}

// parseError drops viper's "While parsing config" wrapper: our own messages
// already say what and where.
func parseError(err error) error {
	var pe viper.ConfigParseError
	if errors.As(err, &pe) {
		return pe.Unwrap()
	}
	return err
}

// javaProperties is a viper decoder for Java .properties text. It records
// each key's spelling because viper lower-cases keys and RocketMQ's are
// case-sensitive.
type javaProperties struct {
	spelling map[string]string // lower-case key -> key as written
	// Keys that differ from an earlier one only in case: viper would merge
	// them, Java keeps them apart.
	caseVariants map[string]string
}

// Decoder makes javaProperties its own viper.DecoderRegistry.
func (c *javaProperties) Decoder(format string) (viper.Decoder, error) {
	if format != "properties" {
		return nil, fmt.Errorf("no decoder for %q", format)
	}
	return c, nil
}

// Decode implements viper.Decoder.
func (c *javaProperties) Decode(b []byte, into map[string]any) error {
	props, err := parseJavaProperties(string(b))
	if err != nil {
		return err
	}
	for _, p := range props {
		lower := strings.ToLower(p.key)
		if prev, ok := c.spelling[lower]; ok && prev != p.key {
			c.caseVariants[p.key] = p.value
			continue
		}
		c.spelling[lower] = p.key
		into[p.key] = p.value
	}
	return nil
}

// settings returns what v read, under the keys' original spelling.
func (c *javaProperties) settings(v *viper.Viper) map[string]string {
	out := maps.Clone(c.caseVariants)
	for _, k := range v.AllKeys() {
		out[c.spelling[k]] = v.GetString(k)
	}
	return out
}

type property struct{ key, value string }

// parseJavaProperties follows java.util.Properties.load: '#' and '!'
// comment lines, key ends at the first unescaped '=', ':' or blank, a
// trailing odd backslash continues the line, and \t \n \r \f \uXXXX escapes.
// Two differences, both for safety: text is UTF-8 (Java reads ISO-8859-1,
// which only matters for non-ASCII), and values lose trailing blanks (Java
// keeps them and then fails to parse "10911 " as a port, silently).
// Later duplicates win, as in Java.
func parseJavaProperties(text string) ([]property, error) {
	text = strings.TrimPrefix(text, "\ufeff")
	text = strings.ReplaceAll(text, "\r\n", "\n")
	lines := strings.Split(strings.ReplaceAll(text, "\r", "\n"), "\n")
	var out []property
	for i := 0; i < len(lines); i++ {
		start := i + 1
		line := strings.TrimLeft(lines[i], blanks)
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		var logical strings.Builder
		for {
			if trailingBackslashes(line)%2 == 0 {
				logical.WriteString(line)
				break
			}
			logical.WriteString(line[:len(line)-1])
			i++
			if i == len(lines) {
				break
			}
			line = strings.TrimLeft(lines[i], blanks)
		}
		key, value, err := splitKeyValue(logical.String())
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", start, err)
		}
		if key == "" {
			return nil, fmt.Errorf("line %d: empty key", start)
		}
		out = append(out, property{key, strings.TrimRight(value, blanks)})
	}
	return out, nil
}

// blanks are the characters Java's Properties treats as white space.
const blanks = " \t\f"

func trailingBackslashes(s string) int {
	n := 0
	for n < len(s) && s[len(s)-1-n] == '\\' {
		n++
	}
	return n
}

func splitKeyValue(s string) (key, value string, err error) {
	end := 0
	for escaped := false; end < len(s); end++ {
		c := s[end]
		if escaped {
			escaped = false
			continue
		}
		if c == '\\' {
			escaped = true
			continue
		}
		if c == '=' || c == ':' || strings.IndexByte(blanks, c) >= 0 {
			break
		}
	}
	rest := strings.TrimLeft(s[end:], blanks)
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = rest[1:]
	}
	if key, err = unescape(s[:end]); err != nil {
		return "", "", err
	}
	value, err = unescape(strings.TrimLeft(rest, blanks))
	return key, value, err
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		i++
		if i == len(s) {
			break // a backslash ending the file: Java drops it too
		}
		switch c := s[i]; c {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			r, n, err := unicodeEscape(s[i-1:])
			if err != nil {
				return "", err
			}
			b.WriteRune(r)
			i += n - 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// unicodeEscape decodes the \uXXXX at the start of s, or a surrogate pair of
// them, and returns the rune and how many bytes it used.
func unicodeEscape(s string) (rune, int, error) {
	hi, err := hex4(s)
	if err != nil {
		return 0, 0, err
	}
	if utf16.IsSurrogate(hi) {
		if lo, err := hex4(s[6:]); err == nil {
			if r := utf16.DecodeRune(hi, lo); r != '\uFFFD' {
				return r, 12, nil
			}
		}
	}
	return hi, 6, nil
}

func hex4(s string) (rune, error) {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return 0, errors.New(`malformed \uXXXX escape`)
	}
	n, err := strconv.ParseUint(s[2:6], 16, 16)
	if err != nil {
		return 0, fmt.Errorf(`malformed \uXXXX escape %q`, s[:6])
	}
	return rune(n), nil
}

// writeProperty writes one key=value line that parseJavaProperties reads
// back unchanged. It escapes only what the syntax needs, so values such as
// "127.0.0.1:9876" stay readable.
// FormatProperties renders settings as Java properties text, one per line,
// as GET_BROKER_CONFIG answers and config files are written.
func FormatProperties(kvs []KeyValue) []byte {
	var buf bytes.Buffer
	for _, kv := range kvs {
		_ = writeProperty(&buf, kv.Key, kv.Value) // a bytes.Buffer does not fail
	}
	return buf.Bytes()
}

func writeProperty(w io.Writer, key, value string) error {
	_, err := fmt.Fprintf(w, "%s=%s\n", escape(key, true), escape(value, false))
	return err
}

func escape(s string, isKey bool) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == ' ' && (isKey || i == 0),
			isKey && (r == '=' || r == ':'),
			isKey && i == 0 && (r == '#' || r == '!'):
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Overrides collects repeated `-p key=value` flags; it implements
// flag.Value. Keys are RocketMQ names, applied over the config file.
type Overrides map[string]string

func (o Overrides) String() string { return fmt.Sprint(map[string]string(o)) }

// Set parses one key=value.
func (o Overrides) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	o[strings.TrimSpace(k)] = strings.TrimSpace(v)
	return nil
}
