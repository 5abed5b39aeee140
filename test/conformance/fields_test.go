package conformance

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// absentMember marks a row whose member is removed from the body.
const absentMember = "<absent>"

// fieldRow is one form of one request member (docs/spec-notes.md, "Absent,
// null, empty, wrong type"). value is raw JSON or absentMember; "$BLOCKER"
// in it is replaced by the blocking OIR's OVN.
type fieldRow struct {
	ep    string // endpoint kind: oir, oir+newsub, sub, cr, avail, query
	field string // dotted member path
	form  string
	value string
	// bare is the status of a request that would also fail a later, store
	// side check (409: the key check, an existing ID, a stale version):
	// 400 there proves the member is rejected in validation, first.
	bare int
	// rerun is the status of the same member form in a request that can
	// succeed (0: not run); check inspects its response.
	rerun int
	check func(t *testing.T, r *resp, id string)
}

// TestMemberForms is the black-box table of issue 21: for every member of
// every SCD request body, absent, null, empty, wrong type and valid are
// told apart as spec §3–§6, utm.yaml and docs/spec-notes.md say, on
// whatever store the target runs (in-process memstore by default; the e2e
// package runs this suite against a Raft cluster and SQL nodes). Each row
// first sends its form in a request bound to fail later in the store, then,
// for forms that pass validation, in one that succeeds.
func TestMemberForms(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "fields", allScopes...)
	other := newUSS(t, "fields-other", sc)
	start, end := at(10*time.Minute), at(time.Hour)

	// Shared setup: an OIR of another USS blocks place P (any OIR PUT there
	// without its OVN in the key is a 409), a subscription of u covers P,
	// and a constraint, a subscription and an availability record exist,
	// so that PUTs creating them again (or with a stale version) are 409s.
	blocked := newPlace()
	blocker := createOIR(t, other, newID(), oirParams(other.base, "Accepted", box(blocked, start, end))).OIR
	subAtP := putSub(t, u, newID(), "", subParams(u.base, box(blocked, at(time.Minute), at(2*time.Hour)), true, false)).Subscription
	existingCR := createCR(t, u, newID(), crParams(u.base, box(newPlace(), start, end))).CR
	existingSub := putSub(t, u, newID(), "", subParams(u.base, box(newPlace(), start, end), true, true)).Subscription
	recordUSS := "fields-avail-" + suffix()
	setAvailability(t, u, recordUSS, "", "Normal")

	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	suffixNow := uuidV7At(t, time.Now())
	ovn16, ovn128 := strings.Repeat("k", 16), strings.Repeat("k", 128)
	aoi, err := json.Marshal(box(newPlace(), start, end).wire())
	if err != nil {
		t.Fatal(err)
	}

	oirOf := func(t *testing.T, r *resp) oirW {
		t.Helper()
		var c changeOIRW
		r.decode(t, &c)
		return c.OIR
	}
	derivedOVN := func(t *testing.T, r *resp, id string) {
		t.Helper()
		o := oirOf(t, r)
		expectOVN(t, o.OVN)
		if strings.HasPrefix(o.OVN, id+"_") {
			t.Fatalf("ovn %q: want a derived OVN, not a requested one", o.OVN)
		}
	}
	noSub := func(t *testing.T, r *resp, _ string) {
		t.Helper()
		if o := oirOf(t, r); o.SubscriptionID != placeholderSub {
			t.Fatalf("subscription_id %q, want the placeholder (no subscription)", o.SubscriptionID)
		}
	}
	implicit := func(notifyCRs bool) func(*testing.T, *resp, string) {
		return func(t *testing.T, r *resp, _ string) {
			t.Helper()
			o := oirOf(t, r)
			if o.SubscriptionID == placeholderSub {
				t.Fatal("no implicit subscription was created")
			}
			s := getSub(t, u, o.SubscriptionID)
			if !s.ImplicitSubscription || !s.NotifyForOperationalIntents || s.NotifyForConstraints != notifyCRs {
				t.Fatalf("implicit subscription %+v, want notify_for_constraints=%v", s, notifyCRs)
			}
		}
	}
	subFlags := func(oirs, crs bool) func(*testing.T, *resp, string) {
		return func(t *testing.T, r *resp, _ string) {
			t.Helper()
			var s putSubW
			r.decode(t, &s)
			if s.Subscription.NotifyForOperationalIntents != oirs || s.Subscription.NotifyForConstraints != crs {
				t.Fatalf("subscription flags %v/%v, want %v/%v", s.Subscription.NotifyForOperationalIntents,
					s.Subscription.NotifyForConstraints, oirs, crs)
			}
		}
	}
	availIs := func(want string) func(*testing.T, *resp, string) {
		return func(t *testing.T, r *resp, _ string) {
			t.Helper()
			var a availW
			r.decode(t, &a)
			if a.Status.Availability != want {
				t.Fatalf("availability %q, want %q", a.Status.Availability, want)
			}
		}
	}

	const bad, conflict = http.StatusBadRequest, http.StatusConflict
	rows := []fieldRow{
		// requested_ovn_suffix (§3.6): absent/null = derived OVN; present,
		// even "", must be a UUIDv7 within ±5 min.
		{"oir", "requested_ovn_suffix", "absent", absentMember, conflict, 201, derivedOVN},
		{"oir", "requested_ovn_suffix", "null", `null`, conflict, 201, derivedOVN},
		{"oir", "requested_ovn_suffix", "empty", `""`, bad, 0, nil},
		{"oir", "requested_ovn_suffix", "wrong type", `7`, bad, 0, nil},
		{"oir", "requested_ovn_suffix", "UUIDv4", q(newID()), bad, 0, nil},
		{"oir", "requested_ovn_suffix", "6 min early", q(uuidV7At(t, time.Now().Add(-6*time.Minute))), bad, 0, nil},
		{"oir", "requested_ovn_suffix", "6 min late", q(uuidV7At(t, time.Now().Add(6*time.Minute))), bad, 0, nil},
		{"oir", "requested_ovn_suffix", "valid", q(suffixNow), conflict, 201, func(t *testing.T, r *resp, id string) {
			if o := oirOf(t, r); o.OVN != id+"_"+suffixNow {
				t.Fatalf("ovn %q, want %q", o.OVN, id+"_"+suffixNow)
			}
		}},

		// subscription_id: absent, null and "" are no subscription (§3.1).
		{"oir", "subscription_id", "absent", absentMember, conflict, 201, noSub},
		{"oir", "subscription_id", "null", `null`, conflict, 201, noSub},
		{"oir", "subscription_id", "empty", `""`, conflict, 201, noSub},
		{"oir+newsub", "subscription_id", "empty with new_subscription", `""`, conflict, 201, implicit(true)},
		{"oir", "subscription_id", "wrong type", `5`, bad, 0, nil},
		{"oir", "subscription_id", "not a UUIDv4", q("6ba7b810-9dad-11d1-80b4-00c04fd430c8"), bad, 0, nil},
		// Valid: the store resolves it (it covers P) and runs the key check.
		{"oir", "subscription_id", "valid", q(subAtP.ID), conflict, 0, nil},

		// new_subscription: null is absent; {} lacks uss_base_url.
		{"oir", "new_subscription", "absent", absentMember, conflict, 201, noSub},
		{"oir", "new_subscription", "null", `null`, conflict, 201, noSub},
		{"oir", "new_subscription", "empty", `{}`, bad, 0, nil},
		{"oir", "new_subscription", "wrong type", `"https://x.example.com"`, bad, 0, nil},
		{"oir", "new_subscription", "valid", `{"uss_base_url":"https://n.example.com"}`, conflict, 201, implicit(false)},
		{"oir+newsub", "new_subscription.uss_base_url", "absent", absentMember, bad, 0, nil},
		{"oir+newsub", "new_subscription.uss_base_url", "null", `null`, bad, 0, nil},
		{"oir+newsub", "new_subscription.uss_base_url", "empty", `""`, bad, 0, nil},
		{"oir+newsub", "new_subscription.uss_base_url", "wrong type", `5`, bad, 0, nil},
		{"oir+newsub", "new_subscription.uss_base_url", "http", `"http://n.example.com"`, bad, 0, nil},
		{"oir+newsub", "new_subscription.notify_for_constraints", "absent", absentMember, conflict, 201, implicit(false)},
		{"oir+newsub", "new_subscription.notify_for_constraints", "null", `null`, conflict, 201, implicit(false)},
		{"oir+newsub", "new_subscription.notify_for_constraints", "empty string", `""`, bad, 0, nil},
		{"oir+newsub", "new_subscription.notify_for_constraints", "wrong type", `"true"`, bad, 0, nil},
		{"oir+newsub", "new_subscription.notify_for_constraints", "valid", `true`, conflict, 201, implicit(true)},

		// Required OIR members: absent, null and "" are missing.
		{"oir", "uss_base_url", "absent", absentMember, bad, 0, nil},
		{"oir", "uss_base_url", "null", `null`, bad, 0, nil},
		{"oir", "uss_base_url", "empty", `""`, bad, 0, nil},
		{"oir", "uss_base_url", "wrong type", `5`, bad, 0, nil},
		{"oir", "state", "absent", absentMember, bad, 0, nil},
		{"oir", "state", "null", `null`, bad, 0, nil},
		{"oir", "state", "empty", `""`, bad, 0, nil},
		{"oir", "state", "wrong type", `1`, bad, 0, nil},
		{"oir", "extents", "absent", absentMember, bad, 0, nil},
		{"oir", "extents", "null", `null`, bad, 0, nil},
		{"oir", "extents", "empty", `[]`, bad, 0, nil},
		{"oir", "extents", "wrong type", `{}`, bad, 0, nil},

		// key: absent, null and [] are the empty key (so P's blocker is
		// missing: 409); entries are OVNs of 16 to 128 characters.
		{"oir", "key", "absent", absentMember, conflict, 0, nil},
		{"oir", "key", "null", `null`, conflict, 0, nil},
		{"oir", "key", "empty", `[]`, conflict, 0, nil},
		{"oir", "key", "wrong type", `"$BLOCKER"`, bad, 0, nil},
		{"oir", "key", "null entry", `["$BLOCKER",null]`, bad, 0, nil},
		{"oir", "key", "empty entry", `["$BLOCKER",""]`, bad, 0, nil},
		{"oir", "key", "wrong type entry", `["$BLOCKER",5]`, bad, 0, nil},
		{"oir", "key", "15-character entry", `["$BLOCKER",` + q(ovn16[:15]) + `]`, bad, 0, nil},
		{"oir", "key", "129-character entry", `["$BLOCKER",` + q(ovn128+"k") + `]`, bad, 0, nil},
		// Last OIR row: it creates an OIR at P.
		{"oir", "key", "valid", `["$BLOCKER",` + q(ovn16) + `,` + q(ovn128) + `]`, http.StatusCreated, 0, nil},

		// Subscription PUT: the notify flags default to false (utm.yaml).
		{"sub", "notify_for_operational_intents", "absent", absentMember, conflict, 200, subFlags(false, true)},
		{"sub", "notify_for_operational_intents", "null", `null`, conflict, 200, subFlags(false, true)},
		{"sub", "notify_for_operational_intents", "empty string", `""`, bad, 0, nil},
		{"sub", "notify_for_operational_intents", "wrong type", `1`, bad, 0, nil},
		{"sub", "notify_for_operational_intents", "valid", `true`, conflict, 200, subFlags(true, true)},
		{"sub", "notify_for_constraints", "absent", absentMember, conflict, 200, subFlags(true, false)},
		{"sub", "notify_for_constraints", "null", `null`, conflict, 200, subFlags(true, false)},
		{"sub", "notify_for_constraints", "empty string", `""`, bad, 0, nil},
		{"sub", "notify_for_constraints", "wrong type", `[]`, bad, 0, nil},
		{"sub", "extents", "absent", absentMember, bad, 0, nil},
		{"sub", "extents", "null", `null`, bad, 0, nil},
		{"sub", "extents", "empty", `{}`, bad, 0, nil},
		{"sub", "extents", "wrong type", `[]`, bad, 0, nil},
		{"sub", "uss_base_url", "absent", absentMember, bad, 0, nil},
		{"sub", "uss_base_url", "null", `null`, bad, 0, nil},
		{"sub", "uss_base_url", "empty", `""`, bad, 0, nil},
		{"sub", "uss_base_url", "wrong type", `{}`, bad, 0, nil},

		// Constraint PUT: both members required.
		{"cr", "uss_base_url", "absent", absentMember, bad, 0, nil},
		{"cr", "uss_base_url", "null", `null`, bad, 0, nil},
		{"cr", "uss_base_url", "empty", `""`, bad, 0, nil},
		{"cr", "uss_base_url", "wrong type", `true`, bad, 0, nil},
		{"cr", "uss_base_url", "valid", q(u.base), conflict, 201, nil},
		{"cr", "extents", "absent", absentMember, bad, 0, nil},
		{"cr", "extents", "null", `null`, bad, 0, nil},
		{"cr", "extents", "empty", `[]`, bad, 0, nil},
		{"cr", "extents", "wrong type", `"x"`, bad, 0, nil},

		// USS availability: an omitted or null old_version is "" (§6.4), so
		// it is stale against an existing record (bare) and right for a
		// USS without one (rerun); availability is required, "" = Unknown.
		{"avail", "old_version", "absent", absentMember, conflict, 200, availIs("Down")},
		{"avail", "old_version", "null", `null`, conflict, 200, availIs("Down")},
		{"avail", "old_version", "empty", `""`, conflict, 200, availIs("Down")},
		{"avail", "old_version", "wrong type", `3`, bad, 0, nil},
		{"avail", "old_version", "unknown version", `"no-such-version"`, conflict, conflict, nil},
		{"avail", "availability", "absent", absentMember, bad, 0, nil},
		{"avail", "availability", "null", `null`, bad, 0, nil},
		{"avail", "availability", "empty", `""`, conflict, 200, availIs("Unknown")},
		{"avail", "availability", "wrong type", `3`, bad, 0, nil},
		{"avail", "availability", "invalid", `"Sleeping"`, bad, 0, nil},
		{"avail", "availability", "valid lowercase", `"normal"`, conflict, 200, availIs("Normal")},

		// Query: area_of_interest is required.
		{"query", "area_of_interest", "absent", absentMember, bad, 0, nil},
		{"query", "area_of_interest", "null", `null`, bad, 0, nil},
		{"query", "area_of_interest", "empty", `{}`, bad, 0, nil},
		{"query", "area_of_interest", "wrong type", `[]`, bad, 0, nil},
		{"query", "area_of_interest", "valid", string(aoi), http.StatusOK, 0, nil},
	}

	// request builds a row's request: bare (bound to fail in the store) or
	// not, with a fresh ID or USS where one is needed.
	request := func(row fieldRow, bare bool) (method, p string, body map[string]any, id string) {
		id = newID()
		switch row.ep {
		case "oir", "oir+newsub":
			where := blocked
			if !bare {
				where = newPlace()
			}
			body = oirParams(u.base, "Accepted", box(where, start, end))
			if row.ep == "oir+newsub" {
				withNewSub(body, u.base, true)
			}
			return http.MethodPut, path(oirPrefix, id), body, id
		case "sub":
			if bare {
				id = existingSub.ID // create endpoint on an existing ID: 409
			}
			return http.MethodPut, path(subPrefix, id), subParams(u.base, box(newPlace(), start, end), true, true), id
		case "cr":
			if bare {
				id = existingCR.ID
			}
			return http.MethodPut, path(crPrefix, id), crParams(u.base, box(newPlace(), start, end)), id
		case "avail":
			uss := "fields-avail-" + suffix() // no record: old_version "" is right
			body = map[string]any{"old_version": "", "availability": "Down"}
			if bare {
				uss, body["old_version"] = recordUSS, "stale-version-0123456789"
			}
			return http.MethodPut, path(availPrefix, uss), body, uss
		case "query":
			return http.MethodPost, oirQueryPath, queryParams(box(newPlace(), start, end)), id
		}
		t.Fatalf("unknown endpoint kind %q", row.ep)
		return
	}

	for _, row := range rows {
		t.Run(row.ep+"/"+row.field+"/"+row.form, func(t *testing.T) {
			for _, bare := range []bool{true, false} {
				want := row.bare
				if !bare {
					want = row.rerun
				}
				if want == 0 {
					continue
				}
				method, p, body, id := request(row, bare)
				setMember(t, body, row.field, strings.ReplaceAll(row.value, "$BLOCKER", blocker.OVN))
				r := u.do(t, method, p, body)
				if want >= 400 {
					r.expectError(t, want)
				} else {
					r.expect(t, want)
				}
				if want == http.StatusBadRequest {
					// The message names the member (issue 21).
					var e struct{ Message string }
					r.decode(t, &e)
					name := row.field[strings.LastIndex(row.field, ".")+1:]
					if !strings.Contains(e.Message, name) {
						t.Fatalf("400 message %q does not name %q", e.Message, name)
					}
				}
				if !bare && row.check != nil {
					row.check(t, r, id)
				}
			}
		})
	}
}

// setMember sets the dotted member path of m to the raw JSON value, or
// removes it for absentMember; the parents must exist in m.
func setMember(t *testing.T, m map[string]any, path, raw string) {
	t.Helper()
	parts := strings.Split(path, ".")
	for _, k := range parts[:len(parts)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			t.Fatalf("body has no object at %q", k)
		}
		m = next
	}
	last := parts[len(parts)-1]
	if raw == absentMember {
		delete(m, last)
		return
	}
	m[last] = json.RawMessage(raw)
}
