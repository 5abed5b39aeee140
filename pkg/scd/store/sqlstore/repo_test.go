package sqlstore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
)

// The repo tests drive every Repo method through Transact on both stores in
// lockstep (equal answers) and also check the answers themselves, so that a
// bug shared by both stores is caught too.

func sub(n int, cs []models.CellID, start, end time.Time, forOIRs, forCRs bool) *models.Subscription {
	return &models.Subscription{ID: uid(n), Manager: "uss-a", USSBaseURL: "https://a.example/sub",
		NotifyForOperationalIntents: forOIRs, NotifyForConstraints: forCRs,
		StartTime: start, EndTime: end, Cells: cs, UpdatedAt: at(time.Duration(n) * time.Nanosecond)}
}

func oir(n int, subID models.ID, cs []models.CellID, start, end time.Time, lo, hi float32) *models.OperationalIntent {
	return &models.OperationalIntent{ID: uid(n), Manager: "uss-b", Version: 1, State: models.StateAccepted,
		USSBaseURL: "https://b.example/oir", SubscriptionID: subID, StartTime: start, EndTime: end,
		AltitudeLower: lo, AltitudeUpper: hi, Cells: cs, UpdatedAt: at(time.Duration(n) * time.Microsecond)}
}

func upsertSub(s *models.Subscription) *funcOp {
	return write(func(ctx context.Context, r repos.Repo) (any, error) {
		c := *s
		return nil, r.UpsertSubscription(ctx, &c)
	})
}

func upsertOIR(o *models.OperationalIntent) *funcOp {
	return write(func(ctx context.Context, r repos.Repo) (any, error) {
		c := *o
		return nil, r.UpsertOperationalIntent(ctx, &c)
	})
}

func getOIR(id models.ID) *funcOp {
	return read(func(ctx context.Context, r repos.Repo) (any, error) { return r.GetOperationalIntent(ctx, id) })
}

func getSub(id models.ID) *funcOp {
	return read(func(ctx context.Context, r repos.Repo) (any, error) { return r.GetSubscription(ctx, id) })
}

func searchOIRs(v models.Volume4D) *funcOp {
	return read(func(ctx context.Context, r repos.Repo) (any, error) { return r.SearchOperationalIntents(ctx, &v) })
}

func searchSubs(v models.Volume4D) *funcOp {
	return read(func(ctx context.Context, r repos.Repo) (any, error) { return r.SearchSubscriptions(ctx, &v) })
}

func increment(kind models.SubscriberKind, v models.Volume4D) *funcOp {
	return write(func(ctx context.Context, r repos.Repo) (any, error) {
		return r.IncrementNotificationIndices(ctx, kind, &v)
	})
}

func ids[T any](list []*T, id func(*T) models.ID) []models.ID {
	out := []models.ID{}
	for _, e := range list {
		out = append(out, id(e))
	}
	return out
}

func oirIDs(v any) []models.ID {
	return ids(v.([]*models.OperationalIntent), func(o *models.OperationalIntent) models.ID { return o.ID })
}

func subIDs(v any) []models.ID {
	return ids(v.([]*models.Subscription), func(s *models.Subscription) models.ID { return s.ID })
}

func wantIDs(t *testing.T, what string, got []models.ID, want ...models.ID) {
	t.Helper()
	if want == nil {
		want = []models.ID{}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func TestRepoOperationalIntentsAndSubscriptions(t *testing.T) {
	l := newLockstep(t)
	// Instants with nanoseconds below the microsecond, in a non-UTC zone:
	// they must come back as the same instant, to the nanosecond, in UTC.
	zone := time.FixedZone("UTC+2", 2*3600)
	s1 := sub(1, cells(3, 1, 2, 2), at(0).In(zone), at(time.Hour+789*time.Nanosecond), true, false)
	s2 := sub(2, cells(3, 4), at(2*time.Hour), at(3*time.Hour), false, true)
	s3 := sub(3, cells(-10), at(0), at(time.Hour), true, true)
	for _, s := range []*models.Subscription{s1, s2, s3} {
		l.must(upsertSub(s))
	}
	got := l.must(getSub(s1.ID)).(*models.Subscription)
	if !slices.Equal(got.Cells, cells(1, 2, 3)) || !got.StartTime.Equal(s1.StartTime) ||
		got.EndTime != s1.EndTime || got.StartTime.Location() != time.UTC || got.Version() != s1.Version() {
		t.Fatalf("subscription read back as %+v, stored %+v", got, s1)
	}
	if l.must(getSub(uid(99))).(*models.Subscription) != nil || l.must(getSub("not-a-uuid")).(*models.Subscription) != nil {
		t.Fatal("absent subscription found")
	}

	o1 := oir(11, s1.ID, cells(2, 3), at(10*time.Minute+1), at(20*time.Minute+999), 0, 100)
	o1.PastOVNs = []models.OVN{"first-ovn-of-o1-xxxxx", "second-ovn-of-o1-xxxx"}
	o1.RequestedOVN = models.OVN(string(o1.ID) + "_requested")
	o2 := oir(12, "", cells(3), at(0), at(2*time.Hour), 200, 300)
	o3 := oir(13, "", cells(5), at(0), at(time.Hour), 0, 50)
	for _, o := range []*models.OperationalIntent{o1, o2, o3} {
		l.must(upsertOIR(o))
	}
	g := l.must(getOIR(o1.ID)).(*models.OperationalIntent)
	if g.OVN() != o1.OVN() || !slices.Equal(g.PastOVNs, o1.PastOVNs) || g.SubscriptionID != s1.ID || g.EndTime != o1.EndTime {
		t.Fatalf("OIR read back as %+v, stored %+v", g, o1)
	}
	if l.must(getOIR(o2.ID)).(*models.OperationalIntent).SubscriptionID != "" {
		t.Fatal("OIR without subscription read back with one")
	}
	// An OIR may only reference an existing subscription (foreign key).
	l.fails(upsertOIR(oir(14, uid(98), cells(1), at(0), at(time.Hour), 0, 1)), models.CodeInternal)
	l.fails(upsertOIR(oir(14, "bad", cells(1), at(0), at(time.Hour), 0, 1)), models.CodeInternal)

	search := func(v models.Volume4D, want ...models.ID) {
		t.Helper()
		wantIDs(t, "search OIRs", oirIDs(l.must(searchOIRs(v))), want...)
	}
	search(models.Volume4D{Cells: cells(3)}, o1.ID, o2.ID)
	search(models.Volume4D{Cells: cells(3, 5, 77)}, o1.ID, o2.ID, o3.ID)
	search(models.Volume4D{Cells: cells(77)})
	// Altitude, inclusive at both ends.
	search(models.Volume4D{Cells: cells(3), AltitudeLower: ptr[float32](100)}, o1.ID, o2.ID)
	search(models.Volume4D{Cells: cells(3), AltitudeLower: ptr[float32](100.5), AltitudeUpper: ptr[float32](199.5)})
	search(models.Volume4D{Cells: cells(3), AltitudeUpper: ptr[float32](200)}, o1.ID, o2.ID)
	search(models.Volume4D{Cells: cells(3), AltitudeLower: ptr[float32](150)}, o2.ID)
	// Time, inclusive, to the nanosecond.
	search(models.Volume4D{Cells: cells(2), StartTime: ptr(o1.EndTime)}, o1.ID)
	search(models.Volume4D{Cells: cells(2), StartTime: ptr(o1.EndTime.Add(1))})
	search(models.Volume4D{Cells: cells(2), EndTime: ptr(o1.StartTime)}, o1.ID)
	search(models.Volume4D{Cells: cells(2), EndTime: ptr(o1.StartTime.Add(-1))})
	search(models.Volume4D{Cells: cells(2, 3), StartTime: ptr(at(30 * time.Minute)), EndTime: ptr(at(40 * time.Minute))}, o2.ID)
	l.fails(searchOIRs(models.Volume4D{}), models.CodeBadRequest)

	deps := func(id models.ID) *funcOp {
		return read(func(ctx context.Context, r repos.Repo) (any, error) { return r.GetDependentOperationalIntents(ctx, id) })
	}
	wantIDs(t, "dependents of s1", l.must(deps(s1.ID)).([]models.ID), o1.ID)
	wantIDs(t, "dependents of s2", l.must(deps(s2.ID)).([]models.ID))

	wantIDs(t, "search subs", subIDs(l.must(searchSubs(models.Volume4D{Cells: cells(3)}))), s1.ID, s2.ID)
	wantIDs(t, "search subs", subIDs(l.must(searchSubs(models.Volume4D{Cells: cells(3), StartTime: ptr(at(150 * time.Minute))}))), s2.ID)
	// Subscriptions ignore altitude (§4).
	wantIDs(t, "search subs", subIDs(l.must(searchSubs(models.Volume4D{Cells: cells(-10), AltitudeLower: ptr[float32](1e6)}))), s3.ID)

	// Increments: only subscriptions with the kind's flag, +1 each, version
	// unchanged.
	inc := l.must(increment(models.NotifyOperationalIntents, models.Volume4D{Cells: cells(3, -10)})).([]*models.Subscription)
	wantIDs(t, "incremented for OIRs", subIDs(inc), s1.ID, s3.ID)
	inc = l.must(increment(models.NotifyConstraints, models.Volume4D{Cells: cells(1, 4, -10), EndTime: ptr(at(90 * time.Minute))})).([]*models.Subscription)
	wantIDs(t, "incremented for constraints", subIDs(inc), s3.ID)
	if inc[0].NotificationIndex != 2 {
		t.Fatalf("s3 index %d after two increments, want 2", inc[0].NotificationIndex)
	}
	if g := l.must(getSub(s3.ID)).(*models.Subscription); g.NotificationIndex != 2 || g.Version() != s3.Version() {
		t.Fatalf("s3 after increments: index %d version %s, want 2 and %s", g.NotificationIndex, g.Version(), s3.Version())
	}
	l.fails(increment(models.SubscriberKind(7), models.Volume4D{Cells: cells(3)}), models.CodeInternal)

	// Replacing a subscription writes every field, the index included.
	s1b := *s1
	s1b.NotificationIndex, s1b.Implicit, s1b.Cells, s1b.UpdatedAt = 40, true, cells(2, 3, 9), at(time.Minute)
	l.must(upsertSub(&s1b))
	if g := l.must(getSub(s1.ID)).(*models.Subscription); g.NotificationIndex != 40 || !g.Implicit || !slices.Equal(g.Cells, s1b.Cells) {
		t.Fatalf("replaced subscription read back as %+v", g)
	}

	// Deletes: absent is NotFound; a subscription takes its OIRs along.
	del := func(fn func(context.Context, repos.Repo) error) *funcOp {
		return write(func(ctx context.Context, r repos.Repo) (any, error) { return nil, fn(ctx, r) })
	}
	l.must(del(func(ctx context.Context, r repos.Repo) error { return r.DeleteOperationalIntent(ctx, o3.ID) }))
	l.fails(del(func(ctx context.Context, r repos.Repo) error { return r.DeleteOperationalIntent(ctx, o3.ID) }), models.CodeNotFound)
	l.fails(del(func(ctx context.Context, r repos.Repo) error { return r.DeleteOperationalIntent(ctx, "x") }), models.CodeNotFound)
	l.must(del(func(ctx context.Context, r repos.Repo) error { return r.DeleteSubscription(ctx, s1.ID) }))
	if l.must(getOIR(o1.ID)).(*models.OperationalIntent) != nil {
		t.Fatal("deleting a subscription left its dependent OIR")
	}
	l.fails(del(func(ctx context.Context, r repos.Repo) error { return r.DeleteSubscription(ctx, s1.ID) }), models.CodeNotFound)

	// A read-only operation cannot write.
	l.fails(&funcOp{ro: true, fn: upsertSub(s2).fn}, models.CodeInternal)

	// An operation that fails leaves nothing behind.
	l.fails(write(func(ctx context.Context, r repos.Repo) (any, error) {
		if err := r.UpsertSubscription(ctx, sub(50, cells(1), at(0), at(time.Hour), true, false)); err != nil {
			return nil, err
		}
		return nil, models.Errorf(models.CodeBadRequest, "changed my mind")
	}), models.CodeBadRequest)
	if l.must(getSub(uid(50))).(*models.Subscription) != nil {
		t.Fatal("a failed operation's write persisted")
	}
}

func TestRepoExtremeInstants(t *testing.T) {
	l := newLockstep(t)
	// RFC 3339 admits years 0000-9999: far outside what Unix nanoseconds in
	// an int64 can hold, and (before 1970) negative.
	early := time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)
	late := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	pre1970 := time.Date(1900, 6, 1, 0, 0, 0, 123456789, time.UTC)
	o := oir(1, "", cells(1), early, late, -1000, 1e9)
	o.UpdatedAt = pre1970
	l.must(upsertOIR(o))
	g := l.must(getOIR(o.ID)).(*models.OperationalIntent)
	if g.StartTime != early || g.EndTime != late || g.UpdatedAt != pre1970 {
		t.Fatalf("instants read back as %v %v %v", g.StartTime, g.EndTime, g.UpdatedAt)
	}
	wantIDs(t, "search at the end of time", oirIDs(l.must(searchOIRs(models.Volume4D{Cells: cells(1), StartTime: ptr(late)}))), o.ID)
	wantIDs(t, "search after the end of time", oirIDs(l.must(searchOIRs(models.Volume4D{Cells: cells(1), StartTime: ptr(late.Add(1))}))))
	wantIDs(t, "search before 1970", oirIDs(l.must(searchOIRs(models.Volume4D{Cells: cells(1), EndTime: ptr(pre1970)}))), o.ID)
}

func TestRepoConstraintsAndAvailability(t *testing.T) {
	l := newLockstep(t)
	c1 := &models.Constraint{ID: uid(1), Manager: "uss-c", Version: 1, USSBaseURL: "https://c.example",
		StartTime: at(0), EndTime: at(time.Hour), Cells: cells(1, 2), UpdatedAt: at(1)}
	c2 := &models.Constraint{ID: uid(2), Manager: "uss-c", Version: 3, USSBaseURL: "https://c.example",
		StartTime: at(0), EndTime: at(time.Hour), Cells: cells(2), UpdatedAt: at(2),
		AltitudeLower: ptr[float32](10), AltitudeUpper: ptr[float32](20.5)}
	for _, c := range []*models.Constraint{c1, c2} {
		l.must(write(func(ctx context.Context, r repos.Repo) (any, error) {
			cp := *c
			return nil, r.UpsertConstraint(ctx, &cp)
		}))
	}
	get := func(id models.ID) *models.Constraint {
		return l.must(read(func(ctx context.Context, r repos.Repo) (any, error) { return r.GetConstraint(ctx, id) })).(*models.Constraint)
	}
	if g := get(c2.ID); g.AltitudeLower == nil || *g.AltitudeUpper != 20.5 || g.OVN() != c2.OVN() || g.Version != 3 {
		t.Fatalf("constraint read back as %+v", g)
	}
	if g := get(c1.ID); g.AltitudeLower != nil || g.AltitudeUpper != nil {
		t.Fatalf("constraint without altitudes read back with %v %v", g.AltitudeLower, g.AltitudeUpper)
	}
	if get(uid(3)) != nil {
		t.Fatal("absent constraint found")
	}
	search := func(v models.Volume4D, want ...models.ID) {
		t.Helper()
		res := l.must(read(func(ctx context.Context, r repos.Repo) (any, error) { return r.SearchConstraints(ctx, &v) }))
		wantIDs(t, "search constraints", ids(res.([]*models.Constraint), func(c *models.Constraint) models.ID { return c.ID }), want...)
	}
	// Altitude is ignored for constraints (§4).
	search(models.Volume4D{Cells: cells(2), AltitudeLower: ptr[float32](1000)}, c1.ID, c2.ID)
	search(models.Volume4D{Cells: cells(1), StartTime: ptr(at(time.Hour))}, c1.ID)
	search(models.Volume4D{Cells: cells(1), StartTime: ptr(at(time.Hour + 1))})
	delCR := func(id models.ID) *funcOp {
		return write(func(ctx context.Context, r repos.Repo) (any, error) { return nil, r.DeleteConstraint(ctx, id) })
	}
	l.must(delCR(c1.ID))
	l.fails(delCR(c1.ID), models.CodeNotFound)
	search(models.Volume4D{Cells: cells(1, 2)}, c2.ID)

	getAv := func(uss string) *models.UssAvailability {
		return l.must(read(func(ctx context.Context, r repos.Repo) (any, error) { return r.GetUssAvailability(ctx, uss) })).(*models.UssAvailability)
	}
	putAv := func(a models.UssAvailability) {
		l.must(write(func(ctx context.Context, r repos.Repo) (any, error) { return nil, r.UpsertUssAvailability(ctx, &a) }))
	}
	if getAv("uss-c") != nil {
		t.Fatal("absent availability found")
	}
	putAv(models.UssAvailability{USS: "uss-c", Availability: models.AvailabilityDown, UpdatedAt: at(5)})
	putAv(models.UssAvailability{USS: "uss-d", Availability: models.AvailabilityNormal, UpdatedAt: at(6)})
	putAv(models.UssAvailability{USS: "uss-c", Availability: models.AvailabilityNormal, UpdatedAt: at(7)})
	if a := getAv("uss-c"); a.Availability != models.AvailabilityNormal || a.UpdatedAt != at(7) {
		t.Fatalf("availability read back as %+v", a)
	}
}

func TestRepoSearchLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 10 001 subscriptions")
	}
	l := newLockstep(t)
	l.must(write(func(ctx context.Context, r repos.Repo) (any, error) {
		for i := range repos.MaxSearchResults + 1 {
			// Written in descending ID order: the cap must keep the
			// smallest IDs, as the memstore does, not the first written.
			if err := r.UpsertSubscription(ctx, sub(repos.MaxSearchResults+1-i, cells(1), at(0), at(time.Hour), true, false)); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}))
	got := subIDs(l.must(searchSubs(models.Volume4D{Cells: cells(1)})))
	if len(got) != repos.MaxSearchResults || got[0] != uid(1) || got[len(got)-1] != uid(repos.MaxSearchResults) {
		t.Fatalf("search returned %d subscriptions from %s to %s", len(got), got[0], got[len(got)-1])
	}
	// Increments are not capped (§9): every match gets +1.
	inc := l.must(increment(models.NotifyOperationalIntents, models.Volume4D{Cells: cells(1)})).([]*models.Subscription)
	if len(inc) != repos.MaxSearchResults+1 {
		t.Fatalf("incremented %d subscriptions, want %d", len(inc), repos.MaxSearchResults+1)
	}
}
