// Package raftstore is the generic Raft-replicated store: Transact proposes
// a payload, waits until this node applies it, and returns the state
// machine's result; Read runs a read after a linearizable ReadIndex barrier.
// OperationStore adapts it to store.Store[R] for registered operations.
//
// It owns the proposal envelope (proposal IDs), the pending-proposal table,
// re-proposal after leader changes, and the replicated dedupe table that
// makes re-proposals apply exactly once. Consensus (the raft node, WAL,
// snapshots) lives in the consensus subpackage.
//
// It must never interpret payloads (that is the StateMachine's job), never
// serve a read without a ReadIndex barrier, and never report a proposal whose
// outcome it does not know as failed: that is ErrIndeterminate.
package raftstore
