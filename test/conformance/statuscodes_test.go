package conformance

import (
	"net/http"
	"testing"
	"time"
)

// bigSquare is a 1°×1° polygon at p: ≥ 7 000 km² for |lat| ≤ 50, above the
// 2 500 km² limit of §4.
func bigSquare(p place) []place {
	return []place{p, {p.lat, p.lng + 1}, {p.lat + 1, p.lng + 1}, {p.lat + 1, p.lng}}
}

// TestStatusCodeTable checks every row of spec §15, each as a subtest.
func TestStatusCodeTable(t *testing.T) {
	t.Parallel()
	window := func() (time.Time, time.Time) { return at(10 * time.Minute), at(time.Hour) }

	t.Run("create existing OIR/CR/sub owned by caller → 409", func(t *testing.T) {
		t.Parallel()
		u := newUSS(t, "uss1", sc, cm)
		v := box(newPlace(), at(10*time.Minute), at(time.Hour))
		oid, cid, sid := newID(), newID(), newID()
		createOIR(t, u, oid, oirParams(u.base, "Accepted", v))
		u.do(t, http.MethodPut, path(oirPrefix, oid), withKey(oirParams(u.base, "Accepted", v), getOIR(t, u, oid).OVN)).
			expectError(t, http.StatusConflict)
		createCR(t, u, cid, crParams(u.base, v))
		u.do(t, http.MethodPut, path(crPrefix, cid), crParams(u.base, v)).expectError(t, http.StatusConflict)
		putSub(t, u, sid, "", subParams(u.base, v, true, false))
		u.do(t, http.MethodPut, path(subPrefix, sid), subParams(u.base, v, true, false)).expectError(t, http.StatusConflict)
	})

	t.Run("create existing OIR/CR owned by another USS → 403", func(t *testing.T) {
		t.Parallel()
		u1, u2 := newUSS(t, "uss1", sc, cm), newUSS(t, "uss2", sc, cm)
		v := box(newPlace(), at(10*time.Minute), at(time.Hour))
		oid, cid := newID(), newID()
		o := createOIR(t, u1, oid, oirParams(u1.base, "Accepted", v)).OIR
		u2.do(t, http.MethodPut, path(oirPrefix, oid), withKey(oirParams(u2.base, "Accepted", v), o.OVN)).
			expectError(t, http.StatusForbidden)
		// Also on the update endpoint with the right OVN: owner first.
		u2.do(t, http.MethodPut, path(oirPrefix, oid, o.OVN), withKey(oirParams(u2.base, "Accepted", v), o.OVN)).
			expectError(t, http.StatusForbidden)
		createCR(t, u1, cid, crParams(u1.base, v))
		u2.do(t, http.MethodPut, path(crPrefix, cid), crParams(u2.base, v)).expectError(t, http.StatusForbidden)
	})

	t.Run("create existing subscription owned by another USS → 409", func(t *testing.T) {
		t.Parallel()
		u1, u2 := newUSS(t, "uss1", sc), newUSS(t, "uss2", sc)
		v := box(newPlace(), at(10*time.Minute), at(time.Hour))
		sid := newID()
		s := putSub(t, u1, sid, "", subParams(u1.base, v, true, false)).Subscription
		u2.do(t, http.MethodPut, path(subPrefix, sid), subParams(u2.base, v, true, false)).expectError(t, http.StatusConflict)
		// With the right version, the owner check answers (§6.3 C).
		u2.do(t, http.MethodPut, path(subPrefix, sid, s.Version), subParams(u2.base, v, true, false)).expectError(t, http.StatusForbidden)
	})

	t.Run("update non-existent OIR → 400", func(t *testing.T) {
		t.Parallel()
		u := newUSS(t, "uss1", sc)
		s, e := window()
		u.do(t, http.MethodPut, path(oirPrefix, newID(), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA_"),
			oirParams(u.base, "Accepted", box(newPlace(), s, e))).expectError(t, http.StatusBadRequest)
	})

	t.Run("update non-existent CR → 409", func(t *testing.T) {
		t.Parallel()
		u := newUSS(t, "cm1", cm)
		s, e := window()
		u.do(t, http.MethodPut, path(crPrefix, newID(), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA_"),
			crParams(u.base, box(newPlace(), s, e))).expectError(t, http.StatusConflict)
	})

	t.Run("update non-existent subscription → 400", func(t *testing.T) {
		t.Parallel()
		u := newUSS(t, "uss1", sc)
		s, e := window()
		u.do(t, http.MethodPut, path(subPrefix, newID(), "someversion"),
			subParams(u.base, box(newPlace(), s, e), true, false)).expectError(t, http.StatusBadRequest)
	})

	t.Run("delete non-existent OIR/CR/sub → 404", func(t *testing.T) {
		t.Parallel()
		u := newUSS(t, "all", allScopes...)
		u.do(t, http.MethodDelete, path(oirPrefix, newID(), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA_"), nil).expectError(t, http.StatusNotFound)
		u.do(t, http.MethodDelete, path(crPrefix, newID(), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA_"), nil).expectError(t, http.StatusNotFound)
		u.do(t, http.MethodDelete, path(subPrefix, newID(), "someversion"), nil).expectError(t, http.StatusNotFound)
	})

	t.Run("delete with wrong OVN/version → 409, other owner → 403 first", func(t *testing.T) {
		t.Parallel()
		u1, u2 := newUSS(t, "uss1", sc, cm), newUSS(t, "uss2", sc, cm)
		v := box(newPlace(), at(10*time.Minute), at(time.Hour))
		oid, cid, sid := newID(), newID(), newID()
		o := createOIR(t, u1, oid, oirParams(u1.base, "Accepted", v)).OIR
		c := createCR(t, u1, cid, crParams(u1.base, v)).CR
		s := putSub(t, u1, sid, "", subParams(u1.base, v, true, false)).Subscription
		wrongOVN := "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB_"
		u1.do(t, http.MethodDelete, path(oirPrefix, oid, wrongOVN), nil).expectError(t, http.StatusConflict)
		u1.do(t, http.MethodDelete, path(crPrefix, cid, wrongOVN), nil).expectError(t, http.StatusConflict)
		u1.do(t, http.MethodDelete, path(subPrefix, sid, "wrongversion"), nil).expectError(t, http.StatusConflict)
		for _, ovn := range []string{wrongOVN, o.OVN} {
			u2.do(t, http.MethodDelete, path(oirPrefix, oid, ovn), nil).expectError(t, http.StatusForbidden)
		}
		for _, ovn := range []string{wrongOVN, c.OVN} {
			u2.do(t, http.MethodDelete, path(crPrefix, cid, ovn), nil).expectError(t, http.StatusForbidden)
		}
		for _, ver := range []string{"wrongversion", s.Version} {
			u2.do(t, http.MethodDelete, path(subPrefix, sid, ver), nil).expectError(t, http.StatusForbidden)
		}
		// Still there.
		getOIR(t, u1, oid)
		getSub(t, u1, sid)
	})

	t.Run("delete subscription with dependent OIRs → 400", func(t *testing.T) {
		t.Parallel()
		u := newUSS(t, "uss1", sc)
		p := newPlace()
		s, e := window()
		// Explicit.
		sid := newID()
		sub := putSub(t, u, sid, "", subParams(u.base, box(p, s.Add(-time.Minute), e.Add(time.Minute)), true, false)).Subscription
		createOIR(t, u, newID(), withSub(oirParams(u.base, "Accepted", box(p, s, e)), sid))
		u.do(t, http.MethodDelete, path(subPrefix, sid, sub.Version), nil).expectError(t, http.StatusBadRequest)
		// Implicit.
		q := newPlace()
		o := createOIR(t, u, newID(), withNewSub(oirParams(u.base, "Accepted", box(q, s, e)), u.base, false)).OIR
		imp := getSub(t, u, o.SubscriptionID)
		u.do(t, http.MethodDelete, path(subPrefix, imp.ID, imp.Version), nil).expectError(t, http.StatusBadRequest)
		getSub(t, u, sid)
		getSub(t, u, imp.ID)
	})

	t.Run("GET subscription of another USS → 403", func(t *testing.T) {
		t.Parallel()
		u1, u2 := newUSS(t, "uss1", sc), newUSS(t, "uss2", sc)
		s, e := window()
		sid := newID()
		putSub(t, u1, sid, "", subParams(u1.base, box(newPlace(), s, e), true, false))
		u2.do(t, http.MethodGet, path(subPrefix, sid), nil).expectError(t, http.StatusForbidden)
	})

	t.Run("area too large on PUTs and OIR/CR query → 400", func(t *testing.T) {
		t.Parallel()
		u := newUSS(t, "all", allScopes...)
		s, e := window()
		big := vol{poly: bigSquare(newPlace()), lo: f64(0), hi: f64(100), start: &s, end: &e}
		u.do(t, http.MethodPut, path(oirPrefix, newID()), oirParams(u.base, "Accepted", big)).expectError(t, http.StatusBadRequest)
		u.do(t, http.MethodPut, path(crPrefix, newID()), crParams(u.base, big)).expectError(t, http.StatusBadRequest)
		u.do(t, http.MethodPut, path(subPrefix, newID()), subParams(u.base, big, true, false)).expectError(t, http.StatusBadRequest)
		u.do(t, http.MethodPost, oirQueryPath, queryParams(big)).expectError(t, http.StatusBadRequest)
		u.do(t, http.MethodPost, crQueryPath, queryParams(big)).expectError(t, http.StatusBadRequest)
	})

	t.Run("area too large on subscription query → 413", func(t *testing.T) {
		t.Parallel()
		u := newUSS(t, "uss1", sc)
		s, e := window()
		big := vol{poly: bigSquare(newPlace()), start: &s, end: &e}
		u.do(t, http.MethodPost, subQueryPath, queryParams(big)).expectError(t, http.StatusRequestEntityTooLarge)
	})

	t.Run("OIR endpoints with CP- or CM-only token → 403", func(t *testing.T) {
		t.Parallel()
		owner := newUSS(t, "uss1", sc)
		s, e := window()
		v := box(newPlace(), s, e)
		oid := newID()
		o := createOIR(t, owner, oid, oirParams(owner.base, "Accepted", v)).OIR
		for _, scope := range []string{cp, cm} {
			u := owner.as(t, scope)
			u.do(t, http.MethodPost, oirQueryPath, queryParams(v)).expectError(t, http.StatusForbidden)
			u.do(t, http.MethodGet, path(oirPrefix, oid), nil).expectError(t, http.StatusForbidden)
			u.do(t, http.MethodPut, path(oirPrefix, newID()), oirParams(u.base, "Accepted", box(newPlace(), s, e))).expectError(t, http.StatusForbidden)
			u.do(t, http.MethodPut, path(oirPrefix, oid, o.OVN), oirParams(u.base, "Accepted", v)).expectError(t, http.StatusForbidden)
			u.do(t, http.MethodDelete, path(oirPrefix, oid, o.OVN), nil).expectError(t, http.StatusForbidden)
		}
		getOIR(t, owner, oid)
	})

	t.Run("CR PUT/DELETE with SC, CP, CMSA or AA token → 403", func(t *testing.T) {
		t.Parallel()
		owner := newUSS(t, "cm1", cm)
		s, e := window()
		v := box(newPlace(), s, e)
		cid := newID()
		c := createCR(t, owner, cid, crParams(owner.base, v)).CR
		for _, scope := range []string{sc, cp, cmsa, aa} {
			u := owner.as(t, scope)
			u.do(t, http.MethodPut, path(crPrefix, newID()), crParams(u.base, box(newPlace(), s, e))).expectError(t, http.StatusForbidden)
			u.do(t, http.MethodPut, path(crPrefix, cid, c.OVN), crParams(u.base, v)).expectError(t, http.StatusForbidden)
			u.do(t, http.MethodDelete, path(crPrefix, cid, c.OVN), nil).expectError(t, http.StatusForbidden)
		}
	})

	t.Run("OIR PUT referencing unknown subscription_id → 400", func(t *testing.T) {
		t.Parallel()
		u := newUSS(t, "uss1", sc)
		s, e := window()
		u.do(t, http.MethodPut, path(oirPrefix, newID()), withSub(oirParams(u.base, "Accepted", box(newPlace(), s, e)), newID())).
			expectError(t, http.StatusBadRequest)
	})

	t.Run("OIR PUT referencing another USS's subscription → 403", func(t *testing.T) {
		t.Parallel()
		u1, u2 := newUSS(t, "uss1", sc), newUSS(t, "uss2", sc)
		p := newPlace()
		s, e := window()
		sid := newID()
		putSub(t, u1, sid, "", subParams(u1.base, box(p, s.Add(-time.Minute), e.Add(time.Minute)), true, false))
		u2.do(t, http.MethodPut, path(oirPrefix, newID()), withSub(oirParams(u2.base, "Accepted", box(p, s, e)), sid)).
			expectError(t, http.StatusForbidden)
	})

	t.Run("OIR PUT with explicit subscription not covering it → 400", func(t *testing.T) {
		t.Parallel()
		u := newUSS(t, "uss1", sc)
		p := newPlace()
		s, e := window()
		sid := newID()
		putSub(t, u, sid, "", subParams(u.base, box(p, s, e), true, false))
		for name, v := range map[string]vol{
			"starts earlier": box(p, s.Add(-time.Second), e),
			"ends later":     box(p, s, e.Add(time.Second)),
			"elsewhere":      box(p.offset(20_000, 20_000), s, e),
			"partly outside": box(p.offset(0, 5_000), s, e),
		} {
			r := u.do(t, http.MethodPut, path(oirPrefix, newID()), withSub(oirParams(u.base, "Accepted", v), sid))
			if r.status != http.StatusBadRequest {
				t.Errorf("%s: want 400: %s", name, r)
			}
		}
		// Control: inside the subscription it is accepted.
		createOIR(t, u, newID(), withSub(oirParams(u.base, "Accepted", box(p, s, e)), sid))
	})

	t.Run("key missing OVNs → 409 with missing lists", func(t *testing.T) {
		t.Parallel()
		u1, u2 := newUSS(t, "uss1", sc), newUSS(t, "uss2", sc)
		v := box(newPlace(), at(10*time.Minute), at(time.Hour))
		o := createOIR(t, u1, newID(), oirParams(u1.base, "Accepted", v)).OIR
		var c conflictW
		u2.do(t, http.MethodPut, path(oirPrefix, newID()), oirParams(u2.base, "Accepted", v)).expectError(t, http.StatusConflict).decode(t, &c)
		if len(c.MissingOIRs) != 1 || c.MissingOIRs[0].ID != o.ID {
			t.Fatalf("missing_operational_intents = %+v, want %s", c.MissingOIRs, o.ID)
		}
	})

	t.Run("create in state ≠ Accepted or unknown state → 400", func(t *testing.T) {
		t.Parallel()
		u := newUSS(t, "uss1", sc, cmsa)
		for _, state := range []string{"Activated", "Nonconforming", "Contingent", "Ended", "accepted", ""} {
			r := u.do(t, http.MethodPut, path(oirPrefix, newID()),
				withNewSub(oirParams(u.base, state, box(newPlace(), at(10*time.Minute), at(time.Hour))), u.base, false))
			if r.status != http.StatusBadRequest {
				t.Errorf("state %q: want 400: %s", state, r)
			}
		}
		// Unknown state on update too.
		v := box(newPlace(), at(10*time.Minute), at(time.Hour))
		oid := newID()
		o := createOIR(t, u, oid, withNewSub(oirParams(u.base, "Accepted", v), u.base, false)).OIR
		u.do(t, http.MethodPut, path(oirPrefix, oid, o.OVN), withSub(oirParams(u.base, "Ended", v), o.SubscriptionID)).
			expectError(t, http.StatusBadRequest)
		// Activated without any subscription → 400 (§5.1).
		u.do(t, http.MethodPut, path(oirPrefix, oid, o.OVN), oirParams(u.base, "Activated", v)).
			expectError(t, http.StatusBadRequest)
	})

	t.Run("update to Nonconforming/Contingent without CMSA → 403", func(t *testing.T) {
		t.Parallel()
		u := newUSS(t, "uss1", sc)
		v := box(newPlace(), at(10*time.Minute), at(time.Hour))
		oid := newID()
		o := createOIR(t, u, oid, withNewSub(oirParams(u.base, "Accepted", v), u.base, false)).OIR
		for _, state := range []string{"Nonconforming", "Contingent"} {
			u.do(t, http.MethodPut, path(oirPrefix, oid, o.OVN), withSub(oirParams(u.base, state, v), o.SubscriptionID)).
				expectError(t, http.StatusForbidden)
		}
		// With CMSA the same update succeeds.
		up := updateOIR(t, u.as(t, sc, cmsa), oid, o.OVN, withSub(oirParams(u.base, "Contingent", v), o.SubscriptionID))
		if up.OIR.State != "Contingent" {
			t.Fatalf("state %q, want Contingent", up.OIR.State)
		}
	})
}
