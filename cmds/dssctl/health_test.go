package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealth(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	mux.HandleFunc("/notready", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "not ready: no leader", http.StatusServiceUnavailable)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	// An address nothing listens on: a closed test server's.
	gone := httptest.NewServer(mux)
	goneURL := gone.URL
	gone.Close()

	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		inOutput string
	}{
		{"200", []string{"--url", srv.URL + "/readyz"}, 0, "200 OK"},
		{"503", []string{"--url", srv.URL + "/notready"}, 1, "no leader"},
		{"404", []string{"--url", srv.URL + "/missing"}, 1, "404"},
		{"unreachable", []string{"--url", goneURL + "/readyz", "--timeout", "2s"}, 1, "dssctl health:"},
		{"not a URL", []string{"--url", "127.0.0.1:8080/readyz"}, 2, "not an http(s) URL"},
		{"bad timeout", []string{"--url", srv.URL, "--timeout", "0s"}, 2, "--timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code := run(append([]string{"health"}, tc.args...), &out, &out)
			if code != tc.code {
				t.Fatalf("exit code %d, want %d; output:\n%s", code, tc.code, out.String())
			}
			if !strings.Contains(out.String(), tc.inOutput) {
				t.Fatalf("output %q lacks %q", out.String(), tc.inOutput)
			}
		})
	}
}
