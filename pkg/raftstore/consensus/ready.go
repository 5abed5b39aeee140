package consensus

import (
	"fmt"
	"time"

	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// run is the only goroutine that touches the raft.Node's Ready channel, the
// WAL, the snapshotter and the Application (raft README: "the application
// must handle Ready in a single goroutine", and Advance must follow each
// Ready).
func (n *Node) run() {
	defer n.wg.Done()
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			n.rn.Tick()
		case rd := <-n.rn.Ready():
			if err := n.handleReady(rd); err != nil {
				n.shutdown(err)
				return
			}
			n.rn.Advance()
		case <-n.stopc:
			return
		}
	}
}

// handleReady processes one Ready in the order the raft README requires.
func (n *Node) handleReady(rd raft.Ready) error {
	n.stats.readys.Add(1)
	if rd.SoftState != nil {
		n.leader.Store(rd.SoftState.Lead)
		n.isLeader = rd.RaftState == raft.StateLeader
	}
	if rd.HardState != nil {
		n.term.Store(rd.HardState.GetTerm())
		n.commit.Store(rd.HardState.GetCommit())
	}

	// 1. A leader may send its messages before it persists its own entries
	// (thesis §10.2.1): the leader counts itself in the quorum only once its
	// own append completes (it acks itself after this Ready's persistence),
	// so sending early just overlaps the followers' fsync with ours.
	if n.isLeader {
		n.tr.Send(rd.Messages)
	}

	// 2. Persist. The snapshot file is written before its WAL record, and
	// the WAL record before any entries or hard state that follow it, so a
	// WAL snapshot record never lacks its file and recovery after a restore
	// is always possible (etcd raftexample saveSnap).
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.persistSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	// wal.Save fsyncs when MustSync (term, vote or entries changed): entries
	// and hard state must be durable before a follower acknowledges them.
	saveStart := time.Now()
	if err := n.wal.Save(rd.HardState, rd.Entries); err != nil {
		return fmt.Errorf("consensus: WAL save: %w", err)
	}
	n.countSave(rd, time.Since(saveStart))

	// 3. Make the snapshot and the new entries visible to raft through
	// MemoryStorage, only after they are durable.
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.installSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	if err := n.storage.Append(rd.Entries); err != nil {
		return fmt.Errorf("consensus: storage append: %w", err)
	}

	// 4. A follower (or candidate) sends only now: its MsgAppResp and votes
	// promise that the entries and vote are on disk.
	if !n.isLeader {
		n.tr.Send(rd.Messages)
	}

	// ReadStates are answers to our ReadIndex requests; the read loop
	// matches them to waiting reads.
	for _, rs := range rd.ReadStates {
		select {
		case n.readC <- rs:
		case <-n.stopc:
			return nil
		}
	}

	// 5. Apply committed entries (they are durable on a quorum), then
	// maybe snapshot. Advance (by the caller) comes last.
	if len(rd.CommittedEntries) > 0 {
		n.stats.applyBatches.Add(1)
		n.stats.entriesApplied.Add(uint64(len(rd.CommittedEntries)))
	}
	if err := n.applyEntries(rd.CommittedEntries); err != nil {
		return err
	}
	return n.maybeSnapshot()
}

// countSave records one wal.Save in the node's Stats. wal.Save writes
// nothing for an empty hard state and no entries, and fsyncs exactly when
// raft says MustSync.
func (n *Node) countSave(rd raft.Ready, took time.Duration) {
	if raft.IsEmptyHardState(rd.HardState) && len(rd.Entries) == 0 {
		return
	}
	n.stats.walSaves.Add(1)
	if rd.MustSync {
		n.stats.walSyncs.Add(1)
	}
	n.stats.entriesSaved.Add(uint64(len(rd.Entries)))
	n.stats.walSaveNanos.Add(int64(took))
}

// persistSnapshot writes a snapshot received from the leader to disk.
func (n *Node) persistSnapshot(s *raftpb.Snapshot) error {
	if err := n.snaps.SaveSnap(s); err != nil {
		return fmt.Errorf("consensus: saving snapshot file: %w", err)
	}
	md := s.GetMetadata()
	if err := n.wal.SaveSnapshot(&walpb.Snapshot{
		Index:     proto.Uint64(md.GetIndex()),
		Term:      proto.Uint64(md.GetTerm()),
		ConfState: md.GetConfState(),
	}); err != nil {
		return fmt.Errorf("consensus: saving WAL snapshot record: %w", err)
	}
	return nil
}

// installSnapshot restores a leader's snapshot into storage and the
// Application, replacing everything applied so far.
func (n *Node) installSnapshot(s *raftpb.Snapshot) error {
	md := s.GetMetadata()
	if md.GetIndex() <= n.applied.Load() {
		// raft only sends snapshots ahead of our log; an older one would be
		// a raft bug, and restoring it would move the state machine back.
		return fmt.Errorf("consensus: snapshot at %d is not ahead of applied index %d", md.GetIndex(), n.applied.Load())
	}
	if err := n.storage.ApplySnapshot(s); err != nil {
		return fmt.Errorf("consensus: storage apply snapshot: %w", err)
	}
	if err := n.app.Restore(s.GetData()); err != nil {
		return fmt.Errorf("consensus: restoring snapshot %d: %w", md.GetIndex(), err)
	}
	n.confState = md.GetConfState()
	n.snapIndex = md.GetIndex()
	n.lg.Info("installed snapshot from leader", zap.Uint64("index", md.GetIndex()), zap.Uint64("term", md.GetTerm()))
	n.setApplied(md.GetIndex())
	n.releaseAndPurge(md.GetIndex())
	return nil
}

// applyEntries hands committed entries to the Application in order.
func (n *Node) applyEntries(ents []*raftpb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	applied := n.applied.Load()
	if first := ents[0].GetIndex(); first > applied+1 {
		return fmt.Errorf("consensus: committed entry %d leaves a gap after applied index %d", first, applied)
	}
	for _, e := range ents {
		if e.GetIndex() <= applied {
			continue // already covered by a snapshot
		}
		switch e.GetType() {
		case raftpb.EntryNormal:
			// Empty entries are the no-ops a new leader appends (thesis §6.4).
			if len(e.GetData()) > 0 {
				if err := n.app.Apply(e.GetIndex(), e.GetData()); err != nil {
					return fmt.Errorf("consensus: applying entry %d: %w", e.GetIndex(), err)
				}
			}
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
				return fmt.Errorf("consensus: undecodable conf change at %d: %w", e.GetIndex(), err)
			}
			n.applyConfChange(&cc)
		case raftpb.EntryConfChangeV2:
			var cc raftpb.ConfChangeV2
			if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
				return fmt.Errorf("consensus: undecodable conf change at %d: %w", e.GetIndex(), err)
			}
			n.applyConfChange(&cc)
		default:
			return fmt.Errorf("consensus: entry %d has unknown type %v", e.GetIndex(), e.GetType())
		}
		applied = e.GetIndex()
	}
	n.setApplied(applied)
	return nil
}

// applyConfChange applies a committed membership change to raft and the
// transport. The change's context carries the new member's address.
func (n *Node) applyConfChange(cc raftpb.ConfChangeI) {
	n.confState = n.rn.ApplyConfChange(cc)
	for _, ch := range cc.AsV2().GetChanges() {
		id := ch.GetNodeId()
		if id == n.cfg.ID {
			continue
		}
		switch ch.GetType() {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
			addr := n.cfg.Peers[id]
			if v1, ok := cc.AsV1(); ok && len(v1.GetContext()) > 0 {
				addr = string(v1.GetContext())
			}
			n.tr.AddPeer(id, addr)
		case raftpb.ConfChangeRemoveNode:
			n.tr.RemovePeer(id)
		}
	}
}

// maybeSnapshot takes a snapshot every SnapshotEntries applied entries,
// compacts the in-memory log keeping CatchUpEntries, and purges old files.
func (n *Node) maybeSnapshot() error {
	applied := n.applied.Load()
	if applied-n.snapIndex < n.cfg.SnapshotEntries {
		return nil
	}
	data, err := n.app.Snapshot()
	if err != nil {
		return fmt.Errorf("consensus: state machine snapshot at %d: %w", applied, err)
	}
	s, err := n.storage.CreateSnapshot(applied, n.confState, data)
	if err != nil {
		return fmt.Errorf("consensus: creating snapshot at %d: %w", applied, err)
	}
	// Same order as for a received snapshot: file, then WAL record.
	if err := n.persistSnapshot(s); err != nil {
		return err
	}
	n.snapIndex = applied
	if applied > n.cfg.CatchUpEntries {
		compact := applied - n.cfg.CatchUpEntries
		if first, _ := n.storage.FirstIndex(); compact > first {
			if err := n.storage.Compact(compact); err != nil {
				return fmt.Errorf("consensus: compacting log to %d: %w", compact, err)
			}
		}
	}
	n.lg.Debug("snapshot taken", zap.Uint64("index", applied), zap.Int("bytes", len(data)))
	n.releaseAndPurge(applied)
	return nil
}

// releaseAndPurge drops WAL segments and snapshot files that a restart from
// the snapshot at index no longer needs. Only after the WAL snapshot record
// for index is durable: until then a crash restarts from the previous
// snapshot, whose segments must still exist.
func (n *Node) releaseAndPurge(index uint64) {
	if err := n.wal.ReleaseLockTo(index); err != nil {
		n.lg.Warn("releasing WAL locks", zap.Error(err))
		return
	}
	purgeWAL(n.lg, walDir(n.cfg.DataDir))
	purgeSnaps(n.lg, snapDir(n.cfg.DataDir))
}
