// Package raftstore is the SCD store on the Raft-replicated in-memory store:
// every write operation of pkg/scd is encoded into a log entry, and every node
// applies the committed entries in log order to its own memstore.State. Reads
// run on the local State after a ReadIndex barrier and never enter the log
// (except under Config.ReadsViaLog, a benchmark-only mode in which every
// replica executes them as log entries).
//
// It owns: the binary codec of the SCD operations (the log's payload), the
// codec of their outcomes (results and coded errors, carried in snapshots so
// that a write whose entry reaches its node only inside a leader's snapshot
// still gets its answer), the registry that makes the registered operations the appliers, the adapter of
// memstore.State to the generic store (locking, snapshot and restore), the
// state hash used to compare replicas, and the store's metrics.
//
// It must never: hold SCD logic of its own (Execute in pkg/scd is the only
// applier), decide anything non-deterministic while applying, skip or
// half-apply a committed entry (an undecodable one stops the node), or serve
// a read without the barrier (or, under ReadsViaLog, without its entry).
package raftstore
