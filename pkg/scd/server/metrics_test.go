package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
)

// TestRequestMetrics: every request is counted once under its route's
// operation ID and its status class; unknown paths under "unmatched".
func TestRequestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	notFound := failWith(models.Errorf(models.CodeNotFound, "no such OIR"))
	h := newHandler(t, notFound, func(c *Config) { c.Registerer = reg })
	get := "/dss/v1/operational_intent_references/" + oirID
	for _, rq := range []struct{ method, path, tok string }{
		{"GET", "/healthy", ""},
		{"GET", "/healthy", ""},
		{"GET", get, allScopes}, // 404 from the store
		{"GET", get, ""},        // 401
		{"GET", "/dss/v1/nothing/here", allScopes},
		{"POST", "/dss/v1/operational_intent_references/query", allScopes}, // 400: no body
	} {
		do(h, rq.method, rq.path, rq.tok, "")
	}
	slow := &fakeStore{fn: func(ctx context.Context, _ scd.Operation) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	reg2 := prometheus.NewRegistry()
	hs := newHandler(t, slow, func(c *Config) { c.Registerer = reg2; c.HandlerTimeout = 10 * time.Millisecond })
	if rec := do(hs, "GET", get, allScopes, ""); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("slow store: %d", rec.Code)
	}
	if got := requestCounts(t, reg2); len(got) != 1 || got[[2]string{"getOperationalIntent", "5xx"}] != 1 {
		t.Errorf("a timed-out request: counted %v, want one getOperationalIntent 5xx", got)
	}

	want := map[[2]string]int{
		{"healthy", "2xx"}:                 2,
		{"getOperationalIntent", "4xx"}:    2,
		{unmatchedRoute, "4xx"}:            1,
		{"queryOperationalIntents", "4xx"}: 1,
	}
	got := requestCounts(t, reg)
	total := 0
	for k, n := range got {
		total += n
		if n != want[k] {
			t.Errorf("route %s code %s: %d requests, want %d", k[0], k[1], n, want[k])
		}
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("route %s code %s: %d requests, want %d", k[0], k[1], got[k], n)
		}
	}
	if total != 6 {
		t.Errorf("%d requests counted, want 6", total)
	}
}

// requestCounts gathers the request histogram's sample counts by route and
// status class, failing unless every route and class has its series from
// the start (a dashboard sees zeros, not missing series) and nothing else.
func requestCounts(t *testing.T, reg *prometheus.Registry) map[[2]string]int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[[2]string]int{}
	series := 0
	for _, mf := range mfs {
		if mf.GetName() != "dss_http_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			series++
			var k [2]string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "route":
					k[0] = l.GetValue()
				case "code":
					k[1] = l.GetValue()
				}
			}
			if n := int(m.GetHistogram().GetSampleCount()); n > 0 {
				counts[k] = n
			}
		}
	}
	if want := (len(routeTable()) + 1) * len(statusClasses); series != want {
		t.Errorf("%d series, want %d", series, want)
	}
	return counts
}

// BenchmarkRequestMetricsOverhead: what the request metrics add to one
// request, measured on the cheapest route (/healthy), so the difference
// between the two sub-benchmarks is the whole cost.
func BenchmarkRequestMetricsOverhead(b *testing.B) {
	for _, withMetrics := range []bool{false, true} {
		name := "without"
		if withMetrics {
			name = "with"
		}
		b.Run(name, func(b *testing.B) {
			cfg := Config{Store: failWith(nil), Authenticator: fakeAuth{}}
			if withMetrics {
				cfg.Registerer = prometheus.NewRegistry()
			}
			h, err := NewHandler(cfg)
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest("GET", "/healthy", nil)
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(discardWriter{}, req)
			}
		})
	}
}

type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}
