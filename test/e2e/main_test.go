package e2e

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftdss/dss/internal/pgtest"
)

var (
	longFlag = flag.Bool("e2e.long", false,
		"also run the long soak tests (repeated leader kills under load)")
	binFlag = flag.String("e2e.bin", "",
		"use this prebuilt core-service binary instead of building ./cmds/core-service")
	raceFlag = flag.Bool("e2e.race", false,
		"build core-service with -race: data races in the nodes make them crash (exit 66) and the test fail")
)

// Set by TestMain.
var (
	// coreServiceBin is the binary every node runs.
	coreServiceBin string
	// dssctlBin is the operator CLI, built beside it.
	dssctlBin string
	// moduleRoot is the directory holding go.mod (conformance runs there).
	moduleRoot string
)

// TestMain builds core-service once for all tests: the tests exercise the
// binary exactly as an operator runs it, flags and signals included.
func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) (code int) {
	// The PostgreSQL of the SQL scenarios, if one was started, is stopped
	// whatever the outcome.
	defer func() {
		if err := pgtest.StopShared(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: pgtest:", err)
			code = max(code, 1)
		}
	}()
	root, err := findModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	moduleRoot = root
	if *binFlag != "" {
		if coreServiceBin, err = filepath.Abs(*binFlag); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
	}
	dir, err := os.MkdirTemp("", "raftdss-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	dssctlBin = filepath.Join(dir, "dssctl")
	build := exec.Command("go", "build", "-o", dssctlBin, "./cmds/dssctl")
	build.Dir = moduleRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building dssctl: %v\n%s", err, out)
		return 1
	}
	if *binFlag != "" {
		return m.Run()
	}
	coreServiceBin = filepath.Join(dir, "core-service")
	args := []string{"build", "-o", coreServiceBin}
	if *raceFlag {
		args = append(args, "-race")
	}
	build = exec.Command("go", append(args, "./cmds/core-service")...)
	build.Dir = moduleRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building core-service: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// findModuleRoot asks the go command rather than assuming the package's
// depth in the tree.
func findModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := string(bytes.TrimSpace(out))
	if gomod == "" || gomod == os.DevNull || !strings.HasSuffix(gomod, "go.mod") {
		return "", fmt.Errorf("not inside a Go module (GOMOD=%q)", gomod)
	}
	return filepath.Dir(gomod), nil
}
