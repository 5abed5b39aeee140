package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/auth"
)

// conformanceTimeout bounds the nested `go test` (compiling the suite
// included) so the package stays within its time budget.
const conformanceTimeout = 150 * time.Second

// TestConformanceAcrossNodes runs the black-box conformance suite against a
// 3-node cluster with its requests rotating across the nodes: a write on one
// node and the read of it on the next must behave exactly as on a single
// store. The suite runs as a separate `go test` process, so this package
// imports nothing from it and the suite is the same one developers run.
// Afterwards every replica must hold the identical state (state hash).
func TestConformanceAcrossNodes(t *testing.T) {
	// Not --dev: it allows http:// base URLs, which the suite checks are
	// rejected (spec §3.5). The nodes verify tokens with the public half of
	// the key the suite signs with.
	c := NewCluster(t, Options{})
	runConformance(t, c)
	c.WaitEqualHashes()
}

// runConformance runs the suite against every node of c, requests rotating
// across them, and fails t if it fails.
func runConformance(t *testing.T, c *Cluster) {
	t.Helper()
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.URL()
	}

	ctx, cancel := context.WithTimeout(context.Background(), conformanceTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1",
		"-timeout="+(conformanceTimeout-10*time.Second).String(), "./test/conformance/")
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(),
		"DSS_BASE_URLS="+strings.Join(urls, ","),
		"DSS_TOKEN_KEY="+filepath.Join(c.DevDir, auth.DevKeyFile),
		"DSS_TOKEN_AUDIENCE="+auth.DefaultDevAudience,
	)
	// go test starts the test binary as its child: a process group lets a
	// timeout kill both, and Pdeathsig kills go test if this binary dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("conformance suite against nodes %v failed after %v: %v\n%s",
			urls, time.Since(start).Round(time.Millisecond), err, out)
	}
	t.Logf("conformance suite passed against %v in %v: %s", urls, time.Since(start).Round(time.Millisecond),
		strings.TrimSpace(string(out)))
}
