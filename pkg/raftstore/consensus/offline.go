package consensus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// This file holds what operator tools do with a data directory while no
// node runs on it: write the first data directory of a new cluster from a
// state (BootstrapFromSnapshot), and read a stopped node's state
// (ReplayDataDir).

// ErrDataDirNotEmpty is returned by BootstrapFromSnapshot when the target
// directory holds anything: bootstrapping over an existing node's WAL would
// make it a member of two clusters at once.
var ErrDataDirNotEmpty = errors.New("consensus: data directory is not empty")

// ErrDataDirInUse is returned by ReplayDataDir when a running node holds the
// WAL: what it reads could be purged or extended under it.
var ErrDataDirInUse = errors.New("consensus: data directory is in use by a running node")

// BootstrapTerm is the term of the snapshot BootstrapFromSnapshot writes.
const BootstrapTerm = 1

// BootstrapFromSnapshot writes the data directory dir of member id of a NEW
// cluster whose members are voters (id among them), starting from data, the
// Application snapshot of the initial state, as if every member had applied
// a log up to index in term BootstrapTerm. This is etcd's snapshot restore
// technique: no log entries, a snapshot whose ConfState names the voters, and
// a hard state that commits it. A node started on dir with the same ID
// (New) then restores data, finds itself a voter among voters, and elects a
// leader with the others in term 2; every member must be bootstrapped from
// the same data, index and voters, because raft treats their logs as
// identical up to index.
//
// Layout, exactly what New expects: dir/snap holds the snapshot file (saved
// with the snap package); dir/wal is created with the metadata a node writes
// ("raftdss node <id>") and holds the snapshot record and
// HardState{Term: BootstrapTerm, Commit: index}. Nothing else is written:
// files the layers above keep beside them (the store's boot epoch) are
// created by them on the first start, exactly as for a fresh member.
//
// dir must not exist or be empty (else ErrDataDirNotEmpty). Everything is
// built in a temporary sibling directory, fsynced, and renamed to dir in one
// step, so a crash or error never leaves a half-written WAL that a node
// would start on (at worst, an empty dir is gone and a temporary
// ".<dir>.bootstrap-*" sibling remains).
func BootstrapFromSnapshot(dir string, id uint64, voters []uint64, index uint64, data []byte, lg *zap.Logger) error {
	return BootstrapFromSnapshotAs(dir, id, voters, ClusterIDOf(voters), index, data, lg)
}

// ClusterIDOf is the ID of a cluster created with the initial members
// voters (by a node's first start, or BootstrapFromSnapshot).
func ClusterIDOf(voters []uint64) uint64 { return clusterIDOf(voters) }

// BootstrapFromSnapshotAs is BootstrapFromSnapshot for a cluster whose ID
// is cluster rather than ClusterIDOf(voters): a cluster restored from a
// backup, whose ID must differ from the cluster the backup was taken of
// even when the members have the same raft IDs, so that a surviving node of
// the old cluster cannot take part in the new one. Every member must be
// written with the same cluster.
func BootstrapFromSnapshotAs(dir string, id uint64, voters []uint64, cluster, index uint64, data []byte, lg *zap.Logger) error {
	if lg == nil {
		lg = zap.NewNop()
	}
	switch {
	case dir == "":
		return errors.New("consensus: no data directory given")
	case id == 0:
		return errors.New("consensus: raft ID 0 is not valid")
	case cluster == 0:
		return errors.New("consensus: cluster ID 0 is not valid")
	case index == 0:
		// Index 0 is raft's "no snapshot".
		return errors.New("consensus: the bootstrap snapshot index must be at least 1")
	}
	voters = slices.Clone(voters)
	slices.Sort(voters)
	if len(voters) == 0 || voters[0] == 0 || len(slices.Compact(slices.Clone(voters))) != len(voters) {
		return fmt.Errorf("consensus: voters %v must be non-zero and distinct", voters)
	}
	if !slices.Contains(voters, id) {
		return fmt.Errorf("consensus: node %d is not among the voters %v", id, voters)
	}
	if err := checkEmptyDir(dir); err != nil {
		return err
	}
	dir = filepath.Clean(dir)
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("consensus: creating %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".bootstrap-")
	if err != nil {
		return fmt.Errorf("consensus: creating a temporary directory: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := writeBootstrap(tmp, id, voters, cluster, index, data, lg); err != nil {
		return err
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	// os.Rename never replaces a directory, so an empty dir goes first.
	// Removing fails on a directory that filled up since the check, and the
	// rename fails if one appears again in between: either way, refused.
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		if errors.Is(err, os.ErrExist) { // ENOTEMPTY matches os.ErrExist
			return fmt.Errorf("%w: %s", ErrDataDirNotEmpty, dir)
		}
		return fmt.Errorf("consensus: replacing the empty directory %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %s", ErrDataDirNotEmpty, dir)
		}
		return fmt.Errorf("consensus: moving the bootstrapped directory into place: %w", err)
	}
	done = true
	return syncDir(parent)
}

func writeBootstrap(dir string, id uint64, voters []uint64, cluster, index uint64, data []byte, lg *zap.Logger) error {
	cs := &raftpb.ConfState{Voters: voters}
	sd := snapDir(dir)
	if err := os.Mkdir(sd, 0o700); err != nil {
		return fmt.Errorf("consensus: creating %s: %w", sd, err)
	}
	// The snapshot file before its WAL record, as the Ready loop does.
	s := &raftpb.Snapshot{
		// No member was added through the log yet: only the cluster's ID.
		Data: append(memberRecord{cluster: cluster}.appendTo(nil), data...),
		Metadata: &raftpb.SnapshotMetadata{
			ConfState: cs,
			Index:     proto.Uint64(index),
			Term:      proto.Uint64(BootstrapTerm),
		},
	}
	if err := snap.New(lg, sd).SaveSnap(s); err != nil {
		return fmt.Errorf("consensus: saving the bootstrap snapshot: %w", err)
	}
	if err := syncDir(sd); err != nil {
		return err
	}
	w, err := wal.Create(lg, walDir(dir), walMetadata(id, false))
	if err != nil {
		return fmt.Errorf("consensus: creating the WAL: %w", err)
	}
	err = w.SaveSnapshot(&walpb.Snapshot{
		Index: proto.Uint64(index), Term: proto.Uint64(BootstrapTerm), ConfState: cs,
	})
	if err == nil {
		// Commit = index makes the snapshot record valid for recovery
		// (wal.ValidSnapshotEntries keeps only committed snapshots). No
		// vote: the first election happens in term 2.
		err = w.Save(&raftpb.HardState{Term: proto.Uint64(BootstrapTerm), Commit: proto.Uint64(index)}, nil)
	}
	if cerr := w.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("consensus: writing the WAL: %w", err)
	}
	return nil
}

// checkEmptyDir returns nil when dir does not exist or is an empty
// directory.
func checkEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("consensus: reading %s: %w", dir, err)
	case len(entries) > 0:
		return fmt.Errorf("%w: %s holds %s", ErrDataDirNotEmpty, dir, entries[0].Name())
	}
	return nil
}

func syncDir(dir string) error {
	d, err := fileutil.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("consensus: syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := fileutil.Fsync(d); err != nil {
		return fmt.Errorf("consensus: syncing %s: %w", dir, err)
	}
	return nil
}

// ReplayInfo describes the data directory ReplayDataDir read.
type ReplayInfo struct {
	// NodeID is the raft ID the WAL belongs to.
	NodeID uint64
	// SnapshotIndex is the index of the snapshot the state started from (0
	// when none).
	SnapshotIndex uint64
	// Applied is the index of the last entry replayed: the node's commit
	// index as last persisted. Entries after it are not known to be
	// committed and are left out, as the node itself would on a restart.
	Applied uint64
	// Entries is the number of normal entries handed to Apply.
	Entries int
}

// ReplayDataDir rebuilds, in app, the state a node would have after
// restarting on dir and applying everything it knows to be committed,
// without starting raft and without writing anything into dir: app is
// restored from the newest snapshot that the WAL records and commits, then
// given every committed normal entry after it, in log order, exactly as the
// Ready loop hands them over (empty no-op entries and membership changes do
// not reach the Application).
//
// Differences from a node's start, all to keep dir untouched: a torn final
// WAL record is ignored rather than repaired (it was never acknowledged, so
// the result is the same). As at a node's start, an unreadable snapshot
// file is skipped for an older one only when the WAL holds every entry
// since that one (else ErrCorruptSnapshot), and left in place. It refuses
// a directory whose WAL a running node holds (ErrDataDirInUse) and a WAL
// corrupt anywhere but its tail (ErrCorruptWAL).
func ReplayDataDir(dir string, app Application, lg *zap.Logger) (ReplayInfo, error) {
	var info ReplayInfo
	if lg == nil {
		lg = zap.NewNop()
	}
	wd := walDir(dir)
	if !wal.Exist(wd) {
		return info, fmt.Errorf("consensus: %s holds no WAL: not a node's data directory", dir)
	}
	if err := checkNotRunning(wd); err != nil {
		return info, err
	}
	walSnaps, err := wal.ValidSnapshotEntries(lg, wd)
	if err != nil {
		return info, classifyWALError(wd, err)
	}
	snapshot, corrupt, err := newestSnapshot(lg, snapDir(dir), walSnaps)
	if err != nil {
		return info, err
	}
	for _, name := range corrupt {
		lg.Error("skipping a corrupt snapshot file for an older snapshot plus the WAL", zap.String("file", name))
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
		return fmt.Errorf("%w: %s is unreadable and the WAL no longer holds every entry since the older "+
			"snapshot %s: %v", ErrCorruptSnapshot, corrupt[0], snapName(snapshot), err)
	}
	w, err := wal.OpenForRead(lg, wd, walSnap)
	if err != nil {
		return info, fallback(fmt.Errorf("consensus: opening WAL in %s: %w", wd, err))
	}
	meta, hard, ents, err := w.ReadAll()
	_ = w.Close()
	if err != nil {
		return info, fallback(classifyWALError(wd, err))
	}
	if len(corrupt) > 0 {
		if err := walCovers(walSnap.GetIndex(), hard, ents); err != nil {
			return info, fallback(err)
		}
	}
	if _, err := fmt.Sscanf(string(meta), "raftdss node %d", &info.NodeID); err != nil || info.NodeID == 0 {
		return info, fmt.Errorf("consensus: WAL in %s has metadata %q, not a raftdss node's", wd, meta)
	}

	if snapshot != nil {
		info.SnapshotIndex = snapshot.GetMetadata().GetIndex()
		_, data, err := splitSnapshotData(snapshot.GetData())
		if err != nil {
			return info, fmt.Errorf("consensus: snapshot %d: %w", info.SnapshotIndex, err)
		}
		if err := app.Restore(data); err != nil {
			return info, fmt.Errorf("consensus: restoring state machine from snapshot %d: %w", info.SnapshotIndex, err)
		}
	} else if err := app.Restore(nil); err != nil {
		return info, fmt.Errorf("consensus: resetting state machine: %w", err)
	}
	info.Applied = info.SnapshotIndex
	commit := hard.GetCommit()
	for _, e := range ents {
		idx := e.GetIndex()
		if idx <= info.Applied {
			continue
		}
		if idx > commit {
			break
		}
		if idx != info.Applied+1 {
			return info, fmt.Errorf("%w: %s: entry %d follows %d", ErrCorruptWAL, wd, idx, info.Applied)
		}
		switch e.GetType() {
		case raftpb.EntryNormal:
			if len(e.GetData()) > 0 {
				if err := app.Apply(idx, e.GetData()); err != nil {
					return info, fmt.Errorf("consensus: applying entry %d: %w", idx, err)
				}
				info.Entries++
			}
		case raftpb.EntryConfChange:
			if err := proto.Unmarshal(e.GetData(), &raftpb.ConfChange{}); err != nil {
				return info, fmt.Errorf("consensus: undecodable conf change at %d: %w", idx, err)
			}
		case raftpb.EntryConfChangeV2:
			if err := proto.Unmarshal(e.GetData(), &raftpb.ConfChangeV2{}); err != nil {
				return info, fmt.Errorf("consensus: undecodable conf change at %d: %w", idx, err)
			}
		default:
			return info, fmt.Errorf("consensus: entry %d has unknown type %v", idx, e.GetType())
		}
		info.Applied = idx
	}
	if info.Applied < commit && commit > info.SnapshotIndex {
		return info, fmt.Errorf("%w: %s: committed index %d, but the entries end at %d", ErrCorruptWAL, wd, commit, info.Applied)
	}
	return info, nil
}

// checkNotRunning fails when another open WAL (a running node's) holds the
// lock on the newest segment. The probe opens the file for writing only
// because the lock is a write lock; it writes nothing. A directory we may
// not write to cannot hold a WAL that anyone is appending to through us, so
// a permission error skips the check.
func checkNotRunning(wd string) error {
	names, err := fileutil.ReadDir(wd, fileutil.WithExt(".wal"))
	if err != nil || len(names) == 0 {
		return nil // wal.OpenForRead reports it
	}
	sort.Strings(names)
	l, err := fileutil.TryLockFile(filepath.Join(wd, names[len(names)-1]), os.O_RDWR, fileutil.PrivateFileMode)
	switch {
	case err == nil:
		return l.Close()
	case errors.Is(err, fileutil.ErrLocked):
		return fmt.Errorf("%w: %s (stop the node first)", ErrDataDirInUse, wd)
	case errors.Is(err, os.ErrPermission):
		return nil
	default:
		return fmt.Errorf("consensus: probing the WAL lock in %s: %w", wd, err)
	}
}

// newestSnapshot is snap.Snapshotter.LoadNewestAvailable without its side
// effect (it renames unreadable files to *.broken): the newest snapshot file
// that reads back intact and matches a snapshot record of the WAL, or nil
// when there is none, and the names of the unreadable snapshot files newer
// than it (newest first) that were skipped. Whether the WAL covers the
// state from the returned snapshot on is the caller's to check.
func newestSnapshot(lg *zap.Logger, dir string, walSnaps []*walpb.Snapshot) (*raftpb.Snapshot, []string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("consensus: listing snapshots in %s: %w", dir, err)
	}
	var corrupt []string
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".snap") {
			names = append(names, e.Name())
		}
	}
	// %016x-%016x.snap: lexical order is (term, index) order.
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	for _, name := range names {
		s, err := snap.Read(lg, filepath.Join(dir, name))
		if err != nil {
			lg.Warn("unreadable snapshot file", zap.String("file", name), zap.Error(err))
			corrupt = append(corrupt, name)
			continue
		}
		md := s.GetMetadata()
		for _, ws := range walSnaps {
			if ws.GetIndex() == md.GetIndex() && ws.GetTerm() == md.GetTerm() {
				return s, corrupt, nil
			}
		}
	}
	if slices.ContainsFunc(walSnaps, func(ws *walpb.Snapshot) bool { return ws.GetIndex() > 0 }) {
		// The WAL starts after a snapshot we cannot read: replaying it from
		// nothing would silently drop everything before that snapshot.
		return nil, corrupt, fmt.Errorf("%w: no readable snapshot in %s matches the WAL's snapshot records "+
			"(unreadable: %v); refusing to start", ErrCorruptSnapshot, dir, corrupt)
	}
	return nil, corrupt, nil
}
