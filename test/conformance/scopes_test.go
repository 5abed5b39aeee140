package conformance

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

// TestScopeTable checks the scope column of spec §1 for every endpoint and
// every single scope: a scope not listed → 403; a listed one gets past
// authorisation to the endpoint's own answer (given per endpoint).
func TestScopeTable(t *testing.T) {
	t.Parallel()
	fakeOVN := "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC_"
	start, end := at(10*time.Minute), at(time.Hour)
	report := map[string]any{"exchange": map[string]any{"url": "https://x.example.com", "method": "GET",
		"recorder_role": "Client", "request_time": timeWire(at(-time.Minute)), "request_source": "x"}}
	endpoints := []struct {
		name    string
		method  string
		path    func() string
		body    func(u *uss) any
		allowed []string
		status  int // for an allowed scope
	}{
		{"1 OIR query", http.MethodPost, func() string { return oirQueryPath }, func(*uss) any { return queryParams(box(newPlace(), start, end)) }, []string{sc, cmsa}, 200},
		{"2 OIR get", http.MethodGet, func() string { return path(oirPrefix, newID()) }, nil, []string{sc, cmsa}, 404},
		{"3 OIR create", http.MethodPut, func() string { return path(oirPrefix, newID()) },
			func(u *uss) any { return oirParams(u.base, "Accepted", box(newPlace(), start, end)) }, []string{sc, cmsa}, 201},
		{"4 OIR update", http.MethodPut, func() string { return path(oirPrefix, newID(), fakeOVN) },
			func(u *uss) any { return oirParams(u.base, "Accepted", box(newPlace(), start, end)) }, []string{sc, cmsa}, 400},
		{"5 OIR delete", http.MethodDelete, func() string { return path(oirPrefix, newID(), fakeOVN) }, nil, []string{sc, cmsa}, 404},
		{"6 CR query", http.MethodPost, func() string { return crQueryPath }, func(*uss) any { return queryParams(box(newPlace(), start, end)) }, []string{cm, cp}, 200},
		{"7 CR get", http.MethodGet, func() string { return path(crPrefix, newID()) }, nil, []string{cm, cp}, 404},
		{"8 CR create", http.MethodPut, func() string { return path(crPrefix, newID()) },
			func(u *uss) any { return crParams(u.base, box(newPlace(), start, end)) }, []string{cm}, 201},
		{"9 CR update", http.MethodPut, func() string { return path(crPrefix, newID(), fakeOVN) },
			func(u *uss) any { return crParams(u.base, box(newPlace(), start, end)) }, []string{cm}, 409},
		{"10 CR delete", http.MethodDelete, func() string { return path(crPrefix, newID(), fakeOVN) }, nil, []string{cm}, 404},
		{"11 sub query", http.MethodPost, func() string { return subQueryPath }, func(*uss) any { return queryParams(box(newPlace(), start, end)) }, []string{cp, sc}, 200},
		{"12 sub get", http.MethodGet, func() string { return path(subPrefix, newID()) }, nil, []string{cp, sc}, 404},
		{"13 sub create", http.MethodPut, func() string { return path(subPrefix, newID()) },
			func(u *uss) any { return subParams(u.base, box(newPlace(), start, end), true, true) }, []string{cp, sc}, 200},
		{"14 sub update", http.MethodPut, func() string { return path(subPrefix, newID(), "v1") },
			func(u *uss) any { return subParams(u.base, box(newPlace(), start, end), true, true) }, []string{cp, sc}, 400},
		{"15 sub delete", http.MethodDelete, func() string { return path(subPrefix, newID(), "v1") }, nil, []string{cp, sc}, 404},
		{"16 report", http.MethodPost, func() string { return reportsPath }, func(*uss) any { return report }, allScopes, 201},
		{"17 availability get", http.MethodGet, func() string { return path(availPrefix, "uss-"+suffix()) }, nil, []string{aa, sc, cmsa}, 200},
		{"18 availability set", http.MethodPut, func() string { return path(availPrefix, "uss-"+suffix()) },
			func(*uss) any { return map[string]any{"old_version": "", "availability": "Normal"} }, []string{aa}, 200},
	}
	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			t.Parallel()
			for _, scope := range allScopes {
				u := newUSS(t, "scope", scope)
				var body any
				if ep.body != nil {
					body = ep.body(u)
				}
				r := u.do(t, ep.method, ep.path(), body)
				want := http.StatusForbidden
				if slices.Contains(ep.allowed, scope) {
					want = ep.status
				}
				if r.status != want {
					t.Errorf("scope %s: want %d: %s", scope, want, r)
				}
			}
		})
	}
	t.Run("OIR create with SC+CP", func(t *testing.T) {
		t.Parallel()
		u := newUSS(t, "scope", sc, cp)
		createOIR(t, u, newID(), oirParams(u.base, "Accepted", box(newPlace(), start, end)))
	})
}
