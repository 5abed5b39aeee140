package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/raftdss/dss/pkg/auth"
)

// Scope names (spec §1).
const (
	sc   = auth.ScopeStrategicCoordination
	cm   = auth.ScopeConstraintManagement
	cp   = auth.ScopeConstraintProcessing
	cmsa = auth.ScopeConformanceMonitoringSA
	aa   = auth.ScopeAvailabilityArbitration
)

// Literals of spec §3.6.
const (
	scrubbedOVN     = "Available from USS"
	placeholderSub  = "00000000-0000-4000-8000-000000000000"
	apiPrefix       = "/dss/v1"
	oirPrefix       = apiPrefix + "/operational_intent_references"
	crPrefix        = apiPrefix + "/constraint_references"
	subPrefix       = apiPrefix + "/subscriptions"
	availPrefix     = apiPrefix + "/uss_availability"
	reportsPath     = apiPrefix + "/reports"
	oirQueryPath    = oirPrefix + "/query"
	crQueryPath     = crPrefix + "/query"
	subQueryPath    = subPrefix + "/query"
	defaultSquareM  = 200.0
	metresPerDegree = 111320.0
)

// newID returns a fresh random UUIDv4 (spec §3.1).
func newID() string { return uuid.NewString() }

// suffix is a short random string that makes subjects and URLs unique per test.
func suffix() string { return strings.ReplaceAll(uuid.NewString(), "-", "")[:10] }

// path joins segments under a prefix.
func path(prefix string, segs ...string) string {
	return prefix + "/" + strings.Join(segs, "/")
}

// ---------------------------------------------------------------------------
// USS identities and tokens (spec §2).

// uss is one client identity: a token subject and the base URL it registers.
type uss struct {
	sub   string
	token string
	base  string
}

// newUSS returns a USS with a unique subject "<name>-<random>" holding scopes.
func newUSS(t *testing.T, name string, scopes ...string) *uss {
	t.Helper()
	s := name + "-" + suffix()
	return &uss{sub: s, token: mint(t, auth.TokenOptions{Subject: s, Scopes: scopes}), base: "https://" + s + ".example.com/utm"}
}

// as returns the same USS (subject and base URL) with a token holding scopes.
func (u *uss) as(t *testing.T, scopes ...string) *uss {
	t.Helper()
	return &uss{sub: u.sub, token: mint(t, auth.TokenOptions{Subject: u.sub, Scopes: scopes}), base: u.base}
}

// mint signs a token with the target's key; Audience defaults to the
// target's audience.
func mint(t *testing.T, o auth.TokenOptions) string {
	t.Helper()
	if o.Audience == "" {
		o.Audience = tgt.audience
	}
	tok, err := auth.MintToken(tgt.key, o)
	if err != nil {
		t.Fatalf("minting token: %v", err)
	}
	return tok
}

// ---------------------------------------------------------------------------
// HTTP.

// rawBody is sent verbatim (malformed-input tests).
type rawBody string

// resp is one HTTP exchange's outcome.
type resp struct {
	method, path string
	status       int
	header       http.Header
	body         []byte
}

func (r *resp) String() string {
	return fmt.Sprintf("%s %s -> %d %s", r.method, r.path, r.status, truncate(string(r.body), 2000))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// call sends one request with the given bearer token ("" = no Authorization
// header). body is nil (no body), rawBody (verbatim) or any JSON value.
func call(t *testing.T, method, p, token string, body any) *resp {
	t.Helper()
	return callHeader(t, method, p, authHeader(token), body)
}

func authHeader(token string) string {
	if token == "" {
		return ""
	}
	return "Bearer " + token
}

// callHeader is call with a verbatim Authorization header ("" = none).
func callHeader(t *testing.T, method, p, authz string, body any) *resp {
	t.Helper()
	r, err := send(method, p, authz, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// send performs one request; it is safe to call from any goroutine.
func send(method, p, authz string, body any) (*resp, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case rawBody:
		rd = strings.NewReader(string(b))
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encoding request body: %w", err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, tgt.baseURL()+p, rd)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	res, err := tgt.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, p, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading body: %w", method, p, err)
	}
	return &resp{method: method, path: p, status: res.StatusCode, header: res.Header, body: data}, nil
}

// trySend is send for concurrent tests: a transport error becomes a resp
// with status 0 whose body is the error.
func trySend(method, p, token string, body any) *resp {
	r, err := send(method, p, authHeader(token), body)
	if err != nil {
		return &resp{method: method, path: p, body: []byte(err.Error())}
	}
	return r
}

// do is call with the USS's token.
func (u *uss) do(t *testing.T, method, p string, body any) *resp {
	t.Helper()
	return call(t, method, p, u.token, body)
}

// expect fails the test unless the status is want; for 2xx it also checks
// the JSON content type (spec §1).
func (r *resp) expect(t *testing.T, want int) *resp {
	t.Helper()
	if r.status != want {
		t.Fatalf("want %d: %s", want, r)
	}
	if want < 300 {
		r.expectJSONContentType(t)
	}
	return r
}

// expectError checks a 4xx status and the error body {"message": "..."} of
// spec §3.7.
func (r *resp) expectError(t *testing.T, want int) *resp {
	t.Helper()
	if r.status != want {
		t.Fatalf("want %d: %s", want, r)
	}
	r.expectJSONContentType(t)
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("error body is not a JSON object: %v: %s", err, r)
	}
	if msg, ok := m["message"].(string); !ok || msg == "" {
		t.Fatalf(`error body lacks a non-empty "message" string (spec §3.7): %s`, r)
	}
	return r
}

// expectJSONContentType checks "application/json; charset=utf-8" (spec §1).
func (r *resp) expectJSONContentType(t *testing.T) {
	t.Helper()
	ct := r.header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" || !strings.EqualFold(params["charset"], "utf-8") {
		t.Fatalf("Content-Type %q, want application/json; charset=utf-8 (spec §1): %s", ct, r)
	}
}

// decode unmarshals the body into v.
func (r *resp) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %T: %v: %s", v, err, r)
	}
}

// object returns the body as a generic JSON object (key-presence checks).
func (r *resp) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	r.decode(t, &m)
	return m
}

// ---------------------------------------------------------------------------
// Wire types of the responses (utm.yaml), decoded by the tests.

type timeW struct {
	Value  string `json:"value"`
	Format string `json:"format"`
}

type oirW struct {
	ID              string `json:"id"`
	Manager         string `json:"manager"`
	USSAvailability string `json:"uss_availability"`
	Version         int    `json:"version"`
	State           string `json:"state"`
	OVN             string `json:"ovn"`
	TimeStart       timeW  `json:"time_start"`
	TimeEnd         timeW  `json:"time_end"`
	USSBaseURL      string `json:"uss_base_url"`
	SubscriptionID  string `json:"subscription_id"`
}

type crW struct {
	ID              string `json:"id"`
	Manager         string `json:"manager"`
	USSAvailability string `json:"uss_availability"`
	Version         int    `json:"version"`
	OVN             string `json:"ovn"`
	TimeStart       timeW  `json:"time_start"`
	TimeEnd         timeW  `json:"time_end"`
	USSBaseURL      string `json:"uss_base_url"`
}

type subW struct {
	ID                          string   `json:"id"`
	Version                     string   `json:"version"`
	NotificationIndex           int      `json:"notification_index"`
	TimeStart                   timeW    `json:"time_start"`
	TimeEnd                     timeW    `json:"time_end"`
	USSBaseURL                  string   `json:"uss_base_url"`
	NotifyForOperationalIntents bool     `json:"notify_for_operational_intents"`
	NotifyForConstraints        bool     `json:"notify_for_constraints"`
	ImplicitSubscription        bool     `json:"implicit_subscription"`
	DependentOperationalIntents []string `json:"dependent_operational_intents"`
}

type subStateW struct {
	SubscriptionID    string `json:"subscription_id"`
	NotificationIndex int    `json:"notification_index"`
}

type subscriberW struct {
	USSBaseURL    string      `json:"uss_base_url"`
	Subscriptions []subStateW `json:"subscriptions"`
}

type changeOIRW struct {
	OIR         oirW          `json:"operational_intent_reference"`
	Subscribers []subscriberW `json:"subscribers"`
}

type changeCRW struct {
	CR          crW           `json:"constraint_reference"`
	Subscribers []subscriberW `json:"subscribers"`
}

type putSubW struct {
	Subscription subW   `json:"subscription"`
	OIRs         []oirW `json:"operational_intent_references"`
	CRs          []crW  `json:"constraint_references"`
}

type conflictW struct {
	Message     string `json:"message"`
	MissingOIRs []oirW `json:"missing_operational_intents"`
	MissingCRs  []crW  `json:"missing_constraints"`
}

type availW struct {
	Status struct {
		USS          string `json:"uss"`
		Availability string `json:"availability"`
	} `json:"status"`
	Version string `json:"version"`
}

// notified flattens subscribers into subscription id → notification index,
// failing on a subscription listed twice (§9: once per request).
func notified(t *testing.T, subs []subscriberW) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, g := range subs {
		for _, s := range g.Subscriptions {
			if _, dup := out[s.SubscriptionID]; dup {
				t.Fatalf("subscription %s listed twice in subscribers %+v", s.SubscriptionID, subs)
			}
			out[s.SubscriptionID] = s.NotificationIndex
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Times (spec §3.2).

// at returns now+d with a random non-zero microsecond part, so that echoes
// are checked to the microsecond (§3.2: never truncate to ms/s).
func at(d time.Duration) time.Time {
	base := time.Now().Add(d).UTC().Truncate(time.Second)
	return base.Add(time.Duration(1+rand.IntN(999_998)) * time.Microsecond)
}

func fmtTime(tm time.Time) string { return tm.UTC().Format(time.RFC3339Nano) }

func timeWire(tm time.Time) map[string]any {
	return map[string]any{"value": fmtTime(tm), "format": "RFC3339"}
}

// parseTime parses a returned Time, failing on a wrong format member.
func parseTime(t *testing.T, w timeW) time.Time {
	t.Helper()
	if w.Format != "RFC3339" {
		t.Fatalf("time format %q, want RFC3339 (spec §3.2)", w.Format)
	}
	tm, err := time.Parse(time.RFC3339Nano, w.Value)
	if err != nil {
		t.Fatalf("returned time %q: %v", w.Value, err)
	}
	return tm
}

// expectTime checks that a returned time is exactly want (§3.2).
func expectTime(t *testing.T, what string, got timeW, want time.Time) {
	t.Helper()
	if g := parseTime(t, got); !g.Equal(want) {
		t.Fatalf("%s = %s, want exactly %s (spec §3.2)", what, got.Value, fmtTime(want))
	}
}

// ---------------------------------------------------------------------------
// Geometry (spec §3.4, §4).

// place is a point on Earth; tests build their volumes around a random one so
// they never meet another test's entities.
type place struct{ lat, lng float64 }

// newPlace returns a random location, lat in [-50, 50], lng in [-170, 170].
func newPlace() place {
	return place{lat: -50 + 100*rand.Float64(), lng: -170 + 340*rand.Float64()}
}

// offset moves the place north and east by the given metres.
func (p place) offset(northM, eastM float64) place {
	return place{
		lat: p.lat + northM/metresPerDegree,
		lng: p.lng + eastM/(metresPerDegree*math.Cos(p.lat*math.Pi/180)),
	}
}

func (p place) wire() map[string]any { return map[string]any{"lat": p.lat, "lng": p.lng} }

// square returns the counter-clockwise vertices of a size×size metre square
// whose south-west corner is p.
func (p place) square(sizeM float64) []place {
	return []place{p, p.offset(0, sizeM), p.offset(sizeM, sizeM), p.offset(sizeM, 0)}
}

// vol is a Volume4D under construction; nil pointers are omitted on the wire.
type vol struct {
	poly     []place
	circle   *place
	radiusM  float64
	lo, hi   *float64
	start    *time.Time
	end      *time.Time
	extraVol map[string]any // merged into "volume" (malformed-input tests)
}

func f64(v float64) *float64 { return &v }

// box is a 200 m square at p, altitudes 0–100 m, from start to end.
func box(p place, start, end time.Time) vol {
	return vol{poly: p.square(defaultSquareM), lo: f64(0), hi: f64(100), start: &start, end: &end}
}

// alt returns a copy of v with altitude bounds lo..hi.
func (v vol) alt(lo, hi float64) vol {
	v.lo, v.hi = f64(lo), f64(hi)
	return v
}

// times returns a copy of v with the given time bounds.
func (v vol) times(start, end time.Time) vol {
	v.start, v.end = &start, &end
	return v
}

func altWire(v float64) map[string]any {
	return map[string]any{"value": v, "reference": "W84", "units": "M"}
}

func (v vol) wire() map[string]any {
	v3 := map[string]any{}
	if v.poly != nil {
		verts := make([]any, len(v.poly))
		for i, p := range v.poly {
			verts[i] = p.wire()
		}
		v3["outline_polygon"] = map[string]any{"vertices": verts}
	}
	if v.circle != nil {
		v3["outline_circle"] = map[string]any{
			"center": v.circle.wire(),
			"radius": map[string]any{"value": v.radiusM, "units": "M"},
		}
	}
	if v.lo != nil {
		v3["altitude_lower"] = altWire(*v.lo)
	}
	if v.hi != nil {
		v3["altitude_upper"] = altWire(*v.hi)
	}
	for k, x := range v.extraVol {
		v3[k] = x
	}
	v4 := map[string]any{"volume": v3}
	if v.start != nil {
		v4["time_start"] = timeWire(*v.start)
	}
	if v.end != nil {
		v4["time_end"] = timeWire(*v.end)
	}
	return v4
}

func extents(vs ...vol) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v.wire()
	}
	return out
}

// ---------------------------------------------------------------------------
// Request bodies.

// oirParams is a PutOperationalIntentReferenceParameters with an empty key
// and no subscription.
func oirParams(base, state string, vs ...vol) map[string]any {
	return map[string]any{"extents": extents(vs...), "key": []string{}, "state": state, "uss_base_url": base}
}

// withNewSub adds new_subscription (an implicit subscription, §8).
func withNewSub(m map[string]any, base string, notifyConstraints bool) map[string]any {
	m["new_subscription"] = map[string]any{"uss_base_url": base, "notify_for_constraints": notifyConstraints}
	return m
}

// withSub attaches an existing subscription.
func withSub(m map[string]any, subID string) map[string]any {
	m["subscription_id"] = subID
	return m
}

// withKey sets the key (OVNs the caller knows, §7).
func withKey(m map[string]any, ovns ...string) map[string]any {
	m["key"] = ovns
	return m
}

func crParams(base string, vs ...vol) map[string]any {
	return map[string]any{"extents": extents(vs...), "uss_base_url": base}
}

func subParams(base string, v vol, notifyOIRs, notifyCRs bool) map[string]any {
	return map[string]any{
		"extents":                        v.wire(),
		"uss_base_url":                   base,
		"notify_for_operational_intents": notifyOIRs,
		"notify_for_constraints":         notifyCRs,
	}
}

func queryParams(v vol) map[string]any { return map[string]any{"area_of_interest": v.wire()} }

// ---------------------------------------------------------------------------
// Common flows, asserting success.

func createOIR(t *testing.T, u *uss, id string, body map[string]any) changeOIRW {
	t.Helper()
	var out changeOIRW
	u.do(t, http.MethodPut, path(oirPrefix, id), body).expect(t, http.StatusCreated).decode(t, &out)
	return out
}

func updateOIR(t *testing.T, u *uss, id, ovn string, body map[string]any) changeOIRW {
	t.Helper()
	var out changeOIRW
	u.do(t, http.MethodPut, path(oirPrefix, id, ovn), body).expect(t, http.StatusOK).decode(t, &out)
	return out
}

func deleteOIR(t *testing.T, u *uss, id, ovn string) changeOIRW {
	t.Helper()
	var out changeOIRW
	u.do(t, http.MethodDelete, path(oirPrefix, id, ovn), nil).expect(t, http.StatusOK).decode(t, &out)
	return out
}

func getOIR(t *testing.T, u *uss, id string) oirW {
	t.Helper()
	var out struct {
		OIR oirW `json:"operational_intent_reference"`
	}
	u.do(t, http.MethodGet, path(oirPrefix, id), nil).expect(t, http.StatusOK).decode(t, &out)
	return out.OIR
}

func createCR(t *testing.T, u *uss, id string, body map[string]any) changeCRW {
	t.Helper()
	var out changeCRW
	u.do(t, http.MethodPut, path(crPrefix, id), body).expect(t, http.StatusCreated).decode(t, &out)
	return out
}

func putSub(t *testing.T, u *uss, id, version string, body map[string]any) putSubW {
	t.Helper()
	p := path(subPrefix, id)
	if version != "" {
		p = path(subPrefix, id, version)
	}
	var out putSubW
	u.do(t, http.MethodPut, p, body).expect(t, http.StatusOK).decode(t, &out)
	return out
}

func getSub(t *testing.T, u *uss, id string) subW {
	t.Helper()
	var out struct {
		Subscription subW `json:"subscription"`
	}
	u.do(t, http.MethodGet, path(subPrefix, id), nil).expect(t, http.StatusOK).decode(t, &out)
	return out.Subscription
}

func queryOIRs(t *testing.T, u *uss, v vol) []oirW {
	t.Helper()
	var out struct {
		OIRs []oirW `json:"operational_intent_references"`
	}
	u.do(t, http.MethodPost, oirQueryPath, queryParams(v)).expect(t, http.StatusOK).decode(t, &out)
	return out.OIRs
}

func setAvailability(t *testing.T, u *uss, ussID, oldVersion, availability string) availW {
	t.Helper()
	var out availW
	u.do(t, http.MethodPut, path(availPrefix, ussID), map[string]any{"old_version": oldVersion, "availability": availability}).
		expect(t, http.StatusOK).decode(t, &out)
	return out
}

// expectOVN checks the OVN length rule of spec §3.6.
func expectOVN(t *testing.T, ovn string) {
	t.Helper()
	if len(ovn) < 16 || len(ovn) > 128 || ovn == scrubbedOVN {
		t.Fatalf("ovn %q: want a real OVN of 16-128 characters (spec §3.6)", ovn)
	}
}

// expectUUIDv4 checks the canonical lowercase form of spec §3.1.
func expectUUIDv4(t *testing.T, what, s string) {
	t.Helper()
	u, err := uuid.Parse(s)
	if err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 || u.String() != s {
		t.Fatalf("%s = %q, want a canonical lowercase UUIDv4 (spec §3.1)", what, s)
	}
}

// ids returns the IDs of OIRs.
func oirIDs(os []oirW) map[string]oirW {
	m := map[string]oirW{}
	for _, o := range os {
		m[o.ID] = o
	}
	return m
}

func crIDs(cs []crW) map[string]crW {
	m := map[string]crW{}
	for _, c := range cs {
		m[c.ID] = c
	}
	return m
}

func subIDs(ss []subW) map[string]subW {
	m := map[string]subW{}
	for _, s := range ss {
		m[s.ID] = s
	}
	return m
}

// sameSet reports whether a and b hold the same strings (order ignored).
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
		if m[s] < 0 {
			return false
		}
	}
	return true
}
