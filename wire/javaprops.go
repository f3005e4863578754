package wire

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
)

// Java .properties text: broker.conf and namesrv.conf, and the bodies of
// GET/UPDATE_BROKER_CONFIG and GET/UPDATE_NAMESRV_CONFIG (Java's
// MixAll.string2Properties and properties2String).

// JavaProperty is one key=value of Java properties text.
type JavaProperty struct {
	Key, Value string
}

// ParseJavaProperties parses Java properties text, such as the body of an
// UPDATE_BROKER_CONFIG request, into a map. Keys keep their case; a later
// duplicate wins, as in Java.
func ParseJavaProperties(text string) (map[string]string, error) {
	props, err := ReadJavaProperties(text)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(props))
	for _, p := range props {
		m[p.Key] = p.Value
	}
	return m, nil
}

// ReadJavaProperties parses Java properties text into its key=value pairs
// in order, duplicates included. It follows java.util.Properties.load: '#'
// and '!' comment lines, key ends at the first unescaped '=', ':' or blank,
// a trailing odd backslash continues the line, and \t \n \r \f \uXXXX
// escapes. Two differences, both for safety: text is UTF-8 (Java reads
// ISO-8859-1, which only matters for non-ASCII), and values lose trailing
// blanks (Java keeps them and then fails to parse "10911 " as a port,
// silently).
func ReadJavaProperties(text string) ([]JavaProperty, error) {
	text = strings.TrimPrefix(text, "\ufeff")
	text = strings.ReplaceAll(text, "\r\n", "\n")
	lines := strings.Split(strings.ReplaceAll(text, "\r", "\n"), "\n")
	var out []JavaProperty
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
		out = append(out, JavaProperty{key, strings.TrimRight(value, blanks)})
	}
	return out, nil
}

// FormatJavaProperties renders settings as Java properties text, one
// key=value line each in the order given, as GET_BROKER_CONFIG answers and
// config files are written. ReadJavaProperties reads it back unchanged. It
// escapes only what the syntax needs, so values such as "127.0.0.1:9876"
// stay readable.
func FormatJavaProperties(props []JavaProperty) []byte {
	var b strings.Builder
	for _, p := range props {
		escapeProperty(&b, p.Key, true)
		b.WriteByte('=')
		escapeProperty(&b, p.Value, false)
		b.WriteByte('\n')
	}
	return []byte(b.String())
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
	if key, err = unescapeProperty(s[:end]); err != nil {
		return "", "", err
	}
	value, err = unescapeProperty(strings.TrimLeft(rest, blanks))
	return key, value, err
}

func unescapeProperty(s string) (string, error) {
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

// escapeProperty writes s escaped for a key or a value: blanks that would
// be trimmed and, in keys, the separators and comment starts.
func escapeProperty(b *strings.Builder, s string, isKey bool) {
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
}
