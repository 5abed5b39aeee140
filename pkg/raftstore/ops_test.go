package raftstore

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/store"
)

// counters is a tiny repository for the OperationStore test.
type counters struct{ m map[string]int }

// counterRepo implements Repo[*counters] with copy-on-write updates.
type counterRepo struct {
	mu sync.RWMutex
	c  *counters
	// readIndexes are the log indexes at which Apply ran a read-only
	// operation (only under ReadsViaLog).
	readIndexes []uint64
}

func (r *counterRepo) Apply(index uint64, op store.Operation[*counters]) (any, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if op.ReadOnly() {
		r.readIndexes = append(r.readIndexes, index)
	}
	next := &counters{m: maps.Clone(r.c.m)}
	res, err := op.Execute(context.Background(), next)
	if err == nil {
		r.c = next
	}
	return res, err
}

func (r *counterRepo) View(ctx context.Context, op store.Operation[*counters]) (any, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return op.Execute(ctx, r.c)
}

func (r *counterRepo) Snapshot() ([]byte, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return json.Marshal(r.c.m)
}

func (r *counterRepo) Restore(b []byte) error {
	m := map[string]int{}
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.c = &counters{m: m}
	return nil
}

var errTooBig = errors.New("counter would exceed its limit")

type incrOp struct {
	Key   string
	Limit int
}

func (incrOp) Type() store.OpType { return 1 }
func (incrOp) ReadOnly() bool     { return false }
func (o incrOp) Execute(_ context.Context, c *counters) (any, error) {
	if c.m[o.Key]+1 > o.Limit {
		return nil, errTooBig
	}
	c.m[o.Key]++
	return c.m[o.Key], nil
}

type getOp struct{ Key string }

func (getOp) Type() store.OpType { return 2 }
func (getOp) ReadOnly() bool     { return true }
func (o getOp) Execute(_ context.Context, c *counters) (any, error) {
	return c.m[o.Key], nil
}

func jsonCodec[O store.Operation[*counters]](name string) store.Codec[*counters] {
	return store.Codec[*counters]{
		Name: name,
		Decode: func(b []byte) (store.Operation[*counters], error) {
			var o O
			err := json.Unmarshal(b, &o)
			return o, err
		},
		Encode: func(op store.Operation[*counters]) ([]byte, error) { return json.Marshal(op) },
	}
}

func TestOperationStore(t *testing.T) {
	reg := store.NewRegistry[*counters]()
	reg.Register(1, jsonCodec[incrOp]("incr"))
	reg.Register(2, jsonCodec[getOp]("get"))
	c := makeCluster(t, 3, withStateMachine(func() StateMachine {
		return NewOperationMachine(reg, &counterRepo{c: &counters{m: map[string]int{}}})
	}))
	c.waitLeader(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stores := map[uint64]store.Store[*counters]{}
	for id := uint64(1); id <= 3; id++ {
		stores[id] = NewOperationStore(c.store(id), c.sm(id).(*OperationMachine[*counters]))
	}
	for i := 1; i <= 3; i++ {
		n, err := store.Do[int](ctx, stores[uint64(i)], incrOp{Key: "k", Limit: 3})
		if err != nil || n != i {
			t.Fatalf("incr %d: %d, %v", i, n, err)
		}
	}
	// The operation's own error comes back as the result of Transact, and
	// leaves the repository unchanged.
	if _, err := stores[2].Transact(ctx, incrOp{Key: "k", Limit: 3}); !errors.Is(err, errTooBig) {
		t.Fatalf("over the limit: %v", err)
	}
	// Node 1 may not have applied the last write yet (it was proposed on
	// node 2): a barrier first, so that only the reads could move it.
	if err := c.store(1).Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	applied := c.store(1).Status().Applied
	for id := uint64(1); id <= 3; id++ {
		n, err := store.Do[int](ctx, stores[id], getOp{Key: "k"})
		if err != nil || n != 3 {
			t.Fatalf("read on %d: %d, %v", id, n, err)
		}
	}
	// Reads never enter the log.
	if got := c.store(1).Status().Applied; got != applied {
		t.Fatalf("reads advanced the applied index from %d to %d", applied, got)
	}
	// A payload naming no registered type halts (ErrUndecodable); a
	// registered type whose payload does not decode, or a read-only
	// operation (reads never enter the log), is a failed operation
	// (ErrBadOperation). Neither changes anything.
	m := c.sm(1).(*OperationMachine[*counters])
	for _, bad := range [][]byte{nil, {0}, {0, 9, '{'}} {
		if _, err := m.Apply(0, bad); !errors.Is(err, ErrUndecodable) {
			t.Fatalf("Apply(%x): %v, want ErrUndecodable", bad, err)
		}
		if err := m.CheckPayload(bad); !errors.Is(err, ErrUndecodable) {
			t.Fatalf("CheckPayload(%x): %v, want ErrUndecodable", bad, err)
		}
	}
	for _, bad := range [][]byte{{0, 1, '{'}, {0, 2, '{', '}'}} {
		if _, err := m.Apply(0, bad); !errors.Is(err, ErrBadOperation) || errors.Is(err, ErrUndecodable) {
			t.Fatalf("Apply(%x): %v, want ErrBadOperation only", bad, err)
		}
		if err := m.CheckPayload(bad); err != nil {
			t.Fatalf("CheckPayload(%x) of a registered type: %v", bad, err)
		}
	}
}

func (r *counterRepo) reads() []uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.readIndexes)
}

func (r *counterRepo) snapshotMap() map[string]int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return maps.Clone(r.c.m)
}

func counterRegistry() *store.Registry[*counters] {
	reg := store.NewRegistry[*counters]()
	reg.Register(1, jsonCodec[incrOp]("incr"))
	reg.Register(2, jsonCodec[getOp]("get"))
	return reg
}

// TestOperationStoreReadsViaLog: with ReadsViaLog, a read-only operation is
// proposed, committed and executed by every replica's Repo.Apply at its own
// log index (one entry per read), the proposer answers with its own apply's
// result, and the reads change no replica's state.
func TestOperationStoreReadsViaLog(t *testing.T) {
	reg := counterRegistry()
	c := makeCluster(t, 3, withStateMachine(func() StateMachine {
		return NewOperationMachineWith(reg, &counterRepo{c: &counters{m: map[string]int{}}},
			OperationOptions{ReadsViaLog: true})
	}))
	c.waitLeader(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stores := map[uint64]store.Store[*counters]{}
	repos := map[uint64]*counterRepo{}
	for id := uint64(1); id <= 3; id++ {
		m := c.sm(id).(*OperationMachine[*counters])
		if !m.Options().ReadsViaLog {
			t.Fatalf("node %d: machine without ReadsViaLog", id)
		}
		stores[id] = NewOperationStore(c.store(id), m)
		repos[id] = m.repo.(*counterRepo)
	}
	for i := 1; i <= 2; i++ {
		if n, err := store.Do[int](ctx, stores[1], incrOp{Key: "k", Limit: 9}); err != nil || n != i {
			t.Fatalf("incr %d: %d, %v", i, n, err)
		}
	}
	const reads = 6
	for i := range reads {
		id := uint64(1 + i%3) // followers propose their reads too
		n, err := store.Do[int](ctx, stores[id], getOp{Key: "k"})
		if err != nil || n != 2 {
			t.Fatalf("read %d on %d: %d, %v", i, id, n, err)
		}
		// The proposer answered from its own apply: this read, and every
		// read acknowledged before it (earlier in the log), is in its
		// repository's record already.
		if got := repos[id].reads(); len(got) != i+1 {
			t.Fatalf("read %d on node %d answered with %d reads applied there (%v), want %d", i, id, len(got), got, i+1)
		}
	}
	waitFor(t, 10*time.Second, "every replica to apply every read", func() bool {
		for _, r := range repos {
			if len(r.reads()) < reads {
				return false
			}
		}
		return true
	})
	want := repos[1].reads()
	for id, r := range repos {
		got := r.reads()
		if len(got) != reads || !slices.Equal(got, want) {
			t.Fatalf("node %d applied reads at %v, node 1 at %v (want %d, at the same indexes)", id, got, want, reads)
		}
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != reads {
			t.Fatalf("node %d: read indexes %v are not distinct and increasing", id, got)
		}
		if m := r.snapshotMap(); len(m) != 1 || m["k"] != 2 {
			t.Fatalf("node %d: state %v after the reads, want k=2", id, m)
		}
	}
	// A write after the reads sees the same state as before them.
	if n, err := store.Do[int](ctx, stores[2], incrOp{Key: "k", Limit: 9}); err != nil || n != 3 {
		t.Fatalf("incr after the reads: %d, %v", n, err)
	}
}

// TestDecodeOperationReadsViaLog: only a machine with ReadsViaLog accepts a
// read-only operation in the log; without it, one is undecodable (and
// Apply refuses it before running anything).
func TestDecodeOperationReadsViaLog(t *testing.T) {
	reg := counterRegistry()
	plainRepo := &counterRepo{c: &counters{m: map[string]int{"k": 4}}}
	plain := NewOperationMachine(reg, plainRepo)
	via := NewOperationMachineWith(reg, &counterRepo{c: &counters{m: map[string]int{"k": 4}}},
		OperationOptions{ReadsViaLog: true})
	if plain.Options().ReadsViaLog {
		t.Fatal("NewOperationMachine enabled ReadsViaLog")
	}
	payload, err := plain.EncodeOperation(getOp{Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.DecodeOperation(payload); !errors.Is(err, ErrUndecodable) {
		t.Fatalf("plain DecodeOperation of a read: %v, want ErrUndecodable", err)
	}
	if _, err := plain.Apply(7, payload); !errors.Is(err, ErrBadOperation) || errors.Is(err, ErrUndecodable) {
		t.Fatalf("plain Apply of a read: %v, want ErrBadOperation (a failed operation)", err)
	}
	if len(plainRepo.reads()) != 0 {
		t.Fatal("the refused read reached the repository")
	}
	op, err := via.DecodeOperation(payload)
	if err != nil || op != (getOp{Key: "k"}) {
		t.Fatalf("DecodeOperation with ReadsViaLog: %v, %v", op, err)
	}
	res, err := via.Apply(7, payload)
	if err != nil || res != 4 {
		t.Fatalf("Apply of a read with ReadsViaLog: %v, %v", res, err)
	}
	// Writes decode alike either way.
	w, _ := plain.EncodeOperation(incrOp{Key: "k", Limit: 9})
	for _, m := range []*OperationMachine[*counters]{plain, via} {
		if op, err := m.DecodeOperation(w); err != nil || op != (incrOp{Key: "k", Limit: 9}) {
			t.Fatalf("write: %v, %v", op, err)
		}
	}
}
