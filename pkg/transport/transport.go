// Package transport carries raft messages between the nodes of one cluster.
//
// It owns the per-peer send queues and goroutines and the listeners; it never
// interprets raft state. Implementations: gRPC (production) and an in-memory
// network with fault injection (tests).
package transport

import (
	"context"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Handler is the receiving side: the raft node. The transport calls it from
// its own goroutines, concurrently.
type Handler interface {
	// Process steps a message received from a peer into the raft node. A
	// message whose From is not a known peer never reaches Process.
	Process(ctx context.Context, m *raftpb.Message) error
	// ReportUnreachable tells raft that a message to id was dropped.
	ReportUnreachable(id uint64)
	// ReportSnapshot tells raft how sending a snapshot to id ended.
	ReportSnapshot(id uint64, status raft.SnapshotStatus)
}

// ClusterMember is optionally implemented by a Handler whose node knows the
// ID of its cluster. Transports that connect nodes over a network exchange it
// and refuse to connect nodes of different clusters: a node that created a
// cluster of its own by mistake (e.g. a new member started without joining)
// must never exchange votes or entries with another cluster's nodes under
// the same raft IDs. 0 means unknown and matches any ID.
type ClusterMember interface {
	ClusterID() uint64
}

// Transport sends raft messages to peers.
//
// Send never blocks on the network: each peer has a bounded queue drained by
// its own goroutine; when the queue is full the message is dropped and the
// Handler's ReportUnreachable is called (raft retries). MsgSnap messages are
// delivered whole to the peer's Handler (implementations may chunk them on
// the wire) and their outcome is reported with ReportSnapshot.
type Transport interface {
	// Send queues msgs for their destinations (m.To). Messages to unknown
	// peers are dropped and reported unreachable.
	Send(msgs []*raftpb.Message)
	// AddPeer registers a peer by its raft ID; addr is only used to dial it.
	AddPeer(id uint64, addr string)
	// RemovePeer stops sending to id and drops its queue; later messages
	// from id are rejected.
	RemovePeer(id uint64)
	// Stop closes every connection and waits, bounded, for the transport's
	// goroutines to exit. It is idempotent.
	Stop()
}
