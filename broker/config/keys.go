package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/mqops/mqops/atomicfile"
	"github.com/mqops/mqops/wire"
)

// ErrUnknownKey is returned (wrapped) by Set for a key RocketMQ doesn't have.
var ErrUnknownKey = errors.New("unknown key")

// key is one implemented setting bound to its field.
type key struct {
	name string
	get  func() string
	set  func(string) error // parses, checks and assigns; error names key and value
	// derived keys default from other keys (haListenPort from listenPort)
	// and follow them until set explicitly.
	derived bool
	// secret keys are shown masked (GET_BROKER_CONFIG), saved as they are.
	secret bool
}

// credentials is a key holding JSON {"accessKey","secretKey"} or "":
// masked when shown, and never quoted in an error.
func credentials(name string, p *string) key {
	return key{
		name:   name,
		secret: true,
		get:    func() string { return *p },
		set: func(s string) error {
			if _, err := ParseCredentials(s); err != nil {
				return fmt.Errorf("invalid %s (value not shown): %w", name, err)
			}
			*p = s
			return nil
		},
	}
}

// ParseCredentials reads innerClientAuthenticationCredentials; "" is none.
func ParseCredentials(s string) (wire.Credentials, error) {
	var cr wire.Credentials
	if strings.TrimSpace(s) == "" {
		return cr, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cr); err != nil {
		return cr, fmt.Errorf(`want JSON {"accessKey":"…","secretKey":"…"}: %w`, err)
	}
	if cr.IsEmpty() {
		return cr, errors.New("accessKey and secretKey must both be set")
	}
	return cr, nil
}

// schema is what a daemon knows about its keys beyond the implemented ones.
type schema struct {
	accepted map[string]bool   // real RocketMQ keys we take but do not act on yet
	aliases  map[string]string // old spelling -> current
}

// daemon is the part of Broker and Namesrv the shared code drives.
type daemon interface {
	keys() []key
	schema() schema
	// finish fills derived defaults, clamps, checks every value and the
	// rules that span keys. Warnings are for adjustments Java makes silently.
	finish() ([]string, error)
	state() *kept
}

// kept is the state Broker and Namesrv carry besides their fields.
type kept struct {
	compat   map[string]string // accepted keys as given: listed and saved, not used
	explicit map[string]bool   // keys given by the user rather than defaulted
}

func (k *kept) clone() kept {
	return kept{compat: maps.Clone(k.compat), explicit: maps.Clone(k.explicit)}
}

func (k *kept) init() {
	if k.compat == nil {
		k.compat = map[string]string{}
		k.explicit = map[string]bool{}
	}
}

// load reads path (if any), lays overrides over it and finishes d.
func load(d daemon, path string, overrides map[string]string) ([]string, error) {
	d.state().init()
	props := map[string]string{}
	source := map[string]string{}
	if path != "" {
		fromFile, err := readFile(path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		for k, v := range fromFile {
			props[k], source[k] = v, path
		}
	}
	// Overrides replace file values before anything is checked, so a bad
	// value the command line corrects is no error.
	for k, v := range overrides {
		props[k], source[k] = v, "overrides"
	}
	warnings, err := apply(d, props, source)
	if err != nil {
		return warnings, err
	}
	more, err := d.finish()
	warnings = append(warnings, more...)
	if err != nil {
		src := path
		if src == "" {
			src = "config"
		}
		return warnings, fmt.Errorf("%s: %w", src, err)
	}
	return warnings, nil
}

// apply sets props on d in key order and reports every bad value.
func apply(d daemon, props, source map[string]string) ([]string, error) {
	known := index(d.keys())
	sc := d.schema()
	var warnings []string
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(props)) {
		value, src := strings.TrimSpace(props[name]), source[name]
		canonical := name
		if to, ok := sc.aliases[name]; ok {
			if _, both := props[to]; both {
				warnings = append(warnings, fmt.Sprintf("key %q in %s is the old spelling of %q, which is also set: ignored", name, src, to))
				continue
			}
			canonical = to
		}
		if k, ok := known[canonical]; ok {
			if err := k.set(value); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", src, err))
			}
			d.state().explicit[canonical] = true
			continue
		}
		if sc.accepted[canonical] {
			d.state().compat[canonical] = value
			warnings = append(warnings, fmt.Sprintf("key %q in %s is accepted for compatibility and has no effect yet", name, src))
			continue
		}
		msg := fmt.Sprintf("unknown key %q in %s: ignored", name, src)
		if near := sameButCase(name, known, sc); near != "" {
			msg += fmt.Sprintf(" (keys are case-sensitive: did you mean %q?)", near)
		}
		warnings = append(warnings, msg)
	}
	return warnings, errors.Join(errs...)
}

// set applies one key to d; callers pass a copy and keep it only on success.
func set(d daemon, name, value string) error {
	d.state().init()
	value = strings.TrimSpace(value)
	sc := d.schema()
	canonical := name
	if to, ok := sc.aliases[name]; ok {
		canonical = to
	}
	if k, ok := index(d.keys())[canonical]; ok {
		if err := k.set(value); err != nil {
			return err
		}
		d.state().explicit[canonical] = true
		if _, err := d.finish(); err != nil {
			return fmt.Errorf("%s = %q: %w", name, value, err)
		}
		return nil
	}
	if sc.accepted[canonical] {
		d.state().compat[canonical] = value
		return nil
	}
	return fmt.Errorf("%w %q", ErrUnknownKey, name)
}

// properties lists every implemented key and every accepted key that was
// given, sorted by key. With saving, derived keys that were never set are
// left out so that they keep following their source after a reload.
func properties(d daemon, saving bool) []wire.JavaProperty {
	var out []wire.JavaProperty
	for _, k := range d.keys() {
		if saving && k.derived && !d.state().explicit[k.name] {
			continue
		}
		v := k.get()
		if k.secret && !saving && v != "" {
			v = "******"
		}
		out = append(out, wire.JavaProperty{Key: k.name, Value: v})
	}
	for name, value := range d.state().compat {
		out = append(out, wire.JavaProperty{Key: name, Value: value})
	}
	slices.SortFunc(out, func(a, b wire.JavaProperty) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// validate re-checks every current value, defaults included.
func validate(keys []key) error {
	var errs []error
	for _, k := range keys {
		errs = append(errs, k.set(k.get()))
	}
	return errors.Join(errs...)
}

// save writes d's properties to path atomically: a crash leaves either the
// old file or the new one, never a torn one.
func save(d daemon, path string) error {
	if err := atomicfile.Write(path, wire.FormatJavaProperties(properties(d, true)), atomicfile.Options{}); err != nil {
		return fmt.Errorf("save config %s: %w", path, err)
	}
	return nil
}

func index(keys []key) map[string]key {
	m := make(map[string]key, len(keys))
	for _, k := range keys {
		m[k.name] = k
	}
	return m
}

// sameButCase finds the key name differs from only in case: Java ignores
// "brokername", and so do we, but the user deserves a hint.
func sameButCase(name string, known map[string]key, sc schema) string {
	for k := range known {
		if strings.EqualFold(k, name) {
			return k
		}
	}
	for k := range sc.accepted {
		if strings.EqualFold(k, name) {
			return k
		}
	}
	return ""
}

// Key constructors. Each binds a key name to a field and its check.

// Java's int and long: values are range-checked as Java would parse them.
const (
	javaInt  = 32
	javaLong = 64
)

func str(name string, p *string, check func(string) error) key {
	return key{
		name: name,
		get:  func() string { return *p },
		set: func(s string) error {
			if check != nil {
				if err := check(s); err != nil {
					return invalid(name, s, err)
				}
			}
			*p = s
			return nil
		},
	}
}

func integer[T ~int | ~int64](name string, p *T, bits int, check func(int64) error) key {
	return key{
		name: name,
		get:  func() string { return strconv.FormatInt(int64(*p), 10) },
		set: func(s string) error {
			n, err := strconv.ParseInt(s, 10, bits)
			if errors.Is(err, strconv.ErrRange) {
				return invalid(name, s, fmt.Errorf("out of range for a %d-bit integer", bits))
			}
			if err != nil {
				return invalid(name, s, errors.New("not an integer"))
			}
			if check != nil {
				if err := check(n); err != nil {
					return invalid(name, s, err)
				}
			}
			*p = T(n)
			return nil
		},
	}
}

// percentKey is a percentage 1..100 given as an integer (RocketMQ 5's
// diskSpaceWarningLevelRatio=90) or as a fraction with a decimal point
// (4.9's -Drocketmq.broker.diskSpaceWarningLevelRatio=0.90).
func percentKey(name string, p *int) key {
	return key{
		name: name,
		get:  func() string { return strconv.Itoa(*p) },
		set: func(s string) error {
			n, err := strconv.Atoi(s)
			if err != nil && strings.Contains(s, ".") {
				f, ferr := strconv.ParseFloat(s, 64)
				if ferr != nil || math.IsNaN(f) || f <= 0 || f > 1 {
					return invalid(name, s, errors.New("a fraction must be in (0, 1]"))
				}
				n, err = int(math.Round(f*100)), nil
			}
			if err != nil {
				return invalid(name, s, errors.New("not a percentage (90) or a fraction (0.90)"))
			}
			if n < 1 || n > 100 {
				return invalid(name, s, errors.New("must be 1..100"))
			}
			*p = n
			return nil
		},
	}
}

// boolean is stricter than Java's Boolean.parseBoolean, which reads any
// typo as false.
func boolean(name string, p *bool) key {
	return key{
		name: name,
		get:  func() string { return strconv.FormatBool(*p) },
		set: func(s string) error {
			switch {
			case strings.EqualFold(s, "true"):
				*p = true
			case strings.EqualFold(s, "false"):
				*p = false
			default:
				return invalid(name, s, errors.New("want true or false"))
			}
			return nil
		},
	}
}

func derived(k key) key {
	k.derived = true
	return k
}

func invalid(name, value string, why error) error {
	return fmt.Errorf("%s = %q: %w", name, value, why)
}

// Checks.

func nonEmpty(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	return nil
}

func port(n int64) error {
	if n < 1 || n > 65535 {
		return errors.New("want a port 1..65535")
	}
	return nil
}

// listenPort also takes 0, a free port picked at bind time: tests run
// daemons side by side with it.
func listenPort(n int64) error {
	if n < 0 || n > 65535 {
		return errors.New("want a port 1..65535, or 0 for any free port")
	}
	return nil
}

func positive(n int64) error {
	if n <= 0 {
		return errors.New("must be > 0")
	}
	return nil
}

func atLeast(min int64) func(int64) error {
	return func(n int64) error {
		if n < min {
			return fmt.Errorf("must be >= %d", min)
		}
		return nil
	}
}

func between(lo, hi int64) func(int64) error {
	return func(n int64) error {
		if n < lo || n > hi {
			return fmt.Errorf("want %d..%d", lo, hi)
		}
		return nil
	}
}

func oneOf(values ...string) func(string) error {
	return func(s string) error {
		if !slices.Contains(values, s) {
			last := len(values) - 1
			return fmt.Errorf("want %s or %s", strings.Join(values[:last], ", "), values[last])
		}
		return nil
	}
}

// clamp bounds *p to [lo, hi] and says so, as Java clamps silently.
func clamp[T ~int | ~int64](name string, p *T, lo, hi T) []string {
	was := *p
	*p = max(lo, min(*p, hi))
	if *p == was {
		return nil
	}
	return []string{fmt.Sprintf("%s = %d: outside %d..%d, using %d as RocketMQ does", name, was, lo, hi, *p)}
}
