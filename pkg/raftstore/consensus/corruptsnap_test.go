package consensus

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// corruptNewestSnap flips a byte in the middle of the newest .snap file of
// dir and returns its path.
func corruptNewestSnap(t *testing.T, dir string) string {
	return corruptSnaps(t, dir, 1)
}

// corruptSnaps flips a byte in the middle of the n newest .snap files of
// dir (keeping at least one) and returns the newest one's path.
func corruptSnaps(t *testing.T, dir string, n int) string {
	t.Helper()
	snaps, _ := filepath.Glob(filepath.Join(dir, "snap", "*.snap"))
	if len(snaps) < 2 {
		t.Fatalf("%d snapshot files, want at least 2 (an older one to fall back to)", len(snaps))
	}
	sort.Strings(snaps)
	for _, f := range snaps[max(1, len(snaps)-n):] {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return snaps[len(snaps)-1]
}

// A corrupt newest snapshot whose gap the WAL still covers (no segment was
// purged since the older snapshot): the node starts from the older
// snapshot plus the WAL, with every entry, and counts the file.
func TestCorruptNewestSnapshotFallsBackWhenWALCovers(t *testing.T) {
	dir := t.TempDir()
	app := &memApp{}
	// Default (64 MB) segments: nothing is purged, the WAL reaches back to
	// the start.
	tune := func(c *Config) { c.SnapshotEntries = 10; c.CatchUpEntries = 3 }
	n, err := startSingle(t, dir, app, tune)
	if err != nil {
		t.Fatal(err)
	}
	want := payloads("f", 60)
	write(t, n, app, want...)
	n.Stop()
	bad := corruptNewestSnap(t, dir)

	app2 := &memApp{}
	n2, err := startSingle(t, dir, app2, tune)
	if err != nil {
		t.Fatalf("start with a corrupt newest snapshot the WAL covers: %v", err)
	}
	defer n2.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n2.ReadBarrier(ctx); err != nil {
		t.Fatal(err)
	}
	if got := app2.snapshotOf(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after the fallback got %d entries, want %d", len(got), len(want))
	}
	if got := n2.Stats().CorruptSnapshots; got != 1 {
		t.Fatalf("CorruptSnapshots = %d, want 1", got)
	}
	if _, err := os.Stat(bad); err != nil {
		t.Fatalf("the corrupt file is not left in place: %v", err)
	}
}

// A corrupt newest snapshot whose gap the WAL no longer covers (segments
// purged up to it): the node refuses to start with ErrCorruptSnapshot and
// leaves the data directory as it was.
func TestCorruptNewestSnapshotRefusesWhenWALPurged(t *testing.T) {
	saved := wal.SegmentSizeBytes
	wal.SegmentSizeBytes = 16 << 10
	defer func() { wal.SegmentSizeBytes = saved }()
	dir := t.TempDir()
	app := &memApp{}
	tune := func(c *Config) { c.SnapshotEntries = 10; c.CatchUpEntries = 3 }
	n, err := startSingle(t, dir, app, tune)
	if err != nil {
		t.Fatal(err)
	}
	write(t, n, app, payloads("p", 200)...)
	n.Stop()
	// All but the oldest kept snapshot: the WAL segments from before the
	// newest were purged, so the oldest lies before the WAL's first entry.
	segs, _ := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	snaps, _ := filepath.Glob(filepath.Join(dir, "snap", "*.snap"))
	sort.Strings(segs)
	sort.Strings(snaps)
	t.Logf("WAL segments %v, snapshots %v", segs, snaps)
	corruptSnaps(t, dir, keepSnapFiles)
	before := dirContents(t, dir)

	_, err = startSingle(t, dir, &memApp{}, tune)
	if !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("start with a corrupt snapshot the WAL no longer covers: got %v, want ErrCorruptSnapshot", err)
	}
	t.Logf("refused: %v", err)
	after := dirContents(t, dir)
	if len(after) != len(before) {
		t.Fatalf("the refused start changed the files: %d before, %d after", len(before), len(after))
	}
	for p, b := range before {
		if after[p] != b {
			t.Fatalf("the refused start changed %s", p)
		}
	}

	// The offline reader refuses it the same way.
	if _, err := ReplayDataDir(dir, &memApp{}, nil); !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("ReplayDataDir: got %v, want ErrCorruptSnapshot", err)
	}
}

// walCovers is the check that lets a node fall back to an older snapshot.
func TestWALCovers(t *testing.T) {
	ents := func(from, to uint64) []*raftpb.Entry {
		var es []*raftpb.Entry
		for i := from; i <= to; i++ {
			es = append(es, &raftpb.Entry{Index: proto.Uint64(i)})
		}
		return es
	}
	hs := func(commit uint64) *raftpb.HardState { return &raftpb.HardState{Commit: proto.Uint64(commit)} }
	for _, c := range []struct {
		name   string
		from   uint64
		hard   *raftpb.HardState
		ents   []*raftpb.Entry
		covers bool
	}{
		{"entries right after the snapshot, up to the commit", 10, hs(15), ents(11, 16), true},
		{"no entries, nothing committed after", 10, hs(10), nil, true},
		{"a gap after the snapshot", 10, hs(30), ents(21, 30), false},
		{"entries end before the commit", 10, hs(30), ents(11, 20), false},
		{"no entries, commit after the snapshot", 10, hs(12), nil, false},
	} {
		if err := walCovers(c.from, c.hard, c.ents); (err == nil) != c.covers {
			t.Errorf("%s: walCovers = %v, want covered %v", c.name, err, c.covers)
		}
	}
}

// A temporary snapshot file left by a crash mid-save is removed at the
// next start.
func TestSnapTempRemovedAtStart(t *testing.T) {
	dir := t.TempDir()
	app := &memApp{}
	tune := func(c *Config) { c.SnapshotEntries = 10; c.CatchUpEntries = 3 }
	n, err := startSingle(t, dir, app, tune)
	if err != nil {
		t.Fatal(err)
	}
	write(t, n, app, payloads("d", 20)...)
	n.Stop()
	tmp := filepath.Join(dir, "snap", "db.tmp.0000000000000002-0000000000000020.snap")
	if err := os.WriteFile(tmp, []byte("half a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	n2, err := startSingle(t, dir, &memApp{}, tune)
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Stop()
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the temporary file is still there: %v", err)
	}
}
