package memstore

import (
	"context"
	"io"
	"sync"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
	"github.com/raftdss/dss/pkg/store"
)

// Store is the single-node, non-durable SCD backend: a State behind a
// read-write lock. Writes are serialised (so they behave as if run one at a
// time, spec §10); read-only operations run concurrently with each other.
type Store struct {
	mu    sync.RWMutex
	state *State
}

var _ store.Store[repos.Repo] = (*Store)(nil)

// New returns an empty store.
func New() *Store { return &Store{state: NewState()} }

// NewFromState returns a store serving st (e.g. one from ReadSnapshot). The
// caller must not use st afterwards.
func NewFromState(st *State) *Store { return &Store{state: st} }

// Transact runs op atomically. If ctx has ended before op starts, op does not
// run; once started, op runs to completion (the state never depends on ctx).
func (s *Store) Transact(ctx context.Context, op store.Operation[repos.Repo]) (any, error) {
	if op == nil {
		return nil, models.Errorf(models.CodeInternal, "memstore: nil operation")
	}
	if op.ReadOnly() {
		s.mu.RLock()
		defer s.mu.RUnlock()
	} else {
		s.mu.Lock()
		defer s.mu.Unlock()
	}
	if err := ctx.Err(); err != nil {
		return nil, &models.Error{Code: models.CodeUnavailable, Message: "request ended before the operation ran", Cause: err}
	}
	return s.state.Apply(ctx, op)
}

// WriteSnapshot writes a consistent canonical snapshot of the store.
func (s *Store) WriteSnapshot(w io.Writer) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.WriteSnapshot(w)
}

// Hash returns the hash of the store's canonical snapshot.
func (s *Store) Hash() [32]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.Hash()
}

// EntityCounts returns how many OIRs, constraints and subscriptions the
// store holds.
func (s *Store) EntityCounts(context.Context) (oirs, constraints, subscriptions int, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.LenOperationalIntents(), s.state.LenConstraints(), s.state.LenSubscriptions(), nil
}
