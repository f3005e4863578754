package config

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/spf13/viper"

	"github.com/mqops/mqops/wire"
)

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
	props, err := wire.ReadJavaProperties(string(b))
	if err != nil {
		return err
	}
	for _, p := range props {
		lower := strings.ToLower(p.Key)
		if prev, ok := c.spelling[lower]; ok && prev != p.Key {
			c.caseVariants[p.Key] = p.Value
			continue
		}
		c.spelling[lower] = p.Key
		into[p.Key] = p.Value
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
