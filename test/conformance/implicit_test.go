package conformance

import (
	"net/http"
	"testing"
	"time"
)

// TestImplicitSubscriptionCreated: new_subscription creates a subscription
// with notify_for_operational_intents and implicit_subscription set, the
// OIR's extents, and the OIR as its dependent (§8).
func TestImplicitSubscriptionCreated(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "uss1", sc)
	start, end := at(10*time.Minute), at(time.Hour)
	subURL := u.base + "/sub"
	id := newID()
	o := createOIR(t, u, id, withNewSub(oirParams(u.base, "Accepted", box(newPlace(), start, end)), subURL, true)).OIR
	s := getSub(t, u, o.SubscriptionID)
	if s.ID != o.SubscriptionID || !s.NotifyForOperationalIntents || !s.NotifyForConstraints || !s.ImplicitSubscription ||
		s.USSBaseURL != subURL || s.NotificationIndex != 1 || s.Version == "" || !sameSet(s.DependentOperationalIntents, []string{id}) {
		t.Fatalf("implicit subscription %+v: want notify both, implicit, url %s, index 1, dependents [%s]", s, subURL, id)
	}
	expectTime(t, "implicit time_start", s.TimeStart, start)
	expectTime(t, "implicit time_end", s.TimeEnd, end)

	// notify_for_constraints defaults to false.
	body := oirParams(u.base, "Accepted", box(newPlace(), start, end))
	body["new_subscription"] = map[string]any{"uss_base_url": subURL}
	o2 := createOIR(t, u, newID(), body).OIR
	if s2 := getSub(t, u, o2.SubscriptionID); s2.NotifyForConstraints || !s2.ImplicitSubscription {
		t.Fatalf("implicit subscription %+v: want notify_for_constraints false by default", s2)
	}
	// Not subject to the explicit subscriptions' 24 h limit (§8).
	o3 := createOIR(t, u, newID(), withNewSub(oirParams(u.base, "Accepted", box(newPlace(), start, start.Add(30*time.Hour))), subURL, false)).OIR
	expectTime(t, "long implicit time_end", getSub(t, u, o3.SubscriptionID).TimeEnd, start.Add(30*time.Hour))
}

// TestImplicitSubscriptionShared: another OIR of the same USS may use an
// implicit subscription, which is extended in time and space; it survives
// while a dependent remains and goes with the last one (§6.1 D, §8).
func TestImplicitSubscriptionShared(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "uss1", sc)
	p, q := newPlace(), newPlace()
	start, end := at(10*time.Minute), at(time.Hour)
	o1 := createOIR(t, u, newID(), withNewSub(oirParams(u.base, "Accepted", box(p, start, end)), u.base, false)).OIR
	s1 := getSub(t, u, o1.SubscriptionID)

	start2, end2 := at(5*time.Minute), at(3*time.Hour)
	o2 := createOIR(t, u, newID(), withSub(oirParams(u.base, "Accepted", box(q, start2, end2)), o1.SubscriptionID)).OIR
	if o2.SubscriptionID != o1.SubscriptionID {
		t.Fatalf("second OIR subscription %s, want %s", o2.SubscriptionID, o1.SubscriptionID)
	}
	s2 := getSub(t, u, o1.SubscriptionID)
	if s2.Version == s1.Version || !s2.ImplicitSubscription || !sameSet(s2.DependentOperationalIntents, []string{o1.ID, o2.ID}) {
		t.Fatalf("extended subscription %+v: want a new version (old %q), implicit, dependents %s %s", s2, s1.Version, o1.ID, o2.ID)
	}
	expectTime(t, "extended time_start", s2.TimeStart, start2)
	expectTime(t, "extended time_end", s2.TimeEnd, end2)
	// Extended in space: a query at q finds it.
	var sq struct {
		Subs []subW `json:"subscriptions"`
	}
	u.do(t, http.MethodPost, subQueryPath, queryParams(box(q, start2, end2))).expect(t, http.StatusOK).decode(t, &sq)
	if _, ok := subIDs(sq.Subs)[s2.ID]; !ok || len(sq.Subs) != 1 {
		t.Fatalf("subscription query at the second OIR = %v, want %s", keys(subIDs(sq.Subs)), s2.ID)
	}

	// Deleting one dependent keeps it; deleting the last removes it.
	deleteOIR(t, u, o1.ID, o1.OVN)
	if s3 := getSub(t, u, s2.ID); !sameSet(s3.DependentOperationalIntents, []string{o2.ID}) {
		t.Fatalf("after deleting %s, dependents = %v, want [%s]", o1.ID, s3.DependentOperationalIntents, o2.ID)
	}
	deleteOIR(t, u, o2.ID, o2.OVN)
	u.do(t, http.MethodGet, path(subPrefix, s2.ID), nil).expectError(t, http.StatusNotFound)
}

// TestImplicitSubscriptionReleasedOnUpdate: updating an OIR to a new
// implicit subscription, to an explicit one, or to none deletes the implicit
// subscription it was the only dependent of (§8).
func TestImplicitSubscriptionReleasedOnUpdate(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "uss1", sc)
	p := newPlace()
	start, end := at(10*time.Minute), at(time.Hour)
	v := box(p, start, end)
	o := createOIR(t, u, newID(), withNewSub(oirParams(u.base, "Accepted", v), u.base, false)).OIR
	first := o.SubscriptionID

	// A new implicit subscription replaces the old one.
	up := updateOIR(t, u, o.ID, o.OVN, withNewSub(oirParams(u.base, "Accepted", v), u.base, false))
	second := up.OIR.SubscriptionID
	if second == first || second == placeholderSub {
		t.Fatalf("subscription after new_subscription = %s, want a new one (old %s)", second, first)
	}
	u.do(t, http.MethodGet, path(subPrefix, first), nil).expectError(t, http.StatusNotFound)
	// §6.1 H: the released subscription is not notified, the new one is (index 1).
	if n := notified(t, up.Subscribers); len(n) != 1 || n[second] != 1 {
		t.Fatalf("subscribers %+v, want only the new implicit subscription %s with index 1", up.Subscribers, second)
	}

	// An explicit subscription replaces the implicit one.
	explicit := newID()
	putSub(t, u, explicit, "", subParams(u.base, box(p, start.Add(-time.Minute), end.Add(time.Minute)), true, false))
	up2 := updateOIR(t, u, o.ID, up.OIR.OVN, withSub(oirParams(u.base, "Accepted", v), explicit))
	u.do(t, http.MethodGet, path(subPrefix, second), nil).expectError(t, http.StatusNotFound)
	if s := getSub(t, u, explicit); !sameSet(s.DependentOperationalIntents, []string{o.ID}) {
		t.Fatalf("explicit subscription dependents %v, want [%s]", s.DependentOperationalIntents, o.ID)
	}

	// Back to implicit, then to no subscription at all.
	up3 := updateOIR(t, u, o.ID, up2.OIR.OVN, withNewSub(oirParams(u.base, "Accepted", v), u.base, false))
	third := up3.OIR.SubscriptionID
	if s := getSub(t, u, explicit); len(s.DependentOperationalIntents) != 0 {
		t.Fatalf("explicit subscription still has dependents %v after the OIR left it", s.DependentOperationalIntents)
	}
	up4 := updateOIR(t, u, o.ID, up3.OIR.OVN, oirParams(u.base, "Accepted", v))
	if up4.OIR.SubscriptionID != placeholderSub {
		t.Fatalf("subscription_id %s, want placeholder", up4.OIR.SubscriptionID)
	}
	u.do(t, http.MethodGet, path(subPrefix, third), nil).expectError(t, http.StatusNotFound)
	// An explicit subscription is never deleted with its OIR.
	getSub(t, u, explicit)
}

// TestImplicitSubscriptionMadeExplicit: updating an implicit subscription
// through the subscriptions API clears the flag, so deleting its OIR no longer
// deletes it (§6.3 E, §8).
func TestImplicitSubscriptionMadeExplicit(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "uss1", sc)
	p := newPlace()
	start, end := at(10*time.Minute), at(time.Hour)
	v := box(p, start, end)
	o := createOIR(t, u, newID(), withNewSub(oirParams(u.base, "Accepted", v), u.base, false)).OIR
	s := getSub(t, u, o.SubscriptionID)
	up := putSub(t, u, s.ID, s.Version, subParams(u.base, v, true, false)).Subscription
	if up.ImplicitSubscription || up.NotificationIndex != s.NotificationIndex || !sameSet(up.DependentOperationalIntents, []string{o.ID}) {
		t.Fatalf("updated subscription %+v: want explicit, index %d kept, dependents [%s]", up, s.NotificationIndex, o.ID)
	}
	deleteOIR(t, u, o.ID, o.OVN)
	if g := getSub(t, u, s.ID); g.ImplicitSubscription || len(g.DependentOperationalIntents) != 0 {
		t.Fatalf("subscription after deleting its OIR = %+v, want explicit without dependents", g)
	}
}

// TestSubscriptionUpdateMustCoverDependents: a subscription update that no
// longer covers a dependent OIR → 400 (§6.3 D).
func TestSubscriptionUpdateMustCoverDependents(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "uss1", sc)
	p := newPlace()
	start, end := at(10*time.Minute), at(time.Hour)
	sid := newID()
	s := putSub(t, u, sid, "", subParams(u.base, box(p, start, end).alt(0, 500), true, false)).Subscription
	createOIR(t, u, newID(), withSub(oirParams(u.base, "Accepted", box(p, start, end).alt(100, 200)), sid))
	for name, v := range map[string]vol{
		"ends earlier":        box(p, start, end.Add(-time.Second)),
		"starts > 5 min late": box(p, start.Add(5*time.Minute+time.Second), end),
		"elsewhere":           box(p.offset(30_000, 30_000), start, end),
		"altitude too low":    box(p, start, end).alt(0, 150),
		"altitude too high":   box(p, start, end).alt(150, 500),
	} {
		r := u.do(t, http.MethodPut, path(subPrefix, sid, s.Version), subParams(u.base, v, true, false))
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: want 400: %s", name, r)
		}
	}
	// Within the 5-minute start tolerance, and without altitudes: fine.
	putSub(t, u, sid, s.Version, subParams(u.base, vol{poly: p.square(defaultSquareM), start: ptr(start.Add(4 * time.Minute)), end: &end}, true, false))
}
