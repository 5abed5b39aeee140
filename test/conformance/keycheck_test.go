package conformance

import (
	"net/http"
	"testing"
	"time"
)

// TestKeyCheck covers spec §7: missing OIRs and CRs listed in the 409 body,
// OVNs scrubbed for other managers, passing the OVNs succeeds.
func TestKeyCheck(t *testing.T) {
	t.Parallel()
	u1 := newUSS(t, "uss1", sc)
	m2 := newUSS(t, "cm2", cm)
	u3 := newUSS(t, "uss3", sc)
	p := newPlace()
	start, end := at(10*time.Minute), at(time.Hour)
	v := box(p, start, end)
	a := createOIR(t, u1, newID(), withNewSub(oirParams(u1.base, "Accepted", v), u1.base, false)).OIR
	c := createCR(t, m2, newID(), crParams(m2.base, v)).CR
	aScrubbed, cScrubbed := a, c
	aScrubbed.OVN, cScrubbed.OVN = scrubbedOVN, scrubbedOVN

	// Subscription with notify_for_constraints: both lists.
	id := newID()
	body := withNewSub(oirParams(u3.base, "Accepted", v), u3.base, true)
	r := u3.do(t, http.MethodPut, path(oirPrefix, id), body).expectError(t, http.StatusConflict)
	var cf conflictW
	r.decode(t, &cf)
	if len(cf.MissingOIRs) != 1 || cf.MissingOIRs[0] != aScrubbed {
		t.Fatalf("missing_operational_intents = %+v, want [%+v]", cf.MissingOIRs, aScrubbed)
	}
	if len(cf.MissingCRs) != 1 || cf.MissingCRs[0] != cScrubbed {
		t.Fatalf("missing_constraints = %+v, want [%+v]", cf.MissingCRs, cScrubbed)
	}
	// The implicit subscription of the failed request was rolled back (§7.3).
	var q struct {
		Subs []subW `json:"subscriptions"`
	}
	u3.do(t, http.MethodPost, subQueryPath, queryParams(v)).expect(t, http.StatusOK).decode(t, &q)
	if len(q.Subs) != 0 {
		t.Fatalf("after a 409, uss3 has subscriptions %+v, want none (rolled back)", q.Subs)
	}
	u3.do(t, http.MethodGet, path(oirPrefix, id), nil).expectError(t, http.StatusNotFound)

	// Only the OIR's OVN: the CR is still missing.
	r = u3.do(t, http.MethodPut, path(oirPrefix, id), withKey(body, a.OVN)).expectError(t, http.StatusConflict)
	raw := r.object(t)
	if _, ok := raw["missing_operational_intents"]; ok {
		t.Fatalf("missing_operational_intents present although empty (§3.7): %s", r)
	}
	r.decode(t, &cf)
	if len(cf.MissingCRs) != 1 || cf.MissingCRs[0].ID != c.ID {
		t.Fatalf("missing_constraints = %+v, want [%s]", cf.MissingCRs, c.ID)
	}

	// Without notify_for_constraints, CRs are not required (§7.2).
	r = u3.do(t, http.MethodPut, path(oirPrefix, id), withNewSub(oirParams(u3.base, "Accepted", v), u3.base, false)).
		expectError(t, http.StatusConflict)
	raw = r.object(t)
	if _, ok := raw["missing_constraints"]; ok {
		t.Fatalf("missing_constraints present without notify_for_constraints: %s", r)
	}

	// All OVNs (plus an unrelated one): success.
	created := createOIR(t, u3, id, withKey(body, a.OVN, c.OVN, "unrelated-ovn-0123456789"))
	expectOVN(t, created.OIR.OVN)

	// The caller's own OIRs count too, listed with their real OVN.
	r = u1.do(t, http.MethodPut, path(oirPrefix, newID()), oirParams(u1.base, "Accepted", v)).expectError(t, http.StatusConflict)
	r.decode(t, &cf)
	got := oirIDs(cf.MissingOIRs)
	b := created.OIR
	b.OVN = scrubbedOVN
	if len(got) != 2 || got[a.ID] != a || got[b.ID] != b {
		t.Fatalf("missing_operational_intents = %+v, want own %+v (real OVN) and %+v (scrubbed)", cf.MissingOIRs, a, b)
	}

	// Update of a itself: its own OVN is not needed, b's is.
	r = u1.do(t, http.MethodPut, path(oirPrefix, a.ID, a.OVN), withSub(oirParams(u1.base, "Activated", v), a.SubscriptionID)).
		expectError(t, http.StatusConflict)
	r.decode(t, &cf)
	if len(cf.MissingOIRs) != 1 || cf.MissingOIRs[0].ID != created.OIR.ID {
		t.Fatalf("missing_operational_intents = %+v, want only %s", cf.MissingOIRs, created.OIR.ID)
	}
	updateOIR(t, u1, a.ID, a.OVN, withKey(withSub(oirParams(u1.base, "Activated", v), a.SubscriptionID), a.OVN, created.OIR.OVN))
}

// TestKeyCheckAltitudeAndTime: OIRs disjoint in altitude or time do not need
// each other's OVNs (§4 matching is altitude-aware for OIRs, §7.1).
func TestKeyCheckAltitudeAndTime(t *testing.T) {
	t.Parallel()
	u1, u2 := newUSS(t, "uss1", sc), newUSS(t, "uss2", sc)
	p := newPlace()
	start, end := at(10*time.Minute), at(time.Hour)
	createOIR(t, u1, newID(), oirParams(u1.base, "Accepted", box(p, start, end).alt(100, 200)))
	createOIR(t, u2, newID(), oirParams(u2.base, "Accepted", box(p, start, end).alt(201, 300)))
	createOIR(t, u2, newID(), oirParams(u2.base, "Accepted", box(p, end.Add(time.Second), end.Add(time.Hour)).alt(100, 200)))
	// Touching altitude (inclusive bounds) conflicts.
	u2.do(t, http.MethodPut, path(oirPrefix, newID()), oirParams(u2.base, "Accepted", box(p, start, end).alt(0, 100))).
		expectError(t, http.StatusConflict)
}

// TestKeyCheckDownUSS: an Accepted OIR of a USS whose availability is Down
// needs no key; an Activated one still does (§5.4, §7.1).
func TestKeyCheckDownUSS(t *testing.T) {
	t.Parallel()
	down := newUSS(t, "down", sc)
	arb := newUSS(t, "arbiter", aa)
	u2 := newUSS(t, "uss2", sc)
	p, q := newPlace(), newPlace()
	start, end := at(10*time.Minute), at(time.Hour)
	accepted := createOIR(t, down, newID(), oirParams(down.base, "Accepted", box(p, start, end))).OIR
	sub := createOIR(t, down, newID(), withNewSub(oirParams(down.base, "Accepted", box(q, start, end)), down.base, false)).OIR
	activated := updateOIR(t, down, sub.ID, sub.OVN, withSub(oirParams(down.base, "Activated", box(q, start, end)), sub.SubscriptionID)).OIR

	// Control: while its availability is unknown, the Accepted OIR needs a key.
	u2.do(t, http.MethodPut, path(oirPrefix, newID()), oirParams(u2.base, "Accepted", box(p, start, end))).
		expectError(t, http.StatusConflict)

	// Down: the Accepted OIR is exempt, the Activated one is not.
	setAvailability(t, arb, down.sub, "", "Down")
	if o := getOIR(t, u2, accepted.ID); o.USSAvailability != "Down" {
		t.Fatalf("uss_availability %q, want Down", o.USSAvailability)
	}
	createOIR(t, u2, newID(), oirParams(u2.base, "Accepted", box(p, start, end)))
	var cf conflictW
	u2.do(t, http.MethodPut, path(oirPrefix, newID()), oirParams(u2.base, "Accepted", box(q, start, end))).
		expectError(t, http.StatusConflict).decode(t, &cf)
	if len(cf.MissingOIRs) != 1 || cf.MissingOIRs[0].ID != activated.ID || cf.MissingOIRs[0].USSAvailability != "Down" {
		t.Fatalf("missing_operational_intents = %+v, want the Activated OIR %s of the Down USS", cf.MissingOIRs, activated.ID)
	}
}

// TestKeyCheckAvailabilityRestored: once the USS is Normal again, its
// Accepted OIR needs a key again.
func TestKeyCheckAvailabilityRestored(t *testing.T) {
	t.Parallel()
	u1 := newUSS(t, "uss1", sc)
	arb := newUSS(t, "arbiter", aa)
	u2 := newUSS(t, "uss2", sc)
	p := newPlace()
	start, end := at(10*time.Minute), at(time.Hour)
	a := createOIR(t, u1, newID(), oirParams(u1.base, "Accepted", box(p, start, end))).OIR
	st := setAvailability(t, arb, u1.sub, "", "Down")
	setAvailability(t, arb, u1.sub, st.Version, "Normal")
	var cf conflictW
	u2.do(t, http.MethodPut, path(oirPrefix, newID()), oirParams(u2.base, "Accepted", box(p, start, end))).
		expectError(t, http.StatusConflict).decode(t, &cf)
	if len(cf.MissingOIRs) != 1 || cf.MissingOIRs[0].ID != a.ID {
		t.Fatalf("missing_operational_intents = %+v, want %s", cf.MissingOIRs, a.ID)
	}
}

// TestKeyCheckSkippedForOffNominal: Nonconforming and Contingent writes with
// CMSA skip the key check (§5.1, §7); Activated does not.
func TestKeyCheckSkippedForOffNominal(t *testing.T) {
	t.Parallel()
	u1 := newUSS(t, "uss1", sc)
	u2 := newUSS(t, "uss2", sc)
	u2cmsa := u2.as(t, sc, cmsa)
	p := newPlace()
	start, end := at(10*time.Minute), at(time.Hour)
	v := box(p, start, end)
	b := createOIR(t, u2, newID(), withNewSub(oirParams(u2.base, "Accepted", v), u2.base, false)).OIR
	a := createOIR(t, u1, newID(), withKey(oirParams(u1.base, "Accepted", v), b.OVN)).OIR

	// Activated without a's OVN: 409.
	var cf conflictW
	u2.do(t, http.MethodPut, path(oirPrefix, b.ID, b.OVN), withSub(oirParams(u2.base, "Activated", v), b.SubscriptionID)).
		expectError(t, http.StatusConflict).decode(t, &cf)
	if len(cf.MissingOIRs) != 1 || cf.MissingOIRs[0].ID != a.ID {
		t.Fatalf("missing_operational_intents = %+v, want %s", cf.MissingOIRs, a.ID)
	}
	// Nonconforming, then Contingent, with an empty key: 200.
	nc := updateOIR(t, u2cmsa, b.ID, b.OVN, withSub(oirParams(u2.base, "Nonconforming", v), b.SubscriptionID)).OIR
	if nc.State != "Nonconforming" || nc.Version != 2 {
		t.Fatalf("updated OIR %+v, want Nonconforming version 2", nc)
	}
	ct := updateOIR(t, u2cmsa, b.ID, nc.OVN, withSub(oirParams(u2.base, "Contingent", v), b.SubscriptionID)).OIR
	if ct.State != "Contingent" || ct.Version != 3 {
		t.Fatalf("updated OIR %+v, want Contingent version 3", ct)
	}
	// A CMSA-only token works for the write (§1 row 4: CMSA alone).
	updateOIR(t, u2.as(t, cmsa), b.ID, ct.OVN, withSub(oirParams(u2.base, "Nonconforming", v), b.SubscriptionID))
}
