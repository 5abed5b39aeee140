package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/raftdss/dss/internal/peercerts"
	"github.com/raftdss/dss/pkg/raftstore/consensus"
)

func TestAdminFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"--dev", "--raft_data_dir", "/var/lib/dss"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.raft.adminSocket != "/var/lib/dss/admin.sock" || cfg.raft.join {
		t.Fatalf("defaults: admin socket %q, join %v", cfg.raft.adminSocket, cfg.raft.join)
	}
	cfg, err = parseFlags([]string{"--dev", "--raft_join", "--raft_node_id", "4", "--raft_peers", "1=a:1,2=b:2,4=d:4",
		"--admin_socket", "/run/dss.sock", "--raft_insecure_plaintext_peers"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.raft.adminSocket != "/run/dss.sock" || !cfg.raft.join {
		t.Fatalf("admin socket %q, join %v", cfg.raft.adminSocket, cfg.raft.join)
	}
	// --raft_join=false is harmless on any store.
	if _, err := parseFlags([]string{"--dev", "--memstore", "--raft_join=false"}, io.Discard); err != nil {
		t.Fatal(err)
	}

	long := "/" + strings.Repeat("d", maxSocketPath)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--memstore", "--raft_join"}, "--raft_join is for the Raft store"},
		{[]string{"--datastore_url", "postgres://x/scd", "--raft_join"}, "--raft_join is for the Raft store"},
		{[]string{"--memstore", "--admin_socket", "/tmp/a.sock"}, "--admin_socket serves the Raft store"},
		{[]string{"--datastore_url", "postgres://x/scd", "--admin_socket", "/tmp/a.sock"}, "--admin_socket serves the Raft store"},
		{[]string{"--raft_join"}, "--raft_join needs --raft_peers"},
		{[]string{"--admin_socket", long}, "pass a shorter --admin_socket"},
	} {
		var stdout, stderr syncBuffer
		code := run(context.Background(), append([]string{"--dev", "--dev_dir", t.TempDir()}, tc.args...), &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit code %d (want %d), stderr %q (want %q)", tc.args, code, exitUsage, stderr.String(), tc.want)
		}
	}
	// A data directory too deep for the default socket: the node runs
	// without one (and warns), rather than not at all.
	cfg, err = parseFlags([]string{"--dev", "--raft_data_dir", long}, io.Discard)
	if err != nil || cfg.raft.adminSocket != "" || !strings.Contains(cfg.raft.noAdminSocket, "pass a shorter --admin_socket") {
		t.Fatalf("long data directory: %v, socket %q, note %q", err, cfg.raft.adminSocket, cfg.raft.noAdminSocket)
	}
	// The longest path that fits is accepted.
	if err := checkSocketPath("/" + strings.Repeat("d", maxSocketPath-1)); err != nil {
		t.Error(err)
	}
}

// fakeMembers is a memberAdmin with the consensus node's validation rules.
type fakeMembers struct {
	mu      sync.Mutex
	self    uint64
	leader  uint64
	removed bool // this node was removed
	members []consensus.Member
	gone    []uint64
	// block, when set, makes changes wait for their context (no quorum).
	block bool
	// behind are learners the leader sees behind its log.
	behind map[uint64]bool
	calls  []string
}

func (f *fakeMembers) Status() consensus.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return consensus.Status{ID: f.self, Leader: f.leader, IsLeader: f.self == f.leader, Removed: f.removed}
}

func (f *fakeMembers) Members() consensus.Membership {
	f.mu.Lock()
	defer f.mu.Unlock()
	ms := slices.Clone(f.members)
	slices.SortFunc(ms, func(a, b consensus.Member) int { return cmp.Compare(a.ID, b.ID) })
	return consensus.Membership{Members: ms, Removed: slices.Clone(f.gone)}
}

func (f *fakeMembers) isMember(id uint64) bool {
	return slices.ContainsFunc(f.members, func(m consensus.Member) bool { return m.ID == id })
}

func (f *fakeMembers) voters() int {
	n := 0
	for _, m := range f.members {
		if !m.Learner {
			n++
		}
	}
	return n
}

func (f *fakeMembers) wait(ctx context.Context) error {
	if !f.block {
		return nil
	}
	<-ctx.Done()
	return fmt.Errorf("%w: %w", consensus.ErrOutcomeUnknown, ctx.Err())
}

func (f *fakeMembers) AddMember(ctx context.Context, id uint64, addr string) error {
	return f.add(ctx, "add", id, addr, false)
}

func (f *fakeMembers) AddLearner(ctx context.Context, id uint64, addr string) error {
	return f.add(ctx, "add-learner", id, addr, true)
}

func (f *fakeMembers) add(ctx context.Context, verb string, id uint64, addr string, learner bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("%s %d %s", verb, id, addr))
	switch {
	case id == 0 || !strings.Contains(addr, ":"):
		return fmt.Errorf("%w: %d %q", consensus.ErrInvalidMember, id, addr)
	case f.isMember(id):
		return fmt.Errorf("%w: %d", consensus.ErrMemberExists, id)
	case slices.Contains(f.gone, id):
		return fmt.Errorf("%w: %d", consensus.ErrMemberRemoved, id)
	}
	if err := f.wait(ctx); err != nil {
		return err
	}
	f.members = append(f.members, consensus.Member{ID: id, Addr: addr, Learner: learner})
	return nil
}

func (f *fakeMembers) PromoteMember(ctx context.Context, id uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("promote %d", id))
	i := slices.IndexFunc(f.members, func(m consensus.Member) bool { return m.ID == id })
	switch {
	case id == 0:
		return fmt.Errorf("%w: raft ID 0", consensus.ErrInvalidMember)
	case slices.Contains(f.gone, id):
		return fmt.Errorf("%w: %d", consensus.ErrMemberRemoved, id)
	case i < 0:
		return fmt.Errorf("%w: %d", consensus.ErrNoSuchMember, id)
	case !f.members[i].Learner:
		return fmt.Errorf("%w: %d is already a voter", consensus.ErrMemberExists, id)
	case f.behind[id]:
		return fmt.Errorf("%w: %d has 10 of 100 entries", consensus.ErrLearnerBehind, id)
	}
	if err := f.wait(ctx); err != nil {
		return err
	}
	f.members[i].Learner = false
	return nil
}

func (f *fakeMembers) RemoveMember(ctx context.Context, id uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("remove %d", id))
	i := slices.IndexFunc(f.members, func(m consensus.Member) bool { return m.ID == id })
	switch {
	case slices.Contains(f.gone, id):
		return fmt.Errorf("%w: %d", consensus.ErrMemberRemoved, id)
	case i < 0:
		return fmt.Errorf("%w: %d", consensus.ErrNoSuchMember, id)
	case !f.members[i].Learner && f.voters() == 1:
		// The last voter; a learner cannot lead.
		return fmt.Errorf("%w: %d", consensus.ErrLastMember, id)
	}
	if err := f.wait(ctx); err != nil {
		return err
	}
	f.members = slices.DeleteFunc(f.members, func(m consensus.Member) bool { return m.ID == id })
	f.gone = append(f.gone, id)
	slices.Sort(f.gone)
	return nil
}

func (f *fakeMembers) TransferLeadership(_ context.Context, to uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("transfer %d", to))
	if f.leader != f.self {
		return fmt.Errorf("%w: node %d leads", consensus.ErrNotLeader, f.leader)
	}
	f.leader = to
	return nil
}

func newFakeMembers() *fakeMembers {
	return &fakeMembers{self: 2, leader: 1, members: []consensus.Member{{ID: 1}, {ID: 2}, {ID: 3}}}
}

var fakePeers = map[uint64]string{1: "10.0.0.1:26001", 2: "10.0.0.2:26001", 3: "10.0.0.3:26001"}

// adminDo sends one request to h and decodes the answer.
func adminDo(t *testing.T, h http.Handler, method, path, body string) (int, adminMembersJSON, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	var m adminMembersJSON
	var e adminErrorJSON
	if rec.Code == http.StatusOK {
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", method, path, ct)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, rec.Body)
		}
	} else if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Message == "" {
		t.Fatalf("%s %s: %d with body %q, want {\"message\": ...}", method, path, rec.Code, rec.Body)
	}
	return rec.Code, m, e.Message
}

func memberIDs(m adminMembersJSON) []uint64 {
	var ids []uint64
	for _, x := range m.Members {
		ids = append(ids, x.ID)
	}
	return ids
}

func TestAdminMembers(t *testing.T) {
	f := newFakeMembers()
	h := newAdminHandler(f, fakePeers, time.Second, zap.NewNop())

	code, m, _ := adminDo(t, h, "GET", "/members", "")
	if code != http.StatusOK || m.NodeID != 2 || m.LeaderID != 1 || m.Removed == nil || len(m.Removed) != 0 ||
		!slices.Equal(memberIDs(m), []uint64{1, 2, 3}) || m.Members[2].RaftAddr != "10.0.0.3:26001" {
		t.Fatalf("GET /members: %d %+v", code, m)
	}
	// The wire format is snake_case, removed an empty list rather than null.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/members", nil))
	for _, want := range []string{`"members":[{"id":1,"raft_addr":"10.0.0.1:26001","learner":false}`, `"removed":[]`,
		`"leader_id":1`, `"node_id":2`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET /members body %s lacks %s", rec.Body, want)
		}
	}

	code, m, msg := adminDo(t, h, "DELETE", "/members/3", "")
	if code != http.StatusOK || !slices.Equal(memberIDs(m), []uint64{1, 2}) || !slices.Equal(m.Removed, []uint64{3}) {
		t.Fatalf("DELETE /members/3: %d %+v %s", code, m, msg)
	}
	code, m, msg = adminDo(t, h, "POST", "/members", `{"id": 4, "raft_addr": "10.0.0.4:26001"}`)
	if code != http.StatusOK || !slices.Equal(memberIDs(m), []uint64{1, 2, 4}) || m.Members[2].RaftAddr != "10.0.0.4:26001" {
		t.Fatalf("POST /members: %d %+v %s", code, m, msg)
	}

	for _, tc := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"DELETE", "/members/3", "", http.StatusConflict, "already removed"},
		{"POST", "/members", `{"id": 3, "raft_addr": "10.0.0.3:26001"}`, http.StatusConflict, "cannot be reused"},
		{"POST", "/members", `{"id": 4, "raft_addr": "10.0.0.5:26001"}`, http.StatusConflict, "4 is already a member"},
		{"DELETE", "/members/9", "", http.StatusNotFound, "9 is not a member"},
		{"DELETE", "/members/0", "", http.StatusBadRequest, "positive integer"},
		{"DELETE", "/members/x", "", http.StatusBadRequest, "positive integer"},
		{"DELETE", "/members/-1", "", http.StatusBadRequest, "positive integer"},
		{"POST", "/members", `{"id": 5, "raft_addr": "nohostport"}`, http.StatusBadRequest, "invalid member: 5"},
		{"POST", "/members", `{"id": 0, "raft_addr": "h:1"}`, http.StatusBadRequest, "positive raft ID"},
		{"POST", "/members", `{"raft_addr": "h:1"}`, http.StatusBadRequest, `missing field "id"`},
		{"POST", "/members", `{"id": 5}`, http.StatusBadRequest, `missing field "raft_addr"`},
		{"POST", "/members", `{"id": 5, "raft_addr": ""}`, http.StatusBadRequest, `missing field "raft_addr"`},
		{"POST", "/members", `{"id": 5, "raft_addr": "h:1", "voter": true}`, http.StatusBadRequest, `unknown field "voter"`},
		{"POST", "/members", `{"id": -5, "raft_addr": "h:1"}`, http.StatusBadRequest, "bad request body"},
		{"POST", "/members", `{"id": "5", "raft_addr": "h:1"}`, http.StatusBadRequest, "bad request body"},
		{"POST", "/members", `{"id": 5, "raft_addr": "h:1"`, http.StatusBadRequest, "bad request body"},
		{"POST", "/members", `{"id": 5, "raft_addr": "h:1"} {}`, http.StatusBadRequest, "data after the JSON object"},
		{"POST", "/members", `[]`, http.StatusBadRequest, "bad request body"},
		{"POST", "/members", ``, http.StatusBadRequest, "empty request body"},
		{"POST", "/members", `{"id": 5, "raft_addr": "` + strings.Repeat("h", maxAdminBody) + `:1"}`,
			http.StatusBadRequest, "too large"},
	} {
		code, _, msg := adminDo(t, h, tc.method, tc.path, tc.body)
		if code != tc.code || !strings.Contains(msg, tc.want) {
			t.Errorf("%s %s %.60q: %d %q, want %d with %q", tc.method, tc.path, tc.body, code, msg, tc.code, tc.want)
		}
	}

	// Unknown paths and methods.
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"PUT", "/members", http.StatusMethodNotAllowed},
		{"GET", "/members/1", http.StatusMethodNotAllowed},
		{"GET", "/status", http.StatusNotFound},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, rec.Code, tc.code)
		}
	}
}

// learners maps each member's ID to whether it is a learner.
func learners(m adminMembersJSON) map[uint64]bool {
	out := map[uint64]bool{}
	for _, x := range m.Members {
		out[x.ID] = x.Learner
	}
	return out
}

// TestAdminLearners: POST /members with "learner": true adds a learner,
// POST /members/{id}/promote makes it a voter, every answer says which
// members are learners, and each refusal of AddLearner and PromoteMember
// maps to its status.
func TestAdminLearners(t *testing.T) {
	f := newFakeMembers()
	h := newAdminHandler(f, fakePeers, time.Second, zap.NewNop())

	code, m, msg := adminDo(t, h, "POST", "/members", `{"id": 5, "raft_addr": "10.0.0.5:26001", "learner": true}`)
	if code != http.StatusOK || !slices.Equal(memberIDs(m), []uint64{1, 2, 3, 5}) ||
		!maps.Equal(learners(m), map[uint64]bool{1: false, 2: false, 3: false, 5: true}) ||
		m.Members[3].RaftAddr != "10.0.0.5:26001" {
		t.Fatalf("adding learner 5: %d %+v %s", code, m, msg)
	}
	if !slices.Contains(f.calls, "add-learner 5 10.0.0.5:26001") {
		t.Errorf("calls %q: AddLearner not called", f.calls)
	}
	// "learner": false is a voter, as without the field.
	code, m, msg = adminDo(t, h, "POST", "/members", `{"id": 6, "raft_addr": "10.0.0.6:26001", "learner": false}`)
	if code != http.StatusOK || !maps.Equal(learners(m), map[uint64]bool{1: false, 2: false, 3: false, 5: true, 6: false}) {
		t.Fatalf("adding voter 6 with \"learner\": false: %d %+v %s", code, m, msg)
	}
	// GET lists the role of every member, learner or not.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/members", nil))
	for _, want := range []string{`{"id":5,"raft_addr":"10.0.0.5:26001","learner":true}`,
		`{"id":6,"raft_addr":"10.0.0.6:26001","learner":false}`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET /members body %s lacks %s", rec.Body, want)
		}
	}

	// The leader refuses to promote a learner behind its log.
	f.behind = map[uint64]bool{5: true}
	code, _, msg = adminDo(t, h, "POST", "/members/5/promote", "")
	if code != http.StatusConflict || !strings.Contains(msg, "the learner has not caught up with the leader's log yet: "+
		"5 has 10 of 100 entries: wait until its /readyz answers 200") {
		t.Errorf("promoting 5 while behind: %d %q", code, msg)
	}
	f.behind = nil
	code, m, msg = adminDo(t, h, "POST", "/members/5/promote", "")
	if code != http.StatusOK || !maps.Equal(learners(m), map[uint64]bool{1: false, 2: false, 3: false, 5: false, 6: false}) {
		t.Fatalf("promoting 5: %d %+v %s", code, m, msg)
	}
	// A learner can be removed like a voter.
	if code, _, msg := adminDo(t, h, "POST", "/members", `{"id": 7, "raft_addr": "10.0.0.7:26001", "learner": true}`); code != http.StatusOK {
		t.Fatalf("adding learner 7: %d %s", code, msg)
	}
	code, m, msg = adminDo(t, h, "DELETE", "/members/7", "")
	if code != http.StatusOK || !slices.Equal(memberIDs(m), []uint64{1, 2, 3, 5, 6}) || !slices.Equal(m.Removed, []uint64{7}) {
		t.Fatalf("removing learner 7: %d %+v %s", code, m, msg)
	}
	if code, _, msg := adminDo(t, h, "POST", "/members", `{"id": 8, "raft_addr": "10.0.0.8:26001", "learner": true}`); code != http.StatusOK {
		t.Fatalf("adding learner 8: %d %s", code, msg)
	}

	for _, tc := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		// AddLearner's refusals.
		{"POST", "/members", `{"id": 5, "raft_addr": "h:1", "learner": true}`, http.StatusConflict, "5 is already a member"},
		{"POST", "/members", `{"id": 8, "raft_addr": "h:1", "learner": true}`, http.StatusConflict,
			"8 is already a member of the cluster, as a learner: promote it"},
		{"POST", "/members", `{"id": 7, "raft_addr": "h:1", "learner": true}`, http.StatusConflict, "cannot be reused"},
		{"POST", "/members", `{"id": 9, "raft_addr": "nohostport", "learner": true}`, http.StatusBadRequest, "invalid member: 9"},
		{"POST", "/members", `{"id": 0, "raft_addr": "h:1", "learner": true}`, http.StatusBadRequest, "positive raft ID"},
		{"POST", "/members", `{"id": 9, "learner": true}`, http.StatusBadRequest, `missing field "raft_addr"`},
		{"POST", "/members", `{"id": 9, "raft_addr": "h:1", "learner": "yes"}`, http.StatusBadRequest, "bad request body"},
		{"POST", "/members", `{"id": 9, "raft_addr": "h:1", "learner": 1}`, http.StatusBadRequest, "bad request body"},
		{"POST", "/members", `{"id": 9, "raft_addr": "h:1", "Learner": true, "role": "learner"}`, http.StatusBadRequest,
			`unknown field "role"`},
		// AddMember on a learner: promote it instead.
		{"POST", "/members", `{"id": 8, "raft_addr": "h:1"}`, http.StatusConflict, "as a learner: promote it"},
		// PromoteMember's refusals.
		{"POST", "/members/5/promote", "", http.StatusConflict, "5 is already a voter"},
		{"POST", "/members/1/promote", "", http.StatusConflict, "1 is already a voter"},
		{"POST", "/members/9/promote", "", http.StatusNotFound, "9 is not a member"},
		{"POST", "/members/7/promote", "", http.StatusConflict, "member 7 was removed from the cluster: it cannot be promoted"},
		{"POST", "/members/0/promote", "", http.StatusBadRequest, `member ID "0": want a positive integer`},
		{"POST", "/members/x/promote", "", http.StatusBadRequest, `member ID "x": want a positive integer`},
		{"POST", "/members/-8/promote", "", http.StatusBadRequest, "positive integer"},
		{"POST", "/members/8.0/promote", "", http.StatusBadRequest, "positive integer"},
		{"POST", "/members/18446744073709551616/promote", "", http.StatusBadRequest, "positive integer"},
	} {
		code, _, msg := adminDo(t, h, tc.method, tc.path, tc.body)
		if code != tc.code || !strings.Contains(msg, tc.want) {
			t.Errorf("%s %s %.60q: %d %q, want %d with %q", tc.method, tc.path, tc.body, code, msg, tc.code, tc.want)
		}
	}
	if _, m, _ := adminDo(t, h, "GET", "/members", ""); !maps.Equal(learners(m), map[uint64]bool{1: false, 2: false, 3: false,
		5: false, 6: false, 8: true}) {
		t.Errorf("the refused changes changed the membership: %+v", m)
	}

	// Other methods on the promote path.
	for _, method := range []string{"GET", "PUT", "DELETE"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, "/members/8/promote", nil))
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s /members/8/promote: %d, want 405", method, rec.Code)
		}
	}

	// A promotion not applied within the timeout: 503, outcome unknown;
	// on a removed node: 503 without trying.
	h = newAdminHandler(f, fakePeers, 50*time.Millisecond, zap.NewNop())
	f.block = true
	code, _, msg = adminDo(t, h, "POST", "/members/8/promote", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(msg, "the promote of member 8 was not applied") ||
		!strings.Contains(msg, "may still be applied") {
		t.Errorf("blocked promotion: %d %q", code, msg)
	}
	code, _, msg = adminDo(t, h, "POST", "/members", `{"id": 9, "raft_addr": "h:1", "learner": true}`)
	if code != http.StatusServiceUnavailable || !strings.Contains(msg, "may still be applied") {
		t.Errorf("blocked learner add: %d %q", code, msg)
	}
	f.block, f.removed = false, true
	f.calls = nil
	for _, path := range []string{"/members/8/promote", "/members"} {
		code, _, msg := adminDo(t, h, "POST", path, `{"id": 9, "raft_addr": "h:1", "learner": true}`)
		if code != http.StatusServiceUnavailable || !strings.Contains(msg, "removed from the cluster") {
			t.Errorf("POST %s on a removed node: %d %q", path, code, msg)
		}
	}
	if len(f.calls) != 0 {
		t.Errorf("a removed node tried changes: %q", f.calls)
	}
}

func TestAdminLastMemberAndUnknownOutcome(t *testing.T) {
	f := &fakeMembers{self: 1, leader: 1, members: []consensus.Member{{ID: 1}}}
	h := newAdminHandler(f, nil, 50*time.Millisecond, zap.NewNop())
	if code, _, msg := adminDo(t, h, "DELETE", "/members/1", ""); code != http.StatusConflict || !strings.Contains(msg, "last voter") {
		t.Errorf("removing the last member: %d %q", code, msg)
	}
	// A change that is not applied within the timeout: 503, the outcome
	// is unknown.
	f.block = true
	start := time.Now()
	code, _, msg := adminDo(t, h, "POST", "/members", `{"id": 2, "raft_addr": "h:2"}`)
	if code != http.StatusServiceUnavailable || !strings.Contains(msg, "may still be applied") {
		t.Errorf("blocked change: %d %q", code, msg)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the change took %v; the handler's timeout is 50ms", d)
	}
	// A removed node refuses changes without trying.
	f.block, f.removed = false, true
	f.calls = nil
	if code, _, msg := adminDo(t, h, "POST", "/members", `{"id": 2, "raft_addr": "h:2"}`); code != http.StatusServiceUnavailable ||
		!strings.Contains(msg, "removed from the cluster") || len(f.calls) != 0 {
		t.Errorf("change on a removed node: %d %q, calls %v", code, msg, f.calls)
	}
}

func TestAdminErrorMapping(t *testing.T) {
	h := &adminHandler{node: newFakeMembers(), timeout: time.Second}
	for _, tc := range []struct {
		err  error
		code int
	}{
		{fmt.Errorf("%w: x", consensus.ErrInvalidMember), 400},
		{fmt.Errorf("%w: 4", consensus.ErrMemberExists), 409},
		{fmt.Errorf("%w: 4", consensus.ErrMemberRemoved), 409},
		{fmt.Errorf("%w: 4", consensus.ErrNoSuchMember), 404},
		{fmt.Errorf("%w: 4", consensus.ErrLastMember), 409},
		{fmt.Errorf("%w: 4 has 1 of 10 entries", consensus.ErrLearnerBehind), 409},
		{fmt.Errorf("%w: %w", consensus.ErrOutcomeUnknown, context.DeadlineExceeded), 503},
		{consensus.ErrStopped, 503},
		{consensus.ErrNoLeader, 503},
		{context.Canceled, 503},
		{errors.New("disk on fire"), 500},
	} {
		for _, verb := range []string{"add", "promote", "remove"} {
			if code, msg := h.memberError(tc.err, verb, 4); code != tc.code || msg == "" {
				t.Errorf("%s: %v: %d %q, want %d", verb, tc.err, code, msg, tc.code)
			}
		}
	}
	// PromoteMember's ErrMemberExists: the member is a voter already.
	if code, msg := h.memberError(fmt.Errorf("%w: 2 is already a voter", consensus.ErrMemberExists), "promote", 2); code != 409 ||
		msg != "2 is already a voter" {
		t.Errorf("promote of a voter: %d %q", code, msg)
	}
}

// shortTempDir is a temporary directory with a short path: a Unix socket
// path must fit in about 100 bytes, which t.TempDir's may not.
func shortTempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "a")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestListenAdmin(t *testing.T) {
	dir := shortTempDir(t)
	path := filepath.Join(dir, "sub", "admin.sock")
	ln, err := listenAdmin(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	if di, err := os.Stat(filepath.Dir(path)); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("directory: %v %v, want 0700", di.Mode(), err)
	}

	// A live socket is not taken over.
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	if _, err := listenAdmin(path); err == nil || !strings.Contains(err.Error(), "another process serves") {
		t.Errorf("second listener on a live socket: %v", err)
	}
	<-accepted

	// Close removes the file.
	ln.Close()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after Close: %v", err)
	}

	// A stale socket (its process died without removing it) is replaced.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the stale socket is gone: %v", err)
	}
	ln, err = listenAdmin(path)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	ln.Close()

	// A file that is not a socket is left alone.
	if err := os.WriteFile(path, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := listenAdmin(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("over a regular file: %v", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "keep" {
		t.Errorf("the regular file was touched: %q %v", b, err)
	}
}

// adminClient talks HTTP over the Unix socket at path.
func adminClient(path string) *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

// TestNodeServesAdminSocket: a Raft node serves its membership on the admin
// socket in its data directory, not on the API listener, and removes the
// socket when it stops; a second node on the same socket does not start.
func TestNodeServesAdminSocket(t *testing.T) {
	devDir, dataDir := t.TempDir(), filepath.Join(shortTempDir(t), "data")
	args := append([]string{"--raft_data_dir", dataDir, "--raft_addr", "127.0.0.1:0"}, fastRaft...)
	n := startNode(t, devDir, args...)
	n.waitReady()
	sock := filepath.Join(dataDir, adminSocketName)
	client := adminClient(sock)
	defer client.CloseIdleConnections()

	resp, err := client.Get("http://admin/members")
	if err != nil {
		t.Fatal(err)
	}
	var m adminMembersJSON
	err = json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || m.NodeID != 1 || !slices.Equal(memberIDs(m), []uint64{1}) {
		t.Fatalf("GET /members: %d %+v %v", resp.StatusCode, m, err)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket: %v %v", fi, err)
	}
	if code, body := n.call("GET", "/members", ""); code != http.StatusNotFound {
		t.Errorf("the API listener answers GET /members: %d %s", code, body)
	}
	if code, body := n.call("GET", "/status", ""); code != http.StatusOK || !strings.Contains(body, `"removed":false`) {
		t.Errorf("/status: %d %s", code, body)
	}

	// Another node with the same admin socket refuses to start, without
	// touching its own data directory.
	var stdout, stderr syncBuffer
	other := filepath.Join(t.TempDir(), "data")
	code := run(context.Background(), append([]string{"--dev", "--dev_dir", devDir, "--addr", "127.0.0.1:0",
		"--raft_data_dir", other, "--raft_addr", "127.0.0.1:0", "--admin_socket", sock}, fastRaft...), &stdout, &stderr)
	if code != exitFailure || !strings.Contains(stderr.String(), "another process serves the admin socket") {
		t.Errorf("second node on the socket: exit %d, stderr:\n%s", code, stderr.String())
	}
	if _, err := os.Stat(other); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the second node created its data directory: %v", err)
	}

	client.CloseIdleConnections()
	if code := n.stop(); code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, n.stderr.String())
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the admin socket is left after shutdown: %v", err)
	}
}

// TestRemovedLeaderStopsServing removes the leader of a 3-node cluster
// through its own admin socket (the leader applies its removal, so it
// knows at once): it then answers /readyz 503, reports "removed" in
// /status, logs the error once, refuses further changes, and stops cleanly;
// the other two serve on without it.
func TestRemovedLeaderStopsServing(t *testing.T) {
	devDir := t.TempDir()
	pki := writePKI(t, 1, 2, 3)
	raftAddrs := freeAddrs(t, 3)
	var peers, dataDirs []string
	for i, a := range raftAddrs {
		peers = append(peers, fmt.Sprintf("%d=%s", i+1, a))
		dataDirs = append(dataDirs, filepath.Join(shortTempDir(t), "d"))
	}
	var nodes []*node
	for i := range 3 {
		nodes = append(nodes, startNode(t, devDir, slices.Concat([]string{"--raft_node_id", fmt.Sprint(i + 1),
			"--raft_peers", strings.Join(peers, ","), "--raft_data_dir", dataDirs[i]}, peercerts.Flags(pki, uint64(i+1)),
			fastRaft)...))
	}
	for _, n := range nodes {
		n.waitReady()
	}
	var leader int
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := nodes[0].status()
		if st.LeaderID != 0 {
			leader = int(st.LeaderID - 1)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ln := nodes[leader]
	admin := func(i int, method, path, body string) (int, string) {
		t.Helper()
		c := adminClient(filepath.Join(dataDirs[i], adminSocketName))
		defer c.CloseIdleConnections()
		req, err := http.NewRequest(method, "http://admin"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if code, body := admin(leader, "DELETE", fmt.Sprintf("/members/%d", leader+1), ""); code != http.StatusOK {
		t.Fatalf("removing the leader %d through its own socket: %d %s", leader+1, code, body)
	}
	if code, body := ln.call("GET", "/readyz", ""); code != http.StatusServiceUnavailable ||
		!strings.Contains(body, "removed from the cluster") {
		t.Errorf("/readyz of the removed node: %d %s", code, body)
	}
	if code, body := ln.call("GET", "/status", ""); code != http.StatusOK || !strings.Contains(body, `"removed":true`) {
		t.Errorf("/status of the removed node: %d %s", code, body)
	}
	if code, body := admin(leader, "POST", "/members", `{"id": 9, "raft_addr": "127.0.0.1:1"}`); code != http.StatusServiceUnavailable ||
		!strings.Contains(body, "removed from the cluster") {
		t.Errorf("a change on the removed node: %d %s", code, body)
	}
	deadline = time.Now().Add(20 * time.Second)
	for !strings.Contains(ln.stderr.String(), "removed from the cluster: stop it") {
		if time.Now().After(deadline) {
			t.Fatalf("the removed node does not log its removal:\n%s", ln.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := ln.stop(); code != exitOK {
		t.Fatalf("the removed node exited with %d:\n%s", code, ln.stderr.String())
	}
	if n := strings.Count(ln.stderr.String(), "removed from the cluster: stop it"); n != 1 {
		t.Errorf("the removal is logged %d times, want once:\n%s", n, ln.stderr.String())
	}

	var rest []*node
	for i, n := range nodes {
		if i != leader {
			rest = append(rest, n)
		}
	}
	rest[0].waitReady()
	if code, body := rest[0].call("PUT", "/dss/v1/uss_availability/uss1", `{"availability": "Down"}`); code != http.StatusOK {
		t.Fatalf("PUT on a remaining node: %d %s", code, body)
	}
	waitEqualHashes(t, rest)
	other := (leader + 1) % 3
	code, body := admin(other, "GET", "/members", "")
	var m adminMembersJSON
	if err := json.Unmarshal([]byte(body), &m); code != http.StatusOK || err != nil ||
		!slices.Equal(m.Removed, []uint64{uint64(leader + 1)}) || len(m.Members) != 2 {
		t.Fatalf("members on node %d: %d %s", other+1, code, body)
	}
}
