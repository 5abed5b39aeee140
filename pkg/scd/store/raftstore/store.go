package raftstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftdss/dss/pkg/models"
	generic "github.com/raftdss/dss/pkg/raftstore"
	"github.com/raftdss/dss/pkg/raftstore/consensus"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/repos"
)

// Config configures Open.
type Config struct {
	// Consensus is the raft node's configuration (ID, initial peers, data
	// directory, timing, logger).
	Consensus consensus.Config
	// NewTransport builds the node's raft transport (gRPC in the binary,
	// memnet in tests).
	NewTransport consensus.NewTransport
	// Registerer receives the store's metrics; nil keeps them unregistered.
	// Each open Store needs its own (Open fails on a duplicate).
	Registerer prometheus.Registerer
	// ReadsViaLog is for benchmarks only (core-service
	// --raft_reads_via_log): read-only operations are proposed as log
	// entries like writes, executed by every replica when applied, and
	// answered with the proposer's own apply's result, as in a DSS without
	// ReadIndex reads (generic.OperationOptions.ReadsViaLog). Answers are
	// the same; reads cost a commit and an apply on every node.
	//
	// Every node of a cluster must run with the same setting: a node without
	// it stops (ErrUndecodable) at the first read entry it applies, by
	// design, and so does a restart without it on a data directory holding
	// read entries, and ReadDataDir.
	ReadsViaLog bool
}

// Store is the SCD store on Raft. It implements scd.Store; its methods are
// safe for concurrent use.
type Store struct {
	gen     *generic.Store
	ops     *generic.OperationStore[repos.Repo]
	repo    *stateRepo
	metrics *Metrics
	// readsViaLog: read-only operations are proposed (Config.ReadsViaLog).
	readsViaLog bool

	stopOnce sync.Once
	stopc    chan struct{}
	wg       sync.WaitGroup
}

var _ scd.Store = (*Store)(nil)

// Open starts the node: it restores the state from the newest snapshot in
// the data directory, replays the WAL after it, and joins (or, on the very
// first start, bootstraps) the cluster of Consensus.Peers. A corrupt
// snapshot or an entry it cannot decode makes Open fail, or stops the node
// later (Done, Err), without modifying the data directory.
func Open(cfg Config) (*Store, error) {
	if cfg.NewTransport == nil {
		return nil, errors.New("scd raftstore: Config.NewTransport is required")
	}
	repo := newStateRepo()
	m := newMachine(repo, generic.OperationOptions{ReadsViaLog: cfg.ReadsViaLog})
	gen, err := generic.Open(generic.Config{
		Consensus:    cfg.Consensus,
		StateMachine: m,
		NewTransport: cfg.NewTransport,
	})
	if err != nil {
		return nil, err
	}
	s := &Store{
		gen:         gen,
		readsViaLog: cfg.ReadsViaLog,
		// machine's OperationMachine encodes proposals and serves reads
		// (View); machine.Apply decodes and applies with its metric.
		ops:     generic.NewOperationStore(gen, m.OperationMachine),
		repo:    repo,
		metrics: m.metrics,
		stopc:   make(chan struct{}),
	}
	if cfg.Registerer != nil {
		if err := s.metrics.register(cfg.Registerer, s); err != nil {
			gen.Stop()
			return nil, fmt.Errorf("scd raftstore: registering metrics: %w", err)
		}
	}
	s.wg.Add(1)
	go s.watchLeader(gen.Node().Config().TickInterval)
	return s, nil
}

// Transact implements scd.Store. Writes are proposed and answered once
// committed by a majority and applied here; read-only operations run after a
// ReadIndex barrier and never enter the log, or, under Config.ReadsViaLog,
// are proposed and answered like writes. An outcome the store does not know
// (timeout, lost quorum, node stopping) is models.CodeUnavailable (503): the
// write may or may not take effect; a read has no effect either way.
//
// Metrics: dss_raft_proposals_committed_total counts the operations this
// node proposed that were applied (writes, and reads under ReadsViaLog);
// a write without a known outcome counts in dss_raft_proposals_failed_total,
// a read answered 503 (barrier or read entry) in dss_raft_reads_failed_total.
func (s *Store) Transact(ctx context.Context, op scd.Operation) (any, error) {
	if op == nil {
		return nil, models.Errorf(models.CodeInternal, "scd raftstore: nil operation")
	}
	if s.Status().Removed {
		// Nothing is proposed: the cluster no longer talks to this node.
		return nil, &models.Error{Code: models.CodeUnavailable,
			Message: "this DSS node was removed from its cluster: send requests to another node"}
	}
	readOnly := op.ReadOnly()
	viaLog := !readOnly || s.readsViaLog
	res, err := s.ops.Transact(ctx, op)
	if errors.Is(err, generic.ErrHalted) {
		if !readOnly {
			s.metrics.proposalsFailed.Inc()
		}
		return nil, &models.Error{Code: models.CodeUnavailable,
			Message: fmt.Sprintf("this DSS node halted at a Raft log entry it cannot apply and serves nothing: "+
				"send requests to another node (entry %d: %s)", s.Status().HaltedIndex, s.Status().HaltedReason),
			Cause: err}
	}
	var outcome *models.Error
	if err == nil || errors.As(err, &outcome) {
		// The operation ran: its error (a failed OVN check...) is its answer.
		if viaLog {
			s.metrics.proposalsCommitted.Inc()
		}
		return res, err
	}
	unknown := errors.Is(err, generic.ErrIndeterminate) || errors.Is(err, generic.ErrStopped)
	switch {
	case readOnly && !viaLog:
		// Only the ReadIndex barrier fails this way: no quorum confirmed
		// this node's view in time, or the node is stopping.
		s.metrics.readsFailed.Inc()
		return nil, &models.Error{Code: models.CodeUnavailable,
			Message: "the DSS cluster cannot confirm a consistent read now", Cause: err}
	case readOnly && unknown:
		// The read's log entry was not applied here in time (or its result
		// was lost in a snapshot): there is no answer, and nothing changed.
		s.metrics.readsFailed.Inc()
		return nil, &models.Error{Code: models.CodeUnavailable,
			Message: "the read was proposed through the Raft log but no result came back in time " +
				"(no quorum, timeout or node stopping); reads change nothing, so it is safe to retry",
			Cause: err}
	case unknown:
		s.metrics.proposalsFailed.Inc()
		return nil, &models.Error{Code: models.CodeUnavailable,
			Message: "the outcome of the write is unknown (no quorum, timeout or node stopping); it may still take effect",
			Cause:   err}
	}
	return nil, err // e.g. an operation the codec cannot encode: a bug (500)
}

// Status reports the node's view of the cluster.
func (s *Store) Status() consensus.Status { return s.gen.Status() }

// Node returns the consensus node, for membership changes.
func (s *Store) Node() *consensus.Node { return s.gen.Node() }

// StateHash returns the SHA-256 of the canonical encoding of the state and
// the log index it is the state at, read under the lock that Apply takes, so
// nodes reporting the same index must report the same hash.
//
// The consensus node publishes its applied index after a whole batch of
// entries, so the index is max(that index, the last entry the state machine
// applied): entries in between changed nothing (no-ops, membership changes,
// duplicates), and any entry the state already reflects counts as applied.
// It holds the read lock while hashing, delaying writes for that long.
func (s *Store) StateHash() (applied uint64, hash [32]byte) {
	s.repo.mu.RLock()
	defer s.repo.mu.RUnlock()
	return max(s.gen.Status().Applied, s.repo.index), s.repo.st.Hash()
}

// Done is closed when the node has stopped, by Stop or by a fatal error.
func (s *Store) Done() <-chan struct{} { return s.gen.Done() }

// Err returns the fatal error that stopped the node (corrupt data, an
// undecodable entry, a failed disk write), or nil.
func (s *Store) Err() error { return s.gen.Err() }

// Stop stops the node; requests waiting on it get CodeUnavailable. It is
// idempotent and bounded.
func (s *Store) Stop() {
	s.stopOnce.Do(func() { close(s.stopc) })
	s.wg.Wait()
	s.gen.Stop()
}

// watchLeader counts leader changes for the metrics. The consensus node
// offers no notification, so it samples the status once per tick: a leader
// that comes and goes within one tick is not counted.
func (s *Store) watchLeader(tick time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(tick)
	defer t.Stop()
	var last uint64
	for {
		select {
		case <-t.C:
		case <-s.stopc:
			return
		case <-s.gen.Done():
			return
		}
		if l := s.gen.Status().Leader; l != 0 && l != last {
			last = l
			s.metrics.leaderChanges.Inc()
		}
	}
}

// EntityCounts returns how many OIRs, constraints and subscriptions this
// node's state holds (the entities-by-kind metric), read under the lock
// Apply takes: the counts are those of one applied index.
func (s *Store) EntityCounts(context.Context) (oirs, constraints, subscriptions int, err error) {
	s.repo.mu.RLock()
	defer s.repo.mu.RUnlock()
	return s.repo.st.LenOperationalIntents(), s.repo.st.LenConstraints(), s.repo.st.LenSubscriptions(), nil
}
