package consensus

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// ErrCorruptWAL is returned by New when the WAL is damaged anywhere other
// than a torn final record. Such a WAL is never repaired automatically:
// truncating it could drop entries this node acknowledged to a leader, which
// would let a committed entry be lost (raft thesis §3.8 requires durable
// acknowledged entries).
var ErrCorruptWAL = errors.New("consensus: WAL is corrupt (not a torn tail); refusing to start")

// ErrCorruptSnapshot is returned by New (and ReplayDataDir) when a snapshot
// file is unreadable (its CRC or encoding is wrong) and the node cannot do
// without it: no older snapshot together with the WAL covers the state.
var ErrCorruptSnapshot = errors.New("consensus: corrupt snapshot file")

// keepSnapFiles is how many .snap files survive a purge. More than one, so
// that a crash between writing a new snapshot file and its WAL record still
// finds the previous snapshot whose record is in the WAL.
const keepSnapFiles = 3

// diskState is what a restart recovers from DataDir.
type diskState struct {
	wal      *wal.WAL
	snapshot *raftpb.Snapshot // nil when none
	hard     *raftpb.HardState
	entries  []*raftpb.Entry
	fresh    bool // the WAL holds nothing yet: a new member
	// join: the WAL was created for a member joining a running cluster
	// (Config.Join); while it is fresh the node must not bootstrap, even if
	// restarted without Join.
	join bool
	// corruptSnaps is the number of unreadable snapshot files skipped in
	// favour of an older snapshot.
	corruptSnaps int
}

// walMetadata is what a node writes into its WAL at creation: its ID, and
// whether it joins a running cluster rather than bootstrapping one.
func walMetadata(id uint64, join bool) []byte {
	if join {
		return fmt.Appendf(nil, "raftdss node %d join", id)
	}
	return fmt.Appendf(nil, "raftdss node %d", id)
}

func walDir(dataDir string) string  { return filepath.Join(dataDir, "wal") }
func snapDir(dataDir string) string { return filepath.Join(dataDir, "snap") }

// openDisk creates or recovers the WAL and the newest valid snapshot.
//
// join is Config.Join: it is recorded in a new WAL and ignored for an
// existing one.
func openDisk(lg *zap.Logger, dataDir string, id uint64, join bool, ss *snap.Snapshotter) (*diskState, error) {
	wd := walDir(dataDir)
	if !wal.Exist(wd) {
		w, err := wal.Create(lg, wd, walMetadata(id, join))
		if err != nil {
			return nil, fmt.Errorf("consensus: creating WAL in %s: %w", wd, err)
		}
		return &diskState{wal: w, hard: &raftpb.HardState{}, fresh: true, join: join}, nil
	}

	// Only snapshots whose WAL record exists and is covered by the committed
	// hard state are usable (etcd's bootstrap does the same): a .snap file
	// written just before a crash, without its WAL record, is ignored.
	walSnaps, err := wal.ValidSnapshotEntries(lg, wd)
	if err != nil {
		return nil, classifyWALError(wd, err)
	}
	// A corrupt snapshot file (newest or not) is skipped for an older one
	// whose WAL record exists, as etcd does, but only if the WAL still
	// holds every entry since that older snapshot: below, a WAL that no
	// longer reaches back to it refuses the start. The skipped file is left
	// as it is (not renamed): the data directory is only read until the
	// node has started.
	snapshot, corrupt, err := newestSnapshot(lg, snapDir(dataDir), walSnaps)
	if err != nil {
		return nil, err
	}
	walSnap := &walpb.Snapshot{}
	if snapshot != nil {
		walSnap.Index = proto.Uint64(snapshot.GetMetadata().GetIndex())
		walSnap.Term = proto.Uint64(snapshot.GetMetadata().GetTerm())
	}

	// fallback explains a WAL that cannot be read from the snapshot chosen
	// after skipping corrupt ones.
	fallback := func(err error) error {
		if len(corrupt) == 0 {
			return err
		}
		return fmt.Errorf("%w: %s is unreadable and the WAL no longer holds every entry since the "+
			"older snapshot %s (index %d), so the node cannot rebuild its state; refusing to start "+
			"(replace this node under a new ID, docs/operations.md): %v",
			ErrCorruptSnapshot, corrupt[0], snapName(snapshot), walSnap.GetIndex(), err)
	}
	for attempt := 0; ; attempt++ {
		w, err := wal.Open(lg, wd, walSnap)
		if err != nil {
			return nil, fallback(fmt.Errorf("consensus: opening WAL in %s: %w", wd, err))
		}
		meta, hard, ents, err := w.ReadAll()
		if err == nil && len(corrupt) > 0 {
			if err := walCovers(walSnap.GetIndex(), hard, ents); err != nil {
				_ = w.Close()
				return nil, fallback(err)
			}
		}
		if err == nil {
			joined := string(meta) == string(walMetadata(id, true))
			if !joined && string(meta) != string(walMetadata(id, false)) {
				_ = w.Close()
				return nil, fmt.Errorf("consensus: WAL in %s belongs to %q, not node %d", wd, meta, id)
			}
			// A WAL that holds nothing (the node stopped after creating it
			// but before its first save) means the node never voted, never
			// acknowledged an entry and never learned its members: it is
			// still a new member and must bootstrap (unless it joins), or
			// it would restart with an empty configuration and never elect
			// a leader.
			fresh := snapshot == nil && len(ents) == 0 && raft.IsEmptyHardState(hard)
			for _, name := range corrupt {
				lg.Error("skipped a corrupt snapshot file: the node starts from an older snapshot and the WAL "+
					"entries after it (the WAL still holds them all); the file is left in place",
					zap.String("file", filepath.Join(snapDir(dataDir), name)), zap.String("from", snapName(snapshot)))
			}
			removeSnapTemps(lg, snapDir(dataDir))
			return &diskState{wal: w, snapshot: snapshot, hard: hard, entries: ents, fresh: fresh, join: joined,
				corruptSnaps: len(corrupt)}, nil
		}
		_ = w.Close()
		// A torn final record (power loss mid-write) was never fsynced, so
		// it was never acknowledged to anyone: cutting it off is safe. wal.Repair
		// only ever truncates such a tail.
		if errors.Is(err, io.ErrUnexpectedEOF) && attempt == 0 {
			lg.Warn("WAL has a torn tail; repairing", zap.String("dir", wd), zap.Error(err))
			if !wal.Repair(lg, wd) {
				return nil, fmt.Errorf("%w: %s: repair of torn tail failed", ErrCorruptWAL, wd)
			}
			continue
		}
		return nil, fallback(classifyWALError(wd, err))
	}
}

// removeSnapTemps deletes the "db.tmp" files a crash left in the snapshot
// directory dir (saveSnapFile's temporary files), as
// snap.Snapshotter.LoadNewestAvailable does when it lists the directory.
// It runs only once the node's start has read its disk, so a refused start
// leaves the directory as it was.
func removeSnapTemps(lg *zap.Logger, dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return // no snapshot directory yet, or one the next save reports
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "db.tmp") {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				lg.Warn("removing a temporary snapshot file left by a crash", zap.String("file", e.Name()), zap.Error(err))
			} else {
				lg.Info("removed a temporary snapshot file left by a crash", zap.String("file", e.Name()))
			}
		}
	}
}

// walCovers checks that the WAL entries ents, read from the snapshot at
// index from, start right after it and reach the committed index: that
// from and ents alone rebuild the state.
func walCovers(from uint64, hard *raftpb.HardState, ents []*raftpb.Entry) error {
	last := from
	if len(ents) > 0 {
		if first := ents[0].GetIndex(); first != from+1 {
			return fmt.Errorf("the WAL's entries start at %d, not %d", first, from+1)
		}
		last = ents[len(ents)-1].GetIndex()
	}
	if last < hard.GetCommit() {
		return fmt.Errorf("the WAL's entries end at %d, before the committed index %d", last, hard.GetCommit())
	}
	return nil
}

// snapName is the file name of snapshot s ("none" for nil).
func snapName(s *raftpb.Snapshot) string {
	if s == nil {
		return "none (the start of the log)"
	}
	return fmt.Sprintf("%016x-%016x.snap", s.GetMetadata().GetTerm(), s.GetMetadata().GetIndex())
}

func classifyWALError(dir string, err error) error {
	if errors.Is(err, walpb.ErrCRCMismatch) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, wal.ErrSliceOutOfRange) {
		return fmt.Errorf("%w: %s: %v", ErrCorruptWAL, dir, err)
	}
	return fmt.Errorf("consensus: reading WAL in %s: %w", dir, err)
}

// purgeWAL deletes WAL segments that the WAL no longer holds locks on.
// wal.ReleaseLockTo only unlocks segments wholly below the snapshot index; it
// deletes nothing. A segment we can lock is therefore one the open WAL has
// released (the locks are per open file description, so our own open WAL
// still conflicts with us).
func purgeWAL(lg *zap.Logger, dir string) {
	names, err := fileutil.ReadDir(dir, fileutil.WithExt(".wal"))
	if err != nil {
		lg.Warn("listing WAL segments for purge", zap.Error(err))
		return
	}
	sort.Strings(names)
	// Never consider the newest segment: it is the one being written.
	for _, name := range names[:max(len(names)-1, 0)] {
		p := filepath.Join(dir, name)
		l, err := fileutil.TryLockFile(p, os.O_WRONLY, fileutil.PrivateFileMode)
		if err != nil {
			// Still held by the WAL; later segments are held too.
			break
		}
		if err := os.Remove(p); err != nil {
			lg.Warn("removing WAL segment", zap.String("file", p), zap.Error(err))
		} else {
			lg.Debug("purged WAL segment", zap.String("file", p))
		}
		_ = l.Close()
	}
}

// purgeSnaps keeps the newest keepSnapFiles snapshot files. Names are
// %016x-%016x.snap (term-index), so lexical order is (term, index) order.
func purgeSnaps(lg *zap.Logger, dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		lg.Warn("listing snapshots for purge", zap.Error(err))
		return
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".snap") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, name := range names[:max(len(names)-keepSnapFiles, 0)] {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			lg.Warn("removing snapshot file", zap.String("file", name), zap.Error(err))
		}
	}
}
