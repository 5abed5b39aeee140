package conformance

import (
	"net/http"
	"testing"
	"time"
)

// TestNotifications covers §9: increments by exactly one per request, grouping
// by uss_base_url, OIR vs constraint kind, version untouched.
func TestNotifications(t *testing.T) {
	t.Parallel()
	w1 := newUSS(t, "watch1", sc)
	w2 := newUSS(t, "watch2", sc)
	writer := newUSS(t, "writer", sc)
	cmgr := newUSS(t, "cm", cm)
	p := newPlace()
	start, end := at(10*time.Minute), at(time.Hour)
	area := box(p.offset(-100, -100), start.Add(-time.Minute), end.Add(time.Minute)).alt(0, 1000)
	sharedURL := "https://shared-" + suffix() + ".example.com/utm"

	// Two OIR subscriptions (two USSs) behind one URL, one OIR subscription
	// elsewhere, one constraint-only subscription, one OIR subscription whose
	// time window misses the writes, one at altitude far above (altitude is
	// ignored for subscriptions, §4).
	sA := putSub(t, w1, newID(), "", subParams(sharedURL, area, true, false)).Subscription
	sB := putSub(t, w2, newID(), "", subParams(sharedURL, area, true, false)).Subscription
	sC := putSub(t, w2, newID(), "", subParams(w2.base, area, true, true)).Subscription
	sCR := putSub(t, w1, newID(), "", subParams(w1.base, area, false, true)).Subscription
	sLate := putSub(t, w1, newID(), "", subParams(w1.base, area.times(end.Add(time.Hour), end.Add(2*time.Hour)), true, true)).Subscription
	sHigh := putSub(t, w1, newID(), "", subParams(w1.base+"/high", area.alt(5000, 6000), true, false)).Subscription

	// OIR create with two extents inside every subscription: +1, not +2.
	v := box(p, start, end)
	c := createOIR(t, writer, newID(), withNewSub(oirParams(writer.base, "Accepted", v, box(p.offset(50, 50), start, end)), writer.base, false))
	want := map[string]int{sA.ID: 1, sB.ID: 1, sC.ID: 1, sHigh.ID: 1, c.OIR.SubscriptionID: 1}
	expectNotified(t, "OIR create", c.Subscribers, want)
	groups := map[string][]string{}
	for _, g := range c.Subscribers {
		for _, s := range g.Subscriptions {
			groups[g.USSBaseURL] = append(groups[g.USSBaseURL], s.SubscriptionID)
		}
	}
	if len(c.Subscribers) != len(groups) || !sameSet(groups[sharedURL], []string{sA.ID, sB.ID}) ||
		!sameSet(groups[w2.base], []string{sC.ID}) || !sameSet(groups[writer.base], []string{c.OIR.SubscriptionID}) {
		t.Fatalf("subscribers not grouped by uss_base_url: %+v", c.Subscribers)
	}

	// OIR update: +1 each.
	up := updateOIR(t, writer, c.OIR.ID, c.OIR.OVN, withSub(oirParams(writer.base, "Accepted", v), c.OIR.SubscriptionID))
	for k := range want {
		want[k]++
	}
	expectNotified(t, "OIR update", up.Subscribers, want)

	// CR create: constraint-kind subscriptions only.
	cr := createCR(t, cmgr, newID(), crParams(cmgr.base, v))
	expectNotified(t, "CR create", cr.Subscribers, map[string]int{sC.ID: 3, sCR.ID: 1})

	// OIR delete: +1, including its own implicit subscription.
	del := deleteOIR(t, writer, up.OIR.ID, up.OIR.OVN)
	for k := range want {
		want[k]++
	}
	want[sC.ID] = 4
	expectNotified(t, "OIR delete", del.Subscribers, want)

	// CR update and delete.
	var cu changeCRW
	cmgr.do(t, http.MethodPut, path(crPrefix, cr.CR.ID, cr.CR.OVN), crParams(cmgr.base, v)).expect(t, http.StatusOK).decode(t, &cu)
	expectNotified(t, "CR update", cu.Subscribers, map[string]int{sC.ID: 5, sCR.ID: 2})
	var cd changeCRW
	cmgr.do(t, http.MethodDelete, path(crPrefix, cr.CR.ID, cu.CR.OVN), nil).expect(t, http.StatusOK).decode(t, &cd)
	expectNotified(t, "CR delete", cd.Subscribers, map[string]int{sC.ID: 6, sCR.ID: 3})

	// The stored indices match; versions did not change (§3.6, §9.2).
	for _, c := range []struct {
		u     *uss
		s     subW
		index int
	}{{w1, sA, 3}, {w2, sB, 3}, {w2, sC, 6}, {w1, sCR, 3}, {w1, sLate, 0}, {w1, sHigh, 3}} {
		g := getSub(t, c.u, c.s.ID)
		if g.NotificationIndex != c.index || g.Version != c.s.Version {
			t.Errorf("subscription %s: index %d version %q, want index %d and unchanged version %q",
				c.s.ID, g.NotificationIndex, g.Version, c.index, c.s.Version)
		}
	}
}

// TestNotificationVolumeOnUpdate: an update notifies over union(old, new)
// (§9): moving an OIR out of a subscription's area notifies it once more.
func TestNotificationVolumeOnUpdate(t *testing.T) {
	t.Parallel()
	w := newUSS(t, "watch", sc)
	u := newUSS(t, "uss1", sc)
	p, far := newPlace(), newPlace()
	start, end := at(10*time.Minute), at(time.Hour)
	s := putSub(t, w, newID(), "", subParams(w.base, box(p, start, end), true, false)).Subscription

	o := createOIR(t, u, newID(), oirParams(u.base, "Accepted", box(p, start, end)))
	expectNotified(t, "create inside", o.Subscribers, map[string]int{s.ID: 1})
	moved := updateOIR(t, u, o.OIR.ID, o.OIR.OVN, oirParams(u.base, "Accepted", box(far, start, end)))
	expectNotified(t, "move out (old volume)", moved.Subscribers, map[string]int{s.ID: 2})
	again := updateOIR(t, u, o.OIR.ID, moved.OIR.OVN, oirParams(u.base, "Accepted", box(far, start, end)))
	expectNotified(t, "update outside", again.Subscribers, map[string]int{})
	back := updateOIR(t, u, o.OIR.ID, again.OIR.OVN, oirParams(u.base, "Accepted", box(p, start, end)))
	expectNotified(t, "move in (new volume)", back.Subscribers, map[string]int{s.ID: 3})
}

// expectNotified checks the exact set of notified subscriptions and their
// new indices, and that subscribers is an array (never null, §9.3).
func expectNotified(t *testing.T, what string, subs []subscriberW, want map[string]int) {
	t.Helper()
	if subs == nil {
		t.Fatalf("%s: subscribers missing or null, want an array", what)
	}
	got := notified(t, subs)
	if len(got) != len(want) {
		t.Fatalf("%s: notified %v, want %v", what, got, want)
	}
	for id, n := range want {
		if g, ok := got[id]; !ok || g != n {
			t.Fatalf("%s: notified %v, want %v", what, got, want)
		}
	}
}
