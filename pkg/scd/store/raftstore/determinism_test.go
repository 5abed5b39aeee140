package raftstore

import (
	"context"
	"errors"
	"testing"

	"github.com/raftdss/dss/pkg/models"
	generic "github.com/raftdss/dss/pkg/raftstore"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/repos"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
	"github.com/raftdss/dss/pkg/store"
)

// recordWorkload runs n workload operations against a single-node memstore
// and returns the log payloads (as the proposer encodes them) and the
// reference store.
func recordWorkload(t *testing.T, seed uint64, n int) ([][]byte, *memstore.Store) {
	t.Helper()
	om := newMachine(newStateRepo(), generic.OperationOptions{})
	ref := memstore.New()
	w := newWorkload(seed)
	var payloads [][]byte
	failures := 0
	for range n {
		op := w.op()
		b, err := om.EncodeOperation(op)
		if err != nil {
			t.Fatalf("encoding %T: %v", op, err)
		}
		payloads = append(payloads, b)
		res, err := ref.Transact(context.Background(), op)
		var me *models.Error
		if err != nil && !errors.As(err, &me) {
			t.Fatalf("%T: store failure %v", op, err)
		}
		if err != nil {
			failures++
		}
		w.learn(op, res, err)
	}
	// Both paths must be replayed: commits and all-or-nothing rollbacks.
	if failures == 0 || failures > n/2 {
		t.Fatalf("%d of %d operations failed; the workload should mostly succeed, sometimes fail", failures, n)
	}
	if ref.Hash() == memstore.NewState().Hash() {
		t.Fatal("the workload left the state empty")
	}
	return payloads, ref
}

// TestReplayIsDeterministic replays the same log into fresh state machines,
// whole and through a snapshot taken midway, and compares state hashes with
// each other and with the single-node store that produced the log.
func TestReplayIsDeterministic(t *testing.T) {
	payloads, ref := recordWorkload(t, 42, 400)
	want := ref.Hash()
	replay := func(m *machine, from int, ps [][]byte) {
		t.Helper()
		for i, p := range ps {
			res, err := m.Apply(uint64(from+i+1), p)
			var me *models.Error
			if err != nil && !errors.As(err, &me) {
				t.Fatalf("entry %d: %v", from+i+1, err)
			}
			if err == nil && res == nil {
				t.Fatalf("entry %d: no result", from+i+1)
			}
		}
	}
	for i := range 3 {
		m := newMachine(newStateRepo(), generic.OperationOptions{})
		replay(m, 0, payloads)
		if got := m.repo.st.Hash(); got != want {
			t.Fatalf("replay %d: hash %x, want %x", i, got, want)
		}
		if m.repo.index != uint64(len(payloads)) {
			t.Fatalf("replay %d: index %d, want %d", i, m.repo.index, len(payloads))
		}
	}

	half := len(payloads) / 2
	m := newMachine(newStateRepo(), generic.OperationOptions{})
	replay(m, 0, payloads[:half])
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	restored := newMachine(newStateRepo(), generic.OperationOptions{})
	if err := restored.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if restored.repo.index != uint64(half) {
		t.Fatalf("restored index %d, want %d", restored.repo.index, half)
	}
	replay(restored, half, payloads[half:])
	if got := restored.repo.st.Hash(); got != want {
		t.Fatalf("after snapshot and replay: hash %x, want %x", got, want)
	}
}

func TestUndecodableEntriesHaltOrFailAndChangeNothing(t *testing.T) {
	payloads, _ := recordWorkload(t, 7, 50)
	m := newMachine(newStateRepo(), generic.OperationOptions{})
	for i, p := range payloads {
		_, _ = m.Apply(uint64(i+1), p)
	}
	before := m.repo.st.Hash()
	read, err := NewRegistry().Encode(&scd.GetOperationalIntent{Caller: "a", ID: "b"})
	if err != nil {
		t.Fatal(err)
	}
	// No registered type: the node halts (ErrUndecodable).
	for name, p := range map[string][]byte{
		"empty":        nil,
		"one byte":     {1},
		"unknown type": {0xff, 0xff, 0},
	} {
		_, err := m.Apply(1000, p)
		if !errors.Is(err, generic.ErrUndecodable) {
			t.Errorf("%s: error %v, want ErrUndecodable", name, err)
		}
	}
	// A registered type that does not decode, or a read in the log: a failed
	// operation, the same on every replica (ErrBadOperation).
	for name, p := range map[string][]byte{
		"truncated":       payloads[0][:len(payloads[0])-1],
		"trailing":        append(append([]byte{}, payloads[0]...), 0),
		"read-only entry": append([]byte{0, byte(scd.OpGetOperationalIntent)}, read...),
	} {
		_, err := m.Apply(1000, p)
		if !errors.Is(err, generic.ErrBadOperation) || errors.Is(err, generic.ErrUndecodable) {
			t.Errorf("%s: error %v, want ErrBadOperation only", name, err)
		}
	}
	if m.repo.st.Hash() != before || m.repo.index != uint64(len(payloads)) {
		t.Fatal("an undecodable entry changed the state")
	}
}

func TestCorruptSnapshotLeavesStateAlone(t *testing.T) {
	payloads, _ := recordWorkload(t, 9, 60)
	m := newMachine(newStateRepo(), generic.OperationOptions{})
	for i, p := range payloads {
		_, _ = m.Apply(uint64(i+1), p)
	}
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	before := m.repo.st.Hash()
	for name, b := range map[string][]byte{
		"bad version":   append([]byte{9}, snap[1:]...),
		"flipped byte":  flip(snap, len(snap)/2),
		"truncated":     snap[:len(snap)-3],
		"header only":   snap[:2],
		"broken header": {repoSnapshotVersion, 0x80},
	} {
		if err := m.Restore(b); err == nil {
			t.Errorf("%s: restored", name)
		}
		if m.repo.st.Hash() != before || m.repo.index != uint64(len(payloads)) {
			t.Fatalf("%s: a failed restore changed the state", name)
		}
	}
	if err := m.Restore(nil); err != nil || m.repo.index != 0 || m.repo.st.Hash() != memstore.NewState().Hash() {
		t.Fatalf("an empty snapshot must restore the empty state: %v", err)
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 0x40
	return c
}

// repoOp runs a closure as an operation, to drive the repo directly.
type repoOp struct {
	fn       func(repos.Repo) (any, error)
	readOnly bool
}

func (repoOp) Type() store.OpType { return 0xfff0 }
func (o repoOp) ReadOnly() bool   { return o.readOnly }
func (o repoOp) Execute(_ context.Context, r repos.Repo) (any, error) {
	return o.fn(r)
}

// TestRepoAdapter: Apply is all-or-nothing and records the index, and View
// cannot write, as the generic store's Repo contract requires.
func TestRepoAdapter(t *testing.T) {
	r := newStateRepo()
	empty := r.st.Hash()
	avail := &models.UssAvailability{USS: "u", Availability: models.AvailabilityDown}
	_, err := r.Apply(1, repoOp{fn: func(repo repos.Repo) (any, error) {
		if err := repo.UpsertUssAvailability(context.Background(), avail); err != nil {
			return nil, err
		}
		return nil, models.Errorf(models.CodeVersionMismatch, "changed my mind")
	}})
	if models.CodeOf(err) != models.CodeVersionMismatch || r.st.Hash() != empty || r.index != 1 {
		t.Fatalf("failed Apply: %v, state changed: %v, index %d", err, r.st.Hash() != empty, r.index)
	}
	if _, err := r.View(context.Background(), repoOp{readOnly: true, fn: func(repo repos.Repo) (any, error) {
		return nil, repo.UpsertUssAvailability(context.Background(), avail)
	}}); err == nil || r.st.Hash() != empty {
		t.Fatalf("a View wrote: %v", err)
	}
	if _, err := r.Apply(2, repoOp{fn: func(repo repos.Repo) (any, error) {
		return nil, repo.UpsertUssAvailability(context.Background(), avail)
	}}); err != nil || r.st.Hash() == empty || r.index != 2 {
		t.Fatalf("Apply: %v, index %d", err, r.index)
	}
}
