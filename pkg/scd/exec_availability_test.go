package scd_test

import (
	"testing"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
)

// TestUssAvailability covers spec §6.4.
func TestUssAvailability(t *testing.T) {
	e := newEnv(t)
	get := func() scd.AvailabilityView {
		return must[scd.AvailabilityView](e, &scd.GetUssAvailability{USS: ussB})
	}
	set := func(old string, a models.Availability) (scd.AvailabilityView, error) {
		return run[scd.AvailabilityView](e, &scd.PutUssAvailability{Now: e.tick(), USS: ussB, OldVersion: old, Availability: a})
	}
	if got := get(); got != (scd.AvailabilityView{USS: ussB, Availability: models.AvailabilityUnknown}) {
		t.Fatalf("no record: %+v", got)
	}
	_, err := set("v1", models.AvailabilityDown)
	wantCode(t, err, models.CodeVersionMismatch)
	v, err := set("", models.AvailabilityDown)
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != models.DeriveVersion(ussB, e.now) || v.Availability != models.AvailabilityDown || get() != v {
		t.Fatalf("set = %+v, get = %+v", v, get())
	}
	_, err = set("", models.AvailabilityNormal) // omitted old_version vs an existing record
	wantCode(t, err, models.CodeVersionMismatch)
	_, err = set("stale", models.AvailabilityNormal)
	wantCode(t, err, models.CodeVersionMismatch)
	_, err = set(v.Version, "Sideways")
	wantCode(t, err, models.CodeBadRequest)
	v2, err := set(v.Version, models.AvailabilityNormal)
	if err != nil || v2.Version == v.Version || get().Availability != models.AvailabilityNormal {
		t.Fatalf("second set = %+v, %v", v2, err)
	}
	_, err = run[scd.AvailabilityView](e, &scd.GetUssAvailability{})
	wantCode(t, err, models.CodeBadRequest)
}
