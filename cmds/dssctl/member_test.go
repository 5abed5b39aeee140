package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeAdmin is a node's admin endpoint on a Unix socket, with a membership
// the requests change.
type fakeAdmin struct {
	mu       sync.Mutex
	members  map[uint64]string
	learners map[uint64]bool
	removed  []uint64
	bodies   []string // POST /members bodies received
	paths    []string // promote paths received
	leader   uint64   // 0: node 1
}

func (f *fakeAdmin) membership() map[string]any {
	ids := make([]uint64, 0, len(f.members))
	for id := range f.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	ms := []map[string]any{}
	for _, id := range ids {
		ms = append(ms, map[string]any{"id": id, "raft_addr": f.members[id], "learner": f.learners[id]})
	}
	return map[string]any{"members": ms, "removed": append([]uint64{}, f.removed...), "leader_id": max(f.leader, 1), "node_id": 2}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeAdmin) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /members", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, 200, f.membership())
	})
	mux.HandleFunc("POST /members", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		var req struct {
			ID       uint64 `json:"id"`
			RaftAddr string `json:"raft_addr"`
			Learner  bool   `json:"learner"`
		}
		var raw json.RawMessage
		_ = json.NewDecoder(r.Body).Decode(&raw)
		f.bodies = append(f.bodies, string(raw))
		if err := json.Unmarshal(raw, &req); err != nil {
			writeJSON(w, 400, map[string]string{"message": err.Error()})
			return
		}
		switch {
		case slices.Contains(f.removed, req.ID):
			writeJSON(w, 409, map[string]string{"message": fmt.Sprintf("member %d was removed from the cluster", req.ID)})
			return
		case f.members[req.ID] != "":
			writeJSON(w, 409, map[string]string{"message": fmt.Sprintf("already a member: %d", req.ID)})
			return
		}
		f.members[req.ID] = req.RaftAddr
		f.learners[req.ID] = req.Learner
		writeJSON(w, 200, f.membership())
	})
	mux.HandleFunc("POST /members/{id}/promote", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.paths = append(f.paths, r.URL.Path)
		id, _ := strconv.ParseUint(r.PathValue("id"), 10, 64)
		switch {
		case f.members[id] == "":
			writeJSON(w, 404, map[string]string{"message": fmt.Sprintf("%d is not a member", id)})
		case !f.learners[id]:
			writeJSON(w, 409, map[string]string{"message": fmt.Sprintf("%d is already a voter", id)})
		default:
			f.learners[id] = false
			writeJSON(w, 200, f.membership())
		}
	})
	mux.HandleFunc("POST /leader", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		var req struct {
			To uint64 `json:"to"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, 400, map[string]string{"message": err.Error()})
			return
		}
		if f.members[req.To] == "" {
			writeJSON(w, 404, map[string]string{"message": fmt.Sprintf("%d is not a member of the cluster", req.To)})
			return
		}
		f.leader = req.To
		writeJSON(w, 200, f.membership())
	})
	mux.HandleFunc("DELETE /members/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		id, _ := strconv.ParseUint(r.PathValue("id"), 10, 64)
		if id == 7 {
			w.WriteHeader(http.StatusBadGateway) // not the node's JSON
			fmt.Fprintln(w, "proxy error")
			return
		}
		if f.members[id] == "" {
			writeJSON(w, 404, map[string]string{"message": fmt.Sprintf("%d is not a member", id)})
			return
		}
		delete(f.members, id)
		delete(f.learners, id)
		f.removed = append(f.removed, id)
		writeJSON(w, 200, f.membership())
	})
	return mux
}

// shortDir is a temporary directory with a path short enough for a Unix
// socket (t.TempDir's may not be).
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "m")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// startFakeAdmin serves a fake admin endpoint at DIR/admin.sock and returns
// DIR (a node's data directory, as dssctl sees it).
func startFakeAdmin(t *testing.T) (string, *fakeAdmin) {
	t.Helper()
	dir := shortDir(t)
	ln, err := net.Listen("unix", filepath.Join(dir, adminSocketName))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAdmin{members: map[uint64]string{1: "10.0.0.1:26001", 2: "10.0.0.2:26001", 3: "10.0.0.3:26001"},
		learners: map[uint64]bool{}}
	srv := &http.Server{Handler: f.handler()}
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

func TestMemberCommands(t *testing.T) {
	dir, f := startFakeAdmin(t)

	code, out, errOut := runCLI("member", "list", "--raft_data_dir", dir)
	if code != 0 {
		t.Fatalf("list: exit %d, stderr %s", code, errOut)
	}
	for _, want := range []string{"ID  ROLE   RAFT ADDRESS    NOTES\n", "1   voter  10.0.0.1:26001  leader\n",
		"2   voter  10.0.0.2:26001  this node\n", "3   voter  10.0.0.3:26001\n", "removed IDs (never reused): none"} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
	}

	code, out, errOut = runCLI("member", "remove", "--raft_data_dir", dir, "--id", "3")
	if code != 0 || !strings.Contains(out, "removed member 3: stop its node") ||
		!strings.Contains(out, "removed IDs (never reused): 3") || strings.Contains(out, "10.0.0.3") {
		t.Fatalf("remove: exit %d, stdout:\n%s\nstderr: %s", code, out, errOut)
	}

	// --admin_socket names the socket itself.
	sock := filepath.Join(dir, adminSocketName)
	code, out, errOut = runCLI("member", "add", "--admin_socket", sock, "--id", "4", "--raft_addr", "10.0.0.4:26001")
	if code != 0 {
		t.Fatalf("add: exit %d, stderr %s", code, errOut)
	}
	for _, want := range []string{"added member 4 (raft address 10.0.0.4:26001)",
		"--raft_node_id 4 --raft_join and --raft_peers 1=10.0.0.1:26001,2=10.0.0.2:26001,4=10.0.0.4:26001",
		"4   voter  10.0.0.4:26001"} {
		if !strings.Contains(out, want) {
			t.Errorf("add output lacks %q:\n%s", want, out)
		}
	}
	f.mu.Lock()
	bodies := slices.Clone(f.bodies)
	f.mu.Unlock()
	if len(bodies) != 1 || bodies[0] != `{"id":4,"raft_addr":"10.0.0.4:26001"}` {
		t.Errorf("POST bodies %q", bodies)
	}

	// The node's refusals: exit 1 with its message and status.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"remove", "--id", "3"}, "3 is not a member (HTTP 404)"},
		{[]string{"add", "--id", "3", "--raft_addr", "h:1"}, "member 3 was removed from the cluster (HTTP 409)"},
		{[]string{"add", "--id", "4", "--raft_addr", "h:1"}, "already a member: 4 (HTTP 409)"},
		{[]string{"add", "--id", "4", "--raft_addr", "h:1", "--learner"}, "already a member: 4 (HTTP 409)"},
		{[]string{"promote", "--id", "4"}, "4 is already a voter (HTTP 409)"},
		{[]string{"promote", "--id", "9"}, "9 is not a member (HTTP 404)"},
		{[]string{"remove", "--id", "7"}, "proxy error (HTTP 502)"},
	} {
		args := append([]string{"member", tc.args[0], "--raft_data_dir", dir}, tc.args[1:]...)
		code, out, errOut := runCLI(args...)
		if code != 1 || out != "" || !strings.Contains(errOut, "dssctl member "+tc.args[0]+": "+tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 1 and %q", args, code, out, errOut, tc.want)
		}
	}
}

func TestMemberUnreachable(t *testing.T) {
	dir := shortDir(t)
	code, _, errOut := runCLI("member", "list", "--raft_data_dir", dir)
	if code != 1 || !strings.Contains(errOut, "no admin socket at "+filepath.Join(dir, adminSocketName)) ||
		!strings.Contains(errOut, "is the node running") {
		t.Errorf("no socket: exit %d, stderr %q", code, errOut)
	}
	// A stale socket: its listener is gone.
	sock := filepath.Join(dir, adminSocketName)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	code, _, errOut = runCLI("member", "list", "--admin_socket", sock)
	if code != 1 || !strings.Contains(errOut, "the node is not running") {
		t.Errorf("stale socket: exit %d, stderr %q", code, errOut)
	}
	// A path too long for a Unix socket.
	long := filepath.Join(dir, strings.Repeat("x", 120))
	code, _, errOut = runCLI("member", "list", "--admin_socket", long)
	if code != 1 || !strings.Contains(errOut, "too long") {
		t.Errorf("long path: exit %d, stderr %q", code, errOut)
	}
}

func TestMemberUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"member"}, "a subcommand is required"},
		{[]string{"member", "demote"}, `unknown subcommand "demote"`},
		{[]string{"member", "promote"}, "--raft_data_dir or --admin_socket is required"},
		{[]string{"member", "promote", "--raft_data_dir", "d"}, "--id is required"},
		{[]string{"member", "promote", "--raft_data_dir", "d", "--id", "x"}, "invalid value"},
		{[]string{"member", "promote", "--raft_data_dir", "d", "--id", "4", "extra"}, `unexpected argument "extra"`},
		{[]string{"member", "add", "--raft_data_dir", "d", "--id", "4", "--raft_addr", "h:1", "--learner=maybe"}, "invalid boolean value"},
		{[]string{"member", "list"}, "--raft_data_dir or --admin_socket is required"},
		{[]string{"member", "list", "--raft_data_dir", "d", "--admin_socket", "s"}, "not both"},
		{[]string{"member", "list", "--raft_data_dir", "d", "extra"}, `unexpected argument "extra"`},
		{[]string{"member", "list", "--bogus"}, "flag provided but not defined"},
		{[]string{"member", "add", "--raft_data_dir", "d", "--raft_addr", "h:1"}, "--id is required"},
		{[]string{"member", "add", "--raft_data_dir", "d", "--id", "4"}, "--raft_addr is required"},
		{[]string{"member", "add", "--raft_data_dir", "d", "--id", "4", "--raft_addr", "nohostport"}, "want host:port"},
		{[]string{"member", "add", "--raft_data_dir", "d", "--id", "-4", "--raft_addr", "h:1"}, "invalid value"},
		{[]string{"member", "remove", "--raft_data_dir", "d"}, "--id is required"},
		{[]string{"member", "remove", "--id", "3"}, "--raft_data_dir or --admin_socket is required"},
	} {
		code, out, errOut := runCLI(tc.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "usage: dssctl member") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2, usage and %q", tc.args, code, out, errOut, tc.want)
		}
	}
	code, out, _ := runCLI("help", "member")
	if code != 0 || !strings.Contains(out, "dssctl member add") || !strings.Contains(out, "--raft_join") {
		t.Errorf("help member: exit %d, stdout %q", code, out)
	}
	code, out, errOut := runCLI("member", "add", "-h")
	if code != 0 || out != "" || !strings.Contains(errOut, "-raft_addr") || !strings.Contains(errOut, "-learner") {
		t.Errorf("member add -h: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = runCLI("member", "promote", "-h")
	if code != 0 || out != "" || !strings.Contains(errOut, "usage: dssctl member promote") || !strings.Contains(errOut, "-id") {
		t.Errorf("member promote -h: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = runCLI("help", "member")
	if code != 0 || !strings.Contains(out, "dssctl member promote") || !strings.Contains(out, "--learner") {
		t.Errorf("help member: exit %d, stdout %q", code, out)
	}
}

func TestDialErrorKeepsCause(t *testing.T) {
	err := dialError("/x/admin.sock", os.ErrPermission)
	if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "run as the node's user") {
		t.Errorf("%v", err)
	}
}

// TestMemberLearner: add --learner sends "learner": true and says how to
// promote the node; list shows it as a learner; promote makes it a voter.
func TestMemberLearner(t *testing.T) {
	dir, f := startFakeAdmin(t)

	code, out, errOut := runCLI("member", "add", "--raft_data_dir", dir, "--id", "4", "--raft_addr", "10.0.0.4:26001", "--learner")
	if code != 0 {
		t.Fatalf("add --learner: exit %d, stderr %s", code, errOut)
	}
	for _, want := range []string{"added learner 4 (raft address 10.0.0.4:26001)",
		"--raft_node_id 4 --raft_join and --raft_peers 1=10.0.0.1:26001,2=10.0.0.2:26001,3=10.0.0.3:26001,4=10.0.0.4:26001",
		"dssctl member promote --raft_data_dir " + dir + " --id 4\n",
		"4   learner  10.0.0.4:26001\n", "1   voter    10.0.0.1:26001  leader\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("add --learner output lacks %q:\n%s", want, out)
		}
	}
	f.mu.Lock()
	bodies := slices.Clone(f.bodies)
	f.mu.Unlock()
	if len(bodies) != 1 || bodies[0] != `{"id":4,"learner":true,"raft_addr":"10.0.0.4:26001"}` {
		t.Errorf("POST bodies %q", bodies)
	}

	code, out, errOut = runCLI("member", "list", "--raft_data_dir", dir)
	if code != 0 || !strings.Contains(out, "ID  ROLE     RAFT ADDRESS    NOTES\n") ||
		!strings.Contains(out, "4   learner  10.0.0.4:26001\n") || !strings.Contains(out, "3   voter    10.0.0.3:26001\n") {
		t.Fatalf("list: exit %d, stdout:\n%s\nstderr: %s", code, out, errOut)
	}

	// --learner=false adds a voter, with the same body as no flag.
	code, out, errOut = runCLI("member", "add", "--raft_data_dir", dir, "--id", "5", "--raft_addr", "10.0.0.5:26001", "--learner=false")
	if code != 0 || !strings.Contains(out, "added member 5") || strings.Contains(out, "promote") ||
		!strings.Contains(out, "5   voter    10.0.0.5:26001") {
		t.Fatalf("add --learner=false: exit %d, stdout:\n%s\nstderr: %s", code, out, errOut)
	}
	f.mu.Lock()
	bodies = slices.Clone(f.bodies)
	f.mu.Unlock()
	if len(bodies) != 2 || bodies[1] != `{"id":5,"raft_addr":"10.0.0.5:26001"}` {
		t.Errorf("POST bodies %q", bodies)
	}

	sock := filepath.Join(dir, adminSocketName)
	code, out, errOut = runCLI("member", "promote", "--admin_socket", sock, "--id", "4")
	if code != 0 || !strings.Contains(out, "promoted member 4: it is a voter") ||
		!strings.Contains(out, "4   voter  10.0.0.4:26001\n") || strings.Contains(out, "learner") {
		t.Fatalf("promote: exit %d, stdout:\n%s\nstderr: %s", code, out, errOut)
	}
	f.mu.Lock()
	paths := slices.Clone(f.paths)
	f.mu.Unlock()
	if !slices.Equal(paths, []string{"/members/4/promote"}) {
		t.Errorf("promote paths %q", paths)
	}

	// The promote hint names the socket the way it was given.
	code, out, errOut = runCLI("member", "add", "--admin_socket", sock, "--id", "6", "--raft_addr", "10.0.0.6:26001", "--learner")
	if code != 0 || !strings.Contains(out, "dssctl member promote --admin_socket "+sock+" --id 6\n") {
		t.Fatalf("add --learner via --admin_socket: exit %d, stdout:\n%s\nstderr: %s", code, out, errOut)
	}
}

func TestLeaderTransfer(t *testing.T) {
	dir, _ := startFakeAdmin(t)
	code, out, errOut := runCLI("leader", "transfer", "--raft_data_dir", dir, "--to", "3")
	if code != 0 || !strings.Contains(out, "node 3 leads now") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCLI("leader", "transfer", "--raft_data_dir", dir, "--to", "9")
	if code != 1 || !strings.Contains(errOut, "9 is not a member of the cluster (HTTP 404)") {
		t.Fatalf("to a non-member: exit %d, %s", code, errOut)
	}
	for _, args := range [][]string{
		{"leader", "transfer", "--raft_data_dir", dir},
		{"leader", "transfer", "--to", "2"},
		{"leader", "move"},
		{"leader"},
	} {
		if code, _, _ := runCLI(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
