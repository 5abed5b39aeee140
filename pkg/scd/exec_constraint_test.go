package scd_test

import (
	"maps"
	"testing"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
)

func TestConstraintLifecycle(t *testing.T) {
	e := newEnv(t)
	// One subscription per notify flag over cell 1.
	for sid, crs := range map[models.ID]bool{id(60): true, id(61): false} {
		must[scd.PutSubscriptionResult](e, e.putSub(ussB, sid, func(op *scd.PutSubscription) {
			op.Extents.StartTime, op.Extents.EndTime = nil, at(180)
			op.NotifyForOperationalIntents, op.NotifyForConstraints = !crs, crs
		}))
	}
	put := func(caller string, ovn models.OVN, ext models.Volume4D) (scd.ConstraintResult, error) {
		return run[scd.ConstraintResult](e, &scd.PutConstraint{Caller: caller, Now: e.tick(), ID: id(80), OVN: ovn,
			Extents: ext, USSBaseURL: urlA})
	}
	ext := models.Volume4D{Cells: cells(1, 2), StartTime: at(0), EndTime: at(60)} // no altitudes: optional

	_, err := put(ussA, "some-ovn-0123456789", ext)
	wantCode(t, err, models.CodeVersionMismatch) // update of a missing CR is 409 (§15)
	res, err := put(ussA, "", ext)
	if err != nil {
		t.Fatal(err)
	}
	cr := res.CR
	if cr.Version != 1 || cr.Manager != ussA || cr.OVN() != models.OVN(models.DeriveVersion(string(id(80)), e.now)) ||
		cr.AltitudeLower != nil || cr.AltitudeUpper != nil {
		t.Fatalf("created %+v", cr)
	}
	if got := indices(t, res.Subscribers); !maps.Equal(got, map[models.ID]int32{id(60): 1}) {
		t.Fatalf("subscribers = %v (OIR-only subscriptions must not be notified)", got)
	}
	got := must[*models.Constraint](e, &scd.GetConstraint{Caller: ussB, ID: id(80)})
	if got.OVN() != cr.OVN() {
		t.Fatalf("get = %+v", got)
	}

	for _, tt := range []struct {
		name   string
		caller string
		ovn    models.OVN
		want   models.Code
	}{
		{"create on existing id", ussA, "", models.CodeAlreadyExists},
		{"another USS, owner before OVN", ussB, "wrong-ovn-0123456789", models.CodePermissionDenied},
		{"wrong OVN", ussA, "wrong-ovn-0123456789", models.CodeVersionMismatch},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := put(tt.caller, tt.ovn, ext)
			wantCode(t, err, tt.want)
		})
	}

	// Update away from cell 1: union(old, new) still notifies once.
	upd := models.Volume4D{Cells: cells(7), StartTime: at(10), EndTime: at(20), AltitudeLower: alt(5)}
	res, err = put(ussA, cr.OVN(), upd)
	if err != nil {
		t.Fatal(err)
	}
	if res.CR.Version != 2 || res.CR.OVN() == cr.OVN() || res.CR.AltitudeLower == nil || *res.CR.AltitudeLower != 5 {
		t.Fatalf("updated %+v", res.CR)
	}
	if got := indices(t, res.Subscribers); !maps.Equal(got, map[models.ID]int32{id(60): 2}) {
		t.Fatalf("update subscribers = %v", got)
	}

	q := func(v models.Volume4D) []*models.Constraint {
		return must[[]*models.Constraint](e, &scd.QueryConstraints{Caller: ussB, Area: v})
	}
	// Altitude is ignored for constraints (§4).
	if got := q(vol(cells(7), 0, 15, 1000, 2000)); len(got) != 1 || got[0].ID != id(80) {
		t.Fatalf("query = %+v", got)
	}
	if got := q(vol(cells(1), 0, 60, 0, 0)); got == nil || len(got) != 0 {
		t.Fatalf("query of the old area = %+v", got)
	}

	delOp := func(caller string, ovn models.OVN, cid models.ID) error {
		_, err := run[scd.ConstraintResult](e, &scd.DeleteConstraint{Caller: caller, ID: cid, OVN: ovn})
		return err
	}
	wantCode(t, delOp(ussA, res.CR.OVN(), id(81)), models.CodeNotFound)
	wantCode(t, delOp(ussB, "x", id(80)), models.CodePermissionDenied)
	wantCode(t, delOp(ussA, "x", id(80)), models.CodeVersionMismatch)
	wantCode(t, delOp(ussA, "", id(80)), models.CodeBadRequest)
	del := must[scd.ConstraintResult](e, &scd.DeleteConstraint{Caller: ussA, ID: id(80), OVN: res.CR.OVN()})
	if del.CR.OVN() != res.CR.OVN() || len(del.Subscribers) != 0 {
		t.Fatalf("delete = %+v (cell 7 has no subscriber)", del)
	}
	_, err = run[*models.Constraint](e, &scd.GetConstraint{Caller: ussA, ID: id(80)})
	wantCode(t, err, models.CodeNotFound)
}
