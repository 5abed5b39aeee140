package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/raftdss/dss/internal/peercerts"
	"github.com/raftdss/dss/pkg/raftstore"
	"github.com/raftdss/dss/pkg/raftstore/consensus"
	"github.com/raftdss/dss/pkg/raftstore/kv"
	"github.com/raftdss/dss/pkg/transport"
	"github.com/raftdss/dss/pkg/transport/memnet"
)

// node is a core-service started in-process with run().
type node struct {
	t      testing.TB
	base   string
	token  string
	cancel context.CancelFunc
	exited chan int
	code   int
	done   bool
	stdout *syncBuffer
	stderr *syncBuffer
	client *http.Client
	// dataDir is the node's --raft_data_dir where the test chose it
	// (startCluster), else "".
	dataDir string
}

// startNode runs core-service with --dev (keys in devDir, so nodes sharing it
// accept one token) and args, and waits until it listens. The node is
// stopped at cleanup.
func startNode(t testing.TB, devDir string, args ...string) *node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{t: t, cancel: cancel, exited: make(chan int, 1), stdout: &syncBuffer{}, stderr: &syncBuffer{},
		client: &http.Client{Timeout: 15 * time.Second}}
	all := append([]string{"--dev", "--dev_dir", devDir, "--addr", "127.0.0.1:0", "--log_level", "warn"}, args...)
	go func() { n.exited <- run(ctx, all, n.stdout, n.stderr) }()
	t.Cleanup(func() { n.stop() })
	n.base = waitFor(t, n.stdout, listeningRE, n.exited)
	n.token = waitFor(t, n.stdout, tokenRE, n.exited)
	return n
}

// stop shuts the node down and returns its exit code.
func (n *node) stop() int {
	n.t.Helper()
	if n.done {
		return n.code
	}
	n.client.CloseIdleConnections()
	n.cancel()
	select {
	case n.code = <-n.exited:
	case <-time.After(shutdownTimeout + 10*time.Second):
		n.t.Fatal("core-service did not shut down")
	}
	n.done = true
	return n.code
}

func (n *node) call(method, path, body string) (int, string) {
	n.t.Helper()
	req, err := http.NewRequest(method, n.base+path, strings.NewReader(body))
	if err != nil {
		n.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+n.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type nodeStatusJSON struct {
	Store        string `json:"store"`
	NodeID       uint64 `json:"node_id"`
	LeaderID     uint64 `json:"leader_id"`
	Term         uint64 `json:"term"`
	AppliedIndex uint64 `json:"applied_index"`
	CommitIndex  uint64 `json:"commit_index"`
	StateHash    string `json:"state_hash"`
	HaltedIndex  uint64 `json:"halted_index"`
	HaltedReason string `json:"halted_reason"`
}

func (n *node) status() nodeStatusJSON {
	n.t.Helper()
	code, body := n.call("GET", "/status", "")
	if code != http.StatusOK {
		n.t.Fatalf("/status: %d %s", code, body)
	}
	var s nodeStatusJSON
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		n.t.Fatalf("/status: %v in %s", err, body)
	}
	return s
}

// waitReady polls /readyz for up to 20 s.
func (n *node) waitReady() {
	n.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := n.call("GET", "/readyz", "")
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("not ready: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeAddrs reserves n loopback ports (released before use; a collision with
// another process in between is possible but unlikely).
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, l.Addr().String())
		defer l.Close()
	}
	return addrs
}

// fastRaft makes elections quick in tests.
var fastRaft = []string{"--raft_tick_interval", "20ms", "--raft_election_ticks", "10"}

func TestRaftStoreIsTheDefault(t *testing.T) {
	cfg, err := parseFlags([]string{"--dev"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.store != storeRaft || cfg.raft.dataDir != defaultRaftDataDir || cfg.raft.nodeID != 1 ||
		cfg.raft.addr != defaultRaftAddr || len(cfg.raft.peers) != 1 || cfg.raft.peers[1] != defaultRaftAddr {
		t.Fatalf("defaults: store %v, raft %+v", cfg.store, cfg.raft)
	}
	cfg, err = parseFlags([]string{"--dev", "--raft_node_id", "2",
		"--raft_peers", "1=10.0.0.1:26001, 2=10.0.0.2:26001,3=10.0.0.3:26001", "--raft_addr", "0.0.0.0:26001",
		"--raft_insecure_plaintext_peers"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.raft.addr != "0.0.0.0:26001" || len(cfg.raft.peers) != 3 || cfg.raft.peers[2] != "10.0.0.2:26001" {
		t.Fatalf("peers: %+v", cfg.raft)
	}
	cfg, err = parseFlags([]string{"--dev", "--raft_node_id", "3", "--raft_peers", "1=a:1,3=c:3",
		"--raft_insecure_plaintext_peers"}, io.Discard)
	if err != nil || cfg.raft.addr != "c:3" {
		t.Fatalf("listen address must default to this node's peer entry: %v %+v", err, cfg)
	}
	if cfg, err = parseFlags([]string{"--dev", "--memstore"}, io.Discard); err != nil || cfg.store != storeMem {
		t.Fatalf("--memstore: %v", err)
	}
	if cfg, err = parseFlags([]string{"--dev", "--datastore_url", "postgres://x/scd"}, io.Discard); err != nil || cfg.store != storeSQL {
		t.Fatalf("--datastore_url: %v", err)
	}
}

// TestSingleRaftNode: the default store serves the API, its operational
// endpoints work, reads leave the log alone, and a restart from the data
// directory keeps the data and the state hash.
func TestSingleRaftNode(t *testing.T) {
	devDir, dataDir := t.TempDir(), t.TempDir()
	args := append([]string{"--raft_data_dir", dataDir, "--raft_addr", "127.0.0.1:0"}, fastRaft...)
	n := startNode(t, devDir, args...)
	if code, _ := n.call("GET", "/livez", ""); code != http.StatusOK {
		t.Fatalf("/livez: %d", code)
	}
	n.waitReady()
	if code, body := n.call("PUT", "/dss/v1/uss_availability/uss1", `{"availability": "Normal"}`); code != http.StatusOK {
		t.Fatalf("PUT availability: %d %s", code, body)
	}
	st := n.status()
	if st.Store != "raft" || st.NodeID != 1 || st.LeaderID != 1 || st.AppliedIndex == 0 ||
		st.CommitIndex < st.AppliedIndex || len(st.StateHash) != 64 {
		t.Fatalf("/status: %+v", st)
	}

	// Reads: the applied and commit indexes must not move.
	query := `{"area_of_interest": {"volume": {"outline_circle": {"center": {"lat": 46.97, "lng": 7.47},
		"radius": {"value": 300, "units": "M"}}}}}`
	for range 20 {
		if code, body := n.call("GET", "/dss/v1/uss_availability/uss1", ""); code != http.StatusOK || !strings.Contains(body, "Normal") {
			t.Fatalf("GET availability: %d %s", code, body)
		}
		if code, body := n.call("POST", "/dss/v1/operational_intent_references/query", query); code != http.StatusOK {
			t.Fatalf("query: %d %s", code, body)
		}
	}
	if after := n.status(); after != st {
		t.Fatalf("reads changed the node: before %+v, after %+v", st, after)
	}

	mcode, metrics := n.call("GET", "/metrics", "")
	if mcode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", mcode, metrics)
	}
	for _, want := range []string{"dss_raft_proposals_committed_total 1", "dss_raft_apply_duration_seconds_count 1",
		"dss_raft_leader_changes_seen_total", "dss_raft_is_leader 1", "dss_raft_members 1", "dss_raft_removed 0", "dss_raft_corrupt_snapshots_total 0",
		"etcd_disk_wal_fsync_duration_seconds"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code := n.stop(); code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, n.stderr.String())
	}

	n = startNode(t, devDir, args...)
	n.waitReady()
	if code, body := n.call("GET", "/dss/v1/uss_availability/uss1", ""); code != http.StatusOK || !strings.Contains(body, "Normal") {
		t.Fatalf("after restart, GET availability: %d %s", code, body)
	}
	// The new leader's term adds an empty entry, which may not be applied
	// yet (a single node answers ReadIndex at its commit index at once);
	// either way the state is unchanged and nothing applied was lost.
	if again := n.status(); again.StateHash != st.StateHash || again.AppliedIndex < st.AppliedIndex {
		t.Fatalf("after restart: %+v, before %+v", again, st)
	}
}

func TestMemstoreForTests(t *testing.T) {
	n := startNode(t, t.TempDir(), "--memstore")
	n.waitReady()
	if code, body := n.call("PUT", "/dss/v1/uss_availability/uss1", `{"availability": "Down"}`); code != http.StatusOK {
		t.Fatalf("PUT availability: %d %s", code, body)
	}
	if st := n.status(); st.Store != "memory" || st.StateHash != "" {
		t.Fatalf("/status: %+v", st)
	}
}

// TestCorruptDataHalts: a data directory whose log holds an entry this
// binary cannot decode (here: a key-value demo entry) halts the node at that
// entry instead of skipping it or exiting (a restart would halt there
// again): it stays up (/livez), answers writes 503, and reports the entry,
// the reason and the recovery on /readyz (503), /status and /metrics.
func TestCorruptDataHalts(t *testing.T) {
	dataDir := t.TempDir()
	net := memnet.New(1)
	st, err := raftstore.Open(raftstore.Config{
		Consensus:    consensus.Config{ID: 1, DataDir: dataDir, TickInterval: 10 * time.Millisecond, Logger: zap.NewNop()},
		StateMachine: kv.New(),
		NewTransport: func(h transport.Handler) (transport.Transport, error) { return net.Transport(1, h), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = st.Transact(ctx, kv.EncodePut("k", []byte("v")))
	st.Stop()
	net.Close()
	if err != nil {
		t.Fatal(err)
	}

	n := startNode(t, t.TempDir(), append([]string{"--raft_data_dir", dataDir, "--raft_addr", "127.0.0.1:0"},
		fastRaft...)...)
	n.waitHalted(`undecodable entry.*unregistered operation type`)
	if code, body := n.call("PUT", "/dss/v1/uss_availability/uss1", `{"availability": "Down"}`); code != http.StatusServiceUnavailable {
		t.Errorf("a write on a halted node: %d %s", code, body)
	}
	if code, _ := n.call("GET", "/livez", ""); code != http.StatusOK {
		t.Errorf("/livez of a halted node: %d (it must not be restarted in a loop)", code)
	}
	if code := n.stop(); code != exitOK {
		t.Errorf("exit code %d; stderr:\n%s", code, n.stderr.String())
	}
	if !strings.Contains(n.stderr.String(), "HALTED") {
		t.Errorf("the log does not say the node halted:\n%s", n.stderr.String())
	}
}

// waitHalted waits up to 20 s for n to report itself halted: /readyz
// answers 503 naming the entry, the reason (matching reasonRE) and the
// recovery; /metrics has dss_raft_halted_index at that entry; /status has
// halted_index and halted_reason. It returns /status.
func (n *node) waitHalted(reasonRE string) nodeStatusJSON {
	n.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var code int
	var body string
	for {
		if code, body = n.call("GET", "/readyz", ""); code == http.StatusServiceUnavailable && strings.Contains(body, "HALTED") {
			break
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("not halted: /readyz %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := n.status()
	if st.HaltedIndex == 0 || !regexp.MustCompile(reasonRE).MatchString(st.HaltedReason) {
		n.t.Fatalf("/status of a halted node: %+v", st)
	}
	if st.AppliedIndex >= st.HaltedIndex {
		n.t.Errorf("applied index %d, not below the halted index %d", st.AppliedIndex, st.HaltedIndex)
	}
	for _, want := range []string{fmt.Sprintf("log entry %d,", st.HaltedIndex), "Recovery: " + consensus.HaltRecovery} {
		if !strings.Contains(body, want) {
			n.t.Errorf("/readyz %q lacks %q", body, want)
		}
	}
	if !regexp.MustCompile(reasonRE).MatchString(body) {
		n.t.Errorf("/readyz %q does not give the reason %q", body, reasonRE)
	}
	if got, want := metricLine(n.t, n, "dss_raft_halted_index"), fmt.Sprintf("dss_raft_halted_index %d", st.HaltedIndex); got != want {
		n.t.Errorf("metric %q, want %q", got, want)
	}
	return st
}

// TestThreeNodeCluster starts three nodes over gRPC on loopback: a write on
// one is visible on the others, and every node reports the same state hash
// at the same applied index.
func TestThreeNodeCluster(t *testing.T) {
	nodes := startCluster(t, 3)
	if code, body := nodes[0].call("PUT", "/dss/v1/uss_availability/uss1", `{"availability": "Down"}`); code != http.StatusOK {
		t.Fatalf("PUT on node 1: %d %s", code, body)
	}
	for i, n := range nodes {
		if code, body := n.call("GET", "/dss/v1/uss_availability/uss1", ""); code != http.StatusOK || !strings.Contains(body, "Down") {
			t.Fatalf("GET on node %d: %d %s", i+1, code, body)
		}
	}
	waitEqualHashes(t, nodes)
}

// startCluster starts n Raft nodes over gRPC with mutual TLS (certificates
// from peercerts) and waits until all are ready.
func startCluster(t *testing.T, n int) []*node {
	t.Helper()
	return startClusterIn(t, t.TempDir(), n)
}

// startClusterIn is startCluster with the dev keys in devDir.
func startClusterIn(t *testing.T, devDir string, n int) []*node {
	t.Helper()
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	pki := writePKI(t, ids...)
	raftAddrs := freeAddrs(t, n)
	var peers []string
	for i, a := range raftAddrs {
		peers = append(peers, fmt.Sprintf("%d=%s", i+1, a))
	}
	var nodes []*node
	for i := range n {
		dir := shortTempDir(t) // short enough for the admin socket
		nd := startNode(t, devDir, slices.Concat([]string{"--raft_node_id", fmt.Sprint(i + 1),
			"--raft_peers", strings.Join(peers, ","), "--raft_data_dir", dir},
			peercerts.Flags(pki, uint64(i+1)), fastRaft)...)
		nd.dataDir = dir
		nodes = append(nodes, nd)
	}
	for _, nd := range nodes {
		nd.waitReady()
	}
	return nodes
}

func waitEqualHashes(t *testing.T, nodes []*node) nodeStatusJSON {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		first := nodes[0].status()
		same := true
		for i, n := range nodes[1:] {
			s := n.status()
			if s.AppliedIndex == first.AppliedIndex && s.StateHash != first.StateHash {
				t.Fatalf("nodes 1 and %d differ at applied index %d: %s vs %s", i+2, s.AppliedIndex, first.StateHash, s.StateHash)
			}
			same = same && s.AppliedIndex == first.AppliedIndex
		}
		if same {
			return first
		}
		if time.Now().After(deadline) {
			t.Fatal("nodes did not converge to one applied index and state hash")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBusyPortLeavesDataDirAlone: a node that cannot listen fails before
// creating its raft data (a WAL created and abandoned before its first
// write would leave a member without its bootstrap configuration).
func TestBusyPortLeavesDataDirAlone(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dataDir := filepath.Join(t.TempDir(), "data")
	var stdout, stderr syncBuffer
	code := run(context.Background(), []string{"--dev", "--dev_dir", t.TempDir(), "--addr", l.Addr().String(),
		"--raft_data_dir", dataDir, "--raft_addr", "127.0.0.1:0"}, &stdout, &stderr)
	if code != exitFailure || !strings.Contains(stderr.String(), "address already in use") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the data directory was created: %v", err)
	}
}
