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
	"github.com/raftdss/dss/pkg/auth"
)

// TestPlaintextPeersRefused: a node with peers and no raft TLS refuses to
// start (usage exit) with a message naming the TLS flags and the override;
// the override together with TLS is a contradiction; a single node, with or
// without --raft_peers naming only itself, is not concerned.
func TestPlaintextPeersRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--raft_peers", "1=127.0.0.1:1,2=127.0.0.1:2,3=127.0.0.1:3"},
		{"--raft_node_id", "4", "--raft_peers", "1=127.0.0.1:1,4=127.0.0.1:4", "--raft_join"},
		{"--raft_node_id", "4", "--raft_peers", "4=127.0.0.1:4", "--raft_join"},
	} {
		var stdout, stderr syncBuffer
		code := run(context.Background(), append([]string{"--dev", "--dev_dir", t.TempDir(),
			"--raft_data_dir", t.TempDir()}, args...), &stdout, &stderr)
		if code != exitUsage {
			t.Errorf("%q: exit %d, want %d; stderr %q", args, code, exitUsage, stderr.String())
		}
		for _, want := range []string{"--raft_tls_cert", "--raft_tls_key", "--raft_tls_ca",
			"--raft_insecure_plaintext_peers", "dssctl certs"} {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("%q: stderr %q does not name %s", args, stderr.String(), want)
			}
		}
	}

	var stderr syncBuffer
	code := run(context.Background(), []string{"--dev", "--dev_dir", t.TempDir(), "--raft_data_dir", t.TempDir(),
		"--raft_insecure_plaintext_peers", "--raft_tls_cert", "c", "--raft_tls_key", "k", "--raft_tls_ca", "ca"},
		io.Discard, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), "contradicts") {
		t.Errorf("override with TLS: exit %d, stderr %q", code, stderr.String())
	}

	for _, args := range [][]string{
		{},
		{"--raft_peers", "1=127.0.0.1:26001"},
		{"--raft_peers", "1=127.0.0.1:1,2=127.0.0.1:2", "--raft_insecure_plaintext_peers"},
		{"--raft_peers", "1=127.0.0.1:1,2=127.0.0.1:2", "--raft_tls_cert", "c", "--raft_tls_key", "k", "--raft_tls_ca", "ca"},
	} {
		if _, err := parseFlags(append([]string{"--dev"}, args...), io.Discard); err != nil {
			t.Errorf("%q: %v", args, err)
		}
	}
}

// TestInsecurePlaintextPeersWarns: with the override a three-node cluster
// without TLS starts and serves; every node logs a warning naming the
// override at every start (a restart too) and exports
// dss_raft_insecure_plaintext_peers 1. A node with TLS exports 0 and does
// not warn.
func TestInsecurePlaintextPeersWarns(t *testing.T) {
	devDir := t.TempDir()
	addrs := freeAddrs(t, 3)
	peers := fmt.Sprintf("1=%s,2=%s,3=%s", addrs[0], addrs[1], addrs[2])
	dirs := []string{shortTempDir(t), shortTempDir(t), shortTempDir(t)}
	args := func(i int) []string {
		return append([]string{"--raft_node_id", fmt.Sprint(i + 1), "--raft_peers", peers, "--raft_data_dir", dirs[i],
			"--raft_insecure_plaintext_peers"}, fastRaft...)
	}
	var nodes []*node
	for i := range 3 {
		nodes = append(nodes, startNode(t, devDir, args(i)...))
	}
	checkWarns := func(i int, n *node) {
		t.Helper()
		if !logContainsLine(n.stderr.String(), `"level":"warn"`, "NOT authenticated", "--raft_insecure_plaintext_peers") {
			t.Errorf("node %d: no start-up warning; stderr:\n%s", i+1, n.stderr.String())
		}
		if got := metricLine(t, n, "dss_raft_insecure_plaintext_peers"); got != "dss_raft_insecure_plaintext_peers 1" {
			t.Errorf("node %d: metric %q", i+1, got)
		}
	}
	for i, n := range nodes {
		n.waitReady()
		checkWarns(i, n)
	}
	if code, body := nodes[0].call("PUT", "/dss/v1/uss_availability/uss1", `{"availability": "Down"}`); code != http.StatusOK {
		t.Fatalf("PUT: %d %s", code, body)
	}
	waitEqualHashes(t, nodes)

	// Every start warns, not only the first.
	if code := nodes[2].stop(); code != exitOK {
		t.Fatalf("node 3 exit %d", code)
	}
	nodes[2] = startNode(t, devDir, args(2)...)
	nodes[2].waitReady()
	checkWarns(2, nodes[2])

	// A node with TLS: metric 0, no warning. It needs no quorum to serve
	// /metrics.
	pki := writePKI(t, 1)
	tlsAddrs := freeAddrs(t, 2)
	m := startNode(t, t.TempDir(), slices.Concat([]string{"--raft_peers", fmt.Sprintf("1=%s,2=%s", tlsAddrs[0], tlsAddrs[1]),
		"--raft_data_dir", shortTempDir(t)}, peercerts.Flags(pki, 1), fastRaft)...)
	if got := metricLine(t, m, "dss_raft_insecure_plaintext_peers"); got != "dss_raft_insecure_plaintext_peers 0" {
		t.Errorf("metric with TLS: %q", got)
	}
	if strings.Contains(m.stderr.String(), "NOT authenticated") {
		t.Errorf("a node with TLS warns about plaintext peers:\n%s", m.stderr.String())
	}
}

func logContainsLine(log string, words ...string) bool {
next:
	for line := range strings.SplitSeq(log, "\n") {
		for _, w := range words {
			if !strings.Contains(line, w) {
				continue next
			}
		}
		return true
	}
	return false
}

// metricLine returns the sample line of an unlabelled metric on n's
// /metrics.
func metricLine(t testing.TB, n *node, name string) string {
	t.Helper()
	code, body := n.call("GET", "/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for line := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(line, name+" ") {
			return line
		}
	}
	return ""
}

// TestStatusNeedsToken: the API's /status answers 401 without a valid token
// and 403 to a token without a DSS scope; the admin socket serves it without
// a token. A single node without TLS refuses to add members (409) on its
// admin socket: they could only talk to it in plaintext.
func TestStatusNeedsToken(t *testing.T) {
	devDir := t.TempDir()
	dataDir := shortTempDir(t)
	n := startNode(t, devDir, append([]string{"--raft_data_dir", dataDir}, fastRaft...)...)
	n.waitReady()

	get := func(token string) (int, string, http.Header) {
		t.Helper()
		req, err := http.NewRequest("GET", n.base+"/status", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := n.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	if code, body, h := get(""); code != http.StatusUnauthorized || !strings.Contains(body, `"message"`) ||
		strings.Contains(body, "term") || h.Get("WWW-Authenticate") == "" {
		t.Errorf("without a token: %d %s %v", code, body, h)
	}
	if code, body, _ := get("not.a.token"); code != http.StatusUnauthorized {
		t.Errorf("with a bad token: %d %s", code, body)
	}
	key, err := auth.LoadOrCreateDevKey(devDir)
	if err != nil {
		t.Fatal(err)
	}
	other, err := auth.MintToken(key, auth.TokenOptions{Subject: "uss9", Audience: auth.DefaultDevAudience,
		Scopes: []string{"example.other_scope"}, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if code, body, _ := get(other); code != http.StatusForbidden || strings.Contains(body, "term") {
		t.Errorf("with a token without a DSS scope: %d %s", code, body)
	}
	cmsa, err := auth.MintToken(key, auth.TokenOptions{Subject: "uss9", Audience: auth.DefaultDevAudience,
		Scopes: []string{auth.ScopeConformanceMonitoringSA}, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if code, body, _ := get(cmsa); code != http.StatusOK || !strings.Contains(body, `"term"`) {
		t.Errorf("with a DSS token: %d %s", code, body)
	}

	admin := adminClient(filepath.Join(dataDir, adminSocketName))
	defer admin.CloseIdleConnections()
	resp, err := admin.Get("http://admin/status")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"node_id":1`) {
		t.Errorf("admin /status: %d %s", resp.StatusCode, b)
	}
	resp, err = admin.Post("http://admin/members", "application/json", strings.NewReader(`{"id": 2, "raft_addr": "127.0.0.1:1"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(b), "--raft_tls_cert") {
		t.Errorf("adding a member to a plaintext single node: %d %s", resp.StatusCode, b)
	}
}
