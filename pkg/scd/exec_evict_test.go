package scd_test

import (
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
)

func evict(e *env, before time.Time, limit uint32) scd.EvictionResult {
	e.t.Helper()
	return must[scd.EvictionResult](e, &scd.EvictExpired{Before: before, Limit: limit})
}

func preview(e *env, before time.Time) scd.EvictionCounts {
	e.t.Helper()
	return must[scd.EvictionCounts](e, &scd.PreviewEviction{Before: before})
}

func (e *env) exists(what string, eid models.ID) bool {
	e.t.Helper()
	var err error
	switch what {
	case "oir":
		_, err = run[scd.OperationalIntentView](e, &scd.GetOperationalIntent{Caller: ussA, ID: eid})
	case "cr":
		_, err = run[*models.Constraint](e, &scd.GetConstraint{Caller: ussA, ID: eid})
	case "sub":
		_, err = e.getSub(ussA, eid)
	}
	if err != nil && models.CodeOf(err) != models.CodeNotFound {
		e.t.Fatalf("reading %s %s: %v", what, eid, err)
	}
	return err == nil
}

// An entity is expired when its end is strictly before the cut-off.
func TestEvictBoundary(t *testing.T) {
	e := newEnv(t)
	e.createOIR(ussA, id(1), nil) // ends at t0+60 min
	must[scd.ConstraintResult](e, &scd.PutConstraint{Caller: ussA, Now: e.tick(), ID: id(80),
		Extents: vol(cells(1), 0, 30, 0, 0), USSBaseURL: urlA})
	end := *at(60)

	if got := evict(e, end, 100); got.Evicted.OperationalIntents != 0 || got.Evicted.Constraints != 1 || got.Full {
		t.Fatalf("at the OIR's end: %+v, want only the constraint", got)
	}
	if !e.exists("oir", id(1)) || e.exists("cr", id(80)) {
		t.Fatal("wrong entities left after the first batch")
	}
	if got := preview(e, end.Add(time.Nanosecond)); got != (scd.EvictionCounts{OperationalIntents: 1}) {
		t.Fatalf("preview 1 ns later = %+v", got)
	}
	if got := evict(e, end.Add(time.Nanosecond), 100); got.Evicted != (scd.EvictionCounts{OperationalIntents: 1}) {
		t.Fatalf("1 ns later: %+v", got)
	}
	if e.exists("oir", id(1)) {
		t.Fatal("expired OIR still there")
	}
	// Idempotent by content: the same batch again removes nothing.
	if got := evict(e, end.Add(time.Nanosecond), 100); got.Evicted.Total() != 0 {
		t.Fatalf("second run evicted %+v", got)
	}
}

// An implicit subscription goes with the last OIR that uses it, not before.
func TestEvictImplicitSubscription(t *testing.T) {
	e := newEnv(t)
	e.createOIR(ussA, id(1), func(op *scd.PutOperationalIntent) {
		op.Extents = vol(cells(1, 2, 3), 0, 30, 0, 100)
		op.NewSubscription = &scd.NewSubscription{USSBaseURL: urlA}
		op.NewSubscriptionID = id(50)
	})
	// A second OIR on the same implicit subscription, ending later: the
	// subscription is extended to cover it.
	first := e.getOIR(id(1)).OIR
	e.createOIR(ussA, id(2), func(op *scd.PutOperationalIntent) {
		op.Key = []models.OVN{first.OVN()}
		op.SubscriptionID = id(50)
	})

	if got := preview(e, *at(45)); got != (scd.EvictionCounts{OperationalIntents: 1}) {
		t.Fatalf("preview at 45 min = %+v", got)
	}
	if got := evict(e, *at(45), 100); got.Evicted != (scd.EvictionCounts{OperationalIntents: 1}) {
		t.Fatalf("at 45 min: %+v", got)
	}
	if !e.exists("sub", id(50)) {
		t.Fatal("implicit subscription evicted while OIR 2 still uses it")
	}
	want := scd.EvictionCounts{OperationalIntents: 1, Subscriptions: 1, ImplicitReleased: 1}
	if got := preview(e, *at(61)); got != want {
		t.Fatalf("preview at 61 min = %+v, want %+v", got, want)
	}
	if got := evict(e, *at(61), 100); got.Evicted != want {
		t.Fatalf("at 61 min: %+v, want %+v", got, want)
	}
	if e.exists("sub", id(50)) || e.exists("oir", id(2)) {
		t.Fatal("entities left")
	}
}

// Subscriptions go by their own end; one that an OIR uses waits for it; a
// live subscription keeps its notification index.
func TestEvictSubscriptions(t *testing.T) {
	e := newEnv(t)
	must[scd.PutSubscriptionResult](e, e.putSub(ussA, id(60), func(op *scd.PutSubscription) {
		op.Extents.StartTime, op.Extents.EndTime = at(0), at(90)
	}))
	must[scd.PutSubscriptionResult](e, e.putSub(ussB, id(61), func(op *scd.PutSubscription) {
		op.Extents.StartTime, op.Extents.EndTime = at(0), at(300)
	}))
	e.createOIR(ussA, id(1), func(op *scd.PutOperationalIntent) { op.SubscriptionID = id(60) })
	before, err := e.getSub(ussB, id(61))
	if err != nil {
		t.Fatal(err)
	}

	// Limit 1: the OIR fills the batch; its explicit subscription, expired
	// too, waits for the next one.
	if got := evict(e, *at(100), 1); got.Evicted != (scd.EvictionCounts{OperationalIntents: 1}) || !got.Full {
		t.Fatalf("first batch: %+v", got)
	}
	if !e.exists("sub", id(60)) {
		t.Fatal("explicit subscription released with its OIR: only its own end evicts it")
	}
	if got := evict(e, *at(100), 1); got.Evicted != (scd.EvictionCounts{Subscriptions: 1}) || !got.Full {
		t.Fatalf("second batch: %+v", got)
	}
	if got := evict(e, *at(100), 1); got.Evicted.Total() != 0 || got.Full {
		t.Fatalf("third batch: %+v", got)
	}
	after, err := e.getSub(ussB, id(61))
	if err != nil {
		t.Fatal(err)
	}
	if after.Sub.NotificationIndex != before.Sub.NotificationIndex || after.Sub.Version() != before.Sub.Version() {
		t.Fatalf("live subscription changed by eviction: %+v -> %+v", before.Sub, after.Sub)
	}
}

// A batch takes at most Limit entities, lowest IDs first, OIRs before
// constraints before subscriptions.
func TestEvictBatchLimit(t *testing.T) {
	e := newEnv(t)
	for n := 5; n >= 1; n-- {
		must[scd.ConstraintResult](e, &scd.PutConstraint{Caller: ussA, Now: e.tick(), ID: id(80 + n),
			Extents: vol(cells(1), 0, 30, 0, 0), USSBaseURL: urlA})
	}
	e.createOIR(ussA, id(1), func(op *scd.PutOperationalIntent) { op.Extents = vol(cells(1), 0, 30, 0, 100) })
	if got := preview(e, *at(31)); got != (scd.EvictionCounts{OperationalIntents: 1, Constraints: 5}) {
		t.Fatalf("preview = %+v", got)
	}
	if got := evict(e, *at(31), 2); got.Evicted != (scd.EvictionCounts{OperationalIntents: 1, Constraints: 1}) || !got.Full {
		t.Fatalf("batch 1: %+v", got)
	}
	if e.exists("cr", id(81)) || !e.exists("cr", id(82)) {
		t.Fatal("batch 1 did not take the lowest constraint ID")
	}
	for i, want := range []int{2, 2, 0} {
		got := evict(e, *at(31), 2)
		if got.Evicted.Constraints != want || got.Full != (want == 2) {
			t.Fatalf("batch %d: %+v, want %d constraints", i+2, got, want)
		}
	}
}

func TestEvictBadInput(t *testing.T) {
	e := newEnv(t)
	for _, op := range []scd.Operation{
		&scd.EvictExpired{Before: t0, Limit: 0},
		&scd.EvictExpired{Before: t0, Limit: scd.MaxEvictBatch + 1},
		&scd.EvictExpired{Limit: 10},
		&scd.PreviewEviction{},
	} {
		_, err := e.st.Transact(t.Context(), op)
		wantCode(t, err, models.CodeBadRequest)
	}
}
