package consensus

import (
	"sync/atomic"
	"time"
)

// Stats are cumulative counters of a node's Ready and read loops. They exist to make
// group commit observable: how many entries each fsynced WAL save carries
// (raft-notes: throughput at 64 clients comes from ~9 entries per save), how
// long saves take, and how many committed entries each apply step handles.
type Stats struct {
	// Readys is the number of raft.Ready batches handled.
	Readys uint64
	// WALSaves counts wal.Save calls that had entries or hard state to
	// write.
	WALSaves uint64
	// WALSyncs counts the saves raft required to be durable (MustSync:
	// entries, term or vote changed); wal.Save fsyncs exactly these.
	WALSyncs uint64
	// EntriesSaved is the number of log entries written to the WAL.
	EntriesSaved uint64
	// WALSaveTime is the total time spent in wal.Save, fsync included.
	WALSaveTime time.Duration
	// ApplyBatches counts Readys that carried committed entries.
	ApplyBatches uint64
	// EntriesApplied is the number of committed entries handed to apply
	// (including no-ops and conf changes).
	EntriesApplied uint64
	// Snapshots counts the snapshots this node took (not those received
	// from a leader).
	Snapshots uint64
	// SnapshotCaptureTime is the total time the apply goroutine spent capturing
	// state for them: the only part of a snapshot that holds up applies.
	SnapshotCaptureTime time.Duration
	// SnapshotTime is their total time from capture to completion
	// (serialised, file saved, WAL record written, log compacted).
	SnapshotTime time.Duration

	// ReadBarriers counts ReadBarrier calls that entered a ReadIndex round;
	// ReadRounds the rounds issued for them (retries included). Their
	// ratio is the read-batching factor: each round costs a message to the
	// leader (from a follower), a heartbeat to and an answer from every
	// follower.
	ReadBarriers, ReadRounds uint64
	// ReadRoundTime is the total time from issuing a round to its answer
	// (over answered rounds; divided by ReadRounds, about the wait a read
	// adds).
	ReadRoundTime time.Duration

	// CorruptSnapshots is the number of unreadable snapshot files the node
	// skipped at its start for an older snapshot plus the WAL.
	CorruptSnapshots uint64
}

// SnapshotEvent describes one snapshot the node took, for
// Config.SnapshotObserver.
type SnapshotEvent struct {
	Index uint64 // the log index it is the state at
	Bytes int    // size of the Application's data
	// Start is when the capture began; Done when the snapshot became the
	// node's newest (file and WAL record durable, log compacted).
	Start, Done time.Time
	// Capture is how long applies were held up by the capture;
	// Serialise and Save how long the background goroutine took to
	// serialise it and to write and fsync the file.
	Capture, Serialise, Save time.Duration
}

// EntriesPerSync is the mean number of entries per fsynced WAL save, the
// group-commit factor; 0 when nothing was synced.
func (s Stats) EntriesPerSync() float64 {
	if s.WALSyncs == 0 {
		return 0
	}
	return float64(s.EntriesSaved) / float64(s.WALSyncs)
}

// Sub returns the counters accumulated between o (earlier) and s.
func (s Stats) Sub(o Stats) Stats {
	return Stats{
		Readys:         s.Readys - o.Readys,
		WALSaves:       s.WALSaves - o.WALSaves,
		WALSyncs:       s.WALSyncs - o.WALSyncs,
		EntriesSaved:   s.EntriesSaved - o.EntriesSaved,
		WALSaveTime:    s.WALSaveTime - o.WALSaveTime,
		ApplyBatches:   s.ApplyBatches - o.ApplyBatches,
		EntriesApplied: s.EntriesApplied - o.EntriesApplied,

		Snapshots:           s.Snapshots - o.Snapshots,
		SnapshotCaptureTime: s.SnapshotCaptureTime - o.SnapshotCaptureTime,
		SnapshotTime:        s.SnapshotTime - o.SnapshotTime,

		ReadBarriers: s.ReadBarriers - o.ReadBarriers,
		ReadRounds:   s.ReadRounds - o.ReadRounds,

		ReadRoundTime: s.ReadRoundTime - o.ReadRoundTime,

		CorruptSnapshots: s.CorruptSnapshots - o.CorruptSnapshots,
	}
}

// nodeStats is the atomic form of Stats: written by the node's goroutines,
// read by Node.Stats from any goroutine without a lock.
type nodeStats struct {
	readys, walSaves, walSyncs, entriesSaved atomic.Uint64
	walSaveNanos                             atomic.Int64
	applyBatches, entriesApplied             atomic.Uint64
	snapshots                                atomic.Uint64
	snapshotCaptureNanos, snapshotNanos      atomic.Int64
	readBarriers, readRounds                 atomic.Uint64
	readRoundNanos                           atomic.Int64
	corruptSnapshots                         atomic.Uint64
}

// Stats returns the node's cumulative Ready-loop counters. It never blocks.
func (n *Node) Stats() Stats {
	s := &n.stats
	return Stats{
		Readys:         s.readys.Load(),
		WALSaves:       s.walSaves.Load(),
		WALSyncs:       s.walSyncs.Load(),
		EntriesSaved:   s.entriesSaved.Load(),
		WALSaveTime:    time.Duration(s.walSaveNanos.Load()),
		ApplyBatches:   s.applyBatches.Load(),
		EntriesApplied: s.entriesApplied.Load(),

		Snapshots:           s.snapshots.Load(),
		SnapshotCaptureTime: time.Duration(s.snapshotCaptureNanos.Load()),
		SnapshotTime:        time.Duration(s.snapshotNanos.Load()),

		ReadBarriers: s.readBarriers.Load(),
		ReadRounds:   s.readRounds.Load(),

		ReadRoundTime: time.Duration(s.readRoundNanos.Load()),

		CorruptSnapshots: s.corruptSnapshots.Load(),
	}
}
