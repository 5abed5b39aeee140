package conformance

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestOIRLifecycle walks endpoints 1-5 (spec §1, §6.1) through create, get,
// query, update and delete, checking status codes and response shapes.
func TestOIRLifecycle(t *testing.T) {
	t.Parallel()
	u1 := newUSS(t, "uss1", sc)
	u2 := newUSS(t, "uss2", sc)
	p := newPlace()
	start, end := at(10*time.Minute), at(time.Hour)
	v := box(p, start, end)
	id := newID()
	subURL := u1.base + "/implicit"

	// Create (3): 201, ChangeOperationalIntentReferenceResponse.
	r := u1.do(t, http.MethodPut, path(oirPrefix, id), withNewSub(oirParams(u1.base, "Accepted", v), subURL, false)).
		expect(t, http.StatusCreated)
	raw := r.object(t)
	for _, k := range []string{"operational_intent_reference", "subscribers"} {
		if _, ok := raw[k]; !ok {
			t.Fatalf("create response lacks %q: %s", k, r)
		}
	}
	rawOIR := raw["operational_intent_reference"].(map[string]any)
	for _, k := range []string{"id", "manager", "uss_availability", "version", "state", "ovn", "time_start", "time_end", "uss_base_url", "subscription_id"} {
		if _, ok := rawOIR[k]; !ok {
			t.Fatalf("OperationalIntentReference lacks %q (spec §5.1): %s", k, r)
		}
	}
	var created changeOIRW
	r.decode(t, &created)
	o := created.OIR
	if o.ID != id || o.Manager != u1.sub || o.USSAvailability != "Unknown" || o.Version != 1 || o.State != "Accepted" || o.USSBaseURL != u1.base {
		t.Fatalf("created OIR %+v: want id %s, manager %s, availability Unknown, version 1, Accepted, url %s", o, id, u1.sub, u1.base)
	}
	expectOVN(t, o.OVN)
	expectTime(t, "time_start", o.TimeStart, start)
	expectTime(t, "time_end", o.TimeEnd, end)
	expectUUIDv4(t, "subscription_id", o.SubscriptionID)
	if o.SubscriptionID == placeholderSub {
		t.Fatalf("OIR created with new_subscription has the placeholder subscription id")
	}
	// §6.1 H: the just-created implicit subscription is notified with index 1.
	if n := notified(t, created.Subscribers); len(n) != 1 || n[o.SubscriptionID] != 1 {
		t.Fatalf("subscribers %+v: want only the implicit subscription %s with index 1", created.Subscribers, o.SubscriptionID)
	}
	if created.Subscribers[0].USSBaseURL != subURL {
		t.Fatalf("subscriber url %q, want new_subscription.uss_base_url %q", created.Subscribers[0].USSBaseURL, subURL)
	}

	// Get (2): manager sees the real OVN, others the scrubbed one (§3.6).
	if g := getOIR(t, u1, id); g != o {
		t.Fatalf("GET by manager = %+v, want %+v", g, o)
	}
	g2 := getOIR(t, u2, id)
	want2 := o
	want2.OVN = scrubbedOVN
	if g2 != want2 {
		t.Fatalf("GET by other USS = %+v, want %+v", g2, want2)
	}

	// Query (1).
	q := u1.do(t, http.MethodPost, oirQueryPath, queryParams(v)).expect(t, http.StatusOK)
	if _, ok := q.object(t)["operational_intent_references"].([]any); !ok {
		t.Fatalf("query response lacks the operational_intent_references array: %s", q)
	}
	if got := oirIDs(queryOIRs(t, u1, v)); len(got) != 1 || got[id] != o {
		t.Fatalf("query by manager = %+v, want only %+v", got, o)
	}
	if got := oirIDs(queryOIRs(t, u2, v)); len(got) != 1 || got[id] != want2 {
		t.Fatalf("query by other USS = %+v, want only %+v", got, want2)
	}

	// Update (4): 200, version+1, new OVN, new times echoed.
	start2, end2 := at(15*time.Minute), at(90*time.Minute)
	up := updateOIR(t, u1, id, o.OVN, withSub(oirParams(u1.base, "Activated", box(p, start2, end2)), o.SubscriptionID))
	if up.OIR.Version != 2 || up.OIR.State != "Activated" || up.OIR.OVN == o.OVN || up.OIR.SubscriptionID != o.SubscriptionID {
		t.Fatalf("updated OIR %+v: want version 2, Activated, a new OVN (old %s), subscription %s", up.OIR, o.OVN, o.SubscriptionID)
	}
	expectOVN(t, up.OIR.OVN)
	expectTime(t, "updated time_start", up.OIR.TimeStart, start2)
	expectTime(t, "updated time_end", up.OIR.TimeEnd, end2)
	if n := notified(t, up.Subscribers); len(n) != 1 || n[o.SubscriptionID] != 2 {
		t.Fatalf("update subscribers %+v: want the implicit subscription with index 2", up.Subscribers)
	}

	// Delete (5): 200 with the OIR as it was, real OVN; the implicit
	// subscription is notified before it is removed (§6.1 Delete).
	del := deleteOIR(t, u1, id, up.OIR.OVN)
	if del.OIR != up.OIR {
		t.Fatalf("deleted OIR %+v, want %+v", del.OIR, up.OIR)
	}
	if n := notified(t, del.Subscribers); len(n) != 1 || n[o.SubscriptionID] != 3 {
		t.Fatalf("delete subscribers %+v: want the implicit subscription with index 3", del.Subscribers)
	}
	u1.do(t, http.MethodGet, path(oirPrefix, id), nil).expectError(t, http.StatusNotFound)
	u1.do(t, http.MethodGet, path(subPrefix, o.SubscriptionID), nil).expectError(t, http.StatusNotFound)
	if got := queryOIRs(t, u1, v); len(got) != 0 {
		t.Fatalf("query after delete = %+v, want none", got)
	}
}

// TestOIRWithoutSubscription: an Accepted OIR may have no subscription; it
// is then returned with the placeholder subscription_id (§3.6, §5.1), and
// nobody is notified.
func TestOIRWithoutSubscription(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "uss1", sc)
	id := newID()
	c := createOIR(t, u, id, oirParams(u.base, "Accepted", box(newPlace(), at(10*time.Minute), at(time.Hour))))
	if c.OIR.SubscriptionID != placeholderSub {
		t.Fatalf("subscription_id %q, want placeholder %s", c.OIR.SubscriptionID, placeholderSub)
	}
	if c.Subscribers == nil || len(c.Subscribers) != 0 {
		t.Fatalf("subscribers %+v, want [] (always an array, §9)", c.Subscribers)
	}
	if g := getOIR(t, u, id); g.SubscriptionID != placeholderSub {
		t.Fatalf("GET subscription_id %q, want placeholder", g.SubscriptionID)
	}
}

// TestOIRExtentsUnion: the stored volume is the union of the extents
// (§3.4): earliest start, latest end; a volume wholly in the past is fine when
// the union ends in the future; the query sees every part.
func TestOIRExtentsUnion(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "uss1", sc)
	p1, p2 := newPlace(), newPlace()
	s1, e1 := at(-3*time.Hour), at(-2*time.Hour)
	s2, e2 := at(20*time.Minute), at(2*time.Hour)
	id := newID()
	c := createOIR(t, u, id, oirParams(u.base, "Accepted", box(p1, s1, e1), box(p2, s2, e2)))
	expectTime(t, "union time_start", c.OIR.TimeStart, s1)
	expectTime(t, "union time_end", c.OIR.TimeEnd, e2)
	for i, p := range []place{p1, p2} {
		if got := oirIDs(queryOIRs(t, u, box(p, s1, e2))); len(got) != 1 || got[id].ID != id {
			t.Fatalf("query at extent %d: %+v, want the OIR", i, got)
		}
	}
}

// TestOIRQueryFilters: matching is cells + time + altitude, inclusive (§4);
// a query with no time window returns expired OIRs too (§12).
func TestOIRQueryFilters(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "uss1", sc)
	p := newPlace()
	start, end := at(10*time.Minute), at(time.Hour)
	id := newID()
	createOIR(t, u, id, oirParams(u.base, "Accepted", box(p, start, end).alt(100, 200)))

	cases := []struct {
		name string
		v    vol
		want bool
	}{
		{"same volume", box(p, start, end).alt(100, 200), true},
		{"touching altitude above", box(p, start, end).alt(200, 300), true},
		{"touching altitude below", box(p, start, end).alt(0, 100), true},
		{"altitude above", box(p, start, end).alt(201, 300), false},
		{"altitude below", box(p, start, end).alt(0, 99), false},
		{"time touching end", box(p, end, end.Add(time.Hour)), true},
		{"time after", box(p, end.Add(time.Second), end.Add(time.Hour)), false},
		{"time before", box(p, start.Add(-time.Hour), start.Add(-time.Second)), false},
		{"elsewhere", box(p.offset(50_000, 50_000), start, end), false},
		{"no time window", vol{poly: p.square(defaultSquareM), lo: f64(0), hi: f64(1000)}, true},
		{"no altitude", vol{poly: p.square(defaultSquareM), start: &start, end: &end}, true},
		{"circle", vol{circle: ptr(p.offset(100, 100)), radiusM: 50, start: &start, end: &end}, true},
	}
	for _, c := range cases {
		got := oirIDs(queryOIRs(t, u, c.v))
		if _, ok := got[id]; ok != c.want || len(got) > 1 {
			t.Errorf("%s: query returned %v, want OIR present=%v", c.name, got, c.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestOIREmptySubscriptionID: an explicitly empty subscription_id is treated
// as absent (§3.1).
func TestOIREmptySubscriptionID(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "uss1", sc)
	c := createOIR(t, u, newID(), withSub(oirParams(u.base, "Accepted", box(newPlace(), at(10*time.Minute), at(time.Hour))), ""))
	if c.OIR.SubscriptionID != placeholderSub {
		t.Fatalf("subscription_id %q, want placeholder", c.OIR.SubscriptionID)
	}
}

// uuidV7At builds a UUIDv7 whose embedded timestamp is tm (RFC 9562 §5.7).
func uuidV7At(t *testing.T, tm time.Time) string {
	t.Helper()
	u, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	ms := uint64(tm.UnixMilli())
	for i := range 6 {
		u[i] = byte(ms >> (40 - 8*i))
	}
	return u.String()
}

// TestOIRRequestedOVNSuffix covers the requested_ovn_suffix extension (§3.6):
// OVN "{id}_{suffix}", suffix a UUIDv7 within ±5 min of server time, never a
// current or past OVN again (**Deviation**: 400, not 500).
func TestOIRRequestedOVNSuffix(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "uss1", sc)
	v := box(newPlace(), at(10*time.Minute), at(time.Hour))
	id := newID()
	withSuffix := func(s string) map[string]any {
		m := oirParams(u.base, "Accepted", v)
		m["requested_ovn_suffix"] = s
		return m
	}
	s1 := uuidV7At(t, time.Now())
	c := createOIR(t, u, id, withSuffix(s1)).OIR
	if c.OVN != id+"_"+s1 {
		t.Fatalf("ovn %q, want %q", c.OVN, id+"_"+s1)
	}
	// Same as the current OVN → 400.
	u.do(t, http.MethodPut, path(oirPrefix, id, c.OVN), withSuffix(s1)).expectError(t, http.StatusBadRequest)
	s2 := uuidV7At(t, time.Now())
	up := updateOIR(t, u, id, c.OVN, withSuffix(s2)).OIR
	if up.OVN != id+"_"+s2 {
		t.Fatalf("ovn %q, want %q", up.OVN, id+"_"+s2)
	}
	// A past OVN → 400.
	u.do(t, http.MethodPut, path(oirPrefix, id, up.OVN), withSuffix(s1)).expectError(t, http.StatusBadRequest)
	// Clock skew beyond 5 min, or not a UUIDv7 → 400.
	for _, bad := range []string{uuidV7At(t, time.Now().Add(-6*time.Minute)), uuidV7At(t, time.Now().Add(6*time.Minute)), newID(), "garbage"} {
		u.do(t, http.MethodPut, path(oirPrefix, id, up.OVN), withSuffix(bad)).expectError(t, http.StatusBadRequest)
	}
	// Without a suffix, back to a derived OVN.
	d := updateOIR(t, u, id, up.OVN, oirParams(u.base, "Accepted", v)).OIR
	expectOVN(t, d.OVN)
	if d.OVN == up.OVN || d.OVN == c.OVN || d.Version != 3 {
		t.Fatalf("OIR after an update without suffix = %+v, want a new derived OVN at version 3", d)
	}
}
