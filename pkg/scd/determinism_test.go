package scd

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Execute runs in every replica's Raft apply loop and may be re-run by SQL
// retries, so it must be a function of the operation and the repo only
// (store.Operation contract, architecture "The one idea"). This test enforces
// that mechanically for the operation logic (exec_*.go), for every Execute
// method of the package and for the in-memory state machine.

// nondeterministicImports are packages whose mere import in deterministic
// code is a violation.
var nondeterministicImports = map[string]bool{
	"math/rand": true, "math/rand/v2": true, "crypto/rand": true,
	"os": true, "net": true, "net/http": true, "syscall": true,
}

// clockFuncs are the functions of package time that read the clock or start
// timers; the rest of package time (Duration, Time methods) is pure.
var clockFuncs = map[string]bool{
	"Now": true, "Since": true, "Until": true, "After": true, "Tick": true,
	"NewTimer": true, "NewTicker": true, "AfterFunc": true,
}

// nondeterminism reports every reference to the clock or to a forbidden
// package in f, as "file:line: what". With whole set it checks the whole
// file (imports included); otherwise only the bodies of methods named
// Execute.
func nondeterminism(fset *token.FileSet, f *ast.File, whole bool) []string {
	var found []string
	report := func(pos token.Pos, format string, args ...any) {
		p := fset.Position(pos)
		found = append(found, fmt.Sprintf("%s:%d: %s", p.Filename, p.Line, fmt.Sprintf(format, args...)))
	}

	// Local names under which the file refers to time and forbidden packages.
	timeNames := map[string]bool{}
	forbidden := map[string]string{} // local name -> import path
	dotTime := false
	var dotForbidden *ast.ImportSpec
	for _, imp := range f.Imports {
		path, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			report(imp.Pos(), "unparsable import %s", imp.Path.Value)
			continue
		}
		if path != "time" && !nondeterministicImports[path] {
			continue
		}
		name := importName(path)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		switch {
		case name == "_":
			// A blank import runs init code only; still forbidden below.
		case name == "." && path == "time":
			dotTime = true
		case name == ".":
			dotForbidden = imp
		case path == "time":
			timeNames[name] = true
		default:
			forbidden[name] = path
		}
		if whole && nondeterministicImports[path] {
			report(imp.Pos(), "imports %q", path)
		}
	}

	inspect := func(n ast.Node) {
		ast.Inspect(n, func(n ast.Node) bool {
			switch e := n.(type) {
			case *ast.SelectorExpr:
				x, ok := e.X.(*ast.Ident)
				if !ok {
					return true
				}
				if timeNames[x.Name] && clockFuncs[e.Sel.Name] {
					report(e.Pos(), "references time.%s", e.Sel.Name)
				} else if path, ok := forbidden[x.Name]; ok && !whole {
					// In whole-file mode the import itself was reported.
					report(e.Pos(), "references %s.%s", path, e.Sel.Name)
				}
			case *ast.Ident:
				// With a dot import the clock is reachable by bare name.
				if dotTime && clockFuncs[e.Name] {
					report(e.Pos(), "references time.%s through a dot import", e.Name)
				}
			}
			return true
		})
	}

	if whole {
		inspect(f)
		return found
	}
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv != nil && fn.Name.Name == "Execute" && fn.Body != nil {
			// Names from a dot import cannot be told from local ones
			// without type checking: the import itself is the violation.
			if dotForbidden != nil {
				report(dotForbidden.Pos(), "dot-imports %s into a file with Execute methods", dotForbidden.Path.Value)
				dotForbidden = nil
			}
			inspect(fn.Body)
		}
	}
	return found
}

// importName is the default package name of an import path, allowing for
// major-version suffixes such as math/rand/v2.
func importName(path string) string {
	parts := strings.Split(path, "/")
	last := parts[len(parts)-1]
	if len(parts) > 1 && len(last) > 1 && last[0] == 'v' && strings.Trim(last[1:], "0123456789") == "" {
		return parts[len(parts)-2]
	}
	return last
}

// goSources lists the non-test Go files of dir.
func goSources(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	var files []string
	for _, e := range entries {
		n := e.Name()
		if !e.IsDir() && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			files = append(files, filepath.Join(dir, n))
		}
	}
	return files
}

func TestExecuteIsDeterministic(t *testing.T) {
	fset := token.NewFileSet()
	var violations []string
	checked := 0
	check := func(path string, whole bool) {
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parsing %s: %v", path, err)
		}
		violations = append(violations, nondeterminism(fset, f, whole)...)
		checked++
	}
	for _, path := range goSources(t, ".") {
		// exec_ files hold only operation logic: nothing in them may touch
		// the clock. Other files (e.g. operations.go) are checked only
		// inside Execute methods.
		check(path, strings.HasPrefix(filepath.Base(path), "exec_"))
	}
	for _, path := range goSources(t, filepath.Join("store", "memstore")) {
		check(path, true)
	}
	// The pool's operations (pkg/pool) run on the same stores.
	for _, path := range goSources(t, filepath.Join("..", "pool")) {
		check(path, false)
	}
	if checked == 0 {
		t.Fatal("no source file was checked")
	}
	slices.Sort(violations)
	for _, v := range violations {
		t.Errorf("non-deterministic code in an operation: %s", v)
	}
}

// TestNondeterminismChecker makes sure the checker above would catch a
// violation: a checker that reports nothing proves nothing.
func TestNondeterminismChecker(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		whole bool
		want  []string // substrings, one per expected report, in order
	}{
		{"clean", `package p
import "time"
func f(t time.Time) time.Time { return t.Add(5 * time.Minute) }`, true, nil},
		{"time.Now", `package p
import "time"
func f() time.Time { return time.Now() }`, true, []string{"x.go:3: references time.Now"}},
		{"aliased time", `package p
import clock "time"
func f() clock.Duration { return clock.Since(clock.Time{}) }`, true, []string{"references time.Since"}},
		{"method value", `package p
import "time"
var now = time.Now`, true, []string{"references time.Now"}},
		{"dot import", `package p
import . "time"
func f() { <-After(Second) }`, true, []string{"references time.After through a dot import"}},
		{"forbidden imports", `package p
import (
	"math/rand/v2"
	crand "crypto/rand"
	"os"
	_ "net/http"
	"syscall"
	"net"
	mr "math/rand"
)
func f() int { _ = crand.Reader; _ = os.Getenv("X"); _ = syscall.Getpid(); _ = net.IPv4len; _ = mr.Int(); return rand.N(3) }`,
			true, []string{`"math/rand/v2"`, `"crypto/rand"`, `"os"`, `"net/http"`, `"syscall"`, `"net"`, `"math/rand"`}},
		{"Execute only: clock in Execute", `package p
import "time"
type op struct{}
func helper() time.Time { return time.Now() }
func (op) Execute() any { return time.Until(time.Time{}) }`, false, []string{"x.go:5: references time.Until"}},
		{"Execute only: forbidden package in Execute", `package p
import "os"
type op struct{}
func (op) Execute() any { return os.Getenv("HOME") }`, false, []string{"references os.Getenv"}},
		{"Execute only: dot import of a forbidden package", `package p
import . "os"
type op struct{}
func (op) Execute() any { return Getenv("HOME") }`, false, []string{`x.go:2: dot-imports "os"`}},
		{"Execute only: other functions are not checked", `package p
import "time"
func now() time.Time { return time.Now() }`, false, nil},
		{"Execute only: timers", `package p
import "time"
type op struct{}
func (op) Execute() any { t := time.NewTimer(0); time.AfterFunc(0, nil); _ = time.NewTicker; return t }`, false,
			[]string{"time.NewTimer", "time.AfterFunc", "time.NewTicker"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "x.go", tt.src, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			got := nondeterminism(fset, f, tt.whole)
			if len(got) != len(tt.want) {
				t.Fatalf("reports = %q, want %d matching %q", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("report %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}
