package conformance

import (
	"net/http"
	"testing"
	"time"
)

// TestAvailability covers endpoints 17-18 (spec §5.4, §6.4).
func TestAvailability(t *testing.T) {
	t.Parallel()
	arb := newUSS(t, "arbiter", aa)
	reader := newUSS(t, "reader", sc)
	ussID := "uss-avail-" + suffix()

	// Unknown USS: "Unknown" with version "".
	var g availW
	r := reader.do(t, http.MethodGet, path(availPrefix, ussID), nil).expect(t, http.StatusOK)
	raw := r.object(t)
	if _, ok := raw["version"].(string); !ok {
		t.Fatalf(`response lacks a "version" string: %s`, r)
	}
	r.decode(t, &g)
	if g.Status.USS != ussID || g.Status.Availability != "Unknown" || g.Version != "" {
		t.Fatalf("unknown USS = %+v, want uss %s, Unknown, version \"\"", g, ussID)
	}

	// No record and old_version ≠ "" → 409.
	arb.do(t, http.MethodPut, path(availPrefix, ussID), map[string]any{"old_version": "bogus", "availability": "Normal"}).
		expectError(t, http.StatusConflict)

	// Create; input is case-insensitive, output capitalised.
	s1 := setAvailability(t, arb, ussID, "", "normal")
	if s1.Status.USS != ussID || s1.Status.Availability != "Normal" || s1.Version == "" {
		t.Fatalf("set = %+v, want Normal with a version", s1)
	}
	reader.do(t, http.MethodGet, path(availPrefix, ussID), nil).expect(t, http.StatusOK).decode(t, &g)
	if g != s1 {
		t.Fatalf("GET after set = %+v, want %+v", g, s1)
	}

	// Record exists: old_version must equal its version (omitted counts as "").
	for name, body := range map[string]map[string]any{
		"empty old_version":   {"old_version": "", "availability": "Down"},
		"omitted old_version": {"availability": "Down"},
		"wrong old_version":   {"old_version": s1.Version + "x", "availability": "Down"},
	} {
		r := arb.do(t, http.MethodPut, path(availPrefix, ussID), body)
		if r.status != http.StatusConflict {
			t.Fatalf("%s: want 409: %s", name, r)
		}
		r.expectError(t, http.StatusConflict)
	}

	s2 := setAvailability(t, arb, ussID, s1.Version, "DOWN")
	if s2.Status.Availability != "Down" || s2.Version == "" || s2.Version == s1.Version {
		t.Fatalf("second set = %+v, want Down with a new version (old %q)", s2, s1.Version)
	}
	// The old version is stale now.
	arb.do(t, http.MethodPut, path(availPrefix, ussID), map[string]any{"old_version": s1.Version, "availability": "Normal"}).
		expectError(t, http.StatusConflict)
	// "" means Unknown.
	s3 := setAvailability(t, arb, ussID, s2.Version, "")
	if s3.Status.Availability != "Unknown" || s3.Version == s2.Version {
		t.Fatalf("set \"\" = %+v, want Unknown with a new version", s3)
	}
	// Invalid availability → 400.
	arb.do(t, http.MethodPut, path(availPrefix, ussID), map[string]any{"old_version": s3.Version, "availability": "Sleeping"}).
		expectError(t, http.StatusBadRequest)
	// Setting needs AA (§1 row 18).
	reader.do(t, http.MethodPut, path(availPrefix, ussID), map[string]any{"old_version": s3.Version, "availability": "Normal"}).
		expectError(t, http.StatusForbidden)
}

// TestAvailabilityInOIR: uss_availability of an OIR is its manager's current
// availability (§5.1).
func TestAvailabilityInOIR(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "uss1", sc)
	arb := newUSS(t, "arbiter", aa)
	id := newID()
	createOIR(t, u, id, oirParams(u.base, "Accepted", box(newPlace(), at(10*time.Minute), at(time.Hour))))
	setAvailability(t, arb, u.sub, "", "Normal")
	if o := getOIR(t, u, id); o.USSAvailability != "Normal" {
		t.Fatalf("uss_availability %q, want Normal", o.USSAvailability)
	}
}

// TestReports: POST /reports → 201 with the report and a new report_id
// (§6.5); every scope of §1 row 16 may report.
func TestReports(t *testing.T) {
	t.Parallel()
	report := map[string]any{"exchange": map[string]any{
		"url":            "https://uss.example.com/uss/v1/operational_intents/" + newID(),
		"method":         "GET",
		"headers":        []string{"Authorization: Bearer x"},
		"recorder_role":  "Client",
		"request_time":   timeWire(at(-time.Minute)),
		"request_source": "uss1",
		"response_code":  500,
		"problem":        "USS returned 500",
	}}
	for _, scope := range []string{cm, cp, sc, cmsa, aa} {
		u := newUSS(t, "reporter", scope)
		r := u.do(t, http.MethodPost, reportsPath, report).expect(t, http.StatusCreated)
		var out struct {
			ReportID string         `json:"report_id"`
			Exchange map[string]any `json:"exchange"`
		}
		r.decode(t, &out)
		expectUUIDv4(t, "report_id", out.ReportID)
		if out.Exchange["problem"] != "USS returned 500" || out.Exchange["method"] != "GET" {
			t.Fatalf("report exchange not echoed: %s", r)
		}
	}
	newUSS(t, "reporter", sc).do(t, http.MethodPost, reportsPath, rawBody("{not json")).expectError(t, http.StatusBadRequest)
}
