package raftstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	generic "github.com/raftdss/dss/pkg/raftstore"
	"github.com/raftdss/dss/pkg/scd/repos"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
	"github.com/raftdss/dss/pkg/store"
)

// stateRepo is the raftstore.Repo[repos.Repo] over one memstore.State: the
// state machine's data and the lock that orders writes against reads.
//
// Concurrency: writes (Update, apply, Restore) come from the consensus Ready
// goroutine only and take mu exclusively; reads (View, hash) come from request
// goroutines and take it shared. State allows concurrent read-only Applies.
type stateRepo struct {
	mu sync.RWMutex
	st *memstore.State
	// index is the log index of the last entry applied to st (or, after a
	// restore, the one recorded in the snapshot). Entries that do not reach
	// the state machine (leader no-ops, membership changes, duplicates)
	// leave it alone: the state after them is the state at index.
	index uint64
	// snapSize is the size of the last snapshot written, to size the next
	// one's buffer in one allocation.
	snapSize atomic.Int64
}

func newStateRepo() *stateRepo { return &stateRepo{st: memstore.NewState()} }

var (
	_ generic.Repo[repos.Repo] = (*stateRepo)(nil)
	_ memstore.Pauser          = (*pacedWriter)(nil)
)

// Apply implements raftstore.Repo: op runs on the state at log index,
// all-or-nothing, through State.Apply, which also raises the write time of a
// store.Timestamped operation that does not advance past the previous write
// (spec §10: strictly increasing per log, so OVNs never repeat). The index is
// recorded whether op succeeds or not: the entry was applied either way.
//
// A read-only op (a read entry, only under Config.ReadsViaLog) runs the same
// way; State.Apply gives it a view whose writes fail, records no undo and
// leaves the write time alone, so the state and its hash are unchanged.
func (r *stateRepo) Apply(index uint64, op store.Operation[repos.Repo]) (any, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Background: a committed entry runs to completion identically on every
	// replica, whatever happens to the request that proposed it.
	res, err := r.st.Apply(context.Background(), op)
	r.index = index
	return res, err
}

// View implements raftstore.Repo: read-only op under the shared lock
// (State.Apply gives it a view whose writes fail).
func (r *stateRepo) View(ctx context.Context, op store.Operation[repos.Repo]) (any, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.st.Apply(ctx, op)
}

// Snapshot format: version byte | uvarint index | memstore canonical snapshot.
const repoSnapshotVersion = 1

// Snapshot implements raftstore.Repo. It serialises under the read lock,
// delaying writes for as long; the Raft node uses capture instead.
func (r *stateRepo) Snapshot() ([]byte, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.encode(r.index, r.st)
}

// capture takes a point-in-time copy of the state (memstore.Freeze: the
// entity pointers, ~2 ms at 100,000 OIRs) and returns the function that
// serialises it into exactly the bytes Snapshot would have returned now.
// Only Apply and Restore write the state, and the consensus node never runs
// them while it captures, so the read lock is enough to exclude writes.
func (r *stateRepo) capture() func(dst []byte) ([]byte, error) {
	r.mu.RLock()
	frozen, index := r.st.Freeze(), r.index
	r.mu.RUnlock()
	return func(dst []byte) ([]byte, error) { return r.encodeAppend(dst, index, pacedState{frozen}) }
}

// pacedState serialises a Frozen state at about half the speed of one core:
// after each chunk the encoder hands over (~60 KB), and at the encoder's
// pauses in between, it sleeps as long as the work since the last sleep
// took. A snapshot is background work with no deadline, while the
// goroutines on the write path (Ready loops, transport, request handlers)
// are latency-bound; without pacing, serialising 100,000 OIRs occupies a
// core for ~100+ ms and writes queue for CPU behind it.
type pacedState struct{ f *memstore.Frozen }

func (p pacedState) WriteSnapshot(w io.Writer) error {
	return p.f.WriteSnapshot(&pacedWriter{w: w, last: time.Now()})
}

type pacedWriter struct {
	w    io.Writer
	last time.Time
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.sleepAfter(0)
	return n, err
}

// pauseStep is the least work after which Pause sleeps: shorter sleeps
// would cost more in timer wake-ups than they spread.
const pauseStep = 500 * time.Microsecond

// Pause implements memstore.Pauser: the encoder calls it every few hundred
// entities it sorts or encodes, between writes. Sorting 100,000 IDs is tens
// of ms, which without these pauses would be one unpaced burst.
func (p *pacedWriter) Pause() { p.sleepAfter(pauseStep) }

// sleepAfter sleeps as long as the work since the last sleep took, if that
// is at least least.
func (p *pacedWriter) sleepAfter(least time.Duration) {
	if d := time.Since(p.last); d >= least {
		time.Sleep(d)
		p.last = time.Now()
	}
}

// encode writes the snapshot of st, the state at index.
func (r *stateRepo) encode(index uint64, st interface{ WriteSnapshot(io.Writer) error }) ([]byte, error) {
	return r.encodeAppend(nil, index, st)
}

// encodeAppend appends the snapshot of st, the state at index, to dst. The
// buffer is sized once from the last snapshot's size, so that a snapshot of
// tens of MB is not copied again and again as it grows.
func (r *stateRepo) encodeAppend(dst []byte, index uint64, st interface{ WriteSnapshot(io.Writer) error }) ([]byte, error) {
	if need := int(r.snapSize.Load()) + 4096; cap(dst)-len(dst) < need {
		b := make([]byte, len(dst), len(dst)+need)
		copy(b, dst)
		dst = b
	}
	start := len(dst)
	w := &appendWriter{b: dst}
	w.b = append(w.b, repoSnapshotVersion)
	w.b = binary.AppendUvarint(w.b, index)
	if err := st.WriteSnapshot(w); err != nil {
		return nil, fmt.Errorf("scd raftstore: snapshot: %w", err)
	}
	r.snapSize.Store(int64(len(w.b) - start))
	return w.b, nil
}

// appendWriter is an io.Writer appending to a byte slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// Restore implements raftstore.Repo. The new state is decoded completely
// before it replaces the current one, so a corrupt snapshot leaves the
// state exactly as it was (and the node stops on the error).
func (r *stateRepo) Restore(b []byte) error {
	st, index := memstore.NewState(), uint64(0)
	if len(b) > 0 {
		if b[0] != repoSnapshotVersion {
			return fmt.Errorf("scd raftstore: unknown snapshot version %d", b[0])
		}
		v, n := binary.Uvarint(b[1:])
		if n <= 0 {
			return errors.New("scd raftstore: corrupt snapshot header")
		}
		var err error
		if st, err = memstore.ReadSnapshot(bytes.NewReader(b[1+n:])); err != nil {
			return fmt.Errorf("scd raftstore: corrupt snapshot: %w", err)
		}
		index = v
	}
	// The next snapshot will be about this size: without this, the first
	// one after a start would grow its buffer by doubling (~2× the state in
	// garbage and copies).
	r.snapSize.Store(int64(len(b)))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st, r.index = st, index
	return nil
}

// machine is the raftstore.StateMachine of the SCD store: the generic
// OperationMachine (payload = big-endian OpType | codec encoding, decoded by
// DecodeOperation, which also refuses read-only operations in the log unless
// built with ReadsViaLog) over
// stateRepo (Snapshot and Restore are its), plus the apply-duration metric
// and background snapshots.
type machine struct {
	*generic.OperationMachine[repos.Repo]
	repo    *stateRepo
	metrics *Metrics
}

var (
	_ generic.StateMachine     = (*machine)(nil)
	_ generic.SnapshotCapturer = (*machine)(nil)
	_ generic.SnapshotAppender = (*machine)(nil)
)

// newMachine returns the state machine over repo with the SCD registry.
func newMachine(repo *stateRepo, opts generic.OperationOptions) *machine {
	return &machine{
		OperationMachine: generic.NewOperationMachineWith(NewRegistry(), generic.Repo[repos.Repo](repo), opts),
		repo:             repo,
		metrics:          newMetrics(),
	}
}

// Apply implements raftstore.StateMachine. An entry naming no operation
// type this build knows returns an error wrapping ErrUndecodable before
// anything is applied: the node halts there instead of skipping an entry
// that other replicas may have applied. One whose operation does not decode
// is a failed operation (ErrBadOperation), the same on every replica
// (generic.OperationMachine.Apply explains the choice).
func (m *machine) Apply(index uint64, data []byte) (any, error) {
	op, err := m.DecodeEntry(index, data)
	if err != nil {
		return nil, err
	}
	start := time.Now() // for the metric only; the state never sees the clock
	res, opErr := m.repo.Apply(index, op)
	m.metrics.applyDuration.Observe(time.Since(start).Seconds())
	return res, opErr
}

// CaptureSnapshot implements raftstore.SnapshotCapturer: the node
// serialises the state in the background instead of between two applies.
func (m *machine) CaptureSnapshot() (func() ([]byte, error), error) {
	write := m.repo.capture()
	return func() ([]byte, error) { return write(nil) }, nil
}

// CaptureSnapshotAppend implements raftstore.SnapshotAppender: as
// CaptureSnapshot, appending to the store's snapshot header.
func (m *machine) CaptureSnapshotAppend() (func(dst []byte) ([]byte, error), error) {
	return m.repo.capture(), nil
}
