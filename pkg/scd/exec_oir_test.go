package scd_test

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
)

func TestPutOperationalIntentCreateAndUpdate(t *testing.T) {
	e := newEnv(t)
	res := e.createOIR(ussA, id(1), nil)
	o := res.OIR.OIR
	if o.Version != 1 || o.Manager != ussA || o.UpdatedAt != e.now || o.OVN() != models.OVN(models.DeriveVersion(string(id(1)), e.now)) {
		t.Fatalf("created %+v", o)
	}
	if res.OIR.Availability != models.AvailabilityUnknown || res.Subscribers == nil || len(res.Subscribers) != 0 {
		t.Fatalf("availability %q subscribers %#v", res.OIR.Availability, res.Subscribers)
	}
	first := o.OVN()

	upd := must[scd.OperationalIntentResult](e, e.putOIR(ussA, id(1), func(op *scd.PutOperationalIntent) {
		op.OVN = first
		op.State = models.StateActivated
		op.NewSubscription = &scd.NewSubscription{USSBaseURL: urlA}
		op.NewSubscriptionID = id(50)
	}))
	o2 := upd.OIR.OIR
	if o2.Version != 2 || o2.OVN() == first || o2.State != models.StateActivated || o2.SubscriptionID != id(50) {
		t.Fatalf("updated %+v", o2)
	}
	if !slices.Equal(o2.PastOVNs, []models.OVN{first}) {
		t.Errorf("PastOVNs = %v, want [%s]", o2.PastOVNs, first)
	}
	if got := e.getOIR(id(1)).OIR; got.OVN() != o2.OVN() || got.Version != 2 {
		t.Errorf("stored %+v", got)
	}

	// Requested OVNs (§3.6): used verbatim, must never repeat.
	req := models.OVN(string(id(1)) + "_0190a4c0-0000-7000-8000-000000000001")
	withOVN := func(cur, requested models.OVN) *scd.PutOperationalIntent {
		return e.putOIR(ussA, id(1), func(op *scd.PutOperationalIntent) {
			op.OVN, op.RequestedOVN, op.SubscriptionID = cur, requested, id(50)
		})
	}
	o3 := must[scd.OperationalIntentResult](e, withOVN(o2.OVN(), req)).OIR.OIR
	if o3.OVN() != req {
		t.Fatalf("OVN = %q, want requested %q", o3.OVN(), req)
	}
	_, err := run[scd.OperationalIntentResult](e, withOVN(req, req))
	wantCode(t, err, models.CodeBadRequest)
	o4 := must[scd.OperationalIntentResult](e, withOVN(req, "")).OIR.OIR
	_, err = run[scd.OperationalIntentResult](e, withOVN(o4.OVN(), first))
	wantCode(t, err, models.CodeBadRequest) // a past OVN
	if !slices.Equal(o4.PastOVNs, []models.OVN{first, o2.OVN(), req}) {
		t.Errorf("PastOVNs = %v", o4.PastOVNs)
	}
}

// TestOperationalIntentStatusCodes covers the OIR rows of spec §15 and the
// evaluation order of §6.1 C and Delete.
func TestOperationalIntentStatusCodes(t *testing.T) {
	e := newEnv(t)
	ovn := e.createOIR(ussA, id(1), nil).OIR.OIR.OVN()
	must[scd.PutSubscriptionResult](e, e.putSub(ussB, id(60), nil))
	must[scd.PutSubscriptionResult](e, e.putSub(ussA, id(61), func(op *scd.PutSubscription) {
		op.Extents.Cells = cells(1) // does not cover cells 2 and 3
	}))
	// Covers the default OIR volume (cells 1..3, t0 to t0+60min) exactly.
	must[scd.PutSubscriptionResult](e, e.putSub(ussA, id(62), func(op *scd.PutSubscription) {
		op.Extents.StartTime, op.Extents.EndTime = at(0), at(60)
	}))

	put := func(caller string, oid models.ID, mod func(*scd.PutOperationalIntent)) error {
		_, err := run[scd.OperationalIntentResult](e, e.putOIR(caller, oid, mod))
		return err
	}
	withOVN := func(o models.OVN) func(*scd.PutOperationalIntent) {
		return func(op *scd.PutOperationalIntent) { op.OVN = o }
	}
	withSub := func(s models.ID) func(*scd.PutOperationalIntent) {
		return func(op *scd.PutOperationalIntent) { op.SubscriptionID = s }
	}
	tests := []struct {
		name string
		err  func() error
		want models.Code
	}{
		{"create on existing id", func() error { return put(ussA, id(1), nil) }, models.CodeAlreadyExists},
		{"create on another USS's id", func() error { return put(ussB, id(1), nil) }, models.CodePermissionDenied},
		{"update by another USS, owner before OVN", func() error { return put(ussB, id(1), withOVN("wrong-ovn-0123456789")) }, models.CodePermissionDenied},
		{"update with wrong OVN", func() error { return put(ussA, id(1), withOVN("wrong-ovn-0123456789")) }, models.CodeVersionMismatch},
		{"update of missing OIR", func() error { return put(ussA, id(2), withOVN(ovn)) }, models.CodeBadRequest},
		{"unknown subscription", func() error { return put(ussA, id(2), withSub(id(99))) }, models.CodeBadRequest},
		{"another USS's subscription", func() error { return put(ussA, id(2), withSub(id(60))) }, models.CodePermissionDenied},
		{"explicit subscription not covering cells", func() error { return put(ussA, id(2), withSub(id(61))) }, models.CodeBadRequest},
		{"explicit subscription not covering time", func() error {
			return put(ussA, id(2), func(op *scd.PutOperationalIntent) {
				op.SubscriptionID = id(62)
				op.Extents.EndTime = at(24 * 60)
			})
		}, models.CodeBadRequest},
		{"missing extents bound", func() error {
			return put(ussA, id(2), func(op *scd.PutOperationalIntent) { op.Extents.AltitudeUpper = nil })
		}, models.CodeBadRequest},
		{"no footprint", func() error {
			return put(ussA, id(2), func(op *scd.PutOperationalIntent) { op.Extents.Cells = nil })
		}, models.CodeBadRequest},
		{"delete missing", func() error {
			_, err := run[scd.OperationalIntentResult](e, &scd.DeleteOperationalIntent{Caller: ussA, ID: id(2), OVN: ovn})
			return err
		}, models.CodeNotFound},
		{"delete by another USS with wrong OVN", func() error {
			_, err := run[scd.OperationalIntentResult](e, &scd.DeleteOperationalIntent{Caller: ussB, ID: id(1), OVN: "x"})
			return err
		}, models.CodePermissionDenied},
		{"delete with wrong OVN", func() error {
			_, err := run[scd.OperationalIntentResult](e, &scd.DeleteOperationalIntent{Caller: ussA, ID: id(1), OVN: "x"})
			return err
		}, models.CodeVersionMismatch},
		{"get missing", func() error {
			_, err := run[scd.OperationalIntentView](e, &scd.GetOperationalIntent{Caller: ussA, ID: id(2)})
			return err
		}, models.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.err(), tt.want) })
	}
	// Nothing above may have changed the OIR.
	if got := e.getOIR(id(1)).OIR; got.OVN() != ovn || got.Version != 1 {
		t.Errorf("OIR changed by failed requests: %+v", got)
	}
	// Covering explicit subscription: accepted, and not modified.
	res := e.createOIR(ussA, id(3), func(op *scd.PutOperationalIntent) {
		op.SubscriptionID = id(62)
		op.Key = []models.OVN{ovn}
	})
	if res.OIR.OIR.SubscriptionID != id(62) {
		t.Errorf("subscription = %q", res.OIR.OIR.SubscriptionID)
	}
}

func TestKeyCheck(t *testing.T) {
	e := newEnv(t)
	b := e.createOIR(ussB, id(2), nil).OIR.OIR // Accepted, overlaps everything below
	cr := must[scd.ConstraintResult](e, &scd.PutConstraint{Caller: ussB, Now: e.tick(), ID: id(80),
		Extents: vol(cells(3), 0, 60, 0, 0), USSBaseURL: urlB}).CR
	// Far above the others: never in the way.
	high := e.createOIR(ussB, id(3), func(op *scd.PutOperationalIntent) {
		op.Extents = vol(cells(1, 2, 3), 0, 60, 500, 600)
		op.Key = []models.OVN{b.OVN()}
	}).OIR.OIR

	put := func(mod func(*scd.PutOperationalIntent)) error {
		_, err := run[scd.OperationalIntentResult](e, e.putOIR(ussA, id(1), mod))
		return err
	}
	missing := func(err error) (oirs, crs []models.ID) {
		t.Helper()
		wantCode(t, err, models.CodeMissingKey)
		me := err.(*models.Error)
		for _, o := range me.MissingOIRs {
			oirs = append(oirs, o.ID)
		}
		for _, c := range me.MissingCRs {
			crs = append(crs, c.ID)
		}
		return oirs, crs
	}

	oirs, crs := missing(put(nil))
	if !slices.Equal(oirs, []models.ID{id(2)}) || crs != nil {
		t.Fatalf("missing = %v %v, want [%s] []", oirs, crs, id(2))
	}
	// The CR counts only when the attached subscription wants constraints,
	// and then the failure must not persist the new implicit subscription.
	withSub := func(sid models.ID, key ...models.OVN) func(*scd.PutOperationalIntent) {
		return func(op *scd.PutOperationalIntent) {
			op.Key = key
			op.NewSubscription = &scd.NewSubscription{USSBaseURL: urlA, NotifyForConstraints: true}
			op.NewSubscriptionID = sid
		}
	}
	oirs, crs = missing(put(withSub(id(50), b.OVN())))
	if oirs != nil || !slices.Equal(crs, []models.ID{id(80)}) {
		t.Fatalf("missing = %v %v, want [] [%s]", oirs, crs, id(80))
	}
	if _, err := e.getSub(ussA, id(50)); models.CodeOf(err) != models.CodeNotFound {
		t.Fatalf("implicit subscription of a failed PUT persisted: %v", err)
	}
	mine := e.createOIR(ussA, id(1), withSub(id(51), b.OVN(), cr.OVN())).OIR.OIR
	// Nonconforming skips the key check entirely.
	mine = e.createOIR(ussA, id(1), func(op *scd.PutOperationalIntent) {
		op.OVN = mine.OVN()
		op.Key = nil
		op.State = models.StateNonconforming
		op.SubscriptionID = id(51)
	}).OIR.OIR
	// Back to Accepted: its own OVN in the key is harmless, duplicates too.
	mine = e.createOIR(ussA, id(1), func(op *scd.PutOperationalIntent) {
		op.OVN = mine.OVN()
		op.SubscriptionID = id(51)
		op.Key = []models.OVN{mine.OVN(), b.OVN(), cr.OVN(), b.OVN()}
	}).OIR.OIR

	// The caller's own other OIRs need keys too.
	_, err := run[scd.OperationalIntentResult](e, e.putOIR(ussA, id(4), func(op *scd.PutOperationalIntent) {
		op.Key = []models.OVN{b.OVN()}
	}))
	if oirs, _ := missing(err); !slices.Equal(oirs, []models.ID{id(1)}) {
		t.Fatalf("missing = %v, want own OIR %s", oirs, id(1))
	}

	// Down + Accepted needs no key; Down + Activated still does.
	must[scd.AvailabilityView](e, &scd.PutUssAvailability{Now: e.tick(), USS: ussB, Availability: models.AvailabilityDown})
	e.createOIR(ussA, id(4), func(op *scd.PutOperationalIntent) { op.Key = []models.OVN{mine.OVN()} })
	ovn4 := e.getOIR(id(4)).OIR.OVN()
	must[scd.OperationalIntentResult](e, e.putOIR(ussB, id(2), func(op *scd.PutOperationalIntent) {
		op.OVN = b.OVN()
		op.State = models.StateActivated
		op.NewSubscription = &scd.NewSubscription{USSBaseURL: urlB}
		op.NewSubscriptionID = id(52)
		op.Key = []models.OVN{mine.OVN(), ovn4}
	}))
	_, err = run[scd.OperationalIntentResult](e, e.putOIR(ussA, id(5), func(op *scd.PutOperationalIntent) {
		op.Key = []models.OVN{mine.OVN(), ovn4}
	}))
	if oirs, _ := missing(err); !slices.Equal(oirs, []models.ID{id(2)}) {
		t.Fatalf("missing = %v, want the Activated OIR of the Down USS", oirs)
	}
	var me *models.Error
	if !errors.As(err, &me) || me.Availabilities[ussB] != models.AvailabilityDown {
		t.Errorf("conflict availabilities = %v, want %s Down", me, ussB)
	}
	if e.getOIR(high.ID).OIR.Version != 1 {
		t.Error("unexpected change")
	}
}

// TestImplicitSubscriptionLifecycle follows spec §8.
func TestImplicitSubscriptionLifecycle(t *testing.T) {
	e := newEnv(t)
	res := e.createOIR(ussA, id(1), func(op *scd.PutOperationalIntent) {
		op.NewSubscription = &scd.NewSubscription{USSBaseURL: urlA, NotifyForConstraints: true}
		op.NewSubscriptionID = id(50)
	})
	// Created with the OIR's extents and notified by the same request.
	if got := indices(t, res.Subscribers); !maps.Equal(got, map[models.ID]int32{id(50): 1}) {
		t.Fatalf("subscribers = %v", got)
	}
	sub, err := e.getSub(ussA, id(50))
	if err != nil {
		t.Fatal(err)
	}
	s := sub.Sub
	if !s.Implicit || !s.NotifyForOperationalIntents || !s.NotifyForConstraints || s.USSBaseURL != urlA ||
		!s.StartTime.Equal(*at(0)) || !s.EndTime.Equal(*at(60)) || !slices.Equal(s.Cells, cells(1, 2, 3)) ||
		s.NotificationIndex != 1 || !slices.Equal(sub.Dependents, []models.ID{id(1)}) {
		t.Fatalf("implicit subscription %+v dependents %v", s, sub.Dependents)
	}
	version := s.Version()
	// It cannot be deleted while its OIR depends on it (§15).
	_, err = run[scd.SubscriptionView](e, &scd.DeleteSubscription{Caller: ussA, ID: id(50), Version: version})
	wantCode(t, err, models.CodeBadRequest)

	// A second OIR reusing it, wider in time and space, extends it (§6.1 D).
	ovn1 := e.getOIR(id(1)).OIR.OVN()
	res2 := e.createOIR(ussA, id(2), func(op *scd.PutOperationalIntent) {
		op.SubscriptionID = id(50)
		op.Extents = vol(cells(3, 4), -10, 120, 0, 100)
		op.Key = []models.OVN{ovn1}
	})
	sub, _ = e.getSub(ussA, id(50))
	s = sub.Sub
	if !s.StartTime.Equal(*at(-10)) || !s.EndTime.Equal(*at(120)) || !slices.Equal(s.Cells, cells(1, 2, 3, 4)) ||
		s.Version() == version || s.NotificationIndex != 2 || !s.Implicit {
		t.Fatalf("extended subscription %+v", s)
	}
	if !slices.Equal(sub.Dependents, []models.ID{id(1), id(2)}) {
		t.Fatalf("dependents %v", sub.Dependents)
	}
	if got := indices(t, res2.Subscribers); got[id(50)] != 2 {
		t.Fatalf("subscribers = %v", got)
	}

	// OIR 1 drops its subscription: the other dependent keeps it alive.
	ovn2 := res2.OIR.OIR.OVN()
	e.createOIR(ussA, id(1), func(op *scd.PutOperationalIntent) { op.OVN = ovn1; op.Key = []models.OVN{ovn2} })
	if sub, err = e.getSub(ussA, id(50)); err != nil || !slices.Equal(sub.Dependents, []models.ID{id(2)}) {
		t.Fatalf("after release by one dependent: %+v %v", sub, err)
	}

	// OIR 2 switches to a new implicit subscription: the old one is released
	// before notifications, so only the new one is notified.
	ovn1 = e.getOIR(id(1)).OIR.OVN()
	res3 := e.createOIR(ussA, id(2), func(op *scd.PutOperationalIntent) {
		op.OVN = ovn2
		op.NewSubscription = &scd.NewSubscription{USSBaseURL: urlA}
		op.NewSubscriptionID = id(51)
		op.Key = []models.OVN{ovn1}
	})
	if got := indices(t, res3.Subscribers); !maps.Equal(got, map[models.ID]int32{id(51): 1}) {
		t.Fatalf("subscribers = %v", got)
	}
	if _, err := e.getSub(ussA, id(50)); models.CodeOf(err) != models.CodeNotFound {
		t.Fatalf("released implicit subscription still there: %v", err)
	}

	// Deleting the OIR notifies its implicit subscription, then deletes it.
	del := must[scd.OperationalIntentResult](e, &scd.DeleteOperationalIntent{Caller: ussA, ID: id(2), OVN: res3.OIR.OIR.OVN()})
	if got := indices(t, del.Subscribers); !maps.Equal(got, map[models.ID]int32{id(51): 2}) {
		t.Fatalf("delete subscribers = %v", got)
	}
	if del.OIR.OIR.ID != id(2) || del.OIR.OIR.OVN() != res3.OIR.OIR.OVN() {
		t.Errorf("deleted view %+v", del.OIR.OIR)
	}
	if _, err := e.getSub(ussA, id(51)); models.CodeOf(err) != models.CodeNotFound {
		t.Fatalf("implicit subscription of a deleted OIR still there: %v", err)
	}

	// An implicit subscription made explicit through the subscription API
	// survives its OIR (§6.3 E).
	res4 := e.createOIR(ussA, id(3), func(op *scd.PutOperationalIntent) {
		op.Extents = vol(cells(9), 0, 60, 0, 100)
		op.NewSubscription = &scd.NewSubscription{USSBaseURL: urlA}
		op.NewSubscriptionID = id(52)
	})
	sub, _ = e.getSub(ussA, id(52))
	must[scd.PutSubscriptionResult](e, &scd.PutSubscription{Caller: ussA, Now: e.tick(), ID: id(52), Version: sub.Sub.Version(),
		Extents: models.Volume4D{Cells: cells(9)}, USSBaseURL: urlA, NotifyForOperationalIntents: true})
	must[scd.OperationalIntentResult](e, &scd.DeleteOperationalIntent{Caller: ussA, ID: id(3), OVN: res4.OIR.OIR.OVN()})
	if sub, err := e.getSub(ussA, id(52)); err != nil || sub.Sub.Implicit {
		t.Fatalf("explicit subscription after its OIR's deletion: %+v %v", sub, err)
	}
}

// TestOperationalIntentNotifications covers spec §9 for OIRs.
func TestOperationalIntentNotifications(t *testing.T) {
	e := newEnv(t)
	// Subscriptions of B: one on cell 1, one on cell 5, one for constraints
	// only; one of A on cell 1 under a URL sorting first.
	versions := map[models.ID]string{}
	sub := func(caller string, sid models.ID, url string, c models.CellID, ops, crs bool) {
		versions[sid] = must[scd.PutSubscriptionResult](e, e.putSub(caller, sid, func(op *scd.PutSubscription) {
			op.Extents.Cells = cells(c)
			op.Extents.StartTime = nil // from now...
			op.Extents.EndTime = at(180)
			op.USSBaseURL = url
			op.NotifyForOperationalIntents, op.NotifyForConstraints = ops, crs
		})).Sub.Sub.Version()
	}
	sub(ussB, id(61), urlB, 1, true, false)
	sub(ussB, id(60), urlB, 1, true, true)
	sub(ussB, id(62), urlB, 5, true, false)
	sub(ussB, id(63), urlB, 1, false, true)
	sub(ussA, id(64), urlA, 1, true, false)

	res := e.createOIR(ussA, id(1), nil)
	want := []scd.Subscriber{
		{USSBaseURL: urlA, Subscriptions: []scd.SubscriptionState{{ID: id(64), NotificationIndex: 1}}},
		{USSBaseURL: urlB, Subscriptions: []scd.SubscriptionState{{ID: id(60), NotificationIndex: 1}, {ID: id(61), NotificationIndex: 1}}},
	}
	if !slices.EqualFunc(res.Subscribers, want, func(a, b scd.Subscriber) bool {
		return a.USSBaseURL == b.USSBaseURL && slices.Equal(a.Subscriptions, b.Subscriptions)
	}) {
		t.Fatalf("subscribers = %+v, want %+v", res.Subscribers, want)
	}

	// Update from cells 1..3 to cell 5: union(old, new) notifies both sides,
	// each subscription exactly once.
	res = e.createOIR(ussA, id(1), func(op *scd.PutOperationalIntent) {
		op.OVN = res.OIR.OIR.OVN()
		op.Extents = vol(cells(5), 100, 170, 0, 100)
	})
	if got := indices(t, res.Subscribers); !maps.Equal(got, map[models.ID]int32{id(60): 2, id(61): 2, id(62): 1, id(64): 2}) {
		t.Fatalf("update subscribers = %v", got)
	}
	// Delete: old volume only (cell 5).
	del := must[scd.OperationalIntentResult](e, &scd.DeleteOperationalIntent{Caller: ussA, ID: id(1), OVN: res.OIR.OIR.OVN()})
	if got := indices(t, del.Subscribers); !maps.Equal(got, map[models.ID]int32{id(62): 2}) {
		t.Fatalf("delete subscribers = %v", got)
	}
	// Notification increments never change a subscription's version.
	s, _ := e.getSub(ussB, id(60))
	if s.Sub.NotificationIndex != 2 || s.Sub.Version() != versions[id(60)] {
		t.Errorf("subscription after notifications: %+v", s.Sub)
	}
	if s, _ := e.getSub(ussB, id(63)); s.Sub.NotificationIndex != 0 {
		t.Errorf("constraint-only subscription notified of OIRs: %+v", s.Sub)
	}
}

func TestQueryOperationalIntents(t *testing.T) {
	e := newEnv(t)
	must[scd.AvailabilityView](e, &scd.PutUssAvailability{Now: e.tick(), USS: ussB, Availability: models.AvailabilityNormal})
	a := e.createOIR(ussA, id(2), func(op *scd.PutOperationalIntent) { op.Extents = vol(cells(1), 0, 60, 0, 100) }).OIR.OIR
	e.createOIR(ussB, id(1), func(op *scd.PutOperationalIntent) {
		op.Extents = vol(cells(1, 2), 0, 60, 0, 100)
		op.Key = []models.OVN{a.OVN()}
	})
	e.createOIR(ussB, id(3), func(op *scd.PutOperationalIntent) { op.Extents = vol(cells(7), 0, 60, 0, 100) })

	q := func(v models.Volume4D) []scd.OperationalIntentView {
		return must[[]scd.OperationalIntentView](e, &scd.QueryOperationalIntents{Caller: ussA, Area: v})
	}
	got := q(vol(cells(1, 2), 10, 20, 50, 60))
	if len(got) != 2 || got[0].OIR.ID != id(1) || got[1].OIR.ID != id(2) ||
		got[0].Availability != models.AvailabilityNormal || got[1].Availability != models.AvailabilityUnknown {
		t.Fatalf("query = %+v", got)
	}
	if got := q(vol(cells(1, 2), 10, 20, 101, 200)); got == nil || len(got) != 0 {
		t.Fatalf("altitude-disjoint query = %+v, want empty array", got)
	}
	if got := q(models.Volume4D{Cells: cells(7)}); len(got) != 1 || got[0].OIR.ID != id(3) {
		t.Fatalf("unbounded query = %+v", got)
	}
	_, err := run[[]scd.OperationalIntentView](e, &scd.QueryOperationalIntents{Caller: ussA})
	wantCode(t, err, models.CodeBadRequest)
}
