package consensus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/raftdss/dss/pkg/transport"
)

// ErrStopped is returned by a Node's methods once it has stopped, whether by
// Stop or by a fatal error (see Node.Err).
var ErrStopped = errors.New("consensus: node stopped")

// ErrHalted is returned by a Node's Propose, ReadBarrier and WaitApplied
// once it has halted: a committed entry could not be applied (Status.Halted).
var ErrHalted = errors.New("consensus: node halted at an entry it cannot apply")

// Application is the replicated state machine the node drives.
//
// The node calls the methods one at a time, each after the previous one
// returned, never concurrently: Apply and Snapshot on its apply goroutine,
// Restore on its Ready goroutine while no Apply runs (and once from New,
// before either starts). The one exception is the SnapshotWriter that
// Snapshot returns: it runs on a goroutine of its own, concurrently with
// later calls. Apply is called for every committed normal entry with
// non-empty data, in log order, each index once per process lifetime; after a
// restart the Application is first restored from the newest snapshot and
// then receives the entries after it again. An error from Snapshot or Restore
// is fatal: the node stops and Err reports it. An error from Apply halts the
// node at that entry (Status.Halted): it applies nothing more, so an entry
// is never half-applied or skipped, but stays up, a member of the cluster
// (it still persists and acknowledges entries, and votes), and reports
// itself unhealthy, rather than exit and fail again at the same entry on
// every restart. A restart halts again at the same index.
type Application interface {
	// Apply applies the committed entry at index.
	Apply(index uint64, data []byte) error
	// Snapshot captures the state as of the last applied index and returns
	// the function that serialises that capture. The capture is what blocks
	// applies, so it should be cheap (a point-in-time copy of references);
	// the node runs the returned function on another goroutine while it
	// goes on applying (etcd takes snapshots in the background the same
	// way), so the function must read only the capture, never the live
	// state.
	Snapshot() (SnapshotWriter, error)
	// Restore replaces the state with a snapshot's (possibly empty, for a
	// snapshot taken before anything was applied).
	Restore(data []byte) error
}

// SnapshotWriter serialises a state captured by Application.Snapshot,
// appending it to dst (the node's own part of the snapshot), and returns the
// extended slice. Equal captured states must give equal bytes on every node.
type SnapshotWriter func(dst []byte) ([]byte, error)

// NewTransport builds the node's transport around its message handler.
type NewTransport func(h transport.Handler) (transport.Transport, error)

// Status is a node's view of the cluster.
type Status struct {
	ID       uint64
	Leader   uint64 // 0 when no leader is known
	IsLeader bool
	Term     uint64
	Commit   uint64 // highest index this node knows is committed
	Applied  uint64 // highest index applied to the Application
	// Removed: this node was removed from the cluster (RemoveMember); it
	// takes no further part and must be stopped.
	Removed bool
	// HaltedIndex, when not 0, is the committed entry this node could not
	// apply; HaltedReason says why. The node applies nothing from there on
	// (Applied stays below it) and refuses proposals and reads (ErrHalted).
	HaltedIndex  uint64
	HaltedReason string
}

// Halted reports whether the node stopped applying at an entry.
func (s Status) Halted() bool { return s.HaltedIndex != 0 }

// haltInfo is why the node halted.
type haltInfo struct {
	index  uint64
	reason string
}

// Node is one member of a raft group. Its methods are safe for concurrent
// use. It implements transport.Handler.
type Node struct {
	cfg     Config
	lg      *zap.Logger
	app     Application
	rn      raft.Node
	storage *snapStorage
	wal     *wal.WAL
	snaps   *snap.Snapshotter
	tr      transport.Transport

	// sendNow and sendLater are splitMessages' buffers, owned by the Ready
	// goroutine.
	sendNow, sendLater []*raftpb.Message
	// applyc carries committed entries to the apply goroutine (applyLoop).
	applyc chan applyJob
	// confState and members are the membership as of the last applied
	// entry: written by the apply goroutine (membership changes) and by the
	// Ready goroutine while the apply goroutine is idle (installing a
	// leader's snapshot), under memberMu, which readers (Members) take.
	memberMu  sync.Mutex
	confState *raftpb.ConfState
	members   memberRecord
	// changes are the membership changes this node proposed and awaits.
	changes confChanges
	// removed is set once this node applies its own removal.
	removed atomic.Bool
	// snapIndex is the index of the newest snapshot (written by the Ready
	// goroutine, read by the apply goroutine to decide when to snapshot).
	snapIndex atomic.Uint64
	// snapTrigger says when to snapshot (immutable).
	snapTrigger snapshotTrigger
	// snapInFlight is set (by the apply goroutine) while a snapshot is being
	// serialised and saved in the background; at most one is, and its
	// result comes back on snapDone (buffered, so the writer never blocks
	// on a busy Ready loop), where the Ready goroutine clears it.
	snapInFlight atomic.Bool
	snapDone     chan snapResult
	// purgeReq (buffered, 1) asks purgeLoop to delete released WAL
	// segments and old snapshot files; pending requests coalesce.
	purgeReq chan struct{}

	// peerSet is the membership peer messages are checked against
	// (checkPeerMessage), published under memberMu whenever it changes;
	// nil until the first configuration. checker is app's EntryChecker,
	// if it implements one; guard counts and logs refused messages.
	peerSet atomic.Pointer[peerSet]
	checker EntryChecker
	guard   peerGuard

	// halt is set, once, by the apply goroutine when an entry cannot be
	// applied; haltc is closed then, waking waiters.
	halt  atomic.Pointer[haltInfo]
	haltc chan struct{}

	leader  atomic.Uint64
	term    atomic.Uint64
	commit  atomic.Uint64
	applied atomic.Uint64
	// logEnd is the index of the last entry of this node's raft log as of
	// the Ready being handled (set before that Ready's messages are sent):
	// no correct peer can acknowledge an entry beyond it (peerView.logEnd).
	logEnd atomic.Uint64
	stats  nodeStats

	waitMu   sync.Mutex
	waiters  []appliedWaiter
	readReqs chan chan readResult
	readC    chan raft.ReadState

	stopOnce sync.Once
	ctx      context.Context // cancelled when stopping; bounds internal raft calls
	cancel   context.CancelFunc
	stopc    chan struct{} // closed to ask the goroutines to exit
	done     chan struct{} // closed when everything is released
	errMu    sync.Mutex
	err      error // the fatal error, if any
	wg       sync.WaitGroup
}

// New opens (or creates) the node's storage in cfg.DataDir, restores app from
// the newest valid snapshot, and starts the node. It refuses to start on a
// corrupt WAL (ErrCorruptWAL).
func New(cfg Config, app Application, newTransport NewTransport) (*Node, error) {
	begin := time.Now()
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	lg := cfg.Logger.With(zap.Uint64("raft_id", cfg.ID))
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("consensus: data dir: %w", err)
	}
	if err := fileutil.TouchDirAll(lg, snapDir(cfg.DataDir)); err != nil {
		return nil, fmt.Errorf("consensus: snapshot dir: %w", err)
	}
	n := &Node{
		cfg:         cfg,
		lg:          lg,
		app:         app,
		storage:     newSnapStorage(),
		snaps:       snap.New(lg, snapDir(cfg.DataDir)),
		confState:   &raftpb.ConfState{},
		members:     memberRecord{addrs: map[uint64]string{}},
		snapTrigger: newSnapshotTrigger(cfg.ID, cfg.SnapshotEntries),
		readReqs:    make(chan chan readResult),
		readC:       make(chan raft.ReadState, 64),
		snapDone:    make(chan snapResult, 1),
		applyc:      make(chan applyJob, applyQueue),
		purgeReq:    make(chan struct{}, 1),
		haltc:       make(chan struct{}),
		stopc:       make(chan struct{}),
		done:        make(chan struct{}),
	}
	n.checker, _ = app.(EntryChecker)
	ds, err := openDisk(lg, cfg.DataDir, cfg.ID, cfg.Join, n.snaps)
	if err != nil {
		return nil, err
	}
	n.wal = ds.wal
	n.stats.corruptSnapshots.Store(uint64(ds.corruptSnaps))
	loaded := time.Now()
	if err := n.recover(ds); err != nil {
		_ = n.wal.Close()
		return nil, err
	}
	restored := time.Now()

	rc := &raft.Config{
		ID:                        cfg.ID,
		ElectionTick:              cfg.ElectionTicks,
		HeartbeatTick:             cfg.HeartbeatTicks,
		Storage:                   n.storage,
		Applied:                   n.applied.Load(),
		MaxSizePerMsg:             cfg.MaxSizePerMsg,
		MaxInflightMsgs:           cfg.MaxInflightMsgs,
		MaxUncommittedEntriesSize: cfg.MaxUncommittedEntriesSize,
		// CheckQuorum: a leader cut off from a quorum steps down after an
		// election timeout instead of accepting proposals that can never
		// commit. PreVote: a rejoining partitioned node does not bump the
		// term and depose a healthy leader (thesis §9.6).
		CheckQuorum: true,
		PreVote:     true,
		// ReadOnlySafe is ReadIndex confirmed by a heartbeat quorum (thesis
		// §6.4); lease reads would depend on bounded clock drift.
		ReadOnlyOption:    raft.ReadOnlySafe,
		StepDownOnRemoval: true,
		Logger:            raftLogger{lg.Named("raft").Sugar()},
	}

	// The raft node exists before the transport: the transport calls
	// Process, ReportUnreachable and ReportSnapshot (all n.rn) from its own
	// goroutines as soon as it serves or dials, possibly before New
	// returns. No Ready is consumed until run starts, so raft cannot act on
	// anything before the transport is set.
	if ds.fresh && !ds.join {
		peers := bootstrapPeers(cfg)
		n.members.cluster, _ = parseClusterContext(peers[0].Context) // known before the transport connects
		n.rn = raft.StartNode(rc, peers)
	} else {
		// A restart, or a new member of a running cluster: it starts with
		// no configuration (so it never campaigns) until the leader sends
		// it the log or a snapshot that names it a member.
		n.rn = raft.RestartNode(rc)
	}

	tr, err := newTransport(n)
	if err != nil {
		n.rn.Stop()
		_ = n.wal.Close()
		return nil, fmt.Errorf("consensus: starting transport: %w", err)
	}
	n.tr = tr
	for id, addr := range cfg.Peers {
		if id != cfg.ID {
			tr.AddPeer(id, addr)
		}
	}
	n.setMembership(n.confState, n.members) // members added since, removed ones
	lg.Info("raft node started", zap.Bool("new", ds.fresh), zap.Bool("join", ds.fresh && ds.join), zap.Uint64("applied", n.applied.Load()),
		zap.Uint64("snapshot", n.snapIndex.Load()), zap.Int("wal_entries", len(ds.entries)),
		zap.Duration("load", loaded.Sub(begin)), zap.Duration("restore", restored.Sub(loaded)))

	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.wg.Add(4)
	go n.run()
	go n.applyLoop()
	go n.readLoop()
	go n.purgeLoop()
	return n, nil
}

// recover loads the snapshot and WAL contents into MemoryStorage and the
// Application.
func (n *Node) recover(ds *diskState) error {
	if ds.snapshot != nil {
		if err := n.storage.ApplySnapshot(ds.snapshot); err != nil {
			return fmt.Errorf("consensus: applying snapshot to storage: %w", err)
		}
		md := ds.snapshot.GetMetadata()
		rec, data, err := splitSnapshotData(ds.snapshot.GetData())
		if err != nil {
			return fmt.Errorf("consensus: snapshot %d: %w", md.GetIndex(), err)
		}
		if err := n.app.Restore(data); err != nil {
			return fmt.Errorf("consensus: restoring state machine from snapshot %d: %w", md.GetIndex(), err)
		}
		n.setMembership(md.GetConfState(), rec)
		n.snapIndex.Store(md.GetIndex())
		n.applied.Store(md.GetIndex())
		n.commit.Store(md.GetIndex())
	}
	if err := n.storage.SetHardState(ds.hard); err != nil {
		return fmt.Errorf("consensus: setting hard state: %w", err)
	}
	if err := n.storage.Append(ds.entries); err != nil {
		return fmt.Errorf("consensus: appending WAL entries: %w", err)
	}
	// The cluster ID must be known before the transport connects (streams
	// are checked when they open); the bootstrap entries that carry it are
	// applied again only later.
	for _, e := range ds.entries {
		if n.members.cluster == 0 && e.GetType() == raftpb.EntryConfChange {
			var cc raftpb.ConfChange
			if err := proto.Unmarshal(e.GetData(), &cc); err == nil {
				n.members.cluster, _ = parseClusterContext(cc.GetContext())
			}
		}
	}
	n.term.Store(ds.hard.GetTerm())
	n.commit.Store(max(n.commit.Load(), ds.hard.GetCommit()))
	last, err := n.storage.LastIndex()
	if err != nil {
		return fmt.Errorf("consensus: last index: %w", err)
	}
	n.logEnd.Store(last)
	return nil
}

// Propose proposes data for the log. A nil error means the local raft node
// accepted the proposal (it may still be lost in a leader change); it does
// not mean it committed.
func (n *Node) Propose(ctx context.Context, data []byte) error {
	select {
	case <-n.done:
		return ErrStopped
	default:
	}
	if n.halt.Load() != nil {
		return ErrHalted
	}
	err := n.rn.Propose(ctx, data)
	if errors.Is(err, raft.ErrStopped) {
		return ErrStopped
	}
	return err
}

// Process implements transport.Handler. It steps the message on the
// caller's (the transport's) goroutine rather than funnelling it through
// the Ready loop: raft's node goroutine serialises it anyway, and the Ready
// loop stays free to fsync (raft-notes: 6.3× throughput at c=64).
//
// A proposal forwarded by a follower is dropped while this node knows no
// leader, and waits at most an election timeout otherwise: raft's node
// accepts proposals only while it knows a leader, and a transport delivers
// a peer's messages in order, so a proposal blocked in Step would hold up
// the votes and heartbeats behind it, possibly the very ones that would
// elect a leader (two members, the leader restarted while the other
// forwarded it a proposal: neither could ever win an election). A dropped
// proposal is proposed again by its proposer (the Raft store re-proposes
// after a leader change or an election timeout; so does changeMembers).
//
// Every message is first checked (checkPeerMessage): one that a peer may
// not send, or that carries a term, an entry or a snapshot this node must
// not take, is dropped before raft sees it, counted (PeerRejections) and
// logged at most once per peer every 10 s. The error says it was refused;
// transports log it and go on.
func (n *Node) Process(ctx context.Context, m *raftpb.Message) error {
	if rj := n.checkPeer(m); rj != nil {
		n.guard.refused(n.lg, m, rj, time.Now())
		return rj
	}
	if m.GetType() == raftpb.MessageType_MsgProp {
		if n.leader.Load() == 0 {
			return nil
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.electionTimeout())
		defer cancel()
	}
	err := n.rn.Step(ctx, m)
	if errors.Is(err, raft.ErrStopped) {
		return ErrStopped
	}
	return err
}

// ReportUnreachable implements transport.Handler.
func (n *Node) ReportUnreachable(id uint64) { n.rn.ReportUnreachable(id) }

// ReportSnapshot implements transport.Handler.
func (n *Node) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	n.rn.ReportSnapshot(id, status)
}

// Status returns the node's current view. It never blocks.
func (n *Node) Status() Status {
	lead := n.leader.Load()
	st := Status{
		ID:       n.cfg.ID,
		Leader:   lead,
		IsLeader: lead == n.cfg.ID,
		Term:     n.term.Load(),
		Commit:   n.commit.Load(),
		Applied:  n.applied.Load(),
		Removed:  n.removed.Load(),
	}
	if h := n.halt.Load(); h != nil {
		st.HaltedIndex, st.HaltedReason = h.index, h.reason
	}
	return st
}

// Config returns the node's configuration with defaults filled in.
func (n *Node) Config() Config { return n.cfg }

// Halted is closed once the node has halted at an entry it cannot apply
// (Status.HaltedIndex).
func (n *Node) Halted() <-chan struct{} { return n.haltc }

// Done is closed once the node has stopped and released its storage.
func (n *Node) Done() <-chan struct{} { return n.done }

// Err returns the fatal error that stopped the node, or nil.
func (n *Node) Err() error {
	n.errMu.Lock()
	defer n.errMu.Unlock()
	return n.err
}

// Stop stops the node, its transport and goroutines and closes the WAL. It
// is idempotent and returns once everything is released; the wait is bounded
// because every goroutine the node owns selects on stopc.
func (n *Node) Stop() {
	n.shutdown(nil)
	<-n.done
}

// shutdown records err (if it is the first) and starts the shutdown.
func (n *Node) shutdown(err error) {
	n.stopOnce.Do(func() {
		if err != nil {
			n.errMu.Lock()
			n.err = err
			n.errMu.Unlock()
			n.lg.Error("raft node stopping on fatal error", zap.Error(err))
		}
		close(n.stopc)
		n.cancel()
		go func() {
			n.wg.Wait()
			// Transport first: it calls into rn; rn.Step on a stopped node
			// returns ErrStopped, so the order is not critical, but stopping
			// inbound traffic first keeps the logs quiet.
			n.tr.Stop()
			n.rn.Stop()
			if err := n.wal.Close(); err != nil {
				n.lg.Warn("closing WAL", zap.Error(err))
			}
			close(n.done)
		}()
	})
}

// WaitApplied blocks until the applied index is at least index.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	if n.applied.Load() >= index {
		return nil
	}
	if n.halt.Load() != nil {
		return ErrHalted
	}
	ch := make(chan struct{})
	n.waitMu.Lock()
	if n.applied.Load() >= index {
		n.waitMu.Unlock()
		return nil
	}
	n.waiters = append(n.waiters, appliedWaiter{index: index, ch: ch})
	n.waitMu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.haltc:
		if n.applied.Load() >= index {
			return nil
		}
		return ErrHalted
	case <-n.stopc:
		return ErrStopped
	}
}

type appliedWaiter struct {
	index uint64
	ch    chan struct{}
}

// setApplied publishes the applied index and wakes waiters it satisfies.
func (n *Node) setApplied(index uint64) {
	n.applied.Store(index)
	n.waitMu.Lock()
	kept := n.waiters[:0]
	for _, w := range n.waiters {
		if w.index <= index {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	clear(n.waiters[len(kept):])
	n.waiters = kept
	n.waitMu.Unlock()
}

// electionTimeout is the configured election timeout.
func (n *Node) electionTimeout() time.Duration {
	return time.Duration(n.cfg.ElectionTicks) * n.cfg.TickInterval
}

// bootstrapPeers lists the initial members in ID order, with the cluster's
// ID (clusterContext) and without addresses. Every member appends one
// ConfChange entry per peer at term 1 on its own, so the entries must be
// byte-identical on every node: a log whose
// entries share index and term but differ in content would break raft's log
// matching property. Map order would differ between nodes, and so would
// addresses, which are only each node's own view of how to dial the others.
func bootstrapPeers(cfg Config) []raft.Peer {
	ids := make([]uint64, 0, len(cfg.Peers))
	for id := range cfg.Peers {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		ids = append(ids, cfg.ID)
	}
	slices.Sort(ids)
	ctx := clusterContext(clusterIDOf(ids))
	peers := make([]raft.Peer, len(ids))
	for i, id := range ids {
		peers[i] = raft.Peer{ID: id, Context: ctx}
	}
	return peers
}
