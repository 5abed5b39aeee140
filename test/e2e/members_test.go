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
// DELETE /members/{id}) on a node's admin socket.
type Members struct {
	Members []struct {
		ID       uint64 `json:"id"`
		RaftAddr string `json:"raft_addr"`
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
