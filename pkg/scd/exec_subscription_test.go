package scd_test

import (
	"slices"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
)

// TestSubscriptionTimeNormalisation covers spec §6.3 B on create.
func TestSubscriptionTimeNormalisation(t *testing.T) {
	now := t0.Add(time.Hour)
	rel := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	tests := []struct {
		name       string
		start, end *time.Time
		wantStart  time.Time
		wantEnd    time.Time
		wantErr    bool
	}{
		{"both absent", nil, nil, now, now.Add(24 * time.Hour), false},
		{"end absent", rel(time.Hour), nil, now.Add(time.Hour), now.Add(25 * time.Hour), false},
		{"start absent", nil, rel(time.Hour), now, now.Add(time.Hour), false},
		{"start 5 min in the past", rel(-5 * time.Minute), rel(time.Hour), now.Add(-5 * time.Minute), now.Add(time.Hour), false},
		{"start over 5 min in the past", rel(-5*time.Minute - time.Nanosecond), rel(time.Hour), time.Time{}, time.Time{}, true},
		{"exactly 24 h", rel(0), rel(24 * time.Hour), now, now.Add(24 * time.Hour), false},
		{"over 24 h", rel(0), rel(24*time.Hour + time.Nanosecond), time.Time{}, time.Time{}, true},
		{"end equals start (Deviation)", rel(time.Hour), rel(time.Hour), time.Time{}, time.Time{}, true},
		{"end before start", rel(time.Hour), rel(time.Minute), time.Time{}, time.Time{}, true},
		{"absent start after end", nil, rel(-time.Minute), time.Time{}, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			res, err := run[scd.PutSubscriptionResult](e, &scd.PutSubscription{Caller: ussA, Now: now, ID: id(60),
				Extents:    models.Volume4D{Cells: cells(1), StartTime: tt.start, EndTime: tt.end},
				USSBaseURL: urlA, NotifyForOperationalIntents: true})
			if tt.wantErr {
				wantCode(t, err, models.CodeBadRequest)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := res.Sub.Sub
			if !s.StartTime.Equal(tt.wantStart) || !s.EndTime.Equal(tt.wantEnd) {
				t.Fatalf("times %v..%v, want %v..%v", s.StartTime, s.EndTime, tt.wantStart, tt.wantEnd)
			}
			if s.Implicit || s.NotificationIndex != 0 || s.UpdatedAt != now || s.Manager != ussA ||
				s.Version() != models.DeriveVersion(string(id(60)), now) || res.Sub.Dependents == nil {
				t.Errorf("created %+v dependents %v", s, res.Sub.Dependents)
			}
		})
	}
}

// TestSubscriptionStatusCodes covers the subscription rows of spec §15 and
// the order of §6.3 B–C and Delete.
func TestSubscriptionStatusCodes(t *testing.T) {
	e := newEnv(t)
	v := must[scd.PutSubscriptionResult](e, e.putSub(ussA, id(60), nil)).Sub.Sub.Version()
	put := func(caller, version string, mod func(*scd.PutSubscription)) error {
		_, err := run[scd.PutSubscriptionResult](e, e.putSub(caller, id(60), func(op *scd.PutSubscription) {
			op.Version = version
			if mod != nil {
				mod(op)
			}
		}))
		return err
	}
	del := func(caller, version string) error {
		_, err := run[scd.SubscriptionView](e, &scd.DeleteSubscription{Caller: caller, ID: id(60), Version: version})
		return err
	}
	tests := []struct {
		name string
		err  func() error
		want models.Code
	}{
		{"create on existing id", func() error { return put(ussA, "", nil) }, models.CodeAlreadyExists},
		{"create on another USS's id: version before owner", func() error { return put(ussB, "", nil) }, models.CodeAlreadyExists},
		{"update by another USS with wrong version", func() error { return put(ussB, "nope", nil) }, models.CodeVersionMismatch},
		{"update by another USS", func() error { return put(ussB, v, nil) }, models.CodePermissionDenied},
		{"update with wrong version", func() error { return put(ussA, "nope", nil) }, models.CodeVersionMismatch},
		{"time checked before existence", func() error {
			return put(ussB, "", func(op *scd.PutSubscription) { op.Extents.StartTime = at(-60) })
		}, models.CodeBadRequest},
		{"no notify flag", func() error {
			return put(ussA, "", func(op *scd.PutSubscription) { op.NotifyForOperationalIntents = false })
		}, models.CodeBadRequest},
		{"update of missing subscription", func() error {
			_, err := run[scd.PutSubscriptionResult](e, e.putSub(ussA, id(61), func(op *scd.PutSubscription) { op.Version = v }))
			return err
		}, models.CodeBadRequest},
		{"get by another USS", func() error { _, err := e.getSub(ussB, id(60)); return err }, models.CodePermissionDenied},
		{"get missing", func() error { _, err := e.getSub(ussA, id(61)); return err }, models.CodeNotFound},
		{"delete missing", func() error {
			_, err := run[scd.SubscriptionView](e, &scd.DeleteSubscription{Caller: ussA, ID: id(61), Version: v})
			return err
		}, models.CodeNotFound},
		{"delete by another USS with wrong version: owner first", func() error { return del(ussB, "nope") }, models.CodePermissionDenied},
		{"delete with wrong version", func() error { return del(ussA, "nope") }, models.CodeVersionMismatch},
		{"delete with empty version", func() error { return del(ussA, "") }, models.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.err(), tt.want) })
	}
	if s, err := e.getSub(ussA, id(60)); err != nil || s.Sub.Version() != v {
		t.Fatalf("subscription changed by failed requests: %+v %v", s, err)
	}
	got := must[scd.SubscriptionView](e, &scd.DeleteSubscription{Caller: ussA, ID: id(60), Version: v})
	if got.Sub.ID != id(60) || got.Dependents == nil {
		t.Errorf("deleted %+v", got)
	}
	if _, err := e.getSub(ussA, id(60)); models.CodeOf(err) != models.CodeNotFound {
		t.Errorf("after delete: %v", err)
	}
}

// TestSubscriptionUpdateWithDependents covers §6.3 D and E and the
// dependents rule of Delete.
func TestSubscriptionUpdateWithDependents(t *testing.T) {
	e := newEnv(t)
	// Implicit subscription 50 of OIR 1 (cells 1..3, t0..t0+60min, 0..100 m),
	// notified once by its own creation.
	oir := e.createOIR(ussA, id(1), func(op *scd.PutOperationalIntent) {
		op.NewSubscription = &scd.NewSubscription{USSBaseURL: urlA}
		op.NewSubscriptionID = id(50)
	}).OIR.OIR
	sub, _ := e.getSub(ussA, id(50))
	version := sub.Sub.Version()

	tests := []struct {
		name string
		mod  func(*models.Volume4D)
		ok   bool
	}{
		{"cells no longer covered", func(v *models.Volume4D) { v.Cells = cells(1, 2) }, false},
		{"lower altitude above the OIR", func(v *models.Volume4D) { v.AltitudeLower = alt(1) }, false},
		{"upper altitude below the OIR", func(v *models.Volume4D) { v.AltitudeUpper = alt(99) }, false},
		{"starts over 5 min after the OIR", func(v *models.Volume4D) { v.StartTime = at(5.01) }, false},
		{"ends before the OIR", func(v *models.Volume4D) { v.EndTime = at(59) }, false},
		{"absent altitudes cover", func(v *models.Volume4D) { v.AltitudeLower, v.AltitudeUpper = nil, nil }, true},
		{"starts 5 min after the OIR", func(v *models.Volume4D) { v.StartTime = at(5) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ext := vol(cells(1, 2, 3, 4), 0, 60, 0, 100)
			tt.mod(&ext)
			op := &scd.PutSubscription{Caller: ussA, Now: e.tick(), ID: id(50), Version: version,
				Extents: ext, USSBaseURL: urlB, NotifyForOperationalIntents: true, NotifyForConstraints: true}
			res, err := run[scd.PutSubscriptionResult](e, op)
			if !tt.ok {
				wantCode(t, err, models.CodeBadRequest)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := res.Sub.Sub
			// Written explicit, notification index kept, new version.
			if s.Implicit || s.NotificationIndex != 1 || s.Version() == version || s.USSBaseURL != urlB ||
				!slices.Equal(s.Cells, cells(1, 2, 3, 4)) || !slices.Equal(res.Sub.Dependents, []models.ID{id(1)}) {
				t.Fatalf("updated %+v dependents %v", s, res.Sub.Dependents)
			}
			// Both flags set: both lists present (non-nil), OIR 1 in the first.
			if len(res.OIRs) != 1 || res.OIRs[0].OIR.ID != id(1) || res.CRs == nil {
				t.Fatalf("OIRs %+v CRs %+v", res.OIRs, res.CRs)
			}
			version = s.Version()
		})
	}

	// Deleting a subscription with dependents is 400, explicit or implicit.
	_, err := run[scd.SubscriptionView](e, &scd.DeleteSubscription{Caller: ussA, ID: id(50), Version: version})
	wantCode(t, err, models.CodeBadRequest)
	// Now explicit: deleting the OIR keeps it (§6.3 E).
	must[scd.OperationalIntentResult](e, &scd.DeleteOperationalIntent{Caller: ussA, ID: id(1), OVN: oir.OVN()})
	if s, err := e.getSub(ussA, id(50)); err != nil || len(s.Dependents) != 0 {
		t.Fatalf("after the OIR's deletion: %+v %v", s, err)
	}
	must[scd.SubscriptionView](e, &scd.DeleteSubscription{Caller: ussA, ID: id(50), Version: version})
}

// TestPutSubscriptionResponseLists covers §6.3 F: OIRs on the stored time
// range, CRs on the request's own times; lists only for the flags set.
func TestPutSubscriptionResponseLists(t *testing.T) {
	e := newEnv(t)
	e.createOIR(ussB, id(1), func(op *scd.PutOperationalIntent) { op.Extents = vol(cells(1), 0, 60, 0, 100) })
	e.createOIR(ussB, id(2), func(op *scd.PutOperationalIntent) { op.Extents = vol(cells(1), 200, 260, 0, 100) })
	must[scd.ConstraintResult](e, &scd.PutConstraint{Caller: ussB, Now: e.tick(), ID: id(80),
		Extents: vol(cells(1), 0, 60, 0, 0), USSBaseURL: urlB})
	must[scd.ConstraintResult](e, &scd.PutConstraint{Caller: ussB, Now: e.tick(), ID: id(81),
		Extents: vol(cells(1), 3000, 3060, 0, 0), USSBaseURL: urlB})

	// No times: stored t0+~5s .. +24h, so OIRs 1 and 2 match; CRs are
	// searched without a time filter, so both match.
	res := must[scd.PutSubscriptionResult](e, &scd.PutSubscription{Caller: ussA, Now: e.tick(), ID: id(60),
		Extents: models.Volume4D{Cells: cells(1)}, USSBaseURL: urlA,
		NotifyForOperationalIntents: true, NotifyForConstraints: true})
	if len(res.OIRs) != 2 || res.OIRs[0].OIR.ID != id(1) || res.OIRs[1].OIR.ID != id(2) {
		t.Fatalf("OIRs %+v", res.OIRs)
	}
	if len(res.CRs) != 2 || res.CRs[0].ID != id(80) || res.CRs[1].ID != id(81) {
		t.Fatalf("CRs %+v", res.CRs)
	}
	// A bounded request: only what overlaps it.
	res = must[scd.PutSubscriptionResult](e, &scd.PutSubscription{Caller: ussA, Now: e.tick(), ID: id(61),
		Extents: models.Volume4D{Cells: cells(1, 2), StartTime: at(0), EndTime: at(30)}, USSBaseURL: urlA,
		NotifyForConstraints: true})
	if res.OIRs != nil || len(res.CRs) != 1 || res.CRs[0].ID != id(80) {
		t.Fatalf("OIRs %+v CRs %+v", res.OIRs, res.CRs)
	}
	res = must[scd.PutSubscriptionResult](e, &scd.PutSubscription{Caller: ussA, Now: e.tick(), ID: id(62),
		Extents: models.Volume4D{Cells: cells(2)}, USSBaseURL: urlA, NotifyForOperationalIntents: true})
	if res.OIRs == nil || len(res.OIRs) != 0 || res.CRs != nil {
		t.Fatalf("OIRs %+v CRs %+v", res.OIRs, res.CRs)
	}
}

func TestQuerySubscriptions(t *testing.T) {
	e := newEnv(t)
	mk := func(caller string, sid models.ID, start, end float64) {
		must[scd.PutSubscriptionResult](e, e.putSub(caller, sid, func(op *scd.PutSubscription) {
			op.Extents.StartTime, op.Extents.EndTime = at(start), at(end)
		}))
	}
	mk(ussA, id(61), 0, 30)
	mk(ussA, id(60), 0, 60)
	mk(ussB, id(62), 0, 60)
	q := func(now time.Time) []models.ID {
		got := must[[]scd.SubscriptionView](e, &scd.QuerySubscriptions{Caller: ussA, Now: now,
			Area: models.Volume4D{Cells: cells(2)}})
		var ids []models.ID
		for _, v := range got {
			if v.Dependents == nil {
				t.Errorf("nil dependents for %s", v.Sub.ID)
			}
			ids = append(ids, v.Sub.ID)
		}
		return ids
	}
	if got := q(*at(10)); !slices.Equal(got, []models.ID{id(60), id(61)}) {
		t.Fatalf("query = %v", got)
	}
	// Ending exactly now is not expired; ending before now is.
	if got := q(*at(30)); !slices.Equal(got, []models.ID{id(60), id(61)}) {
		t.Fatalf("query at the end of 61 = %v", got)
	}
	if got := q(at(30).Add(time.Nanosecond)); !slices.Equal(got, []models.ID{id(60)}) {
		t.Fatalf("query after the end of 61 = %v", got)
	}
	_, err := run[[]scd.SubscriptionView](e, &scd.QuerySubscriptions{Caller: ussA, Now: e.now})
	wantCode(t, err, models.CodeBadRequest)
}
