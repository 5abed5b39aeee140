package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestDssctlStatus: `dssctl status` over the members' admin sockets and
// over their API URLs (with a token) lists all three with one leader and
// exits 0; with a member killed it lists that one UNREACHABLE and exits 1.
// (Its DIVERGED verdict is checked against fake members in cmds/dssctl: a
// real cluster does not diverge.)
func TestDssctlStatus(t *testing.T) {
	c := NewCluster(t, Options{Dev: true})
	c.WriteOIRs(t, 5, c.Running())
	c.WaitEqualHashes()
	var sockets, urls []string
	for _, n := range c.Nodes {
		sockets = append(sockets, filepath.Join(n.DataDir, "admin.sock"))
		urls = append(urls, n.URL())
	}
	check := func(code int, out, errOut string) {
		t.Helper()
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		if n := strings.Count(out, " leader "); n != 1 || strings.Count(out, " follower ") != 2 ||
			strings.Contains(out, "DIVERGED") {
			t.Fatalf("want one leader and two followers:\n%s", out)
		}
	}
	code, out, errOut := dssctl(t, "status", "--admin_sockets", strings.Join(sockets, ","))
	check(code, out, errOut)
	code, out, errOut = dssctl(t, "status", "--endpoints", strings.Join(urls, ","), "--token", c.token)
	check(code, out, errOut)

	c.KillNode(2)
	code, out, _ = dssctl(t, "status", "--admin_sockets", strings.Join(sockets, ","))
	if code != 1 || !strings.Contains(out, "UNREACHABLE") {
		t.Fatalf("with node 3 killed: exit %d\n%s", code, out)
	}
}
