package conformance

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The per-USS quotas (docs/quotas.md) the target is expected to enforce:
// the documented defaults of core-service, unless these variables say
// otherwise (0: the target runs without that quota; its test is skipped).
const (
	envQuotaSubscriptions = "DSS_QUOTA_SUBSCRIPTIONS_PER_CELL"
	envQuotaEntities      = "DSS_QUOTA_ENTITIES_PER_CELL"

	defaultQuotaSubscriptions = 10
	defaultQuotaEntities      = 100
)

// expectedQuota returns the quota the target enforces according to env
// (default def), skipping the test when it is 0.
func expectedQuota(t *testing.T, env string, def int) int {
	t.Helper()
	q := def
	if v := os.Getenv(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			t.Fatalf("%s=%q: want a count", env, v)
		}
		q = n
	}
	if q == 0 {
		t.Skipf("%s=0: the target runs without this quota", env)
	}
	return q
}

// expectQuota checks a 429 whose message names the quota (spec-appropriate
// 4xx: utm.yaml allows 429 on every PUT).
func (r *resp) expectQuota(t *testing.T, flag string) {
	t.Helper()
	r.expectError(t, http.StatusTooManyRequests)
	if !strings.Contains(string(r.body), flag) {
		t.Fatalf("429 message does not name the quota %s: %s", flag, r)
	}
}

func TestQuotaSubscriptionsPerUSSPerCell(t *testing.T) {
	t.Parallel()
	limit := expectedQuota(t, envQuotaSubscriptions, defaultQuotaSubscriptions)
	u := newUSS(t, "uss1", sc)
	p := newPlace()
	v := box(p, at(10*time.Minute), at(time.Hour))

	ids, versions := make([]string, limit), make([]string, limit)
	for i := range ids {
		ids[i] = newID()
		versions[i] = putSub(t, u, ids[i], "", subParams(u.base, v, true, false)).Subscription.Version
	}
	extra := newID()
	u.do(t, http.MethodPut, path(subPrefix, extra), subParams(u.base, v, true, false)).
		expectQuota(t, "max_subscriptions_per_uss_per_cell")
	u.do(t, http.MethodGet, path(subPrefix, extra), nil).expectError(t, http.StatusNotFound)

	// Per USS and per cell: another USS here, and this USS 20 km away, are
	// not affected.
	u2 := newUSS(t, "uss2", sc)
	putSub(t, u2, newID(), "", subParams(u2.base, v, true, false))
	putSub(t, u, newID(), "", subParams(u.base, box(p.offset(20000, 0), at(10*time.Minute), at(time.Hour)), true, false))

	// Implicit subscriptions do not count: an OIR asking for one is created.
	createOIR(t, u, newID(), withNewSub(oirParams(u.base, "Accepted", v.alt(5000, 5100)), u.base, false))

	// An update of an existing subscription in the same cells is not
	// refused.
	versions[0] = putSub(t, u, ids[0], versions[0], subParams(u.base, v.times(at(5*time.Minute), at(2*time.Hour)), true, true)).
		Subscription.Version

	// Deleting one frees the quota.
	u.do(t, http.MethodDelete, path(subPrefix, ids[1], versions[1]), nil).expect(t, http.StatusOK)
	putSub(t, u, extra, "", subParams(u.base, v, true, false))
	u.do(t, http.MethodPut, path(subPrefix, newID()), subParams(u.base, v, true, false)).
		expectQuota(t, "max_subscriptions_per_uss_per_cell")
}

func TestQuotaEntitiesPerUSSPerCell(t *testing.T) {
	t.Parallel()
	limit := expectedQuota(t, envQuotaEntities, defaultQuotaEntities)
	u := newUSS(t, "uss1", sc)
	uCM := u.as(t, cm)
	p := newPlace()
	v := box(p, at(10*time.Minute), at(time.Hour))
	// Each OIR at its own altitude, so none needs another's OVN in its key.
	band := func(i int) vol { return v.alt(float64(10*i), float64(10*i+5)) }

	// limit-1 OIRs and one constraint fill the quota: they count together.
	ids, ovns := make([]string, limit-1), make([]string, limit-1)
	for i := range ids {
		ids[i] = newID()
		ovns[i] = createOIR(t, u, ids[i], oirParams(u.base, "Accepted", band(i))).OIR.OVN
	}
	createCR(t, uCM, newID(), crParams(u.base, v))

	extra := newID()
	u.do(t, http.MethodPut, path(oirPrefix, extra), oirParams(u.base, "Accepted", band(limit))).
		expectQuota(t, "max_entities_per_uss_per_cell")
	uCM.do(t, http.MethodPut, path(crPrefix, newID()), crParams(u.base, v)).
		expectQuota(t, "max_entities_per_uss_per_cell")

	// Another USS here is not affected.
	u2 := newUSS(t, "uss2", sc)
	createOIR(t, u2, newID(), oirParams(u2.base, "Accepted", v.alt(5000, 5100)))

	// An update of an existing OIR in the same cells is not refused.
	ovns[0] = updateOIR(t, u, ids[0], ovns[0], oirParams(u.base, "Accepted", band(0).times(at(5*time.Minute), at(2*time.Hour)))).
		OIR.OVN

	// Deleting one frees the quota.
	deleteOIR(t, u, ids[1], ovns[1])
	createOIR(t, u, extra, oirParams(u.base, "Accepted", band(limit)))
	r := u.do(t, http.MethodPut, path(oirPrefix, newID()), oirParams(u.base, "Accepted", band(limit+1)))
	r.expectQuota(t, "max_entities_per_uss_per_cell")
	if strings.Contains(string(r.body), "missing_operational_intents") {
		t.Fatalf("429 carries conflict lists: %s", r)
	}
}
