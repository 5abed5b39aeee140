package raftstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/raftdss/dss/pkg/store"
)

// Repo is the in-memory repository an OperationMachine runs operations
// against, with its own locking. It receives the operations themselves, not
// closures around them, so that it can act on what they declare (e.g. raise
// the write time of a store.Timestamped operation).
type Repo[R any] interface {
	// Apply runs op, the entry at log index, with exclusive access: a write
	// operation, or, only under OperationOptions.ReadsViaLog, a read-only one,
	// which must leave the repository exactly as it was (as must a write
	// that returns an error: undo log or copy on write). The context op gets
	// carries no deadline: a committed entry must run to completion
	// identically on every replica.
	Apply(index uint64, op store.Operation[R]) (any, error)
	// View runs read-only operation op with shared (read) access,
	// concurrently with other Views.
	View(ctx context.Context, op store.Operation[R]) (any, error)
	// Snapshot and Restore serialise and replace the whole repository.
	Snapshot() ([]byte, error)
	Restore([]byte) error
}

// OperationOptions configures an OperationMachine and the OperationStore
// over it. The zero value is the production configuration.
type OperationOptions struct {
	// ReadsViaLog is for benchmarks only: it sends read-only operations
	// through the Raft log, as a store without ReadIndex reads would.
	// OperationStore.Transact proposes a read-only op like a write, every
	// replica executes it (Repo.Apply) when it applies the entry, and the
	// proposer answers with the result of its own apply. DecodeOperation then
	// accepts read-only operations in the log.
	//
	// Every node of a cluster should run with the same setting: a node
	// without it applies each read entry it meets as a failed operation
	// (ErrBadOperation), which changes nothing, so replicas stay equal; reads
	// never enter the log of a production cluster. The same holds for a
	// restart on a data directory holding read entries, and for offline
	// tools that replay it.
	ReadsViaLog bool
}

// OperationMachine is a StateMachine whose entries are store.Operation[R]s
// encoded with a store.Registry[R]: payload = big-endian uint16 OpType |
// the codec's encoding.
type OperationMachine[R any] struct {
	reg  *store.Registry[R]
	repo Repo[R]
	opts OperationOptions
	// known has bit t set for every OpType registered when the machine was
	// built: CheckPayload's lookup, without the registry's lock.
	known *[1 << 16 / 64]uint64
}

var _ PayloadChecker = (*OperationMachine[struct{}])(nil)

// ErrBadOperation is the outcome (wrapped) of a committed entry whose
// operation payload does not decode although its envelope and operation
// type are valid, or that is a read-only operation in the log of a node
// without OperationOptions.ReadsViaLog. The entry is applied as a failed
// operation: the state is unchanged and the proposer gets this error.
var ErrBadOperation = errors.New("raftstore: operation payload does not decode; applied as a failed operation")

// NewOperationMachine returns the state machine for reg's operations over
// repo, with the zero (production) OperationOptions.
func NewOperationMachine[R any](reg *store.Registry[R], repo Repo[R]) *OperationMachine[R] {
	return NewOperationMachineWith(reg, repo, OperationOptions{})
}

// NewOperationMachineWith is NewOperationMachine with opts. An
// OperationStore over the machine follows the same opts.
func NewOperationMachineWith[R any](reg *store.Registry[R], repo Repo[R], opts OperationOptions) *OperationMachine[R] {
	known := new([1 << 16 / 64]uint64)
	for _, t := range reg.Types() {
		known[uint16(t)/64] |= 1 << (uint16(t) % 64)
	}
	return &OperationMachine[R]{reg: reg, repo: repo, opts: opts, known: known}
}

// CheckPayload implements PayloadChecker: the payload names an operation
// type registered when the machine was built. It does not decode the
// operation.
func (m *OperationMachine[R]) CheckPayload(data []byte) error {
	if len(data) < 2 {
		return fmt.Errorf("%w: operation payload of %d bytes", ErrUndecodable, len(data))
	}
	t := binary.BigEndian.Uint16(data)
	if m.known[t/64]&(1<<(t%64)) == 0 {
		return fmt.Errorf("%w: unregistered operation type %d", ErrUndecodable, t)
	}
	return nil
}

// Options returns the options the machine was built with.
func (m *OperationMachine[R]) Options() OperationOptions { return m.opts }

// EncodeOperation builds the log payload for op.
func (m *OperationMachine[R]) EncodeOperation(op store.Operation[R]) ([]byte, error) {
	enc, err := m.reg.Encode(op)
	if err != nil {
		return nil, err
	}
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(enc)), uint16(op.Type()))
	return append(b, enc...), nil
}

// DecodeOperation is the inverse of EncodeOperation for a log entry. An
// undecodable payload (short, unknown type, codec error) or, unless
// OperationOptions.ReadsViaLog is set, a read-only operation (reads never
// enter the log: one there means a foreign or corrupt writer, or a node of a
// benchmark cluster run with ReadsViaLog) is an error wrapping
// ErrUndecodable: every replica runs the same registry, so it means version
// skew or corruption, and stopping beats diverging.
func (m *OperationMachine[R]) DecodeOperation(data []byte) (store.Operation[R], error) {
	if len(data) < 2 {
		return nil, fmt.Errorf("%w: operation payload of %d bytes", ErrUndecodable, len(data))
	}
	op, err := m.reg.Decode(store.OpType(binary.BigEndian.Uint16(data)), data[2:])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	if op.ReadOnly() && !m.opts.ReadsViaLog {
		return nil, fmt.Errorf("%w: read-only operation type %d in the log (only nodes run with ReadsViaLog accept one)",
			ErrUndecodable, op.Type())
	}
	return op, nil
}

// Apply decodes (DecodeOperation) and executes one operation through
// Repo.Apply, a read-only one too (under ReadsViaLog). An undecodable entry
// changes nothing.
//
// Which decode failures halt the node and which are a failed operation:
//
//   - A payload too short to name an operation type, or naming a type this
//     build does not register, returns ErrUndecodable: the node halts at the
//     entry. The peer-message check (CheckPayload) keeps such entries out of
//     the log, so one there was written by a newer version or is
//     corruption; applying it as a no-op could diverge from replicas that
//     know the type.
//   - A registered type whose payload fails its codec, or a read-only
//     operation in the log without ReadsViaLog, is applied as a failed
//     operation (ErrBadOperation, state unchanged): the decision depends
//     only on the bytes and the registry, so every replica of the same build
//     decides alike, and a read changes nothing on the replicas that do run
//     it. Halting instead would let one malformed proposal, which only a
//     full decode could catch and which the hot-path check therefore lets
//     through, stop every replica at the same index: the whole cluster.
//     The cost is that codecs must stay backward compatible: a new build
//     must decode what an old one wrote, and must not propose an encoding
//     the old build cannot read while old builds still run (the same rule
//     as for new operation types).
func (m *OperationMachine[R]) Apply(index uint64, data []byte) (any, error) {
	op, err := m.DecodeEntry(index, data)
	if err != nil {
		return nil, err
	}
	return m.repo.Apply(index, op)
}

// DecodeEntry decodes the committed entry at index for Apply: an error wraps
// ErrUndecodable (halt) or ErrBadOperation (a failed operation), as Apply
// documents.
func (m *OperationMachine[R]) DecodeEntry(index uint64, data []byte) (store.Operation[R], error) {
	if err := m.CheckPayload(data); err != nil {
		return nil, err
	}
	op, err := m.DecodeOperation(data)
	if err != nil {
		// %v, not %w: the cause wraps ErrUndecodable, which would halt.
		return nil, fmt.Errorf("%w: entry %d: %v", ErrBadOperation, index, err)
	}
	return op, nil
}

// Snapshot implements StateMachine.
func (m *OperationMachine[R]) Snapshot() ([]byte, error) { return m.repo.Snapshot() }

// Restore implements StateMachine.
func (m *OperationMachine[R]) Restore(b []byte) error { return m.repo.Restore(b) }

// OperationStore is a store.Store[R] on a Store whose StateMachine is an
// OperationMachine[R].
type OperationStore[R any] struct {
	s *Store
	m *OperationMachine[R]
}

var _ store.Store[struct{}] = (*OperationStore[struct{}])(nil)

// NewOperationStore adapts s, which must have been opened with m as its
// StateMachine.
func NewOperationStore[R any](s *Store, m *OperationMachine[R]) *OperationStore[R] {
	return &OperationStore[R]{s: s, m: m}
}

// Transact implements store.Store. A read-only op runs after a ReadIndex
// barrier under the repository's read lock and never enters the log; any
// other op, and under OperationOptions.ReadsViaLog a read-only op too, is
// proposed and its result returned once applied here (Store.Transact: its
// errors, ErrIndeterminate included, are the same for both).
func (o *OperationStore[R]) Transact(ctx context.Context, op store.Operation[R]) (any, error) {
	if op.ReadOnly() && !o.m.opts.ReadsViaLog {
		return o.s.Read(ctx, func() (any, error) { return o.m.repo.View(ctx, op) })
	}
	payload, err := o.m.EncodeOperation(op)
	if err != nil {
		return nil, err
	}
	return o.s.Transact(ctx, payload)
}
