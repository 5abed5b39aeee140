// Package consensus runs one etcd raft node: the Ready loop, the apply
// goroutine beside it, the write-ahead log and snapshot files on disk,
// periodic snapshots with log compaction, batched ReadIndex barriers, and
// membership changes (members.go: voters and learners added, promoted and
// removed one at a time through the log; the cluster's ID, which transports
// use to keep clusters apart).
//
// It owns the raft.Node, the raft.MemoryStorage, the WAL (DataDir/wal) and
// the snapshot directory (DataDir/snap), and it owns the transport it is
// given: it steps inbound messages and sends outbound ones.
//
// It must never interpret entry payloads: committed normal entries are handed
// to an Application in log order as opaque bytes, and snapshots are opaque
// bytes produced and restored by the Application (after the node's own
// member record, which it writes in front of them). It must never acknowledge
// anything itself; acknowledgement (after commit and apply) is the caller's
// business.
package consensus
