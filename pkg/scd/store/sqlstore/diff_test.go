package sqlstore

import (
	"context"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/repos"
)

// TestSameResultsAsMemstore runs a scripted sequence of SCD operations,
// every endpoint and its main failure cases, on the memstore and on the SQL
// store, and requires identical results and errors at every step. It is the
// seed of the differential test between the backends.
func TestSameResultsAsMemstore(t *testing.T) {
	l := newLockstep(t)
	now := t0
	// Request times carry nanoseconds below the microsecond, which the SQL
	// store must keep for OVNs and versions to match.
	tick := func() time.Time { now = now.Add(time.Second + 7); return now }
	vol := func(cs []models.CellID, from, to time.Duration, lo, hi float32) models.Volume4D {
		return models.Volume4D{Cells: cs, StartTime: ptr(now.Add(from)), EndTime: ptr(now.Add(to)),
			AltitudeLower: ptr(lo), AltitudeUpper: ptr(hi)}
	}
	oirOf := func(v any) *models.OperationalIntent { return v.(scd.OperationalIntentResult).OIR.OIR }

	l.must(&scd.PutUssAvailability{Now: tick(), USS: "uss-b", Availability: models.AvailabilityNormal})
	subS := l.must(&scd.PutSubscription{Caller: "uss-a", Now: tick(), ID: uid(100),
		Extents:    models.Volume4D{Cells: cells(1, 2, 3, 4), StartTime: ptr(now), EndTime: ptr(now.Add(2 * time.Hour))},
		USSBaseURL: "https://a.example", NotifyForOperationalIntents: true, NotifyForConstraints: true,
	}).(scd.PutSubscriptionResult).Sub.Sub

	o1 := oirOf(l.must(&scd.PutOperationalIntent{Caller: "uss-a", Now: tick(), ID: uid(1), State: models.StateAccepted,
		Extents: vol(cells(1, 2), time.Minute, 30*time.Minute, 0, 100), USSBaseURL: "https://a.example/oir",
		SubscriptionID: subS.ID}))
	// Overlapping without the key: 409 listing o1.
	o2op := &scd.PutOperationalIntent{Caller: "uss-b", Now: tick(), ID: uid(2), State: models.StateAccepted,
		Extents: vol(cells(2, 3), 2*time.Minute, 20*time.Minute, 50, 150), USSBaseURL: "https://b.example/oir",
		NewSubscription: &scd.NewSubscription{USSBaseURL: "https://b.example"}, NewSubscriptionID: uid(201)}
	l.fails(o2op, models.CodeMissingKey)
	o2op.Key, o2op.Now = []models.OVN{o1.OVN()}, tick()
	o2 := oirOf(l.must(o2op))

	l.must(&scd.QueryOperationalIntents{Caller: "uss-a", Area: models.Volume4D{Cells: cells(1, 2, 3, 4)}})
	l.must(&scd.QueryOperationalIntents{Caller: "uss-a", Area: vol(cells(3), 0, time.Hour, 120, 500)})
	l.must(&scd.GetOperationalIntent{Caller: "uss-a", ID: o2.ID})
	l.fails(&scd.GetOperationalIntent{Caller: "uss-a", ID: uid(3)}, models.CodeNotFound)

	// Updates: requested OVN, then the same one again (400), a stale OVN
	// (409), a missing constraint in the key (409).
	upd := &scd.PutOperationalIntent{Caller: "uss-a", Now: tick(), ID: o1.ID, OVN: o1.OVN(), State: models.StateActivated,
		Extents: vol(cells(1, 2), time.Minute, 40*time.Minute, 0, 100), Key: []models.OVN{o2.OVN()},
		USSBaseURL: "https://a.example/oir", SubscriptionID: subS.ID, RequestedOVN: models.OVN(string(o1.ID) + "_0190a0b4-7c3e-7d2a-8f00-000000000001")}
	o1 = oirOf(l.must(upd))
	upd.OVN, upd.Now = o1.OVN(), tick()
	l.fails(upd, models.CodeBadRequest)
	upd.OVN, upd.RequestedOVN, upd.Now = "stale-ovn-0123456789", "", tick()
	l.fails(upd, models.CodeVersionMismatch)

	cr := l.must(&scd.PutConstraint{Caller: "uss-c", Now: tick(), ID: uid(50),
		Extents: vol(cells(2, 4), 0, time.Hour, 0, 0), USSBaseURL: "https://c.example"}).(scd.ConstraintResult).CR
	l.must(&scd.QueryConstraints{Caller: "uss-a", Area: models.Volume4D{Cells: cells(4)}})
	l.must(&scd.GetConstraint{Caller: "uss-b", ID: cr.ID})
	upd.OVN, upd.Now = o1.OVN(), tick()
	l.fails(upd, models.CodeMissingKey)
	upd.Key, upd.Now = append(upd.Key, cr.OVN()), tick()
	o1 = oirOf(l.must(upd))
	cr = l.must(&scd.PutConstraint{Caller: "uss-c", Now: tick(), ID: cr.ID, OVN: cr.OVN(),
		Extents: vol(cells(4), 0, 2*time.Hour, 0, 0), USSBaseURL: "https://c.example/v2"}).(scd.ConstraintResult).CR

	// Subscriptions: query, permissions, dependents, update.
	l.must(&scd.QuerySubscriptions{Caller: "uss-a", Now: tick(), Area: models.Volume4D{Cells: cells(1, 2, 3, 4)}})
	l.must(&scd.QuerySubscriptions{Caller: "uss-b", Now: tick(), Area: models.Volume4D{Cells: cells(3)}})
	l.must(&scd.GetSubscription{Caller: "uss-a", ID: subS.ID})
	l.fails(&scd.GetSubscription{Caller: "uss-b", ID: subS.ID}, models.CodePermissionDenied)
	l.fails(&scd.DeleteSubscription{Caller: "uss-a", ID: subS.ID, Version: subS.Version()}, models.CodeBadRequest)
	subS = l.must(&scd.PutSubscription{Caller: "uss-a", Now: tick(), ID: subS.ID, Version: subS.Version(),
		Extents:    models.Volume4D{Cells: cells(1, 2, 3, 4, 5), StartTime: ptr(subS.StartTime), EndTime: ptr(subS.EndTime)},
		USSBaseURL: "https://a.example/v2", NotifyForOperationalIntents: true,
	}).(scd.PutSubscriptionResult).Sub.Sub
	l.fails(&scd.PutSubscription{Caller: "uss-a", Now: tick(), ID: subS.ID, Version: "wrong",
		Extents: models.Volume4D{Cells: cells(1)}, USSBaseURL: "https://a.example", NotifyForOperationalIntents: true},
		models.CodeVersionMismatch)

	// Availability: a Down USS's Accepted OIR needs no key.
	av := l.must(&scd.GetUssAvailability{USS: "uss-b"}).(scd.AvailabilityView)
	l.must(&scd.PutUssAvailability{Now: tick(), USS: "uss-b", OldVersion: av.Version, Availability: models.AvailabilityDown})
	l.fails(&scd.PutUssAvailability{Now: tick(), USS: "uss-b", OldVersion: av.Version, Availability: models.AvailabilityNormal},
		models.CodeVersionMismatch)
	l.must(&scd.PutOperationalIntent{Caller: "uss-d", Now: tick(), ID: uid(4), State: models.StateAccepted,
		Extents: vol(cells(3), 5*time.Minute, 10*time.Minute, 60, 70), USSBaseURL: "https://d.example/oir"})

	// Deleting o2 releases its implicit subscription and notifies.
	l.fails(&scd.DeleteOperationalIntent{Caller: "uss-b", ID: o2.ID, OVN: "stale-ovn-0123456789"}, models.CodeVersionMismatch)
	l.fails(&scd.DeleteOperationalIntent{Caller: "uss-a", ID: o2.ID, OVN: o2.OVN()}, models.CodePermissionDenied)
	l.must(&scd.DeleteOperationalIntent{Caller: "uss-b", ID: o2.ID, OVN: o2.OVN()})
	l.fails(&scd.GetSubscription{Caller: "uss-b", ID: uid(201)}, models.CodeNotFound)
	l.fails(&scd.DeleteConstraint{Caller: "uss-c", ID: cr.ID, OVN: "stale-ovn-0123456789"}, models.CodeVersionMismatch)
	l.must(&scd.DeleteConstraint{Caller: "uss-c", ID: cr.ID, OVN: cr.OVN()})
	l.must(&scd.DeleteOperationalIntent{Caller: "uss-a", ID: o1.ID, OVN: o1.OVN()})
	l.must(&scd.DeleteSubscription{Caller: "uss-a", ID: subS.ID, Version: subS.Version()})
	l.fails(&scd.DeleteSubscription{Caller: "uss-a", ID: subS.ID, Version: subS.Version()}, models.CodeNotFound)
	if res := l.must(&scd.QueryOperationalIntents{Caller: "uss-a", Area: models.Volume4D{Cells: cells(1, 2, 3, 4)}}); len(res.([]scd.OperationalIntentView)) != 1 {
		t.Fatalf("after the deletes the area holds %d OIRs, want 1 (uss-d's)", len(res.([]scd.OperationalIntentView)))
	}
	// The stored state is the same too, subscriptions' indices included.
	l.must(read(func(ctx context.Context, r repos.Repo) (any, error) {
		all := models.Volume4D{Cells: cells(1, 2, 3, 4, 5)}
		oirs, err := r.SearchOperationalIntents(ctx, &all)
		if err != nil {
			return nil, err
		}
		subs, err := r.SearchSubscriptions(ctx, &all)
		if err != nil {
			return nil, err
		}
		crs, err := r.SearchConstraints(ctx, &all)
		return []any{oirs, subs, crs}, err
	}))
}
