package raftstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/raftstore/consensus"
)

var (
	// ErrIndeterminate means the outcome of a Transact is unknown: the
	// proposal may or may not have been (or yet be) applied. It is not a
	// failure; callers report "unknown outcome" (HTTP 503), never "failed".
	ErrIndeterminate = errors.New("raftstore: outcome indeterminate")
	// ErrUndecodable is returned (wrapped) by a StateMachine's Apply for an
	// entry it cannot decode. It is fatal: the node stops rather than skip
	// or half-apply a committed entry that every replica must apply alike.
	ErrUndecodable = errors.New("raftstore: undecodable entry")
	// ErrHalted is returned (wrapped, with the index and the reason) by
	// Transact and Read on a node that halted at a committed entry it
	// cannot apply (consensus.Status.HaltedIndex): it answers nothing more
	// until it is replaced or upgraded (consensus.HaltRecovery).
	ErrHalted = errors.New("raftstore: node halted at an entry it cannot apply")
	// ErrStopped is returned once the store has stopped.
	ErrStopped = errors.New("raftstore: stopped")
	// ErrNoQuorum is returned (wrapping the context error) by Read when no
	// quorum confirmed this node's view before ctx ended.
	ErrNoQuorum = errors.New("raftstore: read barrier not confirmed by a quorum")
)

// StateMachine is the replicated, deterministic state the store drives.
//
// Concurrency contract:
//   - Apply, Snapshot (or SnapshotCapturer.CaptureSnapshot) and Restore are
//     called one at a time, each after the previous one returned, Apply in
//     log order: Apply and Snapshot on the consensus node's apply
//     goroutine, Restore on its Ready goroutine while no Apply runs. The
//     store holds no lock of the StateMachine's while calling them.
//   - Reads (the fn given to Store.Read) run on request goroutines,
//     concurrently with each other and with Apply. The StateMachine guards
//     its state with its own lock: Apply, Restore (and Snapshot, unless it
//     copies under a read lock) take the write side, reads take the read
//     side. The store never locks the StateMachine itself.
//
// Apply must be deterministic (a function of the state and data) and
// all-or-nothing. Its error is the operation's outcome (returned to the
// proposer like a result) and must leave the state unchanged, except an error
// wrapping ErrUndecodable, which halts the node at that entry
// (consensus.Status.HaltedIndex). Snapshot serialises the
// state as of the last Apply; Restore replaces the whole state with one.
type StateMachine interface {
	Apply(index uint64, data []byte) (result any, err error)
	Snapshot() ([]byte, error)
	Restore(snapshot []byte) error
}

// SnapshotCapturer is optionally implemented by a StateMachine whose
// Snapshot is too slow to run between two applies (it would stall every
// write for as long). The store then calls CaptureSnapshot instead, on the
// same goroutine and at the same points as Snapshot; it takes a cheap
// point-in-time copy of the state and returns the function that serialises
// it. That function runs on another goroutine, concurrently with later
// Applies, Restores and reads, must read only the copy, and must return
// exactly the bytes Snapshot would have returned at the capture.
type SnapshotCapturer interface {
	CaptureSnapshot() (func() ([]byte, error), error)
}

// SnapshotAppender is optionally implemented by a SnapshotCapturer to save
// a copy of its (large) snapshot: CaptureSnapshotAppend is called instead of
// CaptureSnapshot, and the function it returns appends to dst exactly the
// bytes CaptureSnapshot's would have returned, so that the store's header
// and the state machine's bytes are built in one buffer.
type SnapshotAppender interface {
	CaptureSnapshotAppend() (func(dst []byte) ([]byte, error), error)
}

// ResultCodec is optionally implemented by a StateMachine whose results (and
// operation errors) can be serialised. With it, the dedupe table carries
// outcomes through snapshots, so a proposal whose first apply this node only
// received inside a leader's snapshot still gets its real result; without
// it, that rare case yields ErrIndeterminate.
//
// EncodeResult may refuse an outcome (an error): that outcome is carried as
// lost, and so are those past the snapshot's budget
// (maxSnapshotResultBytes). It is called on the apply goroutine when a
// snapshot is captured, once per outcome in the table. DecodeResult reads
// bytes from a peer's snapshot: it must not panic on any input, and an error
// keeps that outcome as lost without failing the snapshot (a newer build's
// encoding, during a rolling upgrade). Neither needs to be deterministic
// across replicas, but both should be canonical.
type ResultCodec interface {
	EncodeResult(result any, err error) ([]byte, error)
	DecodeResult(data []byte) (result any, resultErr error, err error)
}

// Config configures a Store.
type Config struct {
	Consensus    consensus.Config
	StateMachine StateMachine
	NewTransport consensus.NewTransport
}

// Store is a Raft-replicated store over one StateMachine. Its methods are
// safe for concurrent use.
type Store struct {
	lg    *zap.Logger
	sm    StateMachine
	codec ResultCodec
	node  *consensus.Node
	id    uint64
	dir   string
	// epoch is this boot's; it moves only forward, on the apply goroutine
	// (overtakeEpoch).
	epoch atomic.Uint64

	// table is touched only by Apply, Snapshot and Restore, which the
	// consensus node calls one at a time.
	table *dedupeTable

	mu      sync.Mutex
	nextSeq uint64
	pending map[uint64]*pendingProposal

	// restoredDelivered and restoredLost count the outcomes delivered from
	// a snapshot's table (SnapshotOutcomes).
	restoredDelivered, restoredLost atomic.Uint64

	stopOnce sync.Once
	stopc    chan struct{}
	wg       sync.WaitGroup
}

type pendingProposal struct {
	seq          uint64
	payload      []byte
	lastProposed time.Time
	ch           chan outcome // buffered(1); receives exactly one outcome
}

// Open starts a store: it bumps the node's persisted boot epoch, starts the
// consensus node (restoring sm from the newest snapshot and replaying the
// WAL) and the re-proposal loop.
func Open(cfg Config) (*Store, error) {
	if cfg.StateMachine == nil {
		return nil, errors.New("raftstore: Config.StateMachine is required")
	}
	lg := cfg.Consensus.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	if cfg.Consensus.DataDir == "" {
		return nil, errors.New("raftstore: Config.Consensus.DataDir is required")
	}
	epoch, err := nextEpoch(cfg.Consensus.DataDir)
	if err != nil {
		return nil, err
	}
	s := &Store{
		lg:      lg.With(zap.Uint64("raft_id", cfg.Consensus.ID), zap.Uint64("epoch", epoch)),
		sm:      cfg.StateMachine,
		id:      cfg.Consensus.ID,
		dir:     cfg.Consensus.DataDir,
		table:   newDedupeTable(),
		nextSeq: 1,
		pending: map[uint64]*pendingProposal{},
		stopc:   make(chan struct{}),
	}
	s.epoch.Store(epoch)
	s.codec, _ = cfg.StateMachine.(ResultCodec)
	node, err := consensus.New(cfg.Consensus, applier{s}, cfg.NewTransport)
	if err != nil {
		return nil, err
	}
	s.node = node
	s.wg.Add(1)
	go s.reproposeLoop()
	return s, nil
}

// nextEpoch increments and durably stores DataDir/epoch. Proposal IDs embed
// it, so they stay unique across restarts of the same node ID.
func nextEpoch(dir string) (uint64, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("raftstore: data dir: %w", err)
	}
	p := filepath.Join(dir, "epoch")
	var cur uint64
	b, err := os.ReadFile(p)
	switch {
	case err == nil:
		cur, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("raftstore: corrupt epoch file %s: %w", p, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return 0, fmt.Errorf("raftstore: reading epoch: %w", err)
	}
	if cur == math.MaxUint64 {
		return 0, fmt.Errorf("raftstore: epoch file %s holds the last possible epoch", p)
	}
	next := cur + 1
	if err := writeEpoch(dir, next); err != nil {
		return 0, err
	}
	return next, nil
}

// writeEpoch durably replaces DataDir/epoch with epoch.
func writeEpoch(dir string, epoch uint64) error {
	p := filepath.Join(dir, "epoch")
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("raftstore: writing epoch: %w", err)
	}
	_, werr := fmt.Fprintf(f, "%d\n", epoch)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("raftstore: writing epoch: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("raftstore: writing epoch: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("raftstore: syncing data dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("raftstore: syncing data dir: %w", err)
	}
	return nil
}

// Transact proposes payload, waits until this node applies it, and returns
// the StateMachine's result and error. The proposal is retried (with the
// same proposal ID, so it applies at most once) after leader changes and
// after an election timeout without an outcome. When ctx ends first, or the
// store stops, the error wraps ErrIndeterminate.
func (s *Store) Transact(ctx context.Context, payload []byte) (any, error) {
	if err := s.halted(); err != nil {
		return nil, err
	}
	p := &pendingProposal{payload: payload, ch: make(chan outcome, 1)}
	s.mu.Lock()
	p.seq = s.nextSeq
	s.nextSeq++
	s.pending[p.seq] = p
	p.lastProposed = time.Now()
	data := s.encodeLocked(p)
	s.mu.Unlock()

	if err := s.node.Propose(ctx, data); err != nil {
		// ErrProposalDropped (no leader yet, leader stepping down, too much
		// uncommitted) is retried by the re-proposal loop; only a stopped
		// node or an ended ctx ends the wait.
		s.lg.Debug("proposal not accepted; will retry", zap.Uint64("seq", p.seq), zap.Error(err))
	}
	select {
	case o := <-p.ch:
		return o.unwrap()
	case <-ctx.Done():
		return s.abandon(p, ctx.Err())
	case <-s.node.Done():
		return s.abandon(p, ErrStopped)
	case <-s.node.Halted():
		// Nothing more is applied here: the proposal may still commit
		// elsewhere, so its outcome is unknown.
		return s.abandon(p, s.halted())
	}
}

// abandon removes p from the pending table. If its outcome arrived in the
// meantime, that outcome wins.
func (s *Store) abandon(p *pendingProposal, cause error) (any, error) {
	s.mu.Lock()
	delete(s.pending, p.seq)
	s.mu.Unlock()
	select {
	case o := <-p.ch:
		return o.unwrap()
	default:
	}
	return nil, fmt.Errorf("%w: proposal %d.%d.%d: %w", ErrIndeterminate, s.id, s.epoch.Load(), p.seq, cause)
}

func (o outcome) unwrap() (any, error) {
	if o.lost {
		return nil, fmt.Errorf("%w: applied, but its result arrived inside a snapshot that does not carry it (see ResultCodec)", ErrIndeterminate)
	}
	return o.result, o.err
}

// encodeLocked builds p's envelope; s.mu must be held (minPending reads the
// pending table).
func (s *Store) encodeLocked(p *pendingProposal) []byte {
	minPending := p.seq
	for seq := range s.pending {
		minPending = min(minPending, seq)
	}
	return envelope{
		id:         proposalID{node: s.id, epoch: s.epoch.Load(), seq: p.seq},
		minPending: minPending,
		payload:    p.payload,
	}.encode()
}

// Read runs fn after a linearizable ReadIndex barrier: every write
// acknowledged before Read was called is visible to fn. fn reads the
// StateMachine under its own read lock. It works on any node; in a minority
// it fails with ErrNoQuorum when ctx ends, never serving stale state.
func (s *Store) Read(ctx context.Context, fn func() (any, error)) (any, error) {
	if err := s.Barrier(ctx); err != nil {
		return nil, err
	}
	return fn()
}

// Barrier waits until this node has applied everything committed when it
// was called (batched ReadIndex).
func (s *Store) Barrier(ctx context.Context) error {
	if err := s.halted(); err != nil {
		return err
	}
	err := s.node.ReadBarrier(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, consensus.ErrHalted):
		if herr := s.halted(); herr != nil {
			return herr
		}
		return ErrHalted
	case errors.Is(err, consensus.ErrStopped):
		return ErrStopped
	case ctx.Err() != nil:
		return fmt.Errorf("%w: %w", ErrNoQuorum, err)
	default:
		return err
	}
}

// halted returns an error wrapping ErrHalted, naming the entry and the
// reason, once the node halted; nil otherwise.
func (s *Store) halted() error {
	st := s.node.Status()
	if !st.Halted() {
		return nil
	}
	return fmt.Errorf("%w: entry %d: %s", ErrHalted, st.HaltedIndex, st.HaltedReason)
}

// Status reports the node's view of the cluster.
func (s *Store) Status() consensus.Status { return s.node.Status() }

// Node returns the underlying consensus node.
func (s *Store) Node() *consensus.Node { return s.node }

// Err returns the fatal error that stopped the store, if any.
func (s *Store) Err() error { return s.node.Err() }

// Done is closed when the store's node has stopped.
func (s *Store) Done() <-chan struct{} { return s.node.Done() }

// Stop stops the re-proposal loop and the node. Waiting Transacts return
// ErrIndeterminate. Idempotent and bounded.
func (s *Store) Stop() {
	s.stopOnce.Do(func() { close(s.stopc) })
	s.wg.Wait()
	s.node.Stop()
}

// reproposeLoop re-proposes pending proposals when the leader changes (a
// proposal in the old leader's uncommitted tail may be overwritten, raft
// thesis §3.6) and when one has waited an election timeout without an
// outcome (a dropped message or ErrProposalDropped). Re-proposing is safe
// because apply deduplicates by proposal ID.
func (s *Store) reproposeLoop() {
	defer s.wg.Done()
	cfg := s.node.Config()
	timeout := time.Duration(cfg.ElectionTicks) * cfg.TickInterval
	t := time.NewTicker(cfg.TickInterval)
	defer t.Stop()
	var lastLeader, lastTerm uint64
	for {
		select {
		case <-t.C:
		case <-s.stopc:
			return
		case <-s.node.Done():
			return
		}
		st := s.node.Status()
		changed := st.Leader != lastLeader || st.Term != lastTerm
		lastLeader, lastTerm = st.Leader, st.Term
		if st.Leader == 0 {
			continue // raft would drop them; wait for a leader
		}
		now := time.Now()
		var batch [][]byte
		s.mu.Lock()
		for _, p := range s.pending {
			age := now.Sub(p.lastProposed)
			if (changed && age >= cfg.TickInterval) || age >= timeout {
				p.lastProposed = now
				batch = append(batch, s.encodeLocked(p))
			}
		}
		s.mu.Unlock()
		for _, data := range batch {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			err := s.node.Propose(ctx, data)
			cancel()
			if errors.Is(err, consensus.ErrStopped) {
				return
			}
		}
		if len(batch) > 0 {
			s.lg.Debug("re-proposed pending proposals", zap.Int("count", len(batch)), zap.Bool("leader_changed", changed))
		}
	}
}

// applier is the consensus.Application side of the store, kept unexported
// so Apply/Snapshot/Restore are not part of Store's API.
type applier struct{ s *Store }

// PayloadChecker is optionally implemented by a StateMachine that can tell
// cheaply, from its framing alone (a version, a registered kind), whether an
// operation payload is one it could decode. The store's entry check
// (consensus.EntryChecker) calls it for every entry a peer sends, before
// raft sees it, on the hot path of replication: it must not decode the
// payload.
type PayloadChecker interface {
	CheckPayload(payload []byte) error
}

var _ consensus.EntryChecker = applier{}

// CheckEntry implements consensus.EntryChecker: the envelope decodes (known
// version, proposal ID) and, when the StateMachine is a PayloadChecker, its
// payload passes CheckPayload. An entry that fails would halt every replica
// that applies it (Apply: ErrUndecodable), so the node refuses the message
// that carries it.
func (a applier) CheckEntry(data []byte) error {
	env, err := decodeEnvelope(data)
	if err != nil {
		return err
	}
	if pc, ok := a.s.sm.(PayloadChecker); ok {
		return pc.CheckPayload(env.payload)
	}
	return nil
}

func (a applier) Apply(index uint64, data []byte) error {
	s := a.s
	env, err := decodeEnvelope(data)
	if err != nil {
		s.lg.Error("undecodable log entry", zap.Uint64("index", index), zap.Error(err))
		return fmt.Errorf("%w: entry %d: %v", ErrUndecodable, index, err)
	}
	if env.id.node == s.id && env.id.epoch > s.epoch.Load() {
		s.overtakeEpoch(index, env.id.epoch)
	}
	v, o := s.table.admit(env)
	switch v {
	case verdictStale:
		return nil
	case verdictDuplicate:
		s.deliver(env.id, o)
		return nil
	}
	res, opErr := s.sm.Apply(index, env.payload)
	if errors.Is(opErr, ErrUndecodable) {
		s.lg.Error("state machine cannot decode entry", zap.Uint64("index", index),
			zap.Stringer("proposal", env.id), zap.Error(opErr))
		return fmt.Errorf("entry %d (proposal %s): %w", index, env.id, opErr)
	}
	o = outcome{result: res, err: opErr}
	s.table.record(env.id, o)
	s.deliver(env.id, o)
	return nil
}

// deliver hands o to the waiter for id, when it is this boot's and pending.
func (s *Store) deliver(id proposalID, o outcome) {
	if id.node != s.id || id.epoch != s.epoch.Load() {
		return
	}
	s.mu.Lock()
	p := s.pending[id.seq]
	delete(s.pending, id.seq)
	s.mu.Unlock()
	if p == nil {
		return
	}
	switch {
	case o.restored && o.lost:
		s.restoredLost.Add(1)
	case o.restored:
		s.restoredDelivered.Add(1)
	}
	p.ch <- o
}

const snapshotVersion = 1

// Snapshot is version | uvarint len(table) | table | state machine snapshot.
//
// The dedupe table is small and encoded here, at the capture; the state
// machine is captured with CaptureSnapshot when it can be, and serialised
// by the returned function, off the apply goroutine.
func (a applier) Snapshot() (consensus.SnapshotWriter, error) {
	s := a.s
	table := s.table.encode(s.codec, maxSnapshotResultBytes)
	head := make([]byte, 0, 1+binary.MaxVarintLen64+len(table))
	head = append(head, snapshotVersion)
	head = binary.AppendUvarint(head, uint64(len(table)))
	head = append(head, table...)
	if c, ok := s.sm.(SnapshotAppender); ok {
		appendSM, err := c.CaptureSnapshotAppend()
		if err != nil {
			return nil, err
		}
		return func(dst []byte) ([]byte, error) { return appendSM(append(dst, head...)) }, nil
	}
	var smData func() ([]byte, error)
	if c, ok := s.sm.(SnapshotCapturer); ok {
		var err error
		if smData, err = c.CaptureSnapshot(); err != nil {
			return nil, err
		}
	} else {
		b, err := s.sm.Snapshot()
		if err != nil {
			return nil, err
		}
		smData = func() ([]byte, error) { return b, nil }
	}
	return func(dst []byte) ([]byte, error) {
		sm, err := smData()
		if err != nil {
			return nil, err
		}
		return append(append(dst, head...), sm...), nil
	}, nil
}

func (a applier) Restore(data []byte) error {
	s := a.s
	if len(data) == 0 {
		// A snapshot taken before anything was applied.
		s.table = newDedupeTable()
		return s.sm.Restore(nil)
	}
	if data[0] != snapshotVersion {
		return fmt.Errorf("raftstore: unknown snapshot version %d", data[0])
	}
	r := reader{b: data[1:]}
	tb := r.bytes()
	if r.err != nil {
		return fmt.Errorf("raftstore: snapshot header: %w", r.err)
	}
	table, undecodable, err := decodeDedupeTable(tb, s.codec)
	if err != nil {
		return fmt.Errorf("raftstore: snapshot dedupe table: %w", err)
	}
	if undecodable > 0 {
		s.lg.Warn("snapshot carries proposal results this build cannot decode; their proposers, if waiting here, get an indeterminate outcome",
			zap.Int("results", undecodable))
	}
	if err := s.sm.Restore(r.b); err != nil {
		return fmt.Errorf("raftstore: restoring state machine: %w", err)
	}
	s.table = table
	// Proposals of ours that were applied inside the snapshot are finished:
	// their waiters get the outcome the snapshot carries (lost without a
	// ResultCodec).
	if sess := table.sessions[s.id]; sess != nil && sess.epoch == s.epoch.Load() {
		for seq, o := range sess.results {
			s.deliver(proposalID{node: s.id, epoch: sess.epoch, seq: seq}, o)
		}
	} else if sess != nil && sess.epoch > s.epoch.Load() {
		s.overtakeEpoch(0, sess.epoch)
	}
	return nil
}

// overtakeEpoch moves this boot to an epoch above seen, the epoch of a
// proposal in this node's name that was applied (at index; 0: found in a
// snapshot's table) although this boot never made it: a proposal forged in
// this node's name by another member, or a data directory whose epoch file
// is older than its log. The dedupe table now holds every proposal of this
// boot's epoch stale, so without a new epoch no write through this node
// could ever be applied again. Every proposal still pending is unapplied
// (its copies after the entry at index are stale, those before it were
// applied and answered), so it is proposed again under the new epoch, which
// keeps each applied at most once. It runs on the apply goroutine.
func (s *Store) overtakeEpoch(index, seen uint64) {
	if seen == math.MaxUint64 {
		s.lg.Error("a proposal in this node's name with the last possible epoch was applied: no write through "+
			"this node can be applied any more; rebuild the member under a new raft ID (docs/operations.md)",
			zap.Uint64("index", index))
		return
	}
	next := seen + 1
	if err := writeEpoch(s.dir, next); err != nil {
		// The next boot reads the older value; it replays the same entry
		// and moves past it again.
		s.lg.Error("cannot persist the new epoch", zap.Error(err))
	}
	old := s.epoch.Swap(next)
	s.mu.Lock()
	for _, p := range s.pending {
		p.lastProposed = time.Time{} // proposed again at the next tick
	}
	s.mu.Unlock()
	s.lg.Error("a proposal in this node's name from a later epoch than this boot's was applied (forged by "+
		"another member, or the data directory's epoch file is older than its log); moving to a new epoch "+
		"and proposing the pending writes again", zap.Uint64("index", index), zap.Uint64("seen_epoch", seen),
		zap.Uint64("old_epoch", old), zap.Uint64("new_epoch", next))
}

// SnapshotOutcomes reports how many of this node's waiting proposals were
// answered from a snapshot's dedupe table, because their entries reached
// this node only inside a leader's snapshot: with their real result
// (delivered) or with ErrIndeterminate, the snapshot not carrying the result
// (lost; see ResultCodec).
func (s *Store) SnapshotOutcomes() (delivered, lost uint64) {
	return s.restoredDelivered.Load(), s.restoredLost.Load()
}
