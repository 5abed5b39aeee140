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
		{"DELETE", "/dss/v1/subscriptions/x/", "deleteSubscription", []string{"x", ""}},
		// Percent-encoding names a value, also one with dots or slashes.
		{"GET", "/dss/v1/uss_availability/..%2F..%2Fhealthy", "getUssAvailability", []string{"../../healthy"}},
		{"GET", "/dss/v1/uss_availability/https:%2F%2Fidp.example%2Fu", "getUssAvailability", []string{"https://idp.example/u"}},
		{"GET", "/dss/v1/uss_availability/...", "getUssAvailability", []string{"..."}},
		{"GET", "/dss/v1/uss_availability/.a", "getUssAvailability", []string{".a"}},
	} {
		i, params, ok := rt.match(c.method, c.path)
		if !ok || rs[i].name != c.route || strings.Join(params, "|") != strings.Join(c.params, "|") || len(params) != len(c.params) {
			t.Errorf("%s %s: ok=%v route=%v params=%q, want %s %q", c.method, c.path, ok, rs[i].name, params, c.route, c.params)
		}
	}
}

// TestRouterRefusesNonCanonicalPaths: every path that is not in canonical
// form misses (404), whatever its cleaned form would match.
func TestRouterRefusesNonCanonicalPaths(t *testing.T) {
	rt := testRouter(t)
	const oir = "/dss/v1/operational_intent_references"
	for _, c := range []struct{ method, path string }{
		{"GET", "/dss/v1/subscriptions/../operational_intent_references/x"},
		{"GET", oir + "/../../v1/operational_intent_references/x"},
		{"GET", oir + "/./x"},
		{"GET", oir + "/x/."},
		{"GET", oir + "/.."},
		{"GET", oir + "/."},
		{"GET", "//dss/v1/operational_intent_references/x"},
		{"GET", "/dss//v1/operational_intent_references/x"},
		{"GET", oir + "//x"},
		{"PUT", oir + "/x//"},
		{"DELETE", "/dss/v1/subscriptions//"},
		{"GET", "/dss/v1/uss_availability//"},
		// Dot segments percent-encoded, in any case mix.
		{"GET", oir + "/%2e%2e"},
		{"GET", oir + "/%2E%2e"},
		{"GET", oir + "/.%2e"},
		{"GET", oir + "/%2e"},
		{"GET", "/dss/v1/%2e%2e/v1/operational_intent_references/x"},
		{"GET", "/dss/v1/uss_availability/%2e%2e"},
		// Encoded slashes or letters never make a literal segment.
		{"POST", "/dss/v1/operational_intent_references%2Fquery"},
		{"POST", oir + "/%71uery/x"},
		{"GET", "/dss%2Fv1%2Foperational_intent_references/x"},
		{"GET", "/%68ealthy"},
		// Broken escapes.
		{"GET", oir + "/%zz"},
		{"GET", oir + "/%"},
		// Far more segments than any route.
		{"GET", "/" + strings.Repeat("a/", 1<<16)},
		{"GET", strings.Repeat("/", 1<<16)},
		{"GET", ""},
		{"GET", "*"},
	} {
		if i, params, ok := rt.match(c.method, c.path); ok {
			name := c.path
			if len(name) > 80 {
				name = name[:80] + "…"
			}
			t.Errorf("%s %s matched route %d with %q, want a miss", c.method, name, i, params)
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
