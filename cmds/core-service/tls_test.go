package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftdss/dss/internal/peercerts"
)

// writePKI creates, in a new directory it returns, a CA and the
// certificates of the raft node ids (peercerts, as `dssctl certs` does);
// peercerts.Flags gives a node's TLS flags.
func writePKI(t testing.TB, ids ...uint64) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := peercerts.Create(dir, ids, time.Hour); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestClusterWithMutualTLS: three nodes whose raft traffic uses mTLS agree;
// a node given another node's certificate refuses to start; a fourth node,
// with its own certificate, joins as a learner and is promoted.
func TestClusterWithMutualTLS(t *testing.T) {
	pki := writePKI(t, 1, 2, 3, 4)
	devDir := t.TempDir()
	addrs := freeAddrs(t, 4)
	peers := fmt.Sprintf("1=%s,2=%s,3=%s", addrs[0], addrs[1], addrs[2])
	dirs := []string{shortTempDir(t), shortTempDir(t), shortTempDir(t), shortTempDir(t)}
	tlsArgs := func(id, certID int) []string {
		return slices.Concat([]string{"--raft_node_id", fmt.Sprint(id), "--raft_peers", peers, "--raft_data_dir", dirs[id-1]},
			peercerts.Flags(pki, uint64(certID)), fastRaft)
	}

	// Node 3 with node 1's certificate: its identity is its raft ID, and the
	// certificate does not prove it.
	var stdout, stderr syncBuffer
	code := run(context.Background(), append([]string{"--dev", "--dev_dir", devDir, "--addr", "127.0.0.1:0"},
		append(tlsArgs(3, 1), "--raft_data_dir", t.TempDir())...), &stdout, &stderr)
	if code != exitFailure || !strings.Contains(stderr.String(), "not bound to node 3") {
		t.Fatalf("node 3 with node 1's certificate: exit %d, stderr:\n%s", code, stderr.String())
	}

	var nodes []*node
	for id := 1; id <= 3; id++ {
		nodes = append(nodes, startNode(t, devDir, tlsArgs(id, id)...))
	}
	for _, n := range nodes {
		n.waitReady()
	}
	if code, body := nodes[2].call("PUT", "/dss/v1/uss_availability/uss2", `{"availability": "Normal"}`); code != http.StatusOK {
		t.Fatalf("PUT on node 3: %d %s", code, body)
	}
	if code, body := nodes[0].call("GET", "/dss/v1/uss_availability/uss2", ""); code != http.StatusOK || !strings.Contains(body, "Normal") {
		t.Fatalf("GET on node 1: %d %s", code, body)
	}
	waitEqualHashes(t, nodes)

	// Node 4 joins: added as a learner through node 1's admin socket, it
	// dials and is dialled over mTLS with its own certificate.
	admin := adminClient(filepath.Join(dirs[0], adminSocketName))
	defer admin.CloseIdleConnections()
	post := func(path, body string) {
		t.Helper()
		resp, err := admin.Post("http://admin"+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
		}
	}
	post("/members", fmt.Sprintf(`{"id": 4, "raft_addr": %q, "learner": true}`, addrs[3]))
	peers = fmt.Sprintf("1=%s,2=%s,3=%s,4=%s", addrs[0], addrs[1], addrs[2], addrs[3])
	nodes = append(nodes, startNode(t, devDir, append(tlsArgs(4, 4), "--raft_join")...))
	nodes[3].waitReady()
	if code, body := nodes[3].call("PUT", "/dss/v1/uss_availability/uss3", `{"availability": "Down"}`); code != http.StatusOK {
		t.Fatalf("PUT on node 4: %d %s", code, body)
	}
	waitEqualHashes(t, nodes)
	post("/members/4/promote", "")
	if code, body := nodes[1].call("GET", "/dss/v1/uss_availability/uss3", ""); code != http.StatusOK || !strings.Contains(body, "Down") {
		t.Fatalf("GET on node 2: %d %s", code, body)
	}
}
