package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
)

func marshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantJSON(t *testing.T, v any, want string) {
	t.Helper()
	if got := marshal(t, v); got != want {
		t.Errorf("JSON =\n%s\nwant\n%s", got, want)
	}
}

var (
	rStart   = time.Date(2025, 3, 1, 13, 0, 0, 123456789, time.FixedZone("X", 7200))
	rEnd     = time.Date(2025, 3, 1, 14, 0, 0, 0, time.UTC)
	rUpdated = time.Date(2025, 3, 1, 12, 0, 0, 1, time.UTC)
)

func testOIR() *models.OperationalIntent {
	return &models.OperationalIntent{
		ID: "11111111-1111-4111-8111-111111111111", Manager: "uss1", Version: 3, State: models.StateActivated,
		USSBaseURL: "https://uss1", StartTime: rStart, EndTime: rEnd, UpdatedAt: rUpdated,
	}
}

func testCR() *models.Constraint {
	return &models.Constraint{ID: "22222222-2222-4222-8222-222222222222", Manager: "uss2", Version: 1,
		USSBaseURL: "https://uss2", StartTime: rStart, EndTime: rEnd, UpdatedAt: rUpdated}
}

func TestRenderOperationalIntent(t *testing.T) {
	o := testOIR()
	ovn := string(o.OVN())
	// Manager sees the real OVN; no subscription shows the placeholder.
	wantJSON(t, RenderOperationalIntent("uss1", scd.OperationalIntentView{OIR: o, Availability: models.AvailabilityDown}),
		`{"id":"11111111-1111-4111-8111-111111111111","manager":"uss1","uss_availability":"Down","version":3,"state":"Activated",`+
			`"ovn":"`+ovn+`","time_start":{"value":"2025-03-01T11:00:00.123456789Z","format":"RFC3339"},`+
			`"time_end":{"value":"2025-03-01T14:00:00.000000000Z","format":"RFC3339"},"uss_base_url":"https://uss1",`+
			`"subscription_id":"00000000-0000-4000-8000-000000000000"}`)
	// Others see the scrubbed OVN; a requested OVN and a subscription show.
	o.SubscriptionID = "33333333-3333-4333-8333-333333333333"
	o.RequestedOVN = "11111111-1111-4111-8111-111111111111_x"
	r := RenderOperationalIntent("uss9", scd.OperationalIntentView{OIR: o})
	if r.OVN != "Available from USS" || r.SubscriptionID != "33333333-3333-4333-8333-333333333333" || r.UssAvailability != "Unknown" {
		t.Errorf("scrubbed = %+v", r)
	}
	if r := RenderOperationalIntent("uss1", scd.OperationalIntentView{OIR: o}); r.OVN != string(o.RequestedOVN) {
		t.Errorf("requested OVN = %q", r.OVN)
	}
	// The rendered instant parses back to the stored one exactly.
	back, err := time.Parse(time.RFC3339Nano, r.TimeStart.Value)
	if err != nil || !back.Equal(rStart) {
		t.Errorf("time round trip = %v, %v", back, err)
	}
	if RenderOperationalIntent("uss1", scd.OperationalIntentView{}).ID != "" {
		t.Error("nil OIR should render as zero value")
	}
}

func TestRenderChangeAndQueries(t *testing.T) {
	o := testOIR()
	res := scd.OperationalIntentResult{OIR: scd.OperationalIntentView{OIR: o, Availability: models.AvailabilityNormal},
		Subscribers: []scd.Subscriber{{USSBaseURL: "https://a", Subscriptions: []scd.SubscriptionState{
			{ID: "44444444-4444-4444-8444-444444444444", NotificationIndex: 7}, {ID: "55555555-5555-4555-8555-555555555555", NotificationIndex: 1}}}}}
	got := marshal(t, RenderChangeOperationalIntent("uss1", res))
	wantPrefix := `{"subscribers":[{"subscriptions":[{"subscription_id":"44444444-4444-4444-8444-444444444444","notification_index":7},` +
		`{"subscription_id":"55555555-5555-4555-8555-555555555555","notification_index":1}],"uss_base_url":"https://a"}],` +
		`"operational_intent_reference":{"id":"11111111-1111-4111-8111-111111111111","manager":"uss1","uss_availability":"Normal"`
	if len(got) < len(wantPrefix) || got[:len(wantPrefix)] != wantPrefix {
		t.Errorf("change OIR =\n%s\nwant prefix\n%s", got, wantPrefix)
	}
	// Empty results are arrays, never null.
	wantJSON(t, RenderChangeOperationalIntent("uss1", scd.OperationalIntentResult{}).Subscribers, `[]`)
	wantJSON(t, RenderChangeConstraint("uss1", scd.ConstraintResult{}).Subscribers, `[]`)
	wantJSON(t, RenderQueryOperationalIntents("uss1", nil), `{"operational_intent_references":[]}`)
	wantJSON(t, RenderQueryConstraints("uss1", nil), `{"constraint_references":[]}`)
	wantJSON(t, RenderQuerySubscriptions(nil), `{"subscriptions":[]}`)

	q := RenderQueryOperationalIntents("uss2", []scd.OperationalIntentView{{OIR: o}})
	if len(q.OperationalIntentReferences) != 1 || q.OperationalIntentReferences[0].OVN != "Available from USS" {
		t.Errorf("query = %+v", q)
	}
	if g := RenderGetOperationalIntent("uss1", scd.OperationalIntentView{OIR: o}); g.OperationalIntentReference.OVN != string(o.OVN()) {
		t.Errorf("get = %+v", g)
	}
}

func TestRenderConstraint(t *testing.T) {
	c := testCR()
	wantJSON(t, RenderGetConstraint("uss1", c),
		`{"constraint_reference":{"id":"22222222-2222-4222-8222-222222222222","manager":"uss2","uss_availability":"Unknown","version":1,`+
			`"ovn":"Available from USS","time_start":{"value":"2025-03-01T11:00:00.123456789Z","format":"RFC3339"},`+
			`"time_end":{"value":"2025-03-01T14:00:00.000000000Z","format":"RFC3339"},"uss_base_url":"https://uss2"}}`)
	if r := RenderConstraint("uss2", c); r.OVN != string(c.OVN()) || len(r.OVN) != 44 {
		t.Errorf("manager OVN = %q", r.OVN)
	}
	ch := RenderChangeConstraint("uss2", scd.ConstraintResult{CR: c, Subscribers: []scd.Subscriber{{USSBaseURL: "https://b"}}})
	wantJSON(t, ch.Subscribers, `[{"subscriptions":[],"uss_base_url":"https://b"}]`)
	if q := RenderQueryConstraints("uss3", []*models.Constraint{c}); q.ConstraintReferences[0].OVN != "Available from USS" {
		t.Errorf("query = %+v", q)
	}
}

func testSub(oi, cr bool) *models.Subscription {
	return &models.Subscription{ID: "66666666-6666-4666-8666-666666666666", Manager: "uss1", NotificationIndex: 4,
		USSBaseURL: "https://uss1/sub", NotifyForOperationalIntents: oi, NotifyForConstraints: cr,
		StartTime: rStart, EndTime: rEnd, UpdatedAt: rUpdated}
}

func TestRenderSubscription(t *testing.T) {
	s := testSub(false, true)
	wantJSON(t, RenderGetSubscription(scd.SubscriptionView{Sub: s}),
		`{"subscription":{"id":"66666666-6666-4666-8666-666666666666","version":"`+s.Version()+`","notification_index":4,`+
			`"time_start":{"value":"2025-03-01T11:00:00.123456789Z","format":"RFC3339"},"time_end":{"value":"2025-03-01T14:00:00.000000000Z","format":"RFC3339"},`+
			`"uss_base_url":"https://uss1/sub","notify_for_operational_intents":false,"notify_for_constraints":true,`+
			`"implicit_subscription":false,"dependent_operational_intents":[]}}`)
	s.Implicit = true
	d := RenderDeleteSubscription(scd.SubscriptionView{Sub: s, Dependents: []models.ID{"77777777-7777-4777-8777-777777777777"}})
	if !d.Subscription.ImplicitSubscription || len(d.Subscription.DependentOperationalIntents) != 1 ||
		d.Subscription.DependentOperationalIntents[0] != "77777777-7777-4777-8777-777777777777" {
		t.Errorf("delete = %+v", d)
	}
}

func TestRenderPutSubscription(t *testing.T) {
	o, c := testOIR(), testCR()
	oirs := []scd.OperationalIntentView{{OIR: o}}
	crs := []*models.Constraint{c}
	// Flags decide which keys exist: present (even empty) iff the flag is set.
	cases := []struct {
		oi, cr    bool
		oirs      []scd.OperationalIntentView
		crs       []*models.Constraint
		wantOIRs  string // "" = key absent
		wantCRs   string
		nOIR, nCR int
	}{
		{oi: true, cr: false, oirs: nil, crs: crs, wantOIRs: `[]`},
		{oi: false, cr: true, oirs: oirs, crs: nil, wantCRs: `[]`},
		{oi: true, cr: true, oirs: oirs, crs: crs, nOIR: 1, nCR: 1},
	}
	for _, tc := range cases {
		r := RenderPutSubscription("uss1", scd.PutSubscriptionResult{Sub: scd.SubscriptionView{Sub: testSub(tc.oi, tc.cr)}, OIRs: tc.oirs, CRs: tc.crs})
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(marshal(t, r)), &m); err != nil {
			t.Fatal(err)
		}
		checkKey := func(key string, flag bool, want string, n int) {
			raw, ok := m[key]
			if ok != flag {
				t.Errorf("flags %v/%v: key %s present = %v", tc.oi, tc.cr, key, ok)
				return
			}
			if !ok {
				return
			}
			var arr []json.RawMessage
			if err := json.Unmarshal(raw, &arr); err != nil || arr == nil {
				t.Errorf("key %s = %s, want an array", key, raw)
			}
			if want != "" && string(raw) != want {
				t.Errorf("key %s = %s, want %s", key, raw, want)
			}
			if want == "" && len(arr) != n {
				t.Errorf("key %s has %d entries, want %d", key, len(arr), n)
			}
		}
		checkKey("operational_intent_references", tc.oi, tc.wantOIRs, tc.nOIR)
		checkKey("constraint_references", tc.cr, tc.wantCRs, tc.nCR)
	}
	r := RenderPutSubscription("uss2", scd.PutSubscriptionResult{Sub: scd.SubscriptionView{Sub: testSub(true, true)}, OIRs: oirs, CRs: crs})
	if (*r.OperationalIntentReferences)[0].OVN != "Available from USS" || (*r.ConstraintReferences)[0].OVN != string(c.OVN()) {
		t.Errorf("scrubbing in put subscription = %+v", r)
	}
}

func TestRenderAvailabilityAndErrors(t *testing.T) {
	wantJSON(t, RenderAvailability(scd.AvailabilityView{USS: "uss3"}), `{"status":{"uss":"uss3","availability":"Unknown"},"version":""}`)
	wantJSON(t, RenderAvailability(scd.AvailabilityView{USS: "uss3", Availability: models.AvailabilityNormal, Version: "v"}),
		`{"status":{"uss":"uss3","availability":"Normal"},"version":"v"}`)
	wantJSON(t, RenderError("bad"), `{"message":"bad"}`)
	wantJSON(t, RenderInternalError("boom"), `{"error_message":"boom"}`)
	wantJSON(t, RenderAirspaceConflict("uss1", models.Errorf(models.CodeVersionMismatch, "wrong ovn")), `{"message":"wrong ovn"}`)

	e := models.Errorf(models.CodeMissingKey, "missing OVNs")
	e.MissingOIRs = []*models.OperationalIntent{testOIR()}
	e.MissingCRs = []*models.Constraint{testCR()}
	r := RenderAirspaceConflict("uss2", e)
	if r.Message != "missing OVNs" || len(r.MissingOperationalIntents) != 1 || len(r.MissingConstraints) != 1 ||
		r.MissingOperationalIntents[0].OVN != "Available from USS" || r.MissingConstraints[0].OVN != string(testCR().OVN()) ||
		r.MissingOperationalIntents[0].SubscriptionID != string(models.NullSubscriptionID) {
		t.Errorf("conflict = %+v", r)
	}
	e.MissingCRs = nil
	got := marshal(t, RenderAirspaceConflict("uss2", e))
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(got), &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["missing_constraints"]; ok || m["missing_operational_intents"] == nil {
		t.Errorf("conflict JSON = %s", got)
	}
}
