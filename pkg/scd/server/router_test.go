package server

import (
	"strings"
	"testing"
)

func testRouter(t testing.TB) *router {
	t.Helper()
	rs := routeTable()
	methods := make([]string, len(rs))
	patterns := make([]string, len(rs))
	for i, r := range rs {
		methods[i], patterns[i] = r.method, r.pattern
	}
	rt, err := newRouter(methods, patterns)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func TestRouterParameters(t *testing.T) {
	rt := testRouter(t)
	rs := routeTable()
	for _, c := range []struct {
		method, path, route string
		params              []string
	}{
		{"PUT", "/dss/v1/operational_intent_references/a/b", "updateOperationalIntent", []string{"a", "b"}},
		{"PUT", "/dss/v1/operational_intent_references/a", "createOperationalIntent", []string{"a"}},
		{"POST", "/dss/v1/operational_intent_references/query", "queryOperationalIntents", nil},
		{"GET", "/dss/v1/operational_intent_references/query", "getOperationalIntent", []string{"query"}},
		{"GET", "/dss/v1/uss_availability/uss%2F1", "getUssAvailability", []string{"uss/1"}},
		{"DELETE", "/dss/v1/subscriptions//", "deleteSubscription", []string{"", ""}},
	} {
		i, params, ok := rt.match(c.method, c.path)
		if !ok || rs[i].name != c.route || strings.Join(params, "|") != strings.Join(c.params, "|") || len(params) != len(c.params) {
			t.Errorf("%s %s: ok=%v route=%v params=%q, want %s %q", c.method, c.path, ok, rs[i].name, params, c.route, c.params)
		}
	}
}

func TestRouterRejectsAmbiguousTables(t *testing.T) {
	if _, err := newRouter([]string{"GET", "GET"}, []string{"/a/{x}", "/a/{y}"}); err == nil {
		t.Error("two GET /a/{} routes accepted")
	}
	if _, err := newRouter([]string{"GET"}, []string{"/a//b"}); err == nil {
		t.Error("empty literal segment accepted")
	}
}

// FuzzRouterMatch: any path either misses or yields one value per template
// parameter, without panicking.
func FuzzRouterMatch(f *testing.F) {
	f.Add("GET", "/dss/v1/operational_intent_references/x")
	f.Add("PUT", "/dss/v1/subscriptions/%zz/1")
	f.Add("DELETE", "//")
	rt := testRouter(f)
	rs := routeTable()
	f.Fuzz(func(t *testing.T, method, path string) {
		i, params, ok := rt.match(method, path)
		if !ok {
			return
		}
		if want := strings.Count(rs[i].pattern, "{"); len(params) != want || rs[i].method != method {
			t.Fatalf("%s %s matched %s %s with params %q", method, path, rs[i].method, rs[i].pattern, params)
		}
	})
}
