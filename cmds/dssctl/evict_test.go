package main

import (
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeEvictNode answers /evict like core-service: a dry run counts what is
// left, a run removes it.
type fakeEvictNode struct {
	mu       sync.Mutex
	left     int // expired constraints
	posts    int
	failWith int // non-zero: answer this status with a message
}

func (f *fakeEvictNode) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if f.failWith != 0 {
		w.WriteHeader(f.failWith)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": "eviction: no leader"})
		return
	}
	ans := evictAnswer{Before: "2026-03-01T12:00:00Z", Constraints: f.left, Subscriptions: 2, ImplicitSubscriptions: 1, Complete: true}
	switch r.Method {
	case http.MethodGet:
		ans.DryRun = true
	case http.MethodPost:
		f.posts++
		f.left = 0
	}
	_ = json.NewEncoder(w).Encode(ans)
}

func startFakeEvictNode(t *testing.T) (string, *fakeEvictNode) {
	t.Helper()
	dir := shortDir(t)
	ln, err := net.Listen("unix", filepath.Join(dir, adminSocketName))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeEvictNode{left: 5}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /evict", f.serve)
	mux.HandleFunc("POST /evict", f.serve)
	srv := &http.Server{Handler: mux}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return dir, f
}

func TestEvictCommand(t *testing.T) {
	dir, f := startFakeEvictNode(t)
	var stdout, stderr strings.Builder
	if code := run([]string{"evict", "--dry-run", "--raft_data_dir", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("dry run: exit %d, stderr %q", code, stderr.String())
	}
	for _, want := range []string{"would evict entities that ended before 2026-03-01T12:00:00Z", "constraints          5",
		"subscriptions        2 (1 implicit"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("dry run output %q lacks %q", stdout.String(), want)
		}
	}
	if f.posts != 0 {
		t.Fatal("the dry run evicted")
	}
	stdout.Reset()
	sock := filepath.Join(dir, adminSocketName)
	if code := run([]string{"evict", "--now", "--admin_socket", sock}, &stdout, &stderr); code != 0 {
		t.Fatalf("--now: exit %d, stderr %q", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "evicted entities that ended before") || !strings.Contains(stdout.String(), "constraints          5") || f.posts != 1 {
		t.Errorf("--now output %q, %d posts", stdout.String(), f.posts)
	}

	f.failWith = http.StatusServiceUnavailable
	stderr.Reset()
	if code := run([]string{"evict", "--now", "--raft_data_dir", dir}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "no leader (HTTP 503)") {
		t.Errorf("failing node: exit %d, stderr %q", code, stderr.String())
	}
}

func TestEvictUsageErrors(t *testing.T) {
	dir, f := startFakeEvictNode(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"evict", "--raft_data_dir", dir}, 2, "give exactly one of --dry-run and --now"},
		{[]string{"evict", "--dry-run", "--now", "--raft_data_dir", dir}, 2, "give exactly one of --dry-run and --now"},
		{[]string{"evict", "--now"}, 2, "--raft_data_dir or --admin_socket is required"},
		{[]string{"evict", "--now", "--raft_data_dir", dir, "--admin_socket", "/x"}, 2, "not both"},
		{[]string{"evict", "--now", "extra", "--raft_data_dir", dir}, 2, ""},
		{[]string{"evict", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"evict", "--now", "--raft_data_dir", t.TempDir()}, 1, "no admin socket at"},
	} {
		var stdout, stderr strings.Builder
		code := run(tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d (want %d), stderr %q (want %q)", tc.args, code, tc.code, stderr.String(), tc.want)
		}
	}
	if f.posts != 0 {
		t.Errorf("a refused command evicted (%d posts)", f.posts)
	}
}
