package conformance

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// allScopes holds every scope of §1, so only routing can refuse a request.
var allScopes = []string{sc, cm, cp, cmsa, aa}

// TestUnknownRoutes: a path not matching a template, or a wrong method on a
// known path, → 404 with a non-JSON body, before authentication (§1).
func TestUnknownRoutes(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "all", allScopes...)
	id := newID()
	cases := []struct{ method, path string }{
		{http.MethodGet, apiPrefix + "/operation_references/" + id},
		{http.MethodGet, path(oirPrefix, id, "ovn", "extra")},
		{http.MethodPut, path(oirPrefix, id, "ovn", "extra")},
		{http.MethodPost, path(oirPrefix, id)},
		{http.MethodDelete, path(oirPrefix, id)},
		{http.MethodGet, path(oirPrefix, id, "some-ovn")},
		{http.MethodGet, oirQueryPath + "/x"},
		{http.MethodPatch, path(crPrefix, id)},
		{http.MethodDelete, path(crPrefix, id)},
		{http.MethodPost, path(subPrefix, id)},
		{http.MethodGet, path(subPrefix, id, "v")},
		{http.MethodDelete, path(availPrefix, "uss1")},
		{http.MethodPut, path(availPrefix, "uss1", "extra")},
		{http.MethodGet, reportsPath},
		{http.MethodGet, "/dss/v2/operational_intent_references/" + id},
		{http.MethodGet, "/"},
		{http.MethodGet, apiPrefix},
	}
	for _, c := range cases {
		for _, token := range []string{u.token, ""} {
			r := call(t, c.method, c.path, token, nil)
			if r.status != http.StatusNotFound {
				t.Errorf("want 404 (token=%v): %s", token != "", r)
				continue
			}
			var v map[string]any
			if json.Unmarshal(r.body, &v) == nil {
				t.Errorf("404 body is JSON, want plain text (§1): %s", r)
			}
		}
	}
}

// TestHealthy: GET /healthy without auth → 200 "ok" (§1).
func TestHealthy(t *testing.T) {
	t.Parallel()
	r := call(t, http.MethodGet, "/healthy", "", nil)
	if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != "ok" {
		t.Fatalf("want 200 ok: %s", r)
	}
}

// TestEmptyPathParameters: a trailing slash matches the template with an
// empty last parameter, which is invalid → 400 (§1, incl. the **Deviation**
// for updates with an empty ovn/version, which must not fall into create).
func TestEmptyPathParameters(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "all", allScopes...)
	p := newPlace()
	v := box(p, at(10*time.Minute), at(time.Hour))
	oirID, crID, subID := newID(), newID(), newID()
	cases := []struct {
		method, path string
		body         any
	}{
		{http.MethodPut, path(oirPrefix, oirID) + "/", oirParams(u.base, "Accepted", v)},
		{http.MethodDelete, path(oirPrefix, oirID) + "/", nil},
		{http.MethodPut, path(crPrefix, crID) + "/", crParams(u.base, v)},
		{http.MethodDelete, path(crPrefix, crID) + "/", nil},
		{http.MethodPut, path(subPrefix, subID) + "/", subParams(u.base, v, true, false)},
		{http.MethodDelete, path(subPrefix, subID) + "/", nil},
		{http.MethodGet, availPrefix + "/", nil},
		{http.MethodPut, availPrefix + "/", map[string]any{"old_version": "", "availability": "Normal"}},
		{http.MethodGet, oirPrefix + "/", nil},
		{http.MethodPut, oirPrefix + "/", oirParams(u.base, "Accepted", v)},
		{http.MethodGet, crPrefix + "/", nil},
		{http.MethodGet, subPrefix + "/", nil},
	}
	for _, c := range cases {
		r := u.do(t, c.method, c.path, c.body)
		if r.status != http.StatusBadRequest {
			t.Errorf("want 400: %s", r)
			continue
		}
		r.expectError(t, http.StatusBadRequest)
	}
	// Nothing was created by the update-with-empty-ovn requests.
	u.do(t, http.MethodGet, path(oirPrefix, oirID), nil).expectError(t, http.StatusNotFound)
	u.do(t, http.MethodGet, path(crPrefix, crID), nil).expectError(t, http.StatusNotFound)
	u.do(t, http.MethodGet, path(subPrefix, subID), nil).expectError(t, http.StatusNotFound)
}

// TestIDFormat: path IDs must be UUIDv4 with the RFC 4122 variant,
// case-insensitive; they are returned in canonical lowercase (§3.1).
func TestIDFormat(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "uss1", sc)
	for _, bad := range []string{"not-a-uuid", "00000000-0000-1000-8000-000000000000", "00000000-0000-4000-c000-000000000000", newID() + "0"} {
		u.do(t, http.MethodGet, path(oirPrefix, bad), nil).expectError(t, http.StatusBadRequest)
		u.do(t, http.MethodGet, path(subPrefix, bad), nil).expectError(t, http.StatusBadRequest)
		u.do(t, http.MethodPut, path(oirPrefix, bad), oirParams(u.base, "Accepted", box(newPlace(), at(10*time.Minute), at(time.Hour)))).
			expectError(t, http.StatusBadRequest)
	}
	id := newID()
	c := createOIR(t, u, strings.ToUpper(id), oirParams(u.base, "Accepted", box(newPlace(), at(10*time.Minute), at(time.Hour))))
	if c.OIR.ID != id {
		t.Fatalf("id %q, want canonical lowercase %q", c.OIR.ID, id)
	}
	if g := getOIR(t, u, id); g.ID != id {
		t.Fatalf("GET by lowercase id returned %q", g.ID)
	}
}
