package sqlstore

import (
	"context"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/repos"
)

// TestQuotasSameAsMemstore runs the quota cases on both stores in lockstep:
// the same refusals, with the same message (naming the same cell).
func TestQuotasSameAsMemstore(t *testing.T) {
	l := newLockstep(t)
	now := t0
	tick := func() time.Time { now = now.Add(time.Second + 7); return now }
	sub := func(caller string, n int, cs []models.CellID, q uint32) *scd.PutSubscription {
		return &scd.PutSubscription{Caller: caller, Now: tick(), ID: uid(n),
			Extents:    models.Volume4D{Cells: cs, StartTime: ptr(now), EndTime: ptr(now.Add(time.Hour))},
			USSBaseURL: "https://" + caller + ".example", NotifyForOperationalIntents: true, MaxSubscriptionsPerCell: q}
	}
	cr := func(caller string, n int, ovn models.OVN, cs []models.CellID, q uint32) *scd.PutConstraint {
		return &scd.PutConstraint{Caller: caller, Now: tick(), ID: uid(n), OVN: ovn,
			Extents:    models.Volume4D{Cells: cs, StartTime: ptr(t0), EndTime: ptr(t0.Add(time.Hour))},
			USSBaseURL: "https://" + caller + ".example/cr", MaxEntitiesPerCell: q}
	}
	// Negative cell IDs occur (uint64 bit-cast): the lowest full cell is
	// the lowest int64 in both stores.
	cs := cells(-9, 4, 7)

	s1 := l.must(sub("uss-a", 1, cs, 2)).(scd.PutSubscriptionResult).Sub.Sub
	l.must(sub("uss-a", 2, cells(-9, 7), 2))
	l.fails(sub("uss-a", 3, cells(7, -9), 2), models.CodeQuotaExceeded)
	l.fails(sub("uss-a", 3, cells(7), 2), models.CodeQuotaExceeded)
	l.must(sub("uss-a", 3, cells(4, 5), 2))
	l.must(sub("uss-b", 4, cs, 2))
	// An update in its own cells at a lowered quota; growing is refused.
	up := sub("uss-a", 1, cs, 1)
	up.Version = s1.Version()
	s1 = l.must(up).(scd.PutSubscriptionResult).Sub.Sub
	up = sub("uss-a", 1, cells(-9, 4, 5, 7), 1)
	up.Version = s1.Version()
	l.fails(up, models.CodeQuotaExceeded)
	// Deleting frees the quota.
	l.must(&scd.DeleteSubscription{Caller: "uss-a", ID: s1.ID, Version: s1.Version()})
	l.must(sub("uss-a", 5, cells(-9, 7), 2))

	// OIRs and CRs together; an OIR with an implicit subscription.
	l.must(&scd.PutOperationalIntent{Caller: "uss-a", Now: tick(), ID: uid(10), State: models.StateAccepted,
		Extents: models.Volume4D{Cells: cells(-9), StartTime: ptr(t0), EndTime: ptr(t0.Add(time.Hour)),
			AltitudeLower: ptr(float32(0)), AltitudeUpper: ptr(float32(100))},
		USSBaseURL: "https://a.example/oir", NewSubscription: &scd.NewSubscription{USSBaseURL: "https://a.example"},
		NewSubscriptionID: uid(210), MaxEntitiesPerCell: 2})
	c1 := l.must(cr("uss-a", 20, "", cells(-9, 4), 2)).(scd.ConstraintResult).CR
	l.fails(cr("uss-a", 21, "", cells(4, -9), 2), models.CodeQuotaExceeded)
	l.must(cr("uss-a", 21, "", cells(4), 2))
	l.must(cr("uss-a", 20, c1.OVN(), cells(-9, 4), 1))
	// The implicit subscription does not count for subscriptions: cell -9
	// holds explicit 2 and 5, uss-a's quota of 3 has room for one.
	l.must(sub("uss-a", 6, cells(-9), 3))
	l.fails(sub("uss-a", 7, cells(-9), 3), models.CodeQuotaExceeded)
	// Expired entities do not count: an hour later everything above ended.
	now = now.Add(2 * time.Hour)
	l.must(sub("uss-a", 7, cells(-9), 1))
	l.must(cr("uss-a", 22, "", cells(-9, 4), 1))
}

// TestFirstFullCellEdges checks the repo method itself on both stores: an
// entity ending exactly at NotBefore counts, one ending a nanosecond before
// does not; the excepted entity does not count.
func TestFirstFullCellEdges(t *testing.T) {
	l := newLockstep(t)
	end := t0.Add(time.Hour + 123)
	for i, e := range []time.Time{end, end.Add(-1)} {
		l.must(write(func(ctx context.Context, r repos.Repo) (any, error) {
			return nil, r.UpsertSubscription(ctx, &models.Subscription{ID: uid(i + 1), Manager: "uss-a",
				USSBaseURL: "https://a.example", NotifyForOperationalIntents: true,
				StartTime: t0, EndTime: e, Cells: cells(3), UpdatedAt: t0})
		}))
	}
	ask := func(q repos.QuotaQuery) func(ctx context.Context, r repos.Repo) (any, error) {
		return func(ctx context.Context, r repos.Repo) (any, error) {
			c, full, err := r.FirstFullCell(ctx, &q)
			return [2]any{c, full}, err
		}
	}
	q := repos.QuotaQuery{Kind: repos.QuotaSubscriptions, Manager: "uss-a", Cells: cells(1, 3), NotBefore: end, Limit: 1}
	if got := l.must(read(ask(q))); got != [2]any{models.CellID(3), true} {
		t.Fatalf("ending at NotBefore: %v, want cell 3 full", got)
	}
	q.Limit = 2
	if got := l.must(read(ask(q))); got != [2]any{models.CellID(0), false} {
		t.Fatalf("one ended a nanosecond before NotBefore: %v, want not full at 2", got)
	}
	q.Limit, q.ExceptSubscription = 1, uid(1)
	if got := l.must(read(ask(q))); got != [2]any{models.CellID(0), false} {
		t.Fatalf("excepted: %v, want not full", got)
	}
	q.Kind, q.ExceptSubscription = repos.QuotaEntities, ""
	if got := l.must(read(ask(q))); got != [2]any{models.CellID(0), false} {
		t.Fatalf("entities: %v, want none", got)
	}
	q.Limit = 0
	l.fails(read(ask(q)), models.CodeInternal)
}
