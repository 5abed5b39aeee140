package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/auth"
	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/server"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
)

// noAuth refuses every token: these requests must be decided by routing.
type noAuth struct{}

func (noAuth) Authenticate(*http.Request) (*auth.Claims, error) {
	return nil, models.Errorf(models.CodeUnauthenticated, "no tokens in this test")
}

// TestTopLevelMuxPaths: through a real HTTP server, the operational
// endpoints answer only at their canonical path, and every non-canonical
// path, whatever it cleans or decodes to, is the API's plain 404 and never a
// redirect.
func TestTopLevelMuxPaths(t *testing.T) {
	api, err := server.NewHandler(server.Config{Store: memstore.New(), Authenticator: noAuth{}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newMux(api, &backend{}, storeMem, prometheus.NewRegistry(), zap.NewNop()))
	defer srv.Close()
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	const plain404 = "404 page not found\n"
	tests := []struct {
		method, path string
		status       int
		body         string // prefix; "" = any
	}{
		{"GET", "/livez", 200, "ok"},
		{"GET", "/readyz", 200, "ok"},
		{"GET", "/status", 200, `{"store":`},
		{"GET", "/metrics", 200, ""},
		{"GET", "/healthy", 200, "ok"},
		{"POST", "/livez", 405, ""},
		{"GET", "/dss/v1/uss_availability/uss1", 401, `{"message":`},

		{"GET", "/dss/v1/../livez", 404, plain404},
		{"GET", "/dss/../../livez", 404, plain404},
		{"GET", "//livez", 404, plain404},
		{"GET", "/./livez", 404, plain404},
		{"GET", "/livez/", 404, plain404},
		{"GET", "/livez/.", 404, plain404},
		{"GET", "/liv%65z", 404, plain404},
		{"GET", "/%6civez", 404, plain404},
		{"GET", "/%2e%2e/livez", 404, plain404},
		{"GET", "/dss/v1/x/..%2f..%2flivez", 404, plain404},
		{"GET", "/metrics%2F", 404, plain404},
		{"GET", "/dss/v1/../healthy", 404, plain404},
		{"GET", "//healthy", 404, plain404},
		{"GET", "/dss/v1//uss_availability/uss1", 404, plain404},
		{"GET", "/dss/v1/uss_availability/../subscriptions/x", 404, plain404},
		{"PUT", "/dss/v1/uss_availability/%2E%2e", 404, plain404},
		{"GET", "/dss/./v1/uss_availability/uss1", 404, plain404},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.method, tt.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.HasPrefix(string(b), tt.body) || resp.Header.Get("Location") != "" {
			t.Errorf("%s %s: %d %q Location %q, want %d %q", tt.method, tt.path, resp.StatusCode, b,
				resp.Header.Get("Location"), tt.status, tt.body)
		}
		if tt.body == plain404 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("%s %s: Content-Type %q", tt.method, tt.path, resp.Header.Get("Content-Type"))
		}
	}
}
