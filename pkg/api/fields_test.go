package api

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
)

// TestOptionalFieldForms asks every member of every SCD request body the
// same question: what do absent, null, empty ("" / [] / {}), a wrong JSON
// type and a valid value each mean? The answers are those of spec §3–§6
// and utm.yaml, and docs/spec-notes.md where both are silent. Each row
// edits one member of an otherwise valid body, so the row alone decides
// the outcome: want "" is success (then check inspects the operation),
// anything else is a substring of the 400's message naming the member.
func TestOptionalFieldForms(t *testing.T) {
	oirBase := func() map[string]any { return toMap(t, baseOIR()) }
	oirNewSub := func() map[string]any {
		m := oirBase()
		m["new_subscription"] = map[string]any{"uss_base_url": "https://uss1.example.com/n", "notify_for_constraints": true}
		return m
	}
	subBase := func() map[string]any {
		return toMap(t, PutSubscriptionParameters{
			Extents:    &Volume4D{Volume: &Volume3D{OutlinePolygon: square(46.97, 7.47, 0.01)}, TimeEnd: tm(testNow.Add(time.Hour))},
			UssBaseURL: "https://uss1.example.com/s", NotifyForOperationalIntents: true, NotifyForConstraints: true,
		})
	}
	crBase := func() map[string]any {
		return toMap(t, PutConstraintReferenceParameters{
			Extents:    []Volume4D{vol4(testNow.Add(time.Hour), testNow.Add(2*time.Hour), 0, 10)},
			UssBaseURL: "https://uss1.example.com/c",
		})
	}
	availBase := func() map[string]any { return map[string]any{"old_version": "v1", "availability": "Down"} }
	queryBase := func() map[string]any {
		return toMap(t, QueryOperationalIntentReferenceParameters{AreaOfInterest: &Volume4D{Volume: &Volume3D{OutlinePolygon: square(46.97, 7.47, 0.01)}}})
	}
	reportBase := func() map[string]any {
		return map[string]any{"exchange": map[string]any{"url": "https://x/y", "method": "GET", "recorder_role": "Client"}}
	}

	type parseFn func(body []byte) (any, error)
	oir := func(b []byte) (any, error) { return ParsePutOperationalIntent(testRI, testID, "", true, b) }
	sub := func(b []byte) (any, error) { return ParsePutSubscription(testRI, testID, "", true, b) }
	cr := func(b []byte) (any, error) { return ParsePutConstraint(testRI, testID, "", true, b) }
	avail := func(b []byte) (any, error) { return ParsePutUssAvailability(testRI, "uss2", b) }
	query := func(b []byte) (any, error) { return ParseQueryOperationalIntents(testRI, b) }
	report := func(b []byte) (any, error) { return ParseErrorReport(b) }

	const absent = "<absent>"
	suffixNow := uuidV7(testNow)
	ovn16, ovn128 := strings.Repeat("o", 16), strings.Repeat("o", 128)
	q := func(s string) string { return string(mustJSON(t, s)) }

	oirOp := func(f func(*scd.PutOperationalIntent) bool) func(any) bool {
		return func(op any) bool { return f(op.(*scd.PutOperationalIntent)) }
	}
	subOp := func(f func(*scd.PutSubscription) bool) func(any) bool {
		return func(op any) bool { return f(op.(*scd.PutSubscription)) }
	}
	availOp := func(f func(*scd.PutUssAvailability) bool) func(any) bool {
		return func(op any) bool { return f(op.(*scd.PutUssAvailability)) }
	}
	noSuffix := oirOp(func(op *scd.PutOperationalIntent) bool { return op.RequestedOVN == "" })
	noSub := oirOp(func(op *scd.PutOperationalIntent) bool { return op.SubscriptionID == "" && op.NewSubscription == nil })
	noKey := oirOp(func(op *scd.PutOperationalIntent) bool { return op.Key == nil })

	cases := []struct {
		endpoint string
		base     func() map[string]any
		parse    parseFn
		field    string // dotted member path
		form     string
		value    string // raw JSON, or absent
		want     string // "" = success
		check    func(op any) bool
	}{
		// requested_ovn_suffix (§3.6 extension): null is absent, "" is a bad suffix.
		{"OIR PUT", oirBase, oir, "requested_ovn_suffix", "absent", absent, "", noSuffix},
		{"OIR PUT", oirBase, oir, "requested_ovn_suffix", "null", `null`, "", noSuffix},
		{"OIR PUT", oirBase, oir, "requested_ovn_suffix", "empty", `""`, "requested_ovn_suffix is empty", nil},
		{"OIR PUT", oirBase, oir, "requested_ovn_suffix", "wrong type number", `7`, "wrong JSON type for requested_ovn_suffix", nil},
		{"OIR PUT", oirBase, oir, "requested_ovn_suffix", "wrong type array", `[]`, "wrong JSON type for requested_ovn_suffix", nil},
		{"OIR PUT", oirBase, oir, "requested_ovn_suffix", "not a UUID", `"garbage"`, "requested_ovn_suffix", nil},
		{"OIR PUT", oirBase, oir, "requested_ovn_suffix", "UUIDv4", q(testSubID), "requested_ovn_suffix", nil},
		{"OIR PUT", oirBase, oir, "requested_ovn_suffix", "5 min early", q(uuidV7(testNow.Add(-5 * time.Minute))), "", nil},
		{"OIR PUT", oirBase, oir, "requested_ovn_suffix", "5 min late", q(uuidV7(testNow.Add(5 * time.Minute))), "", nil},
		{"OIR PUT", oirBase, oir, "requested_ovn_suffix", "too early", q(uuidV7(testNow.Add(-5*time.Minute - time.Millisecond))), "requested_ovn_suffix", nil},
		{"OIR PUT", oirBase, oir, "requested_ovn_suffix", "too late", q(uuidV7(testNow.Add(5*time.Minute + time.Millisecond))), "requested_ovn_suffix", nil},
		{"OIR PUT", oirBase, oir, "requested_ovn_suffix", "valid", q(suffixNow), "", oirOp(func(op *scd.PutOperationalIntent) bool {
			return op.RequestedOVN == models.OVN(string(testIDLow)+"_"+suffixNow)
		})},

		// subscription_id: "" is absent (§3.1), so is null.
		{"OIR PUT", oirBase, oir, "subscription_id", "absent", absent, "", noSub},
		{"OIR PUT", oirBase, oir, "subscription_id", "null", `null`, "", noSub},
		{"OIR PUT", oirBase, oir, "subscription_id", "empty", `""`, "", noSub},
		{"OIR PUT", oirNewSub, oir, "subscription_id", "empty with new_subscription", `""`, "", oirOp(func(op *scd.PutOperationalIntent) bool {
			return op.SubscriptionID == "" && op.NewSubscription != nil
		})},
		{"OIR PUT", oirBase, oir, "subscription_id", "wrong type", `5`, "wrong JSON type for subscription_id", nil},
		{"OIR PUT", oirBase, oir, "subscription_id", "not a UUID", `"nope"`, "subscription_id", nil},
		{"OIR PUT", oirBase, oir, "subscription_id", "valid", q(testSubID), "", oirOp(func(op *scd.PutOperationalIntent) bool {
			return op.SubscriptionID == models.ID(testSubID)
		})},

		// key: absent, null and [] are the empty key.
		{"OIR PUT", oirBase, oir, "key", "absent", absent, "", noKey},
		{"OIR PUT", oirBase, oir, "key", "null", `null`, "", noKey},
		{"OIR PUT", oirBase, oir, "key", "empty", `[]`, "", noKey},
		{"OIR PUT", oirBase, oir, "key", "wrong type string", `"abc"`, "wrong JSON type for key", nil},
		{"OIR PUT", oirBase, oir, "key", "wrong type object", `{}`, "wrong JSON type for key", nil},
		// key entries: EntityOVN, 16 to 128 characters.
		{"OIR PUT", oirBase, oir, "key", "null entry", `[null]`, "key[0] is empty or null", nil},
		{"OIR PUT", oirBase, oir, "key", "empty entry", `[""]`, "key[0] is empty or null", nil},
		{"OIR PUT", oirBase, oir, "key", "wrong type entry", `[5]`, "wrong JSON type for key", nil},
		{"OIR PUT", oirBase, oir, "key", "short entry", `[` + q(ovn16[:15]) + `]`, "key[0]", nil},
		{"OIR PUT", oirBase, oir, "key", "long entry", `[` + q(ovn128+"o") + `]`, "key[0]", nil},
		{"OIR PUT", oirBase, oir, "key", "second entry empty", `[` + q(ovn16) + `,""]`, "key[1] is empty or null", nil},
		{"OIR PUT", oirBase, oir, "key", "valid", `[` + q(ovn16) + `,` + q(ovn128) + `,"Available from USS"]`, "", oirOp(func(op *scd.PutOperationalIntent) bool {
			return len(op.Key) == 3 && op.Key[0] == models.OVN(ovn16) && op.Key[1] == models.OVN(ovn128)
		})},

		// new_subscription: null is absent; {} lacks its required uss_base_url.
		{"OIR PUT", oirBase, oir, "new_subscription", "absent", absent, "", noSub},
		{"OIR PUT", oirBase, oir, "new_subscription", "null", `null`, "", noSub},
		{"OIR PUT", oirBase, oir, "new_subscription", "empty", `{}`, "missing new_subscription.uss_base_url", nil},
		{"OIR PUT", oirBase, oir, "new_subscription", "wrong type", `"https://n"`, "wrong JSON type for new_subscription", nil},
		{"OIR PUT", oirBase, oir, "new_subscription", "valid", `{"uss_base_url":"https://n"}`, "", oirOp(func(op *scd.PutOperationalIntent) bool {
			return op.NewSubscription != nil && op.NewSubscription.USSBaseURL == "https://n" && !op.NewSubscription.NotifyForConstraints
		})},
		{"OIR PUT", oirNewSub, oir, "new_subscription.uss_base_url", "absent", absent, "missing new_subscription.uss_base_url", nil},
		{"OIR PUT", oirNewSub, oir, "new_subscription.uss_base_url", "null", `null`, "missing new_subscription.uss_base_url", nil},
		{"OIR PUT", oirNewSub, oir, "new_subscription.uss_base_url", "empty", `""`, "missing new_subscription.uss_base_url", nil},
		{"OIR PUT", oirNewSub, oir, "new_subscription.uss_base_url", "wrong type", `5`, "wrong JSON type for new_subscription.uss_base_url", nil},
		{"OIR PUT", oirNewSub, oir, "new_subscription.uss_base_url", "http", `"http://n"`, "new_subscription.uss_base_url", nil},
		{"OIR PUT", oirNewSub, oir, "new_subscription.notify_for_constraints", "absent", absent, "", oirOp(func(op *scd.PutOperationalIntent) bool {
			return !op.NewSubscription.NotifyForConstraints
		})},
		{"OIR PUT", oirNewSub, oir, "new_subscription.notify_for_constraints", "null", `null`, "", oirOp(func(op *scd.PutOperationalIntent) bool {
			return !op.NewSubscription.NotifyForConstraints
		})},
		{"OIR PUT", oirNewSub, oir, "new_subscription.notify_for_constraints", "empty string", `""`, "wrong JSON type for new_subscription.notify_for_constraints", nil},
		{"OIR PUT", oirNewSub, oir, "new_subscription.notify_for_constraints", "wrong type", `"true"`, "wrong JSON type for new_subscription.notify_for_constraints", nil},
		{"OIR PUT", oirNewSub, oir, "new_subscription.notify_for_constraints", "valid", `true`, "", oirOp(func(op *scd.PutOperationalIntent) bool {
			return op.NewSubscription.NotifyForConstraints
		})},

		// Required members of the OIR PUT: absent, null and "" are missing.
		{"OIR PUT", oirBase, oir, "uss_base_url", "absent", absent, "missing uss_base_url", nil},
		{"OIR PUT", oirBase, oir, "uss_base_url", "null", `null`, "missing uss_base_url", nil},
		{"OIR PUT", oirBase, oir, "uss_base_url", "empty", `""`, "missing uss_base_url", nil},
		{"OIR PUT", oirBase, oir, "uss_base_url", "wrong type", `5`, "wrong JSON type for uss_base_url", nil},
		{"OIR PUT", oirBase, oir, "state", "absent", absent, "invalid state", nil},
		{"OIR PUT", oirBase, oir, "state", "null", `null`, "invalid state", nil},
		{"OIR PUT", oirBase, oir, "state", "empty", `""`, "invalid state", nil},
		{"OIR PUT", oirBase, oir, "state", "wrong type", `1`, "wrong JSON type for state", nil},
		{"OIR PUT", oirBase, oir, "extents", "absent", absent, "missing extents", nil},
		{"OIR PUT", oirBase, oir, "extents", "null", `null`, "missing extents", nil},
		{"OIR PUT", oirBase, oir, "extents", "empty", `[]`, "extents is empty", nil},
		{"OIR PUT", oirBase, oir, "extents", "wrong type", `{}`, "wrong JSON type for extents", nil},

		// Subscription PUT: the notify flags default to false (utm.yaml).
		{"sub PUT", subBase, sub, "notify_for_operational_intents", "absent", absent, "", subOp(func(op *scd.PutSubscription) bool {
			return !op.NotifyForOperationalIntents && op.NotifyForConstraints
		})},
		{"sub PUT", subBase, sub, "notify_for_operational_intents", "null", `null`, "", subOp(func(op *scd.PutSubscription) bool {
			return !op.NotifyForOperationalIntents && op.NotifyForConstraints
		})},
		{"sub PUT", subBase, sub, "notify_for_operational_intents", "empty string", `""`, "wrong JSON type for notify_for_operational_intents", nil},
		{"sub PUT", subBase, sub, "notify_for_operational_intents", "wrong type", `1`, "wrong JSON type for notify_for_operational_intents", nil},
		{"sub PUT", subBase, sub, "notify_for_operational_intents", "valid false", `false`, "", subOp(func(op *scd.PutSubscription) bool {
			return !op.NotifyForOperationalIntents
		})},
		{"sub PUT", subBase, sub, "notify_for_constraints", "absent", absent, "", subOp(func(op *scd.PutSubscription) bool {
			return op.NotifyForOperationalIntents && !op.NotifyForConstraints
		})},
		{"sub PUT", subBase, sub, "notify_for_constraints", "null", `null`, "", subOp(func(op *scd.PutSubscription) bool {
			return op.NotifyForOperationalIntents && !op.NotifyForConstraints
		})},
		{"sub PUT", subBase, sub, "notify_for_constraints", "empty string", `""`, "wrong JSON type for notify_for_constraints", nil},
		{"sub PUT", subBase, sub, "notify_for_constraints", "wrong type", `[]`, "wrong JSON type for notify_for_constraints", nil},
		{"sub PUT", subBase, sub, "extents", "absent", absent, "missing extents", nil},
		{"sub PUT", subBase, sub, "extents", "null", `null`, "missing extents", nil},
		{"sub PUT", subBase, sub, "extents", "empty", `{}`, "extents: missing volume", nil},
		{"sub PUT", subBase, sub, "extents", "wrong type", `[]`, "wrong JSON type for extents", nil},
		{"sub PUT", subBase, sub, "uss_base_url", "absent", absent, "missing uss_base_url", nil},
		{"sub PUT", subBase, sub, "uss_base_url", "null", `null`, "missing uss_base_url", nil},
		{"sub PUT", subBase, sub, "uss_base_url", "empty", `""`, "missing uss_base_url", nil},
		{"sub PUT", subBase, sub, "uss_base_url", "wrong type", `{}`, "wrong JSON type for uss_base_url", nil},

		// CR PUT: both members required.
		{"CR PUT", crBase, cr, "uss_base_url", "absent", absent, "missing uss_base_url", nil},
		{"CR PUT", crBase, cr, "uss_base_url", "null", `null`, "missing uss_base_url", nil},
		{"CR PUT", crBase, cr, "uss_base_url", "empty", `""`, "missing uss_base_url", nil},
		{"CR PUT", crBase, cr, "uss_base_url", "wrong type", `true`, "wrong JSON type for uss_base_url", nil},
		{"CR PUT", crBase, cr, "extents", "absent", absent, "missing extents", nil},
		{"CR PUT", crBase, cr, "extents", "null", `null`, "missing extents", nil},
		{"CR PUT", crBase, cr, "extents", "empty", `[]`, "extents is empty", nil},
		{"CR PUT", crBase, cr, "extents", "wrong type", `"x"`, "wrong JSON type for extents", nil},

		// USS availability: old_version may be omitted (§6.4), availability
		// may not (utm.yaml required); "" is Unknown (§5.4).
		{"availability PUT", availBase, avail, "old_version", "absent", absent, "", availOp(func(op *scd.PutUssAvailability) bool { return op.OldVersion == "" })},
		{"availability PUT", availBase, avail, "old_version", "null", `null`, "", availOp(func(op *scd.PutUssAvailability) bool { return op.OldVersion == "" })},
		{"availability PUT", availBase, avail, "old_version", "empty", `""`, "", availOp(func(op *scd.PutUssAvailability) bool { return op.OldVersion == "" })},
		{"availability PUT", availBase, avail, "old_version", "wrong type", `3`, "wrong JSON type for old_version", nil},
		{"availability PUT", availBase, avail, "old_version", "valid", `"v2"`, "", availOp(func(op *scd.PutUssAvailability) bool { return op.OldVersion == "v2" })},
		{"availability PUT", availBase, avail, "availability", "absent", absent, "missing availability", nil},
		{"availability PUT", availBase, avail, "availability", "null", `null`, "missing availability", nil},
		{"availability PUT", availBase, avail, "availability", "empty", `""`, "", availOp(func(op *scd.PutUssAvailability) bool {
			return op.Availability == models.AvailabilityUnknown
		})},
		{"availability PUT", availBase, avail, "availability", "wrong type", `3`, "wrong JSON type for availability", nil},
		{"availability PUT", availBase, avail, "availability", "invalid", `"Sleeping"`, "invalid availability", nil},
		{"availability PUT", availBase, avail, "availability", "valid", `"normal"`, "", availOp(func(op *scd.PutUssAvailability) bool {
			return op.Availability == models.AvailabilityNormal
		})},

		// Queries: area_of_interest is required by the spec (§6.1 Query).
		{"OIR query", queryBase, query, "area_of_interest", "absent", absent, "missing area_of_interest", nil},
		{"OIR query", queryBase, query, "area_of_interest", "null", `null`, "missing area_of_interest", nil},
		{"OIR query", queryBase, query, "area_of_interest", "empty", `{}`, "area_of_interest: missing volume", nil},
		{"OIR query", queryBase, query, "area_of_interest", "wrong type", `[]`, "wrong JSON type for area_of_interest", nil},

		// Reports: exchange is required; its own members are archived as sent.
		{"report POST", reportBase, report, "exchange", "absent", absent, "missing exchange", nil},
		{"report POST", reportBase, report, "exchange", "null", `null`, "missing exchange", nil},
		{"report POST", reportBase, report, "exchange", "wrong type", `"x"`, "wrong JSON type for exchange", nil},
		{"report POST", reportBase, report, "exchange.headers", "null", `null`, "", nil},
		{"report POST", reportBase, report, "exchange.headers", "empty", `[]`, "", nil},
		{"report POST", reportBase, report, "exchange.headers", "wrong type", `"h"`, "wrong JSON type for exchange.headers", nil},
	}
	for _, c := range cases {
		t.Run(c.endpoint+"/"+c.field+"/"+c.form, func(t *testing.T) {
			m := c.base()
			setMember(t, m, c.field, c.value, c.value == absent)
			body := mustJSON(t, m)
			op, err := c.parse(body)
			if c.want != "" {
				wantErr(t, err, models.CodeBadRequest, c.want)
				return
			}
			if err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			if c.check != nil && !c.check(op) {
				t.Fatalf("body %s: op = %+v", body, op)
			}
		})
	}
}

// TestOVNSuffixCheckedBeforeLaterChecks pins the position of the suffix
// check in step A (§6.1 A): after the creation-state rule, before the
// subscription requirement and the key entries; an empty suffix is a bad
// suffix at that position, not an absent one.
func TestOVNSuffixCheckedBeforeLaterChecks(t *testing.T) {
	m := toMap(t, baseOIR())
	m["requested_ovn_suffix"] = ""
	m["key"] = []string{""}
	_, err := ParsePutOperationalIntent(testRI, testID, "", true, mustJSON(t, m))
	wantErr(t, err, models.CodeBadRequest, "requested_ovn_suffix is empty")

	m["state"] = "Activated" // update without subscription: checked after the suffix
	_, err = ParsePutOperationalIntent(testRI, testID, "ovn-0123456789abcdef", false, mustJSON(t, m))
	wantErr(t, err, models.CodeBadRequest, "requested_ovn_suffix is empty")

	_, err = ParsePutOperationalIntent(testRI, testID, "", true, mustJSON(t, m)) // create in Activated: earlier
	wantErr(t, err, models.CodeBadRequest, "created in state Accepted")

	delete(m, "requested_ovn_suffix")
	m["state"] = "Accepted"
	_, err = ParsePutOperationalIntent(testRI, testID, "", true, mustJSON(t, m))
	wantErr(t, err, models.CodeBadRequest, "key[0] is empty or null")
}

// toMap turns a typed body into a generic JSON object to edit.
func toMap(t *testing.T, v any) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(mustJSON(t, v), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// setMember sets (or, with remove, deletes) the dotted member path of m to
// the raw JSON value, creating no intermediate objects: the path's parents
// must exist in the base body.
func setMember(t *testing.T, m map[string]any, path, raw string, remove bool) {
	t.Helper()
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			t.Fatalf("base body has no object at %q", p)
		}
		m = next
	}
	last := parts[len(parts)-1]
	if remove {
		delete(m, last)
		return
	}
	m[last] = json.RawMessage(raw)
}
