package conformance

import (
	"net/http"
	"testing"
	"time"
)

// TestCRLifecycle walks endpoints 6-10 (spec §1, §6.2).
func TestCRLifecycle(t *testing.T) {
	t.Parallel()
	u1 := newUSS(t, "cm1", cm)
	u2 := newUSS(t, "cp2", cp)
	p := newPlace()
	start, end := at(10*time.Minute), at(time.Hour)
	v := box(p, start, end)
	id := newID()

	// Create (8): 201, ChangeConstraintReferenceResponse.
	r := u1.do(t, http.MethodPut, path(crPrefix, id), crParams(u1.base, v)).expect(t, http.StatusCreated)
	raw := r.object(t)
	rawCR, ok := raw["constraint_reference"].(map[string]any)
	if !ok {
		t.Fatalf("create response lacks constraint_reference: %s", r)
	}
	if _, ok := raw["subscribers"].([]any); !ok {
		t.Fatalf("create response lacks the subscribers array (§9): %s", r)
	}
	for _, k := range []string{"id", "manager", "uss_availability", "version", "ovn", "time_start", "time_end", "uss_base_url"} {
		if _, ok := rawCR[k]; !ok {
			t.Fatalf("ConstraintReference lacks %q (spec §5.2): %s", k, r)
		}
	}
	var created changeCRW
	r.decode(t, &created)
	c := created.CR
	if c.ID != id || c.Manager != u1.sub || c.USSAvailability != "Unknown" || c.Version != 1 || c.USSBaseURL != u1.base {
		t.Fatalf("created CR %+v: want id %s, manager %s, Unknown, version 1, url %s", c, id, u1.sub, u1.base)
	}
	expectOVN(t, c.OVN)
	expectTime(t, "time_start", c.TimeStart, start)
	expectTime(t, "time_end", c.TimeEnd, end)

	// Get (7).
	var g struct {
		CR crW `json:"constraint_reference"`
	}
	u1.do(t, http.MethodGet, path(crPrefix, id), nil).expect(t, http.StatusOK).decode(t, &g)
	if g.CR != c {
		t.Fatalf("GET by manager = %+v, want %+v", g.CR, c)
	}
	u2.do(t, http.MethodGet, path(crPrefix, id), nil).expect(t, http.StatusOK).decode(t, &g)
	scrubbed := c
	scrubbed.OVN = scrubbedOVN
	if g.CR != scrubbed {
		t.Fatalf("GET by other USS = %+v, want %+v", g.CR, scrubbed)
	}

	// Query (6): cells + time; altitude is ignored for constraints (§4).
	var q struct {
		CRs []crW `json:"constraint_references"`
	}
	u2.do(t, http.MethodPost, crQueryPath, queryParams(box(p, start, end).alt(5000, 6000))).expect(t, http.StatusOK).decode(t, &q)
	if got := crIDs(q.CRs); len(got) != 1 || got[id] != scrubbed {
		t.Fatalf("query by other USS (altitude disjoint) = %+v, want only %+v", q.CRs, scrubbed)
	}
	u1.do(t, http.MethodPost, crQueryPath, queryParams(v)).expect(t, http.StatusOK).decode(t, &q)
	if got := crIDs(q.CRs); len(got) != 1 || got[id] != c {
		t.Fatalf("query by manager = %+v, want only %+v", q.CRs, c)
	}
	q.CRs = nil
	u1.do(t, http.MethodPost, crQueryPath, queryParams(box(p, end.Add(time.Second), end.Add(time.Hour)))).expect(t, http.StatusOK).decode(t, &q)
	if q.CRs == nil || len(q.CRs) != 0 {
		t.Fatalf("query after the CR's end = %+v, want []", q.CRs)
	}

	// Update (9): 200, version 2, new OVN; altitudes are optional for CRs.
	start2, end2 := at(5*time.Minute), at(2*time.Hour)
	v2 := vol{poly: p.square(defaultSquareM), start: &start2, end: &end2}
	var up changeCRW
	u1.do(t, http.MethodPut, path(crPrefix, id, c.OVN), crParams(u1.base, v2)).expect(t, http.StatusOK).decode(t, &up)
	if up.CR.Version != 2 || up.CR.OVN == c.OVN || up.CR.ID != id {
		t.Fatalf("updated CR %+v: want version 2 and a new OVN (old %s)", up.CR, c.OVN)
	}
	expectOVN(t, up.CR.OVN)
	expectTime(t, "updated time_start", up.CR.TimeStart, start2)
	expectTime(t, "updated time_end", up.CR.TimeEnd, end2)

	// Delete (10): 200 with the CR as it was.
	var del changeCRW
	u1.do(t, http.MethodDelete, path(crPrefix, id, up.CR.OVN), nil).expect(t, http.StatusOK).decode(t, &del)
	if del.CR != up.CR || del.Subscribers == nil {
		t.Fatalf("delete response %+v, want CR %+v and a subscribers array", del, up.CR)
	}
	u1.do(t, http.MethodGet, path(crPrefix, id), nil).expectError(t, http.StatusNotFound)
}
