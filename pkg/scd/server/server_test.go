package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/raftdss/dss/pkg/auth"
	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/repos"
	"github.com/raftdss/dss/pkg/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeAuth accepts "Authorization: Bearer <sub>|<scope> <scope>...".
type fakeAuth struct{}

func (fakeAuth) Authenticate(r *http.Request) (*auth.Claims, error) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return nil, models.Errorf(models.CodeUnauthenticated, "missing access token")
	}
	sub, scopes, _ := strings.Cut(tok, "|")
	return &auth.Claims{Subject: sub, Scopes: strings.Fields(scopes)}, nil
}

func token(sub string, scopes ...string) string { return sub + "|" + strings.Join(scopes, " ") }

var allScopes = token("uss1", sc, cm, cp, cmsa, aa)

// fakeStore records the operations it is given and answers with fn.
type fakeStore struct {
	ops []scd.Operation
	fn  func(ctx context.Context, op scd.Operation) (any, error)
}

func (f *fakeStore) Transact(ctx context.Context, op store.Operation[repos.Repo]) (any, error) {
	f.ops = append(f.ops, op)
	return f.fn(ctx, op)
}

func failWith(err error) *fakeStore {
	return &fakeStore{fn: func(context.Context, scd.Operation) (any, error) { return nil, err }}
}

var (
	testNow   = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	testNewID = models.ID("11111111-2222-4333-8444-555555555555")
)

const (
	oirID = "0f8c1b6e-3c2d-4a5b-9c7d-1e2f3a4b5c6d"
	subID = "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d"
	ovn   = "an-ovn-that-is-long-enough"
)

func newHandler(t *testing.T, st scd.Store, opts ...func(*Config)) http.Handler {
	t.Helper()
	cfg := Config{
		Store:         st,
		Authenticator: fakeAuth{},
		Now:           func() time.Time { return testNow },
		NewID:         func() models.ID { return testNewID },
	}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func do(h http.Handler, method, path, tok string, body string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// Valid request bodies relative to testNow.
func tm(d time.Duration) string {
	return fmt.Sprintf(`{"value": %q, "format": "RFC3339"}`, testNow.Add(d).Format(time.RFC3339Nano))
}

const circle = `{"outline_circle": {"center": {"lat": 46.97, "lng": 7.47}, "radius": {"value": 300, "units": "M"}},
	"altitude_lower": {"value": 0, "reference": "W84", "units": "M"},
	"altitude_upper": {"value": 120, "reference": "W84", "units": "M"}}`

var (
	volume4D  = fmt.Sprintf(`{"volume": %s, "time_start": %s, "time_end": %s}`, circle, tm(time.Minute), tm(time.Hour))
	queryBody = fmt.Sprintf(`{"area_of_interest": %s}`, volume4D)
	oirBody   = func(state string) string {
		return fmt.Sprintf(`{"extents": [%s], "state": %q, "uss_base_url": "https://uss1.example.com",
			"new_subscription": {"uss_base_url": "https://uss1.example.com"}}`, volume4D, state)
	}
	crBody    = fmt.Sprintf(`{"extents": [%s], "uss_base_url": "https://uss1.example.com"}`, volume4D)
	subBody   = fmt.Sprintf(`{"extents": %s, "uss_base_url": "https://uss1.example.com", "notify_for_operational_intents": true}`, volume4D)
	availBody = `{"old_version": "", "availability": "Normal"}`
	// A ~1°x1° square, far over the 2 500 km² limit (spec §4 step 5).
	hugeQuery = fmt.Sprintf(`{"area_of_interest": {"volume": {"outline_polygon": {"vertices": [
		{"lat": 46, "lng": 7}, {"lat": 46, "lng": 8}, {"lat": 47, "lng": 8}, {"lat": 47, "lng": 7}]}},
		"time_start": %s, "time_end": %s}}`, tm(0), tm(time.Hour))
	reportBody = `{"exchange": {"url": "https://uss2.example.com/x", "method": "GET", "recorder_role": "Client", "problem": "timeout"}}`
)

// endpoint lists every /dss/v1 endpoint of spec §1 with a valid request and
// the operation it must run.
var endpoints = []struct {
	method, path, body string
	op                 store.OpType // 0: no store access (reports)
}{
	{"POST", "/dss/v1/operational_intent_references/query", queryBody, scd.OpQueryOperationalIntents},
	{"GET", "/dss/v1/operational_intent_references/" + oirID, "", scd.OpGetOperationalIntent},
	{"PUT", "/dss/v1/operational_intent_references/" + oirID, oirBody("Accepted"), scd.OpPutOperationalIntent},
	{"PUT", "/dss/v1/operational_intent_references/" + oirID + "/" + ovn, oirBody("Activated"), scd.OpPutOperationalIntent},
	{"DELETE", "/dss/v1/operational_intent_references/" + oirID + "/" + ovn, "", scd.OpDeleteOperationalIntent},
	{"POST", "/dss/v1/constraint_references/query", queryBody, scd.OpQueryConstraints},
	{"GET", "/dss/v1/constraint_references/" + oirID, "", scd.OpGetConstraint},
	{"PUT", "/dss/v1/constraint_references/" + oirID, crBody, scd.OpPutConstraint},
	{"PUT", "/dss/v1/constraint_references/" + oirID + "/" + ovn, crBody, scd.OpPutConstraint},
	{"DELETE", "/dss/v1/constraint_references/" + oirID + "/" + ovn, "", scd.OpDeleteConstraint},
	{"POST", "/dss/v1/subscriptions/query", queryBody, scd.OpQuerySubscriptions},
	{"GET", "/dss/v1/subscriptions/" + subID, "", scd.OpGetSubscription},
	{"PUT", "/dss/v1/subscriptions/" + subID, subBody, scd.OpPutSubscription},
	{"PUT", "/dss/v1/subscriptions/" + subID + "/some-version", subBody, scd.OpPutSubscription},
	{"DELETE", "/dss/v1/subscriptions/" + subID + "/some-version", "", scd.OpDeleteSubscription},
	{"POST", "/dss/v1/reports", reportBody, 0},
	{"GET", "/dss/v1/uss_availability/uss2", "", scd.OpGetUssAvailability},
	{"PUT", "/dss/v1/uss_availability/uss2", availBody, scd.OpPutUssAvailability},
}

func decodeJSON(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("Content-Type = %q, want JSON (body %q)", ct, rec.Body.String())
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	return m
}

var errIDPattern = regexp.MustCompile(`\(E:[0-9a-f-]{36}\)$`)

// wantMessage checks a §3.7 4xx body: {"message": "... (E:<uuid>)"}.
func wantMessage(t *testing.T, rec *httptest.ResponseRecorder, status int) string {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d (body %q)", rec.Code, status, rec.Body.String())
	}
	m := decodeJSON(t, rec)
	msg, _ := m["message"].(string)
	if !errIDPattern.MatchString(msg) {
		t.Fatalf("message %q lacks an error ID", msg)
	}
	return msg
}

func TestEveryEndpointRunsItsOperation(t *testing.T) {
	for _, e := range endpoints {
		t.Run(e.method+" "+e.path, func(t *testing.T) {
			// A NotFound from the store proves the request got through
			// routing, auth and parsing to the right operation, and its
			// JSON 404 differs from the router's plain-text one.
			st := failWith(models.Errorf(models.CodeNotFound, "no such thing"))
			rec := do(newHandler(t, st), e.method, e.path, allScopes, e.body)
			if e.op == 0 {
				if rec.Code != http.StatusCreated || len(st.ops) != 0 {
					t.Fatalf("status %d, %d store calls; want 201 without store (body %q)", rec.Code, len(st.ops), rec.Body.String())
				}
				return
			}
			wantMessage(t, rec, http.StatusNotFound)
			if len(st.ops) != 1 || st.ops[0].Type() != e.op {
				t.Fatalf("ran %v, want one op of type %d", st.ops, e.op)
			}
		})
	}
}

func TestRouteMissesAre404PlainText(t *testing.T) {
	st := failWith(errors.New("store must not be called"))
	h := newHandler(t, st)
	for _, c := range []struct{ method, path string }{
		{"PATCH", "/dss/v1/operational_intent_references/" + oirID},
		{"POST", "/dss/v1/operational_intent_references/" + oirID},
		{"DELETE", "/dss/v1/operational_intent_references/" + oirID}, // delete needs the OVN
		{"GET", "/dss/v1/operational_intent_references/" + oirID + "/" + ovn},
		{"PUT", "/dss/v1/operational_intent_references/" + oirID + "/" + ovn + "/extra"},
		{"POST", "/dss/v1/operational_intent_references/query/extra"},
		{"GET", "/dss/v1/operation_references/" + oirID},
		{"GET", "/dss/v2/subscriptions/" + subID},
		{"PUT", "/dss/v1/reports"},
		{"DELETE", "/dss/v1/uss_availability/uss2"},
		{"GET", "/dss/v1"},
		{"GET", "/"},
		{"POST", "/healthy"},
		{"GET", "/healthy/"},
	} {
		rec := do(h, c.method, c.path, allScopes, queryBody)
		if rec.Code != http.StatusNotFound || rec.Body.String() != "404 page not found\n" ||
			!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
			t.Errorf("%s %s: %d %q %q, want Go's plain 404", c.method, c.path, rec.Code,
				rec.Header().Get("Content-Type"), rec.Body.String())
		}
	}
	if len(st.ops) != 0 {
		t.Fatalf("store called %d times", len(st.ops))
	}
}

func TestTrailingSlashIsAnEmptyParameter(t *testing.T) {
	st := failWith(errors.New("store must not be called"))
	h := newHandler(t, st)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/dss/v1/operational_intent_references/", ""},
		{"PUT", "/dss/v1/operational_intent_references/" + oirID + "/", oirBody("Accepted")},
		{"DELETE", "/dss/v1/operational_intent_references/" + oirID + "/", ""},
		{"PUT", "/dss/v1/constraint_references/" + oirID + "/", crBody},
		{"DELETE", "/dss/v1/constraint_references/" + oirID + "/", ""},
		{"GET", "/dss/v1/subscriptions/", ""},
		{"PUT", "/dss/v1/subscriptions/" + subID + "/", subBody},
		{"DELETE", "/dss/v1/subscriptions/" + subID + "/", ""},
		{"GET", "/dss/v1/uss_availability/", ""},
		{"PUT", "/dss/v1/uss_availability/", availBody},
		// A literal segment in a parameter's place is a (bad) parameter.
		{"GET", "/dss/v1/operational_intent_references/query", ""},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			wantMessage(t, do(h, c.method, c.path, allScopes, c.body), http.StatusBadRequest)
		})
	}
	if len(st.ops) != 0 {
		t.Fatalf("store called %d times", len(st.ops))
	}
}

func TestHealthyNeedsNoToken(t *testing.T) {
	rec := do(newHandler(t, failWith(errors.New("unused"))), "GET", "/healthy", "", "")
	if rec.Code != http.StatusOK || rec.Body.String() != "ok" {
		t.Fatalf("got %d %q, want 200 ok", rec.Code, rec.Body.String())
	}
}

func TestOrderOfEvaluation(t *testing.T) {
	st := failWith(errors.New("store must not be called"))
	h := newHandler(t, st)
	const broken = `{"extents": [`
	for _, c := range []struct {
		name, method, path, tok string
		want                    int
	}{
		{"no token beats broken body", "PUT", "/dss/v1/operational_intent_references/" + oirID, "", 401},
		{"no token on a query", "POST", "/dss/v1/subscriptions/query", "", 401},
		{"wrong scope beats broken body", "PUT", "/dss/v1/operational_intent_references/" + oirID, token("uss1", cp), 403},
		{"CR PUT with SC", "PUT", "/dss/v1/constraint_references/" + oirID, token("uss1", sc), 403},
		{"CR PUT with CP", "PUT", "/dss/v1/constraint_references/" + oirID, token("uss1", cp, cmsa, aa), 403},
		{"OIR query with CM", "POST", "/dss/v1/operational_intent_references/query", token("uss1", cm), 403},
		{"availability PUT with SC", "PUT", "/dss/v1/uss_availability/uss1", token("uss1", sc, cmsa), 403},
		{"report without any DSS scope", "POST", "/dss/v1/reports", token("uss1", "utm.other"), 403},
		{"authorised: body decides", "PUT", "/dss/v1/operational_intent_references/" + oirID, token("uss1", sc), 400},
		{"SC+CP alternative", "PUT", "/dss/v1/operational_intent_references/" + oirID, token("uss1", sc, cp), 400},
		{"CMSA alternative", "PUT", "/dss/v1/operational_intent_references/" + oirID, token("uss1", cmsa), 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantMessage(t, do(h, c.method, c.path, c.tok, broken), c.want)
		})
	}
	if len(st.ops) != 0 {
		t.Fatalf("store called %d times", len(st.ops))
	}
}

func TestOIRPutStateNeedsCMSA(t *testing.T) {
	path := "/dss/v1/operational_intent_references/" + oirID + "/" + ovn
	for _, state := range []string{"Nonconforming", "Contingent"} {
		st := failWith(models.Errorf(models.CodeNotFound, "reached the store"))
		h := newHandler(t, st)
		wantMessage(t, do(h, "PUT", path, token("uss1", sc), oirBody(state)), http.StatusForbidden)
		if len(st.ops) != 0 {
			t.Fatalf("%s without CMSA reached the store", state)
		}
		wantMessage(t, do(h, "PUT", path, token("uss1", cmsa), oirBody(state)), http.StatusNotFound)
	}
}

func TestOIRPutGetsNewSubscriptionIDAndRequestTime(t *testing.T) {
	st := failWith(models.Errorf(models.CodeNotFound, "stop here"))
	do(newHandler(t, st), "PUT", "/dss/v1/operational_intent_references/"+oirID, token("uss1", sc), oirBody("Accepted"))
	if len(st.ops) != 1 {
		t.Fatalf("store called %d times", len(st.ops))
	}
	op := st.ops[0].(*scd.PutOperationalIntent)
	if op.NewSubscriptionID != testNewID || !op.Now.Equal(testNow) || op.Caller != "uss1" {
		t.Fatalf("op = %+v, want NewSubscriptionID %s, Now %v, Caller uss1", op, testNewID, testNow)
	}
}

func TestBodyOver4MiBIs413(t *testing.T) {
	big := `{"x": "` + strings.Repeat("a", MaxBodyBytes) + `"}`
	for _, chunked := range []bool{false, true} {
		st := failWith(errors.New("store must not be called"))
		h := newHandler(t, st)
		req := httptest.NewRequest("POST", "/dss/v1/operational_intent_references/query", strings.NewReader(big))
		if chunked {
			req.ContentLength = -1 // only MaxBytesReader can notice
		}
		req.Header.Set("Authorization", "Bearer "+allScopes)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
			t.Fatalf("chunked=%v: %d %q, want 413 plain text", chunked, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
	// Exactly at the limit is fine (then the body is merely invalid JSON).
	h := newHandler(t, failWith(errors.New("store must not be called")))
	rec := do(h, "POST", "/dss/v1/operational_intent_references/query", allScopes, strings.Repeat(" ", MaxBodyBytes))
	wantMessage(t, rec, http.StatusBadRequest)
}

func TestHandlerTimeoutIs503(t *testing.T) {
	slow := &fakeStore{fn: func(ctx context.Context, _ scd.Operation) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	h := newHandler(t, slow, func(c *Config) { c.HandlerTimeout = 20 * time.Millisecond })
	rec := do(h, "GET", "/dss/v1/operational_intent_references/"+oirID, allScopes, "")
	if rec.Code != http.StatusServiceUnavailable || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("%d %q %q, want 503 plain text", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}
}

func TestInternalErrorsHideTheCause(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	h := newHandler(t, failWith(errors.New("disk on fire")), func(c *Config) { c.Logger = zap.New(core) })
	rec := do(h, "GET", "/dss/v1/subscriptions/"+subID, allScopes, "")
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", rec.Code)
	}
	m := decodeJSON(t, rec)
	msg, _ := m["error_message"].(string)
	if len(m) != 1 || strings.Contains(msg, "disk") || !errIDPattern.MatchString(msg) {
		t.Fatalf("body %q: want only error_message with an error ID and no cause", rec.Body.String())
	}
	errID := errIDPattern.FindString(msg)
	errID = errID[3 : len(errID)-1]
	entries := logs.FilterField(zap.String("error_id", errID)).All()
	if len(entries) != 1 || !strings.Contains(fmt.Sprint(entries[0].ContextMap()["error"]), "disk on fire") {
		t.Fatalf("log entries for %s: %+v, want one with the cause", errID, entries)
	}
}

func TestErrorStatusMapping(t *testing.T) {
	missing := &models.Error{Code: models.CodeMissingKey, Message: "missing OVNs",
		MissingOIRs: []*models.OperationalIntent{{
			ID: models.ID(subID), Manager: "uss2", Version: 1, State: models.StateAccepted,
			USSBaseURL: "https://uss2.example.com", StartTime: testNow, EndTime: testNow.Add(time.Hour), UpdatedAt: testNow,
		}}}
	for _, c := range []struct {
		name     string
		err      error
		endpoint int // index into endpoints
		status   int
		check    func(t *testing.T, m map[string]any)
	}{
		{"bad request", models.Errorf(models.CodeBadRequest, "x"), 1, 400, nil},
		{"permission", models.Errorf(models.CodePermissionDenied, "x"), 1, 403, nil},
		{"version mismatch", models.Errorf(models.CodeVersionMismatch, "x"), 4, 409, nil},
		{"already exists", models.Errorf(models.CodeAlreadyExists, "x"), 12, 409, nil},
		{"unavailable", models.Errorf(models.CodeUnavailable, "x"), 1, 503, nil},
		{"quota on OIR PUT", models.Errorf(models.CodeQuotaExceeded, "x"), 2, 429, func(t *testing.T, m map[string]any) {
			if len(m) != 1 {
				t.Fatalf("body %v: want only message (a 429 is no AirspaceConflictResponse)", m)
			}
		}},
		{"quota on subscription PUT", models.Errorf(models.CodeQuotaExceeded, "x"), 12, 429, nil},
		{"area too large on OIR query", models.Errorf(models.CodeAreaTooLarge, "x"), 0, 400, nil},
		{"area too large on sub query", models.Errorf(models.CodeAreaTooLarge, "x"), 10, 413, nil},
		{"wrapped code", fmt.Errorf("ctx: %w", models.Errorf(models.CodeNotFound, "x")), 1, 404, nil},
		{"key check on OIR PUT", missing, 2, 409, func(t *testing.T, m map[string]any) {
			list, _ := m["missing_operational_intents"].([]any)
			if len(list) != 1 {
				t.Fatalf("missing_operational_intents = %v", m["missing_operational_intents"])
			}
			if oir := list[0].(map[string]any); oir["ovn"] != string(models.ScrubbedOVN) {
				t.Fatalf("another manager's OVN not scrubbed: %v", oir["ovn"])
			}
			if _, ok := m["missing_constraints"]; ok {
				t.Fatal("empty missing_constraints must be absent")
			}
		}},
		{"OVN mismatch on OIR PUT", models.Errorf(models.CodeVersionMismatch, "x"), 3, 409, func(t *testing.T, m map[string]any) {
			if len(m) != 1 {
				t.Fatalf("body %v: want the AirspaceConflictResponse with only message", m)
			}
		}},
		{"OVN mismatch on CR PUT", models.Errorf(models.CodeVersionMismatch, "x"), 8, 409, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := endpoints[c.endpoint]
			rec := do(newHandler(t, failWith(c.err)), e.method, e.path, allScopes, e.body)
			wantMessage(t, rec, c.status)
			if c.check != nil {
				c.check(t, decodeJSON(t, rec))
			}
		})
	}
}

func TestSubscriptionQueryAreaTooLargeFromParsing(t *testing.T) {
	st := failWith(errors.New("store must not be called"))
	h := newHandler(t, st)
	wantMessage(t, do(h, "POST", "/dss/v1/subscriptions/query", allScopes, hugeQuery), http.StatusRequestEntityTooLarge)
	wantMessage(t, do(h, "POST", "/dss/v1/operational_intent_references/query", allScopes, hugeQuery), http.StatusBadRequest)
	wantMessage(t, do(h, "POST", "/dss/v1/constraint_references/query", allScopes, hugeQuery), http.StatusBadRequest)
}

func TestReportGetsAnID(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	st := failWith(errors.New("store must not be called"))
	h := newHandler(t, st, func(c *Config) { c.Logger = zap.New(core) })
	rec := do(h, "POST", "/dss/v1/reports", token("uss1", aa), `{"report_id": "mine", "exchange": {"url": "u", "method": "GET", "recorder_role": "Client"}}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d (%q)", rec.Code, rec.Body.String())
	}
	m := decodeJSON(t, rec)
	if m["report_id"] != string(testNewID) || m["exchange"].(map[string]any)["url"] != "u" {
		t.Fatalf("body %v", m)
	}
	if logs.FilterField(zap.String("report_id", string(testNewID))).Len() != 1 {
		t.Fatal("report not logged")
	}
	wantMessage(t, do(h, "POST", "/dss/v1/reports", token("uss1", aa), `{}`), http.StatusBadRequest)
}

func TestNewHandlerRequiresStoreAndAuthenticator(t *testing.T) {
	if _, err := NewHandler(Config{Authenticator: fakeAuth{}}); err == nil {
		t.Error("no error without Store")
	}
	if _, err := NewHandler(Config{Store: failWith(nil)}); err == nil {
		t.Error("no error without Authenticator")
	}
}
