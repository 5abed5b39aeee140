package conformance

import (
	"net/http"
	"testing"
	"time"
)

// badCase is one malformed request: its body, built from a fresh valid one.
type badCase struct {
	name string
	body func(place) any
}

// mutate returns a body builder that edits a valid body.
func mutate(valid func(place) map[string]any, edit func(m map[string]any, p place)) func(place) any {
	return func(p place) any {
		m := valid(p)
		edit(m, p)
		return m
	}
}

// volumeCases are malformed Volume4D variants (§3.2-§3.4, §4), shared by
// every endpoint that takes volumes. withAlt says whether the endpoint needs
// altitudes (OIR PUT).
func volumeCases(p place, withAlt bool) map[string]vol {
	start, end := at(10*time.Minute), at(time.Hour)
	good := box(p, start, end)
	cases := map[string]vol{}
	set := func(name string, f func(v *vol)) {
		v := good
		f(&v)
		cases[name] = v
	}
	set("bad time value", func(*vol) {}) // time_start replaced by an invalid value below
	set("altitude units FT", func(v *vol) {
		v.extraVol = map[string]any{"altitude_lower": map[string]any{"value": 0, "reference": "W84", "units": "FT"}}
	})
	set("altitude units lowercase m", func(v *vol) {
		v.extraVol = map[string]any{"altitude_upper": map[string]any{"value": 100, "reference": "W84", "units": "m"}}
	})
	set("altitude reference AGL", func(v *vol) {
		v.extraVol = map[string]any{"altitude_lower": map[string]any{"value": 0, "reference": "AGL", "units": "M"}}
	})
	set("altitude lower above upper", func(v *vol) { v.lo, v.hi = f64(200), f64(100) })
	set("polygon with 2 vertices", func(v *vol) { v.poly = v.poly[:2] })
	set("bow-tie polygon", func(v *vol) { v.poly = []place{p, p.offset(0, 200), p.offset(200, 0), p.offset(200, 200)} })
	set("closed polygon (last repeats first)", func(v *vol) { v.poly = append(p.square(200), p) })
	set("duplicate consecutive vertex", func(v *vol) { sq := p.square(200); v.poly = []place{sq[0], sq[1], sq[1], sq[2], sq[3]} })
	set("area too large", func(v *vol) { v.poly = bigSquare(p) })
	set("both outlines", func(v *vol) { v.circle, v.radiusM = &p, 100 })
	set("no outline", func(v *vol) { v.poly = nil })
	set("latitude out of range", func(v *vol) { v.poly = []place{{91, p.lng}, {91, p.lng + 0.01}, {89.99, p.lng}} })
	set("longitude out of range", func(v *vol) { v.poly = []place{{p.lat, 180.5}, {p.lat, 180.6}, {p.lat + 0.01, 180.5}} })
	set("circle radius 0", func(v *vol) { v.poly, v.circle, v.radiusM = nil, &p, 0 })
	set("circle without center", func(v *vol) {
		v.poly = nil
		v.extraVol = map[string]any{"outline_circle": map[string]any{"radius": map[string]any{"value": 100, "units": "M"}}}
	})
	set("circle without radius", func(v *vol) {
		v.poly = nil
		v.extraVol = map[string]any{"outline_circle": map[string]any{"center": p.wire()}}
	})
	set("circle center out of range", func(v *vol) { v.poly, v.circle, v.radiusM = nil, &place{-95, 0}, 100 })
	set("start after end", func(v *vol) { v.start, v.end = &end, &start })
	if withAlt {
		set("missing altitude_lower", func(v *vol) { v.lo = nil })
		set("missing altitude_upper", func(v *vol) { v.hi = nil })
	}
	return cases
}

// TestBadInput: malformed bodies → 400 with a {"message"} body, never 5xx
// (§1 JSON parsing, §3, §4, §6 step A).
func TestBadInput(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "all", allScopes...)
	start, end := at(10*time.Minute), at(time.Hour)
	validOIR := func(p place) map[string]any {
		return withNewSub(oirParams(u.base, "Accepted", box(p, start, end)), u.base, false)
	}
	validCR := func(p place) map[string]any { return crParams(u.base, box(p, start, end)) }
	validSub := func(p place) map[string]any { return subParams(u.base, box(p, start, end), true, true) }
	validQuery := func(p place) map[string]any { return queryParams(box(p, start, end)) }
	badTime := func(m map[string]any, key string) {
		ext := m[key]
		if arr, ok := ext.([]any); ok {
			ext = arr[0]
		}
		ext.(map[string]any)["time_start"] = map[string]any{"value": "tomorrow", "format": "RFC3339"}
	}

	common := []badCase{
		{"invalid JSON", func(place) any { return rawBody(`{"extents": [`) }},
		{"empty body", func(place) any { return nil }},
		{"JSON null", func(place) any { return rawBody(`null`) }},
		{"JSON array", func(place) any { return rawBody(`[]`) }},
	}

	type endpoint struct {
		name    string
		method  string
		path    func() string
		valid   func(place) map[string]any
		volKey  string // "extents" (array or object) or "area_of_interest"
		array   bool
		withAlt bool
		extra   []badCase
	}
	endpoints := []endpoint{
		{"OIR PUT", http.MethodPut, func() string { return path(oirPrefix, newID()) }, validOIR, "extents", true, true, []badCase{
			{"extents as object", mutate(validOIR, func(m map[string]any, p place) { m["extents"] = box(p, start, end).wire() })},
			{"empty extents", mutate(validOIR, func(m map[string]any, p place) { m["extents"] = []any{} })},
			{"state as number", mutate(validOIR, func(m map[string]any, p place) { m["state"] = 1 })},
			{"uss_base_url as number", mutate(validOIR, func(m map[string]any, p place) { m["uss_base_url"] = 42 })},
			{"key as string", mutate(validOIR, func(m map[string]any, p place) { m["key"] = "abc" })},
			{"time value as number", mutate(validOIR, func(m map[string]any, p place) {
				m["extents"].([]any)[0].(map[string]any)["time_end"] = map[string]any{"value": 12345, "format": "RFC3339"}
			})},
			{"bad time value", mutate(validOIR, func(m map[string]any, p place) { badTime(m, "extents") })},
			{"http base URL", mutate(validOIR, func(m map[string]any, p place) { m["uss_base_url"] = "http://uss.example.com/utm" })},
			{"base URL without scheme", mutate(validOIR, func(m map[string]any, p place) { m["uss_base_url"] = "uss.example.com/utm" })},
			{"empty base URL", mutate(validOIR, func(m map[string]any, p place) { m["uss_base_url"] = "" })},
			{"missing base URL", mutate(validOIR, func(m map[string]any, p place) { delete(m, "uss_base_url") })},
			{"missing state", mutate(validOIR, func(m map[string]any, p place) { delete(m, "state") })},
			{"new_subscription http URL", mutate(validOIR, func(m map[string]any, p place) { withNewSub(m, "http://uss.example.com", false) })},
			{"new_subscription empty URL", mutate(validOIR, func(m map[string]any, p place) { withNewSub(m, "", false) })},
			{"subscription_id and new_subscription", mutate(validOIR, func(m map[string]any, p place) { m["subscription_id"] = newID() })},
			{"subscription_id not a UUID", func(p place) any { return withSub(oirParams(u.base, "Accepted", box(p, start, end)), "nope") }},
			{"subscription_id not v4", func(p place) any {
				return withSub(oirParams(u.base, "Accepted", box(p, start, end)), "6ba7b810-9dad-11d1-80b4-00c04fd430c8")
			}},
			{"missing time_end", func(p place) any { v := box(p, start, end); v.end = nil; return oirParams(u.base, "Accepted", v) }},
			{"missing time_start", func(p place) any { v := box(p, start, end); v.start = nil; return oirParams(u.base, "Accepted", v) }},
			{"union end in the past", func(p place) any { return oirParams(u.base, "Accepted", box(p, at(-2*time.Hour), at(-time.Hour))) }},
			{"one volume without end", func(p place) any {
				v := box(p.offset(1000, 0), start, end)
				v.end = nil
				return oirParams(u.base, "Accepted", box(p, start, end), v)
			}},
		}},
		{"CR PUT", http.MethodPut, func() string { return path(crPrefix, newID()) }, validCR, "extents", true, false, []badCase{
			{"extents as object", mutate(validCR, func(m map[string]any, p place) { m["extents"] = box(p, start, end).wire() })},
			{"empty extents", mutate(validCR, func(m map[string]any, p place) { m["extents"] = []any{} })},
			{"bad time value", mutate(validCR, func(m map[string]any, p place) { badTime(m, "extents") })},
			{"http base URL", mutate(validCR, func(m map[string]any, p place) { m["uss_base_url"] = "http://uss.example.com/utm" })},
			{"empty base URL", mutate(validCR, func(m map[string]any, p place) { m["uss_base_url"] = "" })},
			{"missing time_end", func(p place) any { v := box(p, start, end); v.end = nil; return crParams(u.base, v) }},
			{"union end in the past", func(p place) any { return crParams(u.base, box(p, at(-2*time.Hour), at(-time.Hour))) }},
		}},
		{"subscription PUT", http.MethodPut, func() string { return path(subPrefix, newID()) }, validSub, "extents", false, false, []badCase{
			{"extents as array", mutate(validSub, func(m map[string]any, p place) { m["extents"] = extents(box(p, start, end)) })},
			{"bad time value", mutate(validSub, func(m map[string]any, p place) { badTime(m, "extents") })},
			{"both notify flags false", func(p place) any { return subParams(u.base, box(p, start, end), false, false) }},
			{"notify flags absent", mutate(validSub, func(m map[string]any, p place) {
				delete(m, "notify_for_operational_intents")
				delete(m, "notify_for_constraints")
			})},
			{"notify flag as string", mutate(validSub, func(m map[string]any, p place) { m["notify_for_constraints"] = "yes" })},
			{"http base URL", mutate(validSub, func(m map[string]any, p place) { m["uss_base_url"] = "http://uss.example.com/utm" })},
			{"empty base URL", mutate(validSub, func(m map[string]any, p place) { m["uss_base_url"] = "" })},
		}},
		{"OIR query", http.MethodPost, func() string { return oirQueryPath }, validQuery, "area_of_interest", false, false, []badCase{
			{"missing area_of_interest", func(place) any { return map[string]any{} }},
			{"area_of_interest as array", func(p place) any { return map[string]any{"area_of_interest": extents(box(p, start, end))} }},
		}},
		{"CR query", http.MethodPost, func() string { return crQueryPath }, validQuery, "area_of_interest", false, false, []badCase{
			{"missing area_of_interest", func(place) any { return map[string]any{} }},
		}},
		{"subscription query", http.MethodPost, func() string { return subQueryPath }, validQuery, "area_of_interest", false, false, []badCase{
			{"missing area_of_interest", func(place) any { return map[string]any{} }},
		}},
	}

	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			t.Parallel()
			// Control: the valid body is accepted.
			if r := u.do(t, ep.method, ep.path(), ep.valid(newPlace())); r.status >= 300 {
				t.Fatalf("control request with the valid body failed: %s", r)
			}
			cases := append(append([]badCase{}, common...), ep.extra...)
			for name, v := range volumeCases(newPlace(), ep.withAlt) {
				if ep.volKey == "area_of_interest" && name == "area too large" && ep.name == "subscription query" {
					continue // 413 there, tested in TestStatusCodeTable
				}
				v := v
				cases = append(cases, badCase{"volume: " + name, func(place) any {
					w := v.wire()
					if name == "bad time value" {
						w["time_start"] = map[string]any{"value": "2024-13-45T25:61:00Z", "format": "RFC3339"}
					}
					m := ep.valid(newPlace())
					if ep.array {
						m[ep.volKey] = []any{w}
					} else {
						m[ep.volKey] = w
					}
					return m
				}})
			}
			for _, c := range cases {
				r := u.do(t, ep.method, ep.path(), c.body(newPlace()))
				if r.status != http.StatusBadRequest {
					t.Errorf("%s: want 400: %s", c.name, r)
					continue
				}
				r.expectError(t, http.StatusBadRequest)
			}
		})
	}

	t.Run("availability PUT", func(t *testing.T) {
		t.Parallel()
		for name, body := range map[string]any{
			"invalid JSON":           rawBody(`{"availability": `),
			"empty body":             nil,
			"availability as number": map[string]any{"old_version": "", "availability": 3},
			"unknown availability":   map[string]any{"old_version": "", "availability": "Sleeping"},
		} {
			r := u.do(t, http.MethodPut, path(availPrefix, "uss-"+suffix()), body)
			if r.status != http.StatusBadRequest {
				t.Errorf("%s: want 400: %s", name, r)
				continue
			}
			r.expectError(t, http.StatusBadRequest)
		}
	})
}

// TestUnknownFieldsIgnored: unknown JSON fields are ignored (§1), e.g. the
// old_version, notify_for_operations and key fields probers send.
func TestUnknownFieldsIgnored(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "all", allScopes...)
	start, end := at(10*time.Minute), at(time.Hour)
	o := oirParams(u.base, "Accepted", box(newPlace(), start, end))
	o["old_version"], o["notifyForOperations"] = 3, true
	createOIR(t, u, newID(), o)
	c := crParams(u.base, box(newPlace(), start, end))
	c["key"] = []string{"x"}
	createCR(t, u, newID(), c)
	s := subParams(u.base, box(newPlace(), start, end), true, false)
	s["notify_for_operations"], s["old_version"] = true, 0
	putSub(t, u, newID(), "", s)
}

// TestDeleteBodyIgnored: a body sent with DELETE is ignored (§1).
func TestDeleteBodyIgnored(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "uss1", sc)
	o := createOIR(t, u, newID(), oirParams(u.base, "Accepted", box(newPlace(), at(10*time.Minute), at(time.Hour)))).OIR
	u.do(t, http.MethodDelete, path(oirPrefix, o.ID, o.OVN), rawBody(`{"broken`)).expect(t, http.StatusOK)
}
