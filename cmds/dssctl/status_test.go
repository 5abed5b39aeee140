package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// statusServer answers /status with st, to requests bearing token.
func statusServer(t *testing.T, token string, st map[string]any) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+token {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "missing or invalid access token"})
			return
		}
		writeJSON(w, http.StatusOK, st)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func raftStatus(id, leader, term, applied uint64, hash string) map[string]any {
	return map[string]any{"store": "raft", "node_id": id, "leader_id": leader, "is_leader": id == leader,
		"term": term, "applied_index": applied, "commit_index": applied, "state_hash": hash}
}

func runStatusCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(append([]string{"status"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestStatusAgreeingMembers(t *testing.T) {
	a := statusServer(t, "tok", raftStatus(1, 1, 3, 40, "aaaa"))
	b := statusServer(t, "tok", raftStatus(2, 1, 3, 40, "aaaa"))
	c := statusServer(t, "tok", raftStatus(3, 1, 3, 38, "cccc")) // behind: another index, no verdict
	code, out, errOut := runStatusCmd("--endpoints", a.URL+","+b.URL+","+c.URL, "--token", "tok")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], "leader") || !strings.Contains(lines[2], "follower") ||
		strings.Contains(out, "DIVERGED") {
		t.Fatalf("output:\n%s", out)
	}
	for _, want := range []string{"40", "38", "aaaa", "cccc"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestStatusReportsDivergence: two members at one applied index with
// different hashes: a DIVERGED line naming the index, the nodes and both
// hashes, and exit code 3.
func TestStatusReportsDivergence(t *testing.T) {
	t.Setenv("DSS_TOKEN", "envtok")
	a := statusServer(t, "envtok", raftStatus(1, 1, 3, 40, "aaaa"))
	b := statusServer(t, "envtok", raftStatus(2, 1, 3, 40, "aaaa"))
	c := statusServer(t, "envtok", raftStatus(3, 1, 3, 40, "bbbb"))
	code, out, _ := runStatusCmd("--endpoints", a.URL+","+b.URL+","+c.URL)
	if code != statusDiverged {
		t.Fatalf("exit %d, want %d\n%s", code, statusDiverged, out)
	}
	if !strings.Contains(out, "DIVERGED at applied index 40: nodes [1 2] report aaaa; nodes [3] report bbbb") {
		t.Fatalf("output:\n%s", out)
	}
}

// TestStatusUnreachableAndRefused: a member that does not answer, one that
// refuses the token, and one that is not a Raft node each get a row saying
// why, and the exit code is 1; the others are still listed.
func TestStatusUnreachableAndRefused(t *testing.T) {
	ok := statusServer(t, "tok", raftStatus(1, 1, 2, 9, "aaaa"))
	other := statusServer(t, "other", raftStatus(2, 1, 2, 9, "aaaa"))
	sql := statusServer(t, "tok", map[string]any{"store": "sql"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	code, out, _ := runStatusCmd("--endpoints", strings.Join([]string{ok.URL, other.URL, sql.URL, dead}, ","), "--token", "tok")
	if code != statusUnreachable {
		t.Fatalf("exit %d, want %d\n%s", code, statusUnreachable, out)
	}
	for _, want := range []string{"leader", "missing or invalid access token (HTTP 401)", `runs the "sql" store`, "connection refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestStatusOverAdminSockets(t *testing.T) {
	dir := shortDir(t)
	sock := filepath.Join(dir, adminSocketName)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Error("a token was sent to the admin socket")
		}
		_ = json.NewEncoder(w).Encode(raftStatus(4, 2, 7, 100, "dddd"))
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close(); <-done }()
	code, out, errOut := runStatusCmd("--admin_sockets", sock+","+filepath.Join(dir, "missing.sock"))
	if code != statusUnreachable || !strings.Contains(out, "dddd") || !strings.Contains(out, "no admin socket at") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}

func TestStatusUsageErrors(t *testing.T) {
	t.Setenv("DSS_TOKEN", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "name the members"},
		{[]string{"--endpoints", "http://a:1"}, "needs an access token"},
		{[]string{"--endpoints", "a:1", "--token", "x"}, "want http://host:port"},
		{[]string{"--endpoints", "http://a:1,http://a:1/", "--token", "x"}, "given twice"},
		{[]string{"--admin_sockets", "/x.sock", "extra"}, "unexpected arguments"},
		{[]string{"--endpoints", "https://a:1", "--token", "x", "--cacert", "/nonexistent.pem"}, "--cacert"},
	} {
		code, _, errOut := runStatusCmd(tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}
