package scd_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/repos"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
)

// faultyRepo wraps a real repo: it fails the call numbered failAt (1-based,
// 0 = never) with a plain store error, counts calls, and can make chosen
// subscriptions look absent (a dangling subscription_id).
type faultyRepo struct {
	repos.Repo
	calls   int
	failAt  int
	missing map[models.ID]bool
	// nils adds nil entries to search results: Execute must not trust them.
	nils bool
}

var errStore = errors.New("store failure")

func (r *faultyRepo) fail() error {
	r.calls++
	if r.calls == r.failAt {
		return errStore
	}
	return nil
}

func (r *faultyRepo) GetOperationalIntent(ctx context.Context, id models.ID) (*models.OperationalIntent, error) {
	if err := r.fail(); err != nil {
		return nil, err
	}
	return r.Repo.GetOperationalIntent(ctx, id)
}

func (r *faultyRepo) SearchOperationalIntents(ctx context.Context, v *models.Volume4D) ([]*models.OperationalIntent, error) {
	if err := r.fail(); err != nil {
		return nil, err
	}
	res, err := r.Repo.SearchOperationalIntents(ctx, v)
	if r.nils {
		res = append(res, nil)
	}
	return res, err
}

func (r *faultyRepo) UpsertOperationalIntent(ctx context.Context, o *models.OperationalIntent) error {
	if err := r.fail(); err != nil {
		return err
	}
	return r.Repo.UpsertOperationalIntent(ctx, o)
}

func (r *faultyRepo) DeleteOperationalIntent(ctx context.Context, id models.ID) error {
	if err := r.fail(); err != nil {
		return err
	}
	return r.Repo.DeleteOperationalIntent(ctx, id)
}

func (r *faultyRepo) GetDependentOperationalIntents(ctx context.Context, id models.ID) ([]models.ID, error) {
	if err := r.fail(); err != nil {
		return nil, err
	}
	return r.Repo.GetDependentOperationalIntents(ctx, id)
}

func (r *faultyRepo) GetSubscription(ctx context.Context, id models.ID) (*models.Subscription, error) {
	if err := r.fail(); err != nil {
		return nil, err
	}
	if r.missing[id] {
		return nil, nil
	}
	return r.Repo.GetSubscription(ctx, id)
}

func (r *faultyRepo) SearchSubscriptions(ctx context.Context, v *models.Volume4D) ([]*models.Subscription, error) {
	if err := r.fail(); err != nil {
		return nil, err
	}
	res, err := r.Repo.SearchSubscriptions(ctx, v)
	if r.nils {
		res = append(res, nil)
	}
	return res, err
}

func (r *faultyRepo) UpsertSubscription(ctx context.Context, s *models.Subscription) error {
	if err := r.fail(); err != nil {
		return err
	}
	return r.Repo.UpsertSubscription(ctx, s)
}

func (r *faultyRepo) DeleteSubscription(ctx context.Context, id models.ID) error {
	if err := r.fail(); err != nil {
		return err
	}
	return r.Repo.DeleteSubscription(ctx, id)
}

func (r *faultyRepo) IncrementNotificationIndices(ctx context.Context, k models.SubscriberKind, v *models.Volume4D) ([]*models.Subscription, error) {
	if err := r.fail(); err != nil {
		return nil, err
	}
	res, err := r.Repo.IncrementNotificationIndices(ctx, k, v)
	if r.nils {
		res = append(res, nil)
	}
	return res, err
}

func (r *faultyRepo) GetConstraint(ctx context.Context, id models.ID) (*models.Constraint, error) {
	if err := r.fail(); err != nil {
		return nil, err
	}
	return r.Repo.GetConstraint(ctx, id)
}

func (r *faultyRepo) SearchConstraints(ctx context.Context, v *models.Volume4D) ([]*models.Constraint, error) {
	if err := r.fail(); err != nil {
		return nil, err
	}
	res, err := r.Repo.SearchConstraints(ctx, v)
	if r.nils {
		res = append(res, nil)
	}
	return res, err
}

func (r *faultyRepo) UpsertConstraint(ctx context.Context, c *models.Constraint) error {
	if err := r.fail(); err != nil {
		return err
	}
	return r.Repo.UpsertConstraint(ctx, c)
}

func (r *faultyRepo) DeleteConstraint(ctx context.Context, id models.ID) error {
	if err := r.fail(); err != nil {
		return err
	}
	return r.Repo.DeleteConstraint(ctx, id)
}

func (r *faultyRepo) ListExpired(ctx context.Context, q *repos.ExpiredQuery) ([]models.ID, error) {
	if err := r.fail(); err != nil {
		return nil, err
	}
	return r.Repo.ListExpired(ctx, q)
}

func (r *faultyRepo) GetUssAvailability(ctx context.Context, uss string) (*models.UssAvailability, error) {
	if err := r.fail(); err != nil {
		return nil, err
	}
	return r.Repo.GetUssAvailability(ctx, uss)
}

func (r *faultyRepo) UpsertUssAvailability(ctx context.Context, a *models.UssAvailability) error {
	if err := r.fail(); err != nil {
		return err
	}
	return r.Repo.UpsertUssAvailability(ctx, a)
}

// viaRepo runs an operation against a wrapped repo.
type viaRepo struct {
	scd.Operation
	repo *faultyRepo
}

func (o viaRepo) Execute(ctx context.Context, repo repos.Repo) (any, error) {
	o.repo.Repo = repo
	return o.Operation.Execute(ctx, o.repo)
}

// populated returns a store holding OIRs, subscriptions (implicit and
// explicit), a constraint and availability records that the write
// operations below all touch.
func populated(t *testing.T) *env {
	e := newEnv(t)
	must[scd.AvailabilityView](e, &scd.PutUssAvailability{Now: e.tick(), USS: ussB, Availability: models.AvailabilityNormal})
	must[scd.PutSubscriptionResult](e, e.putSub(ussB, id(60), func(op *scd.PutSubscription) {
		op.Extents.StartTime, op.Extents.EndTime = at(0), at(120)
		op.NotifyForConstraints = true
	}))
	must[scd.ConstraintResult](e, &scd.PutConstraint{Caller: ussB, Now: e.tick(), ID: id(80),
		Extents: vol(cells(2), 0, 60, 0, 0), USSBaseURL: urlB})
	b := e.createOIR(ussB, id(2), nil).OIR.OIR
	e.createOIR(ussA, id(1), func(op *scd.PutOperationalIntent) {
		op.Key = []models.OVN{b.OVN()}
		op.NewSubscription = &scd.NewSubscription{USSBaseURL: urlA}
		op.NewSubscriptionID = id(50)
	})
	return e
}

// writeOps returns one successful write operation of every kind against the
// populated store.
func writeOps(e *env) map[string]scd.Operation {
	// Entities may be gone (TestResultsAreReplayable deletes them): their
	// OVNs and versions then read as "".
	oirOVN := func(oid models.ID) models.OVN {
		v, _ := run[scd.OperationalIntentView](e, &scd.GetOperationalIntent{Caller: ussA, ID: oid})
		if v.OIR == nil {
			return ""
		}
		return v.OIR.OVN()
	}
	var crOVN models.OVN
	if cr, _ := run[*models.Constraint](e, &scd.GetConstraint{Caller: ussB, ID: id(80)}); cr != nil {
		crOVN = cr.OVN()
	}
	var s60 string
	if s, _ := e.getSub(ussB, id(60)); s.Sub != nil {
		s60 = s.Sub.Version()
	}
	av := must[scd.AvailabilityView](e, &scd.GetUssAvailability{USS: ussB})
	now := e.tick()
	return map[string]scd.Operation{
		"put OIR": &scd.PutOperationalIntent{Caller: ussA, Now: now, ID: id(1), OVN: oirOVN(id(1)), State: models.StateActivated,
			Extents: vol(cells(1, 2, 3, 4), 0, 90, 0, 100), Key: []models.OVN{oirOVN(id(2)), crOVN}, USSBaseURL: urlA,
			NewSubscription: &scd.NewSubscription{USSBaseURL: urlA, NotifyForConstraints: true}, NewSubscriptionID: id(51)},
		"delete OIR":   &scd.DeleteOperationalIntent{Caller: ussA, ID: id(1), OVN: oirOVN(id(1))},
		"put CR":       &scd.PutConstraint{Caller: ussB, Now: now, ID: id(80), OVN: crOVN, Extents: vol(cells(3), 0, 60, 0, 0), USSBaseURL: urlB},
		"delete CR":    &scd.DeleteConstraint{Caller: ussB, ID: id(80), OVN: crOVN},
		"put sub":      &scd.PutSubscription{Caller: ussB, Now: now, ID: id(60), Version: s60, Extents: models.Volume4D{Cells: cells(1, 2, 3)}, USSBaseURL: urlB, NotifyForOperationalIntents: true, NotifyForConstraints: true},
		"delete sub":   &scd.DeleteSubscription{Caller: ussB, ID: id(60), Version: s60},
		"availability": &scd.PutUssAvailability{Now: now, USS: ussB, OldVersion: av.Version, Availability: models.AvailabilityDown},
		// Everything has ended by then: every kind goes, implicit
		// subscriptions with their OIRs.
		"evict": &scd.EvictExpired{Before: now.Add(24 * time.Hour), Limit: 100},
	}
}

// TestStoreFailuresAreAtomic fails every repo call of every write operation
// in turn: Execute must return the error (never panic, never mask it as a
// client error) and the store must be left exactly as before.
func TestStoreFailuresAreAtomic(t *testing.T) {
	e := populated(t)
	st := e.st.(*memstore.Store)
	before := st.Hash()
	for name, op := range writeOps(e) {
		t.Run(name, func(t *testing.T) {
			// Count the calls of a successful run on a throwaway copy.
			probe := populated(t)
			counter := &faultyRepo{}
			if _, err := probe.st.Transact(context.Background(), viaRepo{writeOps(probe)[name], counter}); err != nil {
				t.Fatalf("clean run: %v", err)
			}
			if counter.calls == 0 {
				t.Fatal("no repo call counted")
			}
			for k := 1; k <= counter.calls; k++ {
				_, err := e.st.Transact(context.Background(), viaRepo{op, &faultyRepo{failAt: k}})
				if !errors.Is(err, errStore) || models.CodeOf(err) != models.CodeInternal {
					t.Fatalf("failing call %d of %d: got %v, want the store error as Internal", k, counter.calls, err)
				}
				if st.Hash() != before {
					t.Fatalf("failing call %d of %d changed the store", k, counter.calls)
				}
			}
		})
	}
}

// TestNilAndDanglingRepoResults: nil entries in search results and a
// subscription_id whose subscription is absent are handled, not trusted.
func TestNilAndDanglingRepoResults(t *testing.T) {
	for name := range writeOps(populated(t)) {
		t.Run(name, func(t *testing.T) {
			e := populated(t)
			if _, err := e.st.Transact(context.Background(), viaRepo{writeOps(e)[name], &faultyRepo{nils: true}}); err != nil {
				t.Fatalf("with nil search entries: %v", err)
			}
		})
	}
	// OIR 1's implicit subscription reads as absent: an update that drops it
	// releases nothing, and deleting the OIR does not delete it.
	e := populated(t)
	o1 := e.getOIR(id(1)).OIR
	o2 := e.getOIR(id(2)).OIR
	hidden := func() *faultyRepo { return &faultyRepo{missing: map[models.ID]bool{id(50): true}} }
	upd := must[scd.OperationalIntentResult](e, viaRepo{e.putOIR(ussA, id(1), func(op *scd.PutOperationalIntent) {
		op.OVN = o1.OVN()
		op.Key = []models.OVN{o2.OVN()}
	}), hidden()})
	if _, err := e.getSub(ussA, id(50)); err != nil || upd.OIR.OIR.SubscriptionID != "" {
		t.Fatalf("after update: %v, OIR %+v", err, upd.OIR.OIR)
	}
	e = populated(t)
	o1 = e.getOIR(id(1)).OIR
	del := must[scd.OperationalIntentResult](e, viaRepo{&scd.DeleteOperationalIntent{Caller: ussA, ID: id(1), OVN: o1.OVN()},
		hidden()})
	if del.OIR.OIR.ID != id(1) {
		t.Fatalf("delete = %+v", del)
	}
	if _, err := e.getSub(ussA, id(50)); err != nil {
		t.Fatalf("subscription that read as absent was deleted: %v", err)
	}
	// An OIR naming it explicitly gets 400, as for an unknown subscription.
	_, err := run[scd.OperationalIntentResult](e, viaRepo{e.putOIR(ussA, id(3), func(op *scd.PutOperationalIntent) {
		op.SubscriptionID = id(50)
		op.Extents = vol(cells(9), 0, 60, 0, 100)
	}), hidden()})
	wantCode(t, err, models.CodeBadRequest)
}

// TestResultsAreReplayable runs the same operations on two stores: results
// and final states must be identical (what every Raft replica relies on).
func TestResultsAreReplayable(t *testing.T) {
	a, b := populated(t), populated(t)
	for _, name := range []string{"put CR", "put sub", "put OIR", "availability", "delete OIR", "delete CR", "delete sub"} {
		// Built afresh from each store's state (same clock on both).
		ra, errA := a.st.Transact(context.Background(), writeOps(a)[name])
		rb, errB := b.st.Transact(context.Background(), writeOps(b)[name])
		if errA != nil || errB != nil {
			t.Fatalf("%s: %v / %v", name, errA, errB)
		}
		if !reflect.DeepEqual(ra, rb) {
			t.Fatalf("%s: results differ:\n%+v\n%+v", name, ra, rb)
		}
	}
	if a.st.(*memstore.Store).Hash() != b.st.(*memstore.Store).Hash() {
		t.Fatal("states differ")
	}
}

// TestWriteTimesNeverGoBack: a store that does not order write times (the
// SQL store on nodes whose clocks disagree, or a clock stepped back) may
// run a write with a request time at or before the entity's last write. The
// new version is then written one nanosecond after the last, so versions
// and OVNs still change on every write (spec §3.6) instead of the write
// failing. (viaRepo is no store.Timestamped, so memstore does not raise the
// time itself here.)
func TestWriteTimesNeverGoBack(t *testing.T) {
	for _, back := range []time.Duration{0, time.Hour} {
		for _, name := range []string{"put OIR", "put CR", "put sub", "availability"} {
			t.Run(fmt.Sprintf("%s/%v back", name, back), func(t *testing.T) {
				e := populated(t)
				// version and last write time of the entity name writes.
				state := func() (string, time.Time) {
					switch name {
					case "put OIR":
						o := e.getOIR(id(1)).OIR
						return string(o.OVN()), o.UpdatedAt
					case "put CR":
						c := must[*models.Constraint](e, &scd.GetConstraint{Caller: ussB, ID: id(80)})
						return string(c.OVN()), c.UpdatedAt
					case "put sub":
						s, err := e.getSub(ussB, id(60))
						if err != nil {
							t.Fatal(err)
						}
						return s.Sub.Version(), s.Sub.UpdatedAt
					default:
						return must[scd.AvailabilityView](e, &scd.GetUssAvailability{USS: ussB}).Version, time.Time{}
					}
				}
				version, last := state()
				op := writeOps(e)[name]
				stale := last.Add(-back)
				switch o := op.(type) {
				case *scd.PutOperationalIntent:
					o.Now = stale
				case *scd.PutConstraint:
					o.Now = stale
				case *scd.PutSubscription:
					o.Now = stale
				case *scd.PutUssAvailability:
					// Its time is not exposed: write twice at one instant.
					o.Now = e.tick()
					if _, err := e.st.Transact(context.Background(), viaRepo{op, &faultyRepo{}}); err != nil {
						t.Fatal(err)
					}
					version, _ = state()
					o.OldVersion = version
				}
				if _, err := e.st.Transact(context.Background(), viaRepo{op, &faultyRepo{}}); err != nil {
					t.Fatalf("write at %v (last write %v): %v", stale, last, err)
				}
				newVersion, written := state()
				if newVersion == version {
					t.Errorf("version %q did not change", version)
				}
				if !last.IsZero() && !written.Equal(last.Add(time.Nanosecond)) {
					t.Errorf("written at %v, want 1 ns after the last write %v", written, last)
				}
			})
		}
	}
}
