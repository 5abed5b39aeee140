// Package store is the generic contract between a service's operations and
// the backends that run them (in memory, PostgreSQL, Raft).
//
// An Operation is a typed, serialisable request that carries every
// non-deterministic input (request time, generated IDs, S2 cells) decided
// before it runs. Execute holds all of the request's transactional logic and
// runs against a repository R (the backend's transactional view). A backend
// runs Execute all-or-nothing: when it returns an error, the repository is
// left exactly as before.
//
// This package must never know about SCD: it is shared by every service and
// by the Raft store's key-value demo.
package store

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// OpType identifies an operation type in a Registry. It is written into
// replicated log entries, so a value is never reused for another operation.
type OpType uint16

// Operation is one request's transactional logic.
//
// Execute must be deterministic: a function of the operation's fields and the
// repository's state only. It must not read the clock, random sources, the
// environment or the network, must not keep references to the repository
// after returning, and must never panic (a committed Raft entry that panics
// would crash every replica on replay): every bad state is an error value.
// The result it returns is owned by the caller and must not alias repository
// memory that a later operation may change.
type Operation[R any] interface {
	Type() OpType
	// ReadOnly reports whether Execute only reads. A read-only operation
	// runs on a consistent, linearizable snapshot and never enters a log.
	ReadOnly() bool
	Execute(ctx context.Context, repo R) (any, error)
}

// Timestamped is implemented by write operations that carry their write time
// (decided by the proposer). A state machine that applies them in a log
// raises a write time that is not after the previous write's to one
// nanosecond past it, deterministically, so that versions derived from write
// times never repeat even when proposers' clocks disagree or stand still
// (spec §10: timestamps strictly increasing per log).
type Timestamped interface {
	WriteTime() time.Time
	SetWriteTime(time.Time)
}

// Store runs operations against repository R.
type Store[R any] interface {
	// Transact runs op atomically and durably and returns its result. A
	// read-only op is served without writing (e.g. through ReadIndex).
	// If ctx ends before the outcome is known the error says so (it is an
	// indeterminate outcome, not a failure).
	Transact(ctx context.Context, op Operation[R]) (any, error)
}

// Do runs op on s and converts its result to T.
func Do[T any, R any](ctx context.Context, s Store[R], op Operation[R]) (T, error) {
	var zero T
	res, err := s.Transact(ctx, op)
	if err != nil {
		return zero, err
	}
	t, ok := res.(T)
	if !ok {
		return zero, fmt.Errorf("store: operation type %d returned %T, want %T", op.Type(), res, zero)
	}
	return t, nil
}

// Codec encodes and decodes one operation type for a log.
type Codec[R any] struct {
	Name   string
	Decode func(payload []byte) (Operation[R], error)
	Encode func(op Operation[R]) ([]byte, error)
}

// Registry maps OpTypes to codecs. It is safe for concurrent use.
type Registry[R any] struct {
	mu     sync.RWMutex
	codecs map[OpType]Codec[R]
}

// NewRegistry returns an empty registry.
func NewRegistry[R any]() *Registry[R] {
	return &Registry[R]{codecs: map[OpType]Codec[R]{}}
}

// Register adds an operation type. Registering a type twice is a programming
// error and panics at start-up.
func (r *Registry[R]) Register(t OpType, c Codec[R]) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.codecs[t]; dup {
		panic(fmt.Sprintf("store: operation type %d registered twice", t))
	}
	r.codecs[t] = c
}

// Encode serialises op's payload (its type travels separately).
func (r *Registry[R]) Encode(op Operation[R]) ([]byte, error) {
	c, ok := r.codec(op.Type())
	if !ok {
		return nil, fmt.Errorf("store: unregistered operation type %d", op.Type())
	}
	return c.Encode(op)
}

// Decode rebuilds an operation of type t from its payload. Undecodable input
// is an error, never a panic.
func (r *Registry[R]) Decode(t OpType, payload []byte) (Operation[R], error) {
	c, ok := r.codec(t)
	if !ok {
		return nil, fmt.Errorf("store: unregistered operation type %d", t)
	}
	op, err := c.Decode(payload)
	if err != nil {
		return nil, fmt.Errorf("store: decoding %s: %w", c.Name, err)
	}
	if op.Type() != t {
		return nil, fmt.Errorf("store: codec %s decoded type %d, want %d", c.Name, op.Type(), t)
	}
	return op, nil
}

// Types lists the registered types in order.
func (r *Registry[R]) Types() []OpType {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ts := make([]OpType, 0, len(r.codecs))
	for t := range r.codecs {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	return ts
}

func (r *Registry[R]) codec(t OpType) (Codec[R], bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.codecs[t]
	return c, ok
}
