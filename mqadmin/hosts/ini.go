package hosts

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// parseINI reads an Ansible INI inventory into b. Hosts listed before any
// section go to the "ungrouped" group, as in Ansible.
func (b *builder) parseINI(file string, data []byte) error {
	section, kind := "ungrouped", "hosts"
	for i, line := range strings.Split(string(data), "\n") {
		pos := fmt.Sprintf("%s:%d", file, i+1)
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				return fmt.Errorf("%s: malformed section header %q", pos, line)
			}
			section, kind = line[1:len(line)-1], "hosts"
			if name, k, ok := strings.Cut(section, ":"); ok {
				section, kind = name, k
			}
			if kind != "hosts" && kind != "vars" && kind != "children" {
				return fmt.Errorf("%s: unsupported section [%s:%s]: want [group], [group:vars] or [group:children]", pos, section, kind)
			}
			if section == "" || strings.ContainsAny(section, " \t[]") {
				return fmt.Errorf("%s: bad group name %q", pos, section)
			}
			b.group(section)
			continue
		}
		var err error
		switch kind {
		case "hosts":
			err = b.iniHost(section, line, pos)
		case "vars":
			k, v, ok := strings.Cut(line, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" || strings.ContainsAny(k, " \t") {
				return fmt.Errorf("%s: want key=value in [%s:vars], got %q", pos, section, line)
			}
			b.group(section).vars[k] = Var{Value: unquote(strings.TrimSpace(v)), Pos: pos}
		case "children":
			if strings.ContainsAny(line, " \t") {
				return fmt.Errorf("%s: want one group name per line in [%s:children], got %q", pos, section, line)
			}
			b.addChild(section, line, pos)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", pos, err)
		}
	}
	return nil
}

// iniHost reads a host line: "name[:port] key=value ...".
func (b *builder) iniHost(group, line, pos string) error {
	tokens, err := shellFields(line)
	if err != nil {
		return err
	}
	if len(tokens) == 0 { // only a comment
		return nil
	}
	name, port, err := parseHostPattern(tokens[0])
	if err != nil {
		return err
	}
	vars := map[string]Var{}
	if port != "" {
		vars["ansible_port"] = Var{Value: port, Pos: pos}
	}
	for _, t := range tokens[1:] {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return fmt.Errorf("want key=value after host %s, got %q", name, t)
		}
		vars[k] = Var{Value: v, Pos: pos}
	}
	b.addHost(group, name, vars)
	return nil
}

// parseHostPattern splits "name", "name:port", "[v6addr]:port" or a bare
// IPv6 address into a host name and an optional port.
func parseHostPattern(p string) (name, port string, err error) {
	switch {
	case strings.HasPrefix(p, "["):
		addr, rest, ok := strings.Cut(p[1:], "]")
		if !ok || addr == "" || (rest != "" && !strings.HasPrefix(rest, ":")) {
			return "", "", fmt.Errorf("bad host %q", p)
		}
		name, port = addr, strings.TrimPrefix(rest, ":")
	case strings.ContainsAny(p, "[]"):
		return "", "", fmt.Errorf("host ranges such as %q are not supported; list the hosts one by one", p)
	case strings.Count(p, ":") == 1:
		name, port, _ = strings.Cut(p, ":")
	default: // a name, or an IPv6 address without a port
		name = p
	}
	if name == "" {
		return "", "", fmt.Errorf("bad host %q", p)
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", "", fmt.Errorf("bad port in host %q", p)
		}
	}
	return name, port, nil
}

// shellFields splits a host line the way Ansible's shlex does: blanks
// separate words, quotes group them, a backslash escapes, and an unquoted
// '#' starting a word begins a comment.
func shellFields(line string) ([]string, error) {
	var (
		out   []string
		cur   strings.Builder
		inTok bool
		quote byte
	)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			switch {
			case c == quote:
				quote = 0
			case c == '\\' && quote == '"' && i+1 < len(line):
				i++
				cur.WriteByte(line[i])
			default:
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, inTok = c, true
		case c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
			inTok = true
		case c == ' ' || c == '\t':
			if inTok {
				out = append(out, cur.String())
				cur.Reset()
				inTok = false
			}
		case c == '#' && !inTok:
			return out, nil
		default:
			cur.WriteByte(c)
			inTok = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if inTok {
		out = append(out, cur.String())
	}
	return out, nil
}

// unquote removes one pair of matching surrounding quotes.
func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}
