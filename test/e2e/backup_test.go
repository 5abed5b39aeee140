package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// dssctl runs the dssctl binary and returns its exit status and output.
func dssctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(dssctlBin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("dssctl %v: %v", args, err)
	}
	return code, out.String(), errOut.String()
}

var (
	backupIndexLine = regexp.MustCompile(`(?m)^index:\s+(\d+)$`)
	backupHashLine  = regexp.MustCompile(`(?m)^state hash:\s+([0-9a-f]{64})$`)
)

// TestBackupUnderLoadAndRestore saves an online backup through a
// follower's admin socket while clients write, kills the whole cluster,
// restores the backup into a new 3-node cluster, and checks that every write
// acknowledged before the save began is served by every new node with its
// OVN and that the new cluster's state hash is the backup's.
func TestBackupUnderLoadAndRestore(t *testing.T) {
	c := NewCluster(t, Options{})
	all := []int{0, 1, 2}
	acked := c.WriteOIRs(t, 120, all)

	// Writes go on during the save; their outcomes do not matter to the
	// backup (it may or may not hold them), only that they are not stopped.
	// Those acknowledged before the save starts must be in the backup.
	var stop atomic.Bool
	var during atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	type ack struct {
		id, ovn string
		at      time.Time
	}
	var acks []ack
	for w := range 4 {
		wg.Go(func() {
			for k := 0; !stop.Load(); k++ {
				id, r := c.PutOIR(all[(w+k)%3])
				if r.err != nil || r.status != http.StatusCreated {
					continue
				}
				during.Add(1)
				if ovn, err := ovnOf(r.body); err == nil {
					mu.Lock()
					acks = append(acks, ack{id, ovn, r.done})
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	follower := c.Follower()
	file := filepath.Join(t.TempDir(), "backup.snap")
	before := during.Load()
	saveStart := time.Now()
	code, out, errOut := dssctl(t, "snapshot", "save", file, "--raft_data_dir", c.Nodes[follower].DataDir)
	time.Sleep(200 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if code != 0 {
		t.Fatalf("snapshot save on node %d: exit %d: %s", c.Nodes[follower].ID, code, errOut)
	}
	t.Logf("saved through node %d:\n%s", c.Nodes[follower].ID, out)
	if after := during.Load(); after <= before {
		t.Fatalf("no write was acknowledged while the backup was taken (%d before, %d after)", before, after)
	} else {
		t.Logf("%d writes acknowledged during the load, %d of them while or after the save ran", after, after-before)
	}
	c.killAll()
	for _, a := range acks {
		if a.at.Before(saveStart) {
			acked[a.id] = a.ovn
		}
	}

	code, status, errOut := dssctl(t, "snapshot", "status", file)
	if code != 0 {
		t.Fatalf("snapshot status: exit %d: %s", code, errOut)
	}
	m := backupHashLine.FindStringSubmatch(status)
	if m == nil || backupIndexLine.FindStringSubmatch(status) == nil {
		t.Fatalf("no index or state hash in %q", status)
	}
	wantHash := m[1]

	// Bad input leaves the old data directories alone.
	oldDir := c.Nodes[0].DataDir
	oldFiles := treeFiles(t, oldDir)
	for _, args := range [][]string{
		{"snapshot", "restore", file, "--raft_peers", c.peersFlag(), "--raft_node_id", "1", "--raft_data_dir", oldDir},
		{"snapshot", "restore", file, "--raft_peers", c.peersFlag()},
		{"snapshot", "save", filepath.Join(t.TempDir(), "x.snap"), "--raft_data_dir", oldDir},
	} {
		if code, _, errOut := dssctl(t, args...); code == 0 || strings.TrimSpace(errOut) == "" {
			t.Fatalf("dssctl %v: exit %d, %q: want a non-zero exit with a message", args, code, errOut)
		}
	}
	truncated := filepath.Join(t.TempDir(), "truncated.snap")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(truncated, b[:len(b)-100], 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := dssctl(t, "snapshot", "status", truncated); code != 1 || !strings.Contains(errOut, "truncated") {
		t.Fatalf("status of a truncated file: exit %d, %q", code, errOut)
	}
	if got := treeFiles(t, oldDir); got != oldFiles {
		t.Fatal("a refused command changed the old node's data directory")
	}

	var restoreOut string
	nc := NewCluster(t, Options{Prepare: func(nc *Cluster) {
		dirs := make([]string, len(nc.Nodes))
		for i, n := range nc.Nodes {
			dirs[i] = fmt.Sprintf("%d=%s", n.ID, n.DataDir)
		}
		// A truncated file is refused and writes nothing.
		code, _, errOut := dssctl(t, "snapshot", "restore", truncated, "--raft_peers", nc.peersFlag(), "--out_dirs", strings.Join(dirs, ","))
		if code != 1 || !strings.Contains(errOut, "truncated") {
			t.Fatalf("restore of a truncated file: exit %d, %q", code, errOut)
		}
		for _, n := range nc.Nodes {
			if _, err := os.Stat(n.DataDir); err == nil {
				t.Fatalf("the refused restore created %s", n.DataDir)
			}
		}
		code, restoreOut, errOut = dssctl(t, "snapshot", "restore", file, "--raft_peers", nc.peersFlag(), "--out_dirs", strings.Join(dirs, ","))
		if code != 0 {
			t.Fatalf("snapshot restore: exit %d: %s", code, errOut)
		}
	}})
	t.Logf("restored:\n%s", restoreOut)
	nc.CheckOIRs(t, acked, all)
	st := nc.WaitEqualHashes()
	var got string
	if err := json.Unmarshal(st.StateHash, &got); err != nil || got != wantHash {
		t.Fatalf("restored cluster's state hash %s, the backup's %s", st.StateHash, wantHash)
	}
	// The new cluster takes writes (at places the old one's writes left
	// free).
	nc.places.Store(c.places.Load())
	nc.CheckOIRs(t, nc.WriteOIRs(t, 10, all), all)
}

// treeFiles lists every file under dir with its size and modification time.
func treeFiles(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d %d\n", p, fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
