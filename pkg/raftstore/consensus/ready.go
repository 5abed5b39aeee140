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
// WAL and the snapshotter (raft README: "the application must handle Ready
// in a single goroutine", and Advance must follow each Ready). It calls the
// Application only to restore a leader's snapshot, while the apply
// goroutine (applyLoop), which makes every other call, is idle.
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
		case res := <-n.snapDone:
			if err := n.finishSnapshot(res); err != nil {
				n.shutdown(err)
				return
			}
			n.pokeApply()
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
	}
	if rd.HardState != nil {
		n.term.Store(rd.HardState.GetTerm())
		n.commit.Store(rd.HardState.GetCommit())
	}
	// The log's new end, before the appends that carry it go out: a
	// follower's acknowledgement never names an entry past it.
	if k := len(rd.Entries); k > 0 {
		n.logEnd.Store(rd.Entries[k-1].GetIndex())
	} else if !raft.IsEmptySnap(rd.Snapshot) {
		n.logEnd.Store(rd.Snapshot.GetMetadata().GetIndex())
	}

	// 1. Send every message that promises nothing about this node's disk
	// now, before persisting; hold back those that do (splitMessages).
	// A leader's appends go out before its own fsync (thesis §10.2.1): it
	// counts itself in the quorum only once its own append completes (it
	// acks itself after this Ready's persistence), so sending early just
	// overlaps the followers' fsync with ours. A follower's heartbeat
	// responses and ReadIndex requests going out now is what keeps a read
	// round from waiting for every fsync on its way.
	now, later := n.splitMessages(rd.Messages)
	n.tr.Send(now)
	// ReadStates are answers to our ReadIndex requests, each a commit index
	// (durable on a quorum already); the read loop matches them to waiting
	// reads, which then wait until that index is applied.
	for _, rs := range rd.ReadStates {
		select {
		case n.readC <- rs:
		case <-n.stopc:
			// An error, so that the caller does not Advance: raft would
			// count this Ready's entries as durable here, and they are not.
			return ErrStopped
		}
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

	// 4. Acknowledgements of entries and votes go out only now: they
	// promise that the entries and the vote are on disk.
	n.tr.Send(later)
	clear(now) // drop the references until the next Ready
	clear(later)

	// 5. Hand committed entries (durable on a quorum) to the apply
	// goroutine. Advance (by the caller) comes last.
	return n.queueApply(rd.CommittedEntries)
}

// splitMessages divides a Ready's messages into those that may be sent
// before the Ready is persisted and those that may only be sent after:
// acknowledgements of appended entries (MsgAppResp) and votes (MsgVoteResp,
// MsgPreVoteResp) promise that this node's log or vote is on disk (thesis
// §3.8). These three are exactly what raft itself holds back until the
// unstable state is durable in its asynchronous-storage mode (raft.go,
// msgsAfterAppend). Everything else (appends and heartbeats from a leader,
// heartbeat responses, forwarded proposals, ReadIndex requests and answers,
// vote requests) asserts nothing about this node's disk. The two slices
// reuse buffers owned by the Ready goroutine, valid until the next call.
func (n *Node) splitMessages(msgs []*raftpb.Message) (now, later []*raftpb.Message) {
	now, later = n.sendNow[:0], n.sendLater[:0]
	for _, m := range msgs {
		switch m.GetType() {
		case raftpb.MsgAppResp, raftpb.MsgVoteResp, raftpb.MsgPreVoteResp:
			later = append(later, m)
		default:
			now = append(now, m)
		}
	}
	n.sendNow, n.sendLater = now, later
	return now, later
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
	if err := saveSnapFile(snapDir(n.cfg.DataDir), s); err != nil {
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
	// The Application is restored only once every entry queued before the
	// snapshot is applied (they are all behind it).
	if err := n.drainApply(); err != nil {
		return err
	}
	md := s.GetMetadata()
	if md.GetIndex() <= n.applied.Load() {
		// raft only sends snapshots ahead of our log; an older one would be
		// a raft bug, and restoring it would move the state machine back.
		return fmt.Errorf("consensus: snapshot at %d is not ahead of applied index %d", md.GetIndex(), n.applied.Load())
	}
	rec, data, err := splitSnapshotData(s.GetData())
	if err != nil {
		return fmt.Errorf("consensus: snapshot %d from the leader: %w", md.GetIndex(), err)
	}
	if err := n.storage.ApplySnapshot(s); err != nil {
		return fmt.Errorf("consensus: storage apply snapshot: %w", err)
	}
	if err := n.app.Restore(data); err != nil {
		return fmt.Errorf("consensus: restoring snapshot %d: %w", md.GetIndex(), err)
	}
	n.setMembership(md.GetConfState(), rec)
	n.snapIndex.Store(md.GetIndex())
	n.lg.Info("installed snapshot from leader", zap.Uint64("index", md.GetIndex()), zap.Uint64("term", md.GetTerm()))
	n.setApplied(md.GetIndex())
	n.releaseAndPurge(md.GetIndex())
	return nil
}

// applyEntries hands committed entries to the Application in order. It runs
// on the apply goroutine (applyLoop).
func (n *Node) applyEntries(ents []*raftpb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	if n.halt.Load() != nil {
		return nil // halted: nothing after the entry that failed is applied
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
					n.setApplied(applied)
					n.haltAt(e.GetIndex(), err)
					return nil
				}
			}
		case raftpb.EntryConfChange:
			// raft itself decodes conf changes (and panics on one that does
			// not decode) before they get here; the peer check keeps
			// undecodable ones out of the log.
			var cc raftpb.ConfChange
			if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
				n.setApplied(applied)
				n.haltAt(e.GetIndex(), fmt.Errorf("undecodable conf change: %w", err))
				return nil
			}
			n.applyConfChange(&cc)
		case raftpb.EntryConfChangeV2:
			var cc raftpb.ConfChangeV2
			if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
				n.setApplied(applied)
				n.haltAt(e.GetIndex(), fmt.Errorf("undecodable conf change: %w", err))
				return nil
			}
			n.applyConfChange(&cc)
		default:
			n.setApplied(applied)
			n.haltAt(e.GetIndex(), fmt.Errorf("entry of unknown type %v", e.GetType()))
			return nil
		}
		applied = e.GetIndex()
	}
	n.setApplied(applied)
	return nil
}

// HaltRecovery is the recovery procedure a halted node reports.
const HaltRecovery = "replace this member from a healthy peer: dssctl member remove <ID>, then dssctl member add " +
	"with a new ID and start that node on an empty data directory with --raft_join; " +
	"or, if the entry was written by a newer version of the DSS, run that version on this node"

// haltAt stops applying at index, once: the node stays up, a member of the
// cluster, and reports itself unhealthy (Status.HaltedIndex), rather than
// exit and fail again at the same entry on every restart (a crash loop
// that no restart ends). Nothing at or after index is applied; a restart
// replays from the newest snapshot and halts at the same entry again, so no
// entry is ever skipped. It runs on the apply goroutine.
func (n *Node) haltAt(index uint64, cause error) {
	h := &haltInfo{index: index, reason: cause.Error()}
	if !n.halt.CompareAndSwap(nil, h) {
		return
	}
	close(n.haltc)
	n.lg.Error("HALTED: a committed log entry cannot be applied; this node applies nothing more and "+
		"answers 503 until it is replaced or upgraded", zap.Uint64("index", index), zap.Error(cause),
		zap.String("recovery", HaltRecovery))
}

// maybeSnapshot starts a snapshot every SnapshotEntries applied entries, at
// the node's own trigger points (snapshotTrigger: staggered between members,
// so that they do not all snapshot at once).
//
// It runs on the apply goroutine after each batch, so only the capture
// (Application.Snapshot: a point-in-time copy) holds up applies, and nothing
// holds up the Ready loop. Serialising the capture and writing and fsyncing
// the snapshot file, which take ~100+ ms at 100,000 OIRs, run on a goroutine
// of the node, so applies, and with them every write of the cluster, go on
// meanwhile. This is etcd's design: its server triggers snapshots from the
// apply loop and creates, saves and compacts them in the background. The
// Ready goroutine takes the result back in finishSnapshot.
func (n *Node) maybeSnapshot() error {
	applied := n.applied.Load()
	if n.halt.Load() != nil || n.snapInFlight.Load() || !n.snapTrigger.due(n.snapIndex.Load(), applied) {
		return nil
	}
	start := time.Now()
	write, err := n.app.Snapshot()
	if err != nil {
		return fmt.Errorf("consensus: state machine snapshot at %d: %w", applied, err)
	}
	// Entries up to applied are committed and in storage (appended before
	// they were applied), so their terms are known and never change.
	term, err := n.storage.Term(applied)
	if err != nil {
		return fmt.Errorf("consensus: term of snapshot index %d: %w", applied, err)
	}
	n.stats.snapshotCaptureNanos.Add(int64(time.Since(start)))
	n.memberMu.Lock()
	job := snapResult{
		index:     applied,
		term:      term,
		confState: proto.Clone(n.confState).(*raftpb.ConfState),
		members:   n.members.clone(),
		start:     start,
		captured:  time.Since(start),
	}
	n.memberMu.Unlock()
	n.snapInFlight.Store(true)
	n.wg.Add(1) // applyLoop's own count is held, so this never races wg.Wait
	go n.writeSnapshot(job, write)
	return nil
}

// snapResult is a background snapshot: what was captured where, and, once
// written, its file or the error.
type snapResult struct {
	index, term uint64
	confState   *raftpb.ConfState
	members     memberRecord
	start       time.Time     // capture began
	captured    time.Duration // time the Ready goroutine spent capturing
	serialised  time.Duration
	saved       time.Duration
	snap        *raftpb.Snapshot
	err         error
}

// writeSnapshot serialises a capture and saves it as a snapshot file, then
// hands the result to the Ready goroutine. The file is fsynced here rather
// than on the Ready goroutine for the same reason the serialisation is: tens
// of MB stall appends as long. It is not yet usable for recovery: openDisk
// loads only snapshots whose WAL record exists, and finishSnapshot writes
// that record after this returns, so a crash in between leaves an ignored
// file (etcd raftexample's order: file first, then WAL record).
func (n *Node) writeSnapshot(job snapResult, write SnapshotWriter) {
	defer n.wg.Done()
	began := time.Now()
	data, err := write(job.members.appendTo(nil))
	job.serialised = time.Since(began)
	switch {
	case err != nil:
		job.err = fmt.Errorf("consensus: state machine snapshot at %d: %w", job.index, err)
	case n.stopping():
		return // the node is going away; the next start snapshots again
	default:
		s := &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{
			Index: proto.Uint64(job.index), Term: proto.Uint64(job.term), ConfState: job.confState}}
		began = time.Now()
		if err := saveSnapFile(snapDir(n.cfg.DataDir), s); err != nil {
			job.err = fmt.Errorf("consensus: saving snapshot file %d: %w", job.index, err)
		}
		job.saved = time.Since(began)
		job.snap = s
	}
	select {
	case n.snapDone <- job:
	case <-n.stopc:
	}
}

// stopping reports whether the node has been asked to stop.
func (n *Node) stopping() bool {
	select {
	case <-n.stopc:
		return true
	default:
		return false
	}
}

// finishSnapshot makes a background snapshot the node's newest, on the Ready
// goroutine: WAL record, raft's storage (so lagging followers get it),
// compaction and purge. A snapshot from the leader installed meanwhile at a
// later index supersedes it: it is dropped (its file, unreferenced by the
// WAL, is purged with the old ones).
func (n *Node) finishSnapshot(res snapResult) error {
	// Cleared last, once snapIndex has moved: an apply goroutine that saw
	// no snapshot in flight but the old index would start another at once.
	defer n.snapInFlight.Store(false)
	if res.err != nil {
		return res.err
	}
	if res.index <= n.snapIndex.Load() {
		n.lg.Debug("background snapshot superseded", zap.Uint64("index", res.index), zap.Uint64("snapshot", n.snapIndex.Load()))
		return nil
	}
	if err := n.wal.SaveSnapshot(&walpb.Snapshot{
		Index:     proto.Uint64(res.index),
		Term:      proto.Uint64(res.term),
		ConfState: res.confState,
	}); err != nil {
		return fmt.Errorf("consensus: saving WAL snapshot record: %w", err)
	}
	if err := n.storage.CreateSnapshot(res.index, res.confState, res.snap.GetData()); err != nil {
		return fmt.Errorf("consensus: creating snapshot at %d: %w", res.index, err)
	}
	n.snapIndex.Store(res.index)
	if res.index > n.cfg.CatchUpEntries {
		compact := res.index - n.cfg.CatchUpEntries
		if first, _ := n.storage.FirstIndex(); compact > first {
			if err := n.storage.Compact(compact); err != nil {
				return fmt.Errorf("consensus: compacting log to %d: %w", compact, err)
			}
		}
	}
	n.releaseAndPurge(res.index)
	ev := SnapshotEvent{Index: res.index, Bytes: len(res.snap.GetData()), Start: res.start,
		Capture: res.captured, Serialise: res.serialised, Save: res.saved, Done: time.Now()}
	n.stats.snapshots.Add(1)
	n.stats.snapshotNanos.Add(int64(ev.Done.Sub(ev.Start)))
	n.lg.Debug("snapshot taken", zap.Uint64("index", ev.Index), zap.Int("bytes", ev.Bytes),
		zap.Duration("capture", ev.Capture), zap.Duration("total", ev.Done.Sub(ev.Start)))
	if n.cfg.SnapshotObserver != nil {
		n.cfg.SnapshotObserver(ev)
	}
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
	n.requestPurge()
}

// requestPurge asks purgeLoop to purge; it never blocks. Requests made while
// one is pending coalesce into it: a purge looks at the directories as they
// are when it runs, so one run covers every request made before it began.
func (n *Node) requestPurge() {
	select {
	case n.purgeReq <- struct{}{}:
	default:
	}
}

// purgeLoop deletes released WAL segments and old snapshot files off the
// Ready goroutine, one purge at a time (listing, locking and unlinking
// files can take milliseconds that would otherwise hold up every write).
// Its safety does not depend on when it runs: purgeWAL deletes only
// segments it can lock, which the open WAL holds until ReleaseLockTo (on
// the Ready goroutine, after the WAL snapshot record is durable) drops
// them, and purgeSnaps always keeps the newest snapshot files. It must end
// before the WAL is closed (closing releases every lock), which the node's
// WaitGroup ensures: shutdown closes the WAL only after wg.Wait.
func (n *Node) purgeLoop() {
	defer n.wg.Done()
	purge := func() {
		purgeWAL(n.lg, walDir(n.cfg.DataDir))
		purgeSnaps(n.lg, snapDir(n.cfg.DataDir))
	}
	for {
		select {
		case <-n.stopc:
			// A request still pending gets its one (bounded) purge, so a
			// stop right after a snapshot leaves no released segments
			// behind; the WAL is still open and holds its locks.
			select {
			case <-n.purgeReq:
				purge()
			default:
			}
			return
		case <-n.purgeReq:
			purge()
		}
	}
}
