package server

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/raftdss/dss/pkg/scd/store/memstore"
)

// TestNonCanonicalPathsAre404: a path that is not canonical is Go's plain
// 404 like every other route miss (spec §1), before authentication, never
// a redirect to its cleaned form, and the store is not called.
func TestNonCanonicalPathsAre404(t *testing.T) {
	st := failWith(errors.New("store must not be called"))
	h := newHandler(t, st)
	const oir = "/dss/v1/operational_intent_references"
	for _, c := range []struct{ method, path string }{
		{"GET", oir + "/" + oirID + "/.."},
		{"GET", oir + "/.."},
		{"GET", oir + "/%2e%2E"},
		{"GET", oir + "/./" + oirID},
		{"GET", "/dss/v1/subscriptions/../operational_intent_references/" + oirID},
		{"GET", "//dss/v1/operational_intent_references/" + oirID},
		{"GET", oir + "//" + oirID},
		{"PUT", oir + "/" + oirID + "//"},
		{"DELETE", "/dss/v1/subscriptions//"},
		{"GET", "/dss/v1/uss_availability/.."},
		{"PUT", "/dss/v1/uss_availability/%2e"},
		{"GET", "/dss/v1/./uss_availability/uss1"},
		{"GET", "/./healthy"},
		{"GET", "//healthy"},
		{"GET", "/%68ealthy"},
		{"POST", oir + "%2Fquery"},
	} {
		for _, tok := range []string{allScopes, ""} {
			rec := do(h, c.method, c.path, tok, queryBody)
			if rec.Code != http.StatusNotFound || rec.Body.String() != "404 page not found\n" ||
				!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") || rec.Header().Get("Location") != "" {
				t.Errorf("%s %s (token %v): %d %q Location %q, want Go's plain 404", c.method, c.path, tok != "",
					rec.Code, rec.Body.String(), rec.Header().Get("Location"))
			}
		}
	}
	if len(st.ops) != 0 {
		t.Fatalf("store called %d times", len(st.ops))
	}
}

// TestUssIDValidationThroughTheHandler: an invalid uss_id is a JSON 400 on
// both endpoints (after authentication, before the body), nothing is
// stored, and a valid unusual one (a URI subject, percent-encoded) works.
func TestUssIDValidationThroughTheHandler(t *testing.T) {
	h := newHandler(t, memstore.New())
	arb := token("arbiter", aa)
	for _, c := range []struct{ name, escaped, want string }{
		{"NUL", "uss%001", "U+0000"},
		{"newline", "uss1%0A", "U+000A"},
		{"50 KB", strings.Repeat("x", 50_000), "more than the 255 allowed"},
		{"invalid utf-8", "uss%FF", "not valid UTF-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := availPath + "/" + c.escaped
			for _, method := range []string{"GET", "PUT"} {
				rec := do(h, method, p, arb, `{`)
				msg := wantMessage(t, rec, http.StatusBadRequest)
				if !strings.Contains(msg, c.want) || len(msg) > 400 {
					t.Errorf("%s: message %.120q, want it to name %q and stay short", method, msg, c.want)
				}
			}
			// Without a token it is 401 first (§1 order).
			wantMessage(t, do(h, "GET", p, "", ""), http.StatusUnauthorized)
		})
	}
	sub := "https://idp.example/clients/uss 7"
	p := availPath + "/" + url.PathEscape(sub)
	if rec := do(h, "PUT", p, arb, availBody); rec.Code != http.StatusOK {
		t.Fatalf("set %q: %d %s", sub, rec.Code, rec.Body.String())
	}
	rec := do(h, "GET", p, arb, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("get: %d %s", rec.Code, rec.Body.String())
	}
	if got := decodeJSON(t, rec)["status"].(map[string]any)["uss"]; got != sub {
		t.Fatalf("status.uss = %v, want %q", got, sub)
	}
}
