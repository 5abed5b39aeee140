package memstore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
)

func TestOperationalIntentCRUD(t *testing.T) {
	s := NewState()
	in := oir(1, 0, 100, 10, 20, 3, 1, 2) // unsorted cells: stored as a set
	cellsBefore := slices.Clone(in.Cells)
	mustWrite(t, s, func(r repos.Repo) error { return r.UpsertOperationalIntent(ctx, in) })
	if !slices.Equal(in.Cells, cellsBefore) {
		t.Fatalf("caller's cells modified: %v", in.Cells)
	}

	got := view(t, s, func(r repos.Repo) (*models.OperationalIntent, error) { return r.GetOperationalIntent(ctx, uid(1)) })
	if got == nil || got.ID != uid(1) || got.Manager != "uss1" || !slices.Equal(got.Cells, []models.CellID{1, 2, 3}) ||
		!got.StartTime.Equal(at(0)) || got.AltitudeUpper != 20 {
		t.Fatalf("Get = %+v", got)
	}
	// A returned entity is a copy.
	got.Manager = "mallory"
	again := view(t, s, func(r repos.Repo) (*models.OperationalIntent, error) { return r.GetOperationalIntent(ctx, uid(1)) })
	if again.Manager != "uss1" {
		t.Fatal("modifying a returned OIR changed the store")
	}

	// Replace: new cells are re-indexed, old ones dropped.
	upd := oir(1, 0, 100, 10, 20, 5)
	upd.Version = 2
	mustWrite(t, s, func(r repos.Repo) error { return r.UpsertOperationalIntent(ctx, upd) })
	for cell, want := range map[models.CellID]int{1: 0, 3: 0, 5: 1} {
		res := view(t, s, func(r repos.Repo) ([]*models.OperationalIntent, error) {
			return r.SearchOperationalIntents(ctx, vol(nil, nil, nil, nil, cell))
		})
		if len(res) != want {
			t.Errorf("cell %d: %d results, want %d", cell, len(res), want)
		}
	}
	if n := s.LenOperationalIntents(); n != 1 {
		t.Fatalf("Len = %d", n)
	}

	mustWrite(t, s, func(r repos.Repo) error { return r.DeleteOperationalIntent(ctx, uid(1)) })
	if g := view(t, s, func(r repos.Repo) (*models.OperationalIntent, error) { return r.GetOperationalIntent(ctx, uid(1)) }); g != nil {
		t.Fatalf("Get after delete = %+v", g)
	}
	_, err := s.Apply(ctx, write(func(r repos.Repo) error { return r.DeleteOperationalIntent(ctx, uid(1)) }))
	if models.CodeOf(err) != models.CodeNotFound {
		t.Fatalf("delete absent: %v, want NotFound", err)
	}
	_, err = s.Apply(ctx, write(func(r repos.Repo) error { return r.UpsertOperationalIntent(ctx, nil) }))
	if err == nil {
		t.Fatal("upsert nil OIR succeeded")
	}
}

func TestSearchOperationalIntentsMatching(t *testing.T) {
	s := NewState()
	// Stored: time [100 s, 200 s], altitude [50, 150], cells {10, 20, 30}.
	mustWrite(t, s, func(r repos.Repo) error { return r.UpsertOperationalIntent(ctx, oir(1, 100, 200, 50, 150, 10, 20, 30)) })
	ns := time.Nanosecond
	cases := []struct {
		name string
		v    *models.Volume4D
		want bool
	}{
		{"shared cell, no bounds", vol(nil, nil, nil, nil, 20), true},
		{"no shared cell", vol(nil, nil, nil, nil, 11, 40), false},
		{"query ends at entity start (inclusive)", vol(nil, tp(at(100)), nil, nil, 10), true},
		{"query ends just before entity start", vol(nil, tp(at(100).Add(-ns)), nil, nil, 10), false},
		{"query starts at entity end (inclusive)", vol(tp(at(200)), nil, nil, nil, 10), true},
		{"query starts just after entity end", vol(tp(at(200).Add(ns)), nil, nil, nil, 10), false},
		{"query inside", vol(tp(at(150)), tp(at(160)), nil, nil, 30), true},
		{"query covers", vol(tp(at(0)), tp(at(1000)), nil, nil, 30), true},
		{"query lower = entity upper (inclusive)", vol(nil, nil, fp(150), nil, 10), true},
		{"query lower above entity upper", vol(nil, nil, fp(150.01), nil, 10), false},
		{"query upper = entity lower (inclusive)", vol(nil, nil, nil, fp(50), 10), true},
		{"query upper below entity lower", vol(nil, nil, nil, fp(49.99), 10), false},
		{"altitude window inside", vol(nil, nil, fp(60), fp(70), 10), true},
		{"altitude window below", vol(nil, nil, fp(0), fp(10), 10), false},
		{"all bounds overlapping", vol(tp(at(200)), tp(at(300)), fp(150), fp(400), 30, 10), true},
		{"unsorted duplicate query cells", vol(nil, nil, nil, nil, 99, 30, 10, 30), true},
	}
	for _, c := range cases {
		got := view(t, s, func(r repos.Repo) ([]*models.OperationalIntent, error) { return r.SearchOperationalIntents(ctx, c.v) })
		if (len(got) == 1) != c.want || len(got) > 1 {
			t.Errorf("%s: got %v, want match=%v", c.name, oirIDs(got), c.want)
		}
	}
	for _, v := range []*models.Volume4D{nil, vol(nil, nil, nil, nil)} {
		_, err := s.Apply(ctx, read(func(r repos.Repo) (any, error) { return r.SearchOperationalIntents(ctx, v) }))
		if models.CodeOf(err) != models.CodeBadRequest {
			t.Errorf("search without cells: %v, want BadRequest", err)
		}
	}
}

// Subscriptions and constraints match on cells and time only (spec §4).
func TestSubscriptionAndConstraintSearchIgnoreAltitude(t *testing.T) {
	s := NewState()
	mustWrite(t, s, func(r repos.Repo) error {
		if err := r.UpsertSubscription(ctx, sub(1, 100, 200, true, false, 10, 20)); err != nil {
			return err
		}
		return r.UpsertConstraint(ctx, constraint(2, 100, 200, 10, 20)) // altitude 0..100
	})
	cases := []struct {
		name string
		v    *models.Volume4D
		want bool
	}{
		{"altitude far above", vol(nil, nil, fp(5000), fp(6000), 10), true},
		{"time touching end", vol(tp(at(200)), tp(at(300)), nil, nil, 20), true},
		{"time touching start", vol(tp(at(0)), tp(at(100)), nil, nil, 20), true},
		{"time after", vol(tp(at(201)), nil, fp(0), fp(10), 20), false},
		{"time before", vol(nil, tp(at(99)), nil, nil, 20), false},
		{"other cell", vol(nil, nil, nil, nil, 30), false},
	}
	for _, c := range cases {
		subs := view(t, s, func(r repos.Repo) ([]*models.Subscription, error) { return r.SearchSubscriptions(ctx, c.v) })
		crs := view(t, s, func(r repos.Repo) ([]*models.Constraint, error) { return r.SearchConstraints(ctx, c.v) })
		if (len(subs) == 1) != c.want || (len(crs) == 1) != c.want {
			t.Errorf("%s: subs %v, constraints %v, want match=%v", c.name, subIDs(subs), crIDs(crs), c.want)
		}
	}
	for _, search := range []func(r repos.Repo) (any, error){
		func(r repos.Repo) (any, error) { return r.SearchSubscriptions(ctx, vol(nil, nil, nil, nil)) },
		func(r repos.Repo) (any, error) { return r.SearchConstraints(ctx, nil) },
	} {
		if _, err := s.Apply(ctx, read(search)); models.CodeOf(err) != models.CodeBadRequest {
			t.Errorf("search without cells: %v, want BadRequest", err)
		}
	}
}

func TestSearchDeduplicatesAndSortsByID(t *testing.T) {
	s := NewState()
	mustWrite(t, s, func(r repos.Repo) error {
		for _, n := range []int{5, 3, 9, 1} {
			if err := r.UpsertOperationalIntent(ctx, oir(n, 0, 10, 0, 10, 1, 2, 3, 4, models.CellID(100+n))); err != nil {
				return err
			}
		}
		return nil
	})
	got := view(t, s, func(r repos.Repo) ([]*models.OperationalIntent, error) {
		return r.SearchOperationalIntents(ctx, vol(nil, nil, nil, nil, 4, 2, 3, 1, 105))
	})
	if want := []models.ID{uid(1), uid(3), uid(5), uid(9)}; !slices.Equal(oirIDs(got), want) {
		t.Fatalf("got %v, want %v", oirIDs(got), want)
	}
}

func TestSearchCappedAtMaxResults(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 10,001 OIRs")
	}
	s := NewState()
	mustWrite(t, s, func(r repos.Repo) error {
		for n := range repos.MaxSearchResults + 1 {
			if err := r.UpsertOperationalIntent(ctx, oir(n, 0, 10, 0, 10, 7)); err != nil {
				return err
			}
		}
		return nil
	})
	got := view(t, s, func(r repos.Repo) ([]*models.OperationalIntent, error) {
		return r.SearchOperationalIntents(ctx, vol(nil, nil, nil, nil, 7))
	})
	// The cap keeps the first results in ID order, so every replica returns
	// the same ones.
	if len(got) != repos.MaxSearchResults || got[0].ID != uid(0) || got[len(got)-1].ID != uid(repos.MaxSearchResults-1) {
		t.Fatalf("got %d results from %v to %v", len(got), got[0].ID, got[len(got)-1].ID)
	}
}

func TestIncrementNotificationIndices(t *testing.T) {
	s := NewState()
	mustWrite(t, s, func(r repos.Repo) error {
		for _, x := range []*models.Subscription{
			sub(1, 0, 100, true, false, 1, 2), // OIR notifications
			sub(2, 0, 100, false, true, 1, 2), // constraint notifications
			sub(3, 0, 100, true, true, 2, 3),  // both
			sub(4, 200, 300, true, true, 1),   // other time
			sub(5, 0, 100, true, true, 9),     // other cell
		} {
			if err := r.UpsertSubscription(ctx, x); err != nil {
				return err
			}
		}
		return nil
	})
	before := view(t, s, func(r repos.Repo) (*models.Subscription, error) { return r.GetSubscription(ctx, uid(1)) })

	// A volume overlapping sub 3 in two cells still increments it once.
	v := vol(tp(at(50)), tp(at(100)), fp(0), fp(1), 1, 2, 3)
	res, err := s.Apply(ctx, funcOp{fn: func(_ context.Context, r repos.Repo) (any, error) {
		return r.IncrementNotificationIndices(ctx, models.NotifyOperationalIntents, v)
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := res.([]*models.Subscription)
	if !slices.Equal(subIDs(got), []models.ID{uid(1), uid(3)}) || got[0].NotificationIndex != 1 || got[1].NotificationIndex != 1 {
		t.Fatalf("OIR increment returned %+v", got)
	}
	got[0].NotificationIndex = 77 // the result is the caller's
	res, err = s.Apply(ctx, funcOp{fn: func(_ context.Context, r repos.Repo) (any, error) {
		return r.IncrementNotificationIndices(ctx, models.NotifyConstraints, v)
	}})
	if err != nil {
		t.Fatal(err)
	}
	got = res.([]*models.Subscription)
	if !slices.Equal(subIDs(got), []models.ID{uid(2), uid(3)}) || got[0].NotificationIndex != 1 || got[1].NotificationIndex != 2 {
		t.Fatalf("constraint increment returned %+v", got)
	}

	want := map[int]int32{1: 1, 2: 1, 3: 2, 4: 0, 5: 0}
	for n, idx := range want {
		sb := view(t, s, func(r repos.Repo) (*models.Subscription, error) { return r.GetSubscription(ctx, uid(n)) })
		if sb.NotificationIndex != idx {
			t.Errorf("sub %d index %d, want %d", n, sb.NotificationIndex, idx)
		}
	}
	after := view(t, s, func(r repos.Repo) (*models.Subscription, error) { return r.GetSubscription(ctx, uid(1)) })
	if !after.UpdatedAt.Equal(before.UpdatedAt) || after.Version() != before.Version() {
		t.Error("increment changed UpdatedAt/version (spec §3.6)")
	}

	for _, bad := range []func(r repos.Repo) error{
		func(r repos.Repo) error {
			_, err := r.IncrementNotificationIndices(ctx, models.SubscriberKind(7), v)
			return err
		},
		func(r repos.Repo) error {
			_, err := r.IncrementNotificationIndices(ctx, models.NotifyConstraints, vol(nil, nil, nil, nil))
			return err
		},
	} {
		if _, err := s.Apply(ctx, write(bad)); err == nil {
			t.Error("bad increment succeeded")
		}
	}
}

func TestSubscriptionCRUDAndDependents(t *testing.T) {
	s := NewState()
	// An OIR may only reference an existing subscription (SQL foreign key).
	withSub := oir(10, 0, 100, 0, 10, 1)
	withSub.SubscriptionID = uid(1)
	if _, err := s.Apply(ctx, write(func(r repos.Repo) error { return r.UpsertOperationalIntent(ctx, withSub) })); err == nil {
		t.Fatal("OIR with unknown subscription accepted")
	}

	mustWrite(t, s, func(r repos.Repo) error {
		if err := r.UpsertSubscription(ctx, sub(1, 0, 100, true, false, 1)); err != nil {
			return err
		}
		if err := r.UpsertSubscription(ctx, sub(2, 0, 100, true, false, 1)); err != nil {
			return err
		}
		for _, n := range []int{12, 10, 11} {
			o := oir(n, 0, 100, 0, 10, 1)
			o.SubscriptionID = uid(1)
			if err := r.UpsertOperationalIntent(ctx, o); err != nil {
				return err
			}
		}
		return nil
	})
	deps := func(n int) []models.ID {
		return view(t, s, func(r repos.Repo) ([]models.ID, error) { return r.GetDependentOperationalIntents(ctx, uid(n)) })
	}
	if got := deps(1); !slices.Equal(got, []models.ID{uid(10), uid(11), uid(12)}) {
		t.Fatalf("dependents = %v", got)
	}
	if got := deps(2); got == nil || len(got) != 0 {
		t.Fatalf("dependents of sub 2 = %#v, want empty non-nil", got)
	}

	// Moving OIR 11 to sub 2 and deleting OIR 12 update the index.
	mustWrite(t, s, func(r repos.Repo) error {
		o := oir(11, 0, 100, 0, 10, 1)
		o.SubscriptionID = uid(2)
		if err := r.UpsertOperationalIntent(ctx, o); err != nil {
			return err
		}
		return r.DeleteOperationalIntent(ctx, uid(12))
	})
	if a, b := deps(1), deps(2); !slices.Equal(a, []models.ID{uid(10)}) || !slices.Equal(b, []models.ID{uid(11)}) {
		t.Fatalf("after move: %v %v", a, b)
	}

	// Update keeps fields as given.
	upd := sub(1, 0, 100, true, true, 1, 2)
	upd.NotificationIndex, upd.Implicit = 42, true
	mustWrite(t, s, func(r repos.Repo) error { return r.UpsertSubscription(ctx, upd) })
	got := view(t, s, func(r repos.Repo) (*models.Subscription, error) { return r.GetSubscription(ctx, uid(1)) })
	if got.NotificationIndex != 42 || !got.Implicit || !got.NotifyForConstraints || !slices.Equal(got.Cells, []models.CellID{1, 2}) {
		t.Fatalf("after update: %+v", got)
	}

	// Deleting a subscription cascades to its dependents like the SQL schema.
	mustWrite(t, s, func(r repos.Repo) error { return r.DeleteSubscription(ctx, uid(1)) })
	if o := view(t, s, func(r repos.Repo) (*models.OperationalIntent, error) { return r.GetOperationalIntent(ctx, uid(10)) }); o != nil {
		t.Fatal("dependent OIR survived its subscription")
	}
	if g := view(t, s, func(r repos.Repo) (*models.Subscription, error) { return r.GetSubscription(ctx, uid(1)) }); g != nil {
		t.Fatal("deleted subscription still returned")
	}
	if _, err := s.Apply(ctx, write(func(r repos.Repo) error { return r.DeleteSubscription(ctx, uid(1)) })); models.CodeOf(err) != models.CodeNotFound {
		t.Fatalf("delete absent subscription: %v", err)
	}
}

func TestConstraintCRUD(t *testing.T) {
	s := NewState()
	c := constraint(1, 0, 100, 4)
	c.AltitudeUpper = nil
	mustWrite(t, s, func(r repos.Repo) error { return r.UpsertConstraint(ctx, c) })
	got := view(t, s, func(r repos.Repo) (*models.Constraint, error) { return r.GetConstraint(ctx, uid(1)) })
	if got == nil || got.AltitudeUpper != nil || *got.AltitudeLower != 0 || got.Manager != "uss3" {
		t.Fatalf("Get = %+v", got)
	}
	// Altitude pointers are not shared with the writer or readers.
	*c.AltitudeLower = 999
	*got.AltitudeLower = 998
	if again := view(t, s, func(r repos.Repo) (*models.Constraint, error) { return r.GetConstraint(ctx, uid(1)) }); *again.AltitudeLower != 0 {
		t.Fatalf("stored altitude changed through a shared pointer: %v", *again.AltitudeLower)
	}
	mustWrite(t, s, func(r repos.Repo) error { return r.DeleteConstraint(ctx, uid(1)) })
	if got := view(t, s, func(r repos.Repo) (*models.Constraint, error) { return r.GetConstraint(ctx, uid(1)) }); got != nil {
		t.Fatal("constraint survived delete")
	}
	if _, err := s.Apply(ctx, write(func(r repos.Repo) error { return r.DeleteConstraint(ctx, uid(1)) })); models.CodeOf(err) != models.CodeNotFound {
		t.Fatalf("delete absent constraint: %v", err)
	}
}

func TestUssAvailability(t *testing.T) {
	s := NewState()
	if a := view(t, s, func(r repos.Repo) (*models.UssAvailability, error) { return r.GetUssAvailability(ctx, "uss1") }); a != nil {
		t.Fatalf("absent record = %+v", a)
	}
	local := time.FixedZone("x", 3600)
	mustWrite(t, s, func(r repos.Repo) error {
		return r.UpsertUssAvailability(ctx, &models.UssAvailability{USS: "uss1", Availability: models.AvailabilityDown, UpdatedAt: at(5).In(local)})
	})
	a := view(t, s, func(r repos.Repo) (*models.UssAvailability, error) { return r.GetUssAvailability(ctx, "uss1") })
	if a.Availability != models.AvailabilityDown || a.UpdatedAt != at(5) {
		t.Fatalf("record = %+v (times are stored as UTC)", a)
	}
	if _, err := s.Apply(ctx, write(func(r repos.Repo) error {
		return r.UpsertUssAvailability(ctx, &models.UssAvailability{})
	})); err == nil {
		t.Fatal("record without USS accepted")
	}
}

// Results are sorted by ID through a prefix key; the order must be exactly
// string order, for IDs of any length and bytes.
func TestSortByIDMatchesStringOrder(t *testing.T) {
	tb := NewState().subs
	var keyed []byIDKey[models.Subscription]
	var want []string
	alphabet := []byte{0, 1, 'a', 'b', 0xff}
	for n := range 3000 {
		id := make([]byte, n%11)
		for i, x := 0, n*7919; i < len(id); i, x = i+1, x/5 {
			id[i] = alphabet[x%5]
		}
		keyed = append(keyed, tb.key(&models.Subscription{ID: models.ID(id)}))
		want = append(want, string(id))
	}
	slices.Sort(want)
	got := sortByID(keyed)
	for i := range want {
		if string(got[i].ID) != want[i] {
			t.Fatalf("position %d: %q, want %q", i, got[i].ID, want[i])
		}
	}
}
