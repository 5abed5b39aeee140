// Package deploy holds the container image, compose and Kubernetes
// deployment files (the Dockerfile is at the repository root). Its test keeps
// them from drifting from the binaries: every flag they pass must be one that
// core-service or dssctl registers, and every YAML file must parse.
package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// repoRoot is the repository root, relative to this package's directory.
const repoRoot = ".."

// Binaries whose flags the deployment files name.
const (
	coreService = "core-service"
	dssctl      = "dssctl"
)

// flagSources are the non-test Go files, per binary, whose flag
// registrations (fs.StringVar(&x, "name", ...), fs.Bool("name", ...), ...)
// make up its flag set. core-service also registers pkg/auth's flags.
var flagSources = map[string][]string{
	coreService: {"cmds/core-service", "pkg/auth"},
	dssctl:      {"cmds/dssctl"},
}

// flagMethods maps the flag-registering methods of flag.FlagSet (and the
// flag package's functions of the same names) to the index of their name
// argument.
var flagMethods = map[string]int{
	"Bool": 0, "String": 0, "Int": 0, "Int64": 0, "Uint": 0, "Uint64": 0, "Float64": 0, "Duration": 0,
	"Func": 0, "BoolFunc": 0,
	"BoolVar": 1, "StringVar": 1, "IntVar": 1, "Int64Var": 1, "UintVar": 1, "Uint64Var": 1,
	"Float64Var": 1, "DurationVar": 1, "Var": 1, "TextVar": 1,
}

// registeredFlags returns the flag names registered in the Go files of dirs
// (relative to the repository root). A name may be a string literal or a
// string constant declared in the same package.
func registeredFlags(t *testing.T, dirs []string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, dir := range dirs {
		fset := token.NewFileSet()
		matches, err := filepath.Glob(filepath.Join(repoRoot, dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		var files []*ast.File
		for _, path := range matches {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		if len(files) == 0 {
			t.Fatalf("no Go files in %s", dir)
		}
		consts := stringConsts(files)
		for _, f := range files {
			imported := map[string]bool{} // package names other than flag
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				name := filepath.Base(p)
				if imp.Name != nil {
					name = imp.Name.Name
				}
				if p != "flag" {
					imported[name] = true
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				idx, ok := flagMethods[sel.Sel.Name]
				if !ok || len(call.Args) < idx+2 {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); ok && imported[x.Name] {
					return true // zap.String("key", ...) and the like
				}
				if name, ok := stringValue(call.Args[idx], consts); ok {
					names[name] = true
				}
				return true
			})
		}
	}
	return names
}

// stringConsts returns the package's constants whose value is a string
// literal.
func stringConsts(files []*ast.File) map[string]string {
	out := map[string]string{}
	for _, f := range files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							v, _ := strconv.Unquote(lit.Value)
							out[n.Name] = v
						}
					}
				}
			}
		}
	}
	return out
}

func stringValue(e ast.Expr, consts map[string]string) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind == token.STRING {
			v, err := strconv.Unquote(e.Value)
			return v, err == nil
		}
	case *ast.Ident:
		v, ok := consts[e.Name]
		return v, ok
	}
	return "", false
}

// invocation is one command line a deployment file gives a binary.
type invocation struct {
	where  string // file and place, for messages
	binary string // coreService or dssctl
	args   []string
}

// binaryOf names the binary an entrypoint runs: dssctl when its path ends
// in dssctl, else core-service (the image's ENTRYPOINT).
func binaryOf(entrypoint []string) string {
	if len(entrypoint) > 0 && filepath.Base(entrypoint[0]) == dssctl {
		return dssctl
	}
	return coreService
}

var flagToken = regexp.MustCompile(`^--?([A-Za-z][A-Za-z0-9_.-]*)(=.*)?$`)

// unknownFlags returns the flags in inv's arguments that its binary does not
// register.
func unknownFlags(inv invocation, sets map[string]map[string]bool) []string {
	var bad []string
	for _, a := range inv.args {
		if m := flagToken.FindStringSubmatch(a); m != nil && !sets[inv.binary][m[1]] {
			bad = append(bad, a)
		}
	}
	return bad
}

func flagCount(inv invocation) int {
	n := 0
	for _, a := range inv.args {
		if flagToken.MatchString(a) {
			n++
		}
	}
	return n
}

// dockerfileInvocations reads the Dockerfile's exec-form ENTRYPOINT, CMD and
// HEALTHCHECK CMD.
func dockerfileInvocations(t *testing.T, path string) []invocation {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines.
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") && cur.Len() == 0 {
			continue
		}
		if s, ok := strings.CutSuffix(l, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(l)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	execForm := func(where, s string) []string {
		var argv []string
		if err := json.Unmarshal([]byte(strings.TrimSpace(s)), &argv); err != nil {
			t.Fatalf("%s: not an exec-form (JSON) list: %q: %v", where, s, err)
		}
		return argv
	}
	var entrypoint, cmd []string
	var out []invocation
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		switch strings.ToUpper(instr) {
		case "ENTRYPOINT":
			entrypoint = execForm(path+" ENTRYPOINT", rest)
		case "CMD":
			cmd = execForm(path+" CMD", rest)
		case "HEALTHCHECK":
			_, c, ok := strings.Cut(rest, "CMD ")
			if !ok {
				t.Fatalf("%s: HEALTHCHECK without CMD: %q", path, l)
			}
			argv := execForm(path+" HEALTHCHECK", c)
			out = append(out, invocation{path + " HEALTHCHECK", binaryOf(argv), argv[1:]})
		}
	}
	if binaryOf(entrypoint) != coreService || len(entrypoint) == 0 {
		t.Fatalf("%s: ENTRYPOINT %q is not core-service", path, entrypoint)
	}
	out = append(out, invocation{path + " ENTRYPOINT+CMD", coreService, append(entrypoint[1:], cmd...)})
	return out
}

// composeInvocations reads every service's entrypoint and command.
func composeInvocations(t *testing.T, path string, data []byte) []invocation {
	t.Helper()
	var doc struct {
		Services map[string]struct {
			Entrypoint []string `yaml:"entrypoint"`
			Command    []string `yaml:"command"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(doc.Services) == 0 {
		t.Fatalf("%s: no services", path)
	}
	var out []invocation
	for _, name := range slices.Sorted(maps.Keys(doc.Services)) {
		s := doc.Services[name]
		out = append(out, invocation{path + " service " + name, binaryOf(s.Entrypoint), append(tail(s.Entrypoint), s.Command...)})
	}
	return out
}

// podContainer is the part of a Kubernetes container that names flags.
type podContainer struct {
	Name    string   `yaml:"name"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
}

// k8sInvocations reads the containers of every workload in a multi-document
// manifest.
func k8sInvocations(t *testing.T, path string, data []byte) []invocation {
	t.Helper()
	var out []invocation
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		var doc struct {
			Kind string `yaml:"kind"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers     []podContainer `yaml:"containers"`
						InitContainers []podContainer `yaml:"initContainers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		err := dec.Decode(&doc)
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("%s document %d: %v", path, i, err)
		}
		if doc.Kind == "" {
			t.Fatalf("%s document %d: no kind", path, i)
		}
		ps := doc.Spec.Template.Spec
		for _, c := range append(ps.InitContainers, ps.Containers...) {
			out = append(out, invocation{fmt.Sprintf("%s %s container %s", path, doc.Kind, c.Name),
				binaryOf(c.Command), append(tail(c.Command), c.Args...)})
		}
	}
	return out
}

// scriptInvocations reads the dssctl command lines of a shell script: the
// words after /usr/local/bin/dssctl up to the end of the line or a ")".
func scriptInvocations(t *testing.T, path string) []invocation {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []invocation
	for n, l := range strings.Split(string(data), "\n") {
		_, rest, ok := strings.Cut(l, "/usr/local/bin/dssctl ")
		if !ok {
			continue
		}
		rest, _, _ = strings.Cut(rest, ")")
		out = append(out, invocation{fmt.Sprintf("%s:%d", path, n+1), dssctl, strings.Fields(rest)})
	}
	return out
}

func tail(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s[1:]
}

func flagSets(t *testing.T) map[string]map[string]bool {
	t.Helper()
	sets := map[string]map[string]bool{}
	for bin, dirs := range flagSources {
		sets[bin] = registeredFlags(t, dirs)
	}
	return sets
}

// TestRegisteredFlagsExtraction checks the source scan against flags known
// to exist (literal and constant names, pkg/auth's) and a logging key that is
// not a flag.
func TestRegisteredFlagsExtraction(t *testing.T) {
	sets := flagSets(t)
	for bin, want := range map[string][]string{
		coreService: {"addr", "dev", "dev_dir", "raft_node_id", "raft_peers", "raft_tls_cert", "raft_tls_key", "raft_tls_ca",
			"raft_insecure_plaintext_peers", "raft_max_inbound_conns", "public_key_files", "accepted_jwt_audiences",
			"max_subscriptions_per_uss_per_cell", "datastore_url"},
		dssctl: {"url", "timeout", "dir", "nodes", "skip_existing", "key", "sub", "scope", "raft_data_dir", "to"},
	} {
		for _, f := range want {
			if !sets[bin][f] {
				t.Errorf("%s: flag %q not found in the source scan", bin, f)
			}
		}
	}
	for _, notFlag := range []string{"node_id", "target", "took"} { // zap field keys
		if sets[coreService][notFlag] {
			t.Errorf("core-service: logging key %q taken for a flag", notFlag)
		}
	}
}

// TestUnknownFlagIsReported is the check's own check: a manifest naming a
// flag that neither binary has must be reported.
func TestUnknownFlagIsReported(t *testing.T) {
	sets := flagSets(t)
	manifest := []byte(`
services:
  node:
    command: ["--raft_node_id=1", "--raft_bogus_flag=3", "--dev"]
  tool:
    entrypoint: ["/usr/local/bin/dssctl"]
    command: ["certs", "--dir", "/certs", "--raft_node_id", "1"]
`)
	var got []string
	for _, inv := range composeInvocations(t, "inline", manifest) {
		got = append(got, unknownFlags(inv, sets)...)
	}
	// dssctl's set is the union of its subcommands' (copy-sql-to-raft has
	// --raft_node_id), so only the bogus flag is unknown.
	if !slices.Equal(got, []string{"--raft_bogus_flag=3"}) {
		t.Fatalf("unknown flags %q, want just --raft_bogus_flag=3", got)
	}
	k8s := []byte(`
apiVersion: apps/v1
kind: StatefulSet
spec:
  template:
    spec:
      containers:
        - name: c
          args: ["--addr=:8080", "-no_such_flag"]
`)
	got = nil
	for _, inv := range k8sInvocations(t, "inline", k8s) {
		got = append(got, unknownFlags(inv, sets)...)
	}
	if !slices.Equal(got, []string{"-no_such_flag"}) {
		t.Fatalf("unknown flags %q, want just -no_such_flag", got)
	}
}

// TestDeploymentFlagsExist: every flag the Dockerfile, the compose file, its
// smoke script and the Kubernetes manifests pass exists in the binary they
// pass it to, and every YAML file parses.
func TestDeploymentFlagsExist(t *testing.T) {
	sets := flagSets(t)
	var invs []invocation
	invs = append(invs, dockerfileInvocations(t, filepath.Join(repoRoot, "Dockerfile"))...)

	yamls, err := filepath.Glob("*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("*/*.yml")
	yamls = append(yamls, more...)
	if len(yamls) < 2 {
		t.Fatalf("found only %q", yamls)
	}
	for _, path := range yamls {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		switch filepath.Dir(path) {
		case "compose":
			invs = append(invs, composeInvocations(t, path, data)...)
		case "k8s":
			invs = append(invs, k8sInvocations(t, path, data)...)
		default:
			t.Errorf("%s: unexpected YAML file (add its flag check here)", path)
		}
	}
	invs = append(invs, scriptInvocations(t, "compose/smoke.sh")...)

	perFile := map[string]int{}
	for _, inv := range invs {
		file, _, _ := strings.Cut(inv.where, " ")
		file, _, _ = strings.Cut(file, ":")
		perFile[file] += flagCount(inv)
		if bad := unknownFlags(inv, sets); len(bad) > 0 {
			t.Errorf("%s: %s has no flag %q", inv.where, inv.binary, bad)
		}
	}
	// Each file is seen to pass flags: a parse that found nothing would
	// check nothing.
	for _, f := range append([]string{filepath.Join(repoRoot, "Dockerfile"), "compose/smoke.sh"}, yamls...) {
		if perFile[f] == 0 {
			t.Errorf("%s: no flags found", f)
		}
	}
}
