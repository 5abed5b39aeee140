package raftstore

import (
	"fmt"

	"go.uber.org/zap"

	generic "github.com/raftdss/dss/pkg/raftstore"
	"github.com/raftdss/dss/pkg/raftstore/consensus"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
)

// BootstrapIndex is the log index at which Bootstrap places the initial
// state: the first index there is, so the new cluster's log starts right
// after it.
const BootstrapIndex = 1

// Bootstrap writes the data directory dir of member id of a NEW cluster of
// voters whose initial state is st (consensus.BootstrapFromSnapshot). Run it
// once per member, with that member's ID and directory and the same st and
// voters for all: a node started on dir (Open, with Consensus.ID = id and
// Peers naming the voters) serves exactly st, with every member a voter.
// dir must not exist or be empty. st is only read.
func Bootstrap(dir string, id uint64, voters []uint64, st *memstore.State, lg *zap.Logger) error {
	data, err := InitialSnapshotData(st, BootstrapIndex)
	if err != nil {
		return err
	}
	return consensus.BootstrapFromSnapshot(dir, id, voters, BootstrapIndex, data, lg)
}

// InitialSnapshotData returns the raft snapshot data a node of this store
// would produce with st as its state at log index and no proposal applied
// yet (an empty dedupe table). st is only read.
func InitialSnapshotData(st *memstore.State, index uint64) ([]byte, error) {
	if st == nil {
		return nil, fmt.Errorf("scd raftstore: nil state")
	}
	m := newMachine(&stateRepo{st: st, index: index}, generic.OperationOptions{})
	return generic.InitialSnapshot(m)
}

// ReadDataDir returns the state of a stopped node from its data directory:
// the newest snapshot plus every committed entry after it, applied by the
// same state machine as the node's (generic.ReplayDataDir), without starting
// raft or writing into dir. An entry the state machine cannot decode is an
// error, as it would stop the node; so is a read entry, left by a node run
// with Config.ReadsViaLog (benchmarks only).
func ReadDataDir(dir string, lg *zap.Logger) (*memstore.State, consensus.ReplayInfo, error) {
	repo := newStateRepo()
	m := newMachine(repo, generic.OperationOptions{})
	info, err := generic.ReplayDataDir(dir, m, lg)
	if err != nil {
		return nil, info, err
	}
	return repo.st, info, nil
}
