package conformance

import (
	"net/http"
	"testing"
	"time"
)

// TestSubscriptionLifecycle walks endpoints 11-15 (spec §1, §6.3).
func TestSubscriptionLifecycle(t *testing.T) {
	t.Parallel()
	u1 := newUSS(t, "uss1", sc)
	u2 := newUSS(t, "uss2", sc)
	p := newPlace()
	start, end := at(10*time.Minute), at(time.Hour)
	v := box(p, start, end)
	id := newID()

	// Create (13): 200 (not 201).
	r := u1.do(t, http.MethodPut, path(subPrefix, id), subParams(u1.base, v, true, false)).expect(t, http.StatusOK)
	raw := r.object(t)
	rawSub, ok := raw["subscription"].(map[string]any)
	if !ok {
		t.Fatalf("response lacks subscription: %s", r)
	}
	for _, k := range []string{"id", "version", "notification_index", "time_start", "time_end", "uss_base_url",
		"notify_for_operational_intents", "notify_for_constraints", "implicit_subscription", "dependent_operational_intents"} {
		if _, ok := rawSub[k]; !ok {
			t.Fatalf("Subscription lacks %q (all keys always present, spec §5.3): %s", k, r)
		}
	}
	var created putSubW
	r.decode(t, &created)
	s := created.Subscription
	if s.ID != id || s.Version == "" || s.NotificationIndex != 0 || s.USSBaseURL != u1.base ||
		!s.NotifyForOperationalIntents || s.NotifyForConstraints || s.ImplicitSubscription ||
		s.DependentOperationalIntents == nil || len(s.DependentOperationalIntents) != 0 {
		t.Fatalf("created subscription %+v: want id %s, a version, index 0, url %s, notify OIRs only, explicit, no dependents", s, id, u1.base)
	}
	expectTime(t, "time_start", s.TimeStart, start)
	expectTime(t, "time_end", s.TimeEnd, end)

	// Get (12).
	if g := getSub(t, u1, id); !subEqual(g, s) {
		t.Fatalf("GET = %+v, want %+v", g, s)
	}

	// Query (11): the caller's subscriptions only.
	var q struct {
		Subs []subW `json:"subscriptions"`
	}
	u1.do(t, http.MethodPost, subQueryPath, queryParams(v)).expect(t, http.StatusOK).decode(t, &q)
	if got := subIDs(q.Subs); len(got) != 1 || !subEqual(got[id], s) {
		t.Fatalf("query = %+v, want only %+v", q.Subs, s)
	}
	q.Subs = nil
	u2.do(t, http.MethodPost, subQueryPath, queryParams(v)).expect(t, http.StatusOK).decode(t, &q)
	if q.Subs == nil || len(q.Subs) != 0 {
		t.Fatalf("query by another USS = %+v, want [] (only the caller's, §6.3)", q.Subs)
	}

	// Update (14): new version string, index kept.
	start2, end2 := at(20*time.Minute), at(2*time.Hour)
	up := putSub(t, u1, id, s.Version, subParams(u1.base, box(p, start2, end2), true, true))
	if up.Subscription.Version == s.Version || up.Subscription.Version == "" || !up.Subscription.NotifyForConstraints {
		t.Fatalf("updated subscription %+v: want a new version (old %q) and notify_for_constraints", up.Subscription, s.Version)
	}
	expectTime(t, "updated time_start", up.Subscription.TimeStart, start2)
	expectTime(t, "updated time_end", up.Subscription.TimeEnd, end2)

	// Delete (15): 200 with the subscription as it was.
	var del struct {
		Subscription subW `json:"subscription"`
	}
	u1.do(t, http.MethodDelete, path(subPrefix, id, up.Subscription.Version), nil).expect(t, http.StatusOK).decode(t, &del)
	if !subEqual(del.Subscription, up.Subscription) {
		t.Fatalf("deleted subscription %+v, want %+v", del.Subscription, up.Subscription)
	}
	u1.do(t, http.MethodGet, path(subPrefix, id), nil).expectError(t, http.StatusNotFound)
}

// subEqual compares two subscriptions, dependents as a set.
func subEqual(a, b subW) bool {
	da, db := a.DependentOperationalIntents, b.DependentOperationalIntents
	a.DependentOperationalIntents, b.DependentOperationalIntents = nil, nil
	return subScalars(a) == subScalars(b) && sameSet(da, db)
}

// subScalars is a subscription without its dependents, so it compares with ==.
type subScalarsT struct {
	ID, Version, USSBaseURL         string
	NotificationIndex               int
	TimeStart, TimeEnd              timeW
	NotifyOIRs, NotifyCRs, Implicit bool
}

func subScalars(s subW) subScalarsT {
	return subScalarsT{s.ID, s.Version, s.USSBaseURL, s.NotificationIndex, s.TimeStart, s.TimeEnd,
		s.NotifyForOperationalIntents, s.NotifyForConstraints, s.ImplicitSubscription}
}

// TestSubscriptionPutResponseKeys: operational_intent_references is present
// iff notify_for_operational_intents, constraint_references iff
// notify_for_constraints, absent keys really absent; OIRs are listed without
// altitude filter and both lists are scrubbed for non-managers (§6.3 F).
func TestSubscriptionPutResponseKeys(t *testing.T) {
	t.Parallel()
	u1 := newUSS(t, "uss1", sc)
	u2 := newUSS(t, "uss2", sc)
	m2 := newUSS(t, "cm2", cm)
	p := newPlace()
	start, end := at(10*time.Minute), at(time.Hour)
	theirs := createOIR(t, u2, newID(), oirParams(u2.base, "Accepted", box(p, start, end).alt(5000, 6000))).OIR
	mine := createOIR(t, u1, newID(), oirParams(u1.base, "Accepted", box(p, start, end).alt(0, 100))).OIR
	cr := createCR(t, m2, newID(), crParams(m2.base, box(p, start, end))).CR

	for _, c := range []struct {
		name                  string
		notifyOIRs, notifyCRs bool
	}{{"oirs only", true, false}, {"constraints only", false, true}, {"both", true, true}} {
		t.Run(c.name, func(t *testing.T) {
			r := u1.do(t, http.MethodPut, path(subPrefix, newID()), subParams(u1.base, box(p, start, end), c.notifyOIRs, c.notifyCRs)).
				expect(t, http.StatusOK)
			raw := r.object(t)
			_, hasOIRs := raw["operational_intent_references"]
			_, hasCRs := raw["constraint_references"]
			if hasOIRs != c.notifyOIRs || hasCRs != c.notifyCRs {
				t.Fatalf("keys operational_intent_references=%v constraint_references=%v, want %v %v (§6.3 F): %s",
					hasOIRs, hasCRs, c.notifyOIRs, c.notifyCRs, r)
			}
			var out putSubW
			r.decode(t, &out)
			if c.notifyOIRs {
				got := oirIDs(out.OIRs)
				wantTheirs := theirs
				wantTheirs.OVN = scrubbedOVN
				if len(got) != 2 || got[mine.ID] != mine || got[theirs.ID] != wantTheirs {
					t.Fatalf("operational_intent_references = %+v, want %+v and %+v", out.OIRs, mine, wantTheirs)
				}
			}
			if c.notifyCRs {
				got := crIDs(out.CRs)
				wantCR := cr
				wantCR.OVN = scrubbedOVN
				if len(got) != 1 || got[cr.ID] != wantCR {
					t.Fatalf("constraint_references = %+v, want %+v", out.CRs, wantCR)
				}
			}
		})
	}
}

// TestSubscriptionTimeNormalisation covers §6.3 B.
func TestSubscriptionTimeNormalisation(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "uss1", sc)
	p := newPlace()
	sq := p.square(defaultSquareM)
	noTimes := vol{poly: sq}

	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		before := time.Now()
		s := putSub(t, u, newID(), "", subParams(u.base, noTimes, true, false)).Subscription
		st, en := parseTime(t, s.TimeStart), parseTime(t, s.TimeEnd)
		// start = request time (server clock; allow for skew), end = start+24h.
		if d := st.Sub(before); d < -2*time.Minute || d > 2*time.Minute {
			t.Fatalf("default time_start %s, want about now %s", s.TimeStart.Value, fmtTime(before))
		}
		if !en.Equal(st.Add(24 * time.Hour)) {
			t.Fatalf("default time_end %s, want time_start + 24h", s.TimeEnd.Value)
		}
	})
	t.Run("end defaults to start plus 24h", func(t *testing.T) {
		t.Parallel()
		start := at(30 * time.Minute)
		s := putSub(t, u, newID(), "", subParams(u.base, vol{poly: sq, start: &start}, true, false)).Subscription
		expectTime(t, "time_start", s.TimeStart, start)
		expectTime(t, "time_end", s.TimeEnd, start.Add(24*time.Hour))
	})
	t.Run("only end", func(t *testing.T) {
		t.Parallel()
		end := at(time.Hour)
		s := putSub(t, u, newID(), "", subParams(u.base, vol{poly: sq, end: &end}, true, false)).Subscription
		expectTime(t, "time_end", s.TimeEnd, end)
	})
	t.Run("exactly 24h", func(t *testing.T) {
		t.Parallel()
		start := at(10 * time.Minute)
		s := putSub(t, u, newID(), "", subParams(u.base, box(p, start, start.Add(24*time.Hour)), true, false)).Subscription
		expectTime(t, "time_end", s.TimeEnd, start.Add(24*time.Hour))
	})
	t.Run("start 4 min in the past", func(t *testing.T) {
		t.Parallel()
		start := at(-4 * time.Minute)
		s := putSub(t, u, newID(), "", subParams(u.base, box(p, start, at(time.Hour)), true, false)).Subscription
		expectTime(t, "time_start", s.TimeStart, start)
	})
	bad := []struct {
		name       string
		start, end time.Time
	}{
		{"longer than 24h", at(10 * time.Minute), at(10 * time.Minute).Add(24*time.Hour + time.Second)},
		{"start 6 min in the past", at(-6 * time.Minute), at(time.Hour)},
		{"end before start", at(time.Hour), at(30 * time.Minute)},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			u.do(t, http.MethodPut, path(subPrefix, newID()), subParams(u.base, box(p, c.start, c.end), true, false)).
				expectError(t, http.StatusBadRequest)
		})
	}
	t.Run("end equals start", func(t *testing.T) {
		t.Parallel()
		// **Deviation** of §6.3 B: end = start → 400.
		start := at(time.Hour)
		u.do(t, http.MethodPut, path(subPrefix, newID()), subParams(u.base, box(p, start, start), true, false)).
			expectError(t, http.StatusBadRequest)
	})
	t.Run("update keeps omitted bounds", func(t *testing.T) {
		t.Parallel()
		start, end := at(10*time.Minute), at(3*time.Hour)
		id := newID()
		s := putSub(t, u, id, "", subParams(u.base, box(p, start, end), true, false)).Subscription
		// Neither bound: both kept.
		s2 := putSub(t, u, id, s.Version, subParams(u.base, noTimes, true, false)).Subscription
		expectTime(t, "kept time_start", s2.TimeStart, start)
		expectTime(t, "kept time_end", s2.TimeEnd, end)
		// Only a new end: old start kept.
		end3 := at(4 * time.Hour)
		s3 := putSub(t, u, id, s2.Version, subParams(u.base, vol{poly: sq, end: &end3}, true, false)).Subscription
		expectTime(t, "kept time_start", s3.TimeStart, start)
		expectTime(t, "new time_end", s3.TimeEnd, end3)
		// Only a new start: old end kept.
		start4 := at(20 * time.Minute)
		s4 := putSub(t, u, id, s3.Version, subParams(u.base, vol{poly: sq, start: &start4}, true, false)).Subscription
		expectTime(t, "new time_start", s4.TimeStart, start4)
		expectTime(t, "kept time_end", s4.TimeEnd, end3)
	})
}

// TestSubscriptionQueryOwnUnexpired: the query returns only the caller's
// subscriptions whose end is not past; GET by id still returns an expired
// one (§6.3 Query, §12).
func TestSubscriptionQueryOwnUnexpired(t *testing.T) {
	t.Parallel()
	u1 := newUSS(t, "uss1", sc)
	u2 := newUSS(t, "uss2", sc)
	p := newPlace()
	live, other, expiring := newID(), newID(), newID()
	putSub(t, u1, live, "", subParams(u1.base, box(p, at(-time.Minute), at(time.Hour)), true, false))
	putSub(t, u2, other, "", subParams(u2.base, box(p, at(-time.Minute), at(time.Hour)), true, false))
	expEnd := time.Now().Add(1500 * time.Millisecond)
	putSub(t, u1, expiring, "", subParams(u1.base, box(p, at(-2*time.Minute), expEnd), false, true))
	time.Sleep(time.Until(expEnd) + time.Second)

	var q struct {
		Subs []subW `json:"subscriptions"`
	}
	u1.do(t, http.MethodPost, subQueryPath, queryParams(vol{poly: p.square(defaultSquareM)})).expect(t, http.StatusOK).decode(t, &q)
	got := subIDs(q.Subs)
	if _, ok := got[live]; !ok || len(got) != 1 {
		t.Fatalf("query returned %v, want only %s (not the other USS's %s nor the expired %s)", keys(got), live, other, expiring)
	}
	if s := getSub(t, u1, expiring); s.ID != expiring {
		t.Fatalf("GET of the expired subscription returned %+v", s)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
