package memstore

import (
	"slices"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
)

func TestListExpired(t *testing.T) {
	s := NewState()
	mustWrite(t, s, func(r repos.Repo) error {
		for _, n := range []int{5, 3, 1, 4, 2} {
			if err := r.UpsertOperationalIntent(ctx, oir(n, 0, 10*n, 0, 100, 1)); err != nil {
				return err
			}
		}
		if err := r.UpsertConstraint(ctx, constraint(20, 0, 10, 1)); err != nil {
			return err
		}
		for _, n := range []int{30, 31} {
			if err := r.UpsertSubscription(ctx, sub(n, 0, 10, true, false, 1)); err != nil {
				return err
			}
		}
		// OIR 3 uses subscription 31.
		o := oir(3, 0, 30, 0, 100, 1)
		o.SubscriptionID = uid(31)
		return r.UpsertOperationalIntent(ctx, o)
	})
	list := func(q repos.ExpiredQuery) []models.ID {
		return view(t, s, func(r repos.Repo) ([]models.ID, error) { return r.ListExpired(ctx, &q) })
	}
	ids := func(ns ...int) []models.ID {
		out := []models.ID{}
		for _, n := range ns {
			out = append(out, uid(n))
		}
		return out
	}
	for _, tc := range []struct {
		name string
		q    repos.ExpiredQuery
		want []models.ID
	}{
		// End strictly before the cut-off: OIR 3 ends at 30 s exactly.
		{"boundary", repos.ExpiredQuery{Kind: repos.ExpiredOperationalIntents, Before: at(30), Limit: 10}, ids(1, 2)},
		{"one ns later", repos.ExpiredQuery{Kind: repos.ExpiredOperationalIntents, Before: at(30).Add(time.Nanosecond), Limit: 10}, ids(1, 2, 3)},
		{"limit", repos.ExpiredQuery{Kind: repos.ExpiredOperationalIntents, Before: at(100), Limit: 2}, ids(1, 2)},
		{"page", repos.ExpiredQuery{Kind: repos.ExpiredOperationalIntents, Before: at(100), After: uid(2), Limit: 2}, ids(3, 4)},
		{"none", repos.ExpiredQuery{Kind: repos.ExpiredOperationalIntents, Before: at(5), Limit: 2}, ids()},
		{"constraints", repos.ExpiredQuery{Kind: repos.ExpiredConstraints, Before: at(11), Limit: 5}, ids(20)},
		{"subscriptions", repos.ExpiredQuery{Kind: repos.ExpiredSubscriptions, Before: at(11), Limit: 5}, ids(30, 31)},
		{"unreferenced", repos.ExpiredQuery{Kind: repos.ExpiredSubscriptions, Before: at(11), Unreferenced: true, Limit: 5}, ids(30)},
	} {
		if got := list(tc.q); !slices.Equal(got, tc.want) || got == nil {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	for _, bad := range []repos.ExpiredQuery{
		{Kind: 0, Before: at(1), Limit: 1},
		{Kind: repos.ExpiredOperationalIntents, Before: at(1)},
		{Kind: repos.ExpiredConstraints, Before: at(1), Unreferenced: true, Limit: 1},
	} {
		_, err := s.Apply(ctx, read(func(r repos.Repo) (any, error) { return r.ListExpired(ctx, &bad) }))
		if models.CodeOf(err) != models.CodeInternal {
			t.Errorf("%+v: got %v, want an internal error", bad, err)
		}
	}
}

// The limit keeps the lowest IDs, whatever the slot order.
func TestListExpiredKeepsLowestIDs(t *testing.T) {
	s := NewState()
	const n = 300
	mustWrite(t, s, func(r repos.Repo) error {
		for i := range n {
			k := (i*7919)%n + 1 // a permutation of 1..n
			if err := r.UpsertConstraint(ctx, constraint(k, 0, 10, 1)); err != nil {
				return err
			}
		}
		// Freed slots get reused out of ID order.
		for k := 1; k <= n; k += 3 {
			if err := r.DeleteConstraint(ctx, uid(k)); err != nil {
				return err
			}
		}
		return nil
	})
	var want []models.ID
	for k := 1; k <= n; k++ {
		if k%3 != 1 {
			want = append(want, uid(k))
		}
	}
	for _, limit := range []int{1, 7, 150, 1000} {
		got := view(t, s, func(r repos.Repo) ([]models.ID, error) {
			return r.ListExpired(ctx, &repos.ExpiredQuery{Kind: repos.ExpiredConstraints, Before: at(11), Limit: limit})
		})
		w := want[:min(limit, len(want))]
		if !slices.Equal(got, w) {
			t.Fatalf("limit %d: got %d IDs %v..., want %v...", limit, len(got), got[:min(3, len(got))], w[:min(3, len(w))])
		}
	}
}
