package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"regexp"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/raftdss/dss/internal/peercerts"
	"github.com/raftdss/dss/internal/pgtest"
	"github.com/raftdss/dss/pkg/auth"
	poolserver "github.com/raftdss/dss/pkg/pool/server"
)

// auxToken mints a token with the pool scopes, signed by the dev key of
// devDir (the dev token printed at start holds the SCD scopes only).
func auxToken(t *testing.T, devDir string) string {
	t.Helper()
	key, err := auth.LoadOrCreateDevKey(devDir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.MintToken(key, auth.TokenOptions{Subject: "pool-operator", Audience: auth.DefaultDevAudience,
		Scopes: []string{poolserver.ScopePoolStatusRead, poolserver.ScopeHeartbeatWrite}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type auxInstances struct {
	DSSInstances []struct {
		ID                  string `json:"id"`
		PublicEndpoint      string `json:"public_endpoint"`
		MostRecentHeartbeat struct {
			Source   string `json:"source"`
			Reporter string `json:"reporter"`
			Index    int64  `json:"index"`
		} `json:"most_recent_heartbeat"`
	} `json:"dss_instances"`
}

func auxGet(t *testing.T, n *node, method, path string, want int, v any) {
	t.Helper()
	code, body := n.call(method, path, "")
	if code != want {
		t.Fatalf("%s %s on %s: %d %s", method, path, n.base, code, body)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(body), v); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, body)
		}
	}
}

// ids lists the instances' IDs with the source of their latest heartbeat.
func ids(l auxInstances) map[string]string {
	m := map[string]string{}
	for _, inst := range l.DSSInstances {
		m[inst.ID] = inst.MostRecentHeartbeat.Source
	}
	return m
}

// TestAuxOnRaftCluster checks aux.md P1, L1 and C1 on three real nodes
// with peer mTLS: one dar_id (the cluster ID) on every node, a heartbeat PUT
// on one node listed by the others, each node under its raft node ID, and
// the raft CA as the CA list.
func TestAuxOnRaftCluster(t *testing.T) {
	devDir := t.TempDir()
	nodes := startClusterIn(t, devDir, 3)
	tok := auxToken(t, devDir)
	var dar string
	devTokens := make([]string, len(nodes))
	for i, n := range nodes {
		devTokens[i], n.token = n.token, tok
		var p struct {
			DarID string `json:"dar_id"`
		}
		auxGet(t, n, "GET", "/aux/v1/pool", http.StatusOK, &p)
		if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(p.DarID) || (i > 0 && p.DarID != dar) {
			t.Fatalf("node %d: dar_id %q, node 1 %q", i+1, p.DarID, dar)
		}
		dar = p.DarID
	}
	var l auxInstances
	auxGet(t, nodes[0], "PUT", "/aux/v1/pool/dss_instances/heartbeat?source=n1", http.StatusCreated, &l)
	auxGet(t, nodes[1], "GET", "/aux/v1/pool/dss_instances", http.StatusOK, &l)
	if got := ids(l); !reflect.DeepEqual(got, map[string]string{"1": "n1"}) {
		t.Fatalf("node 2 lists %v after a heartbeat on node 1", got)
	}
	auxGet(t, nodes[1], "PUT", "/aux/v1/pool/dss_instances/heartbeat?source=n2", http.StatusCreated, nil)
	auxGet(t, nodes[2], "PUT", "/aux/v1/pool/dss_instances/heartbeat?source=n3", http.StatusCreated, nil)
	auxGet(t, nodes[0], "PUT", "/aux/v1/pool/dss_instances/heartbeat?source=n1b", http.StatusCreated, nil)
	auxGet(t, nodes[1], "GET", "/aux/v1/pool/dss_instances", http.StatusOK, &l)
	if got := ids(l); !reflect.DeepEqual(got, map[string]string{"1": "n1b", "2": "n2", "3": "n3"}) {
		t.Fatalf("node 2 lists %v", got)
	}
	if l.DSSInstances[0].MostRecentHeartbeat.Index != 2 || l.DSSInstances[0].MostRecentHeartbeat.Reporter != "pool-operator" {
		t.Fatalf("node 1's heartbeat: %+v", l.DSSInstances[0])
	}
	var cas struct {
		CAs []string `json:"CAs"`
	}
	auxGet(t, nodes[2], "GET", "/aux/v1/configuration/ca_certs", http.StatusOK, &cas)
	if len(cas.CAs) != 1 {
		t.Fatalf("ca_certs: %v", cas.CAs)
	}
	if b, _ := pem.Decode([]byte(cas.CAs[0])); b == nil {
		t.Fatalf("ca_certs: not PEM: %q", cas.CAs[0])
	} else if c, err := x509.ParseCertificate(b.Bytes); err != nil || !c.IsCA {
		t.Fatalf("ca_certs: %v, not the raft CA (%v)", err, c)
	}
	for i, n := range nodes {
		n.token = devTokens[i] // /status takes an SCD scope
	}
	waitEqualHashes(t, nodes)
}

// TestAuxOnSQLNodes checks aux.md P2 and L1 on two nodes sharing one
// database: the same dar_id (the database's), each node's heartbeat listed
// by the other under its --locality, and no CA without peer TLS.
func TestAuxOnSQLNodes(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	devDir := t.TempDir()
	tok := auxToken(t, devDir)
	a := startNode(t, devDir, "--datastore_url", dbURL, "--migrate", "--locality", "sql-a",
		"--public_endpoint", "https://a.example.com")
	a.waitReady()
	b := startNode(t, devDir, "--datastore_url", dbURL, "--locality", "sql-b")
	b.waitReady()
	a.token, b.token = tok, tok
	var pa, pb struct {
		DarID string `json:"dar_id"`
	}
	auxGet(t, a, "GET", "/aux/v1/pool", http.StatusOK, &pa)
	auxGet(t, b, "GET", "/aux/v1/pool", http.StatusOK, &pb)
	if pa.DarID == "" || pa.DarID != pb.DarID {
		t.Fatalf("dar_id %q and %q", pa.DarID, pb.DarID)
	}
	auxGet(t, a, "PUT", "/aux/v1/pool/dss_instances/heartbeat?source=a", http.StatusCreated, nil)
	auxGet(t, b, "PUT", "/aux/v1/pool/dss_instances/heartbeat?source=b", http.StatusCreated, nil)
	var l auxInstances
	auxGet(t, a, "GET", "/aux/v1/pool/dss_instances", http.StatusOK, &l)
	if got := ids(l); !reflect.DeepEqual(got, map[string]string{"sql-a": "a", "sql-b": "b"}) {
		t.Fatalf("node a lists %v", got)
	}
	if l.DSSInstances[0].PublicEndpoint != "https://a.example.com" {
		t.Fatalf("public endpoint %+v", l.DSSInstances[0])
	}
	var cas struct {
		CAs []string `json:"CAs"`
	}
	auxGet(t, b, "GET", "/aux/v1/configuration/accepted_ca_certs", http.StatusOK, &cas)
	if cas.CAs == nil || len(cas.CAs) != 0 {
		t.Fatalf("CAs without peer TLS: %v", cas.CAs)
	}
	var opts map[string]bool
	auxGet(t, b, "GET", "/aux/v1/configuration/global_options", http.StatusOK, &opts)
	if opts["scd_global_lock"] {
		t.Fatalf("global options on SQL: %v", opts)
	}
}

// TestAuxCAListFollowsReload checks aux.md C1 across a CA rotation: the CA
// file gains a second certificate (old and new CA side by side) and, after
// SIGHUP rereads the raft peer certificates, both are listed.
func TestAuxCAListFollowsReload(t *testing.T) {
	guard := make(chan os.Signal, 1) // the test signals its own process
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)

	pki := writePKI(t, 1)
	n := startNode(t, t.TempDir(), slices.Concat([]string{"--raft_data_dir", shortTempDir(t)},
		peercerts.Flags(pki, 1), fastRaft)...)
	n.waitReady()
	list := func() []string {
		t.Helper()
		var cas struct {
			CAs []string `json:"CAs"`
		}
		auxGet(t, n, "GET", "/aux/v1/configuration/accepted_ca_certs", http.StatusOK, &cas)
		return cas.CAs
	}
	if got := list(); len(got) != 1 {
		t.Fatalf("%d CAs before the rotation, want 1", len(got))
	}
	other := writePKI(t, 1)
	caPath := peercerts.NodeFiles(pki, 1).CA
	oldCA, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	newCA, err := os.ReadFile(peercerts.NodeFiles(other, 1).CA)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caPath, append(oldCA, newCA...), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for len(list()) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP: CAs %d, want 2", len(list()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
