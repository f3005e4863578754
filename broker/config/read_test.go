package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestEveryKeyIsRead: every field a key of Broker.keys() or Namesrv.keys()
// is bound to is read by the daemons, i.e. by non-test code outside this
// package, directly or through an exported method (DelayLevels reads
// messageDelayLevel). A key nothing reads would be accepted silently with no
// effect; it belongs in compat.go, whose keys warn at start-up. The check is
// on types, not names, so wire.BrokerData.BrokerName does not count as
// reading Broker.BrokerName.
func TestEveryKeyIsRead(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the module's packages")
	}
	const self = "github.com/mqops/mqops/broker/config"
	bound := map[string]map[string]string{ // type -> field -> key
		"Broker":  boundFields(t, "broker.go", "Broker"),
		"Namesrv": boundFields(t, "namesrv.go", "Namesrv"),
		// Namesrv.Controller and Controller share these.
		"ControllerSettings": boundFields(t, "controller.go", "ControllerSettings"),
		"Controller":         boundFields(t, "controller.go", "Controller"),
	}
	readers := methodReads(t)

	// The packages that import this one, with export data for everything
	// they import, so each is type-checked against the real config types.
	users := goList(t, goTool, "./...")
	var paths []string
	for _, p := range users {
		if slices.Contains(p.Imports, self) {
			paths = append(paths, p.ImportPath)
		}
	}
	if len(paths) == 0 {
		t.Fatal("no package imports broker/config")
	}
	exports := map[string]string{}
	for _, p := range goList(t, goTool, append([]string{"-deps", "-export"}, paths...)...) {
		exports[p.ImportPath] = p.Export
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		if f := exports[path]; f != "" {
			return os.Open(f)
		}
		return nil, fmt.Errorf("no export data for %s", path)
	})

	read := map[string]bool{} // "Broker.ListenPort"
	for _, p := range users {
		if !slices.Contains(paths, p.ImportPath) {
			continue
		}
		var files []*ast.File
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		info := &types.Info{Selections: map[*ast.SelectorExpr]*types.Selection{}}
		conf := types.Config{Importer: imp}
		if _, err := conf.Check(p.ImportPath, fset, files, info); err != nil {
			t.Fatalf("type-check %s: %v", p.ImportPath, err)
		}
		for _, sel := range info.Selections {
			recv := sel.Recv()
			if ptr, ok := recv.(*types.Pointer); ok {
				recv = ptr.Elem()
			}
			named, ok := recv.(*types.Named)
			if !ok || named.Obj().Pkg() == nil || named.Obj().Pkg().Path() != self {
				continue
			}
			typ := named.Obj().Name()
			switch sel.Kind() {
			case types.FieldVal:
				read[typ+"."+sel.Obj().Name()] = true
			case types.MethodVal:
				for _, f := range readers[typ+"."+sel.Obj().Name()] {
					read[typ+"."+f] = true
				}
			}
		}
	}

	var unread []string
	for _, typ := range []string{"Broker", "Namesrv", "ControllerSettings", "Controller"} {
		for field, key := range bound[typ] {
			if !read[typ+"."+field] {
				unread = append(unread, fmt.Sprintf("%s (%s.%s)", key, typ, field))
			}
		}
	}
	slices.Sort(unread)
	if len(unread) > 0 {
		t.Errorf("%d keys are accepted but nothing outside broker/config reads them; act on them or move them to compat.go:\n  %s",
			len(unread), strings.Join(unread, "\n  "))
	}
}

// boundFields maps the fields keys() binds to their key names, from calls
// such as str("brokerName", &b.BrokerName, nonEmpty).
func boundFields(t *testing.T, file, typ string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "keys" || receiverType(fn) != typ {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			lit, ok1 := call.Args[0].(*ast.BasicLit)
			addr, ok2 := call.Args[1].(*ast.UnaryExpr)
			if !ok1 || !ok2 || lit.Kind != token.STRING || addr.Op != token.AND {
				return true
			}
			if sel, ok := addr.X.(*ast.SelectorExpr); ok {
				name, _ := strconv.Unquote(lit.Value)
				out[sel.Sel.Name] = name
			}
			return true
		})
	}
	if len(out) == 0 {
		t.Fatalf("%s: found no keys bound in (%s).keys()", file, typ)
	}
	return out
}

// methodReads maps each exported method of Broker and Namesrv to the fields
// of its receiver it reads.
func methodReads(t *testing.T) map[string][]string {
	t.Helper()
	pkgs, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, file := range pkgs {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || !fn.Name.IsExported() || fn.Recv == nil || len(fn.Recv.List[0].Names) == 0 {
				continue
			}
			recv := fn.Recv.List[0].Names[0].Name
			name := receiverType(fn) + "." + fn.Name.Name
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if id, ok := sel.X.(*ast.Ident); ok && id.Name == recv {
						out[name] = append(out[name], sel.Sel.Name)
					}
				}
				return true
			})
		}
	}
	return out
}

func receiverType(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) != 1 {
		return ""
	}
	typ := fn.Recv.List[0].Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

type listedPackage struct {
	ImportPath, Dir, Export string
	GoFiles, Imports        []string
}

// goList runs go list -json in the module's root.
func goList(t *testing.T, goTool string, args ...string) []listedPackage {
	t.Helper()
	cmd := exec.Command(goTool, append([]string{"list", "-json=ImportPath,Dir,Export,GoFiles,Imports"}, args...)...)
	cmd.Dir = filepath.Join("..", "..")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return pkgs
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
}

// TestREADMEListsEveryKey: the README documents every implemented key (in
// its configuration tables) and every accepted-but-not-implemented one (in
// its list), so operators can tell which keys act.
func TestREADMEListsEveryKey(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	i := strings.Index(text, "### Broker configuration reference")
	j := strings.Index(text, "#### Accepted, not implemented")
	k := strings.Index(text, "## mqadmin")
	if i < 0 || j < i || k < j {
		t.Fatal("README lacks the configuration reference or the accepted-not-implemented list")
	}
	implemented, accepted := text[i:j], text[j:k]
	var missing []string
	b, n, c := defaultBroker(), &Namesrv{}, &Controller{}
	for _, key := range slices.Concat(b.keys(), n.keys(), c.keys()) {
		if !strings.Contains(implemented, "`"+key.name+"`") {
			missing = append(missing, key.name+" (configuration reference)")
		}
	}
	for _, sc := range []schema{brokerSchema, namesrvSchema, controllerSchema} {
		for name := range sc.accepted {
			if !strings.Contains(accepted, "`"+name+"`") {
				missing = append(missing, name+" (accepted, not implemented)")
			}
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("README does not list:\n  %s", strings.Join(slices.Compact(missing), "\n  "))
	}
}
