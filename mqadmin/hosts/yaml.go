package hosts

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// parseYAML reads an Ansible YAML inventory into b: top-level keys are
// groups (usually just "all"), each with optional hosts, vars and children.
func (b *builder) parseYAML(file string, data []byte) error {
	root, err := yamlRoot(file, data)
	if err != nil || root == nil {
		return err
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: want a mapping of groups at the top", file, root.Line)
	}
	return eachPair(file, root, func(k, v *yaml.Node) error { return b.yamlGroup(file, k.Value, v) })
}

// parseYAMLVarsFile reads a group_vars or host_vars file.
func parseYAMLVarsFile(file string, data []byte) (map[string]Var, error) {
	root, err := yamlRoot(file, data)
	if err != nil {
		return nil, err
	}
	return yamlVars(file, root)
}

// yamlRoot returns a document's top node, nil for an empty document.
func yamlRoot(file string, data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err) // yaml's message names the line
	}
	if len(doc.Content) == 0 || isNull(deref(doc.Content[0])) {
		return nil, nil
	}
	return deref(doc.Content[0]), nil
}

func (b *builder) yamlGroup(file, name string, n *yaml.Node) error {
	g := b.group(name)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: group %s: want a mapping with hosts, vars or children", file, n.Line, name)
	}
	return eachPair(file, n, func(k, v *yaml.Node) error {
		switch k.Value {
		case "hosts":
			return eachPairOf(file, v, "hosts of group "+name, func(hk, hv *yaml.Node) error {
				host, port, err := parseHostPattern(hk.Value)
				if err != nil {
					return fmt.Errorf("%s:%d: %w", file, hk.Line, err)
				}
				vars, err := yamlVars(file, hv)
				if err != nil {
					return err
				}
				if _, set := vars["ansible_port"]; port != "" && !set {
					vars["ansible_port"] = Var{Value: port, Pos: fmt.Sprintf("%s:%d", file, hk.Line)}
				}
				b.addHost(name, host, vars)
				return nil
			})
		case "vars":
			vars, err := yamlVars(file, v)
			merge(g.vars, vars)
			return err
		case "children":
			return eachPairOf(file, v, "children of group "+name, func(ck, cv *yaml.Node) error {
				b.addChild(name, ck.Value, fmt.Sprintf("%s:%d", file, ck.Line))
				return b.yamlGroup(file, ck.Value, cv)
			})
		}
		return fmt.Errorf("%s:%d: group %s: unknown key %q (want hosts, vars or children)", file, k.Line, name, k.Value)
	})
}

// yamlVars reads a mapping of variables. Values Ansible would hand to a
// playbook as something other than a plain string are kept but marked,
// so that only using them is an error.
func yamlVars(file string, n *yaml.Node) (map[string]Var, error) {
	vars := map[string]Var{}
	err := eachPairOf(file, n, "variables", func(k, v *yaml.Node) error {
		x := Var{Pos: fmt.Sprintf("%s:%d", file, k.Line)}
		switch {
		case v.Kind == yaml.ScalarNode && v.Tag == "!vault":
			x.unusable = "a vault-encrypted value"
		case isNull(v):
		case v.Kind == yaml.ScalarNode:
			x.Value = v.Value
		case v.Kind == yaml.SequenceNode:
			x.unusable = "a list"
		default:
			x.unusable = "a mapping"
		}
		vars[k.Value] = x
		return nil
	})
	return vars, err
}

// eachPairOf is eachPair for a node that may also be empty (null).
func eachPairOf(file string, n *yaml.Node, what string, fn func(k, v *yaml.Node) error) error {
	if n == nil || isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: %s: want a mapping", file, n.Line, what)
	}
	return eachPair(file, n, fn)
}

// eachPair calls fn for every key and (alias-resolved) value of mapping m.
func eachPair(file string, m *yaml.Node, fn func(k, v *yaml.Node) error) error {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], deref(m.Content[i+1])
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			return fmt.Errorf("%s:%d: unsupported key (merge keys and complex keys are not supported)", file, k.Line)
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}
