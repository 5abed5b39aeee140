package consensus

import (
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// snapStorage is the raft.Storage of a node: a raft.MemoryStorage that holds
// the newest snapshot's metadata, with that snapshot's data (tens of MB for
// a large state) kept beside it instead of inside it.
//
// MemoryStorage deep-copies whatever snapshot goes in or out of it:
// CreateSnapshot returns a proto.Clone of the stored snapshot, data
// included, and ApplySnapshot stores a clone of its argument. For a 30 MB
// snapshot that is a 30 MB allocation and copy on the Ready goroutine, under
// the storage lock that raft's own goroutine needs to look up terms and
// entries, so every write of the cluster waited for it (measured 2–23 ms per
// snapshot, once 266 ms, with the GC work that the garbage adds). Here the
// MemoryStorage only ever sees snapshots without data, which it copies for
// free, and Snapshot, which raft calls to send a snapshot to a follower too
// far behind for entries, attaches the data. The data is shared, not
// copied: nothing writes to a snapshot's data once it is made (the
// transports only read it), the same sharing MemoryStorage itself does
// between CreateSnapshot's argument and what it stores.
type snapStorage struct {
	*raft.MemoryStorage

	// mu orders the creation and installation of snapshots with Snapshot,
	// so that the data returned is always the stored metadata's. It is taken
	// before MemoryStorage's own lock, never after.
	mu        sync.Mutex
	dataIndex uint64 // the index of the snapshot data belongs to
	data      []byte
}

var _ raft.Storage = (*snapStorage)(nil)

func newSnapStorage() *snapStorage { return &snapStorage{MemoryStorage: raft.NewMemoryStorage()} }

// Snapshot implements raft.Storage: the newest snapshot, with its data.
func (s *snapStorage) Snapshot() (*raftpb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, err := s.MemoryStorage.Snapshot() // a copy, without data
	if err != nil {
		return nil, err
	}
	if snap.GetMetadata().GetIndex() == s.dataIndex && s.dataIndex != 0 {
		snap.Data = s.data
	}
	return snap, nil
}

// CreateSnapshot records the snapshot at index i with configuration cs and
// data (see raft.MemoryStorage.CreateSnapshot) without copying data.
func (s *snapStorage) CreateSnapshot(i uint64, cs *raftpb.ConfState, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.MemoryStorage.CreateSnapshot(i, cs, nil); err != nil {
		return err
	}
	s.dataIndex, s.data = i, data
	return nil
}

// ApplySnapshot replaces the storage's contents with snap (see
// raft.MemoryStorage.ApplySnapshot) without copying its data.
func (s *snapStorage) ApplySnapshot(snap *raftpb.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	meta := &raftpb.Snapshot{Metadata: snap.GetMetadata()} // cloned by MemoryStorage
	if err := s.MemoryStorage.ApplySnapshot(meta); err != nil {
		return err
	}
	s.dataIndex, s.data = snap.GetMetadata().GetIndex(), snap.GetData()
	return nil
}
