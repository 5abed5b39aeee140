package raftstore

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
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
}

func (r *counterRepo) Apply(_ uint64, op store.Operation[*counters]) (any, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
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
	// An undecodable operation payload, or a read-only operation (reads
	// never enter the log), is refused by the machine, unchanged.
	m := c.sm(1).(*OperationMachine[*counters])
	for _, bad := range [][]byte{nil, {0}, {0, 9, '{'}, {0, 1, '{'}, {0, 2, '{', '}'}} {
		if _, err := m.Apply(0, bad); !errors.Is(err, ErrUndecodable) {
			t.Fatalf("Apply(%x): %v, want ErrUndecodable", bad, err)
		}
	}
}
