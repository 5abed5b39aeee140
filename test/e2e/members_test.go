package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Members is the admin endpoint's answer (GET/POST /members,
// POST /members/{id}/promote, DELETE /members/{id}) on a node's admin
// socket.
type Members struct {
	Members []struct {
		ID       uint64 `json:"id"`
		RaftAddr string `json:"raft_addr"`
		Learner  bool   `json:"learner"`
	} `json:"members"`
	Removed  []uint64 `json:"removed"`
	LeaderID uint64   `json:"leader_id"`
	NodeID   uint64   `json:"node_id"`
}

// IDs are the members' raft IDs.
func (m Members) IDs() []uint64 {
	var ids []uint64
	for _, x := range m.Members {
		ids = append(ids, x.ID)
	}
	return ids
}

// Learners are the raft IDs of the members that are learners.
func (m Members) Learners() []uint64 {
	ids := []uint64{}
	for _, x := range m.Members {
		if x.Learner {
			ids = append(ids, x.ID)
		}
	}
	return ids
}

// AdminSocket is node i's admin socket: core-service's default,
// <raft_data_dir>/admin.sock.
func (c *Cluster) AdminSocket(i int) string {
	return filepath.Join(c.Nodes[i].DataDir, "admin.sock")
}

// Admin sends one request to node i's admin socket. It returns the status,
// the membership of a 200 and the body as text.
func (c *Cluster) Admin(i int, method, path, body string) (int, Members, string) {
	c.t.Helper()
	sock := c.AdminSocket(i)
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	defer tr.CloseIdleConnections()
	// The node gives a change 10 s to apply before it answers 503.
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	req, err := http.NewRequest(method, "http://admin"+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		c.t.Fatalf("node %d admin %s %s: %v", c.Nodes[i].ID, method, path, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		c.t.Fatalf("node %d admin %s %s: reading the answer: %v", c.Nodes[i].ID, method, path, err)
	}
	var m Members
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			c.t.Fatalf("node %d admin %s %s: %v in %s", c.Nodes[i].ID, method, path, err, buf.String())
		}
	}
	return resp.StatusCode, m, strings.TrimSpace(buf.String())
}

// AddNode appends a node that is not started: raft ID len(Nodes)+1, fresh
// ports and an empty data directory, with flags for it alone. It returns
// its index.
func (c *Cluster) AddNode(flags ...string) int {
	c.t.Helper()
	i := len(c.Nodes)
	ports := freePorts(c.t, 2)
	dir := filepath.Dir(c.DevDir)
	c.Nodes = append(c.Nodes, &Node{
		Index:    i,
		ID:       uint64(i + 1),
		HTTPAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		RaftAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		DataDir:  filepath.Join(dir, fmt.Sprintf("node%d", i+1), "data"),
		LogPath:  filepath.Join(dir, fmt.Sprintf("node%d.log", i+1)),
		Flags:    flags,
	})
	c.makeCerts(c.Nodes[i])
	return i
}

// wantMembers fails the test unless m has exactly the voters ids and the
// removed IDs removed.
func wantMembers(t *testing.T, what string, m Members, ids, removed []uint64) {
	t.Helper()
	if !slices.Equal(m.IDs(), ids) || !slices.Equal(m.Removed, removed) {
		t.Fatalf("%s: members %v removed %v, want %v and %v (%+v)", what, m.IDs(), m.Removed, ids, removed, m)
	}
}

// TestReplaceMember replaces a member the way README's "Operating a cluster"
// says to: remove node 3 (through node 1's admin socket) and stop it, add
// node 4 under a new ID (through node 2's), and start node 4 with
// --raft_join on an empty data directory. Node 4 must catch up (equal state
// hash at the same applied index after a barrier write), serve reads and
// writes, count in the quorum (with node 1 down, nodes 2 and 4 still
// commit), and survive a restart (--raft_join is then ignored). Node 1,
// restarted with the original --raft_peers that do not name node 4, must
// reach it through the address replicated with the change. Reusing or
// re-removing node 3's ID is refused with 409.
func TestReplaceMember(t *testing.T) {
	c := NewCluster(t, Options{Dev: true})
	originalPeers := c.peersFlag()
	before := c.WriteOIRs(t, 20, c.Running())

	code, m, body := c.Admin(0, http.MethodDelete, "/members/3", "")
	if code != http.StatusOK {
		t.Fatalf("removing node 3: %d %s", code, body)
	}
	wantMembers(t, "after removing node 3", m, []uint64{1, 2}, []uint64{3})
	c.StopNode(2)

	n4 := c.AddNode("--raft_join")
	code, m, body = c.Admin(1, http.MethodPost, "/members",
		fmt.Sprintf(`{"id": 4, "raft_addr": %q}`, c.Nodes[n4].RaftAddr))
	if code != http.StatusOK {
		t.Fatalf("adding node 4: %d %s", code, body)
	}
	wantMembers(t, "after adding node 4", m, []uint64{1, 2, 4}, []uint64{3})

	// Started without --raft_join by mistake, node 4 bootstraps a cluster of
	// its own from its --raft_peers. Its cluster ID differs, so the
	// transports keep it apart from the real cluster: it never votes or
	// acknowledges there, the cluster goes on committing, and its data
	// directory can be wiped and the node started again, with --raft_join,
	// under the same ID.
	c.Nodes[n4].Flags = nil
	c.Start(n4)
	const refused = "rejected stream from another cluster"
	if err := poll(readyTimeout, func() (bool, error) {
		if err := c.exitedErr(n4); err != nil {
			return false, err
		}
		return strings.Contains(c.LogSinceStart(n4), refused) && strings.Contains(c.LogSinceStart(0), refused), nil
	}); err != nil {
		t.Fatalf("node 4 started without --raft_join: streams between it and node 1 not refused: %v", err)
	}
	if code, body, err := c.get(context.Background(), n4, "/readyz"); err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("node 4, a cluster of its own, answers /readyz %d %s %v; want 503", code, body, err)
	}
	c.WriteOIRs(t, 2, []int{0, 1})
	c.StopNode(n4)
	if err := os.RemoveAll(c.Nodes[n4].DataDir); err != nil {
		t.Fatal(err)
	}
	c.Nodes[n4].Flags = []string{"--raft_join"}
	c.Start(n4)
	c.WaitReady(n4)

	// A write through node 1 is a barrier: once every running node applied
	// it, node 4 holds everything written before it.
	c.WriteOIRs(t, 1, []int{0})
	c.WaitEqualHashes()
	c.CheckOIRs(t, before, []int{n4})
	via4 := c.WriteOIRs(t, 10, []int{n4})
	c.CheckOIRs(t, via4, []int{0, 1, n4})

	// Node 4 knows the membership, its own address included, from the log.
	code, m, body = c.Admin(n4, http.MethodGet, "/members", "")
	if code != http.StatusOK {
		t.Fatalf("members on node 4: %d %s", code, body)
	}
	wantMembers(t, "node 4's view", m, []uint64{1, 2, 4}, []uint64{3})
	if m.NodeID != 4 || m.Members[2].RaftAddr != c.Nodes[n4].RaftAddr {
		t.Fatalf("node 4's view: %+v, want node_id 4 and member 4 at %s", m, c.Nodes[n4].RaftAddr)
	}
	if code, st, err := c.get(context.Background(), n4, "/status"); err != nil || code != http.StatusOK ||
		!bytes.Contains(st, []byte(`"removed":false`)) {
		t.Fatalf("node 4's /status: %d %s %v", code, st, err)
	}

	// With node 1 down, only nodes 2 and 4 form a quorum: writes commit
	// only if node 4 votes and acknowledges. Node 1 comes back with the
	// --raft_peers it was created with, which do not name node 4.
	c.StopNode(0)
	withoutNode1 := c.WriteOIRs(t, 10, []int{1, n4})
	c.Nodes[0].Flags = []string{"--raft_peers", originalPeers}
	c.RestartNode(0)
	c.WriteOIRs(t, 1, []int{0})
	c.WaitEqualHashes()
	c.CheckOIRs(t, withoutNode1, []int{0})

	// A restart of node 4 from its data directory (--raft_join is still
	// given, and ignored: the directory holds a WAL).
	c.StopNode(n4)
	c.RestartNode(n4)
	c.WriteOIRs(t, 1, []int{n4})
	c.WaitEqualHashes()
	c.CheckOIRs(t, via4, []int{n4})

	// Refusals: IDs are never reused.
	for _, tc := range []struct {
		method, path, body string
		code               int
	}{
		{http.MethodDelete, "/members/3", "", http.StatusConflict},
		{http.MethodPost, "/members", fmt.Sprintf(`{"id": 3, "raft_addr": %q}`, c.Nodes[2].RaftAddr), http.StatusConflict},
		{http.MethodPost, "/members", `{"id": 4, "raft_addr": "127.0.0.1:1"}`, http.StatusConflict},
		{http.MethodDelete, "/members/9", "", http.StatusNotFound},
		{http.MethodPost, "/members", `{"id": 5}`, http.StatusBadRequest},
	} {
		if code, _, body := c.Admin(n4, tc.method, tc.path, tc.body); code != tc.code {
			t.Errorf("%s %s %s: %d %s, want %d", tc.method, tc.path, tc.body, code, body, tc.code)
		}
	}
	code, m, body = c.Admin(0, http.MethodGet, "/members", "")
	if code != http.StatusOK {
		t.Fatalf("members on node 1: %d %s", code, body)
	}
	wantMembers(t, "node 1's view at the end", m, []uint64{1, 2, 4}, []uint64{3})
}

// waitLearners waits until GET /members on each of nodes lists the members
// ids, of which learners are the learners.
func waitLearners(t *testing.T, c *Cluster, nodes []int, ids, learners []uint64) {
	t.Helper()
	for _, i := range nodes {
		if err := poll(10*time.Second, func() (bool, error) {
			code, m, body := c.Admin(i, http.MethodGet, "/members", "")
			if code != http.StatusOK || !slices.Equal(m.IDs(), ids) || !slices.Equal(m.Learners(), learners) {
				return false, fmt.Errorf("%d %s", code, body)
			}
			return true, nil
		}); err != nil {
			t.Fatalf("node %d: want members %v with learners %v: %v", c.Nodes[i].ID, ids, learners, err)
		}
	}
}

// TestGrowClusterWithLearner grows a cluster of three to four the way
// README's "Adding a member" says to: add node 4 as a learner, start it
// with --raft_join, wait until it has caught up, then promote it. The
// leader refuses to promote it before it has the log. While it is a
// learner it does not count in the quorum: with node 3 stopped and
// node 4 not even started, nodes 1 and 2 still commit. Once promoted it is
// a voter on every node and counts: with node 3 still down, writes through
// node 4 commit only because node 4 acknowledges them (3 of 4), and with
// node 2 stopped as well a write through node 4 gets 503 within the server
// timeout. Node 3, restarted, learns the promotion from the log and the
// cluster commits again.
func TestGrowClusterWithLearner(t *testing.T) {
	c := NewCluster(t, Options{Dev: true})
	acked := c.WriteOIRs(t, 20, c.Running())

	n4 := c.AddNode("--raft_join")
	code, m, body := c.Admin(0, http.MethodPost, "/members",
		fmt.Sprintf(`{"id": 4, "raft_addr": %q, "learner": true}`, c.Nodes[n4].RaftAddr))
	if code != http.StatusOK {
		t.Fatalf("adding node 4 as a learner: %d %s", code, body)
	}
	wantMembers(t, "after adding learner 4", m, []uint64{1, 2, 3, 4}, []uint64{})
	if !slices.Equal(m.Learners(), []uint64{4}) {
		t.Fatalf("after adding learner 4: learners %v, want [4] (%s)", m.Learners(), body)
	}
	// Node 1 answered once it applied the change; wait until the others
	// have too, so that the checks below through them see node 4.
	waitLearners(t, c, []int{0, 1, 2}, []uint64{1, 2, 3, 4}, []uint64{4})
	// Adding it again, as a voter or a learner, is refused: a learner
	// becomes a voter by promotion.
	for _, learner := range []bool{false, true} {
		code, _, body := c.Admin(1, http.MethodPost, "/members",
			fmt.Sprintf(`{"id": 4, "raft_addr": %q, "learner": %v}`, c.Nodes[n4].RaftAddr, learner))
		if code != http.StatusConflict {
			t.Errorf("adding member 4 again (learner %v): %d %s, want 409", learner, code, body)
		}
	}

	// The leader knows how far a learner got: it refuses to promote one
	// that has not received the log (node 4 is not even started).
	leader := c.Leader()
	if code, _, body := c.Admin(leader, http.MethodPost, "/members/4/promote", ""); code != http.StatusConflict ||
		!strings.Contains(body, "has not caught up") {
		t.Fatalf("promoting learner 4 through leader node %d before it started: %d %s, want 409 (not caught up)",
			c.Nodes[leader].ID, code, body)
	}

	// The learner does not count in the quorum, even before it starts:
	// with node 3 down, nodes 1 and 2 are 2 of the 3 voters.
	c.StopNode(2)
	for k, v := range c.WriteOIRs(t, 5, []int{0, 1}) {
		acked[k] = v
	}

	c.Start(n4)
	c.WaitReady(n4)
	// A write through node 1 is a barrier: once node 4 applied it, and
	// its state hash equals the others', it has caught up.
	c.WriteOIRs(t, 1, []int{0})
	c.WaitEqualHashes()
	c.CheckOIRs(t, acked, []int{n4})
	code, m, body = c.Admin(n4, http.MethodGet, "/members", "")
	if code != http.StatusOK || m.NodeID != 4 || !slices.Equal(m.Learners(), []uint64{4}) {
		t.Fatalf("members on node 4 before its promotion: %d %s", code, body)
	}
	wantMembers(t, "node 4's view as a learner", m, []uint64{1, 2, 3, 4}, []uint64{})

	// Promote it through node 2's socket; node 3 (stopped) is still a voter,
	// so from now on the quorum is 3 of 4.
	code, m, body = c.Admin(1, http.MethodPost, "/members/4/promote", "")
	if code != http.StatusOK || len(m.Learners()) != 0 {
		t.Fatalf("promoting node 4: %d %s", code, body)
	}
	wantMembers(t, "after promoting node 4", m, []uint64{1, 2, 3, 4}, []uint64{})
	// Every running node applies the promotion (node 2 answered once it
	// had); then promoting it again anywhere is refused.
	waitLearners(t, c, []int{0, 1, n4}, []uint64{1, 2, 3, 4}, []uint64{})
	if code, _, body := c.Admin(0, http.MethodPost, "/members/4/promote", ""); code != http.StatusConflict ||
		!strings.Contains(body, "already a voter") {
		t.Errorf("promoting node 4 again: %d %s, want 409 already a voter", code, body)
	}
	if code, _, body := c.Admin(0, http.MethodPost, "/members/9/promote", ""); code != http.StatusNotFound {
		t.Errorf("promoting non-member 9: %d %s, want 404", code, body)
	}

	// Node 3 is down: nodes 1, 2 and 4 are exactly a quorum of the four
	// voters, so these writes commit only with node 4's acknowledgements.
	for k, v := range c.WriteOIRs(t, 10, []int{n4}) {
		acked[k] = v
	}

	// With node 2 stopped as well, 2 of 4 voters are up: no quorum. A
	// write through node 4 gets 503 (outcome unknown) within the server
	// timeout, never a 201.
	c.StopNode(1)
	_, r := c.PutOIR(n4)
	if r.err != nil || r.status != http.StatusServiceUnavailable {
		t.Fatalf("write through node 4 with 2 of 4 voters up: %s; want 503", r)
	}
	if d := r.done.Sub(r.start); d > serverTimeout+2*time.Second {
		t.Errorf("the 503 took %v; the server timeout is %v", d, serverTimeout)
	}
	t.Logf("with 2 of 4 voters up, a write through node 4: %s", r)

	// Node 3 comes back: 3 of 4 again. It learns the promotion from the
	// log.
	c.RestartNode(2)
	for k, v := range c.WriteOIRs(t, 5, []int{2, n4}) {
		acked[k] = v
	}
	c.WaitEqualHashes()
	code, m, body = c.Admin(2, http.MethodGet, "/members", "")
	if code != http.StatusOK || len(m.Learners()) != 0 {
		t.Fatalf("members on node 3 after its restart: %d %s", code, body)
	}
	wantMembers(t, "node 3's view after its restart", m, []uint64{1, 2, 3, 4}, []uint64{})
	c.CheckOIRs(t, acked, []int{0, 2, n4})
}
