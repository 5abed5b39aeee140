package raftstore

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	generic "github.com/raftdss/dss/pkg/raftstore"
	"github.com/raftdss/dss/pkg/scd"
)

// readsFor returns the read-only operations of one round: queries over the
// workload's whole area, and GETs of entities the workload knows (and of one
// that does not exist, answered 404).
func readsFor(w *workload, round int) []scd.Operation {
	caller := workloadUSSs[round%len(workloadUSSs)]
	cells := make([]models.CellID, 24)
	for i := range cells {
		cells[i] = models.CellID(i + 1)
	}
	area := models.Volume4D{Cells: cells}
	ops := []scd.Operation{
		&scd.QueryOperationalIntents{Caller: caller, Area: area},
		&scd.QueryConstraints{Caller: caller, Area: area},
		&scd.QuerySubscriptions{Caller: caller, Now: w.now, Area: area},
		&scd.GetUssAvailability{USS: caller},
		&scd.GetOperationalIntent{Caller: caller, ID: "00000000-0000-4000-8000-ffffffffffff"},
	}
	if id, ok := pick(w, w.oirs); ok {
		ops = append(ops, &scd.GetOperationalIntent{Caller: caller, ID: id})
	}
	if id, ok := pick(w, w.subs); ok {
		ops = append(ops, &scd.GetSubscription{Caller: w.subs[id].owner, ID: id})
	}
	if id, ok := pick(w, w.crs); ok {
		ops = append(ops, &scd.GetConstraint{Caller: caller, ID: id})
	}
	return ops
}

// TestReadsViaLogAnswerLikeReadIndex drives the same writes through a
// 3-node cluster with ReadIndex reads and one with Config.ReadsViaLog, and
// the same reads on the same node of each after every write. The via-log
// cluster must answer every read exactly as the ReadIndex one, each read
// must add exactly one entry to its log (applied on the proposer before it
// answers, and on every replica), the reads must change no state (both
// clusters keep equal state hashes, equal on every node, and later writes
// get equal results: the write-time clamp is untouched), and the metrics
// count the reads as committed proposals only in the via-log cluster.
func TestReadsViaLogAnswerLikeReadIndex(t *testing.T) {
	plain := newCluster(t, 3, nil)
	via := newClusterReadsViaLog(t, 3, nil, func(uint64) bool { return true })
	w := newWorkload(21)
	ctx := context.Background()
	proposed := map[uint64]int{} // via-log proposals (writes and reads) per node
	const rounds = 30
	exactRounds := 0
	for round := range rounds {
		id := uint64(1 + round%3)
		op := w.op()
		res, err := plain.stores[id].Transact(ctx, op)
		vres, verr := via.stores[id].Transact(ctx, op)
		if models.CodeOf(err) != models.CodeOf(verr) || (err == nil && !reflect.DeepEqual(res, vres)) {
			t.Fatalf("round %d write %T: ReadIndex cluster %v, %v; via-log cluster %v, %v", round, op, res, err, vres, verr)
		}
		w.learn(op, res, err)
		proposed[id]++

		_, hash := plain.converged(0)
		idx0, vhash := via.converged(0)
		if vhash != hash {
			t.Fatalf("round %d: via-log cluster hash %x, ReadIndex cluster %x", round, vhash, hash)
		}
		term0 := via.stores[id].Status().Term
		reads := readsFor(w, round)
		exact := true
		for k, r := range reads {
			res, err := plain.stores[id].Transact(ctx, r)
			vres, verr := via.stores[id].Transact(ctx, r)
			if models.CodeOf(err) != models.CodeOf(verr) || !reflect.DeepEqual(res, vres) {
				t.Fatalf("round %d read %T on node %d: ReadIndex %#v, %v; via log %#v, %v", round, r, id, res, err, vres, verr)
			}
			if c := models.CodeOf(verr); verr != nil && c != models.CodeNotFound {
				t.Fatalf("round %d read %T: %v", round, r, verr)
			}
			proposed[id]++
			// The proposer answered from its own apply of the read entry:
			// the k+1-th entry after idx0, unless an election's no-op got in.
			if got, _ := via.stores[id].StateHash(); got != idx0+uint64(k+1) {
				exact = false
				if got < idx0+uint64(k+1) {
					t.Fatalf("round %d read %d answered at applied index %d, before its entry (> %d)", round, k, got, idx0+uint64(k))
				}
			}
		}
		idx1, vhash1 := via.converged(idx0 + uint64(len(reads)))
		if vhash1 != vhash {
			t.Fatalf("round %d: %d reads changed the state hash from %x to %x", round, len(reads), vhash, vhash1)
		}
		termChanged := false
		for _, s := range via.stores {
			termChanged = termChanged || s.Status().Term != term0
		}
		if termChanged {
			continue // an election appended a no-op: the count is no evidence
		}
		if !exact || idx1 != idx0+uint64(len(reads)) {
			t.Fatalf("round %d: %d reads moved the applied index from %d to %d", round, len(reads), idx0, idx1)
		}
		exactRounds++
	}
	if exactRounds < rounds/2 {
		t.Fatalf("only %d of %d rounds ran without an election", exactRounds, rounds)
	}
	// Via the log, the reads count as committed proposals of the node that
	// proposed them; ReadIndex reads never do.
	for id, s := range via.stores {
		if got := counter(t, s.metrics.proposalsCommitted); got != float64(proposed[id]) {
			t.Errorf("via-log node %d: proposals committed %v, want %d (writes and reads)", id, got, proposed[id])
		}
		if got := counter(t, plain.stores[id].metrics.proposalsCommitted); got >= float64(proposed[id]) {
			t.Errorf("ReadIndex node %d: proposals committed %v counts reads", id, got)
		}
	}
}

// TestReadsViaLogUnknownOutcomeIs503: a read through the log without a
// result (here: its context ends first) is a 503 that says what happened,
// counted as a failed read, not as a write of unknown outcome.
func TestReadsViaLogUnknownOutcomeIs503(t *testing.T) {
	c := newClusterReadsViaLog(t, 1, nil, func(uint64) bool { return true })
	s := c.stores[1]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Transact(ctx, &scd.GetUssAvailability{USS: "uss-a"})
	var me *models.Error
	if !errors.As(err, &me) || me.Code != models.CodeUnavailable || !strings.Contains(me.Message, "Raft log") ||
		!errors.Is(err, generic.ErrIndeterminate) {
		t.Fatalf("cancelled read through the log: %v, want a 503 about the log wrapping ErrIndeterminate", err)
	}
	if got := counter(t, s.metrics.readsFailed); got != 1 {
		t.Fatalf("reads failed %v, want 1", got)
	}
	if got := counter(t, s.metrics.proposalsFailed); got != 0 {
		t.Fatalf("proposals failed %v: a read counted as a write of unknown outcome", got)
	}
	// And the node still reads through the log afterwards.
	if _, err := s.Transact(context.Background(), &scd.GetUssAvailability{USS: "uss-a"}); err != nil {
		t.Fatal(err)
	}
}

// TestReadEntryRefusedWithoutReadsViaLog: a node without ReadsViaLog
// refuses a read-only operation in the log as a failed operation
// (ErrBadOperation): it goes on, and the state is unchanged.
func TestReadEntryRefusedWithoutReadsViaLog(t *testing.T) {
	c := newCluster(t, 1, nil)
	s := c.stores[1]
	w := newWorkload(8)
	for range 10 {
		op := w.op()
		res, err := s.Transact(context.Background(), op)
		w.learn(op, res, err)
	}
	_, hashBefore := s.StateHash()
	read, err := newMachine(newStateRepo(), generic.OperationOptions{}).EncodeOperation(
		&scd.QueryOperationalIntents{Caller: "uss-a", Area: models.Volume4D{Cells: []models.CellID{1, 2, 3}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.gen.Transact(ctx, read); !errors.Is(err, generic.ErrBadOperation) || !strings.Contains(err.Error(), "read-only operation") {
		t.Fatalf("read entry: %v, want ErrBadOperation about a read-only operation", err)
	}
	if _, h := s.StateHash(); h != hashBefore {
		t.Fatal("the refused read entry changed the state")
	}
	if st := s.Status(); st.Halted() || s.Err() != nil {
		t.Fatalf("the node halted or stopped: %+v, %v", st, s.Err())
	}
	op := w.op()
	res, err := s.Transact(context.Background(), op)
	w.learn(op, res, err)
	if err != nil && !isOutcome(err) {
		t.Fatalf("write after the read entry: %v", err)
	}
}

func isOutcome(err error) bool {
	var me *models.Error
	return errors.As(err, &me) && me.Code != models.CodeUnavailable
}

// TestMixedReadsViaLogClusterKeepsThePlainNode: a node without ReadsViaLog
// applies a read entry as a failed operation, while the others answer the
// read; reads change nothing, so every node keeps the same state.
func TestMixedReadsViaLogClusterKeepsThePlainNode(t *testing.T) {
	c := newClusterReadsViaLog(t, 3, nil, func(id uint64) bool { return id != 1 })
	w := newWorkload(4)
	for range 5 {
		op := w.op()
		res, err := c.stores[2].Transact(context.Background(), op)
		w.learn(op, res, err)
	}
	idx, hash := c.converged(0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.stores[2].Transact(ctx, &scd.GetUssAvailability{USS: "uss-a"}); err != nil {
		t.Fatalf("read through the log on node 2: %v", err)
	}
	if _, h := c.converged(idx + 1); h != hash {
		t.Fatalf("the read entry changed the state: %x, want %x", h, hash)
	}
	if st := c.stores[1].Status(); st.Halted() || c.stores[1].Err() != nil {
		t.Fatalf("node 1 halted or stopped: %+v %v", st, c.stores[1].Err())
	}
}
