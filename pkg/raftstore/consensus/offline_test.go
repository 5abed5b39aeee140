package consensus

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestBootstrapFromSnapshotRefuses(t *testing.T) {
	base := t.TempDir()
	used := filepath.Join(base, "used")
	if err := os.MkdirAll(used, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(used, "epoch"), []byte("3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		dir    string
		id     uint64
		voters []uint64
		index  uint64
		want   string
	}{
		{"non-empty directory", used, 1, []uint64{1}, 1, "not empty"},
		{"not a voter", filepath.Join(base, "a"), 4, []uint64{1, 2, 3}, 1, "not among the voters"},
		{"duplicate voter", filepath.Join(base, "b"), 1, []uint64{1, 1, 2}, 1, "distinct"},
		{"voter 0", filepath.Join(base, "c"), 1, []uint64{0, 1}, 1, "non-zero"},
		{"index 0", filepath.Join(base, "d"), 1, []uint64{1}, 0, "at least 1"},
		{"ID 0", filepath.Join(base, "e"), 0, []uint64{1}, 1, "ID 0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := BootstrapFromSnapshot(tt.dir, tt.id, tt.voters, tt.index, []byte("x"), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(used, "wal")); !os.IsNotExist(err) {
		t.Fatalf("the refused directory was written to: %v", err)
	}
	if names, _ := os.ReadDir(base); len(names) != 1 {
		t.Fatalf("refused bootstraps left files behind: %v", names)
	}
	if err := BootstrapFromSnapshot(used, 1, []uint64{1}, 1, nil, nil); !errors.Is(err, ErrDataDirNotEmpty) {
		t.Fatalf("got %v, want ErrDataDirNotEmpty", err)
	}
}

// TestBootstrapFromSnapshotStartsNode: a node started on a bootstrapped
// directory restores the snapshot's data, leads its one-member cluster,
// applies new entries after the bootstrap index, and ReplayDataDir of the
// stopped node yields the same state without changing the directory.
func TestBootstrapFromSnapshotStartsNode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node1")
	// An existing empty directory is fine (it is replaced atomically).
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := BootstrapFromSnapshot(dir, 1, []uint64{1}, 5, []byte("a\nb"), nil); err != nil {
		t.Fatal(err)
	}
	app := &memApp{}
	n, err := startSingle(t, dir, app, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := app.snapshotOf(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		n.Stop()
		t.Fatalf("restored %q, want the bootstrap snapshot", got)
	}
	if got := n.ClusterID(); got != clusterIDOf([]uint64{1}) {
		n.Stop()
		t.Fatalf("cluster ID %x, want that of its voters", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !n.Status().IsLeader {
		if time.Now().After(deadline) {
			n.Stop()
			t.Fatal("the bootstrapped node never became leader")
		}
		time.Sleep(5 * time.Millisecond)
	}
	write(t, n, app, "c")
	if _, err := ReplayDataDir(dir, &memApp{}, nil); !errors.Is(err, ErrDataDirInUse) {
		n.Stop()
		t.Fatalf("replaying a running node's directory: %v, want ErrDataDirInUse", err)
	}
	n.Stop()

	before := dirContents(t, dir)
	replayed := &memApp{}
	info, err := ReplayDataDir(dir, replayed, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := replayed.snapshotOf(); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("replayed %q", got)
	}
	if info.NodeID != 1 || info.SnapshotIndex != 5 || info.Entries != 1 || info.Applied < 7 {
		t.Fatalf("info %+v: want node 1, snapshot 5, one entry, applied ≥ 7 (no-op of the election, then c)", info)
	}
	if after := dirContents(t, dir); !reflect.DeepEqual(before, after) {
		t.Fatal("ReplayDataDir changed the data directory")
	}
}

func dirContents(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		m[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
