// Package consensus runs one etcd raft node: the Ready loop, the apply
// goroutine beside it, the write-ahead log and snapshot files on disk,
// periodic snapshots with log compaction, and batched ReadIndex barriers.
//
// It owns the raft.Node, the raft.MemoryStorage, the WAL (DataDir/wal) and
// the snapshot directory (DataDir/snap), and it owns the transport it is
// given: it steps inbound messages and sends outbound ones.
//
// It must never interpret entry payloads: committed normal entries are handed
// to an Application in log order as opaque bytes, and snapshots are opaque
// bytes produced and restored by the Application. It must never acknowledge
// anything itself; acknowledgement (after commit and apply) is the caller's
// business.
package consensus
