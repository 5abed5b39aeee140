package raftstore

import (
	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/raftstore/consensus"
)

// Offline access to a Store's snapshots and data directories, for operator
// tools that move data in and out of a cluster without running a node. Both
// go through the applier a running Store uses, so the bytes written and the
// entries replayed are exactly a node's.

// offlineStore is a Store without a node: enough for its applier, which
// needs the state machine, its codec and a dedupe table. Its raft ID is 0,
// which no proposal carries, so the applier never delivers an outcome to a
// waiter (there are none).
func offlineStore(sm StateMachine, lg *zap.Logger) *Store {
	if lg == nil {
		lg = zap.NewNop()
	}
	s := &Store{lg: lg, sm: sm, table: newDedupeTable(), pending: map[uint64]*pendingProposal{}}
	s.codec, _ = sm.(ResultCodec)
	return s
}

// InitialSnapshot returns the snapshot data a Store writes for sm's current
// state with an empty dedupe table: that of a cluster in which no proposal
// has been applied yet. It is the data for consensus.BootstrapFromSnapshot
// when a new cluster starts from an existing state; with no proposals
// recorded, no proposal ID of the new cluster's nodes can be mistaken for a
// duplicate.
func InitialSnapshot(sm StateMachine) ([]byte, error) {
	write, err := applier{offlineStore(sm, nil)}.Snapshot()
	if err != nil {
		return nil, err
	}
	return write(nil)
}

// ReplayDataDir restores sm from a stopped node's data directory, offline:
// the newest snapshot, then every committed entry after it, through the same
// deduplication as a running node (consensus.ReplayDataDir). Nothing is
// written into dir.
func ReplayDataDir(dir string, sm StateMachine, lg *zap.Logger) (consensus.ReplayInfo, error) {
	return consensus.ReplayDataDir(dir, applier{offlineStore(sm, lg)}, lg)
}
